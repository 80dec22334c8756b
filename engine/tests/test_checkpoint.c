/* The stored form of checkpoints and checkpoint names (no server). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <es/checkpoint.h>

#include "checkpoint_impl.h"

static void round_trips(void **state)
{
    (void)state;
    es_buf b = ES_BUF_INIT;
    assert_int_equal(esi_checkpoint_encode(1234567890123ULL,
                                          "{ \"relay\" : \"wss://x\", \"n\": [1, 2] }",
                                          1700000000123456789LL, &b),
                     ES_OK);
    assert_int_equal(es_buf_append_byte(&b, 0), ES_OK); /* for strstr */
    b.len--;
    assert_non_null(strstr((const char *)b.data, "\"position\":1234567890123"));
    es_checkpoint cp = {.revision = 42};
    assert_int_equal(esi_checkpoint_decode(b.data, b.len, &cp), ES_OK);
    assert_int_equal(cp.position, 1234567890123ULL);
    assert_int_equal(cp.time_ns, 1700000000123456789LL);
    assert_int_equal(cp.revision, 42);
    assert_string_equal(cp.data, "{\"relay\":\"wss://x\",\"n\":[1,2]}");
    assert_int_equal(cp.data_len, strlen(cp.data));
    es_checkpoint_clear(&cp);
    assert_null(cp.data);

    es_buf_clear(&b);
    assert_int_equal(esi_checkpoint_encode(0, NULL, 1, &b), ES_OK);
    assert_int_equal(esi_checkpoint_decode(b.data, b.len, &cp), ES_OK);
    assert_int_equal(cp.position, 0);
    assert_null(cp.data);
    es_checkpoint_clear(&cp);

    es_buf_clear(&b); /* any JSON value is a blob, not only objects */
    assert_int_equal(esi_checkpoint_encode(5, "\"text\"", 1, &b), ES_OK);
    assert_int_equal(esi_checkpoint_decode(b.data, b.len, &cp), ES_OK);
    assert_string_equal(cp.data, "\"text\"");
    es_checkpoint_clear(&cp);
    es_buf_free(&b);
}

static void refuses_bad_writes(void **state)
{
    (void)state;
    es_buf b = ES_BUF_INIT;
    assert_int_equal(esi_checkpoint_encode(1, "{not json", 1, &b), ES_ERR_INVALID);
    assert_int_equal(esi_checkpoint_encode((uint64_t)INT64_MAX + 1, NULL, 1, &b), ES_ERR_INVALID);
    char *big = malloc(ES_CHECKPOINT_DATA_MAX + 3);
    big[0] = '"';
    memset(big + 1, 'x', ES_CHECKPOINT_DATA_MAX);
    strcpy(big + 1 + ES_CHECKPOINT_DATA_MAX, "\"");
    assert_int_equal(esi_checkpoint_encode(1, big, 1, &b), ES_ERR_INVALID);
    free(big);
    assert_int_equal(b.len, 0);
    es_buf_free(&b);
}

static void refuses_hostile_values(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "null",
        "[1,2]",
        "{}",
        "{\"position\":-1}",
        "{\"position\":\"12\"}",
        "{\"position\":1.5}",
        "{\"position\":99999999999999999999999}",
        "{\"position\":1,\"time\":7}",
        "{\"position\":1,\"time\":\"yesterday\"}",
        "{\"position\":1,\"position\":2}",
        "{\"position\":1",
        "\xff\xfe",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_checkpoint cp;
        assert_int_equal(esi_checkpoint_decode(bad[i], strlen(bad[i]), &cp), ES_ERR_DECODE);
        assert_null(cp.data);
    }
    /* Deep nesting and oversized values are refused, not crashed on. */
    size_t n = 100000;
    char *deep = malloc(n + 32);
    strcpy(deep, "{\"position\":1,\"data\":");
    size_t off = strlen(deep);
    memset(deep + off, '[', n - off);
    es_checkpoint cp;
    assert_int_equal(esi_checkpoint_decode(deep, n, &cp), ES_ERR_DECODE);
    free(deep);
}

static void validates_names(void **state)
{
    (void)state;
    assert_true(esi_checkpoint_name_valid("relay", false));
    assert_true(esi_checkpoint_name_valid("ingest.bsky-1/cursor=a_b", false));
    assert_false(esi_checkpoint_name_valid("", false));
    assert_false(esi_checkpoint_name_valid(NULL, false));
    assert_false(esi_checkpoint_name_valid(".a", false));
    assert_false(esi_checkpoint_name_valid("a.", false));
    assert_false(esi_checkpoint_name_valid("a..b", false));
    assert_false(esi_checkpoint_name_valid("a b", false));
    assert_false(esi_checkpoint_name_valid("did:plc:x", false));
    assert_false(esi_checkpoint_name_valid("a.*", false));
    assert_true(esi_checkpoint_name_valid("a.*", true));
    assert_true(esi_checkpoint_name_valid("a.>", true));
    assert_true(esi_checkpoint_name_valid(">", true));
    assert_false(esi_checkpoint_name_valid(">.a", true));
    assert_false(esi_checkpoint_name_valid("a*", true));
    char longname[ES_CHECKPOINT_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(esi_checkpoint_name_valid(longname, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips),
        cmocka_unit_test(refuses_bad_writes),
        cmocka_unit_test(refuses_hostile_values),
        cmocka_unit_test(validates_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
