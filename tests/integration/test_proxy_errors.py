"""Gateway answers with Kong's texts: 502 on connect failure or a bad response, 503 when no
target or no name, 504 after the service's read timeout; weighted round-robin over targets."""

import json
import time

import pytest

from dp_harness import (NOW, DataPlane, Upstream, config, free_port, http, new_id, prefix,  # noqa: F401
                        route, service, upstream, write_snapshot)


def body(out):
    return json.loads(out.split(b"\r\n\r\n", 1)[1])


def start(prefix, services, routes, **more):
    write_snapshot(prefix, config(services, routes, **more))
    return DataPlane(prefix)


def test_502_connect_refused(prefix):
    svc = service("dead", "127.0.0.1", free_port(), retries=1)
    dp = start(prefix, [svc], [route("r", svc, paths=["/"])])
    try:
        out = http(dp.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 502 ")
        assert body(out) == {"message": "An invalid response was received from the upstream server"}
    finally:
        dp.stop()


def test_502_garbage_response(prefix, upstream):
    svc = service("s", "127.0.0.1", upstream.port)
    dp = start(prefix, [svc], [route("r", svc, paths=["/"])])
    try:
        out = http(dp.port, b"GET /garbage HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 502 ")
    finally:
        dp.stop()


def test_504_read_timeout(prefix, upstream):
    svc = service("s", "127.0.0.1", upstream.port, read_timeout=300)
    dp = start(prefix, [svc], [route("r", svc, paths=["/"])])
    try:
        t = time.time()
        out = http(dp.port, b"GET /slow?ms=3000 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        elapsed = time.time() - t
        assert out.startswith(b"HTTP/1.1 504 ")
        assert body(out) == {"message": "The upstream server is timing out"}
        assert 0.25 <= elapsed < 2.5
        # a fast request on the same service still works
        assert http(dp.port, b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").startswith(
            b"HTTP/1.1 200 ")
    finally:
        dp.stop()


def upstream_entity(name, targets):
    uid = new_id("up-" + name)
    u = {"id": uid, "name": name, "algorithm": "round-robin", "created_at": NOW, "updated_at": NOW}
    t = [{"id": new_id("t-%s-%d" % (name, i)), "target": tgt, "weight": w,
          "upstream": {"id": uid}, "created_at": NOW} for i, (tgt, w) in enumerate(targets)]
    return u, t


def test_503_no_targets_and_weighted_round_robin(prefix):
    a, b = Upstream(), Upstream()
    up1, t1 = upstream_entity("pool", [("127.0.0.1:%d" % a.port, 10), ("127.0.0.1:%d" % b.port, 30)])
    up2, t2 = upstream_entity("empty", [])
    s1 = service("pooled", "pool", 80)
    s2 = service("nobody", "empty", 80)
    dp = start(prefix, [s1, s2], [route("r1", s1, paths=["/pool"]), route("r2", s2, paths=["/empty"])],
               upstreams=[up1, up2], targets=t1 + t2)
    try:
        for _ in range(40):
            assert http(dp.port, b"GET /pool HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").startswith(
                b"HTTP/1.1 200 ")
        assert (a.request_count(), b.request_count()) == (10, 30)
        out = http(dp.port, b"GET /empty HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503 ")
        assert body(out) == {"message": "failure to get a peer from the ring-balancer"}
    finally:
        dp.stop()
        a.close()
        b.close()


def test_503_name_resolution_failed(prefix):
    svc = service("s", "does-not-exist.invalid", 80)
    dp = start(prefix, [svc], [route("r", svc, paths=["/"])])
    try:
        out = http(dp.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503 ")
        assert body(out) == {"message": "name resolution failed"}
    finally:
        dp.stop()


def test_upstream_closing_connection_is_not_reused(prefix, upstream):
    svc = service("s", "127.0.0.1", upstream.port)
    dp = start(prefix, [svc], [route("r", svc, paths=["/"])])
    try:
        for _ in range(3):
            out = http(dp.port, b"GET /close HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 200 ")
        assert upstream.connections == 3
    finally:
        dp.stop()
