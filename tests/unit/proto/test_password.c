/* Password hashes for basic-auth: format, verification, salting, and refusal of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/password.h"

static void test_hash_format_and_verify(void **state)
{
    char h[SL_PASSWORD_HASH_MAX];
    assert_int_equal(sl_password_hash("s3cret!", h, sizeof h), 0);
    assert_true(strncmp(h, "$pbkdf2-sha256$4096$", 20) == 0);
    assert_true(sl_password_is_hash(h));
    assert_true(sl_password_verify("s3cret!", h));
    assert_false(sl_password_verify("s3cret", h));
    assert_false(sl_password_verify("s3cret!!", h));
    assert_false(sl_password_verify("", h));
}

static void test_salted(void **state)
{
    char a[SL_PASSWORD_HASH_MAX], b[SL_PASSWORD_HASH_MAX];
    assert_int_equal(sl_password_hash("same", a, sizeof a), 0);
    assert_int_equal(sl_password_hash("same", b, sizeof b), 0);
    assert_string_not_equal(a, b);
    assert_true(sl_password_verify("same", a));
    assert_true(sl_password_verify("same", b));
}

static void test_empty_password(void **state)
{
    char h[SL_PASSWORD_HASH_MAX];
    assert_int_equal(sl_password_hash("", h, sizeof h), 0);
    assert_true(sl_password_verify("", h));
    assert_false(sl_password_verify("x", h));
}

static void test_refusals(void **state)
{
    char h[SL_PASSWORD_HASH_MAX], small[20], big[SL_PASSWORD_MAX_LEN + 2];
    assert_int_equal(sl_password_hash("pw", small, sizeof small), -1);
    assert_string_equal(small, "");
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sl_password_hash(big, h, sizeof h), -1);

    assert_int_equal(sl_password_hash("pw", h, sizeof h), 0);
    /* a plain string is never a hash and never matches itself as a stored value */
    assert_false(sl_password_is_hash("pw"));
    assert_false(sl_password_verify("pw", "pw"));
    assert_false(sl_password_verify("pw", NULL));
    /* tampering with any part makes it fail */
    char t[SL_PASSWORD_HASH_MAX];
    strcpy(t, h);
    t[strlen(t) - 3] = t[strlen(t) - 3] == 'A' ? 'B' : 'A';
    assert_false(sl_password_verify("pw", t));
    /* iteration counts outside 1..1000000 are refused (bounded work for stored values) */
    const char *salt_hash = strchr(h + strlen("$pbkdf2-sha256$"), '$');
    snprintf(t, sizeof t, "$pbkdf2-sha256$0%s", salt_hash);
    assert_false(sl_password_is_hash(t));
    snprintf(t, sizeof t, "$pbkdf2-sha256$99999999%s", salt_hash);
    assert_false(sl_password_is_hash(t));
    assert_false(sl_password_verify("pw", t));
    snprintf(t, sizeof t, "$pbkdf2-sha256$4096$!!!!$AAAA");
    assert_false(sl_password_is_hash(t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_format_and_verify),
        cmocka_unit_test(test_salted),
        cmocka_unit_test(test_empty_password),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
