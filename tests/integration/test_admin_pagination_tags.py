"""Paging through a collection with `next`, and filtering by tags (AND with ',', OR with '/')."""

from urllib.parse import parse_qs, urlparse

import pytest

from admin_checks import expect

COUNT = 250


@pytest.fixture(scope="module")
def many_consumers(cp):
    ids = set()
    for i in range(COUNT):
        tags = ["bulk", "even" if i % 2 == 0 else "odd"]
        if i % 3 == 0:
            tags.append("third")
        c = expect(cp.post("/consumers", json={"username": "page-%03d" % i, "tags": tags}), 201)
        ids.add(c["id"])
    return ids


def walk(cp, first):
    """Follows next links from first; returns (pages, all ids in order)."""
    pages, seen, path = [], [], first
    while path:
        assert len(pages) < 50, "next links do not end"
        page = expect(cp.get(path), 200)
        pages.append(page)
        seen += [e["id"] for e in page["data"]]
        path = page["next"]
        if path:
            assert path.startswith("/"), path
    return pages, seen


def test_walk_pages_with_next(cp, many_consumers):
    pages, seen = walk(cp, "/consumers?size=100")
    assert [len(p["data"]) for p in pages] == [100, 100, 50]
    assert len(seen) == len(set(seen)) == COUNT
    assert set(seen) == many_consumers
    assert pages[-1]["next"] is None
    assert "offset" not in pages[-1] or pages[-1]["offset"] is None
    # Each intermediate page also gives the bare offset, usable by hand.
    offset = pages[0]["offset"]
    again = expect(cp.get("/consumers", params={"size": 100, "offset": offset}), 200)
    assert [e["id"] for e in again["data"]] == [e["id"] for e in pages[1]["data"]]
    # The next link keeps the page size.
    assert parse_qs(urlparse(pages[0]["next"]).query)["size"] == ["100"]


def test_default_page_size_is_100(cp, many_consumers):
    page = expect(cp.get("/consumers"), 200)
    assert len(page["data"]) == 100 and page["next"]


def test_size_limits(cp, many_consumers):
    assert len(expect(cp.get("/consumers?size=1000"), 200)["data"]) == COUNT
    body = expect(cp.get("/consumers?size=1001"), 400)
    assert body["code"] == 9


def tagged(cp, tags, size=100):
    pages, seen = walk(cp, "/consumers?size=%d&tags=%s" % (size, tags))
    for p in pages[:-1]:
        assert parse_qs(urlparse(p["next"]).query)["tags"] == [tags], p["next"]
    return pages, seen


def test_tags_and(cp, many_consumers):
    _, seen = tagged(cp, "even,third", size=10)
    expected = {i for i in range(COUNT) if i % 2 == 0 and i % 3 == 0}
    assert len(seen) == len(set(seen)) == len(expected)
    names = {expect(cp.get("/consumers/" + i), 200)["username"] for i in seen[:5]}
    for n in names:
        assert int(n.split("-")[1]) in expected


def test_tags_or(cp, many_consumers):
    pages, seen = tagged(cp, "even/third", size=40)
    expected = [i for i in range(COUNT) if i % 2 == 0 or i % 3 == 0]
    assert len(pages) > 1
    assert len(seen) == len(set(seen)) == len(expected)
    all_bulk = tagged(cp, "bulk")[1]
    assert set(all_bulk) == many_consumers
    assert tagged(cp, "nobody-has-this")[1] == []


def test_tags_mixing_and_or_is_refused(cp, many_consumers):
    r = cp.get("/consumers?tags=even,odd/third")
    assert r.status_code == 400
