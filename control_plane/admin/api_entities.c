/* Generic entity CRUD for the Admin API, driven by the schema tables, with Kong's semantics
 * (kong/api/endpoints.lua): POST 201, PUT upsert 200, PATCH merge 200, DELETE 204 (idempotent
 * at the top level, 404 for a missing or foreign child when nested). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/admin/api_errors.h"
#include "control_plane/admin/api_internal.h"
#include "proto/uuid.h"

#define PAGE_MAX 1000
#define PAGE_DEFAULT 100
#define MAX_TAGS 64
#define MAX_OFFSET_LEN 1024
/* Finding a nested child by a key that is only unique under its parent (a target's "target")
 * scans the parent's children; this bounds the scan. */
#define SCOPED_SCAN_PAGES 64

/* The parent a nested request is restricted to. */
typedef struct {
    const sl_field *fk; /* the child's FOREIGN field */
    const char *parent_id;
} scope;

/* Result of a lookup. */
enum { FOUND = 0, MISSING = 1, FAILED = -1 };

static const char *fk_id(const json_t *row, const sl_field *fk)
{
    json_t *ref = json_object_get(row, fk->name);
    return json_string_value(json_object_get(ref, "id"));
}

static int belongs(const json_t *row, const scope *sc)
{
    const char *id = fk_id(row, sc->fk);
    return id != NULL && strcasecmp(id, sc->parent_id) == 0;
}

static int is_uuid(const char *key)
{
    return sl_uuid_is_valid(key);
}

/* Finds a row of e by id or endpoint key. FOUND with *row (caller owns), MISSING, or FAILED
 * with the response filled. */
static int lookup(cp_api_call *c, const sl_entity *e, const char *key, json_t **row)
{
    *row = NULL;
    if (!is_uuid(key) && !e->endpoint_key)
        return MISSING; /* nothing can match: no SQL */
    cp_store_error err = {0};
    int st = cp_store_get(c->st, e, key, row, &err);
    if (st == CP_STORE_OK && *row)
        return FOUND;
    if (st == CP_STORE_OK || st == CP_STORE_NOT_FOUND) {
        cp_store_error_clear(&err);
        json_decref(*row);
        *row = NULL;
        return MISSING;
    }
    cp_api_store_error(c->resp, &err, "reading an entity");
    cp_store_error_clear(&err);
    return FAILED;
}

/* Looks key up among the children of sc->parent_id: by id or a globally unique key first,
 * then by scanning the parent's children for an endpoint key that is unique only per parent. */
static int lookup_scoped(cp_api_call *c, const sl_entity *e, const char *key, const scope *sc,
                         json_t **row)
{
    int r = lookup(c, e, key, row);
    if (r == FAILED)
        return r;
    if (r == FOUND && belongs(*row, sc))
        return FOUND;
    json_decref(*row);
    *row = NULL;
    if (is_uuid(key) || !e->endpoint_key)
        return MISSING;

    char *offset = NULL;
    for (int page = 0; page < SCOPED_SCAN_PAGES; page++) {
        cp_store_list_query q = {.size = PAGE_MAX,
                                 .offset = offset,
                                 .foreign = sc->fk->name,
                                 .foreign_id = sc->parent_id};
        json_t *rows = NULL;
        char *next = NULL;
        cp_store_error err = {0};
        if (cp_store_list(c->st, e, &q, &rows, &next, &err) != CP_STORE_OK) {
            free(offset);
            cp_api_store_error(c->resp, &err, "listing entities");
            cp_store_error_clear(&err);
            return FAILED;
        }
        free(offset);
        offset = next;
        size_t i;
        json_t *it;
        json_array_foreach(rows, i, it)
        {
            const char *v = json_string_value(json_object_get(it, e->endpoint_key));
            if (v && strcmp(v, key) == 0) {
                *row = json_incref(it);
                break;
            }
        }
        json_decref(rows);
        if (*row || !offset)
            break;
    }
    free(offset);
    return *row ? FOUND : MISSING;
}

/* Resolves the parent named in a nested URL; MISSING answers 404. */
static int resolve_parent(cp_api_call *c, json_t **parent)
{
    int r = lookup(c, c->route->parent, c->route->parent_key, parent);
    if (r == MISSING)
        cp_api_not_found(c->resp);
    return r;
}

static void reply_store_result(cp_api_call *c, int st, cp_store_error *err, json_t *row, int status,
                               const char *what)
{
    if (st == CP_STORE_OK) {
        cp_api_reply(c->resp, status, row ? row : json_object());
        return;
    }
    json_decref(row);
    cp_api_store_error(c->resp, err, what);
}

/* ---- certificates: the row and its transient `snis` in one transaction ---- */

enum { WRITE_INSERT, WRITE_UPSERT, WRITE_UPDATE };

static int write_certificate(cp_api_call *c, const sl_entity *e, const json_t *cert, int how,
                             json_t **row, int *created, cp_store_error *err)
{
    const json_t *snis = json_object_get(cert, "snis");
    int st = cp_store_begin(c->st, err);
    if (st != CP_STORE_OK)
        return st;
    if (how == WRITE_INSERT)
        st = cp_store_insert(c->st, e, cert, row, err);
    else if (how == WRITE_UPSERT)
        st = cp_store_upsert(c->st, e, cert, row, created, err);
    else
        st = cp_store_update(c->st, e, cert, row, err);
    const char *id = json_string_value(json_object_get(*row, "id"));
    if (st == CP_STORE_OK && json_is_array(snis) && cp_api_cert_sync_snis(c->st, id, snis, err))
        st = err->status;
    if (st == CP_STORE_OK && cp_api_cert_attach_snis(c->st, *row, err))
        st = err->status;
    if (st == CP_STORE_OK)
        st = cp_store_commit(c->st, err);
    else
        cp_store_rollback(c->st);
    return st;
}

/* ---- collections ---- */

/* The first string of a query argument (repeated arguments decode to arrays). */
static const char *query_arg(const json_t *query, const char *name, int *present)
{
    json_t *v = json_object_get(query, name);
    *present = v != NULL;
    if (json_is_array(v))
        v = json_array_get(v, 0);
    return json_is_string(v) ? json_string_value(v) : (v ? "" : NULL);
}

/* Kong accepts tag bytes 0x20-0x7E except ',' and '/', and UTF-8 lead/continuation bytes. */
static int tag_byte_ok(unsigned char ch)
{
    return (ch >= 0x20 && ch <= 0x7E && ch != ',' && ch != '/') || (ch >= 0x80 && ch <= 0xF4);
}

/* Splits "a,b" (all) or "a/b" (any) into tags; NULL on bad syntax. Caller frees *buf. */
static int parse_tags(const char *s, char **buf, const char **tags, int *ntags, int *any)
{
    int has_comma = strchr(s, ',') != NULL, has_slash = strchr(s, '/') != NULL;
    if (has_comma && has_slash)
        return -1;
    char sep = has_slash ? '/' : ',';
    *any = has_slash;
    *buf = strdup(s);
    if (!*buf)
        return -1;
    int n = 0;
    char *p = *buf;
    while (*p) {
        char *start = p;
        while (*p && *p != sep) {
            if (!tag_byte_ok((unsigned char)*p))
                return -1;
            p++;
        }
        if (p == start || n == MAX_TAGS)
            return -1; /* an empty tag: "a,,b" or ",a" */
        if (*p)
            *p++ = '\0';
        tags[n++] = start;
    }
    *ntags = n;
    return n > 0 ? 0 : -1;
}

/* Appends s to buf percent-encoded as a URI component (ngx.escape_uri's unreserved set). */
static void append_escaped(char *buf, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s && *len + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            buf[(*len)++] = (char)ch;
        } else {
            buf[(*len)++] = '%';
            buf[(*len)++] = hex[ch >> 4];
            buf[(*len)++] = hex[ch & 15];
        }
    }
    buf[*len] = '\0';
}

static void append_raw(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > cap)
        n = cap - *len - 1;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

/* Parses ?size=: 1..1000; -1 when invalid. */
static int parse_size(const char *s)
{
    if (!s || !*s || strlen(s) > 5)
        return -1;
    int v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= PAGE_MAX ? v : -1;
}

static void list(cp_api_call *c)
{
    const cp_api_route *r = c->route;
    int present;

    int size = PAGE_DEFAULT;
    const char *size_s = query_arg(c->query, "size", &present);
    if (present) {
        size = parse_size(size_s);
        if (size < 0) {
            cp_api_error(c->resp, CP_ERR_SIZE, "size must be an integer between 1 and 1000", NULL);
            return;
        }
    }

    const char *offset = query_arg(c->query, "offset", &present);
    if (present && (!offset || !*offset || strlen(offset) > MAX_OFFSET_LEN)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "'%.64s' is not a valid offset: bad offset",
                 offset ? offset : "");
        cp_api_error(c->resp, CP_ERR_OFFSET, msg, NULL);
        return;
    }

    const char *tags_s = query_arg(c->query, "tags", &present);
    const char *tags[MAX_TAGS];
    int ntags = 0, any = 0;
    char *tagbuf = NULL;
    if (present) {
        if (!tags_s || !*tags_s) {
            cp_api_invalid_option(c->resp, "tags", "cannot be null");
            return;
        }
        if (parse_tags(tags_s, &tagbuf, tags, &ntags, &any) != 0) {
            free(tagbuf);
            cp_api_invalid_option(c->resp, "tags", "invalid filter syntax");
            return;
        }
    }

    cp_store_list_query q = {.size = size,
                             .offset = offset,
                             .tags = ntags ? tags : NULL,
                             .ntags = ntags,
                             .tags_or = any};
    json_t *parent = NULL;
    if (r->kind == CP_API_NESTED_COLLECTION) {
        if (resolve_parent(c, &parent) != FOUND) {
            free(tagbuf);
            return;
        }
        q.foreign = r->fk->name;
        q.foreign_id = json_string_value(json_object_get(parent, "id"));
    }

    json_t *rows = NULL;
    char *next = NULL;
    cp_store_error err = {0};
    int st = cp_store_list(c->st, r->entity, &q, &rows, &next, &err);
    json_decref(parent);
    free(tagbuf);
    if (st != CP_STORE_OK) {
        json_decref(rows);
        cp_api_store_error(c->resp, &err, "listing entities");
        cp_store_error_clear(&err);
        return;
    }

    if (cp_api_is_certificates(r->entity)) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            if (cp_api_cert_attach_snis(c->st, row, &err)) {
                json_decref(rows);
                free(next);
                cp_api_store_error(c->resp, &err, "listing a certificate's snis");
                cp_store_error_clear(&err);
                return;
            }
        }
    }
    json_t *body = json_object();
    json_object_set_new(body, "data", rows ? rows : json_array());
    if (next) {
        /* The link repeats the collection's path with the offset, tags and size. */
        char link[4096];
        size_t len = 0;
        link[0] = '\0';
        if (r->kind == CP_API_NESTED_COLLECTION) {
            append_raw(link, sizeof(link), &len, "/");
            append_raw(link, sizeof(link), &len, r->parent->endpoint);
            append_raw(link, sizeof(link), &len, "/");
            append_escaped(link, sizeof(link), &len, r->parent_key);
            append_raw(link, sizeof(link), &len, "/");
            append_raw(link, sizeof(link), &len, cp_api_nested_segment(r->entity));
        } else {
            append_raw(link, sizeof(link), &len, "/");
            append_raw(link, sizeof(link), &len, r->entity->endpoint);
        }
        append_raw(link, sizeof(link), &len, "?offset=");
        append_escaped(link, sizeof(link), &len, next);
        if (tags_s) {
            append_raw(link, sizeof(link), &len, "&tags=");
            append_escaped(link, sizeof(link), &len, tags_s);
        }
        if (size_s) {
            char sz[32];
            snprintf(sz, sizeof(sz), "&size=%d", size);
            append_raw(link, sizeof(link), &len, sz);
        }
        json_object_set_new(body, "offset", json_string(next));
        json_object_set_new(body, "next", json_string(link));
        free(next);
    } else {
        json_object_set_new(body, "next", json_null());
    }
    cp_api_reply(c->resp, 200, body);
}

static void create(cp_api_call *c)
{
    const cp_api_route *r = c->route;
    json_t *body = NULL;
    sl_validate_mode mode;
    if (cp_api_read_body(c, &body, &mode) != 0)
        return;

    if (r->kind == CP_API_NESTED_COLLECTION) {
        json_t *parent = NULL;
        if (resolve_parent(c, &parent) != FOUND) {
            json_decref(body);
            return;
        }
        /* The URL names the parent, whatever the body says (Kong overrides it too). */
        json_object_set_new(body, r->fk->name,
                            json_pack("{s:O}", "id", json_object_get(parent, "id")));
        json_decref(parent);
    }

    if (cp_api_validate(c, r->entity, body, mode) != 0) {
        json_decref(body);
        return;
    }

    json_t *row = NULL;
    cp_store_error err = {0};
    int st = cp_api_is_certificates(r->entity)
                 ? write_certificate(c, r->entity, body, WRITE_INSERT, &row, NULL, &err)
                 : cp_store_insert(c->st, r->entity, body, &row, &err);
    json_decref(body);
    reply_store_result(c, st, &err, row, 201, "inserting an entity");
    cp_store_error_clear(&err);
}

/* ---- single entities ---- */

static void get_one(cp_api_call *c, const sl_entity *e, const char *key, const scope *sc)
{
    json_t *row = NULL;
    int r = sc ? lookup_scoped(c, e, key, sc, &row) : lookup(c, e, key, &row);
    if (r == FOUND && cp_api_is_certificates(e)) {
        cp_store_error err = {0};
        if (cp_api_cert_attach_snis(c->st, row, &err)) {
            json_decref(row);
            cp_api_store_error(c->resp, &err, "listing a certificate's snis");
            cp_store_error_clear(&err);
            return;
        }
    }
    if (r == FOUND)
        cp_api_reply(c->resp, 200, row);
    else if (r == MISSING)
        cp_api_not_found(c->resp);
}

static void lower_copy(char *dst, const char *src, size_t cap)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* PUT: the body is the whole entity; the URL's id, or its endpoint key, decides which row is
 * created or replaced. Returns the stored row (caller owns) or NULL with resp filled. */
static json_t *put_one(cp_api_call *c, const sl_entity *e, const char *key, const scope *sc)
{
    json_t *body = NULL;
    sl_validate_mode mode;
    if (cp_api_read_body(c, &body, &mode) != 0)
        return NULL;

    char id[37] = "";
    if (is_uuid(key)) {
        lower_copy(id, key, sizeof(id));
    } else {
        if (!e->endpoint_key) {
            json_decref(body);
            cp_api_not_found(c->resp);
            return NULL;
        }
        json_object_set_new(body, e->endpoint_key, json_string(key));
        json_t *existing = NULL;
        int r = sc ? lookup_scoped(c, e, key, sc, &existing) : lookup(c, e, key, &existing);
        if (r == FAILED) {
            json_decref(body);
            return NULL;
        }
        const char *eid = json_string_value(json_object_get(existing, "id"));
        if (r == FOUND && eid)
            lower_copy(id, eid, sizeof(id));
        json_decref(existing);
        if (!id[0] && sl_uuid_v4(id) != 0) {
            json_decref(body);
            cp_api_unexpected(c->resp, "generating an id", "getrandom failed");
            return NULL;
        }
    }
    json_object_set_new(body, "id", json_string(id));
    if (sc)
        json_object_set_new(body, sc->fk->name, json_pack("{s:s}", "id", sc->parent_id));

    if (cp_api_validate(c, e, body, mode) != 0) {
        json_decref(body);
        return NULL;
    }
    json_t *row = NULL;
    int created = 0;
    cp_store_error err = {0};
    int st = cp_api_is_certificates(e)
                 ? write_certificate(c, e, body, WRITE_UPSERT, &row, &created, &err)
                 : cp_store_upsert(c->st, e, body, &row, &created, &err);
    json_decref(body);
    if (st != CP_STORE_OK) {
        json_decref(row);
        cp_api_store_error(c->resp, &err, "upserting an entity");
        cp_store_error_clear(&err);
        return NULL;
    }
    return row ? row : json_object();
}

/* PATCH: merges the body into the existing row and validates the result as a whole. */
static void patch_one(cp_api_call *c, const sl_entity *e, const char *key, const scope *sc)
{
    json_t *patch = NULL;
    sl_validate_mode mode;
    if (cp_api_read_body(c, &patch, &mode) != 0)
        return;

    json_t *existing = NULL;
    int r = sc ? lookup_scoped(c, e, key, sc, &existing) : lookup(c, e, key, &existing);
    if (r != FOUND) {
        if (r == MISSING)
            cp_api_not_found(c->resp);
        json_decref(patch);
        return;
    }
    if (sc && !json_object_get(patch, sc->fk->name))
        json_object_set_new(patch, sc->fk->name, json_pack("{s:s}", "id", sc->parent_id));

    json_t *merged = sl_schema_merge(e, existing, patch);
    if (!merged) {
        json_decref(patch);
        json_decref(existing);
        cp_api_unexpected(c->resp, "merging a PATCH", "out of memory");
        return;
    }
    /* The row keeps its identity whatever the body says. */
    json_object_set(merged, "id", json_object_get(existing, "id"));
    json_decref(existing);

    json_decref(patch);
    if (cp_api_validate(c, e, merged, mode) != 0) {
        json_decref(merged);
        return;
    }

    json_t *row = NULL;
    cp_store_error err = {0};
    int st = cp_api_is_certificates(e)
                 ? write_certificate(c, e, merged, WRITE_UPDATE, &row, NULL, &err)
                 : cp_store_update(c->st, e, merged, &row, &err);
    json_decref(merged);
    reply_store_result(c, st, &err, row, 200, "updating an entity");
    cp_store_error_clear(&err);
}

static void delete_by_id(cp_api_call *c, const sl_entity *e, const char *id)
{
    cp_store_error err = {0};
    int st = cp_store_delete(c->st, e, id, &err);
    if (st == CP_STORE_OK || st == CP_STORE_NOT_FOUND)
        cp_api_reply(c->resp, 204, NULL);
    else
        cp_api_store_error(c->resp, &err, "deleting an entity");
    cp_store_error_clear(&err);
}

static void delete_one(cp_api_call *c, const sl_entity *e, const char *key, const scope *sc)
{
    if (!sc && is_uuid(key)) {
        char id[37];
        lower_copy(id, key, sizeof(id));
        delete_by_id(c, e, id);
        return;
    }
    json_t *row = NULL;
    int r = sc ? lookup_scoped(c, e, key, sc, &row) : lookup(c, e, key, &row);
    if (r == FAILED)
        return;
    if (r == MISSING) {
        /* Top-level DELETE is idempotent; a nested one names a child that must exist. */
        if (sc)
            cp_api_not_found(c->resp);
        else
            cp_api_reply(c->resp, 204, NULL);
        return;
    }
    char id[37];
    lower_copy(id, json_string_value(json_object_get(row, "id")), sizeof(id));
    json_decref(row);
    delete_by_id(c, e, id);
}

static void entity_method(cp_api_call *c, const sl_entity *e, const char *key, const scope *sc)
{
    switch (c->route->method) {
    case CP_M_GET:
        get_one(c, e, key, sc);
        break;
    case CP_M_PUT: {
        json_t *row = put_one(c, e, key, sc);
        if (row)
            cp_api_reply(c->resp, 200, row);
        break;
    }
    case CP_M_PATCH:
        patch_one(c, e, key, sc);
        break;
    case CP_M_DELETE:
        delete_one(c, e, key, sc);
        break;
    default:
        cp_api_method_not_allowed(c->resp);
        break;
    }
}

static void nested_entity(cp_api_call *c)
{
    json_t *parent = NULL;
    if (resolve_parent(c, &parent) != FOUND)
        return;
    char pid[37];
    lower_copy(pid, json_string_value(json_object_get(parent, "id")), sizeof(pid));
    json_decref(parent);
    scope sc = {.fk = c->route->fk, .parent_id = pid};
    entity_method(c, c->route->entity, c->route->key, &sc);
}

/* /routes/{r}/service: the entity the owner's foreign key points at. */
static void foreign_entity(cp_api_call *c)
{
    const cp_api_route *r = c->route;
    json_t *owner = NULL;
    if (resolve_parent(c, &owner) != FOUND)
        return;
    char ref[37] = "";
    const char *rid = fk_id(owner, r->fk);
    if (rid)
        lower_copy(ref, rid, sizeof(ref));

    if (!ref[0] && r->method != CP_M_PUT) {
        json_decref(owner);
        cp_api_not_found(c->resp);
        return;
    }
    switch (r->method) {
    case CP_M_DELETE:
        /* The reference may be replaced or edited here, never deleted through the owner. */
        cp_api_method_not_allowed(c->resp);
        break;
    case CP_M_PUT: {
        int associate = !ref[0];
        if (associate && sl_uuid_v4(ref) != 0) {
            cp_api_unexpected(c->resp, "generating an id", "getrandom failed");
            break;
        }
        json_t *row = put_one(c, r->entity, ref, NULL);
        if (!row)
            break;
        if (associate) {
            /* A new referenced entity: point the owner at it, as Kong does. */
            json_object_set_new(owner, r->fk->name, json_pack("{s:s}", "id", ref));
            json_t *updated = NULL;
            cp_store_error err = {0};
            int st = cp_store_update(c->st, r->parent, owner, &updated, &err);
            json_decref(updated);
            if (st != CP_STORE_OK && st != CP_STORE_NOT_FOUND) {
                json_decref(row);
                cp_api_store_error(c->resp, &err, "associating an entity");
                cp_store_error_clear(&err);
                break;
            }
            cp_store_error_clear(&err);
        }
        cp_api_reply(c->resp, 200, row);
        break;
    }
    default:
        entity_method(c, r->entity, ref, NULL);
        break;
    }
    json_decref(owner);
}

void cp_api_entities_handle(cp_api_call *c)
{
    const cp_api_route *r = c->route;
    switch (r->kind) {
    case CP_API_COLLECTION:
    case CP_API_NESTED_COLLECTION:
        if (r->method == CP_M_GET)
            list(c);
        else
            create(c);
        break;
    case CP_API_ENTITY:
        entity_method(c, r->entity, r->key, NULL);
        break;
    case CP_API_NESTED_ENTITY:
        nested_entity(c);
        break;
    case CP_API_FOREIGN_ENTITY:
        foreign_entity(c);
        break;
    default:
        cp_api_not_found(c->resp);
        break;
    }
}
