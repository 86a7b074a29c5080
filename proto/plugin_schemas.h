#ifndef SL_PLUGIN_SCHEMAS_H
#define SL_PLUGIN_SCHEMAS_H

/* The compiled-in plugin registry, schema half: one const entry per plugin with Kong's name,
 * PRIORITY, config fields (defaults, types, one_of, checks), the scopes and protocols it
 * accepts, and its entity-level config checks. The control plane validates `plugins` rows
 * with it (hooked into the `plugins` entity of schema.h); the data plane looks plugins up by
 * the same names to attach its phase callbacks. */

#include <jansson.h>
#include <stddef.h>

#include "proto/schema.h"

/* Scopes a plugin refuses (Kong's typedefs.no_consumer / no_route / no_service): the field
 * must be null, else "value must be null" on that field. */
enum {
    SL_PLUGIN_NO_CONSUMER = 1 << 0,
    SL_PLUGIN_NO_ROUTE = 1 << 1,
    SL_PLUGIN_NO_SERVICE = 1 << 2,
};

/* Rewrites deprecated input names in a raw config object before validation (Kong's
 * shorthand_fields: rate-limiting `redis_host` -> `redis.host`). config is an object. */
typedef void (*sl_plugin_prepare)(json_t *config);

/* Checks a config that passed field validation (defaults filled). Adds messages to fields,
 * the plugin entity's error object, in Kong's places: entity checks to fields["@entity"],
 * record-level ones as fields["config"] (a string), field ones under fields["config"][name]. */
typedef void (*sl_plugin_check)(const json_t *config, json_t *fields);

typedef struct sl_plugin_schema {
    const char *name;              /* Kong's plugin name: "rate-limiting" */
    int priority;                  /* Kong's PRIORITY: higher runs first */
    const sl_field *config_fields; /* the `config` record */
    size_t nfields;
    sl_plugin_prepare prepare;    /* NULL: none */
    sl_plugin_check check;        /* NULL: none */
    unsigned flags;               /* SL_PLUGIN_NO_* */
    const char *const *protocols; /* NULL-terminated allowed protocols; NULL: any */
} sl_plugin_schema;

/* The plugin named name, or NULL when no such plugin is compiled in. Static memory. */
const sl_plugin_schema *sl_plugin_schema_find(const char *name);

/* Every plugin, sorted by descending priority; *n gets the count. Static memory. */
const sl_plugin_schema *const *sl_plugin_schemas(size_t *n);

/* The `plugins` entity hooks (schema.h sl_entity_prepare / sl_entity_fields_check).
 * prepare: unknown name -> fields["name"] = "plugin 'x' not enabled; add it to the 'plugins'
 * configuration property"; refused scopes -> "value must be null"; then validates `config`
 * (absent or null: {}) with the plugin's fields in the caller's mode, coercing form strings
 * and filling defaults, errors under fields["config"].
 * fields_check (entity otherwise valid): protocols outside the plugin's list, then the
 * plugin's own check. */
void sl_plugins_prepare(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields);
void sl_plugins_fields_check(const sl_entity *e, const json_t *entity, json_t *fields);

#endif
