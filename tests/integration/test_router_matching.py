"""Kong's route matching and priority through a real sluice-dp and a real upstream: each rule,
and for each priority rule a pair of overlapping routes where the wrong rule would pick the
other one. Every route has its own service whose path is "/<route name>", so the path the
upstream sees names the route that matched. One data plane serves the whole module; scenarios
are kept apart by host names or path prefixes."""

import json
import os
import shutil
import socket
import ssl
import tempfile

import pytest

import dp_harness
from dp_harness import NOW, DataPlane, Upstream, config, new_id, read_response, route, service, write_snapshot
from test_proxy_tls import make_cert

# (name, route fields); created_at follows the list order unless given
ROUTES = [
    # matching rules
    ("exact", dict(hosts=["exact.test"])),
    # a wildcard host alone ranks below the catch-all "/" (same field count, no plain-host bit,
    # shorter prefix), as in Kong: give these a path too
    ("suffix", dict(hosts=["*.wild.test"], paths=["/"])),
    ("prefixwild", dict(hosts=["pre.*"], paths=["/"])),
    ("lonely_wild", dict(hosts=["*.lonely.test"])),
    ("lonely_exact", dict(hosts=["lonely.test"])),
    ("port_ok", dict(hosts=["port.test:%(port)d"])),
    ("port_other", dict(hosts=["portx.test:1"])),
    ("meth", dict(hosts=["meth.test"], methods=["POST", "PUT"])),
    ("hdr", dict(hosts=["hdr.test"], headers={"X-Version": ["v2", r"~*^beta\d$"]})),
    ("hdr_and", dict(hosts=["hdr2.test"], headers={"x-a": ["1"], "x-b": ["2"]})),
    ("prefix", dict(hosts=["path.test"], paths=["/api"])),
    ("regex", dict(hosts=["rx.test"], paths=[r"~/users/\d+$"])),
    ("sni", dict(hosts=["sni.test"], snis=["sni.tls.test"])),
    ("http_only", dict(hosts=["proto.test"], paths=["/p"], protocols=["http"])),
    ("proto_fallback", dict(hosts=["proto.test"])),
    ("https_only", dict(hosts=["secure.test"], protocols=["https"])),
    # priority pairs: the first listed is older, so creation order alone would pick it
    ("w_long", dict(hosts=["p-weight.test"], paths=["/a/b/c/d"])),
    ("w_meth", dict(hosts=["p-weight.test"], methods=["GET"], paths=["/a"])),
    ("h_wild", dict(hosts=["*.p-host.test"], paths=["/long/path"])),
    ("h_plain", dict(hosts=["api.p-host.test"], paths=["/"])),
    ("c_one", dict(hosts=["p-hdr.test"], headers={"x-a": ["1"]}, paths=["/long/path"])),
    ("c_two", dict(hosts=["p-hdr.test"], headers={"x-a": ["1"], "x-b": ["2"]}, paths=["/"])),
    ("r_prefix", dict(hosts=["p-rx.test"], paths=["/users/42/profile"])),
    ("r_regex", dict(hosts=["p-rx.test"], paths=[r"~/users/\d+"])),
    ("rp_low", dict(hosts=["p-rp.test"], paths=[r"~/items/\d+"])),
    ("rp_high", dict(hosts=["p-rp.test"], paths=[r"~/items/.*"], regex_priority=10)),
    ("l_short", dict(hosts=["p-len.test"], paths=["/api"])),
    ("l_long", dict(hosts=["p-len.test"], paths=["/api/v1"])),
    ("age_new", dict(hosts=["p-age.test"], paths=["/same"], created_at=NOW + 500)),
    ("age_old", dict(hosts=["p-age.test"], paths=["/same"], created_at=NOW - 500)),
    ("s_split", dict(hosts=["p-split.test"], paths=["/x", "/a/b/c/d"])),
    ("s_mid", dict(hosts=["p-split.test"], paths=["/x/y"])),
    ("catchall", dict(paths=["/"])),
]


@pytest.fixture(scope="module")
def dp():
    work = tempfile.mkdtemp(prefix="sluice-router-")
    up = Upstream()
    port, status_port = dp_harness.free_port(), dp_harness.free_port()
    services, routes = [], []
    for i, (name, fields) in enumerate(ROUTES):
        svc = service("svc-" + name, "127.0.0.1", up.port, path="/" + name)
        fields = dict(fields)
        if "hosts" in fields:
            fields["hosts"] = [h % {"port": port} if "%" in h else h for h in fields["hosts"]]
        fields.setdefault("created_at", NOW + i)
        services.append(svc)
        routes.append(route(name, svc, **fields))
    crt, key = make_cert(work, "tls.test")
    cid = new_id("cert-router")
    certs = [{"id": cid, "cert": crt, "key": key, "created_at": NOW, "updated_at": NOW}]
    snis = [{"id": new_id("sni-router"), "name": "*.tls.test", "certificate": {"id": cid},
             "created_at": NOW, "updated_at": NOW}]
    write_snapshot(work, config(services, routes, certificates=certs, snis=snis))
    # the host:port route needs the proxy port before the data plane starts
    ports = iter([port, dp_harness.free_port(), status_port])
    real = dp_harness.free_port
    dp_harness.free_port = lambda: next(ports)
    try:
        d = DataPlane(work, ssl_listen=True)
    finally:
        dp_harness.free_port = real
    yield d
    d.stop()
    up.close()
    shutil.rmtree(work, ignore_errors=True)


def send(dp, path, host, method="GET", headers=(), tls_sni=None):
    raw = socket.create_connection(("127.0.0.1", dp.ssl_port if tls_sni else dp.port), timeout=5)
    s = raw
    if tls_sni:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(raw, server_hostname=tls_sni)
    req = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, host)
    req += "".join("%s: %s\r\n" % h for h in headers)
    if method in ("POST", "PUT"):
        req += "Content-Length: 0\r\n"
    s.sendall((req + "\r\n").encode())
    status, hdrs, body, _ = read_response(s, method)
    s.close()
    return status, hdrs, body


def which(dp, path, host, **kw):
    """The name of the route that served the request, or the status when none did."""
    status, _, body = send(dp, path, host, **kw)
    if status != 200:
        return status
    return json.loads(body)["path"].split("?")[0].split("/")[1]


def test_exact_host_any_case(dp):
    assert which(dp, "/", "exact.test") == "exact"
    assert which(dp, "/", "EXACT.Test") == "exact"
    assert which(dp, "/", "exact.test:%d" % dp.port) == "exact"


def test_suffix_wildcard(dp):
    assert which(dp, "/", "a.wild.test") == "suffix"
    assert which(dp, "/", "a.b.wild.test") == "suffix"
    assert which(dp, "/", "wild.test") == "catchall"


def test_wildcard_host_alone_loses_to_a_path(dp):
    assert which(dp, "/", "a.lonely.test") == "catchall"
    assert which(dp, "/", "lonely.test") == "lonely_exact"


def test_prefix_wildcard(dp):
    assert which(dp, "/", "pre.example.org") == "prefixwild"
    assert which(dp, "/", "prefix.org") == "catchall"


def test_host_with_port(dp):
    assert which(dp, "/", "port.test") == "port_ok"
    assert which(dp, "/", "portx.test") == "catchall"


def test_methods(dp):
    assert which(dp, "/", "meth.test", method="PUT") == "meth"
    assert which(dp, "/", "meth.test", method="GET") == "catchall"


def test_header_values(dp):
    assert which(dp, "/", "hdr.test", headers=[("x-version", "V2")]) == "hdr"
    assert which(dp, "/", "hdr.test", headers=[("X-VERSION", "Beta7")]) == "hdr"
    assert which(dp, "/", "hdr.test", headers=[("X-Version", "v3")]) == "catchall"
    assert which(dp, "/", "hdr.test") == "catchall"


def test_headers_all_required(dp):
    assert which(dp, "/", "hdr2.test", headers=[("x-a", "1")]) == "catchall"
    assert which(dp, "/", "hdr2.test", headers=[("x-b", "2"), ("x-a", "1")]) == "hdr_and"


def test_plain_path_is_prefix(dp):
    assert which(dp, "/api/x", "path.test") == "prefix"
    assert which(dp, "/apix", "path.test") == "prefix"
    assert which(dp, "/ap", "path.test") == "catchall"


def test_regex_path_anchored(dp):
    assert which(dp, "/users/42", "rx.test") == "regex"
    assert which(dp, "/v1/users/42", "rx.test") == "catchall"
    assert which(dp, "/users/42/x", "rx.test") == "catchall"  # "$" in the regex


def test_path_normalised_before_matching(dp):
    assert which(dp, "/x/../api/y", "path.test") == "prefix"
    assert which(dp, "/%61pi", "path.test") == "prefix"  # %61 = "a", unreserved


def test_snis_on_https_only(dp):
    assert which(dp, "/", "sni.test", tls_sni="sni.tls.test") == "sni"
    assert which(dp, "/", "sni.test", tls_sni="other.tls.test") == "catchall"
    assert which(dp, "/", "sni.test") == "sni"  # plain http: snis are not checked


def test_http_only_route_skipped_on_https(dp):
    assert which(dp, "/p", "proto.test") == "http_only"
    assert which(dp, "/p", "proto.test", tls_sni="x.tls.test") == "proto_fallback"


def test_https_only_route_answers_426_on_http(dp):
    status, _, body = send(dp, "/", "secure.test")
    assert status == 426
    assert json.loads(body) == {"message": "Please use HTTPS protocol"}
    assert which(dp, "/", "secure.test", tls_sni="x.tls.test") == "https_only"


def test_priority_more_fields_first(dp):
    assert which(dp, "/a/b/c/d/e", "p-weight.test") == "w_meth"


def test_priority_plain_hosts_over_wildcards(dp):
    assert which(dp, "/long/path", "api.p-host.test") == "h_plain"
    assert which(dp, "/long/path", "web.p-host.test") == "h_wild"


def test_priority_more_headers(dp):
    h = [("x-a", "1"), ("x-b", "2")]
    assert which(dp, "/long/path", "p-hdr.test", headers=h) == "c_two"
    assert which(dp, "/long/path", "p-hdr.test", headers=h[:1]) == "c_one"


def test_priority_regex_over_prefix(dp):
    assert which(dp, "/users/42/profile", "p-rx.test") == "r_regex"


def test_priority_regex_priority(dp):
    assert which(dp, "/items/7", "p-rp.test") == "rp_high"


def test_priority_longer_prefix(dp):
    assert which(dp, "/api/v1/x", "p-len.test") == "l_long"
    assert which(dp, "/api/v2", "p-len.test") == "l_short"


def test_priority_creation_order(dp):
    assert which(dp, "/same", "p-age.test") == "age_old"


def test_priority_split_routes(dp):
    assert which(dp, "/x/y/z", "p-split.test") == "s_mid"
    assert which(dp, "/a/b/c/d/e", "p-split.test") == "s_split"

