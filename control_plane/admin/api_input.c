/* Request bodies for the Admin API: decoding and validation. Kong's input conveniences
 * (services `url`, generated key-auth keys, hashed basic-auth passwords) live in the schema's
 * prepare/finish hooks, so the declarative import gets them too. */
#include "control_plane/admin/api_errors.h"
#include "control_plane/admin/api_internal.h"

int cp_api_read_body(cp_api_call *c, json_t **out, sl_validate_mode *mode)
{
    const cp_admin_request *req = c->req;
    *out = NULL;
    if (req->content_type_count > 1) {
        cp_api_message(c->resp, 400, "Bad Request: more than one Content-Type header");
        return -1;
    }
    char msg[256] = "";
    int form = 0;
    json_t *body = NULL;
    int st = cp_admin_body_decode(req->content_type, req->body, req->body_len, &body, &form, msg,
                                  sizeof(msg));
    if (st != 0) {
        json_decref(body);
        cp_api_message(c->resp, st, msg[0] ? msg : "Bad Request");
        return -1;
    }
    if (!json_is_object(body)) {
        /* A JSON array or scalar is valid JSON but not an entity. */
        json_decref(body);
        cp_api_message(c->resp, 400, "Cannot parse JSON body");
        return -1;
    }
    *out = body;
    *mode = form ? SL_VALIDATE_FORM : SL_VALIDATE_JSON;
    return 0;
}

int cp_api_validate(cp_api_call *c, const sl_entity *e, json_t *entity, sl_validate_mode mode)
{
    json_t *errors = NULL;
    int n = sl_schema_validate(e, entity, mode, &errors);
    if (n != 0) {
        cp_api_schema_error(c->resp, errors, n);
        return -1;
    }
    json_decref(errors);
    return 0;
}
