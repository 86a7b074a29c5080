"""Admin API errors and body decoding, with Kong's status codes, codes, names and messages, so
that scripts written against Kong read the same answers."""

import json
import select
import socket
import uuid

import requests

from admin_checks import expect


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def test_schema_violation_single(cp):
    body = expect(cp.post("/services", json={"name": uniq("s")}), 400)
    assert body == {"code": 2, "name": "schema violation",
                    "message": "schema violation (host: required field missing)",
                    "fields": {"host": "required field missing"}}


def test_schema_violation_multiple(cp):
    body = expect(cp.post("/services", json={"path": "no-slash"}), 400)
    assert body["code"] == 2 and body["name"] == "schema violation"
    assert body["message"] == (
        "2 schema violations (host: required field missing; path: should start with: /)")
    assert body["fields"] == {"host": "required field missing", "path": "should start with: /"}


def test_type_errors_and_unknown_fields(cp):
    body = expect(cp.post("/services", json={"host": "h.example", "port": "eighty"}), 400)
    assert body["code"] == 2 and body["fields"]["port"] == "expected an integer"
    body = expect(cp.post("/services", json={"host": "h.example", "nonsense": 1}), 400)
    assert body["fields"] == {"nonsense": "unknown field"}
    body = expect(cp.post("/services", json={"host": "h.example", "port": 70000}), 400)
    assert "port" in body["fields"]
    # A route needs something to match on: an entity-level error.
    body = expect(cp.post("/routes", json={"protocols": ["http"]}), 400)
    assert body["code"] == 2 and body["fields"]["@entity"]


def test_unique_violation(cp):
    name = uniq("dup")
    expect(cp.post("/services", json={"name": name, "host": "a.example"}), 201)
    body = expect(cp.post("/services", json={"name": name, "host": "b.example"}), 409)
    assert body == {"code": 5, "name": "unique constraint violation",
                    "message": "UNIQUE violation detected on '{name=\"%s\"}'" % name,
                    "fields": {"name": name}}
    # The first one is intact.
    assert expect(cp.get("/services/" + name), 200)["host"] == "a.example"


def test_not_found_and_method_not_allowed(cp):
    assert expect(cp.get("/services/" + str(uuid.uuid4())), 404) == {"message": "Not found"}
    assert expect(cp.get("/services/no-such-name"), 404) == {"message": "Not found"}
    assert expect(cp.get("/no-such-endpoint"), 404) == {"message": "Not found"}
    assert expect(cp.patch("/services/" + str(uuid.uuid4()), json={"retries": 1}), 404)
    assert expect(cp.delete("/services"), 405) == {"message": "Method not allowed"}
    assert expect(cp.request("PUT", "/services", json={}), 405) == {
        "message": "Method not allowed"}


def test_bad_json_and_unsupported_content_type(cp):
    r = cp.post("/services", data='{"host": ', headers={"Content-Type": "application/json"})
    assert expect(r, 400) == {"message": "Cannot parse JSON body"}
    r = cp.post("/services", data="host=x", headers={"Content-Type": "text/plain"})
    body = expect(r, 415)
    assert body["message"]
    r = cp.post("/services", json=["not", "an", "object"])
    assert r.status_code == 400


def test_form_arrays_repeated_keys_and_indices(cp):
    forms = [
        "paths[]=/a&paths[]=/b",
        "paths[1]=/a&paths[2]=/b",
        "paths=/a&paths=/b",
    ]
    for form in forms:
        r = cp.post("/routes", data=form + "&name=" + uniq("f"),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert expect(r, 201)["paths"] == ["/a", "/b"], form
    # Form strings are coerced to the schema's types.
    svc = expect(cp.post("/services", data={"name": uniq("fs"), "host": "f.example",
                                            "port": "8080", "retries": "2"}), 201)
    assert svc["port"] == 8080 and svc["retries"] == 2
    route = expect(cp.post("/routes", data={"paths[]": "/s", "strip_path": "false",
                                            "headers.x-version": "v2"}), 201)
    assert route["strip_path"] is False
    assert route["headers"] == {"x-version": ["v2"]}


def test_form_nested_config(cp):
    for form in ("config.minute=5", "config[minute]=5"):
        svc = expect(cp.post("/services", json={"name": uniq("nc"), "host": "c.example"}), 201)
        r = cp.post("/services/%s/plugins" % svc["id"], data="name=rate-limiting&" + form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert expect(r, 201)["config"]["minute"] == 5, form


def test_multipart_body(cp):
    name = uniq("mp")
    r = cp.post("/services", files={"name": (None, name), "host": (None, "mp.example"),
                                    "port": (None, "81")})
    assert r.request.headers["Content-Type"].startswith("multipart/form-data")
    svc = expect(r, 201)
    assert (svc["name"], svc["host"], svc["port"]) == (name, "mp.example", 81)
    r = cp.post("/routes", files=[("paths[]", (None, "/m1")), ("paths[]", (None, "/m2"))])
    assert expect(r, 201)["paths"] == ["/m1", "/m2"]


def test_json_body_keeps_types(cp):
    body = expect(cp.post("/services", json={"host": "j.example", "port": "8080"}), 400)
    assert body["fields"]["port"] == "expected an integer"
    route = expect(cp.post("/routes", json={"paths": ["/j"], "regex_priority": 7,
                                            "tags": ["a", "b"]}), 201)
    assert route["regex_priority"] == 7 and route["tags"] == ["a", "b"]


def test_too_many_form_arguments(cp):
    form = "&".join("tags[]=t%d" % i for i in range(1001))
    r = cp.post("/routes", data=form + "&paths[]=/many",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    body = expect(r, 400)
    assert "Too many arguments" in body["message"]


def raw_request(port, head, body_len, chunk=b"x" * 65536):
    """Sends a request with a body of body_len bytes, stopping early if the server answers;
    returns the status code the server sent (or raises if it sent nothing)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    data = b""
    try:
        s.sendall(head)
        sent = 0
        while sent < body_len:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break
            try:
                n = min(len(chunk), body_len - sent)
                s.sendall(chunk[:n])
                sent += n
            except (BrokenPipeError, ConnectionResetError):
                break
        try:
            while b"\r\n" not in data:
                part = s.recv(65536)
                if not part:
                    break
                data += part
        except ConnectionResetError:
            pass
    finally:
        s.close()
    assert data.startswith(b"HTTP/1."), "no response: %r" % data[:200]
    return int(data.split(b" ", 2)[1])


def test_oversized_body_is_413(cp):
    size = 9 * 1024 * 1024
    head = ("POST /services HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % size).encode()
    assert raw_request(cp.admin_port, head, size) == 413
    # The server is fine afterwards.
    expect(cp.get("/"), 200)


def test_bad_size_and_offset(cp):
    for size in ("abc", "0", "-1", "1001"):
        body = expect(cp.get("/services?size=" + size), 400)
        assert body["code"] == 9 and body["name"] == "invalid size", (size, body)
    body = expect(cp.get("/services?offset=garbage!"), 400)
    assert body["code"] == 7 and body["name"] == "invalid offset"
    assert body["message"].startswith("'garbage!' is not a valid offset")


def test_admin_token(pg, bootstrapped_db, control_plane_factory):
    plane = control_plane_factory(bootstrapped_db, token="s3cret-token")
    url = plane.url
    assert requests.get(url + "/", timeout=10).status_code == 401
    assert requests.get(url + "/services", headers={"Authorization": "Bearer wrong"},
                        timeout=10).status_code == 401
    r = requests.post(url + "/services", json={"host": "t.example"}, timeout=10)
    assert r.status_code == 401
    assert plane.pg.psql("SELECT count(*) FROM services", db=bootstrapped_db) == "0"
    ok = requests.get(url + "/services", headers={"Authorization": "Bearer s3cret-token"},
                      timeout=10)
    assert ok.status_code == 200
    assert json.loads(ok.text)["data"] == []
