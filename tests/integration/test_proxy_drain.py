"""SIGTERM: the listener stops accepting, in-flight requests finish, the process exits 0."""

import signal
import socket
import threading
import time

from dp_harness import DataPlane, config, http, prefix, route, service, upstream, write_snapshot  # noqa: F401


def test_graceful_sigterm(prefix, upstream):
    svc = service("s", "127.0.0.1", upstream.port)
    write_snapshot(prefix, config([svc], [route("r", svc, paths=["/"])]))
    dp = DataPlane(prefix)
    result = {}

    def slow():
        result["out"] = http(dp.port, b"GET /slow?ms=1500 HTTP/1.1\r\nHost: h\r\n\r\n", timeout=10)

    idle = socket.create_connection(("127.0.0.1", dp.port), timeout=5)  # an idle keepalive client
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    dp.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ready = http(dp.status_port, b"GET /status/ready HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ready.startswith(b"HTTP/1.1 503") and b"draining" in ready
    try:  # new connections are no longer served
        out = http(dp.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", timeout=1)
        assert not out.startswith(b"HTTP/1.1 200")
    except OSError:
        pass
    assert idle.recv(10) == b""  # the idle one was closed
    t.join()
    out = result["out"]
    assert out.startswith(b"HTTP/1.1 200 "), out[:100]
    assert b"Connection: close" in out
    assert dp.proc.wait(10) == 0
    dp.stop()
