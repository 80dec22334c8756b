/* The KV key escape: reversible, and never a key NATS would refuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <es/kvkey.h>

static void escapes_as_documented(void **state)
{
    (void)state;
    char out[256];
    size_t n;
    assert_int_equal(es_kv_key_escape("did:plc:abc-_9", 14, out, sizeof out, &n), ES_OK);
    assert_string_equal(out, "did=3Aplc=3Aabc-_9");
    assert_int_equal(n, strlen(out));
    assert_int_equal(es_kv_key_escape("a.b/c=d e", 9, out, sizeof out, NULL), ES_OK);
    assert_string_equal(out, "a=2Eb=2Fc=3Dd=20e");
    assert_int_equal(es_kv_key_escape("\xc3\xa9\x00", 3, out, sizeof out, NULL), ES_OK);
    assert_string_equal(out, "=C3=A9=00");
}

static void every_byte_round_trips_into_a_valid_key(void **state)
{
    (void)state;
    char in[256], key[3 * 256 + 1], back[257];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    size_t n, m;
    assert_int_equal(es_kv_key_escape(in, 256, key, sizeof key, &n), ES_OK);
    assert_true(es_kv_key_valid(key));
    assert_null(strchr(key, '.'));
    assert_null(strchr(key, '/'));
    assert_int_equal(es_kv_key_unescape(key, n, back, sizeof back, &m), ES_OK);
    assert_int_equal(m, 256);
    assert_memory_equal(back, in, 256);
}

static void random_inputs_round_trip(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 2000; round++) {
        char in[48], key[3 * 48 + 1], back[49];
        size_t len = (size_t)(rand() % 47) + 1, n, m;
        for (size_t i = 0; i < len; i++)
            in[i] = (char)(rand() % 256);
        assert_int_equal(es_kv_key_escape(in, len, key, sizeof key, &n), ES_OK);
        assert_true(es_kv_key_valid(key));
        assert_int_equal(es_kv_key_unescape(key, n, back, sizeof back, &m), ES_OK);
        assert_int_equal(m, len);
        assert_memory_equal(back, in, len);
    }
}

static void refuses_bad_input(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(es_kv_key_escape("", 0, out, sizeof out, NULL), ES_ERR_INVALID);
    assert_int_equal(es_kv_key_escape(NULL, 3, out, sizeof out, NULL), ES_ERR_INVALID);
    assert_int_equal(es_kv_key_escape("::::::", 6, out, sizeof out, NULL), ES_ERR_LIMIT);
    assert_int_equal(es_kv_key_escape("abc", 3, out, 3, NULL), ES_ERR_LIMIT);
    const char *bad[] = {"=", "=4", "=4G", "=3a", "a.b", "a/b", "=41" /* 'A' passes raw */, "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(es_kv_key_unescape(bad[i], strlen(bad[i]), out, sizeof out, NULL),
                         ES_ERR_INVALID);
    assert_int_equal(es_kv_key_unescape("abcdefghijklmnopq", 17, out, sizeof out, NULL),
                     ES_ERR_LIMIT);
}

static void validates_keys_as_nats_does(void **state)
{
    (void)state;
    const char *good[] = {"a", "a.b", "a/b=c_d-e", "post.did=3Aplc=3Ax", "0"};
    const char *bad[] = {"", ".a", "a.", "a..b", "a b", "a:b", "a*", "a>", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(es_kv_key_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(es_kv_key_valid(bad[i]));
    assert_false(es_kv_key_valid(NULL));
    char longkey[ES_KV_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_false(es_kv_key_valid(longkey));
    longkey[ES_KV_KEY_MAX] = '\0';
    assert_true(es_kv_key_valid(longkey));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_as_documented),
        cmocka_unit_test(every_byte_round_trips_into_a_valid_key),
        cmocka_unit_test(random_inputs_round_trip),
        cmocka_unit_test(refuses_bad_input),
        cmocka_unit_test(validates_keys_as_nats_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
