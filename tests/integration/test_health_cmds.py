"""`sluice-cp health` and `sluice-dp health` (issue 7): exit 0 when the local node is up and
healthy, otherwise non-zero with a one-line reason, as scripts and container health checks use
them."""

import os
import subprocess
import time

import pytest

from cluster_harness import dp_binary, wait_for
from conftest import bootstrap, start_cp, stop_cp
from sluice_harness import PgCluster, base_env, closed_port, cp_env, log_problems, run_cp
from test_dbless import DblessDP


def one_line(r):
    assert not log_problems(r.output), r.output
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert len(lines) == 1, r.output
    return lines[0]


def cp_health(env):
    return run_cp(["health"], env, timeout=30)


def dp_health(status_port):
    env = base_env()
    env["SLUICE_STATUS_LISTEN"] = "127.0.0.1:%d" % status_port
    r = subprocess.run([dp_binary(), "health"], env=env, capture_output=True, text=True,
                       timeout=30)
    r.output = r.stdout + r.stderr
    return r


# ------------------------------------------------------------------ sluice-cp health

def test_cp_healthy(pg, module_bootstrapped_db, tmp_path_factory, sluice_cp_bin):
    cp = start_cp(pg, module_bootstrapped_db, tmp_path_factory)
    try:
        r = cp_health(cp.env)
        assert r.returncode == 0, r.output
        line = one_line(r)
        assert "healthy" in line and str(cp.admin_port) in line, line
    finally:
        stop_cp(cp)


def test_cp_not_running(pg, sluice_cp_bin):
    env = cp_env(pg, "nodb", admin_port=closed_port())
    r = cp_health(env)
    assert r.returncode != 0
    line = one_line(r)
    assert "not running" in line, line


def test_cp_with_admin_token(pg, module_bootstrapped_db, tmp_path_factory, sluice_cp_bin):
    """health uses the node's own admin_token, so it works where the Admin API needs one."""
    cp = start_cp(pg, module_bootstrapped_db, tmp_path_factory, token="s3cret-token")
    try:
        r = cp_health(cp.env)
        assert r.returncode == 0, r.output
        wrong = dict(cp.env, SLUICE_ADMIN_TOKEN="not-the-token")
        r = cp_health(wrong)
        assert r.returncode != 0
        assert "401" in one_line(r) and "admin_token" in one_line(r), r.output
    finally:
        stop_cp(cp)


def test_cp_running_with_its_database_stopped(tmp_path_factory, sluice_cp_bin):
    """A PostgreSQL of its own, stopped under a running control plane: health says the
    database is the problem (and says healthy again once it is back)."""
    own = PgCluster()
    own.start()
    cp = None
    try:
        db = bootstrap(own, own.create_database("health"))
        cp = start_cp(own, db, tmp_path_factory)
        assert cp_health(cp.env).returncode == 0
        own.stop()
        r = cp_health(cp.env)
        assert r.returncode != 0
        line = one_line(r)
        assert "database" in line, line
        assert cp.proc.poll() is None  # the control plane itself stays up
        own._run_pg(["pg_ctl", "-D", own.data, "-l", own.log, "-o",
                     "-c listen_addresses=127.0.0.1 -p %d -k %s" % (own.port, own.dir),
                     "-w", "-t", "60", "start"])
        own.running = True
        wait_for(lambda: cp_health(cp.env).returncode == 0, timeout=30,
                 what="health back to 0 once the database is up")
    finally:
        if cp:
            stop_cp(cp)
        own.destroy()


# ------------------------------------------------------------------ sluice-dp health

KONG = """_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9
  routes:
  - name: r
    paths: [/r]
"""


@pytest.fixture
def started(tmp_path):
    dps = []
    yield dps
    problems = []
    for d in dps:
        problems += d.stop()
    assert not problems, "\n".join(problems[:50])


def test_dp_healthy_with_a_config(tmp_path, started):
    conf = str(tmp_path / "kong.yml")
    with open(conf, "w") as f:
        f.write(KONG)
    dp = DblessDP(tmp_path / "dp", conf)
    started.append(dp)
    dp.start()
    r = dp_health(dp.status_port)
    assert r.returncode == 0, r.output
    assert "healthy" in one_line(r) and "ready" in one_line(r)


def test_dp_without_config_is_not_ready(tmp_path, started):
    """A data plane with no cached config and an unreachable control plane is up but not
    ready: health fails and says why."""
    dp = DblessDP(tmp_path / "dp", "unused")
    dp.env.pop("SLUICE_DECLARATIVE_CONFIG")
    started.append(dp)
    dp.launch()
    wait_for(lambda: dp.status()["configuration_hash"] == "", what="status listener up")
    r = dp_health(dp.status_port)
    assert r.returncode != 0
    line = one_line(r)
    assert "not ready" in line and "no configuration" in line, line


def test_dp_not_running(sluice_cp_bin):
    r = dp_health(closed_port())
    assert r.returncode != 0
    line = one_line(r)
    assert "not running" in line and "refused" in line, line


def test_dp_draining_is_not_ready(tmp_path, started):
    """During the drain after SIGTERM a data plane is no longer ready (load balancers stop
    sending to it): health fails naming the drain."""
    import socket
    # An upstream that accepts (the kernel's backlog) but never answers keeps one request in
    # flight, so the drain lasts until drain_timeout whatever the machine's speed.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    conf = str(tmp_path / "kong.yml")
    with open(conf, "w") as f:
        f.write(KONG.replace("http://127.0.0.1:9", "http://127.0.0.1:%d" % silent.getsockname()[1]))
    dp = DblessDP(tmp_path / "dp", conf)
    dp.env["SLUICE_DRAIN_TIMEOUT"] = "5"
    started.append(dp)
    dp.start()
    s = socket.create_connection(("127.0.0.1", dp.proxy_port))
    s.sendall(b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        wait_for(lambda: dp_health(dp.status_port).returncode == 0, what="DP ready")
        time.sleep(0.2)  # the request reaches the silent upstream
        dp.proc.terminate()
        r = wait_for(lambda: (lambda x: x if x.returncode != 0 else None)(
            dp_health(dp.status_port)), what="health failing during the drain")
        assert "not ready: draining" in one_line(r), r.output
    finally:
        s.close()
        silent.close()
    dp.proc.wait(timeout=40)
    assert os.path.exists(conf)
