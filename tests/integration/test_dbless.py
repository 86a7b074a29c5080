"""DB-less data planes (issue 7): `declarative_config` makes sluice-dp serve a Kong file with
no control plane; SIGHUP reloads it without failing a request; a bad file is refused (at start:
exit non-zero naming the problem; on SIGHUP: an [error] line and the old config keeps serving).
"""

import hashlib
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from cluster_harness import EchoUpstream, dp_binary, wait_for
from sluice_harness import base_env, closed_port, free_port, log_problems


def kong_file(port, extra_routes=""):
    """Two services on the echo upstream, one by URL, one through an upstream with a target;
    prefix and regex routes."""
    return """_format_version: "3.0"
services:
- name: orders
  url: http://orders.internal/api
  routes:
  - name: orders-prefix
    paths: [/orders]
  - name: orders-regex
    paths: ["~/v[0-9]+/orders$"]
    strip_path: false
- name: plain
  url: http://127.0.0.1:%(port)d
  routes:
  - name: plain-route
    paths: [/plain]
%(extra)s
upstreams:
- name: orders.internal
  targets:
  - target: 127.0.0.1:%(port)d
""" % {"port": port, "extra": extra_routes}


NEW_ROUTE = """  - name: fresh-route
    paths: [/fresh]
"""


class DblessDP:
    """`sluice-dp serve` with declarative_config and no control plane (cluster_control_plane
    points at a closed port, so a DP that tried to use it would show it)."""

    def __init__(self, workdir, conf_path, workers=2):
        self.dir = str(workdir)
        self.prefix = os.path.join(self.dir, "prefix")
        os.makedirs(self.prefix, exist_ok=True)
        self.proxy_port, self.status_port = free_port(), free_port()
        self.log_path = os.path.join(self.dir, "sluice-dp.log")
        self.env = base_env()
        self.env.update({
            "SLUICE_PREFIX": self.prefix,
            "SLUICE_PROXY_LISTEN": "127.0.0.1:%d" % self.proxy_port,
            "SLUICE_STATUS_LISTEN": "127.0.0.1:%d" % self.status_port,
            "SLUICE_WORKER_THREADS": str(workers),
            "SLUICE_CLUSTER_CONTROL_PLANE": "127.0.0.1:%d" % closed_port(),
            "SLUICE_DECLARATIVE_CONFIG": conf_path,
        })
        self.proc = None
        self._log = None

    @property
    def proxy_url(self):
        return "http://127.0.0.1:%d" % self.proxy_port

    @property
    def status_url(self):
        return "http://127.0.0.1:%d" % self.status_port

    def launch(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([dp_binary(), "serve"], env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def start(self, timeout=20):
        self.launch()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sluice-dp exited with %d:\n%s" % (self.proc.returncode,
                                                                      self.log()))
            try:
                if requests.get(self.status_url + "/status/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("sluice-dp was not ready within %ds:\n%s" % (timeout, self.log()))

    def status(self):
        return requests.get(self.status_url + "/status", timeout=5).json()

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, timeout=40):
        problems = []
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                problems.append("sluice-dp did not exit within %ds of SIGTERM" % timeout)
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return problems + log_problems(self.log())


@pytest.fixture
def upstream():
    u = EchoUpstream("origin")
    yield u
    u.close()


@pytest.fixture
def dps(tmp_path):
    """Data planes started by the test; stopped after, failing on bad log lines."""
    started = []

    def make(conf_path, **kw):
        d = DblessDP(tmp_path / ("dp%d" % len(started)), conf_path, **kw)
        started.append(d)
        return d

    yield make
    problems = []
    for d in started:
        problems += d.stop()
    assert not problems, "\n".join(problems[:50])


def write(path, text):
    """Writes the file the way an operator's tool should: a temp file renamed over it."""
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, str(path))
    return str(path)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def get(dp, path, **kw):
    return requests.get(dp.proxy_url + path, timeout=5, **kw)


# ------------------------------------------------------------------ serving a file

def test_serves_the_file_without_a_control_plane(tmp_path, upstream, dps):
    text = kong_file(upstream.port)
    dp = dps(write(tmp_path / "kong.yml", text)).start()

    assert requests.get(dp.status_url + "/status/ready", timeout=5).status_code == 200
    st = dp.status()
    assert st["configuration_hash"] == sha256(text)
    assert isinstance(st["configuration_version"], int)
    assert st["control_plane"]["configured"] is False

    r = get(dp, "/orders/7")  # prefix route, through the upstream's target, strip_path
    assert r.status_code == 200 and r.json()["path"] == "/api/7", r.text
    r = get(dp, "/v3/orders")  # regex route
    assert r.status_code == 200 and r.json()["path"] == "/api/v3/orders", r.text
    assert get(dp, "/v3/orders/more").status_code == 404
    r = get(dp, "/plain/x")
    assert r.status_code == 200 and r.json()["path"] == "/x", r.text
    assert get(dp, "/nothing-here").status_code == 404
    assert "kong.yml" in dp.log(), dp.log()  # the log says which file it serves


def test_json_file(tmp_path, upstream, dps):
    text = ('{"_format_version": "3.0", "services": [{"name": "j", "url": "http://127.0.0.1:%d",'
            ' "routes": [{"name": "jr", "paths": ["/json"]}]}]}' % upstream.port)
    dp = dps(write(tmp_path / "kong.json", text)).start()
    assert get(dp, "/json/a").json()["path"] == "/a"
    assert dp.status()["configuration_hash"] == sha256(text)


# ------------------------------------------------------------------ SIGHUP

class ClientLoop(threading.Thread):
    """Requests /orders/<n> back to back on fresh connections until stopped; records every
    failure (exception or a status other than 200)."""

    def __init__(self, dp):
        super().__init__(daemon=True)
        self.dp, self.ok, self.failures = dp, 0, []
        self.stopping = threading.Event()

    def run(self):
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                r = requests.get(self.dp.proxy_url + "/orders/%d" % n, timeout=5,
                                 headers={"Connection": "close"})
                if r.status_code == 200:
                    self.ok += 1
                else:
                    self.failures.append((n, r.status_code, r.text[:200]))
            except requests.RequestException as e:
                self.failures.append((n, "exception", repr(e)))

    def stop(self):
        self.stopping.set()
        self.join(10)


def test_sighup_reloads_without_failed_requests(tmp_path, upstream, dps):
    conf = tmp_path / "kong.yml"
    old = kong_file(upstream.port)
    new = kong_file(upstream.port, NEW_ROUTE)
    dp = dps(write(conf, old)).start()
    assert get(dp, "/fresh/1").status_code == 404

    loop = ClientLoop(dp)
    loop.start()
    try:
        wait_for(lambda: loop.ok > 20, what="the client loop running")
        for i in range(5):  # several reloads while requests flow, ending on the new file
            text = new if i % 2 == 0 else old
            write(conf, text)
            dp.hup()
            wait_for(lambda: dp.status()["configuration_hash"] == sha256(text),
                     what="reload %d applied" % i)
            time.sleep(0.1)
        r = get(dp, "/fresh/1")
        before = loop.ok
        wait_for(lambda: loop.ok > before + 20, what="more requests after the reloads")
    finally:
        loop.stop()
    assert r.status_code == 200 and r.json()["path"] == "/1", r.text
    assert not loop.failures, loop.failures[:10]
    assert loop.ok > 40
    assert dp.log().count("SIGHUP: config reloaded") >= 5, dp.log()[-3000:]


def test_sighup_with_a_bad_file_keeps_the_old_config(tmp_path, upstream, dps):
    conf = tmp_path / "kong.yml"
    good = kong_file(upstream.port)
    dp = dps(write(conf, good)).start()

    bad_files = [
        # an invalid route path: the error names the entity and field
        (kong_file(upstream.port, "  - name: broken-route\n    paths: [no-slash]\n"),
         ("broken-route", "paths")),
        # a reference to a service the file does not have
        (good + "routes:\n- name: lost\n  service: ghost\n  paths: [/lost]\n",
         ("lost", "ghost")),
        # YAML that does not parse: the error names the line
        (good + "  - oops: [\n", ("line",)),
    ]
    for n, (text, needles) in enumerate(bad_files):
        write(conf, text)
        mark = len(dp.log())
        dp.hup()
        line = wait_for(lambda: [l for l in dp.log()[mark:].splitlines() if "[error]" in l],
                        what="an [error] line for bad file %d" % n)[0]
        assert "SIGHUP" in line and "not reloaded" in line, line
        for needle in needles:
            assert needle in line, (needle, line)
        assert dp.status()["configuration_hash"] == sha256(good)
        r = get(dp, "/orders/1")
        assert r.status_code == 200 and r.json()["path"] == "/api/1", r.text
        assert get(dp, "/lost").status_code == 404

    os.unlink(str(conf))  # a file gone missing is refused the same way
    mark = len(dp.log())
    dp.hup()
    line = wait_for(lambda: [l for l in dp.log()[mark:].splitlines() if "[error]" in l],
                    what="an [error] line for the missing file")[0]
    assert "kong.yml" in line, line
    assert get(dp, "/orders/1").status_code == 200
    assert dp.proc.poll() is None


# ------------------------------------------------------------------ bad file at start

@pytest.mark.parametrize("name,text,needles", [
    ("bad-path", 'services:\n- name: s\n  url: http://127.0.0.1:9\n  routes:\n'
     '  - name: r\n    paths: [relative]\n', ("routes[0]", "paths")),
    ("bad-yaml", 'services:\n- name: s\n  url: http://127.0.0.1:9\n   routes: [x\n',
     ("line 5",)),
    ("bad-ref", 'routes:\n- name: r\n  service: nowhere\n  paths: [/r]\n',
     ("routes[0]", "nowhere")),
    ("bad-service", 'services:\n- name: s\n  host: 127.0.0.1\n  port: 70000\n',
     ("services[0]", "port")),
])
def test_bad_file_at_start_exits_nonzero(tmp_path, dps, name, text, needles):
    conf = write(tmp_path / (name + ".yml"), '_format_version: "3.0"\n' + text)
    dp = dps(conf).launch()
    try:
        rc = dp.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("sluice-dp kept running with a bad declarative_config")
    assert rc != 0
    out = dp.log()
    assert "declarative_config" in out, out
    for needle in needles:
        assert needle in out, (needle, out)


def test_sighup_while_starting_does_not_kill(tmp_path, upstream, dps):
    """A reload request sent while a data plane is still loading its (large) file is not
    fatal: the node comes up serving the file."""
    many = "".join("  - name: r%d\n    paths: [/many/%d]\n" % (i, i) for i in range(3000))
    dp = dps(write(tmp_path / "kong.yml", kong_file(upstream.port, many))).launch()

    # the proxy port listens before the file is loaded: reloads sent from then on must not
    # kill the node (before main() any process dies of SIGHUP, so the test waits for that)
    def listening():
        try:
            socket.create_connection(("127.0.0.1", dp.proxy_port), 0.5).close()
            return True
        except OSError:
            return False

    wait_for(listening, interval=0.001, what="the proxy port listening")
    deadline = time.time() + 20
    while time.time() < deadline and dp.proc.poll() is None:
        dp.hup()
        try:
            if requests.get(dp.status_url + "/status/ready", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.01)
    assert dp.proc.poll() is None, dp.log()
    assert get(dp, "/many/2999/x").json()["path"] == "/x"


def test_missing_file_at_start_exits_nonzero(tmp_path, dps):
    dp = dps(str(tmp_path / "absent.yml")).launch()
    assert dp.proc.wait(timeout=20) != 0
    assert "absent.yml" in dp.log(), dp.log()


def test_plugins_in_a_dbless_file(tmp_path, upstream, dps):
    """key-auth from the file is enforced when the data plane has the plugin; a data plane
    without it refuses the file at start naming the plugin (this test then skips, saying so)."""
    text = kong_file(upstream.port).replace(
        "    paths: [/orders]\n",
        "    paths: [/orders]\n    plugins:\n    - name: key-auth\n") + \
        "consumers:\n- username: alice\n  keyauth_credentials:\n  - key: alice-key\n"
    dp = dps(write(tmp_path / "kong.yml", text)).launch()
    deadline = time.time() + 20
    while time.time() < deadline and dp.proc.poll() is None:
        try:
            if requests.get(dp.status_url + "/status/ready", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.05)
    if dp.proc.poll() is not None:
        assert dp.proc.returncode != 0
        assert "key-auth" in dp.log(), dp.log()
        pytest.skip("this data plane has no key-auth plugin yet: it refuses the file naming it")
    assert get(dp, "/orders/1").status_code == 401
    assert get(dp, "/orders/1", headers={"apikey": "alice-key"}).status_code == 200
    assert get(dp, "/v1/orders").status_code == 200
