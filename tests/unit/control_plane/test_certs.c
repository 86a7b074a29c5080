/* `sluice-cp certs generate`: the files an operator gets, their modes, what the certificate
 * says, and that existing files are never overwritten. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "control_plane/cluster/certs.h"

static char tmpdir[64];

static int setup(void **state)
{
    strcpy(tmpdir, "/tmp/sluice-certs-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs `certs generate --out dir` with stdout/stderr captured into out/errtext. */
static int run_generate(const char *dir, char *out, size_t outlen, char *errtext, size_t errlen)
{
    char *argv[] = {"certs", "generate", "--out", (char *)dir, NULL};
    char opath[96], epath[96];
    snprintf(opath, sizeof(opath), "%s/.stdout", tmpdir);
    snprintf(epath, sizeof(epath), "%s/.stderr", tmpdir);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = cp_certs_main(4, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    FILE *f = fopen(opath, "r");
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    fclose(f);
    f = fopen(epath, "r");
    n = fread(errtext, 1, errlen - 1, f);
    errtext[n] = '\0';
    fclose(f);
    unlink(opath);
    unlink(epath);
    return rc;
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void test_generates_p384_self_signed(void **state)
{
    char dir[128], crt_path[160], key_path[160], out[1024], errtext[1024];
    snprintf(dir, sizeof(dir), "%s/new/nested", tmpdir);
    snprintf(crt_path, sizeof(crt_path), "%s/cluster.crt", dir);
    snprintf(key_path, sizeof(key_path), "%s/cluster.key", dir);

    /* A restrictive umask must not change the contract's modes. */
    mode_t old = umask(077);
    int rc = run_generate(dir, out, sizeof(out), errtext, sizeof(errtext));
    umask(old);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, crt_path));
    assert_non_null(strstr(out, key_path));
    assert_int_equal(file_mode(key_path), 0600);
    assert_int_equal(file_mode(crt_path), 0644);

    FILE *f = fopen(crt_path, "r");
    assert_non_null(f);
    X509 *crt = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(crt);
    f = fopen(key_path, "r");
    assert_non_null(f);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(key);

    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(crt), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "sluice_cluster");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(crt), X509_get_issuer_name(crt)), 0);

    char group[64] = "";
    size_t glen = 0;
    assert_true(EVP_PKEY_get_group_name(key, group, sizeof(group), &glen));
    assert_string_equal(group, "secp384r1");
    assert_int_equal(X509_check_private_key(crt, key), 1);
    EVP_PKEY *pub = X509_get0_pubkey(crt);
    assert_int_equal(X509_verify(crt, pub), 1); /* self-signed */

    /* Valid from now for 1095 days (within a minute of the run). */
    int days = 0, secs = 0;
    assert_true(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(crt), X509_get0_notAfter(crt)));
    assert_int_equal(days, 1095);
    time_t now = time(NULL);
    assert_true(X509_cmp_time(X509_get0_notBefore(crt), &now) <= 0);

    /* It verifies against itself for both TLS roles, as shared mode needs. */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, crt);
    int purposes[] = {X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT};
    for (int i = 0; i < 2; i++) {
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        X509_STORE_CTX_init(ctx, store, crt, NULL);
        X509_STORE_CTX_set_purpose(ctx, purposes[i]);
        assert_int_equal(X509_verify_cert(ctx), 1);
        X509_STORE_CTX_free(ctx);
    }
    X509_STORE_free(store);
    X509_free(crt);
    EVP_PKEY_free(key);
}

static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void test_never_overwrites(void **state)
{
    char crt_path[128], key_path[128], out[1024], errtext[1024];
    char before_crt[4096], before_key[4096], after[4096];
    snprintf(crt_path, sizeof(crt_path), "%s/cluster.crt", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/cluster.key", tmpdir);
    assert_int_equal(run_generate(tmpdir, out, sizeof(out), errtext, sizeof(errtext)), 0);
    read_file(crt_path, before_crt, sizeof(before_crt));
    read_file(key_path, before_key, sizeof(before_key));

    assert_int_equal(run_generate(tmpdir, out, sizeof(out), errtext, sizeof(errtext)), 1);
    assert_non_null(strstr(errtext, "already exists"));
    assert_non_null(strstr(errtext, tmpdir));
    read_file(crt_path, after, sizeof(after));
    assert_string_equal(after, before_crt);
    read_file(key_path, after, sizeof(after));
    assert_string_equal(after, before_key);

    /* Only the key there (say, the certificate was deleted): still refused, naming the key,
     * and no certificate appears that would not match it. */
    unlink(crt_path);
    assert_int_equal(run_generate(tmpdir, out, sizeof(out), errtext, sizeof(errtext)), 1);
    assert_non_null(strstr(errtext, key_path));
    assert_int_equal(access(crt_path, F_OK), -1);
    read_file(key_path, after, sizeof(after));
    assert_string_equal(after, before_key);
}

static void test_usage_errors(void **state)
{
    char *no_out[] = {"certs", "generate", NULL};
    char *bad_sub[] = {"certs", "rotate", "--out", tmpdir, NULL};
    char *bad_days[] = {"certs", "generate", "--out", tmpdir, "--days", "0", NULL};
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    int a = cp_certs_main(2, no_out);
    int b = cp_certs_main(4, bad_sub);
    int c = cp_certs_main(6, bad_days);
    fclose(stderr);
    stderr = saved;
    assert_int_equal(a, 1);
    assert_int_equal(b, 1);
    assert_int_equal(c, 1);
    char crt_path[128];
    snprintf(crt_path, sizeof(crt_path), "%s/cluster.crt", tmpdir);
    assert_int_equal(access(crt_path, F_OK), -1);
}

static void test_out_is_a_file(void **state)
{
    char path[128], out[512], errtext[512];
    snprintf(path, sizeof(path), "%s/plainfile", tmpdir);
    FILE *f = fopen(path, "w");
    fclose(f);
    assert_int_equal(run_generate(path, out, sizeof(out), errtext, sizeof(errtext)), 1);
    assert_non_null(strstr(errtext, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generates_p384_self_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_is_a_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
