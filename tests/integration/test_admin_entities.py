"""Every Admin API endpoint family: create, read by id and by name, list, upsert, partial
update, delete, nested endpoints and the integrity rules between entities."""

import uuid

import pytest

from admin_checks import der_sha256, expect, self_signed


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def test_service_crud_by_id_and_name(cp):
    name = uniq("svc")
    svc = expect(cp.post("/services", json={"name": name, "host": "example.com",
                                            "tags": ["t1"]}), 201)
    assert svc["host"] == "example.com" and svc["port"] == 80 and svc["tags"] == ["t1"]
    assert expect(cp.get("/services/" + svc["id"]), 200) == svc
    assert expect(cp.get("/services/" + name), 200) == svc
    listed = expect(cp.get("/services"), 200)
    assert svc["id"] in [s["id"] for s in listed["data"]]

    # PATCH changes only what it names.
    patched = expect(cp.patch("/services/" + name, json={"retries": 3}), 200)
    assert patched["retries"] == 3
    for k in ("host", "port", "name", "protocol", "tags", "created_at", "id"):
        assert patched[k] == svc[k], k
    assert expect(cp.get("/services/" + svc["id"]), 200)["retries"] == 3

    # PATCH with url shorthand splits it into the fields.
    patched = expect(cp.patch("/services/" + svc["id"],
                              json={"url": "https://api.example.org:8443/v1"}), 200)
    assert (patched["protocol"], patched["host"], patched["port"], patched["path"]) == (
        "https", "api.example.org", 8443, "/v1")

    assert cp.delete("/services/" + name).status_code == 204
    expect(cp.get("/services/" + svc["id"]), 404)
    expect(cp.get("/services/" + name), 404)
    # DELETE is idempotent.
    assert cp.delete("/services/" + svc["id"]).status_code == 204


def test_put_upserts_by_name_and_by_id(cp):
    name = uniq("put")
    created = expect(cp.put("/services/" + name, json={"host": "a.example"}), 200)
    assert created["name"] == name and created["host"] == "a.example"
    updated = expect(cp.put("/services/" + name, json={"host": "b.example", "port": 8080}), 200)
    assert updated["id"] == created["id"]
    assert updated["host"] == "b.example" and updated["port"] == 8080
    assert updated["created_at"] == created["created_at"]
    # PUT replaces: a field left out goes back to its default.
    again = expect(cp.put("/services/" + name, json={"host": "b.example"}), 200)
    assert again["port"] == 80

    new_id = str(uuid.uuid4())
    by_id = expect(cp.put("/consumers/" + new_id, json={"username": uniq("u")}), 200)
    assert by_id["id"] == new_id
    assert expect(cp.get("/consumers/" + new_id), 200)["username"] == by_id["username"]


def test_routes_top_level_and_nested(cp):
    svc = expect(cp.post("/services", json={"name": uniq("rs"), "host": "up.example"}), 201)
    nested = expect(cp.post("/services/%s/routes" % svc["name"],
                            json={"name": uniq("r"), "paths": ["/n"]}), 201)
    assert nested["service"] == {"id": svc["id"]}
    top = expect(cp.post("/routes", json={"name": uniq("r"), "hosts": ["h.example"],
                                          "service": {"id": svc["id"]}}), 201)
    orphan = expect(cp.post("/routes", json={"name": uniq("r"), "paths": ["/o"]}), 201)
    assert orphan["service"] is None

    ids = [r["id"] for r in expect(cp.get("/services/%s/routes" % svc["id"]), 200)["data"]]
    assert sorted(ids) == sorted([nested["id"], top["id"]])
    assert expect(cp.get("/routes/" + top["name"]), 200)["id"] == top["id"]
    # A route seen through the wrong service is not found.
    other = expect(cp.post("/services", json={"name": uniq("rs"), "host": "o.example"}), 201)
    expect(cp.get("/services/%s/routes/%s" % (other["id"], top["id"])), 404)
    expect(cp.get("/services/%s/routes/%s" % (svc["id"], top["id"])), 200)

    # /routes/{r}/service reads and updates the route's service.
    assert expect(cp.get("/routes/%s/service" % top["id"]), 200)["id"] == svc["id"]
    upd = expect(cp.patch("/routes/%s/service" % top["name"], json={"retries": 1}), 200)
    assert upd["id"] == svc["id"] and upd["retries"] == 1
    assert expect(cp.get("/services/" + svc["id"]), 200)["retries"] == 1
    expect(cp.get("/routes/%s/service" % orphan["id"]), 404)
    expect(cp.delete("/routes/%s/service" % top["id"]), 405)

    # A route must point to an existing service.
    body = expect(cp.post("/routes", json={"paths": ["/x"],
                                           "service": {"id": str(uuid.uuid4())}}), 400)
    assert body["code"] == 4 and body["name"] == "foreign key violation"


def test_delete_referenced_service_is_refused(cp):
    svc = expect(cp.post("/services", json={"name": uniq("ref"), "host": "x.example"}), 201)
    route = expect(cp.post("/services/%s/routes" % svc["id"], json={"paths": ["/ref"]}), 201)
    r = cp.delete("/services/" + svc["id"])
    body = expect(r, 400)
    assert "routes" in body["message"], body
    expect(cp.get("/services/" + svc["id"]), 200)
    assert expect(cp.get("/routes/" + route["id"]), 200)["service"] == {"id": svc["id"]}

    # Once the route is gone the service can go.
    assert cp.delete("/routes/" + route["id"]).status_code == 204
    assert cp.delete("/services/" + svc["id"]).status_code == 204


def test_consumers_and_credentials_cascade(cp):
    username = uniq("alice")
    c = expect(cp.post("/consumers", json={"username": username, "custom_id": uniq("cid")}),
               201)
    assert expect(cp.get("/consumers/" + username), 200)["id"] == c["id"]
    body = expect(cp.post("/consumers", json={}), 400)
    assert body["code"] == 2

    ka = expect(cp.post("/consumers/%s/key-auth" % username, json={"key": "secret-key-1"}), 201)
    assert ka["key"] == "secret-key-1" and ka["consumer"] == {"id": c["id"]}
    generated = expect(cp.post("/consumers/%s/key-auth" % c["id"], json={}), 201)
    assert isinstance(generated["key"], str) and len(generated["key"]) >= 16
    keys = expect(cp.get("/consumers/%s/key-auth" % username), 200)["data"]
    assert sorted(k["id"] for k in keys) == sorted([ka["id"], generated["id"]])
    expect(cp.get("/key-auths/" + ka["id"]), 200)

    ba = expect(cp.post("/consumers/%s/basic-auth" % username,
                        data={"username": "alice-ba", "password": "open sesame"}), 201)
    assert ba["username"] == "alice-ba"
    assert ba.get("password") != "open sesame", "basic-auth password returned in clear"
    got = expect(cp.get("/consumers/%s/basic-auth/%s" % (username, ba["id"])), 200)
    assert got.get("password") != "open sesame"
    stored = cp.pg.psql("SELECT password FROM basicauth_credentials WHERE id = '%s'" % ba["id"],
                        db=cp.db)
    assert stored and "open sesame" not in stored, "password stored in clear"

    acl = expect(cp.post("/consumers/%s/acls" % username, json={"group": "admins"}), 201)
    assert acl["group"] == "admins"
    groups = expect(cp.get("/consumers/%s/acls" % username), 200)["data"]
    assert [a["group"] for a in groups] == ["admins"]

    # A credential of another consumer is not visible under this one.
    bob = expect(cp.post("/consumers", json={"username": uniq("bob")}), 201)
    expect(cp.get("/consumers/%s/key-auth/%s" % (bob["id"], ka["id"])), 404)

    assert cp.delete("/consumers/" + username).status_code == 204
    expect(cp.get("/consumers/" + c["id"]), 404)
    for path in ("/key-auths/" + ka["id"], "/key-auths/" + generated["id"],
                 "/basic-auths/" + ba["id"], "/acls/" + acl["id"]):
        expect(cp.get(path), 404)
    assert cp.pg.psql("SELECT count(*) FROM keyauth_credentials WHERE consumer_id = '%s'"
                      % c["id"], db=cp.db) == "0"
    expect(cp.get("/consumers/" + bob["id"]), 200)


def test_plugins_global_and_scoped(cp):
    svc = expect(cp.post("/services", json={"name": uniq("ps"), "host": "p.example"}), 201)
    route = expect(cp.post("/services/%s/routes" % svc["id"], json={"paths": ["/p"]}), 201)
    consumer = expect(cp.post("/consumers", json={"username": uniq("pc")}), 201)

    glob = expect(cp.post("/plugins", json={"name": "key-auth"}), 201)
    assert glob["service"] is None and glob["route"] is None and glob["consumer"] is None
    assert glob["enabled"] is True and isinstance(glob["config"], dict)
    assert glob["protocols"]

    on_svc = expect(cp.post("/services/%s/plugins" % svc["name"],
                            json={"name": "rate-limiting", "config": {"minute": 10}}), 201)
    assert on_svc["service"] == {"id": svc["id"]} and on_svc["config"]["minute"] == 10
    on_route = expect(cp.post("/routes/%s/plugins" % route["id"],
                              json={"name": "rate-limiting", "config": {"second": 5}}), 201)
    assert on_route["route"] == {"id": route["id"]}
    on_consumer = expect(cp.post("/consumers/%s/plugins" % consumer["username"],
                                 json={"name": "rate-limiting", "config": {"hour": 100}}), 201)
    assert on_consumer["consumer"] == {"id": consumer["id"]}
    top_scoped = expect(cp.post("/plugins", json={"name": "acl", "config": {"allow": ["g"]},
                                                  "service": {"id": svc["id"]}}), 201)

    svc_plugins = {p["id"] for p in expect(cp.get("/services/%s/plugins" % svc["id"]),
                                           200)["data"]}
    assert svc_plugins == {on_svc["id"], top_scoped["id"]}
    assert [p["id"] for p in expect(cp.get("/routes/%s/plugins" % route["id"]), 200)["data"]] \
        == [on_route["id"]]
    all_ids = {p["id"] for p in expect(cp.get("/plugins?size=1000"), 200)["data"]}
    assert {glob["id"], on_svc["id"], on_route["id"], on_consumer["id"]} <= all_ids

    # Same plugin twice on the same scope: the cache key is unique.
    body = expect(cp.post("/services/%s/plugins" % svc["id"],
                          json={"name": "rate-limiting", "config": {"minute": 1}}), 409)
    assert body["code"] == 5

    # PATCH merges config: the untouched config fields stay.
    patched = expect(cp.patch("/plugins/" + on_svc["id"], json={"config": {"hour": 500}}), 200)
    assert patched["config"]["minute"] == 10 and patched["config"]["hour"] == 500
    disabled = expect(cp.patch("/plugins/" + on_svc["id"], json={"enabled": False}), 200)
    assert disabled["enabled"] is False and disabled["config"]["hour"] == 500

    # An unknown plugin is a schema violation naming it.
    body = expect(cp.post("/plugins", json={"name": "no-such-plugin"}), 400)
    assert body["code"] == 2 and "no-such-plugin" in body["message"]

    # Plugins go with the route they are attached to.
    assert cp.delete("/routes/" + route["id"]).status_code == 204
    expect(cp.get("/plugins/" + on_route["id"]), 404)
    assert cp.delete("/plugins/" + glob["id"]).status_code == 204
    expect(cp.get("/plugins/" + glob["id"]), 404)


def test_upstreams_and_targets(cp):
    name = uniq("backend") + ".internal"
    up = expect(cp.post("/upstreams", json={"name": name}), 201)
    assert up["algorithm"] == "round-robin" and up["slots"] == 10000
    assert expect(cp.get("/upstreams/" + name), 200)["id"] == up["id"]

    t1 = expect(cp.post("/upstreams/%s/targets" % name,
                        json={"target": "10.0.0.1:8080", "weight": 50}), 201)
    assert t1["upstream"] == {"id": up["id"]} and t1["weight"] == 50
    t2 = expect(cp.post("/upstreams/%s/targets" % up["id"], data={"target": "10.0.0.2"}), 201)
    assert t2["target"] == "10.0.0.2:8000" and t2["weight"] == 100
    targets = expect(cp.get("/upstreams/%s/targets" % name), 200)["data"]
    assert sorted(t["target"] for t in targets) == ["10.0.0.1:8080", "10.0.0.2:8000"]
    expect(cp.get("/upstreams/%s/targets/10.0.0.1:8080" % name), 200)

    body = expect(cp.post("/upstreams", json={"name": name}), 409)
    assert body["code"] == 5
    expect(cp.post("/upstreams", json={"name": "x", "slots": 5}), 400)

    assert cp.delete("/upstreams/%s/targets/%s" % (name, t1["id"])).status_code == 204
    assert len(expect(cp.get("/upstreams/%s/targets" % name), 200)["data"]) == 1
    # Targets go with their upstream.
    assert cp.delete("/upstreams/" + name).status_code == 204
    assert cp.pg.psql("SELECT count(*) FROM targets WHERE upstream_id = '%s'" % up["id"],
                      db=cp.db) == "0"


def test_certificates_and_snis(cp, tmp_path):
    host = uniq("site") + ".example.com"
    crt, key = self_signed(tmp_path, host)
    cert = expect(cp.post("/certificates", json={"cert": crt, "key": key, "snis": [host]}), 201)
    assert cert["cert"].strip() == crt.strip()
    assert cert["snis"] == [host]

    snis = expect(cp.get("/certificates/%s/snis" % cert["id"]), 200)["data"]
    assert [s["name"] for s in snis] == [host]
    extra = expect(cp.post("/certificates/%s/snis" % cert["id"], json={"name": "*." + host}),
                   201)
    assert extra["certificate"] == {"id": cert["id"]}
    got = expect(cp.get("/snis/" + "*." + host), 200)
    assert got["id"] == extra["id"]
    names = {s["name"] for s in expect(cp.get("/snis?size=1000"), 200)["data"]}
    assert {host, "*." + host} <= names
    body = expect(cp.post("/snis", json={"name": host, "certificate": {"id": cert["id"]}}), 409)
    assert body["code"] == 5
    # GET of a certificate lists its snis too.
    assert sorted(expect(cp.get("/certificates/" + cert["id"]), 200)["snis"]) == sorted(
        [host, "*." + host])

    body = expect(cp.post("/certificates", json={"cert": "not a pem", "key": key}), 400)
    assert body["code"] == 2 and "cert" in body["fields"]

    # SNIs go with their certificate.
    assert cp.delete("/certificates/" + cert["id"]).status_code == 204
    expect(cp.get("/snis/" + host), 404)


def test_ca_certificates(cp, tmp_path):
    crt, _ = self_signed(tmp_path, "Test Root CA", name="ca")
    ca = expect(cp.post("/ca_certificates", json={"cert": crt}), 201)
    assert ca["cert_digest"] == der_sha256(crt)
    assert expect(cp.get("/ca_certificates/" + ca["id"]), 200)["cert"].strip() == crt.strip()
    body = expect(cp.post("/ca_certificates", json={"cert": crt}), 409)
    assert body["code"] == 5
    assert cp.delete("/ca_certificates/" + ca["id"]).status_code == 204
    expect(cp.get("/ca_certificates/" + ca["id"]), 404)


@pytest.mark.parametrize("collection", ["services", "routes", "consumers", "plugins",
                                        "upstreams", "certificates", "snis", "ca_certificates"])
def test_collections_answer_empty_or_list(cp, collection):
    body = expect(cp.get("/" + collection), 200)
    assert isinstance(body["data"], list)
    assert "next" in body
