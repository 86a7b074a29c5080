#!/usr/bin/python3
"""Admin API write throughput: N concurrent clients POST services to one sluice-cp backed by a
private PostgreSQL, and the run prints writes/s and latency percentiles. Not a test: no
assertions, no thresholds. See tests/bench/README.md.

    SLUICE_BIN_DIR=$PWD/build /usr/bin/python3 tests/bench/admin_writes.py --clients 8 --count 4000
"""

import argparse
import os
import shutil
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from sluice_harness import ControlPlane, PgCluster, cp_env, run_cp  # noqa: E402


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values))) - 1))
    return sorted_values[i]


def client(url, first, count, latencies, errors, barrier):
    s = requests.Session()  # keepalive: one connection per client
    local, failed = [], 0
    barrier.wait()
    for i in range(first, first + count):
        t0 = time.perf_counter()
        try:
            r = s.post(url + "/services", json={"name": "bench-%07d" % i, "host": "b.example"},
                       timeout=60)
            ok = r.status_code == 201
        except requests.RequestException:
            ok = False
        local.append(time.perf_counter() - t0)
        failed += not ok
    s.close()
    latencies.extend(local)
    errors.append(failed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8, help="concurrent keepalive clients")
    ap.add_argument("--count", type=int, default=4000, help="services created in total")
    ap.add_argument("--keep", action="store_true", help="print the work folders, keep them")
    args = ap.parse_args()

    pg = PgCluster().start()
    plane = None
    try:
        db = pg.create_database("bench")
        r = run_cp(["migrations", "bootstrap"], cp_env(pg, db))
        if r.returncode:
            sys.exit("bootstrap failed:\n" + r.output)
        plane = ControlPlane(pg, db).start()
        per = args.count // args.clients
        total = per * args.clients
        latencies, errors = [], []
        barrier = threading.Barrier(args.clients + 1)
        threads = [threading.Thread(target=client,
                                    args=(plane.url, c * per, per, latencies, errors, barrier))
                   for c in range(args.clients)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        latencies.sort()
        print("sluice-cp admin writes: clients=%d requests=%d failed=%d" % (
            args.clients, total, sum(errors)))
        print("  %.0f writes/s  p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%.2f s)" % (
            total / elapsed, percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3,
            latencies[-1] * 1e3 if latencies else float("nan"), elapsed))
        print("  config_version after run: %d" % plane.config_version())
    finally:
        problems = plane.stop() if plane else []
        for p in problems:
            print("log problem: " + p)
        if args.keep:
            print("postgres: %s  cp: %s" % (pg.dir, plane.dir if plane else "-"))
            pg.stop()
        else:
            pg.destroy()
            if plane:
                shutil.rmtree(plane.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
