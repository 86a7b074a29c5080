"""Starts the real things the integration tests and benchmarks drive: a private PostgreSQL 15
and the sluice-cp binary, each on free loopback ports, with logs kept for failure reports.

Used by conftest.py (pytest fixtures) and tests/bench/admin_writes.py, so both start the
control plane the same way. Nothing here asserts; callers decide what is a failure.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import requests

PG_BIN = "/usr/lib/postgresql/15/bin"
PSQL = "/usr/bin/psql"
SLUICE_PASSWORD = "sluice-test-pw"
SUPERUSER = "postgres"

# Lines that mean the control plane hit something it should never hit: the nginx-tests habit.
BAD_LOG_MARKERS = ("[alert]", "AddressSanitizer", "runtime error:", "LeakSanitizer")


def repo_root():
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def bin_dir():
    """The folder holding sluice-cp/sluice-dp: $SLUICE_BIN_DIR, else <repo>/build."""
    return os.path.abspath(os.environ.get("SLUICE_BIN_DIR") or os.path.join(repo_root(), "build"))


def cp_binary():
    return os.path.join(bin_dir(), "sluice-cp")


def free_port():
    """A TCP port nobody listens on right now (the kernel picks it; small race accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port with nothing listening, for 'database unreachable' checks."""
    return free_port()


def base_env():
    """os.environ without any SLUICE_* variable: the test runner's SLUICE_BIN_DIR would
    otherwise reach sluice-cp as an unknown setting 'bin_dir'."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    # Sanitizer builds: report leaks and make UBSan findings visible in the log.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


class PgCluster:
    """A throw-away PostgreSQL 15 cluster: 127.0.0.1 only, socket in its own folder, fsync off.

    PostgreSQL refuses to run as root, so as root its programs run as the 'postgres' user.
    Tests talk to it as the superuser over the unix socket (trust); sluice-cp uses TCP with
    the 'sluice' role and a password (scram), so wrong-password errors are real ones."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "sluice"
        self.password = SLUICE_PASSWORD
        self.running = False
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)

    def _run_pg(self, args, **kw):
        cmd = ([PG_BIN + "/" + args[0]] + list(args[1:]))
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

    def start(self):
        self._run_pg(["initdb", "-D", self.data, "-U", SUPERUSER, "--auth-local=trust",
                      "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8"])
        # free_port() only finds a port that was free a moment ago; on a busy machine another
        # process may take it first, so a failed start tries a fresh port (twice more).
        for attempt in range(3):
            opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
                    % (self.port, self.dir))
            try:
                self._run_pg(["pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w", "-t",
                              "60", "start"])
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                self.port = free_port()
        self.running = True
        self.psql("CREATE ROLE sluice LOGIN PASSWORD '%s'" % self.password)
        return self

    def stop(self):
        if self.running:
            try:
                self._run_pg(["pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
            except subprocess.CalledProcessError:
                pass
            self.running = False

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql_cmd(self, db="postgres"):
        return [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.dir,
                "-p", str(self.port), "-U", SUPERUSER, "-d", db]

    def psql(self, sql, db="postgres", check=True):
        """Runs sql as the superuser; returns stdout stripped (rows '|'-separated)."""
        r = subprocess.run(self.psql_cmd(db) + ["-c", sql], capture_output=True, text=True,
                           timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("psql failed (%s): %s" % (sql, r.stderr))
        return r.stdout.strip()

    def create_database(self, prefix="t"):
        """A new empty database owned by the sluice role; returns its name."""
        name = "%s_%s" % (prefix, uuid.uuid4().hex[:12])
        self.psql("CREATE DATABASE %s OWNER sluice" % name)
        return name

    def session(self, db):
        return PsqlSession(self, db)


class PsqlSession:
    """A long-lived psql connection fed through stdin: for holding locks or LISTENing while the
    test does other things. Output goes to a file and is read after close(); the state of the
    session is observed from other connections (pg_locks, pg_stat_activity)."""

    def __init__(self, pg, db):
        self.pg = pg
        self.db = db
        self.out_path = tempfile.mktemp(prefix="psql-", suffix=".out", dir=pg.dir)
        self._out = open(self.out_path, "w")
        self.proc = subprocess.Popen(pg.psql_cmd(db) + ["-v", "ON_ERROR_STOP=0"],
                                     stdin=subprocess.PIPE, stdout=self._out,
                                     stderr=subprocess.STDOUT, text=True)
        self.pid = None
        self.backend_pid()  # before any statement, so wait_idle_after sees the caller's last one

    def send(self, sql):
        self.proc.stdin.write(sql.rstrip() + "\n")
        self.proc.stdin.flush()

    def backend_pid(self, timeout=10):
        """The server pid of this session, found by a marker query it runs."""
        if self.pid:
            return self.pid
        marker = "psql_session_%s" % uuid.uuid4().hex[:8]
        self.send("SET application_name = '%s';" % marker)
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = self.pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name = '%s'"
                               % marker, db=self.db)
            if out:
                self.pid = int(out.splitlines()[0])
                return self.pid
            time.sleep(0.05)
        raise RuntimeError("psql session did not start")

    def wait_idle_after(self, query_prefix, timeout=10):
        """Waits until this session has run a statement starting with query_prefix and is idle
        (or idle in transaction) again, i.e. the statement finished."""
        pid = self.backend_pid()
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = self.pg.psql("SELECT state, query FROM pg_stat_activity WHERE pid = %d" % pid,
                               db=self.db)
            if out:
                state, _, query = out.partition("|")
                if state.startswith("idle") and query.strip().upper().startswith(
                        query_prefix.upper()):
                    return
            time.sleep(0.05)
        raise RuntimeError("psql session did not finish %r" % query_prefix)

    def close(self, timeout=20):
        """Ends the session (its open transaction rolls back) and returns everything it printed."""
        try:
            self.proc.stdin.write("\\q\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        with open(self.out_path) as f:
            return f.read()


def cp_env(pg, db, admin_port=None, cluster_port=None, prefix=None, extra=None):
    """The SLUICE_* environment for a control plane on database db."""
    env = base_env()
    env.update({
        "SLUICE_PG_HOST": pg.host,
        "SLUICE_PG_PORT": str(pg.port),
        "SLUICE_PG_USER": pg.user,
        "SLUICE_PG_PASSWORD": pg.password,
        "SLUICE_PG_DATABASE": db,
    })
    if admin_port:
        env["SLUICE_ADMIN_LISTEN"] = "127.0.0.1:%d" % admin_port
    if cluster_port:
        env["SLUICE_CLUSTER_LISTEN"] = "127.0.0.1:%d" % cluster_port
    if prefix:
        env["SLUICE_PREFIX"] = prefix
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def run_cp(args, env, timeout=60, conf=None):
    """Runs `sluice-cp [--conf FILE] ARGS...` to completion; returns the CompletedProcess with
    .output = stdout + stderr (messages may go to either)."""
    cmd = [cp_binary()]
    if conf:
        cmd += ["--conf", conf]
    cmd += list(args)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    r.output = (r.stdout or "") + (r.stderr or "")
    return r


def log_problems(text):
    """The lines of a log that contain a marker of a bug (alert or sanitizer report)."""
    return [line for line in text.splitlines() if any(m in line for m in BAD_LOG_MARKERS)]


def terminate(proc, name, timeout):
    """Sends SIGTERM to a running process and waits; kills it past timeout. Returns the
    problems seen (a process that had to be killed did not shut down cleanly)."""
    if not proc or proc.poll() is not None:
        return []
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
        return []
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return ["%s did not exit within %ds of SIGTERM" % (name, timeout)]


class ControlPlane:
    """`sluice-cp serve` on free ports, stdout+stderr captured in a log file.

    start() waits (bounded) until the Admin API answers any HTTP request; stop() sends SIGTERM
    and returns the list of problems (bad log lines, no exit) for the caller to fail on."""

    def __init__(self, pg, db, workdir=None, extra_env=None, token=None, cluster_port=None):
        self.pg = pg
        self.db = db
        self.dir = workdir or tempfile.mkdtemp(prefix="sluice-cp-")
        os.makedirs(self.dir, exist_ok=True)
        self.prefix = os.path.join(self.dir, "prefix")
        os.makedirs(self.prefix, exist_ok=True)
        self.admin_port = free_port()
        self.cluster_port = cluster_port or free_port()
        self.log_path = os.path.join(self.dir, "sluice-cp.log")
        self.token = token
        extra = dict(extra_env or {})
        if token:
            extra["SLUICE_ADMIN_TOKEN"] = token
        self.env = cp_env(pg, db, self.admin_port, self.cluster_port, self.prefix, extra)
        self.url = "http://127.0.0.1:%d" % self.admin_port
        self.proc = None
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = "Bearer " + token

    def start(self, timeout=20):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([cp_binary(), "serve"], env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sluice-cp serve exited with %d before answering:\n%s"
                                   % (self.proc.returncode, self.log()))
            try:
                requests.get(self.url + "/", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("sluice-cp Admin API did not answer within %ds:\n%s"
                           % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, timeout=15):
        """SIGTERM, wait; returns a list of problems (empty when the shutdown was clean)."""
        problems = terminate(self.proc, "sluice-cp", timeout)
        if self.proc:
            self._log.close()
        self.session.close()
        return problems + log_problems(self.log())

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def config_version(self):
        return int(self.pg.psql("SELECT config_version FROM sluice_cluster", db=self.db))
