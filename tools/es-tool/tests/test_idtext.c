/* How es-tool prints entity ids (idtext.h): raw, shell-quoted when needed,
 * in a form bash reads back to the same bytes; and which ids look escaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "idtext.h"

static void assert_display(const char *id, size_t len, const char *want)
{
    es_buf b = ES_BUF_INIT;
    tool_append_display_id(&b, id, len);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("id of %zu bytes: printed %.*s, expected %s", len, (int)b.len,
                 (const char *)b.data, want);
    es_buf_free(&b);
}

#define DISPLAY(lit, want) assert_display(lit, sizeof lit - 1, want)

static void test_display_forms(void **state)
{
    (void)state;
    DISPLAY("acc-42", "acc-42");
    DISPLAY("did:plc:abc/x@y.z%^+=,", "did:plc:abc/x@y.z%^+=,");
    DISPLAY("acc 43.x", "'acc 43.x'");
    DISPLAY("it's", "'it'\\''s'");
    DISPLAY("~home", "'~home'");
    DISPLAY("#1", "'#1'");
    DISPLAY("$HOME", "'$HOME'");
    DISPLAY("\xc3\xa9l\xc3\xa8ve", "'\xc3\xa9l\xc3\xa8ve'"); /* printable UTF-8 */
    DISPLAY("x y\x01z", "$'x y\\x01z'");
    DISPLAY("a\nb\tc\rd", "$'a\\nb\\tc\\rd'");
    DISPLAY("back\\slash\x7f", "$'back\\\\slash\\x7F'");
    DISPLAY("q'\x01", "$'q\\'\\x01'");
    DISPLAY("ab\xff"
            "c",
            "$'ab\\xFFc'");                        /* not UTF-8 */
    DISPLAY("\xc2\x85", "$'\\xC2\\x85'");          /* C1 control (NEL) */
    DISPLAY("\xc0\xaf", "$'\\xC0\\xAF'");          /* overlong */
    DISPLAY("\xed\xa0\x80", "$'\\xED\\xA0\\x80'"); /* surrogate */
    DISPLAY("\xe2\x82", "$'\\xE2\\x82'");          /* cut short */
    DISPLAY("\xc3\xa9\x01", "$'\xc3\xa9\\x01'");   /* UTF-8 kept within $'' */
    DISPLAY("a\0b", "$'a\\x00b'");
}

static void test_display_width(void **state)
{
    (void)state;
    es_buf b = ES_BUF_INIT;
    es_buf_append_str(&b, "xx");
    tool_append_display_id(&b, "\xc3\xa9t\xc3\xa9 x", 7);
    assert_int_equal(tool_display_width(&b, 2), 7); /* 'été x' */
    es_buf_free(&b);
}

static void test_looks_escaped(void **state)
{
    (void)state;
    assert_true(tool_id_looks_escaped("acc%2043%2Ex"));
    assert_true(tool_id_looks_escaped("50%25"));
    assert_true(tool_id_looks_escaped("a%3Eb"));
    assert_true(tool_id_looks_escaped("%7F"));
    assert_true(tool_id_looks_escaped("%C3%A9"));
    assert_false(tool_id_looks_escaped("acc-42"));
    assert_false(tool_id_looks_escaped("100%"));
    assert_false(tool_id_looks_escaped("a%2e"));  /* lower case: not the library's */
    assert_false(tool_id_looks_escaped("a%41b")); /* 'A' is never escaped */
    assert_false(tool_id_looks_escaped("%2"));
    assert_false(tool_id_looks_escaped("%G0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_display_forms),
        cmocka_unit_test(test_display_width),
        cmocka_unit_test(test_looks_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
