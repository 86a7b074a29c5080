"""Every successful write bumps the cluster config version by exactly one and notifies
listeners (other control planes) with the new version; failed writes change nothing."""

import re
import time

from admin_checks import expect


def version(cp):
    return cp.config_version()


def writes(cp):
    """(description, function doing one Admin API write, expected status); each one request."""
    ids = {}

    def save(key, status):
        def run(resp):
            body = expect(resp, status)
            if key:
                ids[key] = body["id"]
        return run

    return [
        ("POST service", lambda: save("svc", 201)(
            cp.post("/services", json={"name": "cv-svc", "host": "cv.example"}))),
        ("PATCH service", lambda: save(None, 200)(
            cp.patch("/services/cv-svc", json={"retries": 2}))),
        ("PUT service", lambda: save(None, 200)(
            cp.put("/services/cv-svc", json={"host": "cv2.example"}))),
        ("POST nested route", lambda: save("route", 201)(
            cp.post("/services/cv-svc/routes", json={"paths": ["/cv"]}))),
        ("POST plugin on route", lambda: save("plugin", 201)(
            cp.post("/routes/%s/plugins" % ids["route"], json={"name": "key-auth"}))),
        ("POST consumer (form)", lambda: save("consumer", 201)(
            cp.post("/consumers", data={"username": "cv-user"}))),
        ("POST key-auth", lambda: save(None, 201)(
            cp.post("/consumers/cv-user/key-auth", json={"key": "cv-key"}))),
        ("POST acl", lambda: save(None, 201)(
            cp.post("/consumers/cv-user/acls", json={"group": "g1"}))),
        ("DELETE consumer (cascades credentials)", lambda: save(None, 204)(
            cp.delete("/consumers/cv-user"))),
        ("DELETE route (cascades plugin)", lambda: save(None, 204)(
            cp.delete("/routes/%s" % ids["route"]))),
        ("DELETE service", lambda: save(None, 204)(cp.delete("/services/cv-svc"))),
    ]


def test_each_write_bumps_version_once(cp):
    before = version(cp)
    for what, do in writes(cp):
        do()
        after = version(cp)
        assert after == before + 1, "%s moved the version from %d to %d" % (what, before, after)
        before = after


def test_failed_and_read_requests_do_not_bump(cp):
    expect(cp.post("/services", json={"name": "cv-dup", "host": "d.example"}), 201)
    before = version(cp)
    expect(cp.post("/services", json={"name": "cv-dup", "host": "d.example"}), 409)
    expect(cp.post("/services", json={"port": 80}), 400)
    expect(cp.get("/services"), 200)
    expect(cp.get("/services/cv-dup"), 200)
    expect(cp.patch("/services/no-such-service", json={"retries": 1}), 404)
    assert version(cp) == before


def test_listeners_are_notified_with_new_version(cp):
    listener = cp.pg.session(cp.db)
    try:
        listener.send("LISTEN sluice_config;")
        listener.wait_idle_after("LISTEN")
        before = version(cp)
        expect(cp.post("/consumers", json={"username": "cv-notify-1"}), 201)
        expect(cp.post("/consumers", json={"username": "cv-notify-2"}), 201)
        after = version(cp)
        assert after == before + 2
        time.sleep(0.2)
        # psql prints notifications after the next statement it runs.
        listener.send("SELECT 1;")
        listener.wait_idle_after("SELECT 1")
    finally:
        out = listener.close()
    payloads = re.findall(r'Asynchronous notification "sluice_config" with payload "([^"]*)"', out)
    assert payloads, "no notification on sluice_config; psql printed:\n" + out
    assert [int(p) for p in payloads] == [before + 1, before + 2], out


def test_version_is_one_row(cp):
    assert cp.pg.psql("SELECT count(*) FROM sluice_cluster", db=cp.db) == "1"
