#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/cid.h>
#include <es/msgpack.h>

#define BYTES(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static es_arena *new_arena(void)
{
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    return a;
}

static es_value *decode_ok(es_arena *a, const uint8_t *buf, size_t len)
{
    es_value *v = NULL;
    size_t used = 0;
    es_status s = es_msgpack_decode(buf, len, 0, a, &v, &used);
    if (s != ES_OK)
        fail_msg("decode failed: %s", es_last_error());
    assert_int_equal(used, len);
    return v;
}

/* Decodes, and encoding the result gives the same bytes (shortest forms). */
static es_value *canonical(es_arena *a, const uint8_t *buf, size_t len)
{
    es_value *v = decode_ok(a, buf, len);
    es_buf out = ES_BUF_INIT;
    assert_int_equal(es_msgpack_encode(v, 0, &out), ES_OK);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, buf, len);
    es_buf_free(&out);
    return v;
}

static void refused(const uint8_t *buf, size_t len, es_status status, const char *why)
{
    es_arena *a = new_arena();
    es_value *v = (es_value *)1;
    es_status s = es_msgpack_decode(buf, len, 0, a, &v, NULL);
    if (s != status || strstr(es_last_error(), why) == NULL)
        fail_msg("expected %d with '%s', got %d: %s", status, why, s, es_last_error());
    assert_null(v);
    es_arena_destroy(a);
}

static void vectors(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    es_value *v;
    v = canonical(a, BYTES(0x05));
    assert_int_equal(v->u.i, 5);
    v = canonical(a, BYTES(0xff));
    assert_int_equal(v->u.i, -1);
    v = canonical(a, BYTES(0xd0, 0x80));
    assert_int_equal(v->u.i, -128);
    v = canonical(a, BYTES(0xcc, 0xc8));
    assert_int_equal(v->u.i, 200);
    v = canonical(a, BYTES(0xd1, 0x80, 0x00));
    assert_int_equal(v->u.i, -32768);
    v = canonical(a, BYTES(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0));
    assert_true(v->u.i == INT64_MIN);
    v = canonical(a, BYTES(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    assert_int_equal(v->kind, ES_VALUE_UINT);
    v = canonical(a, BYTES(0xc0));
    assert_int_equal(v->kind, ES_VALUE_NULL);
    v = canonical(a, BYTES(0xc3));
    assert_true(v->u.b);
    v = canonical(a, BYTES(0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0));
    assert_true(v->u.f == 1.5);
    v = decode_ok(a, BYTES(0xca, 0x3f, 0xc0, 0x00, 0x00));
    assert_true(v->u.f == 1.5);
    v = canonical(a, BYTES(0xa3, 'a', 'b', 'c'));
    assert_true(es_value_is_string(v, "abc"));
    v = canonical(a, BYTES(0xc4, 0x02, 0x01, 0x02));
    assert_int_equal(v->kind, ES_VALUE_BYTES);
    v = canonical(a, BYTES(0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0x01, 0xc0));
    assert_int_equal(v->u.map.count, 2);
    assert_int_equal(es_value_get(v, "b")->u.array.count, 2);
    v = decode_ok(a, BYTES(0xd9, 0x01, 'x')); /* str8 for a short string: accepted */
    assert_true(es_value_is_string(v, "x"));
    v = decode_ok(a, BYTES(0xde, 0x00, 0x01, 0xa1, 'k', 0xdc, 0x00, 0x00));
    assert_int_equal(es_value_get(v, "k")->u.array.count, 0);

    /* links are ext 42 */
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_RAW, "x", 1, cid), ES_OK);
    uint8_t link[3 + sizeof cid] = {0xc7, sizeof cid, 42};
    memcpy(link + 3, cid, sizeof cid);
    v = canonical(a, link, sizeof link);
    assert_int_equal(v->kind, ES_VALUE_LINK);
    link[3] = 7; /* CID version 7 */
    refused(link, sizeof link, ES_ERR_DECODE, "not one binary CID");
    es_arena_destroy(a);
}

static void hostile(void **state)
{
    (void)state;
    /* the 5-byte input that makes msgpack-c allocate gigabytes */
    refused(BYTES(0xdd, 0x7f, 0xff, 0xff, 0xff), ES_ERR_DECODE, "cannot fit");
    refused(BYTES(0xdf, 0x7f, 0xff, 0xff, 0xff), ES_ERR_DECODE, "cannot fit");
    refused(BYTES(0xc6, 0xff, 0xff, 0xff, 0xff), ES_ERR_DECODE, "left");
    refused(BYTES(0xdb, 0xff, 0xff, 0xff, 0xff), ES_ERR_DECODE, "left");
    refused(BYTES(0x92, 0x01), ES_ERR_DECODE, "cannot fit");
    refused(BYTES(0xcd, 0x01), ES_ERR_DECODE, "truncated");
    refused(BYTES(0xc1), ES_ERR_DECODE, "never used");
    refused(BYTES(0x81, 0x01, 0x02), ES_ERR_DECODE, "map key");
    refused(BYTES(0xa2, 0xc0, 0x80), ES_ERR_DECODE, "UTF-8");
    refused(BYTES(0xd6, 0xff, 0, 0, 0, 0), ES_ERR_DECODE, "ext type -1");
    refused(NULL, 0, ES_ERR_DECODE, "truncated");
    uint8_t deep[70];
    memset(deep, 0x91, sizeof deep - 1);
    deep[sizeof deep - 1] = 0x00;
    refused(deep, sizeof deep, ES_ERR_TOO_DEEP, "nesting");
    /* truncation of a rich item at every offset */
    static const uint8_t doc[] = {0x93, 0xa3, 'a', 'b',  'c',  0xcd, 0x01, 0x00,
                                  0x81, 0xa1, 'k', 0xc4, 0x02, 0x01, 0x02};
    es_arena *a = new_arena();
    for (size_t cut = 0; cut < sizeof doc; cut++) {
        es_value *v = NULL;
        assert_int_equal(es_msgpack_decode(doc, cut, 0, a, &v, NULL), ES_ERR_DECODE);
    }
    es_value *v = NULL;
    if (es_msgpack_decode(doc, sizeof doc, 0, a, &v, NULL) != ES_OK)
        fail_msg("%s", es_last_error());
    es_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors),
        cmocka_unit_test(hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
