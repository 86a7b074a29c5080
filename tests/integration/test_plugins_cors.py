"""cors through a real sluice-dp: preflights answered by the gateway without reaching the
upstream, preflight_continue passing them on, simple requests getting the headers, and a
snapshot carrying an invalid cors config refused while the old config keeps serving."""

import json
import socket

import pytest

from dp_harness import (NOW, DataPlane, config, new_id, prefix, read_response, route,  # noqa: F401
                        service, upstream, write_snapshot)


def plugin(name, conf, route_=None):
    return {"id": new_id(), "name": name, "config": conf, "enabled": True,
            "protocols": ["http", "https"], "created_at": NOW, "updated_at": NOW,
            "route": {"id": route_["id"]} if route_ else None, "service": None, "consumer": None}


def call(dp, method, path, headers=()):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    head = "%s %s HTTP/1.1\r\nHost: api.test\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % h for h in headers)
    s.sendall(head.encode() + b"\r\n")
    status, hdrs, body, _ = read_response(s, method)
    s.close()
    return status, hdrs, body


@pytest.fixture
def dp(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    strict = route("strict", svc, paths=["/strict"])
    cont = route("cont", svc, paths=["/cont"])
    plugins = [
        plugin("cors", {"origins": ["https://app.example.com", r"https://.*\.partner\.test"],
                        "credentials": True, "max_age": 600, "exposed_headers": ["X-Total"]},
               strict),
        plugin("cors", {"origins": ["https://app.example.com"], "preflight_continue": True},
               cont),
    ]
    write_snapshot(prefix, config([svc], [strict, cont], plugins=plugins))
    d = DataPlane(prefix)
    yield d
    d.stop()


def test_preflight_answered_by_the_gateway(dp, upstream):
    before = upstream.request_count()
    status, h, body = call(dp, "OPTIONS", "/strict/items", [
        ("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "DELETE"),
        ("Access-Control-Request-Headers", "X-Token")])
    assert status == 200
    assert body == b""
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-allow-methods"] == \
        "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
    assert h["access-control-allow-headers"] == "X-Token"
    assert h["access-control-max-age"] == "600"
    assert h["access-control-allow-credentials"] == "true"
    assert h["vary"] == "Origin"
    assert upstream.request_count() == before  # never reached the upstream


def test_preflight_from_a_regex_origin_and_a_stranger(dp):
    status, h, _ = call(dp, "OPTIONS", "/strict", [
        ("Origin", "https://shop.partner.test"), ("Access-Control-Request-Method", "GET")])
    assert status == 200
    assert h["access-control-allow-origin"] == "https://shop.partner.test"
    status, h, _ = call(dp, "OPTIONS", "/strict", [
        ("Origin", "https://shop.partner.test.evil.net"), ("Access-Control-Request-Method", "GET")])
    assert status == 200
    assert "access-control-allow-origin" not in h  # the browser refuses the real request


def test_simple_request_gets_the_headers(dp):
    status, h, body = call(dp, "GET", "/strict/echo", [("Origin", "https://app.example.com")])
    assert status == 200
    assert json.loads(body)["method"] == "GET"  # proxied
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-expose-headers"] == "X-Total"
    assert h["access-control-allow-credentials"] == "true"
    assert h["vary"] == "Origin"
    assert "access-control-allow-methods" not in h


def test_preflight_continue_reaches_the_upstream(dp, upstream):
    before = upstream.request_count()
    status, h, body = call(dp, "OPTIONS", "/cont/x", [
        ("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "GET")])
    assert status == 200
    assert json.loads(body)["method"] == "OPTIONS"
    assert upstream.request_count() == before + 1
    assert "access-control-allow-origin" not in h


def test_invalid_cors_config_is_refused(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    r = route("r", svc, paths=["/"])
    write_snapshot(prefix, config([svc], [r], plugins=[
        plugin("cors", {"origins": ["https://(unclosed"]}, r)]))
    d = DataPlane(prefix)
    try:
        status, _, _ = call(d, "GET", "/")
        assert status == 404  # no configuration was loaded
        assert "origins" in d.read_log()
    finally:
        d.stop()
