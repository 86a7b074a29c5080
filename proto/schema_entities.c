/* The entity tables: one table per entity, in Kong 3.x's field order, names, types, defaults
 * and bounds (kong/db/schema/entities/ and the plugins' daos.lua). Dependency order: an entity
 * only references entities above it, and export_order is its index. */
#include <string.h>

#include "proto/plugin_schemas.h"
#include "proto/schema.h"
#include "proto/schema_checks.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define INT32_MAXV 2147483647LL

#define F_ID                                                                                       \
    {                                                                                              \
        .name = "id", .type = SL_T_UUID, .flags = SL_F_AUTO                                        \
    }
#define F_TS(n)                                                                                    \
    {                                                                                              \
        .name = n, .type = SL_T_TIMESTAMP, .flags = SL_F_AUTO                                      \
    }
#define F_TAGS                                                                                     \
    {                                                                                              \
        .name = "tags", .type = SL_T_SET, .elem = SL_T_STRING, .check = sl_check_tag               \
    }
#define F_FK(n, r, fl)                                                                             \
    {                                                                                              \
        .name = n, .type = SL_T_FOREIGN, .flags = (fl), .ref = r                                   \
    }
#define F_BOOL(n, d)                                                                               \
    {                                                                                              \
        .name = n, .type = SL_T_BOOLEAN, .flags = SL_F_REQUIRED, .dflt = d                         \
    }
#define F_TIMEOUT(n)                                                                               \
    {                                                                                              \
        .name = n, .type = SL_T_INTEGER, .flags = SL_F_REQUIRED, .dflt = "60000", .min = 1,        \
        .max = INT32_MAXV - 1                                                                      \
    }
#define F_PEM(n, fl, chk)                                                                          \
    {                                                                                              \
        .name = n, .type = SL_T_STRING, .flags = (fl), .min = 1, .max = SL_SCHEMA_MAX_PEM,         \
        .check = chk                                                                               \
    }

static const char *const PROTOCOLS[] = {"grpc", "grpcs",           "http", "https", "tcp",
                                        "tls",  "tls_passthrough", "udp",  NULL};
static const char *const HASH_ON[] = {"none", "consumer",  "ip",          "header", "cookie",
                                      "path", "query_arg", "uri_capture", NULL};
static const char *const CHECK_TYPES[] = {"tcp", "http", "https", "grpc", "grpcs", NULL};

/* ---- certificates ---- */
static const sl_field certificate_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_PEM("cert", SL_F_REQUIRED, sl_check_certificate),
    F_PEM("key", SL_F_REQUIRED | SL_F_SECRET, sl_check_private_key),
    F_PEM("cert_alt", 0, sl_check_certificate),
    F_PEM("key_alt", SL_F_SECRET, sl_check_private_key),
    F_TAGS,
    {.name = "snis",
     .type = SL_T_SET,
     .elem = SL_T_STRING,
     .flags = SL_F_TRANSIENT,
     .check = sl_check_sni},
    F_TS("updated_at"),
};
static const sl_entity certificates = {
    .name = "certificates",
    .singular = "certificate",
    .endpoint = "certificates",
    .fields = certificate_fields,
    .nfields = N(certificate_fields),
    .check = sl_certificates_check,
    .export_order = 0,
};

/* ---- ca_certificates ---- */
static const sl_field ca_certificate_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_PEM("cert", SL_F_REQUIRED, sl_check_certificate),
    {.name = "cert_digest", .type = SL_T_STRING, .flags = SL_F_UNIQUE, .min = 1, .max = 128},
    F_TAGS,
    F_TS("updated_at"),
};
static const sl_entity ca_certificates = {
    .name = "ca_certificates",
    .singular = "ca_certificate",
    .endpoint = "ca_certificates",
    .fields = ca_certificate_fields,
    .nfields = N(ca_certificate_fields),
    .check = sl_ca_certificates_check,
    .export_order = 1,
    .finish = sl_ca_certificates_finish,
};

/* ---- services ---- */
static const sl_field service_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    {.name = "name",
     .type = SL_T_STRING,
     .flags = SL_F_UNIQUE,
     .min = 1,
     .max = 512,
     .check = sl_check_utf8_name},
    {.name = "retries",
     .type = SL_T_INTEGER,
     .flags = SL_F_REQUIRED,
     .dflt = "5",
     .min = 0,
     .max = 32767},
    {.name = "protocol",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"http\"",
     .one_of = PROTOCOLS},
    {.name = "host",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .min = 1,
     .max = 256,
     .check = sl_check_host},
    {.name = "port",
     .type = SL_T_INTEGER,
     .flags = SL_F_REQUIRED,
     .dflt = "80",
     .min = 0,
     .max = 65535},
    {.name = "path", .type = SL_T_STRING, .min = 1, .max = 4096, .check = sl_check_path},
    F_TIMEOUT("connect_timeout"),
    F_TIMEOUT("write_timeout"),
    F_TIMEOUT("read_timeout"),
    F_TAGS,
    F_FK("client_certificate", "certificates", 0),
    {.name = "tls_verify", .type = SL_T_BOOLEAN},
    {.name = "tls_verify_depth", .type = SL_T_INTEGER, .min = 0, .max = 64},
    {.name = "ca_certificates", .type = SL_T_ARRAY, .elem = SL_T_UUID},
    F_BOOL("enabled", "true"),
};
static const char *const service_shorthands[] = {"url", NULL};
static const sl_entity services = {
    .name = "services",
    .singular = "service",
    .endpoint = "services",
    .endpoint_key = "name",
    .fields = service_fields,
    .nfields = N(service_fields),
    .export_order = 2,
    .prepare = sl_services_prepare,
    .fields_check = sl_services_fields_check,
    .shorthands = service_shorthands,
};

/* ---- routes ---- */
static const sl_field endpoint_fields[] = {
    {.name = "ip", .type = SL_T_STRING, .min = 1, .max = 64, .check = sl_check_ip_or_cidr},
    {.name = "port", .type = SL_T_INTEGER, .min = 0, .max = 65535},
};
static const sl_field route_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    {.name = "name",
     .type = SL_T_STRING,
     .flags = SL_F_UNIQUE,
     .min = 1,
     .max = 512,
     .check = sl_check_utf8_name},
    {.name = "protocols",
     .type = SL_T_SET,
     .elem = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "[\"http\",\"https\"]",
     .min = 1,
     .one_of = PROTOCOLS},
    {.name = "methods", .type = SL_T_SET, .elem = SL_T_STRING, .check = sl_check_http_method},
    {.name = "hosts", .type = SL_T_ARRAY, .elem = SL_T_STRING, .check = sl_check_route_host},
    {.name = "paths", .type = SL_T_ARRAY, .elem = SL_T_STRING, .check = sl_check_router_path},
    {.name = "headers", .type = SL_T_MAP, .check = sl_check_header_name},
    {.name = "https_redirect_status_code",
     .type = SL_T_INTEGER,
     .flags = SL_F_REQUIRED,
     .dflt = "426",
     .check = sl_check_redirect_code},
    {.name = "regex_priority",
     .type = SL_T_INTEGER,
     .flags = SL_F_REQUIRED,
     .dflt = "0",
     .min = -INT32_MAXV - 1,
     .max = INT32_MAXV},
    F_BOOL("strip_path", "true"),
    {.name = "path_handling",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"v0\"",
     .one_of = (const char *const[]){"v0", "v1", NULL}},
    F_BOOL("preserve_host", "false"),
    F_BOOL("request_buffering", "true"),
    F_BOOL("response_buffering", "true"),
    {.name = "snis", .type = SL_T_SET, .elem = SL_T_STRING, .check = sl_check_sni},
    {.name = "sources",
     .type = SL_T_SET,
     .elem = SL_T_RECORD,
     .fields = endpoint_fields,
     .nfields = N(endpoint_fields)},
    {.name = "destinations",
     .type = SL_T_SET,
     .elem = SL_T_RECORD,
     .fields = endpoint_fields,
     .nfields = N(endpoint_fields)},
    F_TAGS,
    F_FK("service", "services", 0),
};
static const sl_entity routes = {
    .name = "routes",
    .singular = "route",
    .endpoint = "routes",
    .endpoint_key = "name",
    .fields = route_fields,
    .nfields = N(route_fields),
    .export_order = 3,
    .prepare = sl_routes_prepare,
    .fields_check = sl_routes_fields_check,
};

/* ---- consumers ---- */
static const sl_field consumer_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    {.name = "username", .type = SL_T_STRING, .flags = SL_F_UNIQUE, .min = 1, .max = 1024},
    {.name = "custom_id", .type = SL_T_STRING, .flags = SL_F_UNIQUE, .min = 1, .max = 1024},
    F_TAGS,
};
static const sl_entity consumers = {
    .name = "consumers",
    .singular = "consumer",
    .endpoint = "consumers",
    .endpoint_key = "username",
    .fields = consumer_fields,
    .nfields = N(consumer_fields),
    .check = sl_consumers_check,
    .export_order = 4,
};

/* ---- upstreams: healthchecks with Kong's nested defaults ---- */
#define F_COUNTER(n)                                                                               \
    {                                                                                              \
        .name = n, .type = SL_T_INTEGER, .flags = SL_F_REQUIRED, .dflt = "0", .min = 0, .max = 255 \
    }
#define F_INTERVAL                                                                                 \
    {                                                                                              \
        .name = "interval", .type = SL_T_NUMBER, .flags = SL_F_REQUIRED, .dflt = "0", .min = 0,    \
        .max = 65535                                                                               \
    }
#define F_STATUSES(d)                                                                              \
    {                                                                                              \
        .name = "http_statuses", .type = SL_T_ARRAY, .elem = SL_T_INTEGER, .flags = SL_F_REQUIRED, \
        .dflt = d, .max = 1000, .check = sl_check_http_status                                      \
    }

static const sl_field active_healthy[] = {
    F_INTERVAL,
    F_STATUSES("[200,302]"),
    F_COUNTER("successes"),
};
static const sl_field active_unhealthy[] = {
    F_INTERVAL,
    F_STATUSES("[429,404,500,501,502,503,504,505]"),
    F_COUNTER("tcp_failures"),
    F_COUNTER("timeouts"),
    F_COUNTER("http_failures"),
};
static const sl_field passive_healthy[] = {
    F_STATUSES("[200,201,202,203,204,205,206,207,208,226,300,301,302,303,304,305,306,307,308]"),
    F_COUNTER("successes"),
};
static const sl_field passive_unhealthy[] = {
    F_STATUSES("[429,500,503]"),
    F_COUNTER("tcp_failures"),
    F_COUNTER("timeouts"),
    F_COUNTER("http_failures"),
};
#define F_RECORD(n, sub)                                                                           \
    {                                                                                              \
        .name = n, .type = SL_T_RECORD, .flags = SL_F_REQUIRED, .dflt = "{}", .fields = sub,       \
        .nfields = N(sub)                                                                          \
    }
#define F_CHECK_TYPE                                                                               \
    {                                                                                              \
        .name = "type", .type = SL_T_STRING, .flags = SL_F_REQUIRED, .dflt = "\"http\"",           \
        .one_of = CHECK_TYPES                                                                      \
    }

static const sl_field active_fields[] = {
    F_CHECK_TYPE,
    {.name = "timeout",
     .type = SL_T_NUMBER,
     .flags = SL_F_REQUIRED,
     .dflt = "1",
     .min = 0,
     .max = 65535},
    {.name = "concurrency",
     .type = SL_T_INTEGER,
     .flags = SL_F_REQUIRED,
     .dflt = "10",
     .min = 1,
     .max = INT32_MAXV},
    {.name = "http_path",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"/\"",
     .min = 1,
     .max = 4096,
     .check = sl_check_path},
    {.name = "https_sni", .type = SL_T_STRING, .min = 1, .max = 256, .check = sl_check_sni},
    F_BOOL("https_verify_certificate", "true"),
    {.name = "headers", .type = SL_T_MAP, .check = sl_check_header_name},
    F_RECORD("healthy", active_healthy),
    F_RECORD("unhealthy", active_unhealthy),
};
static const sl_field passive_fields[] = {
    F_CHECK_TYPE,
    F_RECORD("healthy", passive_healthy),
    F_RECORD("unhealthy", passive_unhealthy),
};
static const sl_field healthcheck_fields[] = {
    F_RECORD("active", active_fields),
    F_RECORD("passive", passive_fields),
    {.name = "threshold",
     .type = SL_T_NUMBER,
     .flags = SL_F_REQUIRED,
     .dflt = "0",
     .min = 0,
     .max = 100},
};
#define F_HASH_STR(n, chk)                                                                         \
    {                                                                                              \
        .name = n, .type = SL_T_STRING, .min = 1, .max = 256, .check = chk                         \
    }

static const sl_field upstream_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    {.name = "name",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED | SL_F_UNIQUE,
     .min = 1,
     .max = 256,
     .check = sl_check_upstream_name},
    {.name = "algorithm",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"round-robin\"",
     .one_of = (const char *const[]){"consistent-hashing", "least-connections", "round-robin",
                                     "latency", NULL}},
    {.name = "hash_on",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"none\"",
     .one_of = HASH_ON},
    {.name = "hash_fallback",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"none\"",
     .one_of = HASH_ON},
    F_HASH_STR("hash_on_header", sl_check_header_name),
    F_HASH_STR("hash_fallback_header", sl_check_header_name),
    F_HASH_STR("hash_on_cookie", NULL),
    {.name = "hash_on_cookie_path",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"/\"",
     .min = 1,
     .max = 4096,
     .check = sl_check_path},
    F_HASH_STR("hash_on_query_arg", NULL),
    F_HASH_STR("hash_fallback_query_arg", NULL),
    F_HASH_STR("hash_on_uri_capture", NULL),
    F_HASH_STR("hash_fallback_uri_capture", NULL),
    {.name = "slots",
     .type = SL_T_INTEGER,
     .flags = SL_F_REQUIRED,
     .dflt = "10000",
     .min = 10,
     .max = 65536},
    F_RECORD("healthchecks", healthcheck_fields),
    F_TAGS,
    {.name = "host_header", .type = SL_T_STRING, .min = 1, .max = 256, .check = sl_check_host},
    F_FK("client_certificate", "certificates", 0),
    F_BOOL("use_srv_name", "false"),
};
static const sl_entity upstreams = {
    .name = "upstreams",
    .singular = "upstream",
    .endpoint = "upstreams",
    .endpoint_key = "name",
    .fields = upstream_fields,
    .nfields = N(upstream_fields),
    .export_order = 5,
    .fields_check = sl_upstreams_fields_check,
};

/* ---- targets ---- */
static const sl_field target_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    F_FK("upstream", "upstreams", SL_F_REQUIRED | SL_F_CASCADE),
    {.name = "target",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .min = 1,
     .max = 512,
     .check = sl_check_target},
    {.name = "weight",
     .type = SL_T_INTEGER,
     .flags = SL_F_REQUIRED,
     .dflt = "100",
     .min = 0,
     .max = 65535},
    F_TAGS,
};
static const sl_entity targets = {
    .name = "targets",
    .singular = "target",
    .endpoint = "targets",
    .endpoint_key = "target",
    .fields = target_fields,
    .nfields = N(target_fields),
    .unique_together = (const char *const[]){"upstream", "target", NULL},
    .export_order = 6,
    .finish = sl_targets_finish,
};

/* ---- snis ---- */
static const sl_field sni_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    {.name = "name",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED | SL_F_UNIQUE,
     .min = 1,
     .max = 256,
     .check = sl_check_sni},
    F_TAGS,
    F_FK("certificate", "certificates", SL_F_REQUIRED | SL_F_CASCADE),
};
static const sl_entity snis = {
    .name = "snis",
    .singular = "sni",
    .endpoint = "snis",
    .endpoint_key = "name",
    .fields = sni_fields,
    .nfields = N(sni_fields),
    .export_order = 7,
};

/* ---- plugins (config is validated by the plugin's own schema: plugin_schemas.h) ---- */
static const sl_field plugin_fields[] = {
    F_ID,
    {.name = "name",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED | SL_F_IMMUTABLE,
     .min = 1,
     .max = 256},
    {.name = "instance_name",
     .type = SL_T_STRING,
     .flags = SL_F_UNIQUE,
     .min = 1,
     .max = 512,
     .check = sl_check_utf8_name},
    F_TS("created_at"),
    F_TS("updated_at"),
    F_FK("route", "routes", SL_F_CASCADE),
    F_FK("service", "services", SL_F_CASCADE),
    F_FK("consumer", "consumers", SL_F_CASCADE),
    {.name = "config", .type = SL_T_JSON, .flags = SL_F_REQUIRED, .dflt = "{}"},
    {.name = "protocols",
     .type = SL_T_SET,
     .elem = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "[\"grpc\",\"grpcs\",\"http\",\"https\"]",
     .min = 1,
     .one_of = PROTOCOLS},
    F_BOOL("enabled", "true"),
    F_TAGS,
};
static const sl_entity plugins = {
    .name = "plugins",
    .singular = "plugin",
    .endpoint = "plugins",
    .endpoint_key = "instance_name",
    .fields = plugin_fields,
    .nfields = N(plugin_fields),
    .unique_together = (const char *const[]){"name", "route", "service", "consumer", NULL},
    .export_order = 8,
    .prepare = sl_plugins_prepare,
    .fields_check = sl_plugins_fields_check,
};

/* ---- consumer credentials ---- */
#define F_CONSUMER F_FK("consumer", "consumers", SL_F_REQUIRED | SL_F_CASCADE)

static const sl_field keyauth_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    F_CONSUMER,
    {.name = "key", .type = SL_T_STRING, .flags = SL_F_UNIQUE | SL_F_SECRET, .min = 1, .max = 1024},
    {.name = "ttl", .type = SL_T_INTEGER, .min = 0, .max = 100000000},
    F_TAGS,
};
static const sl_entity keyauth_credentials = {
    .name = "keyauth_credentials",
    .singular = "keyauth_credential",
    .endpoint = "key-auths",
    .nested = "key-auth",
    .endpoint_key = "key",
    .fields = keyauth_fields,
    .nfields = N(keyauth_fields),
    .export_order = 9,
    .finish = sl_keyauth_finish,
};

static const sl_field basicauth_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    F_CONSUMER,
    {.name = "username",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED | SL_F_UNIQUE,
     .min = 1,
     .max = 1024},
    {.name = "password",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED | SL_F_HASHED | SL_F_SECRET,
     .min = 1,
     .max = 1024},
    F_TAGS,
};
static const sl_entity basicauth_credentials = {
    .name = "basicauth_credentials",
    .singular = "basicauth_credential",
    .endpoint = "basic-auths",
    .nested = "basic-auth",
    .endpoint_key = "username",
    .fields = basicauth_fields,
    .nfields = N(basicauth_fields),
    .export_order = 10,
    .finish = sl_basicauth_finish,
};

static const sl_field acl_fields[] = {
    F_ID,
    F_TS("created_at"),
    F_TS("updated_at"),
    F_CONSUMER,
    {.name = "group", .type = SL_T_STRING, .flags = SL_F_REQUIRED, .min = 1, .max = 1024},
    F_TAGS,
};
static const sl_entity acls = {
    .name = "acls",
    .singular = "acl",
    .endpoint = "acls",
    .nested = "acls",
    .endpoint_key = "group",
    .fields = acl_fields,
    .nfields = N(acl_fields),
    .unique_together = (const char *const[]){"consumer", "group", NULL},
    .export_order = 11,
};

const sl_entity *const sl_entities[] = {
    &certificates,
    &ca_certificates,
    &services,
    &routes,
    &consumers,
    &upstreams,
    &targets,
    &snis,
    &plugins,
    &keyauth_credentials,
    &basicauth_credentials,
    &acls,
};
const size_t sl_entity_count = N(sl_entities);

const sl_entity *sl_entity_by_name(const char *name)
{
    for (size_t i = 0; name && i < sl_entity_count; i++)
        if (strcmp(sl_entities[i]->name, name) == 0)
            return sl_entities[i];
    return NULL;
}

const sl_entity *sl_entity_by_endpoint(const char *endpoint)
{
    for (size_t i = 0; endpoint && i < sl_entity_count; i++)
        if (strcmp(sl_entities[i]->endpoint, endpoint) == 0)
            return sl_entities[i];
    return NULL;
}

const sl_entity *sl_entity_by_nested(const char *nested)
{
    for (size_t i = 0; nested && i < sl_entity_count; i++)
        if (sl_entities[i]->nested && strcmp(sl_entities[i]->nested, nested) == 0)
            return sl_entities[i];
    return NULL;
}

const sl_field *sl_entity_field(const sl_entity *e, const char *name)
{
    for (size_t i = 0; e && name && i < e->nfields; i++)
        if (strcmp(e->fields[i].name, name) == 0)
            return &e->fields[i];
    return NULL;
}
