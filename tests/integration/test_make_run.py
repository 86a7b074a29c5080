"""`make run` as a newcomer uses it: scripts/run.sh (what `make run` runs after building) on a
fresh data folder, then the README's walkthrough typed as written (only the ports and the
upstream URL changed: free ports here, and a local upstream instead of httpbin.org), then
Ctrl-C, after which nothing may be left running: no sluice process, no PostgreSQL.

The data folder is a temp dir (SLUICE_RUN_DATA), so the repository's ./sluice-data is never
touched; ports come in through the ordinary SLUICE_* settings, which run.sh's children inherit."""

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from sluice_harness import base_env, bin_dir, free_port, repo_root

RUN_SH = os.path.join(repo_root(), "scripts", "run.sh")
README = os.path.join(repo_root(), "README.md")
START_TIMEOUT = 45  # initdb + migrations + certs + both planes, on a cold machine
STOP_TIMEOUT = 90  # seconds; generous: sanitizer builds on a busy 2-core machine are slow


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every GET with what it received, so the test sees the path the proxy sent."""

    def do_GET(self):
        body = json.dumps({"upstream": "sluice-test", "path": self.path,
                           "host": self.headers.get("Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def descendants(pid):
    """Every live process below pid (by /proc parent links)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def processes_mentioning(text):
    """(pid, cmdline) of live processes whose command line contains text."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            line = cmdline(int(entry))
            if line and text in line:
                found.append((int(entry), line))
    return found


def walkthrough_commands():
    """The shell commands of the README's walkthrough block, continuation lines joined."""
    with open(README) as f:
        text = f.read()
    m = re.search(r"^##[^\n]*Walkthrough[^\n]*\n(.*?)^```(?:sh|bash)\n(.*?)^```", text,
                  re.M | re.S)
    assert m, "README.md has no walkthrough shell block"
    joined = re.sub(r"\\\n\s*", " ", m.group(2))
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def run_curl(command):
    """Runs one README curl command; returns (status, body)."""
    r = subprocess.run(["bash", "-c", command + " --max-time 10 -sS"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, "%s\n%s" % (command, r.stderr)
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    return int(head.split()[1]), body


class MakeRun:
    """scripts/run.sh in its own session (like a terminal's foreground job)."""

    def __init__(self):
        # Under /tmp with mode 755: as root, run.sh hands the PostgreSQL cluster to the
        # 'postgres' user, which must be able to reach it (pytest's tmp_path is 700).
        self.data = tempfile.mkdtemp(prefix="sluice-make-run-")
        os.chmod(self.data, 0o755)
        self.admin = free_port()
        self.proxy, self.proxy_tls = free_port(), free_port()
        self.status = free_port()
        self.cluster = free_port()
        self.log_path = os.path.join(self.data, "run.log")
        env = base_env()
        env.update({
            "SLUICE_RUN_DATA": self.data,
            "SLUICE_RUN_BIN": bin_dir(),
            "SLUICE_ADMIN_LISTEN": "127.0.0.1:%d" % self.admin,
            "SLUICE_CLUSTER_LISTEN": "127.0.0.1:%d" % self.cluster,
            "SLUICE_CLUSTER_CONTROL_PLANE": "127.0.0.1:%d" % self.cluster,
            "SLUICE_PROXY_LISTEN": "127.0.0.1:%d, 127.0.0.1:%d ssl" % (self.proxy, self.proxy_tls),
            "SLUICE_STATUS_LISTEN": "127.0.0.1:%d" % self.status,
        })
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["bash", RUN_SH], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=repo_root())
        self.seen = {}  # pid -> cmdline of everything it started, noted while running

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def note_children(self):
        for pid in descendants(self.proc.pid):
            line = cmdline(pid)
            if line:
                self.seen[pid] = line

    def wait_admin(self):
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("run.sh exited with %d:\n%s" % (self.proc.returncode,
                                                                     self.log()))
            self.note_children()
            # As a newcomer does: start typing once run.sh says the gateway is running
            # (printed after both planes are up).
            if "Sluice is running." in self.log():
                try:
                    if requests.get("http://127.0.0.1:%d/status" % self.admin,
                                    timeout=2).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise AssertionError("run.sh did not say the gateway is running within %d s:\n%s" % (START_TIMEOUT, self.log()))

    def interrupt(self):
        """Ctrl-C: SIGINT to the whole foreground process group, as a terminal sends it."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        finally:
            self._log.close()

    def kill(self):
        """Last-resort cleanup if a test failed half-way."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        pgdata = os.path.join(self.data, "postgres")
        pg_ctl = sorted(glob_pg_bins())[-1:] if glob_pg_bins() else []
        if pg_ctl and os.path.exists(os.path.join(pgdata, "postmaster.pid")):
            cmd = [os.path.join(pg_ctl[0], "pg_ctl"), "-D", pgdata, "-m", "immediate", "stop"]
            if os.geteuid() == 0:
                cmd = ["runuser", "-u", "postgres", "--"] + cmd
            subprocess.run(cmd, capture_output=True, timeout=30)
        if not self._log.closed:
            self._log.close()
        shutil.rmtree(self.data, ignore_errors=True)


def glob_pg_bins():
    base = "/usr/lib/postgresql"
    if not os.path.isdir(base):
        return []
    return [os.path.join(base, v, "bin") for v in os.listdir(base)
            if os.path.isdir(os.path.join(base, v, "bin"))]


@pytest.fixture(scope="module")
def make_run():
    top_build = bin_dir()
    for b in ("sluice-cp",):
        if not os.access(os.path.join(top_build, b), os.X_OK):
            pytest.fail("%s/%s is missing: `make run` runs the binaries in build/ (run make)"
                        % (top_build, b))
    if not glob_pg_bins():
        pytest.fail("PostgreSQL server programs are missing (Debian package postgresql)")
    run = MakeRun()
    try:
        run.wait_admin()
        yield run
    finally:
        run.kill()


def dp_runs(run):
    return any(line.endswith("sluice-dp serve") for line in run.seen.values())


@pytest.fixture(scope="module")
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def readme_command(run, upstream, command):
    """A README command with only its endpoints moved: admin/proxy ports, the upstream URL."""
    return (command.replace("localhost:8001", "localhost:%d" % run.admin)
            .replace("localhost:8000", "localhost:%d" % run.proxy)
            .replace("http://httpbin.org", upstream))


def walkthrough_admin_steps(make_run, upstream):
    """Runs the walkthrough's two Admin API commands once per `make run` (each pytest worker
    has its own, and either test below may be the first there to need them)."""
    if getattr(make_run, "walkthrough_done", False):
        return
    commands = walkthrough_commands()
    admin = [c for c in commands if "8001" in c]
    assert len(admin) == 2, "expected the service and route commands: %s" % commands
    status, body = run_curl(readme_command(make_run, upstream, admin[0]))
    assert status == 201, body
    service = json.loads(body)
    assert service["host"] == "127.0.0.1" and service["name"] == "httpbin-service"
    status, body = run_curl(readme_command(make_run, upstream, admin[1]))
    assert status == 201, body
    assert json.loads(body)["service"] == {"id": service["id"]}
    make_run.walkthrough_done = True


def test_walkthrough_creates_service_and_route(make_run, upstream):
    walkthrough_admin_steps(make_run, upstream)
    make_run.note_children()


def test_walkthrough_proxies_through_the_data_plane(make_run, upstream):
    walkthrough_admin_steps(make_run, upstream)
    make_run.note_children()
    assert dp_runs(make_run), "run.sh started no data plane:\n" + make_run.log()
    commands = [c for c in walkthrough_commands() if "8000" in c]
    assert len(commands) == 1, walkthrough_commands()
    command = readme_command(make_run, upstream, commands[0])
    # The route reaches the data plane asynchronously (snapshot push): allow it a moment.
    deadline = time.time() + 15
    while True:
        status, body = run_curl(command)
        if status == 200 or time.time() > deadline:
            break
        time.sleep(0.25)
    assert status == 200, "proxy answered %d: %s\n%s" % (status, body, make_run.log())
    got = json.loads(body)
    assert got["upstream"] == "sluice-test"
    assert got["path"] == "/get", "strip_path: /httpbin/get must reach the upstream as /get"


def test_ctrl_c_stops_everything(make_run):
    make_run.note_children()
    started = dict(make_run.seen)
    assert any("sluice-cp" in line and "serve" in line for line in started.values()), started
    make_run.interrupt()
    out = make_run.log()
    assert "stopped" in out.splitlines()[-1], out[-2000:]
    leftover = [(pid, line) for pid, line in started.items() if cmdline(pid) == line]
    assert not leftover, "still running after Ctrl-C: %s" % leftover
    assert not processes_mentioning(make_run.data), "processes still use the data folder: %s" % (
        processes_mentioning(make_run.data))
    assert not os.path.exists(os.path.join(make_run.data, "postgres", "postmaster.pid")), \
        "PostgreSQL did not stop"
    for port in (make_run.admin, make_run.proxy, make_run.status):
        with pytest.raises(requests.ConnectionError):
            requests.get("http://127.0.0.1:%d/" % port, timeout=2)
