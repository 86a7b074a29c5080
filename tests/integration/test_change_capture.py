"""Change capture (migrations/003_change_capture.sql): every committed write records, per changed
entity row, the config version of its transaction in sluice_changes (one row per entity row),
so a control plane can read only what changed since the version it holds. What a reader
cannot rebuild from the log (a TRUNCATE, pruned tombstones, changes before the migration) moves
sluice_cluster.changes_from forward, and readers behind it read everything."""

import os
import subprocess

from admin_checks import expect
from sluice_harness import cp_env, run_cp


def changes(pg, db, entity=None):
    """{(entity, id): (version, deleted)} of sluice_changes."""
    where = " WHERE entity = '%s'" % entity if entity else ""
    out = pg.psql("SELECT entity, id, version, deleted FROM sluice_changes%s" % where, db=db)
    rows = {}
    for line in out.splitlines():
        e, i, v, d = line.split("|")
        rows[(e, i)] = (int(v), d == "t")
    return rows


def changes_from(pg, db):
    return int(pg.psql("SELECT changes_from FROM sluice_cluster", db=db))


def test_admin_writes_record_the_row_and_its_version(cp):
    svc = expect(cp.post("/services", json={"name": "cc-svc", "host": "cc.example"}), 201)
    v1 = cp.config_version()
    assert changes(cp.pg, cp.db, "services")[("services", svc["id"])] == (v1, False)

    route = expect(cp.post("/services/cc-svc/routes", json={"paths": ["/cc"]}), 201)
    v2 = cp.config_version()
    assert v2 == v1 + 1
    assert changes(cp.pg, cp.db, "routes")[("routes", route["id"])] == (v2, False)
    # The service was not touched by that write: its entry keeps its version.
    assert changes(cp.pg, cp.db, "services")[("services", svc["id"])] == (v1, False)

    expect(cp.patch("/services/cc-svc", json={"retries": 2}), 200)
    v3 = cp.config_version()
    svc_rows = [k for k in changes(cp.pg, cp.db, "services") if k[1] == svc["id"]]
    assert len(svc_rows) == 1, "one entry per entity row, however often it changes"
    assert changes(cp.pg, cp.db, "services")[("services", svc["id"])] == (v3, False)

    expect(cp.delete("/routes/%s" % route["id"]), 204)
    v4 = cp.config_version()
    assert changes(cp.pg, cp.db, "routes")[("routes", route["id"])] == (v4, True)

    # A PUT that re-creates the deleted id turns the tombstone back into a live entry.
    expect(cp.put("/routes/%s" % route["id"], json={"paths": ["/cc2"],
                                                    "service": {"id": svc["id"]}}), 200)
    v5 = cp.config_version()
    assert changes(cp.pg, cp.db, "routes")[("routes", route["id"])] == (v5, False)


def test_cascaded_deletes_are_recorded_with_the_parent(cp):
    svc = expect(cp.post("/services", json={"name": "cc-casc", "host": "casc.example"}), 201)
    plugin = expect(cp.post("/services/cc-casc/plugins", json={"name": "cors"}), 201)
    expect(cp.delete("/services/%s" % svc["id"]), 204)
    v = cp.config_version()
    rows = changes(cp.pg, cp.db)
    assert rows[("services", svc["id"])] == (v, True)
    assert rows[("plugins", plugin["id"])] == (v, True), "the cascade removed the plugin"


def test_failed_write_records_nothing(cp):
    expect(cp.post("/services", json={"name": "cc-dup", "host": "dup.example"}), 201)
    before = changes(cp.pg, cp.db)
    v = cp.config_version()
    expect(cp.post("/services", json={"name": "cc-dup", "host": "dup.example"}), 409)
    expect(cp.delete("/routes/00000000-0000-4000-8000-0000000000aa"), 204)  # nothing to delete
    assert cp.config_version() == v
    assert changes(cp.pg, cp.db) == before


def test_one_transaction_is_one_version(cp):
    v0 = cp.config_version()
    a, b = "00000000-0000-4000-8000-00000000c0a1", "00000000-0000-4000-8000-00000000c0a2"
    cp.pg.psql("BEGIN;"
               "INSERT INTO consumers (id, username) VALUES ('%s', 'cc-tx-a');"
               "INSERT INTO consumers (id, username) VALUES ('%s', 'cc-tx-b');"
               "UPDATE consumers SET custom_id = 'x' WHERE id = '%s';"
               "DELETE FROM consumers WHERE id = '%s';"
               "COMMIT;" % (a, b, a, b), db=cp.db)
    v1 = cp.config_version()
    assert v1 == v0 + 1
    rows = changes(cp.pg, cp.db, "consumers")
    assert rows[("consumers", a)] == (v1, False)
    assert rows[("consumers", b)] == (v1, True), "inserted and deleted in one transaction"

    # A rolled-back transaction leaves neither a version nor an entry.
    c = "00000000-0000-4000-8000-00000000c0a3"
    cp.pg.psql("BEGIN; INSERT INTO consumers (id, username) VALUES ('%s', 'cc-tx-c'); ROLLBACK;"
               % c, db=cp.db)
    assert cp.config_version() == v1
    assert ("consumers", c) not in changes(cp.pg, cp.db, "consumers")


def test_truncate_moves_changes_from(pg, bootstrapped_db):
    db = bootstrapped_db
    assert changes_from(pg, db) == 0
    pg.psql("INSERT INTO consumers (id, username) VALUES "
            "('00000000-0000-4000-8000-00000000d0a1', 'cc-t1')", db=db)
    pg.psql("INSERT INTO ca_certificates (id, cert) VALUES "
            "('00000000-0000-4000-8000-00000000d0a2', 'x')", db=db)
    pg.psql("TRUNCATE consumers CASCADE", db=db)
    v = int(pg.psql("SELECT config_version FROM sluice_cluster", db=db))
    assert v == 3
    # Nothing before v can be rebuilt from the log: readers behind it read everything.
    assert changes_from(pg, db) == v
    assert changes(pg, db, "consumers") == {}
    assert ("ca_certificates", "00000000-0000-4000-8000-00000000d0a2") in changes(pg, db)


def test_pruning_tombstones_moves_changes_from(pg, bootstrapped_db):
    db = bootstrapped_db
    live, dead = "00000000-0000-4000-8000-00000000e0a1", "00000000-0000-4000-8000-00000000e0a2"
    pg.psql("INSERT INTO consumers (id, username) VALUES ('%s', 'cc-live')" % live, db=db)
    pg.psql("INSERT INTO consumers (id, username) VALUES ('%s', 'cc-dead')" % dead, db=db)
    pg.psql("DELETE FROM consumers WHERE id = '%s'" % dead, db=db)  # version 3
    pg.psql("UPDATE consumers SET custom_id = 'y' WHERE id = '%s'" % live, db=db)  # version 4

    assert pg.psql("SELECT sluice_prune_changes(2)", db=db) == ""  # no tombstone that old
    assert changes_from(pg, db) == 0
    assert pg.psql("SELECT sluice_prune_changes(4)", db=db) == "3"
    assert changes_from(pg, db) == 3
    rows = changes(pg, db, "consumers")
    assert ("consumers", dead) not in rows
    assert rows[("consumers", live)] == (4, False), "live rows' entries are never pruned"


def test_writes_prune_old_tombstones_on_their_own(pg, bootstrapped_db):
    db = bootstrapped_db
    horizon = int(pg.psql("SELECT sluice_changes_horizon()", db=db))
    dead = "00000000-0000-4000-8000-00000000f0a1"
    pg.psql("INSERT INTO consumers (id, username) VALUES ('%s', 'cc-old')" % dead, db=db)
    pg.psql("DELETE FROM consumers WHERE id = '%s'" % dead, db=db)  # tombstone at version 2
    # Jump the counter to just before a pruning point past the horizon, then write once.
    step = horizon // 10
    target = ((2 + horizon) // step + 1) * step
    pg.psql("UPDATE sluice_cluster SET config_version = %d" % (target - 1), db=db)
    pg.psql("INSERT INTO consumers (id, username) VALUES "
            "('00000000-0000-4000-8000-00000000f0a2', 'cc-new')", db=db)
    assert int(pg.psql("SELECT config_version FROM sluice_cluster", db=db)) == target
    assert ("consumers", dead) not in changes(pg, db, "consumers")
    assert changes_from(pg, db) == 2


def apply_sql_as_sluice(pg, db, path):
    sql = "SET ROLE sluice;\n" + open(path).read()
    r = subprocess.run(pg.psql_cmd(db) + ["-f", "-"], input=sql, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


def test_up_on_a_database_with_data_from_before(pg, fresh_db, sluice_cp_bin):
    db = fresh_db
    mig = os.path.join(os.path.dirname(__file__), "..", "..", "migrations")
    first = sorted(f for f in os.listdir(mig) if f.endswith(".sql"))
    first = first[:first.index("003_change_capture.sql")]
    for name in first:
        apply_sql_as_sluice(pg, db, os.path.join(mig, name))
    pg.psql("SET ROLE sluice; CREATE TABLE sluice_schema_migrations (name text PRIMARY KEY, "
            "executed_at timestamptz NOT NULL DEFAULT now());" +
            "".join("INSERT INTO sluice_schema_migrations (name) VALUES ('%s');" % n[:-4]
                    for n in first), db=db)
    svc = "00000000-0000-4000-8000-0000000000b1"
    pg.psql("INSERT INTO services (id, name, retries, protocol, host, port, connect_timeout, "
            "write_timeout, read_timeout, enabled) VALUES ('%s', 'old', 5, 'http', 'old.example', "
            "80, 60000, 60000, 60000, true)" % svc, db=db)
    assert run_cp(["migrations", "list"], cp_env(pg, db)).returncode == 4

    r = run_cp(["migrations", "up"], cp_env(pg, db))
    assert r.returncode == 0, r.output
    assert "003_change_capture" in r.output
    # The log starts at the version the database had: the row written before is not in it.
    assert changes_from(pg, db) == 1
    assert changes(pg, db) == {}

    pg.psql("UPDATE services SET retries = 3 WHERE id = '%s'" % svc, db=db)
    assert changes(pg, db) == {("services", svc): (2, False)}
