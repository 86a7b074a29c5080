/* cp_admin_query_decode: the query string with the same key rules as form bodies. */

#include <string.h>

#include "control_plane/admin/admin.h"
#include "control_plane/admin/form.h"

json_t *cp_admin_query_decode_msg(const char *query, char *msg, size_t msglen)
{
    cp_form f = {json_object(), 0, 0};
    if (msglen)
        msg[0] = 0;
    if (query && cp_form_decode_urlencoded(&f, query, strlen(query), msg, msglen)) {
        json_decref(f.root);
        return NULL;
    }
    return f.root;
}

json_t *cp_admin_query_decode(const char *query)
{
    char msg[160];
    return cp_admin_query_decode_msg(query, msg, sizeof(msg));
}
