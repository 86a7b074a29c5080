"""file-log and http-log through a real sluice-dp: JSON lines in Kong's serializer shape written
to the file (credentials redacted), entries POSTed in batches to a collector, a failing
collector retried, and a collector that is down neither slowing nor failing proxied
requests."""

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dp_harness import (NOW, DataPlane, config, free_port, new_id, prefix,  # noqa: F401
                        read_response, route, service, upstream, write_snapshot)


def plugin(name, conf, route_=None):
    return {"id": new_id(), "name": name, "config": conf, "enabled": True,
            "protocols": ["http", "https"], "created_at": NOW, "updated_at": NOW,
            "route": {"id": route_["id"]} if route_ else None, "service": None, "consumer": None}


class Collector:
    """An HTTP log collector: records every POST body (parsed JSON); the first fail_first
    requests get a 500."""

    def __init__(self, fail_first=0):
        self.bodies, self.headers, self.requests = [], [], 0
        self.fail_first = fail_first
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                data = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.requests += 1
                    fail = outer.fail_first > 0
                    if fail:
                        outer.fail_first -= 1
                    else:
                        outer.bodies.append(json.loads(data))
                        outer.headers.append(dict(self.headers))
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def entries(self):
        with self.lock:
            out = []
            for b in self.bodies:
                out.extend(b if isinstance(b, list) else [b])
            return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def get(dp, path, headers=()):
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    head = "GET %s HTTP/1.1\r\nHost: api.test\r\n" % path
    head += "".join("%s: %s\r\n" % h for h in headers)
    s.sendall(head.encode() + b"\r\n")
    status, _, _, _ = read_response(s)
    s.close()
    return status


def wait_for(cond, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_file_log_lines(upstream, prefix):
    path = os.path.join(prefix, "access.log")
    svc = service("orders", "127.0.0.1", upstream.port)
    r = route("list", svc, paths=["/list"])
    write_snapshot(prefix, config([svc], [r], plugins=[plugin("file-log", {"path": path}, r)]))
    dp = DataPlane(prefix, workers=2)
    try:
        for i in range(20):
            assert get(dp, "/list/echo?i=%d&tag=a&tag=b" % i,
                       [("Authorization", "Bearer s3cret"), ("X-Trace", "t%d" % i)]) == 200

        def lines():
            if not os.path.exists(path):
                return []
            with open(path) as f:
                return f.read().splitlines()
        assert wait_for(lambda: len(lines()) == 20)
        entries = [json.loads(l) for l in lines()]  # every line whole JSON
        seen = sorted(int(e["request"]["querystring"]["i"]) for e in entries)
        assert seen == list(range(20))
        e = entries[0]
        assert e["request"]["method"] == "GET"
        assert e["request"]["uri"].startswith("/list/echo?i=")
        assert e["request"]["url"].startswith("http://api.test/list/echo?i=")
        assert e["request"]["querystring"]["tag"] == ["a", "b"]
        assert e["request"]["headers"]["authorization"] == "REDACTED"
        assert e["request"]["headers"]["x-trace"].startswith("t")
        assert e["response"]["status"] == 200
        assert e["response"]["size"] > 0
        assert e["response"]["headers"]["content-type"] == "application/json"
        assert e["route"] == {"id": r["id"], "name": "list"}
        assert e["service"] == {"id": svc["id"], "name": "orders"}
        assert e["latencies"]["request"] >= e["latencies"]["proxy"] >= 0
        assert e["client_ip"] == "127.0.0.1"
        assert abs(e["started_at"] / 1000 - time.time()) < 60
        assert e["upstream_status"] == 200 and e["source"] == "service"
        assert "s3cret" not in open(path).read()
    finally:
        dp.stop()


def test_http_log_batches_and_retries(upstream, prefix):
    col = Collector(fail_first=1)
    svc = service("orders", "127.0.0.1", upstream.port)
    r = route("list", svc, paths=["/list"])
    conf = {"http_endpoint": "http://127.0.0.1:%d/ingest" % col.port,
            "headers": {"X-Api-Key": "k1"},
            "queue": {"max_batch_size": 5, "max_coalescing_delay": 0.3,
                      "initial_retry_delay": 0.05}}
    write_snapshot(prefix, config([svc], [r], plugins=[plugin("http-log", conf, r)]))
    dp = DataPlane(prefix)
    try:
        for i in range(12):
            assert get(dp, "/list/echo?i=%d" % i) == 200
        assert wait_for(lambda: len(col.entries()) == 12)
        time.sleep(0.5)
        assert len(col.entries()) == 12  # nothing twice
        assert sorted(int(e["request"]["querystring"]["i"]) for e in col.entries()) == \
            list(range(12))
        assert all(isinstance(b, list) and 1 <= len(b) <= 5 for b in col.bodies)
        assert col.requests == len(col.bodies) + 1  # the failed first POST was retried
        assert col.headers[0]["Content-Type"] == "application/json"
        assert col.headers[0]["X-Api-Key"] == "k1"
    finally:
        dp.stop()
        col.close()


def test_collector_down_does_not_hurt_requests(upstream, prefix):
    svc = service("orders", "127.0.0.1", upstream.port)
    r = route("list", svc, paths=["/list"])
    plain = route("plain", svc, paths=["/plain"])
    # an address that drops packets would make connects hang; a closed port refuses at once,
    # and a short timeout with many retries keeps the sender busy the whole time
    conf = {"http_endpoint": "http://127.0.0.1:%d/" % free_port(), "timeout": 200,
            "queue": {"max_entries": 100, "max_retry_time": 30, "initial_retry_delay": 0.01,
                      "max_retry_delay": 0.05}}
    write_snapshot(prefix, config([svc], [r, plain],
                                  plugins=[plugin("http-log", conf, r)]))
    dp = DataPlane(prefix)
    try:
        def timed(path, n):
            s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
            t0 = time.time()
            for _ in range(n):
                s.sendall(("GET %s HTTP/1.1\r\nHost: api.test\r\n\r\n" % path).encode())
                status, _, _, _ = read_response(s)
                assert status == 200
            s.close()
            return time.time() - t0
        base = timed("/plain/echo", 300)
        logged = timed("/list/echo", 300)  # past max_entries: entries are dropped, not waited on
        assert logged < base * 3 + 0.5, (base, logged)
    finally:
        dp.stop()
