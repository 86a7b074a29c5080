#!/usr/bin/python3
"""Cluster sync benchmark (issue 3): how long from an Admin API write until every data plane
serves it, at several config sizes.

For each size it bulk-loads N routes (one service each 100 routes) straight into PostgreSQL,
starts one control plane and 3 data planes, then makes `--changes` Admin API writes one after
another (PATCH of one route's paths) and, for each, waits until all 3 data planes report the
new config version on their status listener. It prints p50/p99 of write-to-all-DPs time, the
snapshot and delta sizes, and the control plane's read/apply/encode times and the data planes'
apply time taken from their logs (full snapshots and deltas alike; dp_deltas says how many of
the data planes' applies were deltas). Then `--joins` data planes join one at a time and
apply the whole snapshot: join_apply_ms (decode+validate, build, swap, cache write, from the
joiner's log; medians, and the range of join_apply_ms) is the whole-config apply figure. Not a test: it asserts nothing.

    SLUICE_BIN_DIR=$PWD/build /usr/bin/python3 tests/bench/cluster_sync.py --sizes 100,10000,100000
"""

import argparse
import os
import re
import socket
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import requests  # noqa: E402

from cluster_harness import DataPlane, cluster_certs, cluster_env  # noqa: E402
from sluice_harness import ControlPlane, PgCluster, cp_env, run_cp  # noqa: E402


def bulk_load(pg, db, n):
    """N routes over ceil(N/100) services, inserted in one SQL statement each."""
    services = max(1, (n + 99) // 100)
    pg.psql("""
        INSERT INTO services (id, name, retries, protocol, host, port, connect_timeout,
                              write_timeout, read_timeout, enabled)
        SELECT md5('svc' || i)::uuid, 'svc-' || i, 5, 'http', '127.0.0.1', 9, 60000, 60000,
               60000, true
        FROM generate_series(1, %d) AS i;
        INSERT INTO routes (id, name, protocols, paths, https_redirect_status_code,
                            regex_priority, strip_path, path_handling, preserve_host,
                            request_buffering, response_buffering, service_id)
        SELECT md5('route' || i)::uuid, 'route-' || i, '{http,https}', ARRAY['/r/' || i], 426,
               0, true, 'v0', false, true, true, md5('svc' || (1 + i %% %d))::uuid
        FROM generate_series(1, %d) AS i;
    """ % (services, services, n), db=db)


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def dp_version(dp, session):
    """The version a data plane serves, asked with a bare socket: a poll every millisecond
    through requests costs the bench most of a core, which the data planes then lack (they
    answer /status while they apply)."""
    with socket.create_connection(("127.0.0.1", dp.status_port), timeout=60) as c:
        c.sendall(b"GET /status HTTP/1.0\r\nHost: dp\r\n\r\n")
        raw = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            raw += chunk
    m = re.search(rb'"configuration_version":(\d+)', raw)
    return int(m.group(1)) if m else 0


def wait_all(dps, sessions, version, timeout=120, interval=0.001):
    deadline = time.time() + timeout
    pending = list(range(len(dps)))
    while pending and time.time() < deadline:
        pending = [i for i in pending if dp_version(dps[i], sessions[i]) < version]
        if pending:
            time.sleep(interval)  # two cores shared with the planes: do not starve them
    if pending:
        raise RuntimeError("data planes %s never reached version %d" % (pending, version))


def run_size(pg, certs, n, changes, workdir, joins):
    db = pg.create_database("bench")
    r = run_cp(["migrations", "bootstrap"], cp_env(pg, db))
    if r.returncode:
        raise RuntimeError(r.output)
    t0 = time.time()
    bulk_load(pg, db, n)
    load_s = time.time() - t0
    cp = ControlPlane(pg, db, workdir=tempfile.mkdtemp(dir=workdir),
                      extra_env=cluster_env(*certs)).start()
    dps = [DataPlane(cp.cluster_port, *certs, workdir=tempfile.mkdtemp(dir=workdir)).start()
           for _ in range(3)]
    sessions = [requests.Session() for _ in dps]
    try:
        version = int(cp.get("/status").json()["configuration_version"])
        wait_all(dps, sessions, version)
        lat, write = [], []
        admin = requests.Session()
        for i in range(changes):
            path = "/changed/%d" % i
            t = time.perf_counter()
            resp = admin.patch(cp.url + "/routes/route-1", json={"paths": [path]}, timeout=30)
            if resp.status_code != 200:
                raise RuntimeError(resp.text)
            write.append((time.perf_counter() - t) * 1000)
            version += 1
            wait_all(dps, sessions, version)
            lat.append((time.perf_counter() - t) * 1000)
        # Data planes join once the changes are done, one after another (each stopped once
        # it serves): the whole snapshot, applied by a data plane that shares the machine only
        # with the others idling. Medians over `joins` of them.
        join_apply, join_decode, join_build, join_serving = [], [], [], []
        for _ in range(joins):
            t = time.perf_counter()
            joiner = DataPlane(cp.cluster_port, *certs,
                               workdir=tempfile.mkdtemp(dir=workdir)).start()
            with requests.Session() as js:  # polled less often: its apply is what is timed
                wait_all([joiner], [js], version, interval=0.01)
            join_serving.append((time.perf_counter() - t) * 1000)
            # the node serves before it logs the apply (the cache write comes between)
            m, until = None, time.time() + 10
            while not m and time.time() < until:
                m = re.search(r"applied \(hash \w+\) in ([0-9.]+) ms: decode\+validate "
                              r"([0-9.]+) ms, build ([0-9.]+) ms", joiner.log())
                time.sleep(0.02)
            if m:
                join_apply.append(float(m.group(1)))
                join_decode.append(float(m.group(2)))
                join_build.append(float(m.group(3)))
            joiner.stop()
        cplog = cp.log()
        sizes = re.findall(r"snapshot version \d+ built: \d+ routes, (\d+) bytes \((\d+) before", cplog)
        full_rd = re.findall(r"snapshot version \d+ built: .*, read ([0-9.]+) ms, encode "
                             r"([0-9.]+) ms", cplog)
        enc = [float(e) for _, e in full_rd]
        deltas = re.findall(r"delta version \d+ built: \d+ upserts, \d+ deletes, (\d+) bytes "
                            r"\(base version \d+\), read ([0-9.]+) ms, apply ([0-9.]+) ms", cplog)
        # The read a change costs: the delta's read when there are deltas (each full snapshot
        # repeats the read of its version's delta).
        rd = [float(r) for _, r, _ in deltas] or [float(r) for r, _ in full_rd]
        stages = {"apply": [], "decode": [], "build": [], "swap": [], "cache": []}
        full_flags = []  # per apply: a whole snapshot (not a delta)
        dp_deltas = 0
        for d in dps[:3]:
            for m in re.finditer(r"applied \(hash \w+\) in ([0-9.]+) ms: (delta of \d+ changes "
                                 r"decode\+apply|decode\+validate) ([0-9.]+) ms, build ([0-9.]+) "
                                 r"ms, swap ([0-9.]+) ms, cache write ([0-9.]+) ms", d.log()):
                g = m.groups()
                dp_deltas += g[1].startswith("delta")
                full_flags.append(not g[1].startswith("delta"))
                for k, v in zip(("apply", "decode", "build", "swap", "cache"), g[:1] + g[2:]):
                    stages[k].append(float(v))

        def med(v):
            return statistics.median(v) if v else None
        return {
            "routes": n, "bulk_load_s": load_s,
            "p50_ms": statistics.median(lat), "p99_ms": percentile(lat, 99),
            "max_ms": max(lat), "write_ms": med(write),
            "snapshot_bytes": int(sizes[-1][0]) if sizes else None,
            "canonical_bytes": int(sizes[-1][1]) if sizes else None,
            "delta_bytes": int(statistics.median(int(b) for b, _, _ in deltas)) if deltas else None,
            "cp_read_ms": med(rd), "cp_apply_ms": med([float(a) for _, _, a in deltas]),
            "cp_encode_ms": med(enc), "dp_deltas": "%d/%d" % (dp_deltas, len(stages["apply"])),
            "dp_apply_ms": med(stages["apply"]), "dp_decode_ms": med(stages["decode"]),
            "dp_build_ms": med(stages["build"]), "dp_swap_ms": med(stages["swap"]),
            "dp_cache_ms": med(stages["cache"]),
            "dp_full_apply_ms": med([a for a, b in zip(stages["apply"], full_flags) if b]),
            "join_apply_ms": med(join_apply), "join_decode_ms": med(join_decode),
            "join_build_ms": med(join_build), "join_serving_ms": med(join_serving),
            "joins": len(join_apply),
            "join_apply_range": ("%.1f-%.1f" % (min(join_apply), max(join_apply))
                                 if join_apply else None),
        }
    finally:
        for s in sessions:
            s.close()
        for d in dps:
            d.stop()
        cp.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,10000,100000")
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--joins", type=int, default=3,
                    help="data planes that join afterwards, one at a time (whole-snapshot apply)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-bench-sync-")
    pg = PgCluster()
    pg.start()
    try:
        certs = cluster_certs(os.path.join(work, "certs"))
        rows = [run_size(pg, certs, int(n), args.changes, work, args.joins)
                for n in args.sizes.split(",")]
    finally:
        pg.destroy()
    cols = ["routes", "p50_ms", "p99_ms", "max_ms", "write_ms", "snapshot_bytes",
            "canonical_bytes", "delta_bytes", "cp_read_ms", "cp_apply_ms", "cp_encode_ms",
            "dp_deltas", "dp_apply_ms", "dp_decode_ms",
            "dp_build_ms", "dp_swap_ms", "dp_cache_ms", "dp_full_apply_ms", "joins",
            "join_apply_ms", "join_apply_range", "join_decode_ms", "join_build_ms",
            "join_serving_ms"]
    print("write -> all 3 data planes serving it, %d changes per size" % args.changes)
    # One block per size: the columns are too many for one line.
    for r in rows:
        print("-- %d routes" % r["routes"])
        for c in cols[1:]:
            v = r[c]
            print("  %-16s %s" % (c, ("%.1f" % v) if isinstance(v, float) else v))


if __name__ == "__main__":
    main()
