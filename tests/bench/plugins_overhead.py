#!/usr/bin/python3
"""Plugin overhead: requests/s through one sluice-dp on a route with key-auth + rate-limiting
against a route without plugins, same process, same upstream, alternating rounds so machine
drift hits both alike. Prints each round, the medians and their ratio (issue target: >= 0.85).

    tests/bench/plugins_overhead.py [ROUNDS] [SECONDS]     (defaults 3 rounds of 5 s)

Needs build/sluice-dp (or SLUICE_BIN_DIR), wrk and nginx-light (make deps). Not a test."""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from dp_harness import DataPlane, config, free_port, route, service, write_snapshot  # noqa: E402
from plugin_harness import consumer, keyauth, plugin  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
CONNS = int(os.environ.get("CONNS", "50"))


def start_nginx(workdir):
    port = free_port()
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  server { listen 127.0.0.1:%d; location / { return 200 "%s"; } } }
""" % (workdir, workdir, port, "x" * 64))
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def wrk(port, path, headers):
    cmd = ["wrk", "-t1", "-c%d" % CONNS, "-d%ds" % SECONDS]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + ["http://127.0.0.1:%d%s" % (port, path)], capture_output=True,
                         text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit("unexpected errors on %s:\n%s" % (path, out))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    if not shutil.which("wrk") or not shutil.which("nginx"):
        raise SystemExit("needs wrk and nginx (make deps)")
    work = tempfile.mkdtemp(prefix="sluice-bench-plugins-")
    nginx, up_port = start_nginx(work)
    dp = None
    try:
        svc = service("bench", "127.0.0.1", up_port)
        plain = route("plain", svc, paths=["/plain"])
        guarded = route("guarded", svc, paths=["/guarded"])
        user = consumer("bench-user")
        plugins = [plugin("key-auth", "b", route=guarded),
                   plugin("rate-limiting", "b", route=guarded, second=10 ** 9, hour=10 ** 12)]
        prefix = os.path.join(work, "dp")
        write_snapshot(prefix, config([svc], [plain, guarded], plugins=plugins, consumers=[user],
                                      keyauth_credentials=[keyauth(user, "bench-key")]))
        dp = DataPlane(prefix, workers=1)
        results = {"none": [], "key-auth+rate-limiting": []}
        for r in range(ROUNDS):
            a = wrk(dp.port, "/plain", [])
            b = wrk(dp.port, "/guarded", ["apikey: bench-key"])
            results["none"].append(a)
            results["key-auth+rate-limiting"].append(b)
            print("round %d: no plugins %.0f req/s, key-auth+rate-limiting %.0f req/s" % (
                r + 1, a, b), flush=True)
        base = statistics.median(results["none"])
        with_plugins = statistics.median(results["key-auth+rate-limiting"])
        print("median: no plugins %.0f req/s, key-auth+rate-limiting %.0f req/s, ratio %.2f" % (
            base, with_plugins, with_plugins / base))
    finally:
        if dp:
            dp.stop()
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
