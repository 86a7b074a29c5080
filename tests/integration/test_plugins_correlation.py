"""correlation-id through a real sluice-dp: each generator's shape, the client's id kept, the
id sent upstream and echoed downstream when asked."""

import re

import pytest

from dp_harness import DataPlane, config, prefix, route, service, upstream, write_snapshot  # noqa: F401
from plugin_harness import plugin, request, seen

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture
def dp(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    rs = [route(n, svc, paths=["/" + n]) for n in ("counter", "uuid", "tracker")]
    plugins = [plugin("correlation-id", "counter", route=rs[0], echo_downstream=True),
               plugin("correlation-id", "uuid", route=rs[1], generator="uuid",
                      header_name="X-Corr"),
               plugin("correlation-id", "tracker", route=rs[2], generator="tracker",
                      echo_downstream=True)]
    write_snapshot(prefix, config([svc], rs, plugins=plugins))
    d = DataPlane(prefix)
    yield d
    d.stop()


def test_uuid_counter_is_sent_and_echoed(dp):
    ids = []
    for _ in range(3):
        st, h, body = request(dp.port, "GET", "/counter")
        assert st == 200
        sent = seen(body)["headers"]["kong-request-id"][0]
        assert h["kong-request-id"] == sent
        ids.append(sent)
    m = [re.fullmatch("(" + UUID + ")#(\\d+)", i) for i in ids]
    assert all(m)
    assert len({x.group(1) for x in m}) == 1  # one base per worker
    n = [int(x.group(2)) for x in m]
    assert n == [n[0], n[0] + 1, n[0] + 2]


def test_uuid_generator_and_no_echo(dp):
    st, h, body = request(dp.port, "GET", "/uuid")
    got = seen(body)["headers"]["x-corr"][0]
    assert re.fullmatch(UUID, got)
    assert "x-corr" not in h
    _, _, body2 = request(dp.port, "GET", "/uuid")
    assert seen(body2)["headers"]["x-corr"][0] != got


def test_client_id_is_kept(dp):
    st, h, body = request(dp.port, "GET", "/counter", {"Kong-Request-ID": "mine-123"})
    assert seen(body)["headers"]["kong-request-id"] == ["mine-123"]
    assert h["kong-request-id"] == "mine-123"


def test_tracker_and_echo_on_gateway_errors(dp):
    st, h, body = request(dp.port, "GET", "/tracker")
    assert re.fullmatch(r"127\.0\.0\.1-\d+-\d+-\d+", seen(body)["headers"]["kong-request-id"][0])
    assert h["kong-request-id"] == seen(body)["headers"]["kong-request-id"][0]
