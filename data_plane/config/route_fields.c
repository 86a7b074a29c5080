/* One walk over a route object's members (see route_fields.h for why not lookups by name). */
#include "data_plane/config/route_fields.h"

#include <string.h>

static int is(const char *k, size_t n, const char *lit, size_t litn)
{
    return n == litn && memcmp(k, lit, n) == 0;
}

#define IS(lit) is(k, n, lit, sizeof(lit) - 1)

const char *dp_route_fields_ref_id(const json_t *ref)
{
    if (!json_is_object(ref))
        return NULL;
    /* references are {"id": ...} alone: the first member is the one */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ref, k, v)
    {
        if (k[0] == 'i' && k[1] == 'd' && !k[2])
            return json_string_value(v);
    }
    return NULL;
}

void dp_route_fields_read(const json_t *row, dp_route_fields *f)
{
    memset(f, 0, sizeof(*f));
    if (!json_is_object(row))
        return;
    json_t *o = (json_t *)row;
    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
        const char *k = json_object_iter_key(it);
        size_t n = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        switch (k[0]) {
        case 'c':
            if (IS("created_at"))
                f->created_at = v;
            break;
        case 'h':
            if (IS("hosts"))
                f->hosts = v;
            else if (IS("headers"))
                f->headers = v;
            else if (IS("https_redirect_status_code"))
                f->https_redirect_status_code = v;
            break;
        case 'i':
            if (IS("id"))
                f->id = json_string_value(v);
            break;
        case 'm':
            if (IS("methods"))
                f->methods = v;
            break;
        case 'n':
            if (IS("name"))
                f->name = json_string_value(v);
            break;
        case 'p':
            if (IS("paths"))
                f->paths = v;
            else if (IS("protocols"))
                f->protocols = v;
            else if (IS("preserve_host"))
                f->preserve_host = v;
            break;
        case 'r':
            if (IS("regex_priority"))
                f->regex_priority = v;
            break;
        case 's':
            if (IS("snis"))
                f->snis = v;
            else if (IS("strip_path"))
                f->strip_path = v;
            else if (IS("service"))
                f->service_id = dp_route_fields_ref_id(v);
            break;
        default:
            break;
        }
    }
}
