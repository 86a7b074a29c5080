"""Snapshots a data plane must refuse (issue 3): oversized, corrupt, truncated, badly hashed.
Each is rejected with an error naming the problem, the data plane keeps serving the config it
had, and the control plane shows the rejection in GET /clustering/data-planes."""

import hashlib
import os
import re
import secrets

import pytest
import requests

from cluster_harness import DataPlane, EchoUpstream, cluster_env, dp_binary, wait_for
from conftest import start_cp, stop_cp
from fake_cp import FakeControlPlane, pack_envelope, read_envelope


@pytest.fixture(scope="module")
def upstream():
    u = EchoUpstream("rejects")
    yield u
    u.close()


@pytest.fixture
def dps(tmp_path_factory, certs):
    if not os.access(dp_binary(), os.X_OK):
        pytest.fail("%s is missing" % dp_binary())
    started = []

    def make(cluster_port, workdir=None, **kw):
        d = DataPlane(cluster_port, *certs, workdir=workdir or str(tmp_path_factory.mktemp("dp")),
                      **kw)
        started.append(d)
        return d.start()

    yield make
    problems = []
    for d in started:
        problems += d.stop()
    assert not problems, "\n".join(problems[:50])


def proxied(dp, path):
    try:
        return requests.get(dp.proxy_url + path, timeout=5).status_code
    except requests.RequestException:
        return None


def add_route(cp, upstream, name, path):
    assert cp.post("/services", json={"name": name, "url": upstream.url}).status_code == 201
    r = cp.post("/services/%s/routes" % name, json={"paths": [path]})
    assert r.status_code == 201, r.text


def node_id(dp):
    with open(os.path.join(dp.prefix, "node_id")) as f:
        return f.read().strip()


def cached_envelope(dp):
    """The snapshot envelope a data plane cached on disk (the bytes the control plane sent)."""
    with open(os.path.join(dp.prefix, "config.snapshot"), "rb") as f:
        return f.read()


def test_oversized_snapshot_is_refused_and_shown_on_the_cp(pg, bootstrapped_db, tmp_path_factory,
                                                           certs, upstream, dps):
    cp = start_cp(pg, bootstrapped_db, tmp_path_factory, extra_env=cluster_env(*certs))
    try:
        workdir = str(tmp_path_factory.mktemp("dp-small"))
        limit = 65536
        d = dps(cp.cluster_port, workdir=workdir,
                extra_env={"SLUICE_CLUSTER_MAX_PAYLOAD": str(limit)})
        add_route(cp, upstream, "small", "/small")
        v1 = cp.config_version()
        wait_for(lambda: d.config_version() == v1, what="DP on the small config")
        h1 = d.config_hash()

        # While the DP is away, the config grows past its limit: random text compresses badly.
        assert not d.stop()
        s = requests.Session()
        for i in range(80):
            r = s.post(cp.url + "/consumers", json={"username": "c%d-" % i + secrets.token_hex(500),
                                                    "custom_id": secrets.token_urlsafe(700)})
            assert r.status_code == 201, r.text
        s.close()
        big = cp.config_version()
        built = wait_for(lambda: [int(b) for v, b in re_built(cp.log()) if int(v) == big],
                         what="the CP built version %d" % big)
        assert built[0] > limit, "the snapshot (%d bytes) should exceed %d" % (built[0], limit)

        # Back, the DP serves its cache, refuses the big snapshot, and keeps serving.
        d.start()
        me = node_id(d)

        def rejected():
            for p in cp.get("/clustering/data-planes").json()["data"]:
                if p["id"] == me and p["sync_status"] == "config_rejected":
                    return p
            return None
        row = wait_for(rejected, what="the CP lists the DP as config_rejected")
        assert "cluster_max_payload" in row["error"]["message"], row
        assert row["error"]["version"] == big, row
        assert row["config_version"] == v1 and row["config_hash"] == h1, row
        assert d.config_version() == v1 and d.config_hash() == h1
        assert proxied(d, "/small") == 200
        assert "exceeds cluster_max_payload" in d.log()
    finally:
        stop_cp(cp)


def re_built(log):
    return re.findall(r"snapshot version (\d+) built: \d+ routes, (\d+) bytes", log)


def capture_two_snapshots(pg, db, tmp_path_factory, certs, upstream, dps):
    """Two valid envelopes from a real control plane: v1 routes /a, v2 routes /a and /b. Each
    comes from a data plane that joins after the change, so it gets (and caches) the whole
    snapshot rather than a delta."""
    cp = start_cp(pg, db, tmp_path_factory, extra_env=cluster_env(*certs))
    envs = []
    try:
        for name in ("a", "b"):
            add_route(cp, upstream, name, "/" + name)
            v = cp.config_version()
            d = dps(cp.cluster_port)
            wait_for(lambda: os.path.exists(os.path.join(d.prefix, "config.snapshot")) and
                     read_envelope(cached_envelope(d))["version"] == v, what="v%d cached" % v)
            envs.append(cached_envelope(d))
    finally:
        stop_cp(cp)
    return envs[0], envs[1]


def test_corrupt_truncated_and_badly_hashed_snapshots(pg, bootstrapped_db, tmp_path_factory,
                                                      certs, upstream, dps):
    env1, env2 = capture_two_snapshots(pg, bootstrapped_db, tmp_path_factory, certs, upstream,
                                       dps)
    e1, e2 = read_envelope(env1), read_envelope(env2)
    fake = FakeControlPlane(*certs).start()
    try:
        d = dps(fake.port)
        hello = fake.expect("hello")
        assert hello["node_id"] == node_id(d) and hello["config_version"] == 0, hello
        assert isinstance(hello["plugins"], list)

        fake.send(env1)
        ack = fake.expect(("ack", "error"))
        assert ack["type"] == "ack", ack
        assert ack["version"] == e1["version"] and ack["hash"] == e1["hash"], ack
        assert proxied(d, "/a") == 200 and proxied(d, "/b") == 404

        def refused(raw, words):
            fake.send(raw)
            m = fake.expect(("ack", "error"))
            assert m["type"] == "error", m
            assert any(w in m["message"] for w in words), m
            # Nothing changed on the data plane: same config, still serving it.
            assert d.config_version() == e1["version"] and d.config_hash() == e1["hash"]
            assert proxied(d, "/a") == 200 and proxied(d, "/b") == 404
            assert d.ready()
            return m

        # A flipped byte in the compressed payload.
        corrupt = dict(e2)
        payload = bytearray(e2["payload"])
        payload[len(payload) // 2] ^= 0xFF
        corrupt["payload"] = bytes(payload)
        m = refused(pack_envelope(corrupt), ("corrupt", "hash mismatch"))
        assert m["version"] == e2["version"] and m["hash"] == e2["hash"], m

        # The envelope cut in the middle of its payload.
        m = refused(env2[:len(env2) - len(e2["payload"]) // 2], ("truncated", "bytes left"))
        assert m["version"] == e2["version"], m

        # A payload whose sha256 is not the envelope's hash.
        bad = dict(e2)
        bad["hash"] = hashlib.sha256(b"something else").hexdigest()
        m = refused(pack_envelope(bad), ("hash mismatch",))
        assert m["hash"] == bad["hash"] and e2["hash"] in m["message"], m

        # A cache file on disk holds the last good config, not a refused one.
        assert read_envelope(cached_envelope(d))["hash"] == e1["hash"]

        # The real v2, untouched, still applies: the refusals left the DP healthy.
        fake.send(env2)
        ack = fake.expect(("ack", "error"))
        assert ack["type"] == "ack" and ack["hash"] == e2["hash"], ack
        wait_for(lambda: proxied(d, "/b") == 200, what="v2 serving")
        assert fake.connections == 1, "the DP reconnected: %r" % fake.errors
    finally:
        fake.stop()
