"""Cluster sync end to end (issue 3): a real control plane on a real PostgreSQL pushes
snapshots over mutual TLS to real data planes, which serve them, survive the control plane's
absence from their on-disk cache, and follow it again when it returns."""

import threading

import pytest
import requests

from cluster_harness import EchoUpstream, wait_for
from conftest import stop_cp


@pytest.fixture(scope="module")
def upstream():
    u = EchoUpstream("one")
    yield u
    u.close()


def cp_version(cp):
    return cp.get("/status").json()["configuration_version"]


def on_version(dps, version):
    return all(d.config_version() >= version for d in dps)


def same_hash(dps):
    hashes = {d.config_hash() for d in dps}
    return len(hashes) == 1 and None not in hashes and hashes


def add_route(cp, upstream, name, path):
    r = cp.post("/services", json={"name": name, "url": upstream.url})
    assert r.status_code == 201, r.text
    r = cp.post("/services/%s/routes" % name, json={"name": name + "-r", "paths": [path]})
    assert r.status_code == 201, r.text


def proxied(dp, path):
    try:
        r = requests.get(dp.proxy_url + path, timeout=5)
    except requests.RequestException:
        return None
    return r.status_code


def test_three_dps_converge_on_create_update_delete(cluster, upstream):
    start_cp_, start_dp, _ = cluster
    cp = start_cp_()
    dps = [start_dp(cp) for _ in range(3)]
    add_route(cp, upstream, "orders", "/orders")
    v = cp_version(cp)
    wait_for(lambda: on_version(dps, v), what="3 DPs on version %d" % v)
    wait_for(lambda: same_hash(dps), what="3 DPs on one hash")
    for d in dps:
        assert proxied(d, "/orders/1") == 200
        assert d.ready()

    # Update: the route moves to another path; every DP follows.
    r = cp.patch("/routes/orders-r", json={"paths": ["/v2/orders"]})
    assert r.status_code == 200, r.text
    v = cp_version(cp)
    wait_for(lambda: on_version(dps, v), what="update everywhere")
    for d in dps:
        assert proxied(d, "/v2/orders") == 200
        assert proxied(d, "/orders/1") == 404

    # Delete: no route left, 404 everywhere, same hash.
    assert cp.delete("/routes/orders-r").status_code == 204
    v = cp_version(cp)
    wait_for(lambda: on_version(dps, v), what="delete everywhere")
    wait_for(lambda: same_hash(dps), what="one hash after delete")
    for d in dps:
        assert proxied(d, "/v2/orders") == 404

    # The control plane's registry lists the three, in sync, with the hash they run.
    planes = cp.get("/clustering/data-planes").json()["data"]
    assert len(planes) == 3
    h = dps[0].config_hash()
    for p in planes:
        assert p["sync_status"] == "normal", p
        assert p["config_hash"] == h, p


def test_burst_of_100_writes_ends_on_final_version(cluster, upstream):
    start_cp_, start_dp, _ = cluster
    cp = start_cp_()
    dps = [start_dp(cp) for _ in range(3)]

    def writer(k):
        s = requests.Session()
        for i in range(25):
            r = s.post(cp.url + "/consumers", json={"username": "u%d-%d" % (k, i)}, timeout=30)
            assert r.status_code == 201, r.text

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = cp_version(cp)
    assert final >= 100
    wait_for(lambda: all(d.config_version() == final for d in dps), timeout=30,
             what="every DP on the final version %d" % final)
    wait_for(lambda: same_hash(dps), what="one hash")


def test_dps_survive_cp_loss_and_follow_it_back(cluster, upstream):
    start_cp_, start_dp, state = cluster
    cp = start_cp_()
    d1 = start_dp(cp)
    d2 = start_dp(cp)
    add_route(cp, upstream, "pay", "/pay")
    v = cp_version(cp)
    wait_for(lambda: on_version([d1, d2], v), what="DPs configured")

    stop_cp(cp)
    state["cps"].remove(cp)
    # Control plane gone: the data planes keep serving.
    assert proxied(d1, "/pay") == 200
    # A data plane restarted meanwhile serves its on-disk cache at once.
    assert not d2.stop()
    d2.start()
    wait_for(lambda: d2.ready(), what="restarted DP ready from its cache")
    assert proxied(d2, "/pay") == 200
    assert d2.config_version() == v

    # The control plane comes back on the same cluster port: both reconnect and follow.
    cp_back = start_cp_(cluster_port=cp.cluster_port)
    add_route(cp_back, upstream, "refund", "/refund")
    v2 = cp_version(cp_back)
    wait_for(lambda: on_version([d1, d2], v2), timeout=40, what="DPs follow after CP returns")
    assert proxied(d1, "/refund") == 200
    assert proxied(d2, "/refund") == 200


def test_two_cps_on_one_database(cluster, upstream):
    start_cp_, start_dp, _ = cluster
    cp_a = start_cp_()
    cp_b = start_cp_()
    d = start_dp(cp_b)
    add_route(cp_a, upstream, "ship", "/ship")
    v = cp_version(cp_a)
    wait_for(lambda: d.config_version() >= v, what="DP on CP B sees a write through CP A")
    assert proxied(d, "/ship") == 200
