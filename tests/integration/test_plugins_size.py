"""request-size-limiting through a real sluice-dp: Content-Length over the limit (413, or 417
with Expect: 100-continue), chunked bodies counted as they stream, require_content_length."""

import socket

import pytest

from dp_harness import (DataPlane, config, prefix, read_response, route, service,  # noqa: F401
                        upstream, write_snapshot)
from plugin_harness import plugin, request


@pytest.fixture
def dp(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    r_small = route("small", svc, paths=["/small"])
    r_req = route("req", svc, paths=["/req"])
    plugins = [plugin("request-size-limiting", "small", route=r_small, allowed_payload_size=10,
                      size_unit="kilobytes"),
               plugin("request-size-limiting", "req", route=r_req, require_content_length=True)]
    write_snapshot(prefix, config([svc], [r_small, r_req], plugins=plugins))
    d = DataPlane(prefix)
    yield d
    d.stop()


def test_content_length_limit(dp, upstream):
    assert request(dp.port, "POST", "/small", body=b"x" * 10240)[0] == 200
    before = upstream.request_count()
    st, _, body = request(dp.port, "POST", "/small", body=b"x" * 10241)
    assert (st, body) == (413, b'{"message":"Request size limit exceeded"}')
    assert upstream.request_count() == before


def test_expect_continue_gets_417(dp):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    s.sendall(b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n"
              b"Expect: 100-continue\r\n\r\n")
    st, _, body, _ = read_response(s)
    s.close()
    assert (st, body) == (417, b'{"message":"Request size limit exceeded"}')


def chunked(port, sizes):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    try:
        for n in sizes:
            s.sendall(b"%x\r\n" % n + b"y" * n + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # refused mid-body: the gateway may close before we finish
    st, _, body, _ = read_response(s)
    s.close()
    return st, body


def test_chunked_bodies_are_counted_as_they_stream(dp):
    assert chunked(dp.port, [4000, 4000, 2000])[0] == 200
    assert chunked(dp.port, [4000, 4000, 4000]) == (
        413, b'{"message":"Request size limit exceeded"}')


def test_require_content_length(dp):
    st, _, body = request(dp.port, "GET", "/req")
    assert (st, body) == (411, b'{"message":"A valid Content-Length header is required"}')
    assert request(dp.port, "POST", "/req", body=b"abc")[0] == 200
