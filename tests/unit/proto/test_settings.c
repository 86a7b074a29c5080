/* Settings: defaults, file, environment precedence, and refusals that name the setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/settings.h"

static char conf_path[64];

static void write_conf(const char *text)
{
    strcpy(conf_path, "/tmp/sluice-settings-XXXXXX");
    int fd = mkstemp(conf_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_defaults(void **state)
{
    sl_settings s;
    char err[256];
    assert_int_equal(sl_settings_load(&s, NULL, err, sizeof(err)), 0);
    assert_string_equal(sl_settings_get(&s, "admin_listen"), "127.0.0.1:8001");
    assert_string_equal(sl_settings_get(&s, "proxy_listen"), "0.0.0.0:8000, 0.0.0.0:8443 ssl");
    assert_int_equal(sl_settings_int(&s, "pg_port"), 5432);
    assert_null(sl_settings_get(&s, "pg_password"));
    sl_settings_free(&s);
}

static void test_file_then_env(void **state)
{
    write_conf("# comment\npg_host = db.internal  # trailing comment\npg_port=6543\n\n");
    setenv("SLUICE_PG_PORT", "7000", 1);
    sl_settings s;
    char err[256];
    assert_int_equal(sl_settings_load(&s, conf_path, err, sizeof(err)), 0);
    assert_string_equal(sl_settings_get(&s, "pg_host"), "db.internal");
    assert_int_equal(sl_settings_int(&s, "pg_port"), 7000);
    unsetenv("SLUICE_PG_PORT");
    sl_settings_free(&s);
    unlink(conf_path);
}

static void test_unknown_name_in_file(void **state)
{
    write_conf("pg_hots = x\n");
    sl_settings s;
    char err[256];
    assert_int_equal(sl_settings_load(&s, conf_path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "pg_hots"));
    assert_non_null(strstr(err, ":1:"));
    sl_settings_free(&s);
    unlink(conf_path);
}

static void test_bad_values_named(void **state)
{
    sl_settings s;
    char err[256];
    setenv("SLUICE_PG_PORT", "abc", 1);
    assert_int_equal(sl_settings_load(&s, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "pg_port"));
    unsetenv("SLUICE_PG_PORT");
    sl_settings_free(&s);

    setenv("SLUICE_CLUSTER_MTLS", "none", 1);
    assert_int_equal(sl_settings_load(&s, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cluster_mtls"));
    assert_non_null(strstr(err, "shared, pki"));
    unsetenv("SLUICE_CLUSTER_MTLS");
    sl_settings_free(&s);

    setenv("SLUICE_ADMIN_LISTEN", "127.0.0.1:8001 tls", 1);
    assert_int_equal(sl_settings_load(&s, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "admin_listen"));
    unsetenv("SLUICE_ADMIN_LISTEN");
    sl_settings_free(&s);
}

static void test_unknown_env_refused_but_kubernetes_links_ignored(void **state)
{
    sl_settings s;
    char err[256];
    setenv("SLUICE_CP_SERVICE_HOST", "10.0.0.1", 1);
    setenv("SLUICE_CP_PORT_8001_TCP", "tcp://10.0.0.1:8001", 1);
    assert_int_equal(sl_settings_load(&s, NULL, err, sizeof(err)), 0);
    sl_settings_free(&s);
    setenv("SLUICE_PG_HOTS", "x", 1);
    assert_int_equal(sl_settings_load(&s, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "pg_hots"));
    unsetenv("SLUICE_PG_HOTS");
    unsetenv("SLUICE_CP_SERVICE_HOST");
    unsetenv("SLUICE_CP_PORT_8001_TCP");
    sl_settings_free(&s);
}

static void test_listen_parse(void **state)
{
    sl_listen_addr a[4];
    char err[128];
    int n = sl_listen_parse("0.0.0.0:8000, [::1]:8443 ssl", a, 4, err, sizeof(err));
    assert_int_equal(n, 2);
    assert_string_equal(a[0].host, "0.0.0.0");
    assert_int_equal(a[0].port, 8000);
    assert_int_equal(a[0].ssl, 0);
    assert_string_equal(a[1].host, "::1");
    assert_int_equal(a[1].port, 8443);
    assert_int_equal(a[1].ssl, 1);
    assert_int_equal(sl_listen_parse("localhost:99999", a, 4, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_then_env),
        cmocka_unit_test(test_unknown_name_in_file),
        cmocka_unit_test(test_bad_values_named),
        cmocka_unit_test(test_unknown_env_refused_but_kubernetes_links_ignored),
        cmocka_unit_test(test_listen_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
