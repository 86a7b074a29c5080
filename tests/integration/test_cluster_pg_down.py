"""PostgreSQL away (issue 3): data planes stay connected and keep serving their config, a data
plane that connects meanwhile gets the last snapshot the control plane built, and once
PostgreSQL is back new writes reach every data plane again. Runs on its own PostgreSQL, since
stopping the shared one would break every other test."""

import os

import pytest
import requests

from cluster_harness import DataPlane, EchoUpstream, cluster_certs, cluster_env, dp_binary, wait_for
from sluice_harness import ControlPlane, PgCluster, cp_env, run_cp


def restart(pg):
    """Starts a stopped PgCluster again on the same data folder and port."""
    opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300" % (pg.port, pg.dir))
    pg._run_pg(["pg_ctl", "-D", pg.data, "-l", pg.log, "-o", opts, "-w", "-t", "60", "start"])
    pg.running = True


def proxied(dp, path):
    try:
        return requests.get(dp.proxy_url + path, timeout=5).status_code
    except requests.RequestException:
        return None


def connected(dp):
    return dp.status()["control_plane"]["connected"]


def test_dps_keep_config_while_postgres_is_down(tmp_path):
    if not os.access(dp_binary(), os.X_OK):
        pytest.fail("%s is missing" % dp_binary())
    own = PgCluster().start()
    upstream = EchoUpstream("pgdown")
    cp, dps, problems = None, [], []
    try:
        db = own.create_database("pgdown")
        r = run_cp(["migrations", "bootstrap"], cp_env(own, db))
        assert r.returncode == 0, r.output
        certs = cluster_certs(str(tmp_path / "certs"))
        cp = ControlPlane(own, db, workdir=str(tmp_path / "cp"),
                          extra_env=cluster_env(*certs)).start()

        def dp():
            d = DataPlane(cp.cluster_port, *certs, workdir=str(tmp_path / ("dp%d" % len(dps))))
            dps.append(d)
            return d.start()

        d1 = dp()
        assert cp.post("/services", json={"name": "a", "url": upstream.url}).status_code == 201
        assert cp.post("/services/a/routes", json={"paths": ["/a"]}).status_code == 201
        v1 = cp.config_version()
        wait_for(lambda: d1.config_version() >= v1, what="DP 1 configured")
        h1 = d1.config_hash()

        # The cluster runs with synchronous_commit off and stops with -m immediate: flush, or
        # the restart would forget the last commits and reuse their version numbers.
        own.psql("CHECKPOINT")
        own.stop()
        r = cp.post("/services", json={"name": "b", "url": upstream.url}, timeout=20)
        assert r.status_code >= 500, r.text
        # The data plane stays connected and serves what it had.
        assert connected(d1) and proxied(d1, "/a") == 200
        # A data plane joining now gets the last snapshot the control plane built.
        d2 = dp()
        wait_for(lambda: d2.config_version() == v1 and d2.config_hash() == h1,
                 what="new DP gets the last snapshot while PostgreSQL is down")
        assert proxied(d2, "/a") == 200
        # The Admin API still shows this node's data planes (its live view).
        listed = cp.get("/clustering/data-planes", timeout=20).json()["data"]
        assert len(listed) == 2, listed
        assert connected(d1) and connected(d2)

        restart(own)

        def write():
            try:
                r = cp.post("/services", json={"name": "b", "url": upstream.url}, timeout=10)
            except requests.RequestException:
                return False
            return r.status_code == 201
        wait_for(write, timeout=30, interval=0.5, what="the Admin API writes again")
        assert cp.post("/services/b/routes", json={"paths": ["/b"]}).status_code == 201
        v2 = cp.config_version()
        wait_for(lambda: all(d.config_version() >= v2 for d in dps), timeout=30,
                 what="both DPs follow writes made after PostgreSQL returned")
        for d in dps:
            assert proxied(d, "/b") == 200 and proxied(d, "/a") == 200, (
                v2, d.status(), cp.log()[-3000:], d.log()[-2000:])
        # The registry reached the database too once it was back.
        wait_for(lambda: own.psql("SELECT count(*) FROM clustering_data_planes WHERE connected",
                                  db=db) == "2", what="both DPs recorded in PostgreSQL")
    finally:
        for d in dps:
            problems += d.stop()
        if cp:
            problems += cp.stop()
        upstream.close()
        own.destroy()
    assert not problems, "\n".join(problems[:50])
