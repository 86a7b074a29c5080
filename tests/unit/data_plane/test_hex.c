/* dp_hex_u64: the digits request ids are made of, checked against printf for edge values and
 * a spread of others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <inttypes.h>

#include "data_plane/util/hex.h"

static void check(uint64_t v)
{
    char want[17], got[18];
    snprintf(want, sizeof(want), "%016" PRIx64, v);
    memset(got, '#', sizeof(got));
    dp_hex_u64(got, v);
    assert_int_equal(got[16], '#'); /* exactly 16 bytes written */
    got[16] = 0;
    assert_string_equal(got, want);
}

static void test_edges(void **state)
{
    check(0);
    check(UINT64_MAX);
    check(0x0123456789abcdefull);
    check(0xfedcba9876543210ull);
    check(0x9a9a9a9a9a9a9a9aull); /* digits on both sides of the 9/a boundary */
    check(0x00000000ffffffffull);
    check(0xffffffff00000000ull);
}

static void test_spread(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
