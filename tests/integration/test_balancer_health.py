"""Health checks through a real sluice-dp: active checks take a target out and bring it back,
passive checks take a failing target out, state survives a config reload, all targets down is
Kong's 503, and GET /upstreams/{name}/health on the status listener shows it all."""

import json
import signal
import socket
import time

import pytest

from dp_harness import config, prefix, read_response, route, service, write_snapshot  # noqa: F401
from test_balancer_lb import (Origin, get, served_by, start_dp, status_get, target_row,
                              upstream_row)


@pytest.fixture
def origins():
    os_ = [Origin() for _ in range(2)]
    yield os_
    for o in os_:
        o.close()


def wait_for(cond, timeout=8):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def get_reported(port, path, headers=None):
    """One GET through the proxy, returning only once its passive health report is in: like
    Kong (log phase), the proxy reports after the response went out, so a client can read the
    response and ask /health before the report lands (seen on a loaded machine). A second
    request on the same connection, one the gateway refuses itself (no Host: 400), is handled
    only after the first one's log phase: its answer is the barrier."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        s.sendall(("GET %s HTTP/1.1\r\nHost: lb.test\r\n%s\r\n" % (path, extra)).encode())
        status, _, body, rest = read_response(s)
        s.sendall(b"GET /barrier HTTP/1.1\r\n\r\n")
        assert read_response(_Prefixed(s, rest))[0] == 400
        return status, body
    finally:
        s.close()


class _Prefixed:
    """A socket whose first recv returns bytes already read."""

    def __init__(self, sock, data):
        self.sock, self.data = sock, data

    def recv(self, n):
        d, self.data = self.data, b""
        return d or self.sock.recv(n)


def health_of(dp, name):
    status, body = status_get(dp, "/upstreams/%s/health" % name)
    assert status == 200
    return {t["target"]: t["health"] for t in body["data"]}


ACTIVE = {"active": {"http_path": "/health", "timeout": 1,
                     "healthy": {"interval": 0.2, "successes": 1},
                     "unhealthy": {"interval": 0.2, "http_failures": 1, "tcp_failures": 1,
                                   "timeouts": 1}}}


def test_active_checks_take_a_target_out_and_back(origins, prefix):
    a, b = origins
    up = upstream_row("active.up", healthchecks=ACTIVE)
    ta, tb = "127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port
    dp = start_dp(prefix, [up], [target_row(up, ta), target_row(up, tb)])
    try:
        assert wait_for(lambda: a.count("/health") >= 1 and b.count("/health") >= 1)
        assert health_of(dp, "active.up") == {ta: "HEALTHY", tb: "HEALTHY"}
        a.health_status = 500
        assert wait_for(lambda: health_of(dp, "active.up")[ta] == "UNHEALTHY")
        ports = {served_by(dp.port, "/x") for _ in range(20)}
        assert ports == {b.port}  # no traffic to the unhealthy one
        a.health_status = 200
        assert wait_for(lambda: health_of(dp, "active.up")[ta] == "HEALTHY")
        ports = {served_by(dp.port, "/x") for _ in range(20)}
        assert ports == {a.port, b.port}
        # both down: Kong's answer
        a.health_status = b.health_status = 503
        assert wait_for(lambda: set(health_of(dp, "active.up").values()) == {"UNHEALTHY"})
        status, _, body = get(dp.port, "/x")
        assert status == 503
        assert json.loads(body) == {"message": "failure to get a peer from the ring-balancer"}
    finally:
        dp.stop()


def test_active_check_sends_custom_headers_and_path(origins, prefix):
    a = origins[0]
    hc = json.loads(json.dumps(ACTIVE))
    hc["active"]["http_path"] = "/status/404"  # 404 is an unhealthy status by default
    up = upstream_row("path.up", healthchecks=hc)
    dp = start_dp(prefix, [up], [target_row(up, "127.0.0.1:%d" % a.port)])
    try:
        assert wait_for(lambda: a.count("/status/404") >= 1)
        assert wait_for(lambda: health_of(dp, "path.up") ==
                        {"127.0.0.1:%d" % a.port: "UNHEALTHY"})
        assert a.count("/health") == 0
    finally:
        dp.stop()


def test_passive_checks_take_a_failing_target_out(origins, prefix):
    a, b = origins
    hc = {"passive": {"unhealthy": {"http_failures": 3, "http_statuses": [500]}}}
    up = upstream_row("passive.up", healthchecks=hc)
    ta, tb = "127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port
    dp = start_dp(prefix, [up], [target_row(up, ta), target_row(up, tb)], workers=2)
    try:
        # /status/500 fails on both; each target counts its own failures
        for _ in range(4):
            assert get_reported(dp.port, "/status/500")[0] == 500
        assert health_of(dp, "passive.up") == {ta: "HEALTHY", tb: "HEALTHY"}
        for _ in range(2):
            assert get_reported(dp.port, "/status/500")[0] == 500
        assert health_of(dp, "passive.up") == {ta: "UNHEALTHY", tb: "UNHEALTHY"}
        status, _, body = get(dp.port, "/x")
        assert status == 503
    finally:
        dp.stop()


def test_passive_unhealthy_target_gets_no_traffic_and_state_survives_reload(origins, prefix):
    a, b = origins
    hc = {"passive": {"unhealthy": {"http_failures": 2, "http_statuses": [500]}}}
    up = upstream_row("reload.up", healthchecks=hc, hash_on="header", hash_on_header="x-k",
                      algorithm="consistent-hashing")
    ta, tb = "127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port
    dp = start_dp(prefix, [up], [target_row(up, ta), target_row(up, tb)], workers=2)
    try:
        # find a key that lands on a, then fail it there twice
        key = next(k for k in ("k%d" % i for i in range(100))
                   if served_by(dp.port, "/ok", {"X-K": k}) == a.port)
        for _ in range(2):
            assert get_reported(dp.port, "/status/500", {"X-K": key})[0] == 500
        assert health_of(dp, "reload.up")[ta] == "UNHEALTHY"
        assert {served_by(dp.port, "/ok", {"X-K": key}) for _ in range(10)} == {b.port}
        # a new config version with the same targets keeps the state
        svc = service("lb", "reload.up", 80)
        write_snapshot(prefix, config([svc], [route("lb2", svc, paths=["/"])],
                                      upstreams=[up],
                                      targets=[target_row(up, ta), target_row(up, tb)]),
                       version=2)
        dp.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: status_get(dp, "/status")[1]["configuration_version"] == 2)
        assert health_of(dp, "reload.up")[ta] == "UNHEALTHY"
        assert served_by(dp.port, "/ok", {"X-K": key}) == b.port
    finally:
        dp.stop()


def test_health_endpoint_shape(origins, prefix):
    a, b = origins
    up = upstream_row("shape.up")
    ta, tb = "127.0.0.1:%d" % a.port, "localhost:%d" % b.port
    dp = start_dp(prefix, [up], [target_row(up, ta, 100), target_row(up, tb, 50)])
    try:
        status, body = status_get(dp, "/upstreams/shape.up/health")
        assert status == 200
        assert set(body) == {"data", "node_id"}
        rows = {t["target"]: t for t in body["data"]}
        assert set(rows) == {ta, tb}
        assert rows[ta]["weight"] == 100 and rows[tb]["weight"] == 50
        assert rows[ta]["health"] == "HEALTHCHECKS_OFF"  # no checks configured
        assert rows[ta]["upstream"] == {"id": up["id"]}
        assert rows[ta]["data"]["addresses"] == [
            {"ip": "127.0.0.1", "port": a.port, "health": "HEALTHCHECKS_OFF", "weight": 100}]
        # by id too, and Kong's 404 for an unknown one
        assert status_get(dp, "/upstreams/%s/health" % up["id"])[0] == 200
        status, body = status_get(dp, "/upstreams/nope/health")
        assert status == 404 and body == {"message": "Not found"}
    finally:
        dp.stop()
