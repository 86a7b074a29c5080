"""The data plane registry lives in PostgreSQL (migration 002, table clustering_data_planes):
with several control plane replicas on one database, every replica's GET
/clustering/data-planes lists every data plane, whichever replica it is connected to."""

import os
import time

from cluster_harness import wait_for


def planes(cp, **params):
    r = cp.get("/clustering/data-planes", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def by_id(body):
    return {p["id"]: p for p in body["data"]}


def node_id(dp):
    with open(os.path.join(dp.prefix, "node_id")) as f:
        return f.read().strip()


def test_every_replica_lists_every_data_plane(cluster, pg, bootstrapped_db):
    start_cp_, start_dp, state = cluster
    cp_a = start_cp_()
    cp_b = start_cp_()
    d_a = start_dp(cp_a)
    d_b = start_dp(cp_b)
    r = cp_a.post("/services", json={"name": "s", "url": "http://127.0.0.1:9"})
    assert r.status_code == 201, r.text
    version = cp_a.config_version()
    wait_for(lambda: d_a.config_version() >= version and d_b.config_version() >= version,
             what="both DPs configured")
    ids = {node_id(d_a), node_id(d_b)}
    # Writing the registry does not bump the config version (only entity tables do).
    assert cp_a.config_version() == version

    for cp in (cp_a, cp_b):
        wait_for(lambda: ids <= set(by_id(planes(cp))) and all(
            p["sync_status"] == "normal" and p["connected"] for p in planes(cp)["data"]),
            what="both DPs listed as connected and in sync by each CP")
        body = planes(cp)
        assert body["next"] is None
        h = d_a.config_hash()
        for p in body["data"]:
            assert p["config_hash"] == h and p["config_version"] == version, p
            assert p["ip"] == "127.0.0.1" and p["version"] and p["hostname"], p
            assert p["last_seen"] >= int(time.time()) - 60, p
        status = cp.get("/clustering/status")
        assert status.status_code == 200 and status.headers.get("Deprecation") == "true"
        assert set(status.json()) == ids

    # The rows are really in the database, owned by the replica each DP talks to.
    rows = pg.psql("SELECT id, cp_node_id FROM clustering_data_planes ORDER BY id",
                   db=bootstrapped_db)
    assert len(rows.splitlines()) == 2, rows
    assert cp_a.config_version() == version

    # Pagination: one per page, the second page named by "next".
    first = planes(cp_b, size=1)
    assert len(first["data"]) == 1 and first["next"], first
    second = cp_b.get(first["next"]).json()
    assert len(second["data"]) == 1 and second["next"] is None, second
    assert {first["data"][0]["id"], second["data"][0]["id"]} == ids
    assert cp_b.get("/clustering/data-planes", params={"offset": "nope"}).status_code == 400
    assert cp_b.get("/clustering/data-planes", params={"size": "0"}).status_code == 400

    # A DP whose CP connection closes stays listed, no longer connected, its last_seen frozen.
    gone = node_id(d_b)
    assert not d_b.stop()
    state["dps"].remove(d_b)
    wait_for(lambda: not by_id(planes(cp_a))[gone]["connected"],
             what="CP A sees the DP of CP B disconnected")
    seen = by_id(planes(cp_a))[gone]
    assert seen["sync_status"] == "normal", seen
    time.sleep(1.5)
    assert by_id(planes(cp_a))[gone]["last_seen"] == seen["last_seen"]
    assert by_id(planes(cp_a))[node_id(d_a)]["connected"]


def test_purge_delay_setting_is_bounded(sluice_cp_bin, pg, bootstrapped_db):
    from sluice_harness import cp_env, run_cp
    env = cp_env(pg, bootstrapped_db, extra={"SLUICE_CLUSTER_DATA_PLANE_PURGE_DELAY": "59"})
    r = run_cp(["serve"], env, timeout=30)
    assert r.returncode != 0
    assert "cluster_data_plane_purge_delay" in r.output, r.output


def test_rows_past_the_purge_delay_are_deleted(cluster, pg, bootstrapped_db):
    start_cp_, _, _ = cluster
    stale = "00000000-0000-4000-8000-000000000001"
    fresh = "00000000-0000-4000-8000-000000000002"
    pg.psql("INSERT INTO clustering_data_planes (id, hostname, ip, version, last_seen) VALUES "
            "('%s', 'old', '10.0.0.1', '0.1.0', now() - interval '61 seconds'), "
            "('%s', 'new', '10.0.0.2', '0.1.0', now())" % (stale, fresh), db=bootstrapped_db)
    start_cp_(env={"SLUICE_CLUSTER_DATA_PLANE_PURGE_DELAY": "60"})
    wait_for(lambda: pg.psql("SELECT count(*) FROM clustering_data_planes WHERE id = '%s'"
                             % stale, db=bootstrapped_db) == "0",
             what="the stale row purged", timeout=20)
    assert pg.psql("SELECT count(*) FROM clustering_data_planes WHERE id = '%s'" % fresh,
                   db=bootstrapped_db) == "1"
