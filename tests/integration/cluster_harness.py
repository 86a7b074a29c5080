"""Data planes and cluster certificates for the cluster-sync tests: `sluice-dp serve` on free
ports, connected to a control plane over mutual TLS, plus a tiny echo upstream to prove a data
plane really serves the config it reports."""

import http.server
import json
import os
import subprocess
import tempfile
import threading
import time

import requests

from sluice_harness import base_env, bin_dir, free_port, log_problems, run_cp, terminate


def dp_binary():
    return os.path.join(bin_dir(), "sluice-dp")


def cluster_certs(directory):
    """`sluice-cp certs generate --out DIR`: returns (cert path, key path)."""
    r = run_cp(["certs", "generate", "--out", directory], base_env())
    if r.returncode != 0:
        raise RuntimeError("certs generate failed:\n" + r.output)
    return os.path.join(directory, "cluster.crt"), os.path.join(directory, "cluster.key")


def cluster_env(cert, key, extra=None):
    env = {"SLUICE_CLUSTER_CERT": cert, "SLUICE_CLUSTER_CERT_KEY": key}
    env.update(extra or {})
    return env


class EchoUpstream:
    """An HTTP server on a free port answering every request with JSON naming itself and the
    request it saw, so a test can tell which upstream served it."""

    def __init__(self, name="upstream"):
        self.name = name
        self.port = free_port()
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                out = json.dumps({"upstream": outer.name, "method": self.command,
                                  "path": self.path, "headers": dict(self.headers)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class DataPlane:
    """`sluice-dp serve` on free ports, one worker thread, its log captured."""

    def __init__(self, cluster_port, cert, key, workdir=None, extra_env=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="sluice-dp-")
        self.prefix = os.path.join(self.dir, "prefix")
        os.makedirs(self.prefix, exist_ok=True)
        self.proxy_port = free_port()
        self.status_port = free_port()
        self.log_path = os.path.join(self.dir, "sluice-dp.log")
        self.env = base_env()
        self.env.update({
            "SLUICE_PREFIX": self.prefix,
            "SLUICE_PROXY_LISTEN": "127.0.0.1:%d" % self.proxy_port,
            "SLUICE_STATUS_LISTEN": "127.0.0.1:%d" % self.status_port,
            "SLUICE_WORKER_THREADS": "1",
            "SLUICE_CLUSTER_CONTROL_PLANE": "127.0.0.1:%d" % cluster_port,
            "SLUICE_CLUSTER_CERT": cert,
            "SLUICE_CLUSTER_CERT_KEY": key,
        })
        self.env.update(extra_env or {})
        self.proc = None
        self._log = None

    @property
    def proxy_url(self):
        return "http://127.0.0.1:%d" % self.proxy_port

    @property
    def status_url(self):
        return "http://127.0.0.1:%d" % self.status_port

    def start(self, timeout=20):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([dp_binary(), "serve"], env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sluice-dp exited with %d:\n%s" % (self.proc.returncode,
                                                                      self.log()))
            try:
                requests.get(self.status_url + "/status", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("sluice-dp status listener did not answer:\n" + self.log())

    def status(self):
        return requests.get(self.status_url + "/status", timeout=5).json()

    def ready(self):
        return requests.get(self.status_url + "/status/ready", timeout=5).status_code == 200

    def config_version(self):
        return int(self.status().get("configuration_version") or 0)

    def config_hash(self):
        return self.status().get("configuration_hash")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def stop(self, timeout=40):
        problems = terminate(self.proc, "sluice-dp", timeout)
        if self._log:
            self._log.close()
            self._log = None
        return problems + log_problems(self.log())


def wait_for(predicate, timeout=15, interval=0.02, what="condition"):
    """Polls predicate until it returns a truthy value; returns it, or raises AssertionError
    naming what was awaited. A functional deadline, not a performance assertion."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (requests.RequestException, ValueError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))
