"""ip-restriction through a real sluice-dp: allow and deny lists with addresses and CIDR
ranges (IPv4 and IPv6), deny winning, and the configurable status and message."""

import socket

import pytest

from dp_harness import DataPlane, config, prefix, route, service, upstream, write_snapshot  # noqa: F401
from plugin_harness import plugin, request


def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.fixture
def dp(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    rs = {n: route(n, svc, paths=["/" + n]) for n in
          ("allow", "deny", "both", "custom", "v6deny", "v6allow")}
    plugins = [
        plugin("ip-restriction", "allow", route=rs["allow"], allow=["10.0.0.0/8", "127.0.0.0/24"]),
        plugin("ip-restriction", "deny", route=rs["deny"], deny=["127.0.0.1"]),
        plugin("ip-restriction", "both", route=rs["both"], allow=["127.0.0.0/8"],
               deny=["127.0.0.0/30"]),
        plugin("ip-restriction", "custom", route=rs["custom"], allow=["192.168.0.0/16"],
               status=401, message="go away"),
        plugin("ip-restriction", "v6deny", route=rs["v6deny"], deny=["::1/128"]),
        plugin("ip-restriction", "v6allow", route=rs["v6allow"], allow=["2001:db8::/32"]),
    ]
    write_snapshot(prefix, config([svc], list(rs.values()), plugins=plugins))
    d = DataPlane(prefix)
    yield d
    d.stop()


def test_allow_list(dp):
    assert request(dp.port, "GET", "/allow")[0] == 200


def test_deny_list_and_default_message(dp, upstream):
    before = upstream.request_count()
    st, _, body = request(dp.port, "GET", "/deny")
    assert (st, body) == (403, b'{"message":"IP address not allowed: 127.0.0.1"}')
    assert upstream.request_count() == before


def test_deny_wins_over_allow(dp):
    assert request(dp.port, "GET", "/both")[0] == 403


def test_custom_status_and_message(dp):
    assert request(dp.port, "GET", "/custom")[:3:2] == (401, b'{"message":"go away"}')


def test_ipv6_ranges_do_not_match_ipv4_clients(dp):
    assert request(dp.port, "GET", "/v6deny")[0] == 200  # ::1 is not 127.0.0.1
    assert request(dp.port, "GET", "/v6allow")[0] == 403


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_client(upstream, prefix):
    from dp_harness import free_port
    svc = service("s6", "127.0.0.1", upstream.port)
    r1 = route("v6deny", svc, paths=["/v6deny"])
    r2 = route("v6allow", svc, paths=["/v6allow"])
    r3 = route("v6net", svc, paths=["/v6net"])
    write_snapshot(prefix, config([svc], [r1, r2, r3], plugins=[
        plugin("ip-restriction", "d", route=r1, deny=["::1"]),
        plugin("ip-restriction", "a", route=r2, allow=["::/127"]),
        plugin("ip-restriction", "n", route=r3, allow=["2001:db8::/32"])]))
    import dp_harness
    port4, port6, status = free_port(), free_port(), free_port()
    ports = iter([port4, status])
    real_free_port = dp_harness.free_port
    dp_harness.free_port = lambda: next(ports)  # so the harness waits on the IPv4 listener
    try:
        d = DataPlane(prefix, extra_env={
            "SLUICE_PROXY_LISTEN": "127.0.0.1:%d, [::1]:%d" % (port4, port6)})
    finally:
        dp_harness.free_port = real_free_port
    try:
        def get6(path):
            s = socket.create_connection(("::1", port6), timeout=5)
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                c = s.recv(65536)
                if not c:
                    break
                data += c
            s.close()
            return data
        r = get6(b"/v6deny")
        assert r.startswith(b"HTTP/1.1 403") and b"IP address not allowed: ::1" in r
        assert get6(b"/v6allow").startswith(b"HTTP/1.1 200")
        assert get6(b"/v6net").startswith(b"HTTP/1.1 403")
    finally:
        d.stop()
