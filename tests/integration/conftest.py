"""Fixtures shared by the integration tests: one private PostgreSQL per session, a fresh
database per test or module, bootstrapped databases, and control planes started per module.

A control plane's log is checked when it stops: any "[alert]" or sanitizer line fails the test
(or the module's last test, for module-scoped control planes)."""

import os

import pytest

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
