#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/base.h>

typedef es_status (*encode_fn)(const uint8_t *, size_t, char *, size_t, size_t *);
typedef es_status (*decode_fn)(const char *, size_t, uint8_t *, size_t, size_t *);

static void check_pair(encode_fn enc, decode_fn dec, const char *raw, const char *text)
{
    char out[128];
    size_t n = 0;
    assert_int_equal(enc((const uint8_t *)raw, strlen(raw), out, sizeof out, &n), ES_OK);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(out, text, n);
    uint8_t back[128];
    assert_int_equal(dec(text, strlen(text), back, sizeof back, &n), ES_OK);
    assert_int_equal(n, strlen(raw));
    assert_memory_equal(back, raw, n);
}

static void refused(decode_fn dec, const char *text)
{
    uint8_t out[128];
    size_t n = 0;
    assert_int_equal(dec(text, strlen(text), out, sizeof out, &n), ES_ERR_DECODE);
}

/* RFC 4648 section 10 vectors (base32 in lower case, both unpadded). */
static void rfc4648_vectors(void **state)
{
    (void)state;
    static const char *raw[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *b32[] = {"", "my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb", "mzxw6ytboi"};
    static const char *b64[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        check_pair(es_base32_encode, es_base32_decode, raw[i], b32[i]);
        check_pair(es_base64_encode, es_base64_decode, raw[i], b64[i]);
        assert_int_equal(es_base32_encoded_len(strlen(raw[i])), strlen(b32[i]));
        assert_int_equal(es_base64_encoded_len(strlen(raw[i])), strlen(b64[i]));
        assert_true(es_base32_decoded_max(strlen(b32[i])) >= strlen(raw[i]));
        assert_true(es_base64_decoded_max(strlen(b64[i])) >= strlen(raw[i]));
    }
}

static void base64_padding_accepted_when_right(void **state)
{
    (void)state;
    uint8_t out[16];
    size_t n = 0;
    assert_int_equal(es_base64_decode("Zg==", 4, out, sizeof out, &n), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'f');
    assert_int_equal(es_base64_decode("Zm8=", 4, out, sizeof out, &n), ES_OK);
    assert_int_equal(n, 2);
    refused(es_base64_decode, "Zg=");
    refused(es_base64_decode, "Zg===");
    refused(es_base64_decode, "Zm8==");
    refused(es_base64_decode, "Zm9v=");
    refused(es_base64_decode, "====");
    refused(es_base64_decode, "Z=g=");
}

static void hostile_text_refused(void **state)
{
    (void)state;
    refused(es_base64_decode, "Zh");      /* non-zero trailing bits */
    refused(es_base64_decode, "Z");       /* impossible length */
    refused(es_base64_decode, "Zm9v Yg"); /* whitespace */
    refused(es_base64_decode, "Zm9v-_");  /* url-safe alphabet */
    refused(es_base32_decode, "MZXW6");   /* upper case */
    refused(es_base32_decode, "m");       /* impossible lengths */
    refused(es_base32_decode, "mzx");
    refused(es_base32_decode, "mzxw6y");
    refused(es_base32_decode, "mz");       /* trailing bits */
    refused(es_base32_decode, "my======"); /* no padding in base32 form */
    refused(es_base32_decode, "mzxw1");    /* '1' not in the alphabet */
}

static void small_buffers_refused(void **state)
{
    (void)state;
    char text[4];
    uint8_t raw[2];
    size_t n = 0;
    assert_int_equal(es_base64_encode((const uint8_t *)"foob", 4, text, sizeof text, &n),
                     ES_ERR_TOO_LARGE);
    assert_int_equal(es_base32_encode((const uint8_t *)"foo", 3, text, sizeof text, &n),
                     ES_ERR_TOO_LARGE);
    assert_int_equal(es_base64_decode("Zm9v", 4, raw, sizeof raw, &n), ES_ERR_TOO_LARGE);
    assert_int_equal(es_base32_decode("mzxw6", 5, raw, sizeof raw, &n), ES_ERR_TOO_LARGE);
}

static void round_trip_every_length(void **state)
{
    (void)state;
    uint8_t raw[96], back[96];
    char text[160];
    uint32_t x = 12345;
    for (size_t len = 0; len <= sizeof raw; len++) {
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            raw[i] = (uint8_t)(x >> 16);
        }
        size_t n = 0, m = 0;
        assert_int_equal(es_base32_encode(raw, len, text, sizeof text, &n), ES_OK);
        assert_int_equal(es_base32_decode(text, n, back, sizeof back, &m), ES_OK);
        assert_int_equal(m, len);
        assert_memory_equal(back, raw, len);
        assert_int_equal(es_base64_encode(raw, len, text, sizeof text, &n), ES_OK);
        assert_int_equal(es_base64_decode(text, n, back, sizeof back, &m), ES_OK);
        assert_int_equal(m, len);
        assert_memory_equal(back, raw, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors),
        cmocka_unit_test(base64_padding_accepted_when_right),
        cmocka_unit_test(hostile_text_refused),
        cmocka_unit_test(small_buffers_refused),
        cmocka_unit_test(round_trip_every_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
