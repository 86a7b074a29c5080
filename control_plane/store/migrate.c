/* `sluice-cp migrations ...`: applies the SQL files compiled into the binary
 * (scripts/embed_migrations.sh), records each in sluice_schema_migrations in the same
 * transaction, and serialises concurrent runners (several CP replicas starting together) with
 * one PostgreSQL advisory lock. Output and exit codes follow `kong migrations`. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_plane/store/migrate.h"
#include "control_plane/store/store_internal.h"

/* Generated from the migrations folder's .sql files, in file name order. */
struct cp_migration_file {
    const char *name;
    const char *sql;
};
extern const struct cp_migration_file cp_migration_files[];
extern const size_t cp_migration_file_count;

/* Advisory lock key shared by every Sluice node: the ASCII bytes of "slu-migr". */
#define MIGRATION_LOCK_KEY "8317151449816065906"

/* A database never holds more migrations than this; more rows mean it is not ours. */
#define MAX_APPLIED 1024

static const char bookkeeping_sql[] =
    "CREATE TABLE IF NOT EXISTS sluice_schema_migrations ("
    "name text PRIMARY KEY, executed_at timestamptz NOT NULL DEFAULT now())";

typedef struct {
    char *names[MAX_APPLIED]; /* applied migration names, malloc'd */
    int n;
} applied_set;

static void applied_free(applied_set *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->names[i]);
    a->n = 0;
}

static int applied_has(const applied_set *a, const char *name)
{
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->names[i], name) == 0)
            return 1;
    return 0;
}

static void result_error(cp_store *st, const PGresult *res, char *err, size_t errlen)
{
    cp_store_error e = {0};
    cp_store_db_error(st, res, &e);
    size_t n = strnlen(e.message, errlen - 1); /* messages are cut, never overflow */
    memcpy(err, e.message, n);
    err[n] = '\0';
    cp_store_error_clear(&e);
}

/* Reads the applied names; a missing bookkeeping table means none. Returns 0 or -1. */
static int read_applied(cp_store *st, applied_set *a, char *err, size_t errlen)
{
    a->n = 0;
    PGresult *res =
        cp_store_exec(st, "SELECT to_regclass('sluice_schema_migrations') IS NOT NULL", NULL);
    if (!cp_result_ok(res)) {
        result_error(st, res, err, errlen);
        PQclear(res);
        return -1;
    }
    int exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!exists)
        return 0;
    res = cp_store_exec(st, "SELECT name FROM sluice_schema_migrations ORDER BY name", NULL);
    if (!cp_result_ok(res)) {
        result_error(st, res, err, errlen);
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res) && a->n < MAX_APPLIED; i++) {
        char *name = strdup(PQgetvalue(res, i, 0));
        if (!name) {
            PQclear(res);
            applied_free(a);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        a->names[a->n++] = name;
    }
    PQclear(res);
    return 0;
}

static int state_of(const applied_set *a)
{
    if (a->n == 0)
        return CP_SCHEMA_NEEDS_BOOTSTRAP;
    for (size_t i = 0; i < cp_migration_file_count; i++)
        if (!applied_has(a, cp_migration_files[i].name))
            return CP_SCHEMA_PENDING;
    return CP_SCHEMA_UP_TO_DATE;
}

int cp_migrations_state(cp_store *st, char *err, size_t errlen)
{
    applied_set a;
    if (read_applied(st, &a, err, errlen))
        return -1;
    int state = state_of(&a);
    applied_free(&a);
    return state;
}

/* ---- the command ---- */

/* Prints "Error: <message>" on stderr, as Kong's CLI does, and gives exit status 1. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: sluice-cp migrations COMMAND [OPTIONS]\n"
                 "\n"
                 "Manage the database schema.\n"
                 "\n"
                 "Commands:\n"
                 "  bootstrap        create the schema on an empty database\n"
                 "  up               apply new migrations\n"
                 "  list             list executed and pending migrations (exit 0 up to date,\n"
                 "                   3 needs bootstrap, 4 pending)\n"
                 "  reset            drop everything Sluice created in the database\n"
                 "\n"
                 "Options:\n"
                 "  -y, --yes              reset without asking\n"
                 "  --lock-timeout N       wait up to N seconds for another node's schema change\n"
                 "                         to finish (default 0: stop at once)\n");
}

/* Takes the migrations lock on this connection, retrying once a second up to timeout s. */
static int take_lock(cp_store *st, long timeout, char *err, size_t errlen)
{
    time_t deadline = time(NULL) + timeout;
    for (;;) {
        PGresult *res =
            cp_store_exec(st, "SELECT pg_try_advisory_lock(" MIGRATION_LOCK_KEY ")", NULL);
        if (!cp_result_ok(res)) {
            result_error(st, res, err, errlen);
            PQclear(res);
            return -1;
        }
        int got = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (got)
            return 0;
        if (time(NULL) >= deadline) {
            snprintf(err, errlen, "another node is performing database changes");
            return -1;
        }
        sleep(1);
    }
}

static int exec_simple(cp_store *st, const char *sql, char *err, size_t errlen)
{
    PGresult *res = cp_store_exec(st, sql, NULL);
    int ok = cp_result_ok(res);
    if (!ok)
        result_error(st, res, err, errlen);
    PQclear(res);
    return ok ? 0 : -1;
}

/* Applies one migration and its bookkeeping row in one transaction. */
static int apply_one(cp_store *st, const struct cp_migration_file *m, char *err, size_t errlen)
{
    char why[400];
    if (exec_simple(st, "BEGIN", why, sizeof(why))) {
        snprintf(err, errlen, "migration %s failed: %s", m->name, why);
        return -1;
    }
    /* PQexec: a migration file holds several statements, which only the simple query
     * protocol runs in one call; it carries no values, only our own SQL. */
    PGresult *res = PQexec(st->conn, m->sql);
    int ok = cp_result_ok(res);
    if (!ok)
        result_error(st, res, why, sizeof(why));
    PQclear(res);
    if (ok) {
        cp_params p;
        cp_params_init(&p);
        cp_params_add(&p, m->name);
        res = cp_store_exec(st, "INSERT INTO sluice_schema_migrations (name) VALUES ($1)", &p);
        cp_params_free(&p);
        ok = cp_result_ok(res);
        if (!ok)
            result_error(st, res, why, sizeof(why));
        PQclear(res);
    }
    if (ok && exec_simple(st, "COMMIT", why, sizeof(why)))
        ok = 0;
    if (!ok) {
        PQclear(PQexec(st->conn, "ROLLBACK"));
        snprintf(err, errlen, "migration %s failed: %s", m->name, why);
        return -1;
    }
    printf("migrated up to: %s (executed)\n", m->name);
    return 0;
}

/* Applies every migration not in a, in order. */
static int apply_pending(cp_store *st, const applied_set *a, char *err, size_t errlen)
{
    for (size_t i = 0; i < cp_migration_file_count; i++)
        if (!applied_has(a, cp_migration_files[i].name) &&
            apply_one(st, &cp_migration_files[i], err, errlen))
            return -1;
    return 0;
}

static int cmd_bootstrap(cp_store *st, const applied_set *a, char *err, size_t errlen)
{
    if (state_of(a) != CP_SCHEMA_NEEDS_BOOTSTRAP) {
        printf("Database already bootstrapped\n");
        return 0;
    }
    printf("Bootstrapping database...\n");
    if (exec_simple(st, bookkeeping_sql, err, errlen) || apply_pending(st, a, err, errlen))
        return fail("%s", err);
    printf("Database is up-to-date\n");
    return 0;
}

static int cmd_up(cp_store *st, const applied_set *a, char *err, size_t errlen)
{
    int state = state_of(a);
    if (state == CP_SCHEMA_NEEDS_BOOTSTRAP)
        return fail("%s", "Database needs bootstrapping; run 'sluice-cp migrations bootstrap'");
    if (state == CP_SCHEMA_UP_TO_DATE) {
        printf("Database is already up-to-date\n");
        return 0;
    }
    if (apply_pending(st, a, err, errlen))
        return fail("%s", err);
    printf("Database is up-to-date\n");
    return 0;
}

static int cmd_list(const applied_set *a)
{
    int state = state_of(a);
    if (state == CP_SCHEMA_NEEDS_BOOTSTRAP) {
        printf("Database needs bootstrapping; run 'sluice-cp migrations bootstrap'\n");
        return CP_SCHEMA_NEEDS_BOOTSTRAP;
    }
    printf("Executed migrations:\n");
    for (int i = 0; i < a->n; i++)
        printf("  %s\n", a->names[i]);
    if (state == CP_SCHEMA_UP_TO_DATE) {
        printf("Database is up-to-date\n");
        return CP_SCHEMA_UP_TO_DATE;
    }
    printf("Pending migrations:\n");
    for (size_t i = 0; i < cp_migration_file_count; i++)
        if (!applied_has(a, cp_migration_files[i].name))
            printf("  %s\n", cp_migration_files[i].name);
    printf("New migrations available; run 'sluice-cp migrations up' to proceed\n");
    return CP_SCHEMA_PENDING;
}

/* Asks on the terminal; only a "y"/"yes" answer proceeds. */
static int confirm(void)
{
    char line[32];
    printf("Are you sure? This operation is irreversible. [y/N] ");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0;
}

/* Drops what this user owns in the current schema: the tables (with their sequences,
 * indexes and triggers), views, functions and types the migrations created. Owned objects
 * only, so a database shared with other applications keeps theirs. One transaction. */
static const char reset_list_sql[] =
    "SELECT format('DROP VIEW IF EXISTS %I.%I CASCADE', schemaname, viewname) FROM pg_views "
    " WHERE schemaname = current_schema() AND viewowner = current_user "
    "UNION ALL "
    "SELECT format('DROP TABLE IF EXISTS %I.%I CASCADE', schemaname, tablename) FROM pg_tables "
    " WHERE schemaname = current_schema() AND tableowner = current_user "
    "UNION ALL "
    "SELECT format('DROP SEQUENCE IF EXISTS %I.%I CASCADE', schemaname, sequencename) "
    " FROM pg_sequences WHERE schemaname = current_schema() AND sequenceowner = current_user "
    "UNION ALL "
    "SELECT format('DROP FUNCTION IF EXISTS %s CASCADE', p.oid::regprocedure) FROM pg_proc p "
    " WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind = 'f' "
    " AND pg_get_userbyid(p.proowner) = current_user "
    "UNION ALL "
    "SELECT format('DROP TYPE IF EXISTS %I.%I CASCADE', current_schema(), t.typname) "
    " FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace "
    " AND t.typtype IN ('e', 'd') AND pg_get_userbyid(t.typowner) = current_user";

static int cmd_reset(cp_store *st, int yes, char *err, size_t errlen)
{
    if (!yes) {
        if (!isatty(STDIN_FILENO))
            return fail("%s", "reset needs --yes when not run from a terminal");
        if (!confirm())
            return fail("%s", "reset cancelled");
    }
    if (exec_simple(st, "BEGIN", err, errlen))
        return fail("%s", err);
    PGresult *res = cp_store_exec(st, reset_list_sql, NULL);
    int ok = cp_result_ok(res);
    if (!ok)
        result_error(st, res, err, errlen);
    /* Each statement is CASCADE and IF EXISTS: an object already gone with an earlier one
     * (a table's sequence, a trigger function) is simply skipped. */
    for (int i = 0; ok && i < PQntuples(res); i++)
        ok = exec_simple(st, PQgetvalue(res, i, 0), err, errlen) == 0;
    PQclear(res);
    if (ok && exec_simple(st, "COMMIT", err, errlen))
        ok = 0;
    if (!ok) {
        PQclear(PQexec(st->conn, "ROLLBACK"));
        return fail("%s", err);
    }
    printf("Database successfully reset\n");
    return 0;
}

int cp_migrations_main(int argc, char **argv, const sl_settings *s)
{
    const char *cmd = NULL;
    int yes = 0;
    long lock_timeout = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--yes") == 0 || strcmp(a, "-y") == 0) {
            yes = 1;
        } else if (strcmp(a, "--lock-timeout") == 0 || strncmp(a, "--lock-timeout=", 15) == 0) {
            const char *v = a[14] == '=' ? a + 15 : (i + 1 < argc ? argv[++i] : NULL);
            char *end;
            errno = 0;
            lock_timeout = v ? strtol(v, &end, 10) : -1;
            if (!v || errno || end == v || *end || lock_timeout < 0 || lock_timeout > 86400)
                return fail("--lock-timeout needs a number of seconds (0..86400), got '%s'",
                            v ? v : "");
        } else if (a[0] == '-') {
            return fail("unknown option '%s'; see 'sluice-cp migrations --help'", a);
        } else if (cmd) {
            return fail("unexpected argument '%s'; see 'sluice-cp migrations --help'", a);
        } else {
            cmd = a;
        }
    }
    if (!cmd) {
        usage(stderr);
        return 1;
    }
    if (strcmp(cmd, "bootstrap") != 0 && strcmp(cmd, "up") != 0 && strcmp(cmd, "list") != 0 &&
        strcmp(cmd, "reset") != 0)
        return fail("unknown migrations command '%s'; use bootstrap, up, list or reset", cmd);

    char err[1024];
    cp_store *st = cp_store_connect(s, err, sizeof(err));
    if (!st)
        return fail("%s", err);
    int rc;
    applied_set a = {.n = 0};
    if (take_lock(st, lock_timeout, err, sizeof(err))) {
        rc = fail("%s", err);
    } else if (strcmp(cmd, "reset") == 0) {
        rc = cmd_reset(st, yes, err, sizeof(err));
    } else if (read_applied(st, &a, err, sizeof(err))) {
        rc = fail("%s", err);
    } else if (strcmp(cmd, "bootstrap") == 0) {
        rc = cmd_bootstrap(st, &a, err, sizeof(err));
    } else if (strcmp(cmd, "up") == 0) {
        rc = cmd_up(st, &a, err, sizeof(err));
    } else {
        rc = cmd_list(&a);
    }
    applied_free(&a);
    /* Closing the session releases the advisory lock. */
    cp_store_close(st);
    return rc;
}
