"""Every request-smuggling shape is refused with 400, the connection is closed, and not one byte
reaches the upstream."""

import time

import pytest

from dp_harness import DataPlane, config, http, prefix, route, service, upstream, write_snapshot  # noqa: F401

CASES = {
    "cl_and_te": b"POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    "differing_cl": b"POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "malformed_cl": b"POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 3abc\r\n\r\nabc",
    "cl_list": b"POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc",
    "te_gzip": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "te_chunked_not_last": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                           b"0\r\n\r\n",
    "te_twice": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obs_fold": b"GET /api HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n",
    "obs_fold_te": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "space_before_colon": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n"
                          b"0\r\n\r\n",
    "bad_chunk_size": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"g\r\nabc\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"10000000000000001\r\nabc\r\n0\r\n\r\n",
    "chunk_no_crlf": b"POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabcX0\r\n\r\n",
    "nul_in_value": b"GET /api HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n",
    "bare_cr_in_value": b"GET /api HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
    "bare_cr_line_end": b"GET /api HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n",
    "duplicate_host": b"GET /api HTTP/1.1\r\nHost: h\r\nHost: evil\r\n\r\n",
    "missing_host": b"GET /api HTTP/1.1\r\nX-A: b\r\n\r\n",
    "lf_only": b"GET /api HTTP/1.1\nHost: h\n\n",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from dp_harness import Upstream
    up = Upstream()
    p = str(tmp_path_factory.mktemp("dp"))
    svc = service("s", "127.0.0.1", up.port)
    write_snapshot(p, config([svc], [route("r", svc, paths=["/api"])]))
    d = DataPlane(p)
    yield d, up
    d.stop()
    up.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused(env, name):
    dp, up = env
    before = len(up.raw)
    out = http(dp.port, CASES[name], timeout=5)  # reads until the proxy closes
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert b"Connection: close" in out
    time.sleep(0.05)
    assert len(up.raw) == before, "bytes reached the upstream: %r" % bytes(up.raw[before:])


def test_valid_request_still_proxied(env):
    dp, up = env
    out = http(dp.port, b"POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
               b"Connection: close\r\n\r\nabc")
    assert out.startswith(b"HTTP/1.1 200 ")


def test_limits(env):
    dp, up = env
    before = len(up.raw)
    out = http(dp.port, b"GET /api/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 414 ")
    many = b"".join(b"X-%d: v\r\n" % i for i in range(120))
    out = http(dp.port, b"GET /api HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431 ")
    out = http(dp.port, b"GET /api HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431 ")
    assert len(up.raw) == before
