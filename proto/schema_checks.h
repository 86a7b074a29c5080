#ifndef SL_SCHEMA_CHECKS_H
#define SL_SCHEMA_CHECKS_H

/* The checks the entity tables (schema_entities.c) point at, with Kong's messages. Value checks
 * follow sl_value_check: NULL when fine, else a message (static or thread-local, see schema.h).
 * Entity hooks follow the sl_entity_* typedefs. */

#include <jansson.h>

#include "proto/schema.h"

/* Formats a message into this thread's check buffer and returns it (valid until the next
 * call on this thread). Used for Kong messages that quote the value. */
const char *sl_check_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- value checks (called with a value of the field's type, or one array element) --- */
const char *sl_check_tag(const json_t *v);           /* printable, no ',' or '/' */
const char *sl_check_utf8_name(const json_t *v);     /* names: alnum and . - _ ~ */
const char *sl_check_host(const json_t *v);          /* hostname or ip, no port */
const char *sl_check_route_host(const json_t *v);    /* wildcard host, optional :port */
const char *sl_check_sni(const json_t *v);           /* wildcard host name, no port, no ip */
const char *sl_check_path(const json_t *v);          /* services path, cookie path */
const char *sl_check_router_path(const json_t *v);   /* "/prefix" or "~/regex" */
const char *sl_check_http_method(const json_t *v);   /* upper-case token */
const char *sl_check_header_name(const json_t *v);   /* A-Z a-z 0-9 _ - */
const char *sl_check_upstream_name(const json_t *v); /* hostname, no ip, no port */
const char *sl_check_target(const json_t *v);        /* host or ip with optional :port */
const char *sl_check_ip_or_cidr(const json_t *v);    /* "10.0.0.1", "10.0.0.0/8", v6 */
const char *sl_check_certificate(const json_t *v);   /* PEM X.509 certificate */
const char *sl_check_private_key(const json_t *v);   /* PEM private key */
const char *sl_check_redirect_code(const json_t *v); /* 426, 301, 302, 307, 308 */
const char *sl_check_http_status(const json_t *v);   /* integer 100..999 */

/* --- entity hooks --- */
void sl_services_prepare(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields);
void sl_services_fields_check(const sl_entity *e, const json_t *entity, json_t *fields);
void sl_routes_prepare(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields);
void sl_routes_fields_check(const sl_entity *e, const json_t *entity, json_t *fields);
void sl_consumers_check(const sl_entity *e, const json_t *entity, json_t *errors);
void sl_upstreams_fields_check(const sl_entity *e, const json_t *entity, json_t *fields);
void sl_targets_finish(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields);
void sl_certificates_check(const sl_entity *e, const json_t *entity, json_t *errors);
void sl_ca_certificates_check(const sl_entity *e, const json_t *entity, json_t *errors);
void sl_ca_certificates_finish(const sl_entity *e, json_t *entity, sl_validate_mode mode,
                               json_t *fields);
void sl_keyauth_finish(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields);
void sl_basicauth_finish(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields);

/* Host parsing shared by the checks and the data plane. Splits "host[:port]" / "[v6]:port" /
 * bare IPv6. kind: 0 name, 4 IPv4, 6 IPv6. port -1 when absent. host (NUL-terminated, without
 * brackets) must hold hostlen bytes. Returns 0, -1 when malformed, -2 when the port is not
 * 0..65535. */
int sl_host_parse(const char *s, char *host, size_t hostlen, int *kind, int *port);

#endif
