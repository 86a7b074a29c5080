"""Client pipelining: several requests sent at once (bodies by Content-Length and chunked,
bodyless GETs and HEADs) each get their own response, in order, round after round, whether a
plugin buffers the body first or not.

The responses are read with one buffer kept across them: two responses often arrive in one
recv, and a reader that drops what follows the first (read_response's 4th value) loses the
next response and then waits for it forever."""

import json
import random
import socket

import pytest

from dp_harness import (DataPlane, config, prefix, read_response, route, service,  # noqa: F401
                        upstream, write_snapshot)
from plugin_harness import plugin

ROUNDS = 200
FORM = "user=ann&secret=x1&mode=fast&tag=one&keep=a%20b"
FORM_OUT = "account=ann&mode=safe&tag=one&keep=a%20b&source=gw&tag=two"
BODY_CONF = {
    "remove": {"body": ["secret"], "headers": [], "querystring": []},
    "rename": {"body": ["user:account"], "headers": [], "querystring": []},
    "replace": {"body": ["mode:safe"], "headers": [], "querystring": []},
    "add": {"body": ["source:gw"], "headers": [], "querystring": []},
    "append": {"body": ["tag:two"], "headers": [], "querystring": []},
}


@pytest.fixture
def dp(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    plain = route("plain", svc, paths=["/plain"])
    buffered = route("buffered", svc, paths=["/buffered"])
    # request-transformer reads the whole form body before access: the buffering path
    plugins = [plugin("request-transformer", "buffered", route=buffered, **BODY_CONF)]
    write_snapshot(prefix, config([svc], [plain, buffered], plugins=plugins))
    d = DataPlane(prefix)
    yield d
    d.stop()


class _Reader:
    """Responses from one connection, with the bytes past each one kept for the next."""

    def __init__(self, sock):
        self.sock, self.rest = sock, b""

    def recv(self, n):
        if self.rest:
            d, self.rest = self.rest, b""
            return d
        return self.sock.recv(n)

    def response(self, method):
        status, headers, body, rest = read_response(self, method)
        self.rest = rest + self.rest
        return status, headers, body


def _chunked(body, rnd):
    out, i = b"", 0
    while i < len(body):
        k = rnd.randint(1, 700)
        out += b"%x\r\n" % len(body[i:i + k]) + body[i:i + k] + b"\r\n"
        i += k
    return out + b"0\r\n\r\n"


def _request(kind, path, rnd):
    """(raw request, method, expected upstream body length)."""
    head = "%s %s HTTP/1.1\r\nHost: pipe.test\r\n"
    if kind == "get":
        return (head % ("GET", path) + "\r\n").encode(), "GET", 0
    if kind == "head":
        return (head % ("HEAD", path) + "\r\n").encode(), "HEAD", 0
    if kind == "form":  # the buffered route transforms it
        return ((head % ("POST", path) + "Content-Type: application/x-www-form-urlencoded\r\n"
                 "Content-Length: %d\r\n\r\n%s" % (len(FORM), FORM)).encode(), "POST",
                len(FORM_OUT) if path.startswith("/buffered") else len(FORM))
    body = bytes(rnd.choice(b"abcdefgh") for _ in range(rnd.randint(1, 3000)))
    if kind == "length":
        return ((head % ("POST", path) + "Content-Length: %d\r\n\r\n" % len(body)).encode() +
                body, "POST", len(body))
    return ((head % ("PUT", path) + "Transfer-Encoding: chunked\r\n\r\n").encode() +
            _chunked(body, rnd), "PUT", len(body))


@pytest.mark.parametrize("where,kinds", [
    ("/plain", ["get", "head", "length", "chunked", "form"]),
    ("/buffered", ["get", "form", "chunked", "length"]),
])
def test_pipelined_requests_each_get_a_response_in_order(dp, upstream, where, kinds):
    rnd = random.Random(where)  # reproducible
    sock = None
    sent_total = 0
    for r in range(ROUNDS):
        if r % 10 == 0:  # a fresh connection now and then: first requests and keepalive both
            if sock:
                sock.close()
            sock = socket.create_connection(("127.0.0.1", dp.port), timeout=10)
            reader = _Reader(sock)
        # always a request with a body followed by others: the case that used to go missing
        batch = [rnd.choice(["length", "chunked", "form"])] + \
            [rnd.choice(kinds) for _ in range(rnd.randint(1, 4))]
        reqs = [_request(k, "%s/echo?r=%d&i=%d" % (where, r, i), rnd)
                for i, k in enumerate(batch)]
        raw = b"".join(q[0] for q in reqs)
        if r % 4 == 3:  # sometimes in pieces that end mid-head or mid-body
            cuts = sorted(rnd.sample(range(1, len(raw)), 3))
            for a, b in zip([0] + cuts, cuts + [len(raw)]):
                sock.sendall(raw[a:b])
        else:
            sock.sendall(raw)
        for i, (_, method, body_len) in enumerate(reqs):
            status, headers, body = reader.response(method)
            assert status == 200, (r, i, status, body)
            if method == "HEAD":
                assert body == b"" and int(headers["content-length"]) > 0
                continue
            seen = json.loads(body)
            assert seen["path"] == "/echo?r=%d&i=%d" % (r, i), (r, i)  # strip_path
            assert seen["method"] == method and seen["body_length"] == body_len, (r, i, seen)
        assert reader.rest == b""  # exactly one response per request
        sent_total += len(reqs)
    sock.close()
    assert upstream.request_count() == sent_total
