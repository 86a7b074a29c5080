"""`sluice-cp` command line: help, settings checks, database errors, migrations and their lock.

Each test works on its own fresh database, so states never leak between tests."""

import os
import re

import pytest

from sluice_harness import base_env, closed_port, cp_env, run_cp

# The bookkeeping table of applied migrations (one row per applied migration file).
MIGRATIONS_TABLE = "sluice_schema_migrations"


def list_state(pg, db):
    return run_cp(["migrations", "list"], cp_env(pg, db))


def run_serve_expecting_exit(env, conf=None):
    """`serve` must refuse to start here; a serve that keeps running is a failure, not a hang."""
    return run_cp(["serve"], env, timeout=20, conf=conf)


def test_help_lists_commands_and_settings(sluice_cp_bin):
    r = run_cp(["--help"], base_env())
    assert r.returncode == 0, r.output
    for word in ("serve", "migrations", "bootstrap", "up", "list", "reset"):
        assert re.search(r"\b%s\b" % word, r.output), "--help does not mention %r:\n%s" % (
            word, r.output)
    # Settings with their defaults, so an operator can see what to set.
    for setting in ("pg_host", "pg_port", "pg_user", "pg_password", "pg_database",
                    "admin_listen", "admin_token", "cluster_listen", "prefix", "log_level"):
        assert setting in r.output, "--help does not list setting %s" % setting
    assert "127.0.0.1:8001" in r.output
    assert "5432" in r.output


def test_unknown_setting_in_conf_file_is_refused(sluice_cp_bin, pg, bootstrapped_db, tmp_path):
    conf = tmp_path / "sluice.conf"
    conf.write_text("# a comment\nlog_level = info\npg_hots = db.internal\n")
    r = run_serve_expecting_exit(cp_env(pg, bootstrapped_db, closed_port(), closed_port()),
                                 conf=str(conf))
    assert r.returncode != 0
    assert "pg_hots" in r.output


def test_unknown_setting_in_environment_is_refused(sluice_cp_bin, pg, bootstrapped_db):
    env = cp_env(pg, bootstrapped_db, closed_port(), closed_port(),
                 extra={"SLUICE_PG_HOTS": "db.internal"})
    r = run_serve_expecting_exit(env)
    assert r.returncode != 0
    assert "pg_hots" in r.output.lower()


def test_bad_value_is_refused_naming_the_setting(sluice_cp_bin, pg, bootstrapped_db, tmp_path):
    env = cp_env(pg, bootstrapped_db, closed_port(), closed_port(),
                 extra={"SLUICE_PG_PORT": "abc"})
    r = run_serve_expecting_exit(env)
    assert r.returncode != 0
    assert "pg_port" in r.output.lower()
    assert "abc" in r.output

    conf = tmp_path / "bad.conf"
    conf.write_text("admin_listen = not-an-address\n")
    r = run_serve_expecting_exit(cp_env(pg, bootstrapped_db), conf=str(conf))
    assert r.returncode != 0
    assert "admin_listen" in r.output


def test_environment_overrides_conf_file(sluice_cp_bin, pg, tmp_path):
    # The file points at a closed port; the environment's correct port must win.
    db = pg.create_database("ovr")
    conf = tmp_path / "sluice.conf"
    conf.write_text("pg_port = %d\n" % closed_port())
    r = run_cp(["migrations", "list"], cp_env(pg, db), conf=str(conf))
    assert r.returncode == 3, r.output


@pytest.mark.parametrize("command", [["serve"], ["migrations", "list"]])
def test_unreachable_database_message(sluice_cp_bin, pg, command):
    port = closed_port()
    env = cp_env(pg, "nodb_here", closed_port(), closed_port(), extra={
        "SLUICE_PG_PORT": str(port), "SLUICE_PG_USER": "someuser"})
    r = run_cp(command, env, timeout=30)
    assert r.returncode != 0
    if command[0] == "migrations":
        assert r.returncode == 1
        assert "Error:" in r.output
    for part in ("127.0.0.1", str(port), "someuser", "nodb_here", "pg_"):
        assert part in r.output, "message lacks %r:\n%s" % (part, r.output)
    assert "refused" in r.output.lower(), "the server's reason is missing:\n" + r.output
    assert pg.password not in r.output


def test_wrong_password_shows_server_reason(sluice_cp_bin, pg, bootstrapped_db):
    env = cp_env(pg, bootstrapped_db, closed_port(), closed_port(),
                 extra={"SLUICE_PG_PASSWORD": "definitely-wrong-pw"})
    r = run_serve_expecting_exit(env)
    assert r.returncode != 0
    assert "password authentication failed" in r.output, r.output
    assert "sluice" in r.output and bootstrapped_db in r.output
    assert "pg_" in r.output
    assert "definitely-wrong-pw" not in r.output


def test_serve_on_empty_database_says_bootstrap(sluice_cp_bin, pg, fresh_db):
    r = run_serve_expecting_exit(cp_env(pg, fresh_db, closed_port(), closed_port()))
    assert r.returncode != 0
    assert "migrations bootstrap" in r.output, r.output


def test_migrations_list_bootstrap_and_idempotence(sluice_cp_bin, pg, fresh_db):
    assert list_state(pg, fresh_db).returncode == 3

    r = run_cp(["migrations", "bootstrap"], cp_env(pg, fresh_db))
    assert r.returncode == 0, r.output
    # The schema is really there: the entity tables and the cluster version row.
    assert pg.psql("SELECT to_regclass('services') IS NOT NULL", db=fresh_db) == "t"
    assert pg.psql("SELECT count(*) FROM sluice_cluster", db=fresh_db) == "1"

    r = list_state(pg, fresh_db)
    assert r.returncode == 0, r.output

    r = run_cp(["migrations", "bootstrap"], cp_env(pg, fresh_db))
    assert r.returncode == 0, r.output
    assert "already bootstrapped" in r.output.lower(), r.output
    assert list_state(pg, fresh_db).returncode == 0


def applied_migrations(pg, db):
    return pg.psql("SELECT count(*) FROM %s" % MIGRATIONS_TABLE, db=db)


def test_pending_migration_blocks_serve_until_up(sluice_cp_bin, pg, bootstrapped_db):
    count = int(applied_migrations(pg, bootstrapped_db))
    assert count >= 1
    if count < 2:
        pytest.skip("only one migration exists: forgetting it would look like an empty database")
    # Forget that the newest migration ran, as if this binary were newer than the database.
    # The migration's own statements must be safe to re-run for `up` to succeed here; that is
    # what a migration rerun after a crash needs anyway.
    pg.psql("DELETE FROM %s WHERE ctid = (SELECT ctid FROM %s ORDER BY 1 DESC LIMIT 1)"
            % (MIGRATIONS_TABLE, MIGRATIONS_TABLE), db=bootstrapped_db)
    r = list_state(pg, bootstrapped_db)
    assert r.returncode == 4, r.output

    r = run_serve_expecting_exit(cp_env(pg, bootstrapped_db, closed_port(), closed_port()))
    assert r.returncode != 0
    assert "migrations up" in r.output, r.output

    r = run_cp(["migrations", "up"], cp_env(pg, bootstrapped_db))
    assert r.returncode == 0, r.output
    assert int(applied_migrations(pg, bootstrapped_db)) == count
    assert list_state(pg, bootstrapped_db).returncode == 0

    r = run_cp(["migrations", "up"], cp_env(pg, bootstrapped_db))
    assert r.returncode == 0, r.output


def test_reset_needs_yes_then_drops_everything(sluice_cp_bin, pg, bootstrapped_db):
    r = run_cp(["migrations", "reset"], cp_env(pg, bootstrapped_db))
    assert r.returncode != 0, "reset without --yes and without a terminal must refuse"
    assert list_state(pg, bootstrapped_db).returncode == 0

    r = run_cp(["migrations", "reset", "--yes"], cp_env(pg, bootstrapped_db))
    assert r.returncode == 0, r.output
    assert list_state(pg, bootstrapped_db).returncode == 3
    assert pg.psql("SELECT to_regclass('services') IS NULL", db=bootstrapped_db) == "t"

    r = run_cp(["migrations", "bootstrap"], cp_env(pg, bootstrapped_db))
    assert r.returncode == 0, r.output
    assert list_state(pg, bootstrapped_db).returncode == 0


def migration_lock_sql():
    """The advisory lock call the migrations runner takes, read from its source so that this
    test holds exactly the lock another node would hold."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "control_plane", "store",
                        "migrate.c")
    with open(path) as f:
        src = f.read()
    m = re.search(r'#define\s+MIGRATION_LOCK_KEY\s+"?(-?\d+)"?', src) or re.search(
        r"pg_(?:try_)?advisory_lock\((-?\d+(?:\s*,\s*-?\d+)?)\)", src)
    assert m, "no advisory lock key found in control_plane/store/migrate.c"
    args = m.group(1)
    return "SELECT pg_advisory_lock(%s)" % args


@pytest.mark.parametrize("command", [["bootstrap"], ["up"], ["reset", "--yes"]])
def test_second_node_migrating_is_refused(sluice_cp_bin, pg, fresh_db, command):
    if command != ["bootstrap"]:
        assert run_cp(["migrations", "bootstrap"], cp_env(pg, fresh_db)).returncode == 0
    other_node = pg.session(fresh_db)
    try:
        other_node.send(migration_lock_sql() + ";")
        other_node.wait_idle_after("SELECT pg_advisory_lock")
        r = run_cp(["migrations"] + command, cp_env(pg, fresh_db), timeout=30)
        assert r.returncode == 1, r.output
        assert "another node is performing database changes" in r.output
    finally:
        other_node.close()
    # The refused run changed nothing; once the lock is free the same command works.
    expected = {"bootstrap": 3, "up": 0, "reset": 0}[command[0]]
    assert list_state(pg, fresh_db).returncode == expected
    r = run_cp(["migrations"] + command, cp_env(pg, fresh_db))
    assert r.returncode == 0, r.output
