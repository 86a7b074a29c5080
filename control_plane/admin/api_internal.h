#ifndef CP_ADMIN_API_INTERNAL_H
#define CP_ADMIN_API_INTERNAL_H

/* Shared between the files of the Admin API half (api*.c): one request being handled on a DB
 * thread, and the handlers cp_admin_dispatch routes it to. */

#include <jansson.h>

#include "control_plane/admin/admin.h"
#include "control_plane/admin/api_paths.h"

typedef struct {
    const cp_admin_ctx *ctx;
    cp_store *st;
    const cp_admin_request *req;
    const cp_api_route *route;
    json_t *query; /* decoded query string (object of strings or arrays); owned by dispatch */
    cp_admin_response *resp;
} cp_api_call;

/* Entity CRUD (api_entities.c): COLLECTION, ENTITY, NESTED_*, FOREIGN_ENTITY routes. */
void cp_api_entities_handle(cp_api_call *c);

/* Node information (api_info.c). */
void cp_api_info_root(cp_api_call *c);           /* GET / */
void cp_api_info_status(cp_api_call *c);         /* GET /status */
void cp_api_info_data_planes(cp_api_call *c);    /* GET /clustering/data-planes */
void cp_api_info_cluster_status(cp_api_call *c); /* GET /clustering/status */

/* Schemas (api_schemas.c). */
void cp_api_schema_get(cp_api_call *c);      /* GET /schemas/{entity} */
void cp_api_schema_validate(cp_api_call *c); /* POST /schemas/{entity}/validate */
void cp_api_plugins_enabled(cp_api_call *c); /* GET /plugins/enabled */
void cp_api_plugin_schema(cp_api_call *c);   /* GET /schemas/plugins/{name} */

/* Request bodies (api_input.c). */

/* Decodes the request body into a new object (*out, caller owns) and its validation mode.
 * Returns 0, or -1 after filling the error response (400, 413, 415). */
int cp_api_read_body(cp_api_call *c, json_t **out, sl_validate_mode *mode);

/* Validates a complete entity in place (coercion, defaults, the schema's shorthands such as
 * services `url`, generated key-auth keys, hashed passwords); on failure fills a 400 schema
 * violation and returns -1. */
int cp_api_validate(cp_api_call *c, const sl_entity *e, json_t *entity, sl_validate_mode mode);

/* Certificates' transient `snis` (api_cert_snis.c). */
int cp_api_is_certificates(const sl_entity *e);
/* Sets cert["snis"] to the sorted names of the SNIs pointing at it. 0, or -1 with err. */
int cp_api_cert_attach_snis(cp_store *st, json_t *cert, cp_store_error *err);
/* Makes the SNIs pointing at cert_id exactly the names in wanted (an array of strings).
 * Call inside the transaction that writes the certificate. 0, or -1 with err. */
int cp_api_cert_sync_snis(cp_store *st, const char *cert_id, const json_t *wanted,
                          cp_store_error *err);

#endif
