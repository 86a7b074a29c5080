#!/usr/bin/python3
"""Router scale benchmark: requests/s through a real sluice-dp with 1, 10,000 and 100,000 routes,
plus the router's build time and memory at each size (from the DP's own "router built" log line)
and the DP's resident memory. Not a test: it measures and prints, never gates.

Routes look like a large platform's: most are plain prefixes ("/svc<i>"), every tenth is a regex
route scoped to its own host ("h<i>.bench", "~/re<i>/\\d+"), all on one service pointing at an
nginx upstream that answers a fixed small body. The benchmark request hits the plain route in
the middle of the set. wrk drives keepalive connections; the figure of interest is the ratio of
each size's requests/s to the 1-route figure (the target is >= 0.9 at 100,000 routes).

    make BUILD=build all
    SLUICE_BIN_DIR=$PWD/build /usr/bin/python3 tests/bench/router_scale.py \
        [--sizes 1,10000,100000] [--seconds 10] [--conns 50] [--workers 1] [--rounds 1]
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from dp_harness import DataPlane, config, free_port, route, service, write_snapshot  # noqa: E402

BUILT = re.compile(r"router built: (\d+) routes \((\d+) sub-routes\) in ([\d.]+) ms, (\d+) KB")


def start_upstream(work):
    port = free_port()
    d = os.path.join(work, "up")
    os.makedirs(os.path.join(d, "logs"))
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("""worker_processes 1;
error_log %s/logs/error.log warn;
pid %s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:%d; location / { return 200 "%s"; } }
}
""" % (d, d, port, "x" * 64))
    proc = subprocess.Popen(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-g",
                             "daemon off;"])
    return proc, port


def routes_for(n, svc):
    rs = []
    for i in range(n):
        if i % 10 == 9:
            rs.append(route("r%d" % i, svc, hosts=["h%d.bench" % i], paths=["~/re%d/\\d+" % i],
                            created_at=1700000000 + i))
        else:
            rs.append(route("r%d" % i, svc, paths=["/svc%d" % i], created_at=1700000000 + i))
    return rs


def target_index(n):
    i = n // 2
    while i % 10 == 9:
        i += 1
    return min(i, n - 1) if n > 1 else 0


def wait_routed(port, path, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
                if r.status == 200:
                    return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wrk(port, path, seconds, conns):
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency",
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)] if p99 else 0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(p99.group(1)) * scale if p99 else 0.0, int(errors.group(1)) if errors else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10000,100000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="wrk runs per size (best is kept)")
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit("%s is needed (make deps)" % tool)

    work = tempfile.mkdtemp(prefix="sluice-router-bench-")
    up, up_port = start_upstream(work)
    rows = []
    try:
        svc = service("bench", "127.0.0.1", up_port)
        for n in [int(s) for s in args.sizes.split(",")]:
            prefix = os.path.join(work, "dp-%d" % n)
            write_snapshot(prefix, config([svc], routes_for(n, svc)))
            t0 = time.time()
            dp = DataPlane(prefix, workers=args.workers)
            try:
                path = "/svc%d/x" % target_index(n)
                if not wait_routed(dp.port, path, 120):
                    sys.exit("size %d: the route never answered\n%s" % (n, dp.read_log()[-2000:]))
                ready = time.time() - t0
                m = BUILT.findall(dp.read_log())
                if not m:
                    sys.exit("size %d: no 'router built' line in the DP log" % n)
                nroutes, nsub, build_ms, kb = m[-1]
                wrk(dp.port, path, 1, args.conns)  # warm-up: connections, pools, caches
                best = max((wrk(dp.port, path, args.seconds, args.conns)
                            for _ in range(args.rounds)), key=lambda x: x[0])
                rows.append((n, int(nroutes), int(nsub), float(build_ms), int(kb),
                             rss_kb(dp.proc.pid), ready, best))
            finally:
                dp.stop()
    finally:
        up.send_signal(signal.SIGQUIT)
        up.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0][7][0] if rows else 1
    print("%9s %9s %10s %10s %10s %9s %11s %9s %8s %7s" % (
        "routes", "sub", "build ms", "router KB", "DP RSS MB", "ready s", "req/s", "p99 ms",
        "non-2xx", "ratio"))
    for n, nr, ns, ms, kb, rss, ready, (rps, p99, bad) in rows:
        print("%9d %9d %10.1f %10d %10.1f %9.1f %11.0f %9.2f %8d %7.2f" % (
            nr, ns, ms, kb, rss / 1024.0, ready, rps, p99, bad, rps / base))


if __name__ == "__main__":
    main()
