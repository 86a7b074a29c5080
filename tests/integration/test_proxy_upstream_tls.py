"""HTTPS to upstreams: with tls_verify the chain is checked against the config's
ca_certificates (the right CA passes, another CA gets 502), tls_verify_depth bounds the chain,
and an address host is checked against the certificate's IP entries."""

import os
import ssl
import subprocess

import pytest

from dp_harness import (NOW, DataPlane, Upstream, config, http, new_id, prefix, route,  # noqa: F401
                        service, write_snapshot)


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def make_pki(d):
    """root -> intermediate -> leaf (IP:127.0.0.1), plus an unrelated root."""
    def key_csr(name, cn):
        sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", os.path.join(d, name + ".key"), "-out",
           os.path.join(d, name + ".csr"), "-subj", "/CN=" + cn)

    def sign(name, ca, ext):
        extfile = os.path.join(d, name + ".ext")
        with open(extfile, "w") as f:
            f.write(ext)
        sh("openssl", "x509", "-req", "-in", os.path.join(d, name + ".csr"), "-CA",
           os.path.join(d, ca + ".crt"), "-CAkey", os.path.join(d, ca + ".key"),
           "-CAcreateserial", "-days", "2", "-out", os.path.join(d, name + ".crt"), "-extfile",
           extfile)

    for root in ("root", "other"):
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", os.path.join(d, root + ".key"), "-out",
           os.path.join(d, root + ".crt"), "-days", "2", "-subj", "/CN=" + root, "-addext",
           "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key_csr("inter", "inter")
    sign("inter", "root", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    key_csr("leaf", "leaf")
    sign("leaf", "inter", "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    with open(os.path.join(d, "chain.crt"), "w") as f:
        f.write(open(os.path.join(d, "leaf.crt")).read() + open(os.path.join(d, "inter.crt")).read())
    return {n: open(os.path.join(d, n + ".crt")).read() for n in ("root", "other")}


class TLSUpstream(Upstream):
    def __init__(self, ctx):
        self.ctx = ctx
        super().__init__()

    def _serve(self, c):
        try:
            c = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError):
            c.close()
            return
        super()._serve(c)


@pytest.fixture
def env(prefix):
    pems = make_pki(prefix)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(prefix, "chain.crt"), os.path.join(prefix, "leaf.key"))
    up = TLSUpstream(ctx)
    cas = [{"id": new_id("ca-" + n), "cert": pem, "created_at": NOW, "updated_at": NOW}
           for n, pem in sorted(pems.items())]
    root_id, other_id = new_id("ca-root"), new_id("ca-other")

    def svc(name, **kw):
        return service(name, "127.0.0.1", up.port, protocol="https", retries=0, **kw)

    services = [svc("ok", tls_verify=True, ca_certificates=[root_id]),
                svc("wrong", tls_verify=True, ca_certificates=[other_id]),
                svc("d0", tls_verify=True, ca_certificates=[root_id], tls_verify_depth=0),
                svc("d1", tls_verify=True, ca_certificates=[root_id], tls_verify_depth=1),
                svc("noverify", tls_verify=False)]
    routes = [route(s["name"], s, paths=["/" + s["name"]]) for s in services]
    write_snapshot(prefix, config(services, routes, ca_certificates=cas))
    dp = DataPlane(prefix)
    yield dp, up
    dp.stop()
    up.close()


def get(dp, path):
    return http(dp.port, b"GET " + path + b"/echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")


def test_verified_with_the_right_ca(env):
    dp, up = env
    out = get(dp, b"/ok")
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]
    assert up.request_count() == 1


def test_wrong_ca_is_502_and_nothing_is_sent(env):
    dp, up = env
    out = get(dp, b"/wrong")
    assert out.startswith(b"HTTP/1.1 502 "), out[:200]
    assert up.request_count() == 0


def test_verify_depth(env):
    dp, up = env
    assert get(dp, b"/d0").startswith(b"HTTP/1.1 502 ")  # the intermediate is one too many
    assert get(dp, b"/d1").startswith(b"HTTP/1.1 200 ")


def test_without_verify_any_certificate_passes(env):
    dp, up = env
    assert get(dp, b"/noverify").startswith(b"HTTP/1.1 200 ")
