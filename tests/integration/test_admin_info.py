"""GET / and GET /status: what a health check or an operator looks at first."""

import pytest

from admin_checks import expect
from sluice_harness import ControlPlane, PgCluster, cp_env, run_cp


def test_root_info(cp):
    info = expect(cp.get("/"), 200)
    assert info["version"].count(".") == 2
    assert isinstance(info["node_id"], str) and len(info["node_id"]) == 36
    assert info["hostname"]
    available = info["plugins"]["available_on_server"]
    for name in ("key-auth", "basic-auth", "acl", "rate-limiting"):
        assert name in available, "plugin %s not listed: %s" % (name, sorted(available))
    assert isinstance(info["plugins"]["enabled_in_cluster"], list)
    # The node id is stable for one node.
    assert expect(cp.get("/"), 200)["node_id"] == info["node_id"]


def test_enabled_in_cluster_follows_plugins(cp):
    expect(cp.post("/plugins", json={"name": "rate-limiting", "config": {"minute": 1}}), 201)
    assert "rate-limiting" in expect(cp.get("/"), 200)["plugins"]["enabled_in_cluster"]


def test_plugins_enabled_and_plugin_schemas(cp):
    enabled = expect(cp.get("/plugins/enabled"), 200)["enabled_plugins"]
    for name in ("key-auth", "basic-auth", "acl", "rate-limiting", "cors", "prometheus"):
        assert name in enabled
    # decK and scripts read a plugin's config fields with their defaults
    schema = expect(cp.get("/schemas/plugins/rate-limiting"), 200)
    config = schema["fields"][0]["config"]
    names = {list(f)[0]: list(f.values())[0] for f in config["fields"]}
    assert names["policy"]["default"] == "local"
    assert "minute" in names and names["limit_by"]["default"] == "consumer"
    body = expect(cp.get("/schemas/plugins/no-such-plugin"), 404)
    assert "no-such-plugin" in body["message"]
    # /plugins/{id} still reads plugin entities
    expect(cp.get("/plugins/00000000-0000-4000-8000-000000000000"), 404)


def test_status_reachable(cp):
    status = expect(cp.get("/status"), 200)
    assert status["database"]["reachable"] is True
    server = status["server"]
    assert server["total_requests"] >= 1 and server["connections_accepted"] >= 1
    assert server["connections_active"] >= 1


def test_health_command(cp):
    r = run_cp(["health"], cp.env, timeout=20)
    assert r.returncode == 0, r.output
    assert "healthy" in r.output


def test_status_when_database_goes_away(tmp_path):
    """A separate PostgreSQL: stopping the shared one would break every other test."""
    own = PgCluster().start()
    plane = None
    try:
        db = own.create_database("gone")
        r = run_cp(["migrations", "bootstrap"], cp_env(own, db))
        assert r.returncode == 0, r.output
        plane = ControlPlane(own, db, workdir=str(tmp_path)).start()
        assert expect(plane.get("/status"), 200)["database"]["reachable"] is True
        own.stop()
        status = expect(plane.get("/status", timeout=15), 200)
        assert status["database"]["reachable"] is False
        r = run_cp(["health"], plane.env, timeout=20)
        assert r.returncode != 0 and "database" in r.output, r.output
        # The Admin API keeps answering; requests that need the database fail cleanly.
        expect(plane.get("/", timeout=15), 200)
        r = plane.get("/services", timeout=15)
        assert r.status_code >= 500 and r.json()["message"]
    finally:
        problems = plane.stop() if plane else []
        own.destroy()
    if problems:
        pytest.fail("sluice-cp log shows problems:\n" + "\n".join(problems))
