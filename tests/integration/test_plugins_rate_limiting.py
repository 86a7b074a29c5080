"""rate-limiting (policy local) through a real sluice-dp: exact counts across worker threads
under many concurrent connections, the RateLimit-* / X-RateLimit-* headers, Retry-After,
custom errors, hidden headers, and limit_by header with its fallback to the client address."""

import threading

import pytest

from dp_harness import DataPlane, config, prefix, route, service, upstream, write_snapshot  # noqa: F401
from plugin_harness import plugin, request


@pytest.fixture
def dp(upstream, prefix):
    svc = service("s1", "127.0.0.1", upstream.port)
    r_exact = route("exact", svc, paths=["/exact"])
    r_hdr = route("hdr", svc, paths=["/hdr"])
    r_custom = route("custom", svc, paths=["/custom"])
    r_hidden = route("hidden", svc, paths=["/hidden"])
    plugins = [
        plugin("rate-limiting", "exact", route=r_exact, hour=50, day=1000),
        plugin("rate-limiting", "hdr", route=r_hdr, hour=2, limit_by="header",
               header_name="X-Tenant"),
        plugin("rate-limiting", "custom", route=r_custom, hour=1, error_code=503,
               error_message='slow "down"'),
        plugin("rate-limiting", "hidden", route=r_hidden, hour=1, hide_client_headers=True),
    ]
    write_snapshot(prefix, config([svc], [r_exact, r_hdr, r_custom, r_hidden], plugins=plugins))
    d = DataPlane(prefix, workers=2)
    yield d
    d.stop()


def test_exact_across_worker_threads(dp, upstream):
    results = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            st, _, _ = request(dp.port, "GET", "/exact")
            with lock:
                results.append(st)

    threads = [threading.Thread(target=worker) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200
    assert results.count(200) == 50
    assert results.count(429) == 150
    assert upstream.request_count() == 50


def test_headers_and_retry_after(dp):
    st, h, _ = request(dp.port, "GET", "/exact")
    assert st == 200
    assert h["x-ratelimit-limit-hour"] == "50" and h["x-ratelimit-limit-day"] == "1000"
    assert h["x-ratelimit-remaining-hour"] == "49" and h["x-ratelimit-remaining-day"] == "999"
    # the most restrictive window is the hour
    assert h["ratelimit-limit"] == "50" and h["ratelimit-remaining"] == "49"
    assert 1 <= int(h["ratelimit-reset"]) <= 3600
    for _ in range(49):
        request(dp.port, "GET", "/exact")
    st, h, body = request(dp.port, "GET", "/exact")
    assert (st, body) == (429, b'{"message":"API rate limit exceeded"}')
    assert h["ratelimit-remaining"] == "0" and h["x-ratelimit-remaining-hour"] == "0"
    assert 1 <= int(h["retry-after"]) <= 3600
    # a refused request takes nothing from the day window
    assert h["x-ratelimit-remaining-day"] == "950"


def test_limit_by_header_and_ip_fallback(dp):
    for tenant in ("a", "b"):
        for _ in range(2):
            assert request(dp.port, "GET", "/hdr", {"X-Tenant": tenant})[0] == 200
        assert request(dp.port, "GET", "/hdr", {"X-Tenant": tenant})[0] == 429
    # no header: counted by client address, a counter of its own
    assert request(dp.port, "GET", "/hdr")[0] == 200
    assert request(dp.port, "GET", "/hdr")[0] == 200
    assert request(dp.port, "GET", "/hdr")[0] == 429


def test_custom_error_and_hidden_headers(dp):
    assert request(dp.port, "GET", "/custom")[0] == 200
    st, _, body = request(dp.port, "GET", "/custom")
    assert (st, body) == (503, b'{"message":"slow \\"down\\""}')
    st, h, _ = request(dp.port, "GET", "/hidden")
    assert st == 200
    assert not [k for k in h if "ratelimit" in k]
    st, h, _ = request(dp.port, "GET", "/hidden")
    assert st == 429 and "retry-after" not in h and "ratelimit-limit" not in h
