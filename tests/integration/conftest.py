"""Fixtures shared by the integration tests: one private PostgreSQL per session, a fresh
database per test or module, bootstrapped databases, and control planes started per module.

A control plane's log is checked when it stops: any "[alert]" or sanitizer line fails the test
(or the module's last test, for module-scoped control planes)."""

import os

import pytest

from cluster_harness import DataPlane, cluster_certs, cluster_env, dp_binary
from sluice_harness import ControlPlane, PgCluster, cp_binary, cp_env, run_cp


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def sluice_cp_bin():
    path = cp_binary()
    if not os.access(path, os.X_OK):
        pytest.fail("%s is missing: build it (make) or set SLUICE_BIN_DIR" % path)
    return path


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster()
    try:
        cluster.start()
    except Exception as e:  # noqa: BLE001 - show PostgreSQL's own words
        log = ""
        if os.path.exists(cluster.log):
            with open(cluster.log) as f:
                log = f.read()
        cluster.destroy()
        pytest.fail("could not start PostgreSQL: %s\n%s" % (getattr(e, "stderr", e), log))
    yield cluster
    cluster.destroy()


@pytest.fixture
def fresh_db(pg):
    """An empty database (no migrations) for one test."""
    return pg.create_database("fresh")


def bootstrap(pg, db):
    r = run_cp(["migrations", "bootstrap"], cp_env(pg, db))
    if r.returncode != 0:
        pytest.fail("sluice-cp migrations bootstrap failed (%d):\n%s" % (r.returncode, r.output))
    return db


@pytest.fixture
def bootstrapped_db(pg, sluice_cp_bin):
    """A fresh database on which `sluice-cp migrations bootstrap` ran."""
    return bootstrap(pg, pg.create_database("boot"))


@pytest.fixture(scope="module")
def module_bootstrapped_db(pg, sluice_cp_bin):
    return bootstrap(pg, pg.create_database("mod"))


def start_cp(pg, db, tmp_path_factory, **kw):
    cp = ControlPlane(pg, db, workdir=str(tmp_path_factory.mktemp("cp")), **kw)
    try:
        cp.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    return cp


def stop_cp(cp):
    problems = cp.stop()
    if problems:
        pytest.fail("sluice-cp log shows problems:\n" + "\n".join(problems[:50]) +
                    "\n--- full log: " + cp.log_path)


@pytest.fixture(scope="module")
def cp(pg, module_bootstrapped_db, tmp_path_factory):
    """One control plane per test module on its own bootstrapped database."""
    plane = start_cp(pg, module_bootstrapped_db, tmp_path_factory)
    yield plane
    stop_cp(plane)


@pytest.fixture
def control_plane_factory(pg, tmp_path_factory):
    """Starts extra control planes within one test (own settings); stops and checks them after."""
    started = []

    def make(db, **kw):
        plane = start_cp(pg, db, tmp_path_factory, **kw)
        started.append(plane)
        return plane

    yield make
    problems = []
    for plane in started:
        problems += plane.stop()
    if problems:
        pytest.fail("sluice-cp log shows problems:\n" + "\n".join(problems[:50]))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A cluster certificate and key from `sluice-cp certs generate` (shared mTLS mode)."""
    return cluster_certs(str(tmp_path_factory.mktemp("certs") / "cluster"))


@pytest.fixture
def cluster(pg, bootstrapped_db, tmp_path_factory, certs):
    """(cp, dp, state): cp(env=None, **kw) starts a control plane on the test's database with
    the cluster certificate; dp(control_plane, **kw) starts a data plane connected to it. All
    are stopped after the test, which fails on any bad line in their logs."""
    if not os.access(dp_binary(), os.X_OK):
        pytest.fail("%s is missing" % dp_binary())
    state = {"cps": [], "dps": []}

    def cp(env=None, **kw):
        c = start_cp(pg, bootstrapped_db, tmp_path_factory,
                     extra_env=cluster_env(*certs, env), **kw)
        state["cps"].append(c)
        return c

    def dp(control_plane, **kw):
        d = DataPlane(control_plane.cluster_port, *certs,
                      workdir=str(tmp_path_factory.mktemp("dp")), **kw)
        d.start()
        state["dps"].append(d)
        return d

    yield cp, dp, state
    problems = []
    for d in state["dps"]:
        problems += d.stop()
    for c in state["cps"]:
        stop_cp(c)
    assert not problems, "\n".join(problems[:50])
