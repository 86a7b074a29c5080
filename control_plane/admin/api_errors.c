#include "control_plane/admin/api_errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/log.h"

const char *cp_api_error_name(int code)
{
    switch (code) {
    case 1:
        return "invalid primary key";
    case CP_ERR_SCHEMA:
        return "schema violation";
    case 3:
        return "primary key violation";
    case CP_ERR_FOREIGN:
        return "foreign key violation";
    case CP_ERR_UNIQUE:
        return "unique constraint violation";
    case CP_ERR_NOT_FOUND:
        return "not found";
    case CP_ERR_OFFSET:
        return "invalid offset";
    case CP_ERR_DATABASE:
        return "database error";
    case CP_ERR_SIZE:
        return "invalid size";
    case CP_ERR_OPTIONS:
        return "invalid options";
    case 12:
        return "operation unsupported";
    case CP_ERR_REFERENCED:
        return "referenced by others";
    default:
        return "error";
    }
}

/* Kong's ERRORS_HTTP_CODES: everything is a client error except these. */
static int status_for_code(int code)
{
    switch (code) {
    case CP_ERR_UNIQUE:
        return 409;
    case CP_ERR_NOT_FOUND:
        return 404;
    case CP_ERR_DATABASE:
        return 500;
    case 12:
        return 405;
    default:
        return 400;
    }
}

void cp_api_reply(cp_admin_response *resp, int status, json_t *body)
{
    if (resp->body)
        json_decref(resp->body);
    resp->status = status;
    resp->body = body;
}

void cp_api_message(cp_admin_response *resp, int status, const char *msg)
{
    cp_api_reply(resp, status, json_pack("{s:s}", "message", msg));
}

void cp_api_not_found(cp_admin_response *resp)
{
    cp_api_message(resp, 404, "Not found");
}

void cp_api_method_not_allowed(cp_admin_response *resp)
{
    cp_api_message(resp, 405, "Method not allowed");
}

void cp_api_unexpected(cp_admin_response *resp, const char *what, const char *why)
{
    sl_error("admin api: %s: %s", what ? what : "request failed", why ? why : "unknown error");
    cp_api_message(resp, 500, "An unexpected error occurred");
}

void cp_api_error(cp_admin_response *resp, int code, const char *message, json_t *fields)
{
    json_t *body = json_pack("{s:i,s:s,s:s}", "code", code, "name", cp_api_error_name(code),
                             "message", message ? message : cp_api_error_name(code));
    if (body && fields)
        json_object_set_new(body, code == CP_ERR_OPTIONS ? "options" : "fields", fields);
    else if (fields)
        json_decref(fields);
    cp_api_reply(resp, status_for_code(code), body);
}

void cp_api_schema_error(cp_admin_response *resp, json_t *fields, int count)
{
    if (!fields)
        fields = json_object();
    char *msg = sl_schema_violation_message(fields, count > 0 ? count : 1);
    cp_api_error(resp, CP_ERR_SCHEMA, msg ? msg : "schema violation", fields);
    free(msg);
}

void cp_api_field_error(cp_admin_response *resp, const char *field, const char *msg)
{
    cp_api_schema_error(resp, json_pack("{s:s}", field, msg), 1);
}

void cp_api_invalid_option(cp_admin_response *resp, const char *option, const char *msg)
{
    char text[256];
    snprintf(text, sizeof(text), "invalid option (%s: %s)", option, msg);
    cp_api_error(resp, CP_ERR_OPTIONS, text, json_pack("{s:s}", option, msg));
}

void cp_api_store_error(cp_admin_response *resp, cp_store_error *err, const char *what)
{
    json_t *fields = err->fields;
    err->fields = NULL;
    const char *msg = err->message[0] ? err->message : NULL;

    switch (err->status) {
    case CP_STORE_NOT_FOUND:
        json_decref(fields);
        cp_api_not_found(resp);
        return;
    case CP_STORE_SCHEMA:
    case CP_STORE_FOREIGN:
    case CP_STORE_UNIQUE:
    case CP_STORE_OFFSET:
        cp_api_error(resp, (int)err->status, msg, fields);
        return;
    case CP_STORE_REFERENCED:
        /* Kong reports a restricted delete as a foreign key violation
         * (foreign_key_violation_restricted): code 4, fields {"@referenced_by": "<child>"}. */
        cp_api_error(resp, CP_ERR_FOREIGN, msg, fields);
        return;
    case CP_STORE_OK:
    case CP_STORE_DB:
    default:
        json_decref(fields);
        cp_api_unexpected(resp, what, msg);
        return;
    }
}
