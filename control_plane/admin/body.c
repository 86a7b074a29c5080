/* cp_admin_body_decode: an Admin API request body to a JSON object, by Content-Type, the way
 * Kong's api_helpers/arguments do it. No I/O: the fuzzer calls it directly. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control_plane/admin/admin.h"
#include "control_plane/admin/form.h"

#define MAX_BOUNDARY 70 /* RFC 2046 */

typedef enum { CT_NONE, CT_JSON, CT_FORM, CT_MULTIPART, CT_OTHER } ctype_kind;

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Finds parameter `name` in "type/sub; a=1; name="v"" (from the first ';'), unquoting it into
 * out. Returns 0 when found and it fits. */
static int find_param(const char *params, size_t len, const char *name, char *out, size_t outlen)
{
    const char *p = params, *end = params + len;
    size_t nl = strlen(name);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            return -1;
        p = skip_ws(semi + 1, end);
        const char *eq = p;
        while (eq < end && *eq != '=' && *eq != ';')
            eq++;
        const char *nend = eq;
        while (nend > p && (nend[-1] == ' ' || nend[-1] == '\t'))
            nend--;
        if (eq == end || *eq != '=') {
            p = eq;
            continue;
        }
        int match = (size_t)(nend - p) == nl && strncasecmp(p, name, nl) == 0;
        const char *v = skip_ws(eq + 1, end);
        size_t n = 0;
        if (v < end && *v == '"') {
            v++;
            while (v < end && *v != '"') {
                if (*v == '\\' && v + 1 < end)
                    v++;
                if (match && n + 1 < outlen)
                    out[n] = *v;
                n++;
                v++;
            }
            if (v < end)
                v++;
        } else {
            while (v < end && *v != ';' && *v != ' ' && *v != '\t') {
                if (match && n + 1 < outlen)
                    out[n] = *v;
                n++;
                v++;
            }
        }
        if (match) {
            if (n + 1 > outlen)
                return -1;
            out[n] = 0;
            return 0;
        }
        p = v;
    }
    return -1;
}

static ctype_kind media_type(const char *ct)
{
    if (!ct)
        return CT_NONE;
    const char *end = ct + strlen(ct);
    const char *p = skip_ws(ct, end);
    const char *semi = strchr(p, ';');
    const char *tend = semi ? semi : end;
    while (tend > p && (tend[-1] == ' ' || tend[-1] == '\t'))
        tend--;
    size_t l = (size_t)(tend - p);
#define IS(s) (l == sizeof(s) - 1 && strncasecmp(p, s, l) == 0)
    if (IS("application/json"))
        return CT_JSON;
    if (IS("application/x-www-form-urlencoded"))
        return CT_FORM;
    if (IS("multipart/form-data"))
        return CT_MULTIPART;
#undef IS
    return CT_OTHER;
}

/* One multipart part's headers: the form-data name. Returns 0 with name (raw bytes) set. */
static int part_name(const char *h, size_t hlen, char *name, size_t namelen)
{
    const char *p = h, *end = h + hlen;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        const char *lend = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(lend - p));
        static const char cd[] = "content-disposition";
        if (colon && (size_t)(colon - p) == sizeof(cd) - 1 &&
            strncasecmp(p, cd, sizeof(cd) - 1) == 0) {
            const char *v = skip_ws(colon + 1, lend);
            if ((size_t)(lend - v) < 9 || strncasecmp(v, "form-data", 9) != 0)
                return -1;
            return find_param(v, (size_t)(lend - v), "name", name, namelen);
        }
        p = eol ? eol + 2 : end;
    }
    return -1;
}

static int multipart_error(char *msg, size_t msglen, const char *why)
{
    snprintf(msg, msglen, "Cannot parse multipart/form-data body: %s", why);
    return 400;
}

static int decode_multipart(cp_form *f, const char *ct, const char *body, size_t len, char *msg,
                            size_t msglen)
{
    char boundary[MAX_BOUNDARY + 1];
    if (find_param(ct, strlen(ct), "boundary", boundary, sizeof(boundary)) || !boundary[0])
        return multipart_error(msg, msglen, "missing or invalid boundary");
    char delim[MAX_BOUNDARY + 5];
    int dl = snprintf(delim, sizeof(delim), "\r\n--%s", boundary);

    /* The first delimiter may start the body (no preamble), so search from a virtual CRLF. */
    const char *end = body + len, *p;
    if (len >= (size_t)dl - 2 && memcmp(body, delim + 2, (size_t)dl - 2) == 0) {
        p = body + dl - 2;
    } else {
        const char *d = memmem(body, len, delim, (size_t)dl);
        if (!d)
            return multipart_error(msg, msglen, "no boundary found");
        p = d + dl;
    }
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return 0; /* closing delimiter; the epilogue is ignored */
        p = skip_ws(p, end);
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return multipart_error(msg, msglen, "malformed boundary line");
        p += 2;
        const char *hend;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p; /* a part without headers */
        } else {
            hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
            if (!hend)
                return multipart_error(msg, msglen, "part headers not terminated");
            hend += 2;
        }
        char name[1024];
        if (part_name(p, (size_t)(hend - p), name, sizeof(name)))
            return multipart_error(msg, msglen, "part without a form-data name");
        const char *content = hend + 2;
        const char *cend = memmem(content, (size_t)(end - content), delim, (size_t)dl);
        if (!cend)
            return multipart_error(msg, msglen, "missing closing boundary");
        /* File parts count as their content, as a string (certificates uploaded with -F). */
        int rc = cp_form_add(f, name, strlen(name), content, (size_t)(cend - content), msg, msglen);
        if (rc)
            return rc;
        p = cend + dl;
    }
}

int cp_admin_body_decode(const char *content_type, const char *body, size_t len, json_t **out,
                         int *form_mode, char *msg, size_t msglen)
{
    *out = NULL;
    ctype_kind kind = media_type(content_type);
    if (form_mode)
        *form_mode = kind == CT_FORM || kind == CT_MULTIPART;
    if (msglen)
        msg[0] = 0;
    if (len > CP_ADMIN_MAX_BODY) {
        snprintf(msg, msglen, "Payload too large");
        return 413;
    }
    if (len == 0) {
        *out = json_object();
        return 0;
    }
    switch (kind) {
    case CT_JSON: {
        json_error_t jerr;
        json_t *j = json_loadb(body, len, 0, &jerr);
        if (!j) {
            snprintf(msg, msglen, "Cannot parse JSON body");
            return 400;
        }
        if (!json_is_object(j)) {
            json_decref(j);
            snprintf(msg, msglen, "Cannot parse JSON body: expected a JSON object");
            return 400;
        }
        *out = j;
        return 0;
    }
    case CT_FORM:
    case CT_MULTIPART: {
        cp_form f = {json_object(), 0, 0};
        int rc = kind == CT_FORM ? cp_form_decode_urlencoded(&f, body, len, msg, msglen)
                                 : decode_multipart(&f, content_type, body, len, msg, msglen);
        if (rc) {
            json_decref(f.root);
            return rc;
        }
        *out = f.root;
        return 0;
    }
    default:
        snprintf(msg, msglen, "Unsupported Media Type");
        return 415;
    }
}
