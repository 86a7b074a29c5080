"""GET /metrics on the status listener of a real sluice-dp with two workers: request counts by
service, route, status and source summed exactly across workers, latency histograms,
bandwidth, upstream target health, the config version, and the families Kong keeps off by
default staying off."""

import re
import socket
import time
import urllib.request

import pytest

from dp_harness import (NOW, DataPlane, config, free_port, new_id, prefix,  # noqa: F401
                        read_response, route, service, upstream, write_snapshot)


def plugin(name, conf, route_=None):
    return {"id": new_id(), "name": name, "config": conf, "enabled": True,
            "protocols": ["http", "https"], "created_at": NOW, "updated_at": NOW,
            "route": {"id": route_["id"]} if route_ else None, "service": None, "consumer": None}


def metrics(dp):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % dp.status_port, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def value(text, name, **labels):
    """The sample of name whose labels include labels; None when absent."""
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return None


def settled_metrics(dp, name, expected, **labels):
    """/metrics once name{labels} reads at least expected, or after 5 s. The log phase (where the
    counters move) runs after the response has gone out, as in Kong: a scrape right after the
    client read its response may come a moment before the last request is counted."""
    deadline = time.time() + 5
    while True:
        text = metrics(dp)
        if (value(text, name, **labels) or 0) >= expected or time.time() > deadline:
            return text
        time.sleep(0.02)


def hit(dp, path, n):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    for _ in range(n):
        s.sendall(("GET %s HTTP/1.1\r\nHost: api.test\r\n\r\n" % path).encode())
        status, _, _, _ = read_response(s)
    s.close()
    return status


@pytest.fixture
def dp(upstream, prefix):
    up = {"id": new_id("up-pool"), "name": "pool", "algorithm": "round-robin",
          "created_at": NOW, "updated_at": NOW}
    tgt = {"id": new_id("tgt-1"), "upstream": {"id": up["id"]},
           "target": "127.0.0.1:%d" % upstream.port, "weight": 100, "created_at": NOW,
           "updated_at": NOW}
    svc = service("orders", "pool", 80)
    direct = service("direct", "127.0.0.1", upstream.port)
    r1 = route("list", svc, paths=["/list"])
    r2 = route("quiet", direct, paths=["/quiet"])
    dead = service("dead", "127.0.0.1", free_port(), retries=0)
    r3 = route("down", dead, paths=["/down"])
    plugins = [
        plugin("prometheus", {"status_code_metrics": True, "latency_metrics": True,
                              "bandwidth_metrics": True, "upstream_health_metrics": True}, r1),
        plugin("prometheus", {}, r2),  # Kong's defaults: the optional families stay off
        plugin("prometheus", {"status_code_metrics": True}, r3),
    ]
    write_snapshot(prefix, config([svc, direct, dead], [r1, r2, r3], plugins=plugins,
                                  upstreams=[up], targets=[tgt]), version=7)
    d = DataPlane(prefix, workers=2)
    yield d
    d.stop()


def test_metrics_after_traffic(dp, upstream):
    # several connections, so both workers serve some of them
    for _ in range(8):
        assert hit(dp, "/list/echo", 5) == 200
    assert hit(dp, "/list/big?n=1000", 1) == 200
    assert hit(dp, "/quiet/echo", 3) == 200
    text = settled_metrics(dp, "sluice_requests_total", 44)
    assert value(text, "sluice_http_requests_total", service="orders", route="list", code="200",
                 source="service", consumer="") == 41
    assert value(text, "sluice_request_latency_ms_count", service="orders", route="list") == 41
    assert value(text, "sluice_upstream_latency_ms_bucket", service="orders", route="list",
                 le="+Inf") == 41
    assert value(text, "sluice_gateway_latency_ms_count", service="orders", route="list") == 41
    egress = value(text, "sluice_bandwidth_bytes", service="orders", route="list",
                   direction="egress")
    assert egress is not None and egress >= 1000
    # the route whose plugin keeps Kong's defaults records nothing
    assert 'route="quiet"' not in text
    assert value(text, "sluice_data_plane_config_version") == 7
    target = "127.0.0.1:%d" % upstream.port
    assert value(text, "sluice_upstream_target_health", upstream="pool", target=target,
                 state="healthchecks_off") == 1
    assert value(text, "sluice_upstream_target_health", upstream="pool", target=target,
                 state="healthy") == 0
    assert value(text, "sluice_connections_total", state="accepted") >= 10
    assert value(text, "sluice_requests_total") >= 44
    # well-formed: every sample's family has a TYPE line
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"^[a-z_]+", line).group(0)
            assert re.sub(r"_(bucket|count|sum)$", "", name) in families or name in families


def test_gateway_errors_count_as_kong(dp):
    assert hit(dp, "/down/echo", 2) == 502  # nobody listens: the gateway answers itself
    text = settled_metrics(dp, "sluice_http_requests_total", 2, service="dead", route="down",
                           code="502", source="kong")
    assert value(text, "sluice_http_requests_total", service="dead", route="down", code="502",
                 source="kong") == 2
