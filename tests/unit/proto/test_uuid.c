/* UUIDs: random v4 shape and uniqueness, the validity check, and v5 against RFC 4122 values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/uuid.h"

static void test_v4_shape(void **state)
{
    char id[37];
    assert_int_equal(sl_uuid_v4(id), 0);
    assert_int_equal(strlen(id), 36);
    assert_true(sl_uuid_is_valid(id));
    assert_int_equal(id[14], '4');           /* version */
    assert_non_null(strchr("89ab", id[19])); /* RFC 4122 variant */
    for (int i = 0; i < 36; i++)             /* lower-case, as the Admin API shows ids */
        assert_false(id[i] >= 'A' && id[i] <= 'F');
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_v4_unique(void **state)
{
    enum { N = 2000 };
    char(*ids)[37] = malloc(N * 37);
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        assert_int_equal(sl_uuid_v4(ids[i]), 0);
    qsort(ids, N, 37, cmp);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void test_is_valid(void **state)
{
    assert_true(sl_uuid_is_valid("6ba7b810-9dad-11d1-80b4-00c04fd430c8"));
    assert_true(sl_uuid_is_valid("6BA7B810-9DAD-11D1-80B4-00C04FD430C8"));
    assert_false(sl_uuid_is_valid(NULL));
    assert_false(sl_uuid_is_valid(""));
    assert_false(sl_uuid_is_valid("6ba7b810-9dad-11d1-80b4-00c04fd430c"));   /* short */
    assert_false(sl_uuid_is_valid("6ba7b810-9dad-11d1-80b4-00c04fd430c8a")); /* long */
    assert_false(sl_uuid_is_valid("6ba7b8109dad-11d1-80b4-00c04fd430c8a"));  /* dash moved */
    assert_false(sl_uuid_is_valid("6ba7b810-9dad-11d1-80b4-00c04fd430cg"));  /* not hex */
    assert_false(sl_uuid_is_valid(" 6ba7b810-9dad-11d1-80b4-00c04fd430c"));
}

static void test_v5_known_values(void **state)
{
    char out[37];
    /* values from Python's uuid.uuid5 */
    assert_int_equal(sl_uuid_v5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com", out), 0);
    assert_string_equal(out, "2ed6657d-e927-568b-95e1-2665a8aea6a2");
    assert_int_equal(sl_uuid_v5("6BA7B811-9DAD-11D1-80B4-00C04FD430C8", "route#1", out), 0);
    assert_string_equal(out, "35fb5265-bdfd-5859-8753-94859f0eb3e6");
    char bad[37] = "not-a-uuid";
    assert_int_equal(sl_uuid_v5(bad, "x", out), -1);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_shape),
        cmocka_unit_test(test_v4_unique),
        cmocka_unit_test(test_is_valid),
        cmocka_unit_test(test_v5_known_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
