"""Plugin framework gaps closed against Kong's behaviour, through a real sluice-dp and upstream:
request-transformer rewriting form and JSON bodies (read whole before access, even when they
arrive after the head or behind Expect: 100-continue), its http_method and Host; chunked and
oversized bodies passing untouched; global plugins running on requests no route matched
(prometheus, file-log, cors preflight); and the gateway's own response headers visible to
response-transformer, which can remove them."""

import json
import os
import re
import socket
import time
import urllib.request

import pytest

from dp_harness import (DataPlane, config, prefix, read_response, route, service,  # noqa: F401
                        upstream, write_snapshot)
from plugin_harness import plugin


def parse_upstream(raw):
    """Every request the upstream received, in order: (method, target, headers, body)."""
    out, buf = [], bytes(raw)
    while b"\r\n\r\n" in buf:
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        h = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            h.setdefault(k.strip().lower(), []).append(v.strip())
        body = b""
        if "content-length" in h:
            n = int(h["content-length"][0])
            body, buf = buf[:n], buf[n:]
        elif h.get("transfer-encoding", [""])[0].lower() == "chunked":
            while True:
                line, buf = buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                body += buf[:size]
                buf = buf[size + 2:]
                if size == 0:
                    break
        out.append((method, target, h, body))
    return out


def last_request(up):
    deadline = time.time() + 5
    while time.time() < deadline:
        reqs = parse_upstream(up.raw)
        if reqs and len(reqs) == up.request_count():
            return reqs[-1]
        time.sleep(0.02)
    raise AssertionError("upstream saw nothing")


def send(dp, method, path, headers=(), body=b"", split=False, expect=False):
    """One request; split: the body follows the head after a pause; expect: waits for the
    100 Continue first. Returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=10)
    h = [("Host", "api.test")] + list(headers)
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in h):
        h.append(("Content-Length", str(len(body))))
    if expect:
        h.append(("Expect", "100-continue"))
    head = ("%s %s HTTP/1.1\r\n" % (method, path) +
            "".join("%s: %s\r\n" % kv for kv in h) + "\r\n").encode()
    if expect:
        s.sendall(head)
        interim = s.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
        s.sendall(body)
    elif split:
        s.sendall(head)
        time.sleep(0.15)
        s.sendall(body[:len(body) // 2])
        time.sleep(0.05)
        s.sendall(body[len(body) // 2:])
    else:
        s.sendall(head + body)
    status, rh, rb, _ = read_response(s, method)
    s.close()
    return status, rh, rb


BODY_CONF = {
    "remove": {"body": ["secret"], "headers": [], "querystring": []},
    "rename": {"body": ["user:account"], "headers": [], "querystring": []},
    "replace": {"body": ["mode:safe"], "headers": [], "querystring": []},
    "add": {"body": ["source:gw", "mode:never"], "headers": [], "querystring": []},
    "append": {"body": ["tag:two"], "headers": [], "querystring": []},
}


@pytest.fixture
def body_dp(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    rb = route("body", svc, paths=["/body"])
    rm = route("method", svc, paths=["/method"])
    rg = route("toget", svc, paths=["/toget"])
    rh = route("host", svc, paths=["/host"])
    plugins = [
        plugin("request-transformer", "body", route=rb, **BODY_CONF),
        plugin("request-transformer", "method", route=rm, http_method="PUT"),
        plugin("request-transformer", "toget", route=rg, http_method="GET"),
        plugin("request-transformer", "host", route=rh,
               replace={"headers": ["host:internal.example"]}),
    ]
    write_snapshot(prefix, config([svc], [rb, rm, rg, rh], plugins=plugins))
    d = DataPlane(prefix)
    yield d
    d.stop()


FORM = "user=ann&secret=x1&mode=fast&tag=one&keep=a%20b"
FORM_OUT = "account=ann&mode=safe&tag=one&keep=a%20b&source=gw&tag=two"


@pytest.mark.parametrize("how", ["with_head", "split", "expect"])
def test_form_body_is_transformed(body_dp, upstream, how):
    status, _, _ = send(body_dp, "POST", "/body/echo",
                        [("Content-Type", "application/x-www-form-urlencoded")], FORM.encode(),
                        split=how == "split", expect=how == "expect")
    assert status == 200
    method, _, h, body = last_request(upstream)
    assert method == "POST"
    assert body.decode() == FORM_OUT
    assert h["content-length"] == [str(len(FORM_OUT))]
    assert "expect" not in h


def test_json_body_is_transformed(body_dp, upstream):
    doc = {"user": "ann", "secret": "x1", "mode": "fast", "tag": "one", "n": 5,
           "nested": {"secret": "stays"}}
    status, _, _ = send(body_dp, "POST", "/body/echo",
                        [("Content-Type", "application/json; charset=utf-8")],
                        json.dumps(doc).encode(), split=True)
    assert status == 200
    _, _, h, body = last_request(upstream)
    assert json.loads(body) == {"account": "ann", "mode": "safe", "tag": ["one", "two"], "n": 5,
                                "nested": {"secret": "stays"}, "source": "gw"}
    assert h["content-length"] == [str(len(body))]


def test_json_body_added_to_a_bodyless_request(body_dp, upstream):
    status, _, _ = send(body_dp, "GET", "/body/echo", [("Content-Type", "application/json")])
    assert status == 200
    method, _, h, body = last_request(upstream)
    assert method == "GET"
    assert json.loads(body) == {"source": "gw", "mode": "never", "tag": "two"}
    assert h["content-length"] == [str(len(body))]


def test_other_bodies_pass_untouched(body_dp, upstream):
    # not JSON at all, an array, multipart and text: left as they are (Kong does the same,
    # except that it rewrites multipart, which is not implemented here)
    for ctype, raw in (("application/json", b"{not json"), ("application/json", b"[1,2]"),
                       ("multipart/form-data; boundary=XX",
                        b"--XX\r\nContent-Disposition: form-data; name=\"secret\"\r\n\r\n1\r\n"
                        b"--XX--\r\n"),
                       ("text/plain", b"secret=x1")):
        status, _, _ = send(body_dp, "POST", "/body/echo", [("Content-Type", ctype)], raw)
        assert status == 200
        _, _, _, body = last_request(upstream)
        assert body == raw


def test_chunked_and_large_bodies_stream_untransformed(body_dp, upstream):
    chunked = b"9\r\nsecret=x1\r\n0\r\n\r\n"
    status, _, _ = send(body_dp, "POST", "/body/echo",
                        [("Content-Type", "application/x-www-form-urlencoded"),
                         ("Transfer-Encoding", "chunked")], chunked)
    assert status == 200
    _, _, _, body = last_request(upstream)
    assert body == b"secret=x1"
    big = b"secret=x1&pad=" + b"p" * (1024 * 1024)
    status, _, _ = send(body_dp, "POST", "/body/echo",
                        [("Content-Type", "application/x-www-form-urlencoded")], big)
    assert status == 200
    _, _, h, body = last_request(upstream)
    assert body == big and h["content-length"] == [str(len(big))]
    warns = [l for l in body_dp.read_log().splitlines()
             if "[warn]" in l and "request-transformer" in l and "untransformed" in l]
    assert len(warns) == 1  # once, not per request


def test_keepalive_after_a_buffered_body(body_dp, upstream):
    # one request after the other on one connection; pipelined requests with buffered bodies
    # are covered by test_proxy_pipelining.py
    s = socket.create_connection(("127.0.0.1", body_dp.port), timeout=10)
    one = ("POST /body/echo HTTP/1.1\r\nHost: api.test\r\n"
           "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
           % (len(FORM), FORM)).encode()
    for raw in (one, one, b"GET /body/echo HTTP/1.1\r\nHost: api.test\r\n\r\n"):
        s.sendall(raw)
        status, _, _, rest = read_response(s)
        assert status == 200 and rest == b""
    s.close()
    reqs = parse_upstream(upstream.raw)
    assert [r[3].decode() for r in reqs[-3:]] == [FORM_OUT, FORM_OUT, ""]


def test_http_method(body_dp, upstream):
    status, _, _ = send(body_dp, "POST", "/method/echo", [("Content-Type", "text/plain")],
                        b"payload")
    assert status == 200
    method, _, h, body = last_request(upstream)
    assert method == "PUT" and body == b"payload" and h["content-length"] == ["7"]
    # to GET: a form body's parameters move into the query string, like Kong
    status, _, _ = send(body_dp, "POST", "/toget/echo?a=1",
                        [("Content-Type", "application/x-www-form-urlencoded")], b"b=2&c=3")
    assert status == 200
    method, target, _, _ = last_request(upstream)
    assert method == "GET" and target == "/echo?a=1&b=2&c=3"


def test_host_set_by_the_transformer_reaches_the_upstream(body_dp, upstream):
    status, _, body = send(body_dp, "GET", "/host/echo")
    assert status == 200
    assert json.loads(body)["headers"]["host"] == ["internal.example"]


# ------------------------------------------------------------------ requests without a route

def metrics(dp):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % dp.status_port, timeout=5) as r:
        return r.read().decode()


def count(text, **labels):
    for line in text.splitlines():
        m = re.match(r"^sluice_http_requests_total\{(.*)\} (\S+)$", line)
        if m and all('%s="%s"' % kv in m.group(1) for kv in labels.items()):
            return float(m.group(2))
    return None


def test_global_plugins_run_on_unrouted_requests(upstream, prefix):
    path = os.path.join(prefix, "access.log")
    svc = service("s1", "127.0.0.1", upstream.port)
    r = route("api", svc, paths=["/api"])
    plugins = [
        plugin("prometheus", "g", status_code_metrics=True),
        plugin("file-log", "g", path=path, reopen=False),
        plugin("cors", "g", origins=["https://app.test"], methods=["GET", "POST"],
               headers=None, exposed_headers=None, credentials=False, max_age=None,
               preflight_continue=False, private_network=False),
    ]
    write_snapshot(prefix, config([svc], [r], plugins=plugins))
    dp = DataPlane(prefix)
    try:
        for _ in range(3):
            status, _, body = send(dp, "GET", "/nowhere")
            assert status == 404 and b"no Route matched" in body
        assert send(dp, "GET", "/api/echo")[0] == 200
        # counters move in the log phase, after the response went out: let the last one land
        deadline = time.time() + 5
        text = metrics(dp)
        while count(text, service="s1", route="api") is None and time.time() < deadline:
            time.sleep(0.02)
            text = metrics(dp)
        assert count(text, service="", route="", code="404", source="kong") == 3
        assert count(text, service="s1", route="api", code="200", source="service") == 1
        deadline = time.time() + 5
        while time.time() < deadline:
            lines = open(path).read().splitlines() if os.path.exists(path) else []
            if len(lines) == 4:
                break
            time.sleep(0.05)
        entries = [json.loads(l) for l in lines]
        misses = [e for e in entries if e["response"]["status"] == 404]
        assert len(misses) == 3
        assert misses[0]["request"]["uri"] == "/nowhere"
        assert "route" not in misses[0] and "service" not in misses[0]
        # Routing comes before the access phase (as in Kong): a global cors does not answer
        # a preflight on a path no route serves, and a routed preflight is answered.
        status, h, _ = send(dp, "OPTIONS", "/nowhere", [
            ("Origin", "https://app.test"), ("Access-Control-Request-Method", "POST")])
        assert status == 404
        status, h, _ = send(dp, "OPTIONS", "/api/x", [
            ("Origin", "https://app.test"), ("Access-Control-Request-Method", "POST")])
        assert status == 200
        assert h["access-control-allow-origin"] == "https://app.test"
        assert "POST" in h["access-control-allow-methods"]
    finally:
        dp.stop()


# ------------------------------------------------------------------ the gateway's own headers

OWN = ["via", "x-sluice-upstream-latency", "x-sluice-proxy-latency", "server",
       "x-sluice-response-latency"]


def test_response_transformer_sees_and_removes_gateway_headers(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    rm = route("strip", svc, paths=["/strip"])
    rk = route("keep", svc, paths=["/keep"])
    rr = route("rename", svc, paths=["/rename"])
    plugins = [
        plugin("response-transformer", "strip", route=rm, remove={"headers": OWN, "json": []}),
        plugin("response-transformer", "keep", route=rk,
               add={"headers": ["x-other:1"], "json": []}),
        plugin("response-transformer", "rename", route=rr,
               rename={"headers": ["via:x-was-via"], "json": []}),
        plugin("key-auth", "k", route=rm),  # the gateway's own 401 on the same route
    ]
    write_snapshot(prefix, config([svc], [rm, rk, rr], plugins=plugins))
    dp = DataPlane(prefix)
    try:
        status, h, _ = send(dp, "GET", "/strip/echo")
        assert status == 401  # made by the gateway: Server and latency removed too
        assert not [k for k in OWN if k in h]
        status, h, _ = send(dp, "GET", "/keep/echo")
        assert status == 200 and h["x-other"] == "1"
        assert h["via"].startswith("1.1 sluice/")
        assert int(h["x-sluice-upstream-latency"]) >= 0
        assert int(h["x-sluice-proxy-latency"]) >= 0
        status, h, _ = send(dp, "GET", "/rename/echo")
        assert status == 200 and "via" not in h
        assert h["x-was-via"].startswith("1.1 sluice/")
    finally:
        dp.stop()


def test_headers_setting_still_decides(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    r = route("keep", svc, paths=["/keep"])
    plugins = [plugin("response-transformer", "keep", route=r,
                      add={"headers": ["x-other:1"], "json": []})]
    write_snapshot(prefix, config([svc], [r], plugins=plugins))
    dp = DataPlane(prefix, extra_env={"SLUICE_HEADERS": "off"})
    try:
        status, h, _ = send(dp, "GET", "/keep/echo")
        assert status == 200 and h["x-other"] == "1"
        assert not [k for k in OWN if k in h]
        status, h, _ = send(dp, "GET", "/nowhere")
        assert status == 404 and not [k for k in OWN if k in h]
    finally:
        dp.stop()
