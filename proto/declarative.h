#ifndef SL_DECLARATIVE_H
#define SL_DECLARATIVE_H

/* Kong's declarative config format (kong.yml, `_format_version: "3.0"`) to and from the flat
 * config shape every other layer uses ({"services": [...], "routes": [...], ...}, the shape of
 * cp_store_read_config and of a snapshot).
 *
 * Nested entities are accepted where Kong accepts them (services -> routes -> plugins,
 * services -> plugins, consumers -> plugins/keyauth_credentials/basicauth_credentials/acls,
 * upstreams -> targets, certificates -> snis), references by name or id
 * (`service: my-service`), and entities without an id get a name-based (v5) id, so the same
 * file always gives the same ids: export then import changes nothing, and a data plane that
 * reloads the file keeps its per-entity state. */

#include <jansson.h>
#include <stddef.h>

/* Parses YAML or JSON text and flattens it. Returns the flat config (every entity validated
 * with the schema tables, every reference resolved), or NULL with err naming the entity
 * ("services[0].routes[1] (name 'x')") and its field errors; *errors (optional) gets an array
 * of {"entity", "where", "errors"} objects. */
json_t *sl_declarative_load(const char *text, size_t len, json_t **errors, char *err,
                            size_t errlen);

/* The same from an already parsed document. doc is not modified. */
json_t *sl_declarative_flatten(const json_t *doc, json_t **errors, char *err, size_t errlen);

/* Turns a flat config into a nested `_format_version: "3.0"` document (ids kept, timestamps
 * dropped, children nested under their one parent, references by id). */
json_t *sl_declarative_nest(const json_t *config);

#endif
