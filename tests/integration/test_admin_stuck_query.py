"""A request stuck in PostgreSQL (a table locked by someone else) must not stall the Admin API:
other requests keep being answered, and the stuck one completes when the lock goes."""

import threading
import time

from admin_checks import expect

# A functional deadline ("answers while the other request is stuck"), not a speed target.
PROMPT = 5.0


def test_locked_table_does_not_stall_other_requests(cp):
    locker = cp.pg.session(cp.db)
    result = {}
    try:
        locker.send("BEGIN;")
        locker.send("LOCK TABLE services IN ACCESS EXCLUSIVE MODE;")
        locker.wait_idle_after("LOCK TABLE")

        def blocked_post():
            try:
                result["resp"] = cp.post("/services", json={"name": "stuck-svc",
                                                            "host": "stuck.example"},
                                         timeout=60)
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                result["error"] = e

        t = threading.Thread(target=blocked_post, daemon=True)
        t.start()
        # Wait until the POST is really waiting on the lock in PostgreSQL.
        deadline = time.time() + 10
        while time.time() < deadline:
            waiting = cp.pg.psql(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'services' AND NOT l.granted", db=cp.db)
            if waiting != "0":
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the POST never waited on the locked table: %r" % result)
        assert t.is_alive(), "POST /services finished while the table was locked: %r" % result

        for method, path, body, status in (("GET", "/", None, 200),
                                           ("GET", "/consumers", None, 200),
                                           ("POST", "/consumers", {"username": "free-user"}, 201),
                                           ("GET", "/status", None, 200)):
            start = time.time()
            r = cp.request(method, path, json=body, timeout=PROMPT)
            expect(r, status)
            assert time.time() - start < PROMPT
        assert t.is_alive()
    finally:
        locker.close()  # ends the transaction, releasing the lock
    t.join(timeout=30)
    assert not t.is_alive(), "POST /services still blocked after the lock was released"
    assert "error" not in result, result.get("error")
    created = expect(result["resp"], 201)
    assert created["name"] == "stuck-svc"
    assert expect(cp.get("/services/stuck-svc"), 200)["id"] == created["id"]
