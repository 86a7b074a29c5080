"""The upstream request a route produces: Kong's v0 joining of the service path and the request
path (strip_path on and off, service paths with and without a trailing slash, regex prefixes),
path normalisation, the query kept as sent, and preserve_host."""

import json
import shutil
import socket
import tempfile

import pytest

from dp_harness import DataPlane, Upstream, config, read_response, route, service, write_snapshot

# (route name, service path, route fields)
ROUTES = [
    ("strip", "/base", dict(paths=["/api"])),
    ("strip_slash", "/base/", dict(paths=["/slash"])),
    ("strip_root", None, dict(paths=["/root"])),
    ("keep", "/base", dict(paths=["/keep"], strip_path=False)),
    ("keep_slash", "/base/", dict(paths=["/keepslash"], strip_path=False)),
    ("keep_root", None, dict(paths=["/keeproot"], strip_path=False)),
    ("rx", "/u", dict(paths=[r"~/users/\d+"])),
    ("nopath", "/np", dict(hosts=["nopath.test"])),
    ("preserve", None, dict(paths=["/preserve"], preserve_host=True)),
]


@pytest.fixture(scope="module")
def env():
    work = tempfile.mkdtemp(prefix="sluice-router-rw-")
    up = Upstream()
    services, routes = [], []
    for name, spath, fields in ROUTES:
        svc = service("svc-" + name, "127.0.0.1", up.port, path=spath)
        services.append(svc)
        routes.append(route(name, svc, **fields))
    write_snapshot(work, config(services, routes))
    d = DataPlane(work)
    yield d, up
    d.stop()
    up.close()
    shutil.rmtree(work, ignore_errors=True)


def upstream_sees(env, target, host="client.test"):
    dp, _ = env
    s = socket.create_connection(("127.0.0.1", dp.port), timeout=5)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host)).encode())
    status, _, body, _ = read_response(s)
    s.close()
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("target,path", [
    # strip_path, service path without a trailing slash
    ("/api/x/y?q=1&r=2", "/base/x/y?q=1&r=2"),
    ("/api", "/base"),
    ("/api/", "/base/"),
    ("/apix", "/base/x"),
    # strip_path, service path with a trailing slash
    ("/slash", "/base"),
    ("/slash/", "/base/"),
    ("/slash/x", "/base/x"),
    # strip_path, no service path
    ("/root", "/"),
    ("/root/x?a=b", "/x?a=b"),
    # strip_path off
    ("/keep/x", "/base/keep/x"),
    ("/keepslash/x", "/base/keepslash/x"),
    ("/keeproot/x?z", "/keeproot/x?z"),
    # a regex strips what it matched
    ("/users/42/profile", "/u/profile"),
    ("/users/42", "/u"),
    # normalised before matching and joining; the query is passed on untouched
    ("/api/./x/../y", "/base/y"),
    ("/api//x", "/base/x"),
    ("/api/%7Efoo", "/base/~foo"),
    ("/api/a%20b", "/base/a%20b"),
    ("/api/a%2Fb?p=%2F", "/base/a%2Fb?p=%2F"),
])
def test_upstream_path(env, target, path):
    assert upstream_sees(env, target)["path"] == path


def test_route_without_paths_keeps_the_whole_path(env):
    assert upstream_sees(env, "/any/thing", host="nopath.test")["path"] == "/np/any/thing"


def test_preserve_host(env):
    dp, up = env
    assert upstream_sees(env, "/preserve/x", host="kept.test:1234")["headers"]["host"] == [
        "kept.test:1234"]
    assert upstream_sees(env, "/api/x", host="kept.test:1234")["headers"]["host"] == [
        "127.0.0.1:%d" % up.port]
