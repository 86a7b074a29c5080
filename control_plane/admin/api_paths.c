#include "control_plane/admin/api_paths.h"

#include <stdio.h>
#include <string.h>

/* At most /{a}/{b}/{c}/{d}: one more segment than any endpoint has, to tell "too long". */
#define MAX_SEGMENTS 5

typedef struct {
    const char *p;
    size_t len;
} segment;

cp_api_method cp_api_method_parse(const char *method)
{
    static const struct {
        const char *name;
        cp_api_method m;
    } names[] = {{"GET", CP_M_GET},
                 {"POST", CP_M_POST},
                 {"PUT", CP_M_PUT},
                 {"PATCH", CP_M_PATCH},
                 {"DELETE", CP_M_DELETE}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(method, names[i].name) == 0)
            return names[i].m;
    return CP_M_OTHER;
}

void cp_api_allow_list(const cp_api_route *route, char *out, size_t outlen)
{
    static const char *const names[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    size_t len = 0;
    if (outlen == 0)
        return;
    out[0] = '\0';
    for (int m = CP_M_GET; m <= CP_M_DELETE; m++) {
        if (!((route->methods >> m) & 1u))
            continue;
        int n = snprintf(out + len, outlen - len, "%s, ", names[m]);
        if (n < 0 || (size_t)n >= outlen - len)
            return;
        len += (size_t)n;
    }
    snprintf(out + len, outlen - len, "OPTIONS");
}

const char *cp_api_nested_segment(const sl_entity *e)
{
    if (e->nested)
        return e->nested;
    return e->endpoint ? e->endpoint : e->name;
}

int cp_api_has_top_level(const sl_entity *e)
{
    /* Kong disables /targets, /targets/{t} and /targets/{t}/upstream: a target only makes
     * sense under its upstream. */
    return e->endpoint != NULL && strcmp(e->name, "targets") != 0;
}

static int seg_is(const segment *s, const char *lit)
{
    return lit != NULL && strlen(lit) == s->len && memcmp(s->p, lit, s->len) == 0;
}

/* Splits "/a/b/c/" into segments; returns the count, or -1 for an empty inner segment
 * ("/a//b") or too many segments. The root "/" has zero segments. */
static int split_path(const char *path, segment *segs, int max)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len == 0 || path[0] != '/')
        return -1;
    if (len == 1)
        return 0;

    int n = 0;
    size_t i = 1;
    while (i <= len) {
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start || n == max)
            return -1;
        segs[n].p = path + start;
        segs[n].len = i - start;
        n++;
        i++;
    }
    return n;
}

static int copy_key(char *dst, const segment *s)
{
    if (s->len > CP_API_MAX_KEY || memchr(s->p, '\0', s->len) != NULL)
        return -1;
    memcpy(dst, s->p, s->len);
    dst[s->len] = '\0';
    return 0;
}

static const sl_entity *entity_by_segment(const segment *s)
{
    char name[64];
    if (s->len >= sizeof(name))
        return NULL;
    memcpy(name, s->p, s->len);
    name[s->len] = '\0';
    const sl_entity *e = sl_entity_by_endpoint(name);
    if (e && cp_api_has_top_level(e))
        return e;
    return NULL;
}

/* The FOREIGN field of e that references parent, or NULL. */
static const sl_field *foreign_to(const sl_entity *e, const sl_entity *parent)
{
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        if (f->type == SL_T_FOREIGN && f->ref && strcmp(f->ref, parent->name) == 0)
            return f;
    }
    return NULL;
}

/* The entity nested under parent as seg ("routes" under services, "key-auth" under
 * consumers), with its foreign field in *fk. */
static const sl_entity *child_by_segment(const sl_entity *parent, const segment *s,
                                         const sl_field **fk)
{
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *c = sl_entities[i];
        if (!seg_is(s, cp_api_nested_segment(c)))
            continue;
        const sl_field *f = foreign_to(c, parent);
        if (f) {
            *fk = f;
            return c;
        }
    }
    return NULL;
}

/* The FOREIGN field of owner named seg ("service" in routes), with its entity. */
static const sl_entity *referenced_by_segment(const sl_entity *owner, const segment *s,
                                              const sl_field **fk)
{
    for (size_t i = 0; i < owner->nfields; i++) {
        const sl_field *f = &owner->fields[i];
        if (f->type == SL_T_FOREIGN && f->ref && seg_is(s, f->name)) {
            const sl_entity *ref = sl_entity_by_name(f->ref);
            if (ref) {
                *fk = f;
                return ref;
            }
        }
    }
    return NULL;
}

static cp_api_kind set_kind(cp_api_route *out, cp_api_kind kind, unsigned allowed_mask)
{
    out->kind = kind;
    out->methods = allowed_mask;
    out->allowed = (allowed_mask >> out->method) & 1u;
    return kind;
}

#define M(x) (1u << (x))
#define COLLECTION_METHODS (M(CP_M_GET) | M(CP_M_POST))
#define ENTITY_METHODS (M(CP_M_GET) | M(CP_M_PUT) | M(CP_M_PATCH) | M(CP_M_DELETE))

/* Fixed, non-entity endpoints: /, /status, /clustering/..., /schemas/... */
static int match_fixed(const segment *segs, int n, cp_api_route *out)
{
    if (n == 0)
        return set_kind(out, CP_API_ROOT, M(CP_M_GET)), 1;
    if (n == 1 && seg_is(&segs[0], "status"))
        return set_kind(out, CP_API_STATUS, M(CP_M_GET)), 1;
    if (n == 2 && seg_is(&segs[0], "clustering")) {
        if (seg_is(&segs[1], "data-planes"))
            return set_kind(out, CP_API_DATA_PLANES, M(CP_M_GET)), 1;
        if (seg_is(&segs[1], "status"))
            return set_kind(out, CP_API_CLUSTER_STATUS, M(CP_M_GET)), 1;
        return 0;
    }
    if (n == 2 && seg_is(&segs[0], "plugins") && seg_is(&segs[1], "enabled"))
        return set_kind(out, CP_API_PLUGINS_ENABLED, M(CP_M_GET)), 1;
    if (n == 3 && seg_is(&segs[0], "schemas") && seg_is(&segs[1], "plugins") &&
        segs[2].len < sizeof(out->key)) {
        memcpy(out->key, segs[2].p, segs[2].len);
        out->key[segs[2].len] = '\0';
        return set_kind(out, CP_API_PLUGIN_SCHEMA, M(CP_M_GET)), 1;
    }
    if ((n == 2 || n == 3) && seg_is(&segs[0], "schemas")) {
        char name[64];
        if (segs[1].len >= sizeof(name))
            return 0;
        memcpy(name, segs[1].p, segs[1].len);
        name[segs[1].len] = '\0';
        /* Kong names schemas by entity name ("key_sets"); the endpoint spelling is accepted
         * too so /schemas/key-auths works like the collection it describes. */
        const sl_entity *e = sl_entity_by_name(name);
        if (!e)
            e = sl_entity_by_endpoint(name);
        if (!e)
            return 0;
        out->entity = e;
        if (n == 2)
            return set_kind(out, CP_API_SCHEMA, M(CP_M_GET)), 1;
        if (seg_is(&segs[2], "validate"))
            return set_kind(out, CP_API_SCHEMA_VALIDATE, M(CP_M_POST)), 1;
        return 0;
    }
    return 0;
}

cp_api_kind cp_api_match(const char *method, const char *path, cp_api_route *out)
{
    memset(out, 0, sizeof(*out));
    out->method = cp_api_method_parse(method);
    out->kind = CP_API_NOT_FOUND;

    segment segs[MAX_SEGMENTS];
    int n = split_path(path, segs, MAX_SEGMENTS);
    if (n < 0 || n > 4)
        return CP_API_NOT_FOUND;
    if (match_fixed(segs, n, out))
        return out->kind;

    const sl_entity *e = entity_by_segment(&segs[0]);
    if (!e) {
        out->entity = NULL;
        return CP_API_NOT_FOUND;
    }

    if (n == 1) {
        out->entity = e;
        return set_kind(out, CP_API_COLLECTION, COLLECTION_METHODS);
    }
    if (n == 2) {
        if (copy_key(out->key, &segs[1]) < 0)
            return CP_API_NOT_FOUND;
        out->entity = e;
        return set_kind(out, CP_API_ENTITY, ENTITY_METHODS);
    }

    if (copy_key(out->parent_key, &segs[1]) < 0)
        return CP_API_NOT_FOUND;

    const sl_field *fk = NULL;
    const sl_entity *child = child_by_segment(e, &segs[2], &fk);
    if (child) {
        out->entity = child;
        out->parent = e;
        out->fk = fk;
        if (n == 3)
            return set_kind(out, CP_API_NESTED_COLLECTION, COLLECTION_METHODS);
        if (copy_key(out->key, &segs[3]) < 0) {
            memset(out, 0, sizeof(*out));
            return CP_API_NOT_FOUND;
        }
        return set_kind(out, CP_API_NESTED_ENTITY, ENTITY_METHODS);
    }

    if (n == 3) {
        const sl_entity *ref = referenced_by_segment(e, &segs[2], &fk);
        if (ref) {
            out->entity = ref;
            out->parent = e;
            out->fk = fk;
            /* DELETE is routed here so the handler can answer Kong's 405 (or 404 when the
             * owner or the reference is missing). */
            return set_kind(out, CP_API_FOREIGN_ENTITY, ENTITY_METHODS);
        }
    }
    out->parent_key[0] = '\0';
    return CP_API_NOT_FOUND;
}
