/* cp_admin_dispatch: routes one Admin API request (on a DB thread) to its handler. */
#include <stdio.h>
#include <string.h>

#include "control_plane/admin/api_errors.h"
#include "control_plane/admin/api_internal.h"
#include "control_plane/admin/api_paths.h"

void cp_admin_dispatch(const cp_admin_ctx *ctx, cp_store *st, const cp_admin_request *req,
                       cp_admin_response *resp)
{
    resp->status = 500;
    resp->body = NULL;
    resp->extra_headers[0] = '\0';

    cp_api_route route;
    cp_api_match(req->method, req->path ? req->path : "", &route);
    if (route.kind == CP_API_NOT_FOUND) {
        cp_api_not_found(resp);
        return;
    }
    if (strcmp(req->method, "OPTIONS") == 0) {
        /* CORS preflight, as Kong answers it: no body, the path's methods. */
        char allow[128];
        cp_api_allow_list(&route, allow, sizeof(allow));
        snprintf(resp->extra_headers, sizeof(resp->extra_headers),
                 "Allow: %s\r\nAccess-Control-Allow-Methods: %s\r\n"
                 "Access-Control-Allow-Headers: Content-Type\r\n",
                 allow, allow);
        cp_api_reply(resp, 204, NULL);
        return;
    }
    if (!route.allowed) {
        cp_api_method_not_allowed(resp);
        return;
    }

    cp_api_call call = {
        .ctx = ctx, .st = st, .req = req, .route = &route, .query = NULL, .resp = resp};
    char msg[160] = "";
    call.query = cp_admin_query_decode_msg(req->query, msg, sizeof(msg));
    if (!call.query) {
        /* Same rules as form bodies: too many arguments, or keys nested too deep. */
        cp_api_message(resp, 400, msg[0] ? msg : "Bad Request");
        return;
    }

    switch (route.kind) {
    case CP_API_ROOT:
        cp_api_info_root(&call);
        break;
    case CP_API_STATUS:
        cp_api_info_status(&call);
        break;
    case CP_API_DATA_PLANES:
        cp_api_info_data_planes(&call);
        break;
    case CP_API_CLUSTER_STATUS:
        cp_api_info_cluster_status(&call);
        break;
    case CP_API_SCHEMA:
        cp_api_schema_get(&call);
        break;
    case CP_API_SCHEMA_VALIDATE:
        cp_api_schema_validate(&call);
        break;
    case CP_API_PLUGINS_ENABLED:
        cp_api_plugins_enabled(&call);
        break;
    case CP_API_PLUGIN_SCHEMA:
        cp_api_plugin_schema(&call);
        break;
    default:
        if (!st) {
            /* The DB thread has no connection: the reason was logged when connecting. */
            cp_api_unexpected(resp, "entity request", "database unreachable");
            break;
        }
        cp_api_entities_handle(&call);
        break;
    }
    json_decref(call.query);

    if (resp->status == 500 && !resp->body)
        cp_api_unexpected(resp, "dispatch", "handler produced no response");
}
