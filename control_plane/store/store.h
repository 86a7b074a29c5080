#ifndef CP_STORE_H
#define CP_STORE_H

/* The PostgreSQL store. Blocking libpq calls: only ever called on a DB thread (never on the
 * event loop). One cp_store is one connection, used by one thread at a time.
 *
 * Column mapping, read from the schema tables (proto/schema.h), that migrations/ follow:
 *   table = entity->name; scalar field -> column of the same name;
 *   FOREIGN field "service" -> column "service_id uuid REFERENCES services(id)"
 *     (ON DELETE CASCADE with SL_F_CASCADE, else RESTRICT-like: the store refuses the delete);
 *   ARRAY/SET of strings -> text[], of integers -> integer[]; MAP/RECORD/JSON -> jsonb;
 *   TIMESTAMP -> timestamp(0) with time zone (API: integer seconds); UUID -> uuid.
 * Every committed transaction that writes an entity table bumps sluice_cluster.config_version
 * once (statement triggers) and sends NOTIFY sluice_config with the new version. */

#include <jansson.h>
#include <stdint.h>

#include "proto/schema.h"
#include "proto/settings.h"

typedef struct cp_store cp_store;

/* Kong's error codes (kong/db/errors.lua), which the Admin API returns as "code". */
typedef enum {
    CP_STORE_OK = 0,
    CP_STORE_SCHEMA = 2,     /* schema violation: fields has the per-field messages */
    CP_STORE_FOREIGN = 4,    /* foreign key violation: a referenced row does not exist */
    CP_STORE_UNIQUE = 5,     /* unique constraint violation: fields has the unique key */
    CP_STORE_NOT_FOUND = 6,  /* no such row */
    CP_STORE_OFFSET = 7,     /* invalid offset */
    CP_STORE_DB = 8,         /* database error (unreachable, timeout): Admin API 500/503 */
    CP_STORE_REFERENCED = 19 /* delete refused: other rows reference this one */
} cp_store_status;

typedef struct {
    cp_store_status status;
    json_t *fields;    /* owned; NULL or Kong's "fields" object for this error */
    char message[512]; /* Kong-shaped message ("UNIQUE violation detected on '{name=\"x\"}'") */
} cp_store_error;

void cp_store_error_clear(cp_store_error *err);

/* Connects with the pg_* settings. On failure returns NULL and writes into err a message with
 * host, port, user, database, the server's reason and a hint to check the pg_* settings.
 * The password never appears in messages. */
cp_store *cp_store_connect(const sl_settings *s, char *err, size_t errlen);
void cp_store_close(cp_store *st);

/* Whether the connection is usable; reconnects once if it broke. */
int cp_store_ping(cp_store *st);

/* Transactions, for callers that group several writes (declarative import). Writes outside
 * an explicit transaction are each their own transaction. */
int cp_store_begin(cp_store *st, cp_store_error *err);
int cp_store_commit(cp_store *st, cp_store_error *err);
void cp_store_rollback(cp_store *st);

/* Reads one row by uuid or, when the entity has an endpoint_key and id_or_key is not a uuid,
 * by that key. *out is the row as Admin API JSON (caller owns). CP_STORE_NOT_FOUND if none. */
int cp_store_get(cp_store *st, const sl_entity *e, const char *id_or_key, json_t **out,
                 cp_store_error *err);

/* Inserts a validated entity. id, created_at, updated_at are generated when absent.
 * *out (optional) gets the stored row. Unique and foreign-key violations come back as
 * CP_STORE_UNIQUE / CP_STORE_FOREIGN with Kong's fields. */
int cp_store_insert(cp_store *st, const sl_entity *e, const json_t *entity, json_t **out,
                    cp_store_error *err);

/* Replaces the row with entity["id"] by a validated complete entity (created_at kept,
 * updated_at now). CP_STORE_NOT_FOUND when there is no such row. */
int cp_store_update(cp_store *st, const sl_entity *e, const json_t *entity, json_t **out,
                    cp_store_error *err);

/* Inserts or replaces by entity["id"] (PUT). *created tells which happened. */
int cp_store_upsert(cp_store *st, const sl_entity *e, const json_t *entity, json_t **out,
                    int *created, cp_store_error *err);

/* Deletes by uuid. Rows referencing it through non-cascading foreign keys make it fail with
 * CP_STORE_REFERENCED and a message naming the referencing entity; nothing is deleted.
 * Deleting a missing row is not an error (Kong's DELETE is idempotent). */
int cp_store_delete(cp_store *st, const sl_entity *e, const char *id, cp_store_error *err);

typedef struct {
    int size;                /* page size, 1..1000 */
    const char *offset;      /* opaque offset from a previous page, or NULL */
    const char *const *tags; /* NULL or tags to filter on */
    int ntags;
    int tags_or;            /* 0: row has all tags; 1: row has any */
    const char *foreign;    /* NULL or a FOREIGN field name to filter on ("service") */
    const char *foreign_id; /* its uuid */
} cp_store_list_query;

/* Lists rows ordered by id. *rows is a new JSON array; *next_offset a malloc'd opaque offset
 * for the next page or NULL at the end. A malformed offset gives CP_STORE_OFFSET. */
int cp_store_list(cp_store *st, const sl_entity *e, const cp_store_list_query *q, json_t **rows,
                  char **next_offset, cp_store_error *err);

/* The current cluster config version (0 before any write). -1 on error. */
int64_t cp_store_config_version(cp_store *st);

/* Reads every entity at one version in one REPEATABLE READ READ ONLY transaction:
 * *config becomes {"services": [...], "routes": [...], ...} with every entity of
 * sl_entities (rows ordered by id) and *version the config version it reflects. */
int cp_store_read_config(cp_store *st, json_t **config, int64_t *version, cp_store_error *err);

/* Rows changed after a version, from the change log of migrations/003_change_capture.sql. */
#define CP_STORE_MAX_CHANGES 200000 /* more changed rows than this: read everything instead */
typedef struct {
    int64_t version; /* the config version the changes lead to */
    int stale;       /* 1: the log cannot bring `since` up to date; nothing else is set */
    json_t *upserts; /* {"<entity>": [rows as cp_store_read_config gives them, by id]} */
    json_t *deletes; /* {"<entity>": ["<id>", ...]} (ids by id order) */
    size_t nupserts, ndeletes;
} cp_store_changes;

/* Reads, in one REPEATABLE READ READ ONLY transaction, the current version and every row of
 * every entity changed after version since: rows that exist now (upserts) and ids that no
 * longer do (deletes). Only entities with changes appear in the objects. out->stale is set
 * instead when since is older than the log covers (sluice_cluster.changes_from: a new log, a
 * TRUNCATE, pruned tombstones), newer than the database (reset), or more than
 * CP_STORE_MAX_CHANGES rows changed: the caller then reads the whole config. On success the
 * caller frees out with cp_store_changes_free. */
int cp_store_read_changes(cp_store *st, int64_t since, cp_store_changes *out, cp_store_error *err);
void cp_store_changes_free(cp_store_changes *c);

/* The libpq connection, for code that LISTENs (cluster notifications). */
struct pg_conn *cp_store_conn(cp_store *st);

#endif
