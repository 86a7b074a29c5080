"""Load balancing through a real sluice-dp: weighted round-robin, hashing stickiness, retries past
a dead target, and the helpers (upstream/target rows, origins that say who they are) that
test_balancer_health.py shares."""

import copy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dp_harness import (NOW, DataPlane, config, new_id, prefix, read_response, route,  # noqa: F401
                        service, write_snapshot)

HEALTHCHECKS = {
    "active": {
        "type": "http", "timeout": 1, "concurrency": 10, "http_path": "/",
        "https_verify_certificate": True, "https_sni": None, "headers": None,
        "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
        "unhealthy": {"interval": 0, "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                      "tcp_failures": 0, "timeouts": 0, "http_failures": 0},
    },
    "passive": {
        "type": "http",
        "healthy": {"http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301,
                                      302, 303, 304, 305, 306, 307, 308], "successes": 0},
        "unhealthy": {"http_statuses": [429, 500, 503], "tcp_failures": 0, "timeouts": 0,
                      "http_failures": 0},
    },
    "threshold": 0,
}


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def upstream_row(name, healthchecks=None, **kw):
    u = {"id": new_id("upstream-" + name), "name": name, "algorithm": "round-robin",
         "hash_on": "none", "hash_fallback": "none", "hash_on_cookie_path": "/", "slots": 10000,
         "healthchecks": merge(copy.deepcopy(HEALTHCHECKS), healthchecks or {}),
         "use_srv_name": False, "created_at": NOW, "updated_at": NOW}
    u.update(kw)
    return u


def target_row(up, target, weight=100):
    return {"id": new_id("target-%s-%s" % (up["name"], target)), "upstream": {"id": up["id"]},
            "target": target, "weight": weight, "created_at": NOW, "updated_at": NOW}


class Origin:
    """An HTTP/1.1 server answering {"port": N} with keepalive. /health answers health_status
    (settable), /status/<code> answers that code; it counts requests per path."""

    def __init__(self):
        origin = self
        self.health_status = 200
        self.hits = {}
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                with origin.lock:
                    origin.hits[path] = origin.hits.get(path, 0) + 1
                status = 200
                if path == "/health":
                    status = origin.health_status
                elif path.startswith("/status/"):
                    status = int(path.rsplit("/", 1)[1])
                body = json.dumps({"port": origin.port, "path": self.path}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def get(port, path, headers=None, sock=None):
    """One GET through the proxy: (status, headers, body bytes)."""
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=10)
    extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    s.sendall(("GET %s HTTP/1.1\r\nHost: lb.test\r\n%s\r\n" % (path, extra)).encode())
    status, h, body, _ = read_response(s)
    if not sock:
        s.close()
    return status, h, body


def served_by(port, path, headers=None, sock=None):
    status, _, body = get(port, path, headers, sock)
    assert status == 200, body
    return json.loads(body)["port"]


def status_get(dp, path):
    s = socket.create_connection(("127.0.0.1", dp.status_port), timeout=5)
    s.sendall(("GET %s HTTP/1.1\r\nHost: status\r\n\r\n" % path).encode())
    status, _, body, _ = read_response(s)
    s.close()
    return status, json.loads(body)


# ---------------------------------------------------------------- tests

@pytest.fixture
def origins():
    os_ = [Origin() for _ in range(4)]
    yield os_
    for o in os_:
        o.close()


def start_dp(prefix, ups, tgts, workers=2, **svc_kw):
    svc = service("lb", ups[0]["name"], 80, **svc_kw)
    write_snapshot(prefix, config([svc], [route("lb", svc, paths=["/"])], upstreams=ups,
                                  targets=tgts))
    return DataPlane(prefix, workers=workers)


def test_weighted_round_robin_1_to_3(origins, prefix):
    a, b, c = origins[0], origins[1], origins[2]
    up = upstream_row("weighted.up")
    tg = [target_row(up, "127.0.0.1:%d" % a.port, 100), target_row(up, "127.0.0.1:%d" % b.port, 300),
          target_row(up, "127.0.0.1:%d" % c.port, 0)]
    dp = start_dp(prefix, [up], tg, workers=1)
    try:
        s = socket.create_connection(("127.0.0.1", dp.port), timeout=10)
        order = [served_by(dp.port, "/w", sock=s) for _ in range(400)]
        s.close()
        assert order.count(a.port) == 100
        assert order.count(b.port) == 300
        assert c.port not in order  # weight 0: no traffic
        # smooth: the light target is spread out, never twice in a row
        assert all(not (x == y == a.port) for x, y in zip(order, order[1:]))
    finally:
        dp.stop()


def hash_dp(prefix, origins, **kw):
    up = upstream_row("hash.up", algorithm="consistent-hashing", **kw)
    tg = [target_row(up, "127.0.0.1:%d" % o.port) for o in origins]
    return start_dp(prefix, [up], tg)


def test_hash_on_header_is_sticky_and_spreads(origins, prefix):
    dp = hash_dp(prefix, origins, hash_on="header", hash_on_header="x-user")
    try:
        first = {}
        for i in range(40):
            first[i] = served_by(dp.port, "/h", {"X-User": "user-%d" % i})
        for _ in range(2):
            for i in range(40):
                assert served_by(dp.port, "/other", {"X-User": "user-%d" % i}) == first[i]
        assert len(set(first.values())) >= 3  # keys spread over the targets
    finally:
        dp.stop()


def test_hash_on_cookie_sets_one_and_sticks(origins, prefix):
    dp = hash_dp(prefix, origins, hash_on="cookie", hash_on_cookie="lbid",
                 hash_on_cookie_path="/app")
    try:
        status, headers, body = get(dp.port, "/app/x")
        assert status == 200
        cookie = headers["set-cookie"]
        assert cookie.startswith("lbid=") and "Path=/app" in cookie
        value = cookie.split(";")[0]
        port = json.loads(body)["port"]
        for _ in range(10):
            status, h, body = get(dp.port, "/app/y", {"Cookie": value})
            assert status == 200 and json.loads(body)["port"] == port
            assert "set-cookie" not in h  # the client has one already
        ports = {json.loads(get(dp.port, "/app/z")[2])["port"] for _ in range(20)}
        assert len(ports) >= 2  # fresh clients get fresh cookies, spread over targets
    finally:
        dp.stop()


def test_hash_on_ip_is_sticky(origins, prefix):
    dp = hash_dp(prefix, origins, hash_on="ip")
    try:
        ports = {served_by(dp.port, "/ip/%d" % i) for i in range(30)}
        assert len(ports) == 1  # every request comes from 127.0.0.1
    finally:
        dp.stop()


def test_retries_past_a_dead_target_without_client_errors(origins, prefix):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there: connections are refused
    up = upstream_row("retry.up")
    tg = [target_row(up, "127.0.0.1:%d" % dead_port)] + \
        [target_row(up, "127.0.0.1:%d" % o.port) for o in origins[:2]]
    dp = start_dp(prefix, [up], tg, retries=2)
    try:
        ports = [served_by(dp.port, "/r") for _ in range(60)]
        assert dead_port not in ports
        assert set(ports) == {origins[0].port, origins[1].port}
    finally:
        dp.stop()


def test_no_retries_left_is_a_gateway_error(prefix):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    up = upstream_row("noretry.up")
    dp = start_dp(prefix, [up], [target_row(up, "127.0.0.1:%d" % dead_port)], retries=0)
    try:
        status, _, body = get(dp.port, "/x")
        assert status == 502
        assert json.loads(body)["message"] == \
            "An invalid response was received from the upstream server"
    finally:
        dp.stop()
