#ifndef CP_ADMIN_API_PATHS_H
#define CP_ADMIN_API_PATHS_H

/* Admin API URL routing: a pure function from (method, path) to what the request addresses,
 * derived from the schema tables the way Kong generates its endpoints (kong/api/endpoints.lua):
 * every entity gets /<endpoint> and /<endpoint>/{id}; every FOREIGN field gives the nested
 * collection /<parent>/{p}/<child>, the nested entity /<parent>/{p}/<child>/{c} and the
 * referenced entity /<child>/{c}/<field>. No I/O, so the unit tests and fuzzers call it directly.
 */

#include "proto/schema.h"

/* Longest id or endpoint key accepted from a URL; longer ones are 404 before any SQL. */
#define CP_API_MAX_KEY 512

typedef enum {
    CP_API_NOT_FOUND,         /* nothing here: 404 {"message":"Not found"} */
    CP_API_ROOT,              /* GET /: node information */
    CP_API_STATUS,            /* GET /status: database and connection counters */
    CP_API_DATA_PLANES,       /* GET /clustering/data-planes */
    CP_API_CLUSTER_STATUS,    /* GET /clustering/status (deprecated in Kong) */
    CP_API_SCHEMA,            /* GET /schemas/{entity} */
    CP_API_SCHEMA_VALIDATE,   /* POST /schemas/{entity}/validate */
    CP_API_PLUGINS_ENABLED,   /* GET /plugins/enabled: the plugins compiled in */
    CP_API_PLUGIN_SCHEMA,     /* GET /schemas/plugins/{name}: a plugin's config schema (key) */
    CP_API_COLLECTION,        /* /{endpoint}: GET list, POST create */
    CP_API_ENTITY,            /* /{endpoint}/{key}: GET, PUT, PATCH, DELETE */
    CP_API_NESTED_COLLECTION, /* /{parent}/{pkey}/{child}: GET list, POST create */
    CP_API_NESTED_ENTITY,     /* /{parent}/{pkey}/{child}/{key}: GET, PUT, PATCH, DELETE */
    CP_API_FOREIGN_ENTITY,    /* /{owner}/{pkey}/{field}: GET, PUT, PATCH; DELETE is 405 */
} cp_api_kind;

typedef enum {
    CP_M_GET,
    CP_M_POST,
    CP_M_PUT,
    CP_M_PATCH,
    CP_M_DELETE,
    CP_M_OTHER, /* HEAD, OPTIONS, anything else: 405 on a known path */
} cp_api_method;

typedef struct {
    cp_api_kind kind;
    cp_api_method method;
    int allowed;      /* 1 when the method is allowed on this path; 0 means 405 */
    unsigned methods; /* bit (1 << cp_api_method) for each method the path accepts */
    /* The entity the method acts on: the child for NESTED_*, the referenced entity for
     * FOREIGN_ENTITY ("services" in /routes/{r}/service), the described one for SCHEMA. */
    const sl_entity *entity;
    /* NESTED_*: the parent named in the URL. FOREIGN_ENTITY: the owner ("routes"). */
    const sl_entity *parent;
    /* NESTED_*: entity's FOREIGN field referencing parent. FOREIGN_ENTITY: parent's field. */
    const sl_field *fk;
    char parent_key[CP_API_MAX_KEY + 1]; /* NESTED_*, FOREIGN_ENTITY: id or key of parent */
    char key[CP_API_MAX_KEY + 1];        /* ENTITY, NESTED_ENTITY: id or key of entity */
} cp_api_route;

/* Parses an HTTP method name. */
cp_api_method cp_api_method_parse(const char *method);

/* Matches a decoded path (no query; a trailing slash is ignored) and fills *out.
 * Returns out->kind. Entities with no top-level collection (targets) are only reachable
 * nested; path segments longer than CP_API_MAX_KEY give CP_API_NOT_FOUND. */
cp_api_kind cp_api_match(const char *method, const char *path, cp_api_route *out);

/* Writes the methods route->methods allows, comma separated with OPTIONS last
 * ("GET, POST, OPTIONS"), for the Allow header of an OPTIONS reply. */
void cp_api_allow_list(const cp_api_route *route, char *out, size_t outlen);

/* The URL segment naming e's rows under a parent: its nested name ("key-auth") when it has
 * one, else its endpoint ("routes"). */
const char *cp_api_nested_segment(const sl_entity *e);

/* Whether e can be addressed at the top level (/targets cannot, as in Kong). */
int cp_api_has_top_level(const sl_entity *e);

#endif
