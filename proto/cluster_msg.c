#include "proto/cluster_msg.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/digest.h"
#include "proto/msgpack_json.h"
#include "proto/uuid.h"

static const char *const type_names[] = {"unknown", "hello",   "ack",      "error",
                                         "ping",    "refused", "snapshot", "delta"};

const char *sl_cmsg_type_name(sl_cmsg_type t)
{
    if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]))
        return "unknown";
    return type_names[t];
}

static sl_cmsg_type type_from(const char *s, uint32_t len)
{
    for (size_t i = 1; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strlen(type_names[i]) == len && memcmp(type_names[i], s, len) == 0)
            return (sl_cmsg_type)i;
    return SL_CMSG_UNKNOWN;
}

static int key_is(const char *k, uint32_t klen, const char *want)
{
    return strlen(want) == klen && memcmp(k, want, klen) == 0;
}

int sl_cmsg_peek_type(const unsigned char *bytes, size_t len, sl_cmsg_type *t, char *err,
                      size_t errlen)
{
    sl_mp_reader r;
    uint32_t n;
    sl_mp_reader_init(&r, bytes, len);
    if (sl_mp_read_map(&r, &n, err, errlen))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        if (sl_mp_read_str(&r, &k, &klen, err, errlen))
            return -1;
        if (key_is(k, klen, "type")) {
            const char *v;
            uint32_t vlen;
            if (sl_mp_read_str(&r, &v, &vlen, err, errlen))
                return -1;
            *t = type_from(v, vlen);
            return 0;
        }
        if (sl_mp_skip(&r, err, errlen))
            return -1;
    }
    snprintf(err, errlen, "message has no \"type\"");
    return -1;
}

int sl_cmsg_peek_snapshot(const unsigned char *bytes, size_t len, int64_t *version, char hash[65])
{
    sl_mp_reader r;
    uint32_t n;
    char err[128];
    int have_version = 0;
    *version = 0;
    hash[0] = 0;
    sl_mp_reader_init(&r, bytes, len);
    if (sl_mp_read_map(&r, &n, err, sizeof(err)))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        uint32_t klen, vlen;
        if (sl_mp_read_str(&r, &k, &klen, err, sizeof(err)))
            break;
        if (key_is(k, klen, "payload"))
            break; /* everything after it may be cut off */
        if (key_is(k, klen, "version")) {
            if (sl_mp_read_int(&r, version, err, sizeof(err)) || *version < 0)
                return -1;
            have_version = 1;
        } else if (key_is(k, klen, "hash")) {
            if (sl_mp_read_str(&r, &v, &vlen, err, sizeof(err)) || !sl_is_sha256_hex(v, vlen))
                return -1;
            memcpy(hash, v, 64);
            hash[64] = 0;
        } else if (sl_mp_skip(&r, err, sizeof(err))) {
            break;
        }
    }
    return have_version ? 0 : -1;
}

/* Reads a string field into dst (cap bytes with NUL), refusing longer ones and NULs. */
static int read_text(sl_mp_reader *r, const char *name, char *dst, size_t cap, char *err,
                     size_t errlen)
{
    const char *s;
    uint32_t len;
    char e[128];
    if (sl_mp_read_str(r, &s, &len, e, sizeof(e))) {
        snprintf(err, errlen, "%s: %s", name, e);
        return -1;
    }
    if (len >= cap) {
        snprintf(err, errlen, "%s: longer than %zu bytes", name, cap - 1);
        return -1;
    }
    if (memchr(s, '\0', len)) {
        snprintf(err, errlen, "%s: contains NUL", name);
        return -1;
    }
    /* Text ends up in JSON (the Admin API's data plane list), which must be UTF-8. */
    json_t *check = json_stringn(s, len);
    if (!check) {
        snprintf(err, errlen, "%s: not valid UTF-8", name);
        return -1;
    }
    json_decref(check);
    memcpy(dst, s, len);
    dst[len] = 0;
    return 0;
}

static int read_hash(sl_mp_reader *r, const char *name, char dst[65], char *err, size_t errlen)
{
    if (sl_mp_peek(r) == SL_MP_NIL) {
        r->p++;
        dst[0] = 0;
        return 0;
    }
    char tmp[66];
    if (read_text(r, name, tmp, sizeof(tmp), err, errlen))
        return -1;
    if (tmp[0] && !sl_is_sha256_hex(tmp, strlen(tmp))) {
        snprintf(err, errlen, "%s: not 64 lower-case hex digits", name);
        return -1;
    }
    memcpy(dst, tmp, 65);
    return 0;
}

static int read_i64(sl_mp_reader *r, const char *name, int64_t *v, char *err, size_t errlen)
{
    char e[128];
    if (sl_mp_read_int(r, v, e, sizeof(e))) {
        snprintf(err, errlen, "%s: %s", name, e);
        return -1;
    }
    if (*v < 0) {
        snprintf(err, errlen, "%s: negative", name);
        return -1;
    }
    return 0;
}

static int read_plugins(sl_mp_reader *r, json_t **out, char *err, size_t errlen)
{
    uint32_t n;
    char e[128];
    if (sl_mp_read_array(r, &n, e, sizeof(e))) {
        snprintf(err, errlen, "plugins: %s", e);
        return -1;
    }
    if (n > SL_CMSG_MAX_PLUGINS) {
        snprintf(err, errlen, "plugins: more than %d entries", SL_CMSG_MAX_PLUGINS);
        return -1;
    }
    json_t *a = json_array();
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        char name[SL_CMSG_MAX_PLUGIN_NAME + 1];
        if (read_text(r, "plugins[]", name, sizeof(name), err, errlen)) {
            json_decref(a);
            return -1;
        }
        json_t *s = json_string(name); /* NULL for invalid UTF-8 */
        if (!s) {
            snprintf(err, errlen, "plugins[%u]: not valid UTF-8", i);
            json_decref(a);
            return -1;
        }
        json_array_append_new(a, s);
    }
    *out = a;
    return 0;
}

static int read_errors(sl_mp_reader *r, json_t **out, char *err, size_t errlen)
{
    if (sl_mp_peek(r) == SL_MP_NIL) {
        r->p++;
        return 0;
    }
    if (sl_mp_peek(r) != SL_MP_ARRAY) {
        snprintf(err, errlen, "errors: expected array, got %s", sl_mp_kind_name(sl_mp_peek(r)));
        return -1;
    }
    char e[160];
    json_t *v;
    if (sl_mp_read_json(r, &v, e, sizeof(e))) {
        snprintf(err, errlen, "errors: %s", e);
        return -1;
    }
    json_decref(*out);
    *out = v;
    return 0;
}

/* Which fields each type must carry, as bits. */
enum {
    F_NODE_ID = 1,
    F_HOSTNAME = 2,
    F_SW_VERSION = 4,
    F_PLUGINS = 8,
    F_CVERSION = 16,
    F_CHASH = 32,
    F_MESSAGE = 64,
    F_REASON = 128,
};

static unsigned required_fields(sl_cmsg_type t)
{
    switch (t) {
    case SL_CMSG_HELLO:
        return F_NODE_ID | F_HOSTNAME | F_SW_VERSION | F_PLUGINS;
    case SL_CMSG_ACK:
        return F_CVERSION | F_CHASH;
    case SL_CMSG_ERROR:
        return F_CVERSION | F_MESSAGE;
    case SL_CMSG_PING:
        return F_CVERSION | F_CHASH;
    case SL_CMSG_REFUSED:
        return F_REASON | F_MESSAGE;
    default:
        return 0;
    }
}

static int decode_field(sl_mp_reader *r, sl_cluster_msg *m, const char *k, uint32_t klen,
                        unsigned *seen, char *err, size_t errlen)
{
    sl_cmsg_type t = m->type;
    /* hello/ping say config_version/config_hash; ack/error say version/hash, and hello's
     * "version" is the software version. */
    int cfg_pair = (t == SL_CMSG_HELLO || t == SL_CMSG_PING);
    if (t == SL_CMSG_HELLO && key_is(k, klen, "node_id")) {
        if (read_text(r, "node_id", m->node_id, sizeof(m->node_id), err, errlen))
            return -1;
        if (!sl_uuid_is_valid(m->node_id)) {
            snprintf(err, errlen, "node_id: not a uuid");
            return -1;
        }
        *seen |= F_NODE_ID;
    } else if (t == SL_CMSG_HELLO && key_is(k, klen, "hostname")) {
        if (read_text(r, "hostname", m->hostname, sizeof(m->hostname), err, errlen))
            return -1;
        *seen |= F_HOSTNAME;
    } else if (t == SL_CMSG_HELLO && key_is(k, klen, "version")) {
        if (read_text(r, "version", m->sw_version, sizeof(m->sw_version), err, errlen))
            return -1;
        *seen |= F_SW_VERSION;
    } else if (t == SL_CMSG_HELLO && key_is(k, klen, "plugins")) {
        if (m->plugins) {
            snprintf(err, errlen, "plugins: given twice");
            return -1;
        }
        if (read_plugins(r, &m->plugins, err, errlen))
            return -1;
        *seen |= F_PLUGINS;
    } else if (key_is(k, klen, cfg_pair ? "config_version" : "version") &&
               (cfg_pair || t == SL_CMSG_ACK || t == SL_CMSG_ERROR)) {
        if (read_i64(r, cfg_pair ? "config_version" : "version", &m->config_version, err, errlen))
            return -1;
        *seen |= F_CVERSION;
    } else if (key_is(k, klen, cfg_pair ? "config_hash" : "hash") &&
               (cfg_pair || t == SL_CMSG_ACK || t == SL_CMSG_ERROR)) {
        if (read_hash(r, cfg_pair ? "config_hash" : "hash", m->config_hash, err, errlen))
            return -1;
        *seen |= F_CHASH;
    } else if ((t == SL_CMSG_ERROR || t == SL_CMSG_REFUSED) && key_is(k, klen, "message")) {
        if (read_text(r, "message", m->message, sizeof(m->message), err, errlen))
            return -1;
        *seen |= F_MESSAGE;
    } else if (t == SL_CMSG_REFUSED && key_is(k, klen, "reason")) {
        if (read_text(r, "reason", m->reason, sizeof(m->reason), err, errlen))
            return -1;
        *seen |= F_REASON;
    } else if (t == SL_CMSG_ERROR && key_is(k, klen, "errors")) {
        if (read_errors(r, &m->errors, err, errlen))
            return -1;
    } else {
        char e[128];
        if (sl_mp_skip(r, e, sizeof(e))) {
            snprintf(err, errlen, "%.*s: %s", (int)(klen > 64 ? 64 : klen), k, e);
            return -1;
        }
    }
    return 0;
}

int sl_cmsg_decode(const unsigned char *bytes, size_t len, sl_cluster_msg *m, char *err,
                   size_t errlen)
{
    memset(m, 0, sizeof(*m));
    if (err && errlen)
        err[0] = 0;
    if (len > SL_CMSG_MAX_LEN) {
        snprintf(err, errlen, "message of %zu bytes exceeds %u", len, SL_CMSG_MAX_LEN);
        return -1;
    }
    if (sl_cmsg_peek_type(bytes, len, &m->type, err, errlen))
        return -1;
    if (m->type == SL_CMSG_SNAPSHOT || m->type == SL_CMSG_DELTA) {
        snprintf(err, errlen, "a %s is not a control message", sl_cmsg_type_name(m->type));
        return -1;
    }
    if (m->type == SL_CMSG_UNKNOWN)
        return 0;

    sl_mp_reader r;
    uint32_t n;
    unsigned seen = 0;
    sl_mp_reader_init(&r, bytes, len);
    if (sl_mp_read_map(&r, &n, err, errlen))
        goto fail;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        if (sl_mp_read_str(&r, &k, &klen, err, errlen))
            goto fail;
        if (key_is(k, klen, "type")) {
            if (sl_mp_skip(&r, err, errlen))
                goto fail;
            continue;
        }
        if (decode_field(&r, m, k, klen, &seen, err, errlen))
            goto fail;
    }
    if (r.p != r.end) {
        snprintf(err, errlen, "%zu bytes after the message", (size_t)(r.end - r.p));
        goto fail;
    }
    unsigned missing = required_fields(m->type) & ~seen;
    if (missing) {
        static const char *const names[] = {"node_id", "hostname", "version", "plugins",
                                            "version", "hash",     "message", "reason"};
        int bit = __builtin_ctz(missing);
        const char *name = names[bit];
        if (m->type == SL_CMSG_PING || m->type == SL_CMSG_HELLO) {
            if (bit == 4)
                name = "config_version";
            else if (bit == 5)
                name = "config_hash";
        }
        snprintf(err, errlen, "%s message without \"%s\"", sl_cmsg_type_name(m->type), name);
        goto fail;
    }
    return 0;
fail:
    sl_cmsg_free(m);
    return -1;
}

void sl_cmsg_copy_text(char *dst, size_t cap, const char *s)
{
    if (!cap)
        return;
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        /* Step back over continuation bytes so the cut never splits a character. */
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = 0;
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    sl_mp_pack_cstr(pk, k);
    sl_mp_pack_cstr(pk, v);
}

static void pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    sl_mp_pack_cstr(pk, k);
    msgpack_pack_int64(pk, v);
}

static int check_len(const char *name, const char *v, size_t max, char *err, size_t errlen)
{
    if (strlen(v) > max) {
        snprintf(err, errlen, "%s: longer than %zu bytes", name, max);
        return -1;
    }
    return 0;
}

static int check_fields(const sl_cluster_msg *m, char *err, size_t errlen)
{
    if (m->config_hash[0] && !sl_is_sha256_hex(m->config_hash, strlen(m->config_hash))) {
        snprintf(err, errlen, "hash: not 64 lower-case hex digits");
        return -1;
    }
    if (m->config_version < 0) {
        snprintf(err, errlen, "version: negative");
        return -1;
    }
    if (m->type == SL_CMSG_HELLO) {
        if (!sl_uuid_is_valid(m->node_id)) {
            snprintf(err, errlen, "node_id: not a uuid");
            return -1;
        }
        if (check_len("hostname", m->hostname, SL_CMSG_MAX_HOSTNAME, err, errlen) ||
            check_len("version", m->sw_version, SL_CMSG_MAX_SW_VERSION, err, errlen))
            return -1;
        size_t n = json_array_size(m->plugins);
        if (n > SL_CMSG_MAX_PLUGINS) {
            snprintf(err, errlen, "plugins: more than %d entries", SL_CMSG_MAX_PLUGINS);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(m->plugins, i));
            if (!s || strlen(s) > SL_CMSG_MAX_PLUGIN_NAME) {
                snprintf(err, errlen, "plugins[%zu]: not a name of at most %d bytes", i,
                         SL_CMSG_MAX_PLUGIN_NAME);
                return -1;
            }
        }
    }
    if (m->type == SL_CMSG_REFUSED &&
        check_len("reason", m->reason, SL_CMSG_MAX_REASON, err, errlen))
        return -1;
    if (m->errors && !json_is_array(m->errors)) {
        snprintf(err, errlen, "errors: not an array");
        return -1;
    }
    return 0;
}

int sl_cmsg_encode(const sl_cluster_msg *m, unsigned char **out, size_t *outlen, char *err,
                   size_t errlen)
{
    if (m->type < SL_CMSG_HELLO || m->type > SL_CMSG_REFUSED) {
        snprintf(err, errlen, "cannot encode a %s message", sl_cmsg_type_name(m->type));
        return -1;
    }
    if (check_fields(m, err, errlen))
        return -1;
    char message[SL_CMSG_MAX_MESSAGE + 1];
    sl_cmsg_copy_text(message, sizeof(message), m->message);

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = 0;
    switch (m->type) {
    case SL_CMSG_HELLO: {
        msgpack_pack_map(&pk, 7);
        pack_kv_str(&pk, "type", "hello");
        pack_kv_str(&pk, "node_id", m->node_id);
        pack_kv_str(&pk, "hostname", m->hostname);
        pack_kv_str(&pk, "version", m->sw_version);
        sl_mp_pack_cstr(&pk, "plugins");
        size_t n = json_array_size(m->plugins);
        msgpack_pack_array(&pk, n);
        for (size_t i = 0; i < n; i++)
            sl_mp_pack_cstr(&pk, json_string_value(json_array_get(m->plugins, i)));
        pack_kv_int(&pk, "config_version", m->config_version);
        pack_kv_str(&pk, "config_hash", m->config_hash);
        break;
    }
    case SL_CMSG_ACK:
        msgpack_pack_map(&pk, 3);
        pack_kv_str(&pk, "type", "ack");
        pack_kv_int(&pk, "version", m->config_version);
        pack_kv_str(&pk, "hash", m->config_hash);
        break;
    case SL_CMSG_ERROR:
        msgpack_pack_map(&pk, 5);
        pack_kv_str(&pk, "type", "error");
        pack_kv_int(&pk, "version", m->config_version);
        pack_kv_str(&pk, "hash", m->config_hash);
        pack_kv_str(&pk, "message", message);
        sl_mp_pack_cstr(&pk, "errors");
        if (m->errors)
            rc = sl_mp_pack_json(&pk, m->errors, err, errlen);
        else
            msgpack_pack_nil(&pk);
        break;
    case SL_CMSG_PING:
        msgpack_pack_map(&pk, 3);
        pack_kv_str(&pk, "type", "ping");
        pack_kv_int(&pk, "config_version", m->config_version);
        pack_kv_str(&pk, "config_hash", m->config_hash);
        break;
    case SL_CMSG_REFUSED:
        msgpack_pack_map(&pk, 3);
        pack_kv_str(&pk, "type", "refused");
        pack_kv_str(&pk, "reason", m->reason);
        pack_kv_str(&pk, "message", message);
        break;
    default:
        break;
    }
    if (rc == 0 && sb.size > SL_CMSG_MAX_LEN) {
        snprintf(err, errlen, "%s message of %zu bytes exceeds %u", sl_cmsg_type_name(m->type),
                 sb.size, SL_CMSG_MAX_LEN);
        rc = -1;
    }
    if (rc) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    *out = (unsigned char *)sb.data; /* sbuffer memory is malloc'd: the caller frees it */
    *outlen = sb.size;
    return 0;
}

void sl_cmsg_free(sl_cluster_msg *m)
{
    json_decref(m->plugins);
    json_decref(m->errors);
    m->plugins = NULL;
    m->errors = NULL;
}

static int parse_version(const char *v, long *major, long *minor)
{
    char *end;
    *major = strtol(v, &end, 10);
    if (end == v || *end != '.' || *major < 0)
        return -1;
    const char *p = end + 1;
    *minor = strtol(p, &end, 10);
    if (end == p || *minor < 0 || (*end != '.' && *end != '\0' && *end != '-'))
        return -1;
    return 0;
}

int sl_cmsg_version_compatible(const char *cp, const char *dp, char *err, size_t errlen)
{
    long cmaj, cmin, dmaj, dmin;
    if (parse_version(cp, &cmaj, &cmin)) {
        snprintf(err, errlen, "control plane version '%.32s' is not major.minor.patch", cp);
        return -1;
    }
    if (parse_version(dp, &dmaj, &dmin)) {
        snprintf(err, errlen, "data plane version '%.32s' is not major.minor.patch", dp);
        return -1;
    }
    if (cmaj != dmaj) {
        snprintf(err, errlen, "data plane major version %ld differs from control plane's %ld", dmaj,
                 cmaj);
        return -1;
    }
    if (dmin > cmin) {
        snprintf(err, errlen, "data plane version %.32s is newer than control plane's %.32s", dp,
                 cp);
        return -1;
    }
    return 0;
}
