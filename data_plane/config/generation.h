#ifndef DP_GENERATION_H
#define DP_GENERATION_H

/* A config generation: everything the workers need to proxy with one config version (routes,
 * services, balancers, certificates, plugin chain), built off the worker threads from a
 * decoded snapshot, then immutable and shared read-only. Refcounted: the holder of the current
 * pointer has one reference, each worker one, each in-flight request one, so in-flight
 * requests finish on the generation they started with. */

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdint.h>

#include "data_plane/config/route_fields.h"
#include "data_plane/plugins/plugin.h"
#include "data_plane/router/router.h"
#include "data_plane/tls/tls.h"

typedef struct {
    char *id, *name, *host_header;
    struct dp_balancer *lb; /* the balancer and health checks (data_plane/upstream/balancer.h) */
} dp_upstream;

typedef struct {
    char *id, *name;
    int https;  /* protocol https */
    char *host; /* upstream name or DNS name / address */
    int port;
    char *path; /* NULL: "/" */
    int retries;
    int connect_timeout, write_timeout, read_timeout; /* ms */
    int tls_verify;
    int served;            /* enabled and http/https: its routes go into the router */
    SSL_CTX *tls_ctx;      /* https only */
    dp_upstream *upstream; /* NULL: resolve host */
} dp_service;

enum { DP_PROTO_HTTP = 1, DP_PROTO_HTTPS = 2 };

typedef struct {
    const char *id, *name; /* point into the generation's config */
    dp_service *service;   /* NULL: the route has no service */
    int strip_path, preserve_host;
    int protocols; /* DP_PROTO_* */
    int https_redirect_status_code;
} dp_route;

typedef struct dp_generation {
    _Atomic int refs;
    int64_t version;
    char hash[65];
    json_t *config; /* the decoded config; owned */
    dp_service *services;
    size_t nservices;
    dp_route *routes; /* same order as config["routes"] */
    size_t nroutes;
    dp_upstream *upstreams;
    size_t nupstreams;
    dp_router *router;
    dp_certs *certs;
    dp_plugin_chain plugins;
} dp_generation;

/* Builds a generation from a config object ({"services": [...], "routes": [...], ...}); takes a
 * reference to config. Returns NULL with err (which names the entity) when something can't be
 * built. The result has one reference (the caller's). */
dp_generation *dp_generation_build(json_t *config, int64_t version, const char *hash, char *err,
                                   size_t errlen);

/* dp_generation_build for a config derived from prev's by a delta (rows shared, arrays in id
 * order): unchanged routes are not read again. prev may be NULL; it is only read. */
dp_generation *dp_generation_build_next(json_t *config, int64_t version, const char *hash,
                                        const dp_generation *prev, char *err, size_t errlen);

/* Reference counting; unref frees on the last reference (any thread). NULL is accepted. */
dp_generation *dp_generation_ref(dp_generation *g);
void dp_generation_unref(dp_generation *g);

#endif
