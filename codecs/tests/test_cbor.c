#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include <es/base.h>
#include <es/cbor.h>
#include <es/cid.h>

#include "corpus.h"

#define BYTES(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static es_cbor_options mode(bool strict)
{
    es_cbor_options o;
    es_cbor_options_init(&o, strict);
    return o;
}

static es_arena *new_arena(void)
{
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    return a;
}

static es_value *decode_ok(es_arena *a, bool strict, const uint8_t *buf, size_t len)
{
    es_cbor_options o = mode(strict);
    es_value *v = NULL;
    size_t used = 0;
    es_status s = es_cbor_decode(buf, len, &o, a, &v, &used);
    if (s != ES_OK)
        fail_msg("decode failed: %s", es_last_error());
    assert_int_equal(used, len);
    return v;
}

/* Refused with `status` and an error text containing `why`. */
static void refused(bool strict, const uint8_t *buf, size_t len, es_status status, const char *why)
{
    es_arena *a = new_arena();
    es_cbor_options o = mode(strict);
    es_value *v = (es_value *)1;
    size_t used = 99;
    es_status s = es_cbor_decode(buf, len, &o, a, &v, &used);
    if (s != status || strstr(es_last_error(), why) == NULL)
        fail_msg("expected status %d with '%s', got %d: %s", status, why, s, es_last_error());
    assert_null(v);
    assert_int_equal(used, 0);
    es_arena_destroy(a);
}

static void encode_is(const es_value *v, bool strict, const uint8_t *want, size_t want_len)
{
    es_cbor_options o = mode(strict);
    es_buf out = ES_BUF_INIT;
    es_status s = es_cbor_encode(v, &o, &out);
    if (s != ES_OK)
        fail_msg("encode failed: %s", es_last_error());
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    es_buf_free(&out);
}

/* decode → encode gives the same bytes back (canonical input, strict mode) */
static void round_trips(const uint8_t *buf, size_t len)
{
    es_arena *a = new_arena();
    es_value *v = decode_ok(a, true, buf, len);
    encode_is(v, true, buf, len);
    es_arena_destroy(a);
}

static void scalars(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    es_value *v;
    v = decode_ok(a, true, BYTES(0x00));
    assert_int_equal(v->kind, ES_VALUE_INT);
    assert_int_equal(v->u.i, 0);
    v = decode_ok(a, true, BYTES(0x17));
    assert_int_equal(v->u.i, 23);
    v = decode_ok(a, true, BYTES(0x18, 0x18));
    assert_int_equal(v->u.i, 24);
    v = decode_ok(a, true, BYTES(0x19, 0x03, 0xe8));
    assert_int_equal(v->u.i, 1000);
    v = decode_ok(a, true, BYTES(0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    assert_int_equal(v->u.i, INT64_MAX);
    v = decode_ok(a, true, BYTES(0x20));
    assert_int_equal(v->u.i, -1);
    v = decode_ok(a, true, BYTES(0x38, 0x63));
    assert_int_equal(v->u.i, -100);
    v = decode_ok(a, true, BYTES(0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    assert_true(v->u.i == INT64_MIN);
    v = decode_ok(a, true, BYTES(0xf4));
    assert_int_equal(v->kind, ES_VALUE_BOOL);
    assert_false(v->u.b);
    v = decode_ok(a, true, BYTES(0xf5));
    assert_true(v->u.b);
    v = decode_ok(a, true, BYTES(0xf6));
    assert_int_equal(v->kind, ES_VALUE_NULL);
    v = decode_ok(a, true, BYTES(0x64, 'I', 'E', 'T', 'F'));
    assert_int_equal(v->kind, ES_VALUE_STRING);
    assert_int_equal(v->u.str.len, 4);
    assert_memory_equal(v->u.str.ptr, "IETF", 4);
    v = decode_ok(a, true, BYTES(0x62, 0xc3, 0xbc)); /* "ü" */
    assert_int_equal(v->u.str.len, 2);
    v = decode_ok(a, true, BYTES(0x44, 1, 2, 3, 4));
    assert_int_equal(v->kind, ES_VALUE_BYTES);
    assert_int_equal(v->u.bytes.len, 4);
    v = decode_ok(a, true, BYTES(0x40));
    assert_int_equal(v->u.bytes.len, 0);

    round_trips(BYTES(0x00));
    round_trips(BYTES(0x18, 0x18));
    round_trips(BYTES(0x19, 0x01, 0x00));
    round_trips(BYTES(0x1a, 0x00, 0x01, 0x00, 0x00));
    round_trips(BYTES(0x1b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00));
    round_trips(BYTES(0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    round_trips(BYTES(0x39, 0x01, 0x00));
    round_trips(BYTES(0x63, 'a', 'b', 'c'));
    es_arena_destroy(a);
}

static void containers(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    /* {"a": 1, "b": [2, 3]} */
    es_value *v = decode_ok(a, true, BYTES(0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x82, 0x02, 0x03));
    assert_int_equal(v->kind, ES_VALUE_MAP);
    assert_int_equal(v->u.map.count, 2);
    assert_int_equal(es_value_get(v, "a")->u.i, 1);
    const es_value *b = es_value_get(v, "b");
    assert_int_equal(b->kind, ES_VALUE_ARRAY);
    assert_int_equal(b->u.array.count, 2);
    assert_int_equal(b->u.array.items[1].u.i, 3);
    round_trips(BYTES(0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x82, 0x02, 0x03));
    /* length-first order: "b" before "aa" */
    round_trips(BYTES(0xa2, 0x61, 'b', 0xf6, 0x62, 'a', 'a', 0xf6));
    round_trips(BYTES(0x80));
    round_trips(BYTES(0xa0));
    es_arena_destroy(a);
}

static size_t make_link(uint8_t *out)
{
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, "hello", 5, cid), ES_OK);
    /* tag 42, bytes(37), 0x00, cid */
    out[0] = 0xd8;
    out[1] = 0x2a;
    out[2] = 0x58;
    out[3] = 37;
    out[4] = 0x00;
    memcpy(out + 5, cid, sizeof cid);
    return 5 + sizeof cid;
}

static void links(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = make_link(buf);
    es_arena *a = new_arena();
    es_value *v = decode_ok(a, true, buf, n);
    assert_int_equal(v->kind, ES_VALUE_LINK);
    assert_int_equal(v->u.bytes.len, ES_CID_SHA256_LEN);
    assert_ptr_equal(v->u.bytes.ptr, buf + 5); /* zero copy, 0x00 stripped */
    round_trips(buf, n);
    /* the general codec reads links the same way */
    v = decode_ok(a, false, buf, n);
    assert_int_equal(v->kind, ES_VALUE_LINK);

    uint8_t bad[64];
    memcpy(bad, buf, n);
    bad[4] = 0x01; /* no leading 0x00 */
    refused(true, bad, n, ES_ERR_DECODE, "leading 0x00");
    memcpy(bad, buf, n);
    bad[5] = 0x02; /* CID version 2 */
    refused(true, bad, n, ES_ERR_DECODE, "bad CID link");
    memcpy(bad, buf, n);
    bad[3] = 36; /* CID cut short by one byte; the last byte then trails */
    refused(true, bad, n - 1, ES_ERR_DECODE, "bad CID link");
    memcpy(bad, buf, n);
    bad[3] = 38;
    bad[n] = 0x00; /* one trailing byte inside the link */
    refused(true, bad, n + 1, ES_ERR_DECODE, "trailing");
    refused(true, BYTES(0xd8, 0x2a, 0x40), ES_ERR_DECODE, "leading 0x00");
    refused(true, BYTES(0xd8, 0x2a, 0x41, 0x00), ES_ERR_DECODE, "bad CID link");
    refused(true, BYTES(0xd8, 0x2a, 0x63, 'a', 'b', 'c'), ES_ERR_DECODE, "byte string");
    refused(true, BYTES(0xd8, 0x2a, 0x01), ES_ERR_DECODE, "byte string");
    refused(true, BYTES(0xd8, 0x2a), ES_ERR_DECODE, "truncated");
    refused(true, BYTES(0xd8, 0x2a, 0x58, 0xff, 0x00), ES_ERR_DECODE, "left");
    es_arena_destroy(a);
}

static void strict_refusals(void **state)
{
    (void)state;
    /* shortest forms */
    refused(true, BYTES(0x18, 0x05), ES_ERR_DECODE, "shortest");
    refused(true, BYTES(0x19, 0x00, 0xff), ES_ERR_DECODE, "shortest");
    refused(true, BYTES(0x1a, 0x00, 0x00, 0xff, 0xff), ES_ERR_DECODE, "shortest");
    refused(true, BYTES(0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), ES_ERR_DECODE, "shortest");
    refused(true, BYTES(0x38, 0x00), ES_ERR_DECODE, "shortest");
    refused(true, BYTES(0x78, 0x01, 'a'), ES_ERR_DECODE, "shortest");
    refused(true, BYTES(0x98, 0x01, 0x00), ES_ERR_DECODE, "shortest");
    refused(true, BYTES(0xb8, 0x00), ES_ERR_DECODE, "shortest");
    refused(true, BYTES(0xd9, 0x00, 0x2a, 0x40), ES_ERR_DECODE, "shortest");
    /* indefinite lengths */
    refused(true, BYTES(0x9f, 0xff), ES_ERR_DECODE, "indefinite-length array");
    refused(true, BYTES(0xbf, 0xff), ES_ERR_DECODE, "indefinite-length map");
    refused(true, BYTES(0x7f, 0x61, 'a', 0xff), ES_ERR_DECODE, "indefinite-length string");
    refused(true, BYTES(0x5f, 0x41, 0x00, 0xff), ES_ERR_DECODE, "indefinite-length string");
    /* integers outside int64 */
    refused(true, BYTES(0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0), ES_ERR_DECODE, "int64");
    refused(false, BYTES(0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0), ES_ERR_DECODE, "not representable");
    /* floats and simple values */
    refused(true, BYTES(0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0), ES_ERR_DECODE, "float not allowed");
    refused(true, BYTES(0xf9, 0x3c, 0x00), ES_ERR_DECODE, "float not allowed");
    refused(true, BYTES(0xf7), ES_ERR_DECODE, "undefined");
    refused(true, BYTES(0xf0), ES_ERR_DECODE, "simple value");
    refused(true, BYTES(0xf8, 0x20), ES_ERR_DECODE, "simple value");
    refused(false, BYTES(0xf8, 0xff), ES_ERR_DECODE, "simple value");
    refused(true, BYTES(0xff), ES_ERR_DECODE, "break");
    refused(true, BYTES(0x1c), ES_ERR_DECODE, "reserved");
    refused(true, BYTES(0x1f), ES_ERR_DECODE, "not well-formed");
    /* tags other than 42 */
    refused(true, BYTES(0xc1, 0x00), ES_ERR_DECODE, "only tag 42");
    refused(true, BYTES(0xd8, 0x2b, 0x40), ES_ERR_DECODE, "only tag 42");
    /* maps: key types, order, duplicates */
    refused(true, BYTES(0xa1, 0x01, 0x02), ES_ERR_DECODE, "text strings");
    refused(false, BYTES(0xa1, 0x01, 0x02), ES_ERR_DECODE, "not representable");
    refused(true, BYTES(0xa2, 0x61, 'b', 0x01, 0x61, 'a', 0x02), ES_ERR_DECODE, "out of order");
    refused(true, BYTES(0xa2, 0x62, 'a', 'a', 0x01, 0x61, 'b', 0x02), ES_ERR_DECODE,
            "out of order");
    refused(true, BYTES(0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02), ES_ERR_DECODE, "duplicate");
    /* UTF-8 */
    refused(true, BYTES(0x62, 0xc0, 0x80), ES_ERR_DECODE, "UTF-8");       /* overlong */
    refused(true, BYTES(0x63, 0xed, 0xa0, 0x80), ES_ERR_DECODE, "UTF-8"); /* surrogate */
    refused(true, BYTES(0x61, 0xff), ES_ERR_DECODE, "UTF-8");
    refused(true, BYTES(0x62, 'a', 0xc3), ES_ERR_DECODE, "UTF-8");              /* cut sequence */
    refused(true, BYTES(0x64, 0xf4, 0x90, 0x80, 0x80), ES_ERR_DECODE, "UTF-8"); /* > U+10FFFF */
    refused(false, BYTES(0x62, 0xc0, 0x80), ES_ERR_DECODE, "UTF-8");
    refused(true, BYTES(0xa1, 0x61, 0xff, 0x00), ES_ERR_DECODE, "UTF-8"); /* in a key */
}

static void huge_lengths_refused_before_allocating(void **state)
{
    (void)state;
    for (int strict = 0; strict < 2; strict++) {
        refused(strict, BYTES(0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), ES_ERR_DECODE,
                "left");
        refused(strict, BYTES(0x7a, 0xff, 0xff, 0xff, 0xff, 'a'), ES_ERR_DECODE, "left");
        refused(strict, BYTES(0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), ES_ERR_DECODE,
                "cannot fit");
        refused(strict, BYTES(0xba, 0x10, 0x00, 0x00, 0x00, 0x00), ES_ERR_DECODE, "cannot fit");
        refused(strict, BYTES(0x83, 0x01, 0x02), ES_ERR_DECODE, "cannot fit");
        refused(strict, BYTES(0x82, 0x01, 0x81), ES_ERR_DECODE, "cannot fit");
        refused(strict, BYTES(0x82, 0x01, 0x62, 0x61), ES_ERR_DECODE, "left");
        refused(strict, BYTES(0xa1, 0x61, 'a'), ES_ERR_DECODE, "truncated");
    }
    /* a map of n entries needs 2n bytes: 2 entries in 3 bytes cannot fit */
    refused(true, BYTES(0xa2, 0x60, 0x00, 0x00), ES_ERR_DECODE, "cannot fit");
    /* a small arena is a limit, not a crash */
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(4096, &a), ES_OK);
    uint8_t buf[3 + 2000];
    buf[0] = 0x99;
    buf[1] = 0x07;
    buf[2] = 0xd0; /* array of 2000 zeros = 48 KB of values */
    memset(buf + 3, 0, 2000);
    es_cbor_options o = mode(true);
    es_value *v = NULL;
    assert_int_equal(es_cbor_decode(buf, sizeof buf, &o, a, &v, NULL), ES_ERR_LIMIT);
    assert_non_null(strstr(es_last_error(), "arena"));
    es_arena_destroy(a);
}

static void depth_bounded(void **state)
{
    (void)state;
    uint8_t deep[ES_CBOR_MAX_DEPTH + 2];
    es_cbor_options o = mode(true);
    es_arena *a = new_arena();
    es_value *v = NULL;
    /* 64 nested arrays around a 0: at the default bound */
    memset(deep, 0x81, 64);
    deep[64] = 0x00;
    assert_int_equal(es_cbor_decode(deep, 65, &o, a, &v, NULL), ES_OK);
    /* 65: refused */
    memset(deep, 0x81, 65);
    deep[65] = 0x00;
    assert_int_equal(es_cbor_decode(deep, 66, &o, a, &v, NULL), ES_ERR_TOO_DEEP);
    assert_non_null(strstr(es_last_error(), "nesting"));
    o.max_depth = 65;
    assert_int_equal(es_cbor_decode(deep, 66, &o, a, &v, NULL), ES_OK);
    /* maps count too; and indefinite ones in the general codec */
    for (size_t i = 0; i + 3 <= sizeof deep; i += 3) {
        deep[i] = 0xbf; /* {_ "a": {_ "a": ... */
        deep[i + 1] = 0x61;
        deep[i + 2] = 'a';
    }
    es_cbor_options g = mode(false);
    assert_int_equal(es_cbor_decode(deep, sizeof deep, &g, a, &v, NULL), ES_ERR_TOO_DEEP);
    memset(deep, 0x9f, sizeof deep);
    assert_int_equal(es_cbor_decode(deep, sizeof deep, &g, a, &v, NULL), ES_ERR_TOO_DEEP);
    /* a long chain of tags is walked without recursion */
    uint8_t tags[100001];
    memset(tags, 0xc1, sizeof tags - 1);
    tags[sizeof tags - 1] = 0x07;
    v = decode_ok(a, false, tags, sizeof tags);
    assert_int_equal(v->u.i, 7);
    o.max_depth = ES_CBOR_MAX_DEPTH + 1;
    assert_int_equal(es_cbor_decode(deep, 1, &o, a, &v, NULL), ES_ERR_INVALID);
    /* the encoder is bounded too */
    es_value *nest = es_value_new_null(a);
    for (int i = 0; i < 70; i++) {
        es_value *arr = es_value_new_array(a, 1);
        arr->u.array.items[0] = *nest;
        nest = arr;
    }
    es_buf out = ES_BUF_INIT;
    o = mode(true);
    assert_int_equal(es_cbor_encode(nest, &o, &out), ES_ERR_TOO_DEEP);
    es_buf_free(&out);
    es_arena_destroy(a);
}

static void general_cbor(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    es_value *v;
    /* RFC 8949 appendix A: indefinite strings, arrays and maps */
    v = decode_ok(a, false, BYTES(0x5f, 0x42, 0x01, 0x02, 0x43, 0x03, 0x04, 0x05, 0xff));
    assert_int_equal(v->kind, ES_VALUE_BYTES);
    assert_int_equal(v->u.bytes.len, 5);
    assert_memory_equal(v->u.bytes.ptr, "\1\2\3\4\5", 5);
    v = decode_ok(a, false,
                  BYTES(0x7f, 0x65, 's', 't', 'r', 'e', 'a', 0x64, 'm', 'i', 'n', 'g', 0xff));
    assert_true(es_value_is_string(v, "streaming"));
    v = decode_ok(a, false, BYTES(0x9f, 0x01, 0x82, 0x02, 0x03, 0x9f, 0x04, 0x05, 0xff, 0xff));
    assert_int_equal(v->u.array.count, 3);
    assert_int_equal(v->u.array.items[2].u.array.count, 2);
    v = decode_ok(a, false, BYTES(0xbf, 0x61, 'a', 0x01, 0x61, 'b', 0x9f, 0x02, 0x03, 0xff, 0xff));
    assert_int_equal(v->u.map.count, 2);
    assert_int_equal(es_value_get(v, "b")->u.array.count, 2);
    /* an indefinite array long enough to grow several times */
    uint8_t many[2 + 1000];
    many[0] = 0x9f;
    for (int i = 0; i < 1000; i++)
        many[1 + i] = (uint8_t)(i % 24);
    many[1001] = 0xff;
    v = decode_ok(a, false, many, sizeof many);
    assert_int_equal(v->u.array.count, 1000);
    assert_int_equal(v->u.array.items[999].u.i, 999 % 24);
    /* non-shortest forms and unsorted keys are fine here */
    v = decode_ok(a, false, BYTES(0xa2, 0x61, 'b', 0x18, 0x01, 0x61, 'a', 0x02));
    assert_int_equal(es_value_get(v, "b")->u.i, 1);
    assert_memory_equal(v->u.map.entries[0].key, "b", 1); /* order kept */
    /* floats: half, single, double */
    v = decode_ok(a, false, BYTES(0xf9, 0x3c, 0x00));
    assert_int_equal(v->kind, ES_VALUE_FLOAT);
    assert_true(v->u.f == 1.0);
    v = decode_ok(a, false, BYTES(0xf9, 0xc4, 0x00));
    assert_true(v->u.f == -4.0);
    v = decode_ok(a, false, BYTES(0xf9, 0x00, 0x01));
    assert_true(v->u.f == 5.960464477539063e-8);
    v = decode_ok(a, false, BYTES(0xf9, 0x7c, 0x00));
    assert_true(v->u.f > 1e308);
    v = decode_ok(a, false, BYTES(0xfa, 0x47, 0xc3, 0x50, 0x00));
    assert_true(v->u.f == 100000.0);
    v = decode_ok(a, false, BYTES(0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a));
    assert_true(v->u.f == 1.1);
    /* big unsigned, undefined, dropped tags, refused bignums */
    v = decode_ok(a, false, BYTES(0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    assert_int_equal(v->kind, ES_VALUE_UINT);
    assert_true(v->u.u == UINT64_MAX);
    v = decode_ok(a, false, BYTES(0xf7));
    assert_int_equal(v->kind, ES_VALUE_NULL);
    v = decode_ok(a, false, BYTES(0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0)); /* epoch time */
    assert_int_equal(v->u.i, 1363896240);
    v = decode_ok(a, false, BYTES(0xd9, 0xd9, 0xf7, 0x80)); /* self-described CBOR */
    assert_int_equal(v->kind, ES_VALUE_ARRAY);
    refused(false, BYTES(0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0), ES_ERR_DECODE,
            "not representable");
    refused(false, BYTES(0x5f, 0x61, 'a', 0xff), ES_ERR_DECODE, "chunk");
    refused(false, BYTES(0x7f, 0x61, 'a'), ES_ERR_DECODE, "truncated");
    refused(false, BYTES(0x9f, 0x01), ES_ERR_DECODE, "without a break");
    /* copy mode: strings owned by the arena and NUL-terminated */
    es_cbor_options o = mode(false);
    o.copy = true;
    const uint8_t text[] = {0xa1, 0x61, 'k', 0x63, 'a', 'b', 'c'};
    assert_int_equal(es_cbor_decode(text, sizeof text, &o, a, &v, NULL), ES_OK);
    const es_value *s = es_value_get(v, "k");
    assert_true(s->u.str.ptr < (const char *)text || s->u.str.ptr >= (const char *)text + 7);
    assert_string_equal(s->u.str.ptr, "abc");
    assert_string_equal(v->u.map.entries[0].key, "k");
    es_arena_destroy(a);
}

static void two_items_back_to_back(void **state)
{
    (void)state;
    const uint8_t frame[] = {0xa1, 0x62, 'o', 'p', 0x01, 0x82, 0x01, 0x02, 0xee};
    es_arena *a = new_arena();
    es_cbor_options o = mode(true);
    es_value *v = NULL;
    size_t used = 0;
    assert_int_equal(es_cbor_decode(frame, sizeof frame, &o, a, &v, &used), ES_OK);
    assert_int_equal(used, 5);
    assert_int_equal(es_cbor_decode(frame + used, sizeof frame - used, &o, a, &v, &used), ES_OK);
    assert_int_equal(used, 3);
    assert_int_equal(v->u.array.count, 2);
    /* empty input */
    refused(true, NULL, 0, ES_ERR_DECODE, "truncated");
    es_arena_destroy(a);
}

static es_value_entry entry(es_arena *a, const char *key, es_value *v)
{
    (void)a;
    return (es_value_entry){key, strlen(key), *v};
}

static void encoder_rules(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    /* keys given unsorted come out in DAG-CBOR order in strict mode */
    es_value *m = es_value_new_map(a, 3);
    m->u.map.entries[0] = entry(a, "bb", es_value_new_int(a, 1));
    m->u.map.entries[1] = entry(a, "c", es_value_new_int(a, -2));
    m->u.map.entries[2] = entry(a, "a", es_value_new_bool(a, true));
    encode_is(m, true, BYTES(0xa3, 0x61, 'a', 0xf5, 0x61, 'c', 0x21, 0x62, 'b', 'b', 0x01));
    encode_is(m, false, BYTES(0xa3, 0x62, 'b', 'b', 0x01, 0x61, 'c', 0x21, 0x61, 'a', 0xf5));
    /* a big map is sorted through the heap */
    es_value *big = es_value_new_map(a, 100);
    char *keys = es_arena_alloc(a, 100 * 4);
    for (int i = 0; i < 100; i++) {
        snprintf(keys + 4 * i, 4, "%d", 99 - i);
        big->u.map.entries[i] = entry(a, keys + 4 * i, es_value_new_int(a, i));
    }
    es_cbor_options o = mode(true);
    es_buf out = ES_BUF_INIT;
    assert_int_equal(es_cbor_encode(big, &o, &out), ES_OK);
    es_value *back = decode_ok(a, true, out.data, out.len); /* strict decode checks the order */
    assert_true(es_value_equal(back, big));
    assert_int_equal(back->u.map.entries[0].key_len, 1);
    assert_memory_equal(back->u.map.entries[0].key, "0", 1);
    /* duplicates, floats, big unsigned and bad links are refused in strict mode */
    m->u.map.entries[2] = entry(a, "c", es_value_new_null(a));
    es_buf_clear(&out);
    assert_int_equal(es_cbor_encode(m, &o, &out), ES_ERR_ENCODE);
    assert_non_null(strstr(es_last_error(), "duplicate"));
    big->u.map.entries[50].key = big->u.map.entries[10].key;
    es_buf_clear(&out);
    assert_int_equal(es_cbor_encode(big, &o, &out), ES_ERR_ENCODE);
    es_value f = {.kind = ES_VALUE_FLOAT, .u.f = 1.5};
    es_buf_clear(&out);
    assert_int_equal(es_cbor_encode(&f, &o, &out), ES_ERR_ENCODE);
    o.allow_floats = true;
    es_buf_clear(&out);
    assert_int_equal(es_cbor_encode(&f, &o, &out), ES_OK);
    assert_int_equal(out.len, 9);
    assert_memory_equal(out.data, "\xfb\x3f\xf8\0\0\0\0\0\0", 9);
    o.allow_floats = false;
    es_value u = {.kind = ES_VALUE_UINT, .u.u = UINT64_MAX};
    es_buf_clear(&out);
    assert_int_equal(es_cbor_encode(&u, &o, &out), ES_ERR_ENCODE);
    encode_is(&u, false, BYTES(0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    es_value link = {.kind = ES_VALUE_LINK, .u.bytes = {(const uint8_t *)"\x01\x71", 2}};
    es_buf_clear(&out);
    assert_int_equal(es_cbor_encode(&link, &o, &out), ES_ERR_ENCODE);
    es_value text = {.kind = ES_VALUE_STRING, .u.str = {"\xc0\x80", 2}};
    es_buf_clear(&out);
    assert_int_equal(es_cbor_encode(&text, &o, &out), ES_ERR_ENCODE);
    es_value neg = {.kind = ES_VALUE_INT, .u.i = INT64_MIN};
    encode_is(&neg, true, BYTES(0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
    es_buf_free(&out);
    es_arena_destroy(a);
}

/* A canonical document with every kind; every strict prefix of it must be
 * refused cleanly, and random corruptions must never crash — and whenever a
 * corruption still decodes in strict mode, re-encoding must give the very
 * same bytes (DAG-CBOR has one encoding per value). */
static es_buf sample_document(es_arena *a)
{
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_RAW, "blob", 4, cid), ES_OK);
    es_value *inner = es_value_new_array(a, 4);
    inner->u.array.items[0] = *es_value_new_int(a, -300000);
    inner->u.array.items[1] = *es_value_new_string(a, "h\xc3\xa9llo \xf0\x9f\x98\x80", 11);
    inner->u.array.items[2] = *es_value_new_bytes(a, "\x00\x01\x02\x03", 4);
    inner->u.array.items[3] = *es_value_new_null(a);
    es_value *link = es_value_new_bytes(a, cid, sizeof cid);
    link->kind = ES_VALUE_LINK;
    es_value *m = es_value_new_map(a, 5);
    m->u.map.entries[0] = entry(a, "$type", es_value_new_string(a, "app.bsky.feed.post", 18));
    m->u.map.entries[1] = entry(a, "ref", link);
    m->u.map.entries[2] = entry(a, "list", inner);
    m->u.map.entries[3] = entry(a, "n", es_value_new_int(a, 1u << 20));
    m->u.map.entries[4] = entry(a, "ok", es_value_new_bool(a, false));
    es_buf out = ES_BUF_INIT;
    es_cbor_options o = mode(true);
    assert_int_equal(es_cbor_encode(m, &o, &out), ES_OK);
    es_value *back = decode_ok(a, true, out.data, out.len);
    assert_true(es_value_equal(back, m));
    return out;
}

static void truncation_at_every_offset(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    es_buf doc = sample_document(a);
    for (size_t cut = 0; cut < doc.len; cut++) {
        for (int strict = 0; strict < 2; strict++) {
            es_cbor_options o = mode(strict);
            es_value *v = NULL;
            es_status s = es_cbor_decode(doc.data, cut, &o, a, &v, NULL);
            if (s != ES_ERR_DECODE)
                fail_msg("prefix of %zu bytes: status %d (%s)", cut, s, es_last_error());
        }
    }
    es_buf_free(&doc);
    es_arena_destroy(a);
}

static void random_corruption(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    es_buf doc = sample_document(a);
    uint8_t *copy = malloc(doc.len);
    uint32_t x = 2463534242u;
    size_t strict_ok = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, doc.data, doc.len);
        int flips = 1 + round % 3;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            copy[x % doc.len] = (uint8_t)(x >> 8);
        }
        for (int strict = 0; strict < 2; strict++) {
            es_arena_reset(a);
            es_cbor_options o = mode(strict);
            es_value *v = NULL;
            size_t used = 0;
            es_status s = es_cbor_decode(copy, doc.len, &o, a, &v, &used);
            assert_true(s == ES_OK || s == ES_ERR_DECODE || s == ES_ERR_LIMIT);
            if (s == ES_OK && strict) {
                es_buf out = ES_BUF_INIT;
                assert_int_equal(es_cbor_encode(v, &o, &out), ES_OK);
                assert_int_equal(out.len, used);
                assert_memory_equal(out.data, copy, used);
                es_buf_free(&out);
                strict_ok++;
            }
        }
    }
    assert_true(strict_ok > 0); /* some corruptions (inside strings) stay valid */
    free(copy);
    es_buf_free(&doc);
    es_arena_destroy(a);
}

/* ---- real vectors ------------------------------------------------------------ */

static void atproto_data_model_fixtures(void **state)
{
    (void)state;
    char *path = corpus_fixture_path("atproto-interop/data-model/data-model-fixtures.json");
    if (path == NULL) {
        print_message("ES_SHARED_DIR fixtures absent: data-model CBOR vectors not run\n");
        skip();
    }
    json_error_t err;
    json_t *all = json_load_file(path, 0, &err);
    free(path);
    assert_non_null(all);
    assert_true(json_array_size(all) >= 3);
    es_arena *a = new_arena();
    size_t i;
    json_t *fx;
    json_array_foreach(all, i, fx)
    {
        const char *b64 = json_string_value(json_object_get(fx, "cbor_base64"));
        const char *cid_text = json_string_value(json_object_get(fx, "cid"));
        assert_non_null(b64);
        uint8_t cbor[4096];
        size_t n = 0;
        assert_int_equal(es_base64_decode(b64, strlen(b64), cbor, sizeof cbor, &n), ES_OK);
        es_value *v = decode_ok(a, true, cbor, n);
        assert_int_equal(v->kind, ES_VALUE_MAP);
        encode_is(v, true, cbor, n);
        uint8_t cid[ES_CID_SHA256_LEN];
        char s[ES_CID_STRING_MAX];
        assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, cbor, n, cid), ES_OK);
        assert_int_equal(es_cid_to_string(cid, sizeof cid, s, sizeof s), ES_OK);
        assert_string_equal(s, cid_text);
    }
    es_arena_destroy(a);
    json_decref(all);
}

typedef struct corpus_stats {
    es_arena *arena;
    size_t blocks, records;
} corpus_stats;

/* Each CAR block: its CID must match, it must decode strictly, and
 * re-encoding must reproduce it byte for byte. */
static int check_block(void *ctx, const uint8_t *cid_bytes, size_t cid_len, const uint8_t *block,
                       size_t block_len)
{
    corpus_stats *st = ctx;
    es_cid cid;
    assert_int_equal(es_cid_parse(cid_bytes, cid_len, &cid), ES_OK);
    assert_true(es_cid_matches(&cid, block, block_len));
    st->blocks++;
    if (cid.codec != ES_CID_CODEC_DAG_CBOR)
        return 0;
    es_value *v = decode_ok(st->arena, true, block, block_len);
    encode_is(v, true, block, block_len);
    st->records++;
    return 0;
}

static void firehose_corpus(void **state)
{
    (void)state;
    uint8_t *frames = NULL;
    size_t len = 0;
    if (corpus_load_frames(&frames, &len) != ES_OK) {
        print_message("ES_SHARED_DIR fixtures absent: firehose corpus not run\n");
        skip();
    }
    corpus_stats st = {new_arena(), 0, 0};
    size_t pos = 0, count = 0, commits = 0;
    const uint8_t *frame;
    size_t flen;
    int r;
    while ((r = corpus_next_frame(frames, len, &pos, &frame, &flen)) == 1) {
        es_arena_reset(st.arena);
        es_cbor_options o = mode(true);
        es_value *header = NULL, *body = NULL;
        size_t used = 0, used2 = 0;
        assert_int_equal(es_cbor_decode(frame, flen, &o, st.arena, &header, &used), ES_OK);
        assert_int_equal(es_value_get(header, "op")->u.i, 1);
        assert_int_equal(es_cbor_decode(frame + used, flen - used, &o, st.arena, &body, &used2),
                         ES_OK);
        assert_int_equal(used + used2, flen);
        encode_is(body, true, frame + used, used2);
        const es_value *blocks = es_value_get(body, "blocks");
        if (es_value_is_string(es_value_get(header, "t"), "#commit")) {
            assert_non_null(blocks);
            assert_int_equal(blocks->kind, ES_VALUE_BYTES);
            assert_int_equal(
                corpus_car_blocks(blocks->u.bytes.ptr, blocks->u.bytes.len, check_block, &st), 0);
            commits++;
        }
        count++;
    }
    assert_int_equal(r, 0);
    assert_int_equal(count, 150);
    assert_int_equal(commits, 148);
    assert_true(st.blocks > 1000);
    print_message("firehose corpus: %zu frames, %zu commits, %zu blocks (%zu dag-cbor) verified\n",
                  count, commits, st.blocks, st.records);
    es_arena_destroy(st.arena);
    free(frames);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalars),
        cmocka_unit_test(containers),
        cmocka_unit_test(links),
        cmocka_unit_test(strict_refusals),
        cmocka_unit_test(huge_lengths_refused_before_allocating),
        cmocka_unit_test(depth_bounded),
        cmocka_unit_test(general_cbor),
        cmocka_unit_test(two_items_back_to_back),
        cmocka_unit_test(encoder_rules),
        cmocka_unit_test(truncation_at_every_offset),
        cmocka_unit_test(random_corruption),
        cmocka_unit_test(atproto_data_model_fixtures),
        cmocka_unit_test(firehose_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
