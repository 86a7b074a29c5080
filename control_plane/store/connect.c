/* One libpq connection per cp_store, opened from the pg_* settings. Statements go through
 * cp_store_exec so a connection that broke between requests is reopened once, transparently,
 * when no transaction is open. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/store/store_internal.h"
#include "proto/log.h"

/* libpq's reasons start with "connection to server at "h" (a), port p failed: " per address
 * tried and continue on tab-indented lines; the user already sees host and port in our own
 * message, so keep only the reasons, joined on one line. */
static void trim_reason(char *dst, size_t len, const char *src)
{
    size_t o = 0;
    dst[0] = '\0';
    const char *line = src ? src : "";
    while (*line && o + 1 < len) {
        size_t n = strcspn(line, "\n");
        const char *s = line, *end = line + n;
        while (s < end && isspace((unsigned char)*s))
            s++;
        if (strncmp(s, "connection to server", 20) == 0) {
            const char *f = strstr(s, " failed: ");
            if (f && f < end)
                s = f + strlen(" failed: ");
        }
        while (end > s && isspace((unsigned char)end[-1]))
            end--;
        if (end - s > 6 && strncmp(s, "FATAL:", 6) == 0) /* the severity is noise here */
            for (s += 6; s < end && isspace((unsigned char)*s);)
                s++;
        if (end > s) {
            /* Continuation lines are hints ("Is the server running ...?"): new sentences. */
            const char *sep = o == 0 ? "" : strchr(".?!", dst[o - 1]) ? " " : ". ";
            int w = snprintf(dst + o, len - o, "%s%.*s", sep, (int)(end - s), s);
            if (w < 0 || (size_t)w >= len - o)
                return;
            o += (size_t)w;
        }
        line += n;
        if (*line)
            line++;
    }
    /* Collapse the double spaces libpq puts after "FATAL:". */
    char *r = dst, *w = dst;
    for (; *r; r++)
        if (!(*r == ' ' && w > dst && w[-1] == ' '))
            *w++ = *r;
    *w = '\0';
}

/* Server notices (CASCADE details, "already exists, skipping") are not for the terminal. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    sl_debug("PostgreSQL: %.*s", (int)strcspn(message, "\n"), message);
}

cp_store *cp_store_connect(const sl_settings *s, char *err, size_t errlen)
{
    const char *host = sl_settings_get(s, "pg_host");
    const char *port = sl_settings_get(s, "pg_port");
    const char *user = sl_settings_get(s, "pg_user");
    const char *password = sl_settings_get(s, "pg_password");
    const char *db = sl_settings_get(s, "pg_database");
    int ssl = sl_settings_bool(s, "pg_ssl");
    const char *keys[12], *vals[12];
    int n = 0;
    keys[n] = "host", vals[n++] = host ? host : "127.0.0.1";
    keys[n] = "port", vals[n++] = port ? port : "5432";
    keys[n] = "user", vals[n++] = user ? user : "sluice";
    keys[n] = "dbname", vals[n++] = db ? db : "sluice";
    if (password)
        keys[n] = "password", vals[n++] = password;
    keys[n] = "sslmode", vals[n++] = ssl > 0 ? "require" : "disable";
    /* No Kerberos here: skipping GSSAPI negotiation saves a round trip per connection. */
    keys[n] = "gssencmode", vals[n++] = "disable";
    keys[n] = "connect_timeout", vals[n++] = "5";
    keys[n] = "application_name", vals[n++] = "sluice-cp";
    keys[n] = "client_encoding", vals[n++] = "UTF8";
    keys[n] = NULL, vals[n] = NULL;

    cp_store *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* expand_dbname 0: a database name is never parsed as a connection string. */
    st->conn = PQconnectdbParams(keys, vals, 0);
    if (!st->conn || PQstatus(st->conn) != CONNECTION_OK) {
        char reason[512];
        trim_reason(reason, sizeof(reason), st->conn ? PQerrorMessage(st->conn) : "out of memory");
        snprintf(err, errlen,
                 "cannot connect to PostgreSQL at %s:%s (user \"%s\", database \"%s\"): %s; "
                 "check the pg_host, pg_port, pg_user, pg_password and pg_database settings",
                 vals[0], vals[1], vals[2], vals[3], reason);
        cp_store_close(st);
        return NULL;
    }
    PQsetNoticeProcessor(st->conn, quiet_notice, NULL);
    return st;
}

void cp_store_close(cp_store *st)
{
    if (!st)
        return;
    if (st->conn)
        PQfinish(st->conn);
    free(st);
}

struct pg_conn *cp_store_conn(cp_store *st)
{
    return st ? st->conn : NULL;
}

int cp_result_ok(const PGresult *res)
{
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK;
}

static PGresult *exec_once(cp_store *st, const char *sql, const cp_params *p)
{
    return PQexecParams(st->conn, sql, p ? p->n : 0, NULL, p ? (const char *const *)p->v : NULL,
                        NULL, NULL, 0);
}

PGresult *cp_store_exec(cp_store *st, const char *sql, const cp_params *p)
{
    PGresult *res = exec_once(st, sql, p);
    if (!cp_result_ok(res) && PQstatus(st->conn) == CONNECTION_BAD && !st->in_tx) {
        /* The server restarted or the connection idled out: one fresh try, never inside a
         * transaction, whose earlier statements died with the old connection. */
        PQclear(res);
        PQreset(st->conn);
        if (PQstatus(st->conn) != CONNECTION_OK)
            return NULL;
        sl_notice("reconnected to PostgreSQL");
        res = exec_once(st, sql, p);
    }
    return res;
}

int cp_store_ping(cp_store *st)
{
    if (!st || !st->conn)
        return 0;
    if (PQstatus(st->conn) != CONNECTION_OK) {
        if (st->in_tx)
            return 0;
        PQreset(st->conn);
    }
    PGresult *res = cp_store_exec(st, "SELECT 1", NULL);
    int ok = cp_result_ok(res);
    PQclear(res);
    return ok;
}

static int simple(cp_store *st, const char *sql, cp_store_error *err)
{
    PGresult *res = cp_store_exec(st, sql, NULL);
    int ok = cp_result_ok(res);
    if (!ok && err)
        cp_store_db_error(st, res, err);
    PQclear(res);
    return ok ? 0 : -1;
}

int cp_store_begin(cp_store *st, cp_store_error *err)
{
    if (simple(st, "BEGIN", err))
        return -1;
    st->in_tx = 1;
    return 0;
}

int cp_store_commit(cp_store *st, cp_store_error *err)
{
    PGresult *res = cp_store_exec(st, "COMMIT", NULL);
    st->in_tx = 0;
    int ok = cp_result_ok(res);
    if (ok && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
        /* COMMIT of a transaction an earlier error aborted rolls back and says so only here. */
        if (err) {
            cp_store_error_clear(err);
            err->status = CP_STORE_DB;
            snprintf(err->message, sizeof(err->message),
                     "database error: the transaction was rolled back after an earlier error");
        }
        PQclear(res);
        return -1;
    }
    if (!ok && err)
        /* Deferred constraints fail at commit; they are still unique/foreign violations. */
        cp_store_map_error(st, NULL, NULL, res, 0, err);
    PQclear(res);
    return ok ? 0 : -1;
}

void cp_store_rollback(cp_store *st)
{
    if (!st->in_tx)
        return;
    PGresult *res = PQexec(st->conn, "ROLLBACK");
    PQclear(res);
    st->in_tx = 0;
}
