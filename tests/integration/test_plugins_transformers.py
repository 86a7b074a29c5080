"""request-transformer and response-transformer through a real sluice-dp and upstream: what
the upstream receives (headers, query string, path), what the client receives (headers, a
rewritten JSON body re-framed as chunked), bodies left alone, and invalid configs refused."""

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
    req = route("req", svc, paths=["/req"])
    resp = route("resp", svc, paths=["/resp"])
    plugins = [
        plugin("request-transformer", {
            "remove": {"headers": ["x-internal"], "querystring": ["debug"]},
            "rename": {"headers": ["x-user:x-account"], "querystring": ["q:search"]},
            "replace": {"headers": ["x-version:2"], "uri": "/v2/echo"},
            "add": {"headers": ["x-added:yes", "x-version:9"], "querystring": ["lang:en"]},
            "append": {"headers": ["x-multi:second"]}}, req),
        plugin("response-transformer", {
            "remove": {"json": ["headers"], "headers": ["x-remove-me"]},
            "rename": {"json": ["method:verb"]},
            "add": {"json": ["gateway:sluice", "ok:true"], "json_types": ["string", "boolean"],
                    "headers": ["x-transformed:1"]},
            "replace": {"json": ["body_length:-1"], "json_types": ["number"]}}, resp),
    ]
    write_snapshot(prefix, config([svc], [req, resp], plugins=plugins))
    d = DataPlane(prefix)
    yield d
    d.stop()


def test_request_is_transformed_before_the_upstream(dp):
    status, _, body = call(dp, "GET", "/req/anything?q=boots&debug=1&page=2", [
        ("X-Internal", "secret"), ("X-User", "u-42"), ("X-Version", "1"), ("X-Multi", "first")])
    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/v2/echo?search=boots&page=2&lang=en"
    h = seen["headers"]
    assert "x-internal" not in h
    assert "x-user" not in h and h["x-account"] == ["u-42"]
    assert h["x-version"] == ["2"]  # replaced; add leaves a present header alone
    assert h["x-added"] == ["yes"]
    assert h["x-multi"] == ["first", "second"]


def test_json_response_is_rewritten(dp):
    status, h, body = call(dp, "GET", "/resp/echo")
    assert status == 200
    assert "content-length" not in h and h["transfer-encoding"] == "chunked"
    assert h["x-transformed"] == "1"
    doc = json.loads(body)
    assert doc == {"verb": "GET", "path": "/echo", "body_length": -1, "gateway": "sluice",
                   "ok": True}


def test_non_json_and_head_responses_pass_unchanged(dp):
    status, h, body = call(dp, "GET", "/resp/chunked")  # text body, no Content-Type
    assert status == 200 and body == b"hello world"
    assert h["x-transformed"] == "1"  # headers still apply
    status, h, body = call(dp, "GET", "/resp/big?n=300000")  # octet-stream
    assert status == 200 and len(body) == 300000 and h["content-length"] == "300000"
    status, h, body = call(dp, "HEAD", "/resp/echo")
    assert status == 200 and body == b""


def test_keepalive_after_a_rewritten_body(dp):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    for _ in range(3):  # the chunked framing ends cleanly: the connection carries on
        s.sendall(b"GET /resp/echo HTTP/1.1\r\nHost: api.test\r\n\r\n")
        status, _, body, rest = read_response(s)
        assert status == 200 and json.loads(body)["gateway"] == "sluice" and rest == b""
    s.close()


def test_invalid_transformer_configs_are_refused(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    r = route("r", svc, paths=["/"])
    for conf in ({"add": {"headers": ["no-colon-here"]}},
                 {"rename": {"headers": ["x-a:bad name"]}}):
        write_snapshot(prefix, config([svc], [r], plugins=[
            plugin("request-transformer", conf, r)]))
        d = DataPlane(prefix)
        try:
            status, _, _ = call(d, "GET", "/")
            assert status == 404  # nothing loaded
            assert "headers" in d.read_log()
        finally:
            d.stop()
