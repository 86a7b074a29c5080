"""TLS termination: the certificate is picked by SNI (exact, wildcard, default), TLS 1.2+ only,
and the request goes upstream with X-Forwarded-Proto https."""

import json
import os
import socket
import ssl
import subprocess

import pytest

from dp_harness import NOW, DataPlane, config, new_id, prefix, read_response, route, service, upstream, write_snapshot  # noqa: F401


def make_cert(dirname, cn):
    key, crt = os.path.join(dirname, cn + ".key"), os.path.join(dirname, cn + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn],
                   check=True, capture_output=True)
    return open(crt).read(), open(key).read()


@pytest.fixture
def dp(upstream, prefix):
    certs, snis = [], []
    for cn, names in (("exact.test", ["exact.test"]), ("wild", ["*.wild.test"])):
        crt, key = make_cert(prefix, cn)
        cid = new_id("cert-" + cn)
        certs.append({"id": cid, "cert": crt, "key": key, "created_at": NOW, "updated_at": NOW})
        for n in names:
            snis.append({"id": new_id("sni-" + n), "name": n, "certificate": {"id": cid},
                         "created_at": NOW, "updated_at": NOW})
    svc = service("s", "127.0.0.1", upstream.port)
    write_snapshot(prefix, config([svc], [route("r", svc, paths=["/"])], certificates=certs,
                                  snis=snis))
    d = DataPlane(prefix, ssl_listen=True)
    yield d
    d.stop()


def peer_cn(port, sni, ciphers=None, **ctx_kw):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    for k, v in ctx_kw.items():
        setattr(ctx, k, v)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            der = s.getpeercert(binary_form=True)
            pem = ssl.DER_cert_to_PEM_cert(der)
            out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(),
                                 capture_output=True, check=True).stdout.decode()
            return out.strip().split("CN", 1)[1].strip(" =")


def test_sni_selection(dp):
    assert peer_cn(dp.ssl_port, "exact.test") == "exact.test"
    assert peer_cn(dp.ssl_port, "a.wild.test") == "wild"
    assert peer_cn(dp.ssl_port, "other.test") == "localhost"  # the generated default


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_old_tls_refused(dp):
    # SECLEVEL=0 lets this client offer TLS 1.0/1.1 (it does against `openssl s_server -tls1_1`),
    # so the failure is the proxy's refusal
    with pytest.raises(ssl.SSLError):
        peer_cn(dp.ssl_port, "exact.test", ciphers="DEFAULT:@SECLEVEL=0",
                maximum_version=ssl.TLSVersion.TLSv1_1, minimum_version=ssl.TLSVersion.TLSv1)


def test_request_over_tls(dp):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", dp.ssl_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="exact.test") as s:
            for _ in range(3):  # keepalive over TLS
                s.sendall(b"GET /echo HTTP/1.1\r\nHost: exact.test\r\n\r\n")
                status, _, body, _ = read_response(s)
                assert status == 200
                seen = json.loads(body)
                assert seen["headers"]["x-forwarded-proto"] == ["https"]
                assert seen["headers"]["x-forwarded-port"] == [str(dp.ssl_port)]
            big = 3 * 1024 * 1024
            s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: exact.test\r\n\r\n" % big)
            status, _, body, _ = read_response(s)
            assert status == 200 and len(body) == big
