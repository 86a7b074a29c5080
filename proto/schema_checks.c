/* Value checks and entity hooks with Kong's messages (kong/db/schema/typedefs.lua and
 * the files in kong/db/schema/entities/ are the reference for the wording). */
#include "proto/schema_checks.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/password.h"
#include "proto/uuid.h"

#define HOST_MAX 256 /* longest host name we accept (DNS names are at most 253) */

static _Thread_local char check_buf[1024];

const char *sl_check_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(check_buf, sizeof check_buf, fmt, ap);
    va_end(ap);
    return check_buf;
}

/* Quoting user values in messages: cut long ones so one message stays readable. */
#define QFMT "%.200s"

/* --- small helpers --- */

static void field_error(json_t *fields, const char *name, const char *msg)
{
    if (json_object_get(fields, name) == NULL)
        json_object_set_new(fields, name, json_string(msg));
}

static void entity_error(json_t *fields, const char *msg)
{
    json_t *arr = json_object_get(fields, "@entity");
    if (arr == NULL) {
        arr = json_array();
        json_object_set_new(fields, "@entity", arr);
    }
    json_array_append_new(arr, json_string(msg));
}

/* Kong's "non-empty": present, not null, and not an empty array/object/string. */
static int is_set(const json_t *entity, const char *name)
{
    const json_t *v = json_object_get(entity, name);
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    return 1;
}

static const char *str_of(const json_t *entity, const char *name)
{
    return json_string_value(json_object_get(entity, name));
}

static int array_has(const json_t *arr, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

/* Whether every element of arr is one of the NULL-terminated list (and arr is non-empty). */
static int array_all_in(const json_t *arr, const char *const *list)
{
    size_t i;
    const json_t *v;
    if (json_array_size(arr) == 0)
        return 0;
    json_array_foreach(arr, i, v)
    {
        int found = 0;
        for (const char *const *p = list; *p; p++)
            if (json_is_string(v) && strcmp(json_string_value(v), *p) == 0)
                found = 1;
        if (!found)
            return 0;
    }
    return 1;
}

/* --- host parsing --- */

static int valid_hostname(const char *h)
{
    size_t n = strlen(h), label = 0;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!(isalnum(c) || c == '-' || c == '_'))
            return 0;
        if (++label > 63)
            return 0;
    }
    /* a trailing dot is allowed (fully qualified), an empty label elsewhere is not */
    return 1;
}

int sl_host_parse(const char *s, char *host, size_t hostlen, int *kind, int *port)
{
    const char *hs = s, *he, *ps = NULL;
    *port = -1;
    *kind = 0;
    if (s[0] == '[') {
        he = strchr(s, ']');
        if (he == NULL)
            return -1;
        hs = s + 1;
        if (he[1] == ':')
            ps = he + 2;
        else if (he[1] != '\0')
            return -1;
        *kind = 6;
    } else {
        const char *c1 = strchr(s, ':');
        if (c1 != NULL && strchr(c1 + 1, ':') != NULL) { /* bare IPv6, no port possible */
            he = s + strlen(s);
            *kind = 6;
        } else {
            he = c1 ? c1 : s + strlen(s);
            ps = c1 ? c1 + 1 : NULL;
        }
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (ps != NULL) {
        if (*ps == '\0' || strlen(ps) > 5)
            return *ps == '\0' ? -1 : -2;
        long p = 0;
        for (const char *q = ps; *q; q++) {
            if (!isdigit((unsigned char)*q))
                return -1;
            p = p * 10 + (*q - '0');
        }
        if (p > 65535)
            return -2;
        *port = (int)p;
    }
    unsigned char buf[16];
    if (*kind == 6)
        return inet_pton(AF_INET6, host, buf) == 1 ? 0 : -1;
    if (inet_pton(AF_INET, host, buf) == 1) {
        *kind = 4;
        return 0;
    }
    /* all digits and dots but not an address: a malformed IPv4, not a name */
    if (strspn(host, "0123456789.") == strlen(host))
        return -1;
    return valid_hostname(host) ? 0 : -1;
}

/* --- value checks --- */

static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

const char *sl_check_tag(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n < 1)
        return "length must be at least 1";
    if (n > 128)
        return "length must be at most 128";
    int ok = valid_utf8((const unsigned char *)s, n) && strlen(s) == n;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && (c < 0x21 || c > 0x7e || c == ',' || c == '/'))
            ok = 0;
    }
    if (!ok)
        return sl_check_msg("invalid tag '" QFMT
                            "': expected printable ascii (except `,` and `/`) or valid "
                            "utf-8 sequences",
                            s);
    return NULL;
}

const char *sl_check_utf8_name(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    int ok = valid_utf8((const unsigned char *)s, n) && strlen(s) == n;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && !(isalnum(c) || c == '.' || c == '-' || c == '_' || c == '~'))
            ok = 0;
    }
    if (!ok)
        return sl_check_msg("invalid value '" QFMT
                            "': it must only contain alphanumeric and '., -, _, ~' characters",
                            s);
    return NULL;
}

const char *sl_check_host(const json_t *v)
{
    const char *s = json_string_value(v);
    char host[HOST_MAX];
    int kind, port;
    int rc = sl_host_parse(s, host, sizeof host, &kind, &port);
    if (rc == -1)
        return sl_check_msg("invalid value: " QFMT, s);
    if (rc == -2 || port >= 0)
        return "must not have a port";
    return NULL;
}

/* Kong's wildcard rule: at most one '*', as the whole leftmost or rightmost label. The wildcard
 * is replaced by a letter for the host check that follows. Writes the mock host into out. */
static const char *wildcard_mock(const char *s, char *out, size_t outlen)
{
    const char *star = strchr(s, '*');
    size_t n = strlen(s);
    if (n >= outlen)
        return sl_check_msg("invalid value: " QFMT, s);
    memcpy(out, s, n + 1);
    if (star == NULL)
        return NULL;
    if (strchr(star + 1, '*') != NULL)
        return "invalid wildcard: must have at most one wildcard";
    /* the host part ends at a port separator after the wildcard, if any */
    const char *colon = strchr(s, ':');
    size_t hostend = colon ? (size_t)(colon - s) : n;
    size_t pos = (size_t)(star - s);
    int leftmost = pos == 0 && hostend > 1 && s[1] == '.';
    int rightmost = pos + 1 == hostend && pos > 0 && s[pos - 1] == '.';
    if (!leftmost && !rightmost)
        return "invalid wildcard: must be placed at leftmost or rightmost label";
    out[pos] = 'x';
    return NULL;
}

const char *sl_check_route_host(const json_t *v)
{
    const char *s = json_string_value(v);
    char mock[HOST_MAX + 8], host[HOST_MAX];
    int kind, port;
    const char *err = wildcard_mock(s, mock, sizeof mock);
    if (err != NULL)
        return err;
    if (sl_host_parse(mock, host, sizeof host, &kind, &port) != 0)
        return sl_check_msg("invalid value: " QFMT, s);
    return NULL;
}

const char *sl_check_sni(const json_t *v)
{
    const char *s = json_string_value(v);
    char mock[HOST_MAX + 8], host[HOST_MAX];
    int kind, port;
    const char *err = wildcard_mock(s, mock, sizeof mock);
    if (err != NULL)
        return err;
    int rc = sl_host_parse(mock, host, sizeof host, &kind, &port);
    if (rc == -1)
        return sl_check_msg("invalid value: " QFMT, s);
    if (rc == -2 || port >= 0)
        return "must not have a port";
    if (kind != 0)
        return "must not be an IP";
    return NULL;
}

static int is_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent signs must start a %XX escape: Kong's "invalid url-encoded value". */
static const char *check_percent(const char *s)
{
    for (const char *p = strchr(s, '%'); p != NULL; p = strchr(p + 1, '%')) {
        if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2])) {
            int n = p[1] == '\0' ? 1 : (p[2] == '\0' ? 2 : 3);
            return sl_check_msg("invalid url-encoded value: '%.*s'", n, p);
        }
    }
    return NULL;
}

const char *sl_check_path(const json_t *v)
{
    const char *s = json_string_value(v);
    if (s[0] != '/')
        return "should start with: /";
    if (strstr(s, "//") != NULL)
        return "must not have empty segments";
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!is_unreserved(c) && !strchr("/%:@!$&'()*+,;=", c))
            return sl_check_msg("invalid path: '" QFMT
                                "' (characters outside of the reserved list of RFC 3986 found)",
                                s);
    }
    return check_percent(s);
}

/* Writes Kong's normal form of a plain router path: %XX of unreserved characters decoded,
 * other escapes upper-cased, "." and ".." segments resolved. out must hold strlen(s)+2. */
static void normalize_path(const char *s, char *out)
{
    char *dec = malloc(strlen(s) + 1);
    size_t n = 0;
    if (dec == NULL) {
        strcpy(out, s);
        return;
    }
    for (const char *p = s; *p; p++) {
        if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hx[3] = {p[1], p[2], 0};
            unsigned char c = (unsigned char)strtol(hx, NULL, 16);
            if (is_unreserved(c)) {
                dec[n++] = (char)c;
            } else {
                dec[n++] = '%';
                dec[n++] = (char)toupper((unsigned char)p[1]);
                dec[n++] = (char)toupper((unsigned char)p[2]);
            }
            p += 2;
            continue;
        }
        dec[n++] = *p;
    }
    dec[n] = '\0';
    /* remove dot segments (RFC 3986 5.2.4) over "/"-separated segments */
    size_t o = 0;
    const char *p = dec;
    while (*p) {
        const char *seg = p + 1; /* p points at '/' */
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 1 && seg[0] == '.') {
            if (end == NULL)
                out[o++] = '/';
        } else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            if (end == NULL)
                out[o++] = '/';
        } else {
            out[o++] = '/';
            memcpy(out + o, seg, len);
            o += len;
        }
        p = end ? end : seg + len;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(dec);
}

const char *sl_check_router_path(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!(s[0] == '/' || (s[0] == '~' && s[1] == '/')))
        return "should start with: / (fixed path) or ~/ (regex path)";
    if (strstr(s, "//") != NULL)
        return "must not have empty segments";
    if (s[0] == '/') {
        const char *err = check_percent(s);
        if (err != NULL)
            return err;
        char *norm = malloc(strlen(s) + 2);
        if (norm == NULL)
            return "out of memory";
        normalize_path(s, norm);
        if (strcmp(norm, s) != 0) {
            err = sl_check_msg("non-normalized path, consider use '" QFMT "' instead", norm);
            free(norm);
            return err;
        }
        free(norm);
        return NULL;
    }
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)(s + 1), strlen(s + 1), PCRE2_UTF, &code, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return sl_check_msg("invalid regex: '" QFMT "' (PCRE returned: %s)", s + 1,
                            (const char *)msg);
    }
    pcre2_code_free(re);
    return NULL;
}

const char *sl_check_http_method(const json_t *v)
{
    const char *s = json_string_value(v);
    for (const char *p = s; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return sl_check_msg("invalid value: " QFMT, s);
    return NULL;
}

const char *sl_check_header_name(const json_t *v)
{
    const char *s = json_string_value(v);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isalnum(c) || c == '_' || c == '-'))
            return sl_check_msg("bad header name '" QFMT
                                "', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
                                s);
    }
    return NULL;
}

const char *sl_check_upstream_name(const json_t *v)
{
    const char *s = json_string_value(v);
    char host[HOST_MAX];
    int kind, port;
    int rc = sl_host_parse(s, host, sizeof host, &kind, &port);
    if (rc != 0)
        return sl_check_msg("Invalid name ('" QFMT "'); must be a valid hostname", s);
    if (kind != 0)
        return sl_check_msg("Invalid name ('" QFMT "'); no ip addresses allowed", s);
    if (port >= 0)
        return sl_check_msg("Invalid name ('" QFMT "'); no port allowed", s);
    return NULL;
}

const char *sl_check_target(const json_t *v)
{
    const char *s = json_string_value(v);
    char host[HOST_MAX];
    int kind, port;
    if (sl_host_parse(s, host, sizeof host, &kind, &port) != 0)
        return sl_check_msg("Invalid target ('" QFMT "'); not a valid hostname or ip address", s);
    return NULL;
}

const char *sl_check_ip_or_cidr(const json_t *v)
{
    const char *s = json_string_value(v);
    char ip[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    unsigned char buf[16];
    int maxbits;
    if (n == 0 || n >= sizeof ip)
        goto bad;
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, buf) == 1)
        maxbits = 32;
    else if (inet_pton(AF_INET6, ip, buf) == 1)
        maxbits = 128;
    else
        goto bad;
    if (slash != NULL) {
        const char *b = slash + 1;
        if (*b == '\0' || strlen(b) > 3 || strspn(b, "0123456789") != strlen(b) ||
            atoi(b) > maxbits)
            goto bad;
    }
    return NULL;
bad:
    return sl_check_msg("invalid ip or cidr range: '" QFMT "'", s);
}

/* The OpenSSL reason for the last failure, or a fallback; clears the error queue. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : fallback;
}

static X509 *parse_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

static EVP_PKEY *parse_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") : NULL;
    BIO_free(b);
    return k;
}

const char *sl_check_certificate(const json_t *v)
{
    X509 *x = parse_cert(json_string_value(v));
    if (x == NULL)
        return sl_check_msg("invalid certificate: %s", ssl_reason("could not parse PEM"));
    X509_free(x);
    return NULL;
}

const char *sl_check_private_key(const json_t *v)
{
    EVP_PKEY *k = parse_key(json_string_value(v));
    if (k == NULL)
        return sl_check_msg("invalid key: %s", ssl_reason("could not parse PEM"));
    EVP_PKEY_free(k);
    return NULL;
}

/* --- entity hooks --- */

/* services `url`: "scheme://host[:port][/path][?query]" sets protocol, host, port and path
 * the way Kong's shorthand does (port 80/443 by scheme when absent; no path: path null). */
void sl_services_prepare(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields)
{
    json_t *url = json_object_get(entity, "url");
    if (url == NULL)
        return;
    if (json_is_null(url) ||
        (mode == SL_VALIDATE_FORM && json_is_string(url) && json_string_length(url) == 0)) {
        json_object_del(entity, "url");
        return;
    }
    if (!json_is_string(url)) {
        field_error(fields, "url", "expected a string");
        json_object_del(entity, "url");
        return;
    }
    const char *s = json_string_value(url);
    if (json_string_length(url) > SL_SCHEMA_MAX_STRING) {
        field_error(fields, "url", "length must be at most 16384");
        json_object_del(entity, "url");
        return;
    }
    const char *p = s, *scheme_end = strstr(s, "://");
    char *scheme = NULL;
    if (scheme_end != NULL && scheme_end > s && isalpha((unsigned char)s[0])) {
        scheme = strndup(s, (size_t)(scheme_end - s));
        for (char *c = scheme; c && *c; c++)
            *c = (char)tolower((unsigned char)*c);
        p = scheme_end + 3;
    }
    size_t alen = scheme ? strcspn(p, "/?#") : 0;
    char *authority = strndup(p, alen);
    const char *rest = p + alen;
    size_t plen = strcspn(rest, "?#");
    char *path = plen > 0 ? strndup(rest, plen) : NULL;

    const char *hp = authority ? strrchr(authority, '@') : NULL;
    hp = hp ? hp + 1 : authority;
    json_t *host = json_null(), *port = NULL;
    if (hp != NULL && *hp) {
        const char *portsep = NULL;
        const char *hs = hp, *he;
        if (hp[0] == '[') {
            const char *rb = strchr(hp, ']');
            he = rb ? rb : hp + strlen(hp);
            hs = hp + 1;
            portsep = rb && rb[1] == ':' ? rb + 1 : NULL;
        } else {
            portsep = strrchr(hp, ':');
            he = portsep ? portsep : hp + strlen(hp);
        }
        if (he > hs) {
            json_decref(host);
            host = json_stringn(hs, (size_t)(he - hs));
        }
        if (portsep != NULL && portsep[1]) {
            char *end;
            long n = strtol(portsep + 1, &end, 10);
            if (*end == '\0' && end - (portsep + 1) <= 6)
                port = json_integer(n);
        }
    }
    if (port == NULL && scheme != NULL) {
        if (strcmp(scheme, "http") == 0)
            port = json_integer(80);
        else if (strcmp(scheme, "https") == 0)
            port = json_integer(443);
    }
    if (scheme != NULL)
        json_object_set_new(entity, "protocol", json_string(scheme));
    json_object_set_new(entity, "host", host ? host : json_null());
    if (port != NULL)
        json_object_set_new(entity, "port", port);
    json_object_set_new(entity, "path", path ? json_string(path) : json_null());
    json_object_del(entity, "url");
    free(scheme);
    free(authority);
    free(path);
    (void)e;
}

static int protocol_in(const char *proto, const char *const *list)
{
    for (; proto && *list; list++)
        if (strcmp(proto, *list) == 0)
            return 1;
    return 0;
}

void sl_services_fields_check(const sl_entity *e, const json_t *entity, json_t *fields)
{
    static const char *const stream[] = {"tcp", "tls", "tls_passthrough", "udp", NULL};
    static const char *const tls[] = {"https", "grpcs", "tls", NULL};
    static const char *const tls_only[] = {"client_certificate", "tls_verify", "tls_verify_depth",
                                           "ca_certificates", NULL};
    const char *proto = str_of(entity, "protocol");
    int failed = 0;
    if (protocol_in(proto, stream) && is_set(entity, "path")) {
        field_error(fields, "path", "value must be null");
        failed = 1;
    }
    if (!protocol_in(proto, tls)) {
        for (const char *const *f = tls_only; *f; f++) {
            if (is_set(entity, *f)) { /* an empty ca_certificates list (form "") is no value */
                field_error(fields, *f, "value must be null");
                failed = 1;
            }
        }
    }
    if (failed)
        entity_error(fields, "failed conditional validation given value of field 'protocol'");
    (void)e;
}

/* One "must set one of 'a', 'b' when 'protocols' is 'x'" check: none of names set -> error. */
static void need_one_of(const json_t *entity, json_t *fields, const char *const *names,
                        const char *when)
{
    char msg[256];
    size_t o = 0;
    for (const char *const *n = names; *n; n++)
        if (is_set(entity, *n))
            return;
    o += (size_t)snprintf(msg + o, sizeof msg - o, "must set one of ");
    for (const char *const *n = names; *n && o < sizeof msg; n++)
        o += (size_t)snprintf(msg + o, sizeof msg - o, "%s'%s'", n == names ? "" : ", ", *n);
    if (o < sizeof msg)
        snprintf(msg + o, sizeof msg - o, " when 'protocols' is %s", when);
    entity_error(fields, msg);
}

static void cannot_set(const json_t *entity, json_t *fields, const char *name, const char *when)
{
    char msg[160];
    if (is_set(entity, name)) {
        snprintf(msg, sizeof msg, "cannot set '%s' when 'protocols' is %s", name, when);
        field_error(fields, name, msg);
    }
}

/* Kong picks the route subschema by the first protocol; checks follow routes_subschemas.lua. */
void sl_routes_fields_check(const sl_entity *e, const json_t *entity, json_t *fields)
{
    static const char *const https_need[] = {"methods", "hosts", "headers", "paths", "snis", NULL};
    static const char *const http_need[] = {"methods", "hosts", "headers", "paths", NULL};
    static const char *const grpcs_need[] = {"hosts", "headers", "paths", "snis", NULL};
    static const char *const grpc_need[] = {"hosts", "headers", "paths", NULL};
    static const char *const stream_need[] = {"sources", "destinations", "snis", NULL};
    static const char *const l4[] = {"tcp", "tls", "udp", NULL};
    static const char *const tls_pt[] = {"tls_passthrough", NULL};
    static const char *const no_tls[] = {"http", "grpc", "tcp", "udp", NULL};
    const json_t *protocols = json_object_get(entity, "protocols");
    const char *first = json_string_value(json_array_get(protocols, 0));
    const json_t *headers = json_object_get(entity, "headers");
    if (first == NULL)
        return;

    if (json_is_object(headers)) {
        const char *k;
        const json_t *hv;
        json_object_foreach((json_t *)headers, k, hv)
        {
            if (strcasecmp(k, "host") == 0)
                field_error(fields, "headers",
                            "cannot contain 'host' header, which must be specified in the "
                            "'hosts' attribute");
        }
    }
    if (array_all_in(protocols, no_tls) && is_set(entity, "snis")) {
        field_error(fields, "snis",
                    "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or "
                    "'tls_passthrough'");
        entity_error(fields, "failed conditional validation given value of field 'protocols'");
    }
    if (strcmp(first, "http") == 0 || strcmp(first, "https") == 0) {
        cannot_set(entity, fields, "sources", "'http' or 'https'");
        cannot_set(entity, fields, "destinations", "'http' or 'https'");
        if (array_has(protocols, "https"))
            need_one_of(entity, fields, https_need, "'https'");
        else
            need_one_of(entity, fields, http_need, "'http'");
    } else if (strcmp(first, "grpc") == 0 || strcmp(first, "grpcs") == 0) {
        if (json_is_true(json_object_get(entity, "strip_path")))
            field_error(fields, "strip_path",
                        "cannot set 'strip_path' when 'protocols' is "
                        "'grpc' or 'grpcs'");
        cannot_set(entity, fields, "methods", "'grpc' or 'grpcs'");
        cannot_set(entity, fields, "sources", "'grpc' or 'grpcs'");
        cannot_set(entity, fields, "destinations", "'grpc' or 'grpcs'");
        if (array_has(protocols, "grpcs"))
            need_one_of(entity, fields, grpcs_need, "'grpcs'");
        else
            need_one_of(entity, fields, grpc_need, "'grpc'");
    } else {
        static const char *const l7[] = {"methods", "hosts", "paths", "headers", NULL};
        for (const char *const *f = l7; *f; f++)
            cannot_set(entity, fields, *f, "'tcp', 'tls', 'tls_passthrough' or 'udp'");
        if (array_all_in(protocols, l4))
            need_one_of(entity, fields, stream_need, "'tcp', 'tls' or 'udp'");
        if (array_all_in(protocols, tls_pt) && !is_set(entity, "snis"))
            entity_error(fields, "must set snis when 'protocols' is 'tls_passthrough'");
    }
    (void)e;
}

const char *sl_check_redirect_code(const json_t *v)
{
    json_int_t c = json_integer_value(v);
    if (c != 426 && c != 301 && c != 302 && c != 307 && c != 308)
        return "expected one of: 426, 301, 302, 307, 308";
    return NULL;
}

const char *sl_check_http_status(const json_t *v)
{
    json_int_t c = json_integer_value(v);
    if (c < 100 || c > 999)
        return "value should be between 100 and 999";
    return NULL;
}

/* gRPC routes default strip_path to false (Kong's grpc subschema overrides the default). */
void sl_routes_prepare(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields)
{
    const json_t *p = json_object_get(entity, "protocols");
    const char *first =
        json_is_string(p) ? json_string_value(p) : json_string_value(json_array_get(p, 0));
    if (first != NULL && strncmp(first, "grpc", 4) == 0 &&
        json_object_get(entity, "strip_path") == NULL)
        json_object_set_new(entity, "strip_path", json_false());
    (void)e;
    (void)mode;
    (void)fields;
}

void sl_consumers_check(const sl_entity *e, const json_t *entity, json_t *errors)
{
    if (!is_set(entity, "custom_id") && !is_set(entity, "username"))
        json_array_append_new(
            errors,
            json_string("at least one of these fields must be non-empty: 'custom_id', 'username'"));
    (void)e;
}

/* Kong's upstreams.lua entity checks: the hash_on/hash_fallback combinations. */
void sl_upstreams_fields_check(const sl_entity *e, const json_t *entity, json_t *fields)
{
    const char *on = str_of(entity, "hash_on");
    const char *fb = str_of(entity, "hash_fallback");
    int on_failed = 0, fb_failed = 0;
    if (on == NULL || fb == NULL)
        return;
    struct {
        const char *value, *needs;
    } need[] = {{"header", "hash_on_header"},
                {"cookie", "hash_on_cookie"},
                {"query_arg", "hash_on_query_arg"},
                {"uri_capture", "hash_on_uri_capture"}},
      needfb[] = {{"header", "hash_fallback_header"},
                  {"cookie", "hash_on_cookie"},
                  {"query_arg", "hash_fallback_query_arg"},
                  {"uri_capture", "hash_fallback_uri_capture"}};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (strcmp(on, need[i].value) == 0 && !is_set(entity, need[i].needs)) {
            field_error(fields, need[i].needs, "required field missing");
            on_failed = 1;
        }
        if (strcmp(fb, needfb[i].value) == 0 && !is_set(entity, needfb[i].needs)) {
            field_error(fields, needfb[i].needs, "required field missing");
            fb_failed = 1;
        }
    }
    if ((strcmp(on, "none") == 0 || strcmp(on, "cookie") == 0) && strcmp(fb, "none") != 0) {
        field_error(fields, "hash_fallback", "expected one of: none");
        on_failed = 1;
    } else if ((strcmp(on, "consumer") == 0 || strcmp(on, "ip") == 0 || strcmp(on, "path") == 0) &&
               strcmp(fb, on) == 0) {
        /* the same input as primary and fallback hashes the same way twice */
        static _Thread_local char msg[128];
        const char *all[] = {"none",   "consumer", "ip",        "header",
                             "cookie", "path",     "query_arg", "uri_capture"};
        size_t o = (size_t)snprintf(msg, sizeof msg, "expected one of: ");
        int firstv = 1;
        for (size_t i = 0; i < 8; i++) {
            if (strcmp(all[i], on) == 0)
                continue;
            o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s", firstv ? "" : ", ", all[i]);
            firstv = 0;
        }
        field_error(fields, "hash_fallback", msg);
        on_failed = 1;
    }
    if (on_failed)
        entity_error(fields, "failed conditional validation given value of field 'hash_on'");
    if (fb_failed)
        entity_error(fields, "failed conditional validation given value of field 'hash_fallback'");
    const char *pairs[][2] = {{"hash_on_header", "hash_fallback_header"},
                              {"hash_on_query_arg", "hash_fallback_query_arg"},
                              {"hash_on_uri_capture", "hash_fallback_uri_capture"}};
    for (size_t i = 0; i < 3; i++) {
        const char *a = str_of(entity, pairs[i][0]), *b = str_of(entity, pairs[i][1]);
        if (a && b && strcasecmp(a, b) == 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "values of these fields must be distinct: '%s', '%s'",
                     pairs[i][0], pairs[i][1]);
            entity_error(fields, msg);
        }
    }
    (void)e;
}

/* Kong's targets DAO stores "host:port", adding port 8000 and brackets for IPv6. */
void sl_targets_finish(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields)
{
    const char *t = str_of(entity, "target");
    char host[HOST_MAX], out[HOST_MAX + 16];
    int kind, port;
    if (t == NULL || sl_host_parse(t, host, sizeof host, &kind, &port) != 0)
        return;
    snprintf(out, sizeof out, kind == 6 ? "[%s]:%d" : "%s:%d", host, port < 0 ? 8000 : port);
    json_object_set_new(entity, "target", json_string(out));
    (void)e;
    (void)fields;
}

void sl_certificates_check(const sl_entity *e, const json_t *entity, json_t *errors)
{
    const char *pairs[][2] = {{"cert", "key"}, {"cert_alt", "key_alt"}};
    int types[2] = {0, 0};
    if (is_set(entity, "cert_alt") != is_set(entity, "key_alt")) {
        json_array_append_new(
            errors, json_string("all or none of these fields must be set: 'cert_alt', 'key_alt'"));
        return;
    }
    for (int i = 0; i < 2; i++) {
        const char *c = str_of(entity, pairs[i][0]), *k = str_of(entity, pairs[i][1]);
        if (c == NULL || k == NULL)
            continue;
        X509 *x = parse_cert(c);
        EVP_PKEY *pk = parse_key(k);
        EVP_PKEY *pub = x ? X509_get0_pubkey(x) : NULL;
        if (x && pk && pub && EVP_PKEY_eq(pub, pk) != 1)
            json_array_append_new(errors, json_string(i == 0 ? "certificate does not match key"
                                                             : "alternative certificate does "
                                                               "not match key"));
        types[i] = pk ? EVP_PKEY_get_base_id(pk) : 0;
        X509_free(x);
        EVP_PKEY_free(pk);
        ERR_clear_error();
    }
    if (types[0] != 0 && types[0] == types[1])
        json_array_append_new(
            errors, json_string("certificate and alternative certificate need to have different "
                                "type (e.g. RSA and ECDSA), the provided certificates were both "
                                "of the same type"));
    (void)e;
}

void sl_ca_certificates_check(const sl_entity *e, const json_t *entity, json_t *errors)
{
    const char *c = str_of(entity, "cert");
    if (c == NULL)
        return;
    const char *first = strstr(c, "-----BEGIN CERTIFICATE-----");
    if (first && strstr(first + 1, "-----BEGIN CERTIFICATE-----")) {
        json_array_append_new(errors, json_string("please submit only one certificate at a time"));
        return;
    }
    X509 *x = parse_cert(c);
    if (x == NULL) {
        ERR_clear_error();
        return;
    }
    if (!(X509_get_extension_flags(x) & EXFLAG_CA))
        json_array_append_new(errors, json_string("certificate does not appear to be a CA "
                                                  "because it is missing the \"CA\" basic "
                                                  "constraint"));
    else if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        json_array_append_new(
            errors, json_string("certificate expired, \"Not After\" time is in the past"));
    X509_free(x);
    (void)e;
}

/* cert_digest: hex sha256 of the DER certificate, always recomputed so it cannot lie. */
void sl_ca_certificates_finish(const sl_entity *e, json_t *entity, sl_validate_mode mode,
                               json_t *fields)
{
    X509 *x = parse_cert(str_of(entity, "cert") ? str_of(entity, "cert") : "");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (x == NULL || X509_digest(x, EVP_sha256(), md, &n) != 1) {
        ERR_clear_error();
        X509_free(x);
        return;
    }
    for (unsigned int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    json_object_set_new(entity, "cert_digest", json_string(hex));
    X509_free(x);
    (void)e;
    (void)fields;
}

/* Kong generates a random key (32 hex characters) when a key-auth credential has none. A data
 * plane never makes one up: each would make up another, and a credential sent without a key
 * matches nothing. */
void sl_keyauth_finish(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields)
{
    const json_t *k = json_object_get(entity, "key");
    unsigned char b[16];
    char hex[33];
    if ((k != NULL && !json_is_null(k)) || mode == SL_VALIDATE_CANONICAL)
        return;
    if (sl_random_bytes(b, sizeof b) != 0) {
        field_error(fields, "key", "could not generate a key");
        return;
    }
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    json_object_set_new(entity, "key", json_string(hex));
    (void)e;
}

/* Plain passwords are replaced by their salted hash; stored hashes pass through unchanged. */
void sl_basicauth_finish(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields)
{
    const char *pw = str_of(entity, "password");
    char hash[SL_PASSWORD_HASH_MAX];
    if (pw == NULL || sl_password_is_hash(pw))
        return;
    if (sl_password_hash(pw, hash, sizeof hash) != 0) {
        field_error(fields, "password", "could not hash password");
        return;
    }
    json_object_set_new(entity, "password", json_string(hash));
    (void)e;
}
