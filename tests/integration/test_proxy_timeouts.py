"""Client-side timeouts (client_header_timeout, client_body_timeout, keepalive_timeout), the
service's connect_timeout and write_timeout, the `headers` switch, and a request body that turns
out malformed after its head went upstream. Settings are in seconds, so the client timeouts use
1 s and the assertions allow for a loaded machine."""

import json
import socket
import threading
import time

import pytest

from dp_harness import (DataPlane, config, free_port, http, prefix, read_response, route,  # noqa: F401
                        service, upstream, write_snapshot)

FAST = {"SLUICE_CLIENT_HEADER_TIMEOUT": "1", "SLUICE_CLIENT_BODY_TIMEOUT": "1",
        "SLUICE_KEEPALIVE_TIMEOUT": "1"}


def start(prefix, svc, env=None):
    write_snapshot(prefix, config([svc], [route("r", svc, paths=["/"])]))
    return DataPlane(prefix, extra_env=env)


def wait_closed(sock, limit=8):
    """Reads until the peer closes; returns (bytes, seconds it took)."""
    t = time.time()
    out = b""
    sock.settimeout(limit)
    while True:
        d = sock.recv(65536)
        if not d:
            return out, time.time() - t
        out += d


def body(out):
    return json.loads(out.split(b"\r\n\r\n", 1)[1])


@pytest.fixture
def fast_dp(prefix, upstream):
    d = start(prefix, service("s", "127.0.0.1", upstream.port), FAST)
    yield d
    d.stop()


def test_unfinished_head_is_closed_after_client_header_timeout(fast_dp):
    s = socket.create_connection(("127.0.0.1", fast_dp.port), timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Slow: ")  # never finished
    out, took = wait_closed(s)
    assert 0.8 <= took < 4, took
    assert out == b"" or out.startswith(b"HTTP/1.1 408 "), out[:80]


def test_stalled_body_gets_408_after_client_body_timeout(fast_dp, upstream):
    s = socket.create_connection(("127.0.0.1", fast_dp.port), timeout=10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    out, took = wait_closed(s)
    assert 0.8 <= took < 4, took
    assert out.startswith(b"HTTP/1.1 408 "), out[:80]
    assert upstream.request_count() == 0  # the upstream never got a whole request


def test_idle_keepalive_client_is_closed_after_keepalive_timeout(fast_dp):
    s = socket.create_connection(("127.0.0.1", fast_dp.port), timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
    status, _, _, rest = read_response(s)
    assert status == 200 and rest == b""
    out, took = wait_closed(s)  # idle from now on
    assert out == b""
    assert 0.8 <= took < 4, took


def test_keepalive_timeout_zero_closes_after_each_response(prefix, upstream):
    dp = start(prefix, service("s", "127.0.0.1", upstream.port), {"SLUICE_KEEPALIVE_TIMEOUT": "0"})
    try:
        s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
        out, took = wait_closed(s, 5)
        assert out.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in out
        assert took < 2
    finally:
        dp.stop()


def blackhole():
    """A loopback listener that never accepts, its backlog already full: connecting to it hangs
    in SYN-SENT (Linux drops SYNs for a full accept queue) instead of being refused."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fillers = []
    for _ in range(4):  # backlog 0 still admits one; extra ones fill the SYN side
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(srv.getsockname())
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.2)
    return srv, fillers


def test_connect_timeout_is_504(prefix):
    srv, fillers = blackhole()
    svc = service("bh", "127.0.0.1", srv.getsockname()[1], connect_timeout=500, retries=0)
    dp = start(prefix, svc)
    try:
        t = time.time()
        out = http(dp.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", timeout=10)
        took = time.time() - t
        assert out.startswith(b"HTTP/1.1 504 "), out[:100]
        assert body(out) == {"message": "The upstream server is timing out"}
        assert 0.4 <= took < 3, took
    finally:
        dp.stop()
        for c in fillers:
            c.close()
        srv.close()


def test_write_timeout_is_504(prefix):
    """An upstream that accepts but never reads: once the socket buffers are full the request
    body makes no progress, and write_timeout answers 504."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                held.append(c)
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    svc = service("nr", "127.0.0.1", srv.getsockname()[1], write_timeout=500, read_timeout=60000)
    dp = start(prefix, svc)
    try:
        total = 64 * 1024 * 1024
        s = socket.create_connection(("127.0.0.1", dp.port), timeout=10)
        s.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % total)
        t = time.time()
        s.setblocking(False)
        chunk = b"x" * 65536
        out = b""
        sent = 0
        while time.time() - t < 8 and sent < total:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
            try:
                d = s.recv(65536)
                if d:
                    out += d
                    break
            except BlockingIOError:
                pass
        s.setblocking(True)
        s.settimeout(8)
        try:
            while b"\r\n\r\n" not in out:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except OSError:
            pass
        assert sent < total, "the upstream read everything?"
        assert out.startswith(b"HTTP/1.1 504 "), out[:100]
        assert time.time() - t < 6
    finally:
        stop.set()
        dp.stop()
        for c in held:
            c.close()
        srv.close()


def test_headers_off_removes_our_headers(prefix, upstream):
    dp = start(prefix, service("s", "127.0.0.1", upstream.port), {"SLUICE_HEADERS": "off"})
    try:
        s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, b, _ = read_response(s)
        assert status == 200
        for h in ("via", "x-sluice-upstream-latency", "x-sluice-proxy-latency",
                  "x-sluice-request-id"):
            assert h not in headers, h
        seen = json.loads(b)["headers"]
        assert "via" not in seen and "x-sluice-request-id" not in seen
        assert seen["x-forwarded-for"] == ["127.0.0.1"]  # forwarding headers stay
        s.sendall(b"GET /nothing-routes-here HTTP/1.1\r\nHost: h\r\n\r\n")
        out = s.recv(65536)
        assert b"X-Sluice-Response-Latency" not in out and b"X-Sluice-Request-Id" not in out
        assert "server" not in headers
        # A response the gateway writes itself (400 for a duplicate Host) has no Server either.
        s2 = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
        s2.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        own = s2.recv(65536)
        s2.close()
        assert own.startswith(b"HTTP/1.1 400") and b"\r\nServer:" not in own, own
    finally:
        dp.stop()


def test_headers_each_switchable(prefix, upstream):
    dp = start(prefix, service("s", "127.0.0.1", upstream.port),
               {"SLUICE_HEADERS": "latency_tokens"})
    try:
        s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, _, _ = read_response(s)
        assert status == 200
        assert "x-sluice-upstream-latency" in headers and "x-sluice-proxy-latency" in headers
        assert "via" not in headers and "x-sluice-request-id" not in headers
    finally:
        dp.stop()


def test_bad_headers_value_refused_at_start(prefix):
    write_snapshot(prefix, config([], []))
    with pytest.raises(RuntimeError) as e:
        DataPlane(prefix, extra_env={"SLUICE_HEADERS": "server_tokens, bogus"})
    assert "headers" in str(e.value) and "bogus" in str(e.value)


def test_malformed_chunk_after_head_went_upstream(prefix, upstream):
    """The head (and a good first chunk) is forwarded before the bad chunk size arrives: the
    client gets 400 and the upstream connection is closed, never pooled."""
    dp = start(prefix, service("s", "127.0.0.1", upstream.port))
    try:
        s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n")
        deadline = time.time() + 5
        while upstream.connections == 0 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        assert b"hello" in bytes(upstream.raw)  # already upstream
        s.sendall(b"zz\r\nbad\r\n")
        out, _ = wait_closed(s, 5)
        assert out.startswith(b"HTTP/1.1 400 "), out[:100]
        assert upstream.request_count() == 0  # the upstream saw its connection end mid-body
        # the next request cannot be served on that upstream connection
        out = http(dp.port, b"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 ")
        assert upstream.connections == 2
    finally:
        dp.stop()


def test_malformed_chunk_after_response_started_closes(prefix):
    """The upstream answers before reading the body; a bad chunk then can only end the client
    connection (its response is already under way) and the upstream one."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    got = {}

    def origin():
        c, _ = srv.accept()
        buf = b""
        while b"hello" not in buf:
            buf += c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        c.settimeout(5)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    got["closed"] = True
                    return
        except OSError:
            got["closed"] = False

    t = threading.Thread(target=origin, daemon=True)
    t.start()
    dp = start(prefix, service("o", "127.0.0.1", srv.getsockname()[1]))
    try:
        s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
        s.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n")
        out = b""
        while b"abc" not in out:
            out += s.recv(65536)
        assert out.startswith(b"HTTP/1.1 200 ")
        s.sendall(b"zz\r\n")
        rest, _ = wait_closed(s, 5)
        assert b"HTTP/1.1 400" not in rest  # nothing after the started response
        t.join(6)
        assert got.get("closed") is True
    finally:
        dp.stop()
        srv.close()
