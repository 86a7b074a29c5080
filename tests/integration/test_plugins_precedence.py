"""Config precedence through a real sluice-dp (one plugin configured at several levels; the
most specific wins, consumer-scoped configs apply after authentication), enabled=false, and
invalid plugin configs refused by the real control plane's Admin API."""

import pytest

from admin_checks import expect
from dp_harness import DataPlane, config, prefix, route, service, upstream, write_snapshot  # noqa: F401
from plugin_harness import consumer, keyauth, plugin, request

alice = consumer("alice")
bob = consumer("bob")


@pytest.fixture
def dp(upstream, prefix):
    s1 = service("s1", "127.0.0.1", upstream.port)
    s2 = service("s2", "127.0.0.1", upstream.port)
    r1 = route("r1", s1, paths=["/r1"])
    r2 = route("r2", s1, paths=["/r2"])
    r3 = route("r3", s2, paths=["/r3"])
    r4 = route("r4", s1, paths=["/r4"])
    r5 = route("r5", s1, paths=["/r5"])
    plugins = [
        plugin("key-auth", "global"),
        plugin("rate-limiting", "global", hour=100),
        plugin("rate-limiting", "service", service=s1, hour=200),
        plugin("rate-limiting", "route", route=r1, hour=300),
        plugin("rate-limiting", "consumer", consumer=alice, hour=400),
        plugin("rate-limiting", "route-consumer", route=r1, consumer=alice, hour=500),
        plugin("rate-limiting", "route-service", route=r4, service=s1, hour=600),
        plugin("rate-limiting", "disabled", route=r5, hour=700, enabled=False),
    ]
    write_snapshot(prefix, config([s1, s2], [r1, r2, r3, r4, r5], plugins=plugins,
                                  consumers=[alice, bob],
                                  keyauth_credentials=[keyauth(alice, "ka"), keyauth(bob, "kb")]))
    d = DataPlane(prefix)
    yield d
    d.stop()


@pytest.mark.parametrize("path,key,limit", [
    ("/r1", "ka", "500"),  # route+consumer > route > service > global
    ("/r1", "kb", "300"),  # route
    ("/r2", "kb", "200"),  # service
    ("/r2", "ka", "400"),  # consumer > service
    ("/r3", "kb", "100"),  # global
    ("/r3", "ka", "400"),  # consumer > global
    ("/r4", "ka", "600"),  # route+service > consumer
    ("/r5", "kb", "200"),  # the route's config is disabled: the service's applies
])
def test_most_specific_config_wins(dp, path, key, limit):
    st, h, _ = request(dp.port, "GET", path, {"apikey": key})
    assert st == 200
    assert h["x-ratelimit-limit-hour"] == limit


def test_unauthenticated_requests_stop_at_auth(dp):
    st, h, _ = request(dp.port, "GET", "/r1")
    assert st == 401 and "x-ratelimit-limit-hour" not in h


# ---------------------------------------------------------------- the Admin API refuses


def test_admin_api_refuses_invalid_plugin_configs(cp):
    body = expect(cp.post("/plugins", json={"name": "rate-limiting", "config": {}}), 400)
    assert body["code"] == 2 and body["name"] == "schema violation"
    body = expect(cp.post("/plugins", json={"name": "ip-restriction",
                                            "config": {"allow": ["not-an-ip"]}}), 400)
    assert "allow" in body["fields"]["config"]
    body = expect(cp.post("/plugins", json={"name": "acl",
                                            "config": {"allow": ["a"], "deny": ["b"]}}), 400)
    assert body["code"] == 2
    body = expect(cp.post("/plugins", json={"name": "rate-limiting",
                                            "config": {"minute": 1, "limit_by": "planet"}}), 400)
    assert "limit_by" in body["fields"]["config"]
    body = expect(cp.post("/plugins", json={"name": "no-such-plugin"}), 400)
    assert "name" in body["fields"]
    c = expect(cp.post("/consumers", json={"username": "precedence-user"}), 201)
    body = expect(cp.post("/plugins", json={"name": "key-auth", "consumer": {"id": c["id"]}}),
                  400)
    assert body["fields"]["consumer"] == "value must be null"
    # and a valid one is accepted with Kong's defaults filled
    ok = expect(cp.post("/plugins", json={"name": "rate-limiting", "config": {"minute": 5}}), 201)
    assert ok["config"]["limit_by"] == "consumer" and ok["config"]["policy"] == "local"
