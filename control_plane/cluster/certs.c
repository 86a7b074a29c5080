#include "control_plane/cluster/certs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static void ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown OpenSSL error");
    ERR_clear_error();
}

/* mkdir -p: creates each missing component of dir. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path)) {
        snprintf(err, errlen, "bad output directory '%s'", dir);
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
            return -1;
        }
        path[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    return 0;
}

static int add_ext(X509 *crt, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, crt, crt, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(crt, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A self-signed certificate for key. The same certificate is the server's, the client's and
 * the trust anchor in shared mode, so it is marked as a CA usable for both TLS roles (what
 * `openssl req -x509` would make), and names sluice_cluster as its DNS name for SNI checks. */
static X509 *make_cert(EVP_PKEY *key, int days)
{
    X509 *crt = X509_new();
    X509_NAME *name = NULL;
    BIGNUM *bn = BN_new();
    int ok = crt && bn && X509_set_version(crt, 2) && BN_rand(bn, 127, BN_RAND_TOP_ANY, 0) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt)) &&
             X509_gmtime_adj(X509_getm_notBefore(crt), 0) &&
             X509_time_adj_ex(X509_getm_notAfter(crt), days, 0, NULL) &&
             X509_set_pubkey(crt, key) && (name = X509_get_subject_name(crt)) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)CP_CERTS_CN, -1, -1, 0) &&
             X509_set_issuer_name(crt, name) &&
             add_ext(crt, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
             add_ext(crt, NID_key_usage, "critical,digitalSignature,keyCertSign") == 0 &&
             add_ext(crt, NID_ext_key_usage, "serverAuth,clientAuth") == 0 &&
             add_ext(crt, NID_subject_alt_name, "DNS:" CP_CERTS_CN) == 0 &&
             add_ext(crt, NID_subject_key_identifier, "hash") == 0 &&
             add_ext(crt, NID_authority_key_identifier, "keyid:always") == 0 &&
             X509_sign(crt, key, EVP_sha384()) > 0;
    BN_free(bn);
    if (!ok) {
        X509_free(crt);
        return NULL;
    }
    return crt;
}

/* Creates path exclusively with mode, and writes with writer. On failure removes what it
 * created. */
static int write_new(const char *path, mode_t mode, int (*writer)(FILE *, void *), void *arg,
                     char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            snprintf(err, errlen, "%s already exists; not overwriting it", path);
        else
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    /* The umask may have removed bits; the modes are part of the contract. */
    if (fchmod(fd, mode) != 0) {
        snprintf(err, errlen, "cannot set mode of %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    int ok = writer(f, arg) == 0;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        snprintf(err, errlen, "cannot write %s", path);
        unlink(path);
        return -1;
    }
    return 0;
}

static int write_key(FILE *f, void *key)
{
    return PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) ? 0 : -1;
}

static int write_cert(FILE *f, void *crt)
{
    return PEM_write_X509(f, crt) ? 0 : -1;
}

int cp_certs_generate(const char *dir, int days, char *fingerprint, char *err, size_t errlen)
{
    char crt_path[PATH_MAX], key_path[PATH_MAX];
    if (snprintf(crt_path, sizeof(crt_path), "%s/cluster.crt", dir) >= (int)sizeof(crt_path) ||
        snprintf(key_path, sizeof(key_path), "%s/cluster.key", dir) >= (int)sizeof(key_path)) {
        snprintf(err, errlen, "output directory path too long");
        return -1;
    }
    /* Check both before writing either, so a refusal leaves nothing behind; O_EXCL below
     * still settles a race with another writer. */
    const char *paths[2] = {crt_path, key_path};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (lstat(paths[i], &st) == 0) {
            snprintf(err, errlen, "%s already exists; not overwriting it", paths[i]);
            return -1;
        }
    }
    if (make_dirs(dir, err, errlen))
        return -1;

    char reason[256];
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!key) {
        ssl_reason(reason, sizeof(reason));
        snprintf(err, errlen, "cannot generate an EC P-384 key: %s", reason);
        return -1;
    }
    X509 *crt = make_cert(key, days);
    if (!crt) {
        ssl_reason(reason, sizeof(reason));
        snprintf(err, errlen, "cannot build the certificate: %s", reason);
        EVP_PKEY_free(key);
        return -1;
    }
    int rc = -1;
    if (write_new(key_path, 0600, write_key, key, err, errlen) == 0) {
        if (write_new(crt_path, 0644, write_cert, crt, err, errlen) == 0)
            rc = 0;
        else
            unlink(key_path); /* a key without its certificate is of no use */
    }
    if (rc == 0 && fingerprint) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        fingerprint[0] = '\0';
        if (X509_digest(crt, EVP_sha256(), md, &mdlen))
            for (unsigned i = 0; i < mdlen; i++)
                sprintf(fingerprint + 3 * i, i + 1 < mdlen ? "%02X:" : "%02X", md[i]);
    }
    X509_free(crt);
    EVP_PKEY_free(key);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sluice-cp certs generate --out DIR [--days N]\n"
            "\n"
            "Writes DIR/cluster.crt and DIR/cluster.key for cluster_mtls = shared: an EC\n"
            "P-384 key (mode 0600) and a self-signed certificate (CN " CP_CERTS_CN
            ", valid N days,\n"
            "default %d). DIR is created if missing. Existing files are never overwritten.\n"
            "Point cluster_cert and cluster_cert_key at them on the control plane and on\n"
            "every data plane.\n",
            CP_CERTS_DAYS);
}

int cp_certs_main(int argc, char **argv)
{
    const char *out = NULL;
    int days = CP_CERTS_DAYS;
    int i = 1;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    if (argc < 2 || strcmp(argv[1], "generate") != 0) {
        fprintf(stderr, "Error: %s%s\n\n", argc < 2 ? "missing subcommand" : "unknown subcommand ",
                argc < 2 ? "" : argv[1]);
        usage(stderr);
        return 1;
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strncmp(argv[i], "--out=", 6) == 0) {
            out = argv[i] + 6;
        } else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            long d = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || d < 1 || d > 36500) {
                fprintf(stderr, "Error: --days must be a number of days from 1 to 36500\n");
                return 1;
            }
            days = (int)d;
        } else {
            fprintf(stderr, "Error: unexpected argument '%s'\n\n", argv[i]);
            usage(stderr);
            return 1;
        }
    }
    if (!out || !*out) {
        fprintf(stderr, "Error: --out DIR is required\n\n");
        usage(stderr);
        return 1;
    }
    char err[PATH_MAX + 256], fp[128];
    if (cp_certs_generate(out, days, fp, err, sizeof(err))) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    printf("wrote %s/cluster.crt (EC P-384, CN %s, valid %d days, mode 0644)\n"
           "wrote %s/cluster.key (mode 0600)\n"
           "certificate sha256 fingerprint: %s\n",
           out, CP_CERTS_CN, days, out, fp);
    return 0;
}
