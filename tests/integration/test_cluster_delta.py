"""Incremental cluster sync end to end (issue 3): a real control plane turns each change into a
delta for data planes at the previous version, and sends the full snapshot to any other.

Real data planes show that deltas and full snapshots agree (a data plane that followed every
change by delta serves the same hash as one that just got the whole config). A scripted data
plane, speaking the wire protocol itself, shows the control plane's choices: a delta only from
the exact base it has, the full snapshot after it refuses a delta, and no delta to a data plane
that lacks a plugin the config uses."""

import os
import re
import ssl

import msgpack
import pytest
import requests

from cluster_harness import EchoUpstream, cluster_certs, cluster_env, wait_for
from conftest import start_cp, stop_cp


@pytest.fixture(scope="module")
def upstream():
    u = EchoUpstream("delta-e2e")
    yield u
    u.close()


def proxied(dp, path):
    try:
        return requests.get(dp.proxy_url + path, timeout=5).status_code
    except requests.RequestException:
        return None


def cp_version(cp):
    return cp.get("/status").json()["configuration_version"]


def expect(resp, status):
    assert resp.status_code == status, "%s %s -> %d: %s" % (
        resp.request.method, resp.request.path_url, resp.status_code, resp.text[:500])
    return resp.json() if resp.text.strip() else None


def test_deltas_and_full_snapshots_agree(cluster, upstream):
    start_cp_, start_dp, _ = cluster
    cp = start_cp_()
    a, b = start_dp(cp), start_dp(cp)
    expect(cp.post("/services", json={"name": "d", "url": upstream.url}), 201)
    expect(cp.post("/services/d/routes", json={"name": "d-r", "paths": ["/d"]}), 201)
    v = cp_version(cp)
    wait_for(lambda: a.config_version() == v and b.config_version() == v, what="both on v%d" % v)

    # A change: both data planes were at the previous version, so it travels as a delta.
    expect(cp.patch("/routes/d-r", json={"paths": ["/d2"]}), 200)
    v2 = cp_version(cp)
    wait_for(lambda: a.config_version() == v2 and b.config_version() == v2, what="both on v2")
    assert "delta version %d built: 1 upserts, 0 deletes" % v2 in cp.log()
    for d in (a, b):
        assert proxied(d, "/d2/x") == 200
        assert proxied(d, "/d/x") == 404
        # the node serves a config before it logs its apply (the journal write is between)
        wait_for(lambda: "config version %d applied" % v2 in d.log(), what="the apply logged")
        assert "delta of" in d.log()

    # A delete, and a plugin on the way: still deltas, and the proxy follows.
    expect(cp.delete("/routes/d-r"), 204)
    v3 = cp_version(cp)
    wait_for(lambda: a.config_version() == v3 and b.config_version() == v3, what="both on v3")
    assert "delta version %d built: 0 upserts, 1 deletes" % v3 in cp.log()
    assert proxied(a, "/d2/x") == 404

    # A data plane that joins now gets the full snapshot: same config, same hash.
    c = start_dp(cp)
    wait_for(lambda: c.config_version() == v3, what="the new DP on v3")
    assert c.config_hash() == a.config_hash() == b.config_hash()

    # The registry shows all three in sync on that hash.
    def all_normal():
        planes = cp.get("/clustering/data-planes").json()["data"]
        return len(planes) == 3 and all(p["sync_status"] == "normal" and p["config_version"] == v3
                                        and p["config_hash"] == a.config_hash() for p in planes)
    wait_for(all_normal, what="three DPs normal on v3")


def test_a_dp_back_after_a_few_changes_catches_up_by_delta(cluster, upstream):
    start_cp_, start_dp, _ = cluster
    cp = start_cp_()
    d = start_dp(cp)
    expect(cp.post("/services", json={"name": "back", "url": upstream.url}), 201)
    # Enough config that three small deltas weigh less than the whole (one transaction).
    cp.pg.psql("""
        INSERT INTO services (id, name, retries, protocol, host, port, connect_timeout,
                              write_timeout, read_timeout, enabled)
        SELECT md5('bulk' || i)::uuid, 'bulk-' || i, 5, 'http', 'bulk' || i || '.example', 80,
               60000, 60000, 60000, true
        FROM generate_series(1, 200) AS i""", db=cp.db)
    v = cp_version(cp)
    wait_for(lambda: d.config_version() == v, what="DP on v%d" % v)
    assert not d.stop()
    for i in range(3):
        expect(cp.post("/services/back/routes", json={"paths": ["/back%d" % i]}), 201)
    v2 = cp_version(cp)
    d.start()
    wait_for(lambda: d.config_version() == v2, what="DP back on v%d" % v2)
    assert proxied(d, "/back2/x") == 200
    # Three deltas from the version it had, not the whole config.
    for ver in range(v + 1, v2 + 1):
        wait_for(lambda: "config version %d applied" % ver in d.log(),
                 what="version %d applied and logged" % ver)



def test_a_dp_far_behind_gets_the_whole_snapshot_and_keeps_what_did_not_change(cluster, upstream):
    """More changes than deltas are worth: the whole snapshot. The data plane takes over the
    rows it already serves unchanged (the routes here) and reads only the changed one."""
    start_cp_, start_dp, _ = cluster
    cp = start_cp_()
    d = start_dp(cp)
    expect(cp.post("/services", json={"name": "far", "url": upstream.url}), 201)
    for i in range(5):
        expect(cp.post("/services/far/routes", json={"name": "keep%d" % i,
                                                      "paths": ["/keep%d" % i]}), 201)
    v = cp_version(cp)
    wait_for(lambda: d.config_version() == v, what="DP on v%d" % v)
    assert not d.stop()
    for i in range(12):
        expect(cp.patch("/services/far", json={"retries": i}), 200)
    v2 = cp_version(cp)
    # once the whole snapshot of v2 is built (a moment after the last change), it is the
    # lighter way there
    built = "snapshot version %d built" % v2
    wait_for(lambda: built in cp.log(), what="snapshot v%d built" % v2)
    d.start()
    wait_for(lambda: d.config_version() == v2, what="DP back on v%d" % v2)
    assert proxied(d, "/keep4/x") == 200
    applied = "config version %d applied" % v2
    wait_for(lambda: applied in d.log(), what="version %d applied and logged" % v2)
    line = [x for x in d.log().splitlines() if applied in x][0]
    m = re.search(r"(\d+) rows kept from the config served before", line)
    assert m, "whole snapshot expected, got: " + line
    assert int(m.group(1)) == 5, line

# ---- a scripted data plane ----

def sw_version():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "proto", "version.h")) as f:
        for line in f:
            if line.startswith("#define SL_VERSION "):
                return line.split('"')[1]
    raise RuntimeError("SL_VERSION not found")


class ScriptedDP:
    """A websocket on /v1/outlet that sends what the test says and decodes what comes."""

    def __init__(self, cp, crt, key, node, plugins, version=0, hash_=""):
        import websocket
        self.ws = websocket.WebSocket(sslopt={"certfile": crt, "keyfile": key, "ca_certs": crt,
                                              "check_hostname": False,
                                              "cert_reqs": ssl.CERT_REQUIRED})
        self.ws.connect("wss://127.0.0.1:%d/v1/outlet" % cp.cluster_port, timeout=10,
                        subprotocols=["sluice-cluster"])
        self.send({"type": "hello", "node_id": node, "hostname": "scripted",
                   "version": sw_version(), "plugins": plugins, "config_version": version,
                   "config_hash": hash_})

    def send(self, m):
        self.ws.send_binary(msgpack.packb(m, use_bin_type=True))

    def recv(self, timeout=10):
        self.ws.settimeout(timeout)
        return msgpack.unpackb(self.ws.recv(), raw=False)

    def nothing_for(self, seconds):
        import websocket
        self.ws.settimeout(seconds)
        try:
            m = msgpack.unpackb(self.ws.recv(), raw=False)
        except websocket.WebSocketTimeoutException:
            return True
        raise AssertionError("expected nothing, got %r" % {k: v for k, v in m.items()
                                                          if k != "payload"})

    def ack(self, m):
        self.send({"type": "ack", "version": m["version"], "hash": m["hash"]})

    def close(self):
        self.ws.close()


@pytest.fixture
def scripted(pg, bootstrapped_db, tmp_path_factory):
    crt, key = cluster_certs(str(tmp_path_factory.mktemp("scripted") / "cluster"))
    cp = start_cp(pg, bootstrapped_db, tmp_path_factory, extra_env=cluster_env(crt, key))
    opened = []

    def connect(*args, **kw):
        s = ScriptedDP(cp, crt, key, *args, **kw)
        opened.append(s)
        return s
    yield cp, connect
    for s in opened:
        s.close()
    stop_cp(cp)


NODE = "7b0c3c4e-0000-4000-8000-0000000000%02d"


def wait_acked(cp, node, version):
    """Until the control plane has the scripted DP's ack of version: a change made before
    that reaches the CP finds no acknowledged base, and rightly gets the whole snapshot."""
    def at():
        for p in cp.get("/clustering/data-planes").json()["data"]:
            if p["id"] == node:
                return p["config_version"] == version
    wait_for(at, what="the control plane has the ack of version %d" % version)


def test_delta_only_from_the_exact_base_and_full_after_a_refusal(scripted):
    cp, connect = scripted
    expect(cp.post("/services", json={"name": "s1", "url": "http://127.0.0.1:9"}), 201)
    v1 = cp_version(cp)
    dp = connect(NODE % 1, [])
    snap = dp.recv()
    assert snap["type"] == "snapshot" and snap["version"] == v1
    dp.ack(snap)
    wait_acked(cp, NODE % 1, v1)

    expect(cp.post("/services", json={"name": "s2", "url": "http://127.0.0.1:9"}), 201)
    v2 = cp_version(cp)
    d = dp.recv()
    assert d["type"] == "delta", d["type"]
    assert (d["base_version"], d["base_hash"], d["version"]) == (v1, snap["hash"], v2)
    dp.ack(d)
    wait_acked(cp, NODE % 1, v2)

    # The next delta follows on from what it acknowledged; this time it refuses it...
    expect(cp.post("/services", json={"name": "s3", "url": "http://127.0.0.1:9"}), 201)
    v3 = cp_version(cp)
    d3 = dp.recv()
    assert d3["type"] == "delta" and d3["base_version"] == v2 and d3["base_hash"] == d["hash"]
    dp.send({"type": "error", "version": v3, "hash": d3["hash"],
             "message": "delta base does not match", "errors": []})
    # ...and gets the whole config of that version instead, with the same hash.
    full = dp.recv()
    assert full["type"] == "snapshot" and full["version"] == v3 and full["hash"] == d3["hash"]
    dp.ack(full)
    # A refused delta is not a rejected config: the registry keeps it normal.
    node = NODE % 1

    def status():
        for p in cp.get("/clustering/data-planes").json()["data"]:
            if p["id"] == node:
                return p["sync_status"]
    wait_for(lambda: status() == "normal", what="the scripted DP normal on v3")

    # A data plane that says it serves something else than any delta's base gets a snapshot.
    other = connect(NODE % 2, [], version=v2, hash_="0" * 64)
    m = other.recv()
    assert m["type"] == "snapshot" and m["version"] == v3
    # One that serves exactly the previous version gets the delta from it.
    late = connect(NODE % 3, [], version=v2, hash_=d["hash"])
    m = late.recv()
    assert m["type"] == "delta" and m["base_version"] == v2 and m["version"] == v3


def test_no_delta_to_a_dp_that_lacks_a_plugin(scripted):
    cp, connect = scripted
    expect(cp.post("/services", json={"name": "p1", "url": "http://127.0.0.1:9"}), 201)
    dp = connect(NODE % 4, ["key-auth"])
    snap = dp.recv()
    assert snap["type"] == "snapshot"
    dp.ack(snap)
    wait_acked(cp, NODE % 4, snap["version"])

    # A plugin it has: delta.
    expect(cp.post("/plugins", json={"name": "key-auth"}), 201)
    d = dp.recv()
    assert d["type"] == "delta"
    dp.ack(d)
    # One it lacks: nothing, and the registry says why.
    expect(cp.post("/plugins", json={"name": "cors"}), 201)
    dp.nothing_for(2)

    def status():
        for p in cp.get("/clustering/data-planes").json()["data"]:
            if p["id"] == NODE % 4:
                return p["sync_status"]
    wait_for(lambda: status() == "plugin_set_incompatible", what="plugin_set_incompatible")
