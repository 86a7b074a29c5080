#include "data_plane/tls/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *id;
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) * chain;
    X509 *cert_alt; /* Kong's cert_alt/key_alt: a second (e.g. ECDSA) pair */
    EVP_PKEY *key_alt;
} cert_entry;

typedef struct {
    char *name; /* lower case; wildcards keep ".x" or "x." */
    int kind;   /* 0 exact, 1 "*.x", 2 "x.*" */
    size_t cert;
} sni_entry;

struct dp_certs {
    cert_entry *certs;
    size_t ncerts;
    sni_entry *snis;
    size_t nsnis;
};

static X509 *default_cert;
static EVP_PKEY *default_key;
static int certs_idx = -1;

static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[160] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static int make_default_cert(char *err, size_t errlen)
{
    if (default_cert)
        return 0;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!key || !x) {
        EVP_PKEY_free(key);
        X509_free(x);
        ssl_err(err, errlen, "default certificate");
        return -1;
    }
    X509_set_version(x, 2);
    unsigned char serial[8];
    for (size_t i = 0; i < sizeof(serial); i++)
        serial[i] = (unsigned char)(rand() & 0x7f);
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Sluice", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, key, EVP_sha256())) {
        EVP_PKEY_free(key);
        X509_free(x);
        ssl_err(err, errlen, "default certificate");
        return -1;
    }
    default_cert = x;
    default_key = key;
    return 0;
}

static int lookup(const dp_certs *c, const char *sni)
{
    if (!c || !sni || !*sni)
        return -1;
    char name[256];
    size_t n = strlen(sni);
    if (n >= sizeof(name))
        return -1;
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)((sni[i] >= 'A' && sni[i] <= 'Z') ? sni[i] + 32 : sni[i]);
    if (n && name[n - 1] == '.')
        name[--n] = 0;
    /* Kong's order: exact, then "*.x" (leftmost label), then "x.*" */
    for (int kind = 0; kind < 3; kind++) {
        for (size_t i = 0; i < c->nsnis; i++) {
            const sni_entry *s = &c->snis[i];
            if (s->kind != kind)
                continue;
            size_t l = strlen(s->name);
            if (kind == 0 && strcmp(s->name, name) == 0)
                return (int)s->cert;
            if (kind == 1 && n > l && strcmp(name + n - l, s->name) == 0 &&
                !memchr(name, '.', n - l))
                return (int)s->cert;
            if (kind == 2 && n > l && strncmp(name, s->name, l) == 0 && !strchr(name + l, '.'))
                return (int)s->cert;
        }
    }
    return -1;
}

const char *dp_certs_pick_id(const dp_certs *c, const char *sni)
{
    int i = lookup(c, sni);
    return i < 0 ? NULL : c->certs[i].id;
}

/* Runs during the handshake, after the ClientHello: installs the certificate for the SNI. */
static int cert_cb(SSL *ssl, void *arg)
{
    const dp_certs *c = SSL_get_ex_data(ssl, certs_idx);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    int i = lookup(c, sni);
    if (i < 0) {
        return SSL_use_certificate(ssl, default_cert) == 1 &&
               SSL_use_PrivateKey(ssl, default_key) == 1;
    }
    const cert_entry *e = &c->certs[i];
    if (SSL_use_cert_and_key(ssl, e->cert, e->key, e->chain, 1) != 1)
        return 0;
    if (e->cert_alt && e->key_alt)
        SSL_use_cert_and_key(ssl, e->cert_alt, e->key_alt, NULL, 0);
    return 1;
}

SSL_CTX *dp_tls_server_ctx_new(char *err, size_t errlen)
{
    if (make_default_cert(err, errlen) != 0)
        return NULL;
    if (certs_idx < 0)
        certs_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_err(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* Mozilla "intermediate": AEAD with forward secrecy only */
    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_cert_cb(ctx, cert_cb, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

void dp_tls_set_certs(SSL *ssl, const dp_certs *certs)
{
    SSL_set_ex_data(ssl, certs_idx, (void *)certs);
}

static int load_pair(const char *cert_pem, const char *key_pem, X509 **cert, EVP_PKEY **key,
                     STACK_OF(X509) * *chain)
{
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    if (*cert && chain) {
        *chain = sk_X509_new_null();
        X509 *extra;
        while ((extra = PEM_read_bio_X509(b, NULL, NULL, NULL)))
            sk_X509_push(*chain, extra);
        ERR_clear_error(); /* end of file */
    }
    BIO_free(b);
    b = BIO_new_mem_buf(key_pem, -1);
    *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!*cert || !*key || X509_check_private_key(*cert, *key) != 1)
        return -1;
    return 0;
}

typedef struct {
    const char *id;
    size_t index;
} cert_ref;

static int cert_ref_id_cmp(const void *a, const void *b)
{
    return strcmp(((const cert_ref *)a)->id, ((const cert_ref *)b)->id);
}

/* by id, then position: equal ids keep their order */
static int cert_ref_cmp(const void *a, const void *b)
{
    const cert_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

dp_certs *dp_certs_build(const json_t *certificates, const json_t *snis, char *err, size_t errlen)
{
    dp_certs *c = calloc(1, sizeof(*c));
    size_t nc = json_is_array(certificates) ? json_array_size(certificates) : 0;
    size_t ns = json_is_array(snis) ? json_array_size(snis) : 0;
    c->certs = calloc(nc + 1, sizeof(cert_entry));
    c->snis = calloc(ns + 1, sizeof(sni_entry));
    size_t i;
    const json_t *j;
    json_array_foreach(certificates, i, j)
    {
        cert_entry *e = &c->certs[c->ncerts++];
        const char *id = json_string_value(json_object_get(j, "id"));
        e->id = strdup(id ? id : "");
        const char *cp = json_string_value(json_object_get(j, "cert"));
        const char *kp = json_string_value(json_object_get(j, "key"));
        if (!cp || !kp || load_pair(cp, kp, &e->cert, &e->key, &e->chain) != 0) {
            ssl_err(err, errlen, "certificates: bad cert/key pair");
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (%s)", e->id);
            dp_certs_free(c);
            return NULL;
        }
        const char *ca = json_string_value(json_object_get(j, "cert_alt"));
        const char *ka = json_string_value(json_object_get(j, "key_alt"));
        if (ca && ka && load_pair(ca, ka, &e->cert_alt, &e->key_alt, NULL) != 0) {
            snprintf(err, errlen, "certificates: bad cert_alt/key_alt pair (%s)", e->id);
            dp_certs_free(c);
            return NULL;
        }
    }
    /* certificates by id, so each SNI finds its certificate in log n (a config with
     * thousands of certificates and SNIs must not cost a comparison per pair); without
     * the memory for it, a plain scan gives the same answer */
    cert_ref *by_id = c->ncerts ? malloc(c->ncerts * sizeof(*by_id)) : NULL;
    for (size_t x = 0; by_id && x < c->ncerts; x++)
        by_id[x] = (cert_ref){c->certs[x].id, x};
    if (by_id)
        qsort(by_id, c->ncerts, sizeof(*by_id), cert_ref_cmp);
    json_array_foreach(snis, i, j)
    {
        const char *name = json_string_value(json_object_get(j, "name"));
        const char *cid =
            json_string_value(json_object_get(json_object_get(j, "certificate"), "id"));
        if (!name || !cid)
            continue;
        /* the first certificate with that id, as a scan in order would find it */
        size_t k = c->ncerts;
        if (by_id) {
            cert_ref key = {cid, 0};
            const cert_ref *hit = bsearch(&key, by_id, c->ncerts, sizeof(*by_id), cert_ref_id_cmp);
            while (hit && hit > by_id && strcmp(hit[-1].id, cid) == 0)
                hit--;
            if (hit)
                k = hit->index;
        } else {
            k = 0;
            while (k < c->ncerts && strcmp(c->certs[k].id, cid) != 0)
                k++;
        }
        if (k == c->ncerts)
            continue;
        sni_entry *s = &c->snis[c->nsnis++];
        size_t n = strlen(name);
        if (n > 2 && name[0] == '*' && name[1] == '.') {
            s->kind = 1;
            s->name = strdup(name + 1);
        } else if (n > 2 && name[n - 1] == '*' && name[n - 2] == '.') {
            s->kind = 2;
            s->name = strndup(name, n - 1);
        } else {
            s->name = strdup(name);
        }
        for (char *p = s->name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        s->cert = k;
    }
    free(by_id);
    return c;
}

void dp_certs_free(dp_certs *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ncerts; i++) {
        cert_entry *e = &c->certs[i];
        free(e->id);
        X509_free(e->cert);
        EVP_PKEY_free(e->key);
        X509_free(e->cert_alt);
        EVP_PKEY_free(e->key_alt);
        if (e->chain)
            sk_X509_pop_free(e->chain, X509_free);
    }
    for (size_t i = 0; i < c->nsnis; i++)
        free(c->snis[i].name);
    free(c->certs);
    free(c->snis);
    free(c);
}

SSL_CTX *dp_tls_client_ctx_new(int verify, const json_t *ca_pems, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_err(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    size_t n = json_is_array(ca_pems) ? json_array_size(ca_pems) : 0;
    if (!n) {
        SSL_CTX_set_default_verify_paths(ctx);
        return ctx;
    }
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    for (size_t i = 0; i < n; i++) {
        const char *pem = json_string_value(json_array_get(ca_pems, i));
        BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
        X509 *x;
        int added = 0;
        while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
            X509_STORE_add_cert(st, x);
            X509_free(x);
            added++;
        }
        ERR_clear_error();
        BIO_free(b);
        if (!added) {
            snprintf(err, errlen, "ca_certificates: no certificate in PEM");
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

void dp_tls_cleanup(void)
{
    X509_free(default_cert);
    EVP_PKEY_free(default_key);
    default_cert = NULL;
    default_key = NULL;
}
