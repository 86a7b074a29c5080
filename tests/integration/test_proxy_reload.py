"""Config swaps under load: SIGHUP re-reads the cached snapshot, 20 swaps while clients run on
keepalive connections lose no request, and certificates change with the config (a new
connection gets the new certificate for the same SNI) without a restart."""

import os
import signal
import socket
import ssl
import subprocess
import threading
import time

from dp_harness import (NOW, DataPlane, Upstream, config, new_id, prefix, read_response, route,  # noqa: F401
                        service, snapshot_envelope)


def put_snapshot(prefix, cfg, version):
    """Replaces the cache file atomically, as the data plane itself does."""
    data, _ = snapshot_envelope(cfg, version)
    tmp = os.path.join(prefix, "config.snapshot.test-tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(prefix, "config.snapshot"))


def wait_version(dp, version, limit=5):
    deadline = time.time() + limit
    while time.time() < deadline:
        if "config version %d applied" % version in dp.read_log():
            return
        time.sleep(0.02)
    raise AssertionError("version %d not applied:\n%s" % (version, dp.read_log()[-2000:]))


def test_twenty_swaps_under_load_drop_nothing(prefix):
    a, b = Upstream(), Upstream()
    sa, sb = service("a", "127.0.0.1", a.port), service("b", "127.0.0.1", b.port)

    def cfg(i):  # the route moves between two services (two upstream pools) at every swap
        svc = sa if i % 2 else sb
        return config([sa, sb], [route("r", svc, paths=["/"])])

    put_snapshot(prefix, cfg(1), 1)
    dp = DataPlane(prefix, workers=2)
    stop = threading.Event()
    results = {"ok": 0, "bad": []}
    lock = threading.Lock()

    def client():
        s = None
        while not stop.is_set():
            try:
                if s is None:
                    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
                s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
                status, _, _, _ = read_response(s)
                with lock:
                    if status == 200:
                        results["ok"] += 1
                    else:
                        results["bad"].append(status)
            except (OSError, EOFError) as e:
                with lock:
                    results["bad"].append(repr(e))
                s = None
        if s:
            s.close()

    threads = [threading.Thread(target=client) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.3)
        for v in range(2, 22):
            put_snapshot(prefix, cfg(v), v)
            dp.proc.send_signal(signal.SIGHUP)
            wait_version(dp, v)
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    try:
        assert results["bad"] == []
        assert results["ok"] > 100
        assert a.request_count() > 0 and b.request_count() > 0  # both configs served
        status = socket.create_connection(("127.0.0.1", dp.status_port), timeout=5)
        status.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, body, _ = read_response(status)
        assert b'"configuration_version":21' in body.replace(b" ", b"")
    finally:
        dp.stop()
        a.close()
        b.close()


def test_bad_snapshot_on_sighup_keeps_serving(prefix):
    a = Upstream()
    sa = service("a", "127.0.0.1", a.port)
    put_snapshot(prefix, config([sa], [route("r", sa, paths=["/"])]), 1)
    dp = DataPlane(prefix)
    try:
        with open(os.path.join(prefix, "config.snapshot"), "wb") as f:
            f.write(b"not a snapshot")
        dp.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "not reloaded" not in dp.read_log() and time.time() < deadline:
            time.sleep(0.02)
        assert "not reloaded" in dp.read_log()
        s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(s)[0] == 200
    finally:
        dp.stop()
        a.close()


def make_cert(dirname, cn):
    key, crt = os.path.join(dirname, cn + ".key"), os.path.join(dirname, cn + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn],
                   check=True, capture_output=True)
    return open(crt).read(), open(key).read()


def tls_config(svc, crt, key, tag):
    cid = new_id("cert-" + tag)
    certs = [{"id": cid, "cert": crt, "key": key, "created_at": NOW, "updated_at": NOW}]
    snis = [{"id": new_id("sni-" + tag), "name": "swap.test", "certificate": {"id": cid},
             "created_at": NOW, "updated_at": NOW}]
    return config([svc], [route("r", svc, paths=["/"])], certificates=certs, snis=snis)


def tls_conn(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="swap.test")


def cn_of(s):
    pem = ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True))
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(),
                         capture_output=True, check=True).stdout.decode()
    return out.strip().split("CN", 1)[1].strip(" =")


def test_certificate_changes_with_the_config(prefix):
    up = Upstream()
    svc = service("s", "127.0.0.1", up.port)
    put_snapshot(prefix, tls_config(svc, *make_cert(prefix, "first"), "1"), 1)
    dp = DataPlane(prefix, ssl_listen=True)
    try:
        old = tls_conn(dp.ssl_port)
        assert cn_of(old) == "first"
        put_snapshot(prefix, tls_config(svc, *make_cert(prefix, "second"), "2"), 2)
        dp.proc.send_signal(signal.SIGHUP)
        wait_version(dp, 2)
        time.sleep(0.1)
        new = tls_conn(dp.ssl_port)
        assert cn_of(new) == "second"  # same process, new certificate
        for s in (old, new):  # the connection from before the swap still works
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: swap.test\r\n\r\n")
            assert read_response(s)[0] == 200
            s.close()
        assert dp.proc.poll() is None
    finally:
        dp.stop()
        up.close()
