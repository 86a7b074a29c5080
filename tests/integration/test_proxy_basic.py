"""Routing, upstream request headers, gateway responses, keepalive and pipelining through a real
sluice-dp and a real upstream."""

import json
import socket

import pytest

from dp_harness import (DataPlane, config, http, prefix, read_response, route, service,  # noqa: F401
                        upstream, write_snapshot)


@pytest.fixture
def dp(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port, path="/base")
    routes = [route("api", svc, paths=["/api"]),
              route("keep", svc, paths=["/keep"], strip_path=False, preserve_host=True),
              route("host", svc, hosts=["*.example.org"], paths=["/"]),
              route("rx", svc, paths=[r"~/items/\d+$"])]
    write_snapshot(prefix, config([svc], routes))
    d = DataPlane(prefix)
    yield d
    d.stop()


def get(dp, path, host="client.test", extra=b""):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + extra +
              b"\r\n")
    status, headers, body, _ = read_response(s)
    s.close()
    return status, headers, body


def test_routes_and_rewrites_the_request(dp, upstream):
    status, headers, body = get(dp, "/api/x/y?q=1", extra=b"X-Forwarded-For: 9.9.9.9\r\n"
                                b"Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nX-Keep: 2\r\n")
    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/base/x/y?q=1"  # strip_path: service path + remainder
    h = seen["headers"]
    assert h["host"] == ["127.0.0.1:%d" % upstream.port]
    assert h["x-forwarded-for"] == ["9.9.9.9, 127.0.0.1"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == ["client.test"]
    assert h["x-forwarded-port"] == [str(dp.port)]
    assert h["x-real-ip"] == ["127.0.0.1"]
    assert h["via"][0].startswith("1.1 sluice/")
    assert "x-drop" not in h and "connection" not in h
    assert h["x-keep"] == ["2"]
    assert h["x-sluice-request-id"] == [headers["x-sluice-request-id"]]
    assert "x-sluice-upstream-latency" in headers and "x-sluice-proxy-latency" in headers
    assert headers["via"].startswith("1.1 sluice/")


def test_preserve_host_and_no_strip(dp):
    status, _, body = get(dp, "/keep/a", host="kept.test:1234")
    seen = json.loads(body)
    assert status == 200
    assert seen["path"] == "/base/keep/a"
    assert seen["headers"]["host"] == ["kept.test:1234"]


def test_wildcard_host_and_regex_path(dp):
    assert json.loads(get(dp, "/z", host="a.example.org")[2])["path"] == "/base/z"
    status, _, body = get(dp, "/items/42")
    assert status == 200 and json.loads(body)["path"] == "/base"
    assert get(dp, "/items/x")[0] == 404


def test_no_route_is_kong_404(dp):
    status, headers, body = get(dp, "/nothing")
    assert status == 404
    assert json.loads(body) == {"message": "no Route matched with those values"}
    assert headers["content-type"].startswith("application/json")


def test_keepalive_and_pipelining_in_order(dp, upstream):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    reqs = b"".join(b"GET /api/echo?n=%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(20))
    s.sendall(reqs)
    rest = b""
    for i in range(20):
        status, _, body, rest = read_response(_Prefixed(s, rest))
        assert status == 200
        assert json.loads(body)["path"] == "/base/echo?n=%d" % i
    # the connection is still usable
    s.sendall(b"GET /api/again HTTP/1.1\r\nHost: h\r\n\r\n")
    status, _, body, _ = read_response(_Prefixed(s, rest))
    assert status == 200
    s.close()
    # and the upstream side was reused too: far fewer connections than requests
    assert upstream.connections <= 2


def test_chunked_request_and_response(dp, upstream):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    status, _, body, _ = read_response(s)
    assert status == 200 and json.loads(body)["body_length"] == 7
    s.sendall(b"GET /api/chunked HTTP/1.1\r\nHost: h\r\n\r\n")
    status, headers, body, _ = read_response(s)
    assert status == 200 and body == b"hello world"
    assert headers["transfer-encoding"] == "chunked"
    s.close()


def test_http10_client_gets_close_delimited_body(dp):
    out = http(dp.port, b"GET /api/chunked HTTP/1.0\r\nHost: h\r\n\r\n")
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 200")
    assert b"chunked" not in head.lower()
    assert body == b"hello world"


def test_expect_100_continue(dp):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    first = s.recv(100)
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"hello")
    status, _, body, _ = read_response(s)
    assert status == 200 and json.loads(body)["body_length"] == 5
    s.close()


def test_status_endpoints(dp):
    out = http(dp.status_port, b"GET /status/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200")
    get(dp, "/api/x")
    out = http(dp.status_port, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
    st = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert st["configuration_version"] == 1 and len(st["configuration_hash"]) == 64
    assert st["server"]["total_requests"] >= 1


def test_not_ready_without_config(prefix):
    d = DataPlane(prefix)
    try:
        out = http(d.status_port, b"GET /status/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503")
        assert json.loads(out.split(b"\r\n\r\n", 1)[1]) == {"message": "no configuration available"}
        assert http(d.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", read_all=False).startswith(
            b"HTTP/1.1 404")
    finally:
        d.stop()


class _Prefixed:
    """A socket whose first recv returns bytes already read."""

    def __init__(self, sock, data):
        self.sock, self.data = sock, data

    def recv(self, n):
        if self.data:
            d, self.data = self.data, b""
            return d
        return self.sock.recv(n)
