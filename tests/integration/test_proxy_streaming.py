"""Bodies stream through in bounded memory: a 20 MB upload and a 300 MB download leave the data
plane's peak RSS far below the body sizes; an upgrade is tunnelled after the 101."""

import json
import socket
import time

import pytest

from dp_harness import DataPlane, config, prefix, read_response, route, service, upstream, write_snapshot  # noqa: F401

RSS_LIMIT_KB = 64 * 1024  # bodies are 20 MB and 300 MB


@pytest.fixture
def dp(upstream, prefix):
    svc = service("s", "127.0.0.1", upstream.port)
    write_snapshot(prefix, config([svc], [route("r", svc, paths=["/"])]))
    d = DataPlane(prefix)
    yield d
    d.stop()


def test_upload_20mb_content_length_and_chunked(dp):
    size = 20 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=30)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % size)
    block = b"u" * 65536
    for _ in range(size // len(block)):
        s.sendall(block)
    status, _, body, _ = read_response(s)
    assert status == 200 and json.loads(body)["body_length"] == size
    # the same size chunked, on the same connection
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(size // len(block)):
        s.sendall(b"10000\r\n" + block + b"\r\n")
    s.sendall(b"0\r\n\r\n")
    status, _, body, _ = read_response(s)
    assert status == 200 and json.loads(body)["body_length"] == size
    s.close()
    assert dp.peak_rss_kb() < RSS_LIMIT_KB


def test_download_300mb(dp):
    size = 300 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=30)
    s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: h\r\n\r\n" % size)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: %d" % size in head
    got = len(rest)
    while got < size:
        d = s.recv(1 << 20)
        assert d, "connection closed after %d bytes" % got
        got += len(d)
        if got < 64 << 20:
            time.sleep(0.0005)  # a slow reader at first: the proxy must not buffer for it
    assert got == size
    s.close()
    assert dp.peak_rss_kb() < RSS_LIMIT_KB


def test_upgrade_tunnel(dp):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    status, headers, _, rest = read_response(s)
    assert status == 101
    assert headers["upgrade"] == "websocket" and headers["connection"].lower() == "upgrade"
    for msg in (b"hello", b"x" * 100000):
        s.sendall(msg)
        got = rest
        rest = b""
        while len(got) < len(msg):
            got += s.recv(65536)
        assert got == msg.upper()
    s.close()
