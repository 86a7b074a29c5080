/* Field values of every length and with the byte of interest at every position (the value scan
 * takes eight bytes at a time): an HTAB anywhere is part of the value, a control byte or DEL
 * anywhere refuses the message, and the value handed over is exactly the bytes between the
 * colon's whitespace and the trailing whitespace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "data_plane/http/h1.h"

static dp_h1 h;

/* Parses a request whose X-V header has value v (len bytes, then "  \r\n"). */
static dp_h1_result parse_with_value(const char *v, size_t len, dp_h1_type type)
{
    static char raw[512];
    const char *start = type == DP_H1_REQUEST ? "GET / HTTP/1.1\r\nHost: a\r\nX-V: "
                                              : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-V: ";
    size_t n = strlen(start);
    memcpy(raw, start, n);
    memcpy(raw + n, v, len);
    n += len;
    memcpy(raw + n, " \t\r\nX-After: 1\r\n\r\n", 18);
    n += 18;
    dp_h1_init(&h, type, NULL, NULL, NULL);
    size_t used;
    return dp_h1_execute(&h, raw, n, &used);
}

static void check_value(const char *v, size_t len, dp_h1_type type)
{
    assert_int_equal(parse_with_value(v, len, type), DP_H1_OK);
    assert_true(h.head_complete);
    const dp_header *x = dp_h1_find(&h.head, "x-v");
    assert_non_null(x);
    assert_int_equal(x->value.len, len);
    assert_memory_equal(x->value.p, v, len);
    const dp_header *after = dp_h1_find(&h.head, "x-after");
    assert_non_null(after);
    assert_int_equal(after->value.len, 1);
}

static void test_tabs_anywhere_are_kept(void **st)
{
    for (int type = 0; type < 2; type++)
        for (size_t len = 1; len <= 40; len++)
            for (size_t at = 0; at + 1 < len; at++) { /* not last: trailing HTAB is trimmed */
                char v[64];
                memset(v, 'v', len);
                v[at] = '\t';
                if (at == 0) /* leading whitespace is not part of the value */
                    continue;
                check_value(v, len, (dp_h1_type)type);
            }
}

static void test_plain_values_of_every_length(void **st)
{
    for (int type = 0; type < 2; type++)
        for (size_t len = 1; len <= 64; len++) {
            char v[80];
            for (size_t i = 0; i < len; i++)
                v[i] = (char)('!' + (i * 7) % 94); /* visible bytes, '!'..'~' */
            check_value(v, len, (dp_h1_type)type);
        }
}

static void test_control_bytes_anywhere_are_refused(void **st)
{
    static const unsigned char bad[] = {0x00, 0x01, 0x08, 0x0b, 0x1f, 0x7f, '\r', '\n'};
    for (int type = 0; type < 2; type++)
        for (size_t len = 2; len <= 24; len++)
            for (size_t at = 1; at + 1 < len; at++)
                for (size_t b = 0; b < sizeof(bad); b++) {
                    char v[32];
                    memset(v, 'v', len);
                    v[at] = (char)bad[b];
                    assert_int_equal(parse_with_value(v, len, (dp_h1_type)type), DP_H1_ERROR);
                    assert_int_equal(h.error_status, type == DP_H1_REQUEST ? 400 : 502);
                }
}

/* Bytes from 0x80 up (obs-text) are allowed in values. */
static void test_high_bytes_are_kept(void **st)
{
    char v[40];
    for (size_t i = 0; i < sizeof(v); i++)
        v[i] = (char)(0x80 + i * 3);
    check_value(v, sizeof(v), DP_H1_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tabs_anywhere_are_kept),
        cmocka_unit_test(test_plain_values_of_every_length),
        cmocka_unit_test(test_control_bytes_anywhere_are_refused),
        cmocka_unit_test(test_high_bytes_are_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
