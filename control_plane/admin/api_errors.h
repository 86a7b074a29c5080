#ifndef CP_ADMIN_API_ERRORS_H
#define CP_ADMIN_API_ERRORS_H

/* Kong-shaped Admin API responses (kong/api/endpoints.lua, kong/db/errors.lua): the
 * {"message": ...} bodies and the {"code", "name", "message", "fields"} error bodies. Every
 * function fills resp completely, replacing a body already there. */

#include <jansson.h>

#include "control_plane/admin/admin.h"

/* Kong's error code numbers used here (kong/db/errors.lua). */
enum {
    CP_ERR_SCHEMA = 2,
    CP_ERR_FOREIGN = 4,
    CP_ERR_UNIQUE = 5,
    CP_ERR_NOT_FOUND = 6,
    CP_ERR_OFFSET = 7,
    CP_ERR_DATABASE = 8,
    CP_ERR_SIZE = 9,
    CP_ERR_OPTIONS = 11,
    CP_ERR_REFERENCED = 19,
};

/* The name Kong gives an error code ("schema violation"). */
const char *cp_api_error_name(int code);

/* Sets status and body; steals body (may be NULL for no body). */
void cp_api_reply(cp_admin_response *resp, int status, json_t *body);

/* {"message": msg} with the given status. */
void cp_api_message(cp_admin_response *resp, int status, const char *msg);

void cp_api_not_found(cp_admin_response *resp);          /* 404 Not found */
void cp_api_method_not_allowed(cp_admin_response *resp); /* 405 Method not allowed */

/* 500 "An unexpected error occurred"; the real reason goes to the log as [error] only, so a
 * client never sees database internals. */
void cp_api_unexpected(cp_admin_response *resp, const char *what, const char *why);

/* {"code", "name", "message", "fields"} with Kong's HTTP status for the code; steals fields
 * (may be NULL: no "fields" key). For CP_ERR_OPTIONS the key is "options", as Kong. */
void cp_api_error(cp_admin_response *resp, int code, const char *message, json_t *fields);

/* 400 schema violation from a validator fields object (stolen) holding count errors. */
void cp_api_schema_error(cp_admin_response *resp, json_t *fields, int count);

/* 400 schema violation for one field: {"<field>": msg}. */
void cp_api_field_error(cp_admin_response *resp, const char *field, const char *msg);

/* 400 invalid options for one option: "invalid option (tags: invalid filter syntax)". */
void cp_api_invalid_option(cp_admin_response *resp, const char *option, const char *msg);

/* Maps a store error to its response: schema, foreign key, unique, not found, offset,
 * referenced, and database errors (500, logged with what). Takes err->fields. */
void cp_api_store_error(cp_admin_response *resp, cp_store_error *err, const char *what);

#endif
