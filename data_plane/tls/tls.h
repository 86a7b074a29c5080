#ifndef DP_TLS_H
#define DP_TLS_H

/* TLS for the proxy: the server context for `ssl` listeners (TLS 1.2+, certificate picked per
 * connection by SNI from the connection's config generation), the certificate table built per
 * generation, and client contexts for HTTPS upstreams. */

#include <jansson.h>
#include <openssl/ssl.h>

typedef struct dp_certs dp_certs;

/* Creates the process-wide server context. Generates the in-memory self-signed default
 * certificate (CN "localhost") used when nothing in the config matches. NULL with err. */
SSL_CTX *dp_tls_server_ctx_new(char *err, size_t errlen);

/* Tells the server context which certificate table a new connection uses (the generation the
 * connection started with). certs may be NULL (only the default certificate). */
void dp_tls_set_certs(SSL *ssl, const dp_certs *certs);

/* Builds the SNI table from Kong's certificates and snis entities: exact names, "*.x" and
 * "x.*" wildcards. A bad PEM is refused with err naming the certificate id. Caller frees. */
dp_certs *dp_certs_build(const json_t *certificates, const json_t *snis, char *err, size_t errlen);
void dp_certs_free(dp_certs *c);

/* The certificate id chosen for server name sni (NULL sni: the default); NULL when only the
 * built-in default certificate would be used. For tests and logs. */
const char *dp_certs_pick_id(const dp_certs *c, const char *sni);

/* A client context for HTTPS upstreams. verify: check the chain against the PEM CA
 * certificates in ca_pems (a JSON array of strings; NULL or empty: the system store) and the
 * host name set per connection. Caller frees with SSL_CTX_free. */
SSL_CTX *dp_tls_client_ctx_new(int verify, const json_t *ca_pems, char *err, size_t errlen);

/* Frees the process-wide default certificate (at exit). */
void dp_tls_cleanup(void);

#endif
