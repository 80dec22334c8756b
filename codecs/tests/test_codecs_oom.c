/* Out of memory in the codecs: every allocation of each decoder and encoder
 * fails in turn (base/tests/failalloc.h); each run reports ES_ERR_NOMEM,
 * leaks nothing and does not crash. CIDs and base32/64 work in the caller's
 * buffers: they never allocate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <es/base.h>
#include <es/cbor.h>
#include <es/cid.h>
#include <es/codec.h>
#include <es/json.h>
#include <es/msgpack.h>

#include "base/tests/failalloc.h"
#include "corpus.h"

/* An atproto-shaped record: nesting, escapes, non-ASCII text, a link, bytes. */
static const char RECORD[] =
    "{\"$type\":\"app.bsky.feed.post\",\"text\":\"h\\u00e9llo \\\"w\\u00f6rld\\\" \\ud83d\\ude00\","
    "\"createdAt\":\"2024-11-24T05:05:35.123Z\",\"langs\":[\"en\",\"fr\",\"de\"],"
    "\"reply\":{\"root\":{\"cid\":\"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm\","
    "\"uri\":\"at://did:plc:abc/app.bsky.feed.post/3k\"},\"parent\":{\"depth\":[[[[1,2,[3]]]]]}},"
    "\"embed\":{\"images\":[{\"alt\":\"\",\"image\":{\"$type\":\"blob\",\"ref\":{\"$link\":"
    "\"bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy\"},\"mimeType\":\"image/"
    "jpeg\",\"size\":123456}}]},\"sig\":{\"$bytes\":\"AAECAwQFBgcICQoLDA0ODw\"},"
    "\"counts\":[0,-1,23,-24,255,256,65535,65536,4294967295,4294967296,-9223372036854775808]}";

typedef struct fixture {
    es_arena *arena;
    es_value *record; /* RECORD, decoded */
    es_buf json, dag_cbor, cbor, msgpack;
} fixture;

static fixture fx;

/* The arena every decode uses: the default limit is far away. */
static es_status with_arena(es_status (*fn)(es_arena *a, void *ctx), void *ctx)
{
    es_arena *a = NULL;
    es_status s = es_arena_create(0, &a);
    if (s == ES_OK)
        s = fn(a, ctx);
    es_arena_destroy(a);
    return s;
}

static es_status same_value(es_status s, const es_value *v)
{
    return s != ES_OK || es_value_equal(v, fx.record) ? s : ES_ERR_PROTOCOL;
}

static es_status same_bytes(es_status s, const es_buf *got, const es_buf *want)
{
    if (s == ES_OK && (got->len != want->len || memcmp(got->data, want->data, got->len) != 0))
        return ES_ERR_PROTOCOL;
    return s;
}

/* ---- JSON ------------------------------------------------------------------- */

static es_status json_decode_in(es_arena *a, void *ctx)
{
    (void)ctx;
    es_value *v = NULL;
    es_status s = es_json_decode(RECORD, sizeof RECORD - 1, NULL, a, &v);
    return same_value(s, v);
}

static es_status json_decode_op(void *ctx)
{
    return with_arena(json_decode_in, ctx);
}

static es_status json_encode_op(void *ctx)
{
    (void)ctx;
    es_buf out = ES_BUF_INIT;
    es_status s = es_json_encode(fx.record, NULL, &out);
    s = same_bytes(s, &out, &fx.json);
    es_buf_free(&out);
    return s;
}

static void json_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(json_decode_op, NULL, 1);
    failalloc_expect_nomem(json_encode_op, NULL, 1);
}

/* ---- CBOR and DAG-CBOR ----------------------------------------------------------- */

static es_status cbor_decode_in(es_arena *a, void *ctx)
{
    const bool *strict = ctx;
    es_cbor_options o;
    es_cbor_options_init(&o, *strict);
    o.copy = true;
    es_value *v = NULL;
    size_t used = 0;
    const es_buf *in = *strict ? &fx.dag_cbor : &fx.cbor;
    es_status s = es_cbor_decode(in->data, in->len, &o, a, &v, &used);
    return same_value(s, v);
}

static es_status cbor_decode_op(void *ctx)
{
    return with_arena(cbor_decode_in, ctx);
}

static es_status cbor_encode_op(void *ctx)
{
    const bool *strict = ctx;
    es_cbor_options o;
    es_cbor_options_init(&o, *strict);
    es_buf out = ES_BUF_INIT;
    es_status s = es_cbor_encode(fx.record, &o, &out);
    s = same_bytes(s, &out, *strict ? &fx.dag_cbor : &fx.cbor);
    es_buf_free(&out);
    return s;
}

static void cbor_out_of_memory(void **state)
{
    (void)state;
    bool strict = true, general = false;
    failalloc_expect_nomem(cbor_decode_op, &strict, 1);
    failalloc_expect_nomem(cbor_decode_op, &general, 1);
    failalloc_expect_nomem(cbor_encode_op, &strict, 1);
    failalloc_expect_nomem(cbor_encode_op, &general, 1);
}

/* ---- MessagePack ------------------------------------------------------------------ */

static es_status msgpack_decode_in(es_arena *a, void *ctx)
{
    (void)ctx;
    es_value *v = NULL;
    es_status s = es_msgpack_decode(fx.msgpack.data, fx.msgpack.len, 0, a, &v, NULL);
    return same_value(s, v);
}

static es_status msgpack_decode_op(void *ctx)
{
    return with_arena(msgpack_decode_in, ctx);
}

static es_status msgpack_encode_op(void *ctx)
{
    (void)ctx;
    es_buf out = ES_BUF_INIT;
    es_status s = es_msgpack_encode(fx.record, 0, &out);
    s = same_bytes(s, &out, &fx.msgpack);
    es_buf_free(&out);
    return s;
}

static void msgpack_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(msgpack_decode_op, NULL, 1);
    failalloc_expect_nomem(msgpack_encode_op, NULL, 1);
}

/* ---- the registry ------------------------------------------------------------------- */

static es_status convert_in(es_arena *a, void *ctx)
{
    (void)ctx;
    es_buf out = ES_BUF_INIT;
    es_status s =
        es_codec_convert("json", (const uint8_t *)RECORD, sizeof RECORD - 1, "dag-cbor", a, &out);
    s = same_bytes(s, &out, &fx.dag_cbor);
    es_buf_free(&out);
    return s;
}

static es_status convert_op(void *ctx)
{
    return with_arena(convert_in, ctx);
}

static void codec_convert_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(convert_op, NULL, 1);
}

/* ---- real records ------------------------------------------------------------------- */

typedef struct block_ctx {
    const uint8_t *block;
    size_t len;
    size_t swept;
} block_ctx;

static es_status block_roundtrip_in(es_arena *a, void *ctx)
{
    block_ctx *b = ctx;
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    es_value *v = NULL;
    es_buf out = ES_BUF_INIT;
    es_status s = es_cbor_decode(b->block, b->len, &o, a, &v, NULL);
    if (s == ES_OK)
        s = es_json_encode(v, NULL, &out);
    if (s == ES_OK) {
        es_buf_clear(&out);
        s = es_cbor_encode(v, &o, &out);
    }
    s = same_bytes(s, &out, &(es_buf){(uint8_t *)b->block, b->len, b->len});
    es_buf_free(&out);
    return s;
}

static es_status block_roundtrip_op(void *ctx)
{
    return with_arena(block_roundtrip_in, ctx);
}

static int sweep_block(void *ctx, const uint8_t *cid, size_t cid_len, const uint8_t *block,
                       size_t block_len)
{
    (void)cid;
    (void)cid_len;
    block_ctx *b = ctx;
    b->block = block;
    b->len = block_len;
    failalloc_expect_nomem(block_roundtrip_op, b, 1);
    return ++b->swept >= 40; /* a sample is enough; the corpus is large */
}

/* Blocks of the firehose corpus, decoded and encoded again (DAG-CBOR is
 * canonical: the bytes come back the same). */
static void corpus_blocks_out_of_memory(void **state)
{
    (void)state;
    uint8_t *data = NULL;
    size_t len = 0;
    if (corpus_load_frames(&data, &len) != ES_OK)
        skip();
    size_t pos = 0;
    const uint8_t *frame;
    size_t frame_len;
    block_ctx b = {0};
    while (b.swept < 40 && corpus_next_frame(data, len, &pos, &frame, &frame_len) == 1) {
        /* header and body; the body's "blocks" is a CAR */
        es_arena *a = NULL;
        assert_int_equal(es_arena_create(0, &a), ES_OK);
        es_cbor_options o;
        es_cbor_options_init(&o, true);
        es_value *head = NULL, *body = NULL;
        size_t used = 0;
        if (es_cbor_decode(frame, frame_len, &o, a, &head, &used) == ES_OK &&
            es_cbor_decode(frame + used, frame_len - used, &o, a, &body, NULL) == ES_OK) {
            const es_value *car = es_value_get(body, "blocks");
            if (car != NULL && car->kind == ES_VALUE_BYTES)
                corpus_car_blocks(car->u.bytes.ptr, car->u.bytes.len, sweep_block, &b);
        }
        es_arena_destroy(a);
    }
    free(data);
    assert_true(b.swept > 0);
}

/* ---- CIDs, base32/64 ---------------------------------------------------------------- */

static es_status cid_op(void *ctx)
{
    (void)ctx;
    uint8_t cid[ES_CID_SHA256_LEN], back[64];
    char text[128];
    size_t n = 0;
    es_cid parsed;
    es_status s = es_cid_sha256(0x71, "hello", 5, cid);
    if (s == ES_OK)
        s = es_cid_to_string(cid, sizeof cid, text, sizeof text);
    if (s == ES_OK)
        s = es_cid_from_string(text, strlen(text), back, sizeof back, &n);
    if (s == ES_OK)
        s = es_cid_parse(back, n, &parsed);
    if (s == ES_OK && !es_cid_matches(&parsed, "hello", 5))
        s = ES_ERR_PROTOCOL;
    char b64[64];
    uint8_t raw[64];
    size_t m = 0, k = 0;
    if (s == ES_OK)
        s = es_base64_encode(cid, sizeof cid, b64, sizeof b64, &m);
    if (s == ES_OK)
        s = es_base64_decode(b64, m, raw, sizeof raw, &k);
    return s == ES_OK && (k != sizeof cid || memcmp(raw, cid, k) != 0) ? ES_ERR_PROTOCOL : s;
}

static void cids_never_allocate(void **state)
{
    (void)state;
    failalloc_expect_nomem(cid_op, NULL, 0);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(es_arena_create(0, &fx.arena), ES_OK);
    assert_int_equal(es_json_decode(RECORD, sizeof RECORD - 1, NULL, fx.arena, &fx.record), ES_OK);
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    assert_int_equal(es_json_encode(fx.record, NULL, &fx.json), ES_OK);
    assert_int_equal(es_cbor_encode(fx.record, &o, &fx.dag_cbor), ES_OK);
    es_cbor_options_init(&o, false);
    assert_int_equal(es_cbor_encode(fx.record, &o, &fx.cbor), ES_OK);
    assert_int_equal(es_msgpack_encode(fx.record, 0, &fx.msgpack), ES_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    es_buf_free(&fx.json);
    es_buf_free(&fx.dag_cbor);
    es_buf_free(&fx.cbor);
    es_buf_free(&fx.msgpack);
    es_arena_destroy(fx.arena);
    return 0;
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_out_of_memory),
        cmocka_unit_test(cbor_out_of_memory),
        cmocka_unit_test(msgpack_out_of_memory),
        cmocka_unit_test(codec_convert_out_of_memory),
        cmocka_unit_test(corpus_blocks_out_of_memory),
        cmocka_unit_test(cids_never_allocate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
