"""Fixtures for data-plane integration tests: a real upstream, snapshot files, and sluice-dp on
free ports. Used by tests/integration/test_proxy_*.py."""

import hashlib
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
import zlib

import msgpack
import pytest

BIN_DIR = os.environ.get("SLUICE_BIN_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
DP_BIN = os.path.join(os.path.abspath(BIN_DIR), "sluice-dp")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def new_id(name=None):
    if name:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    return str(uuid.uuid4())


# ---------------------------------------------------------------- snapshots (proto/snapshot.h)

SNAPSHOT_FORMAT = 2


def config_hash(config):
    """The config hash of proto/config_hash.h: for each entity with rows, in name order, the
    name, a NUL, the row count (8 bytes big-endian) and the sha256 of each row's msgpack bytes
    in id order; sha256 of all that."""
    h = hashlib.sha256()
    for name in sorted(n for n, rows in config.items() if rows):
        rows = sorted(config[name], key=lambda r: r["id"])
        h.update(name.encode() + b"\0" + len(rows).to_bytes(8, "big"))
        for row in rows:
            h.update(hashlib.sha256(msgpack.packb(row, use_bin_type=True)).digest())
    return h.hexdigest()


def snapshot_envelope(config, version=1):
    """The envelope bytes for config ({"services": [...], ...}) exactly as proto/snapshot.h
    describes: canonical msgpack map, its config hash, zlib payload."""
    canonical = {"format": SNAPSHOT_FORMAT, "version": version}
    for name, rows in config.items():
        canonical[name] = sorted(rows, key=lambda r: r["id"])
    cbytes = msgpack.packb(canonical, use_bin_type=True)
    digest = config_hash(config)
    env = {"type": "snapshot", "format": SNAPSHOT_FORMAT, "version": version, "hash": digest,
           "payload": zlib.compress(cbytes)}
    return msgpack.packb(env, use_bin_type=True), digest


def write_snapshot(prefix, config, version=1):
    os.makedirs(prefix, exist_ok=True)
    data, digest = snapshot_envelope(config, version)
    with open(os.path.join(prefix, "config.snapshot"), "wb") as f:
        f.write(data)
    return digest


NOW = 1700000000


def service(name, host, port, **kw):
    s = {"id": new_id("svc-" + name), "name": name, "protocol": "http", "host": host,
         "port": port, "path": None, "retries": 5, "connect_timeout": 60000,
         "write_timeout": 60000, "read_timeout": 60000, "created_at": NOW, "updated_at": NOW,
         "enabled": True}
    s.update(kw)
    return s


def route(name, svc, **kw):
    r = {"id": new_id("route-" + name), "name": name, "protocols": ["http", "https"],
         "service": {"id": svc["id"]} if svc else None, "strip_path": True,
         "preserve_host": False, "regex_priority": 0, "https_redirect_status_code": 426,
         "path_handling": "v0", "request_buffering": True, "response_buffering": True,
         "created_at": NOW, "updated_at": NOW}
    r.update(kw)
    return r


def config(services=(), routes=(), **more):
    c = {"services": list(services), "routes": list(routes)}
    c.update({k: list(v) for k, v in more.items()})
    return c


# ---------------------------------------------------------------- upstream

class Upstream:
    """A small threaded HTTP/1.1 origin with keepalive that records every raw request it sees.
    Paths: /echo (JSON of method, path, headers, body length), /big?n=BYTES (streams a body),
    /slow?ms=N (waits before answering), /chunked (chunked answer), /ws (101 then echoes bytes),
    /close (answers with Connection: close), anything else: 200 "ok"."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.requests = []  # (head text, body length)
        self.raw = bytearray()  # every byte received
        self.connections = 0
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopped = True
        self.sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _recv(self, c, buf):
        data = c.recv(65536)
        if data:
            with self.lock:
                self.raw.extend(data)
        return data

    def _serve(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = self._recv(c, buf)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for l in lines[1:]:
                    k, v = l.split(":", 1)
                    headers.setdefault(k.strip().lower(), []).append(v.strip())
                body_len = 0
                if "content-length" in headers:
                    n = int(headers["content-length"][0])
                    while len(buf) < n:
                        d = self._recv(c, buf)
                        if not d:
                            return
                        buf += d
                    body_len = n
                    buf = buf[n:]
                elif headers.get("transfer-encoding", [""])[0].lower() == "chunked":
                    while True:
                        while b"\r\n" not in buf:
                            buf += self._recv(c, buf)
                        size_line, buf = buf.split(b"\r\n", 1)
                        size = int(size_line.split(b";")[0], 16)
                        while len(buf) < size + 2:
                            d = self._recv(c, buf)
                            if not d:
                                return
                            buf += d
                        buf = buf[size + 2:]
                        body_len += size
                        if size == 0:
                            break
                with self.lock:
                    self.requests.append((head.decode("latin-1"), body_len))
                if not self._answer(c, method, target, headers, body_len):
                    return
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def _answer(self, c, method, target, headers, body_len):
        path, _, query = target.partition("?")
        q = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if path.endswith("/slow"):
            time.sleep(int(q.get("ms", "1000")) / 1000)
        if path.endswith("/big"):
            n = int(q.get("n", "1000"))
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: %d\r\n\r\n" % n)
            chunk = b"x" * 65536
            sent = 0
            while sent < n:
                k = min(len(chunk), n - sent)
                c.sendall(chunk[:k])
                sent += k
            return True
        if path.endswith("/chunked"):
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            return True
        if path.endswith("/ws"):
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            while True:
                d = c.recv(65536)
                if not d:
                    return False
                c.sendall(d.upper())
        if path.endswith("/garbage"):
            c.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            return False
        body = json.dumps({"method": method, "path": target, "headers": headers,
                           "body_length": body_len}).encode()
        extra = b"Connection: close\r\n" if path.endswith("/close") else b""
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return not extra

    def request_count(self):
        with self.lock:
            return len(self.requests)


# ---------------------------------------------------------------- data plane

class DataPlane:
    def __init__(self, prefix, workers=1, ssl_listen=False, extra_env=None):
        self.prefix = prefix
        self.port = free_port()
        self.ssl_port = free_port() if ssl_listen else None
        self.status_port = free_port()
        listen = "127.0.0.1:%d" % self.port
        if ssl_listen:
            listen += ", 127.0.0.1:%d ssl" % self.ssl_port
        # SLUICE_* variables are settings to sluice-dp (unknown ones are refused), so the
        # test runner's own (SLUICE_BIN_DIR) must not leak into its environment
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update({"SLUICE_PROXY_LISTEN": listen,
                    "SLUICE_STATUS_LISTEN": "127.0.0.1:%d" % self.status_port,
                    "SLUICE_WORKER_THREADS": str(workers), "SLUICE_PREFIX": prefix,
                    "SLUICE_LOG_LEVEL": "info"})
        env.update(extra_env or {})
        self.log_path = os.path.join(prefix, "dp.log")
        os.makedirs(prefix, exist_ok=True)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([DP_BIN, "serve"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait_up()

    def _wait_up(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sluice-dp exited: " + self.read_log())
            try:
                socket.create_connection(("127.0.0.1", self.status_port), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sluice-dp did not start: " + self.read_log())

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def peak_rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        bad = [l for l in self.read_log().splitlines()
               if "[alert]" in l or "Sanitizer" in l or "runtime error" in l]
        assert not bad, "\n".join(bad)


def http(port, raw, timeout=5, host="127.0.0.1", read_all=True):
    """Sends raw bytes, returns everything received until close or timeout."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(raw)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
            if not read_all and b"\r\n\r\n" in out:
                break
    except socket.timeout:
        pass
    s.close()
    return out


def read_response(sock, head_method="GET"):
    """Reads one HTTP/1.1 response (Content-Length or chunked) from sock: (status, headers,
    body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise EOFError("closed before a response head: %r" % buf)
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if head_method == "HEAD" or status in (101, 204, 304):
        return status, headers, b"", rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            d = sock.recv(65536)
            if not d:
                raise EOFError("short body")
            rest += d
        return status, headers, rest[:n], rest[n:]
    if headers.get("transfer-encoding") == "chunked":
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            line, rest = rest.split(b"\r\n", 1)
            size = int(line, 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                return status, headers, body, rest
    while True:
        d = sock.recv(65536)
        if not d:
            return status, headers, rest, b""
        rest += d


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def prefix():
    d = tempfile.mkdtemp(prefix="sluice-dp-")
    yield d
