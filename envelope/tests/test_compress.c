/* Compression: thresholds, round trips, hostile compressed data, bombs,
 * dictionaries (from an in-memory source). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <es/envelope.h>

#include "envelope_internal.h"
#include "memstore.h"

#define SUBJECT  "$ES.shop.order.42.created"
#define EVENT_ID "ev-1"

/* The event every test seals and opens. */
static const es_envelope_event *event(void)
{
    static es_envelope_event ev;
    if (ev.subject == NULL)
        ev = mem_event(SUBJECT);
    return &ev;
}

/* Text-like, compressible bytes (a repeated JSON-ish record with a counter). */
static uint8_t *compressible(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    char rec[64];
    size_t at = 0;
    for (unsigned i = 0; at < n; i++) {
        int k = snprintf(rec, sizeof rec, "{\"item\":\"widget\",\"qty\":%u,\"ok\":true},", i % 7);
        for (int j = 0; j < k && at < n; j++)
            p[at++] = (uint8_t)rec[j];
    }
    return p;
}

static uint8_t *random_bytes(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    randombytes_buf(p, n);
    return p;
}

static es_envelope *plain_envelope(size_t compress_min, size_t max_payload)
{
    es_envelope_options o = {
        .compress = true, .compress_min = compress_min, .max_payload = max_payload};
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    return env;
}

static const char *header(const es_sealed *s, const char *name)
{
    for (size_t i = 0; i < s->n_headers; i++)
        if (strcmp(s->headers[i].name, name) == 0)
            return s->headers[i].value;
    return NULL;
}

static void seal_open_equal(es_envelope *env, const uint8_t *plain, size_t len)
{
    es_sealed s = ES_SEALED_INIT;
    es_opened o = ES_OPENED_INIT;
    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, plain, len, &s), ES_OK);
    assert_int_equal(
        es_envelope_open(env, event(), EVENT_ID, s.headers, s.n_headers, s.data, s.len, &o), ES_OK);
    assert_int_equal(o.len, len);
    if (len > 0)
        assert_memory_equal(o.data, plain, len);
    es_sealed_free(&s);
    es_opened_free(&o);
}

static void threshold_below_at_above(void **state)
{
    (void)state;
    es_envelope *env = plain_envelope(0, 0); /* default threshold: 1 KiB */
    uint8_t *p = compressible(4096);
    es_sealed s = ES_SEALED_INIT;

    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, p, 1023, &s), ES_OK);
    assert_int_equal(s.n_headers, 0);
    assert_ptr_equal(s.data, p); /* untouched: no copy */
    assert_int_equal(s.len, 1023);

    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, p, 1024, &s), ES_OK);
    assert_int_equal(s.n_headers, 1);
    assert_string_equal(header(&s, ES_HDR_COMPRESSION), "zstd");
    assert_true(s.len < 1024 / 4);

    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, p, 4096, &s), ES_OK);
    assert_string_equal(header(&s, ES_HDR_COMPRESSION), "zstd");
    assert_true(s.len < 4096 / 8);

    es_sealed_free(&s);
    es_envelope_destroy(env);

    env = plain_envelope(100, 0);
    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, p, 99, &s), ES_OK);
    assert_null(header(&s, ES_HDR_COMPRESSION));
    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, p, 100, &s), ES_OK);
    assert_non_null(header(&s, ES_HDR_COMPRESSION));
    es_sealed_free(&s);
    es_envelope_destroy(env);
    free(p);
}

static void disabled_and_incompressible_stay_plain(void **state)
{
    (void)state;
    es_envelope_options o = {0}; /* compress = false */
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    uint8_t *p = compressible(65536);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, p, 65536, &s), ES_OK);
    assert_int_equal(s.n_headers, 0);
    assert_ptr_equal(s.data, p);
    es_envelope_destroy(env);

    /* Random bytes do not shrink: stored as they are, no header. */
    env = plain_envelope(0, 0);
    uint8_t *r = random_bytes(8192);
    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, r, 8192, &s), ES_OK);
    assert_int_equal(s.n_headers, 0);
    assert_ptr_equal(s.data, r);
    assert_int_equal(s.len, 8192);
    es_sealed_free(&s);
    es_envelope_destroy(env);
    free(p);
    free(r);
}

static void round_trips(void **state)
{
    (void)state;
    es_envelope *env = plain_envelope(64, 0);
    static const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 4096, 100000, 1 << 20};
    for (size_t i = 0; i < ES_ARRAY_LEN(sizes); i++) {
        uint8_t *p = compressible(sizes[i]);
        seal_open_equal(env, p, sizes[i]);
        free(p);
        p = random_bytes(sizes[i]);
        seal_open_equal(env, p, sizes[i]);
        free(p);
    }
    /* One es_sealed reused across many events of varying size. */
    es_sealed s = ES_SEALED_INIT;
    es_opened o = ES_OPENED_INIT;
    for (size_t n = 0; n < 5000; n += 97) {
        uint8_t *p = compressible(n);
        assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, p, n, &s), ES_OK);
        assert_int_equal(
            es_envelope_open(env, event(), EVENT_ID, s.headers, s.n_headers, s.data, s.len, &o),
            ES_OK);
        assert_int_equal(o.len, n);
        if (n)
            assert_memory_equal(o.data, p, n);
        free(p);
    }
    es_sealed_free(&s);
    es_opened_free(&o);
    es_envelope_destroy(env);
}

/* Opens `payload` as if read with `Es-Compression: zstd`. */
static es_status open_zstd(es_envelope *env, const uint8_t *payload, size_t len, es_opened *o)
{
    es_header h[] = {{ES_HDR_COMPRESSION, "zstd"}};
    return es_envelope_open(env, event(), EVENT_ID, h, 1, payload, len, o);
}

static void corrupt_data_is_refused(void **state)
{
    (void)state;
    es_envelope *env = plain_envelope(0, 0);
    uint8_t *p = compressible(4000);
    es_sealed s = ES_SEALED_INIT;
    es_opened o = ES_OPENED_INIT;
    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, p, 4000, &s), ES_OK);
    uint8_t *bad = malloc(s.len);
    assert_non_null(bad);
    /* Every single-bit flip anywhere in the frame: the frame checksum and
     * structure checks catch all of them. */
    for (size_t i = 0; i < s.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(bad, s.data, s.len);
            bad[i] ^= (uint8_t)(1u << bit);
            es_status st = open_zstd(env, bad, s.len, &o);
            /* A few bits of a zstd frame are redundant (some entropy table
             * descriptions decode alike): a flip there may still give the
             * right bytes. What must never happen is wrong bytes. */
            if (st == ES_OK && o.len == 4000 && memcmp(o.data, p, 4000) == 0)
                continue;
            if (st != ES_ERR_DECODE && st != ES_ERR_LIMIT)
                fail_msg("flip of bit %d at byte %zu/%zu: status %s", bit, i, s.len,
                         es_status_text(st));
            assert_null(o.data);
        }
    }
    /* Every truncation. */
    for (size_t n = 0; n < s.len; n++)
        assert_int_equal(open_zstd(env, s.data, n, &o), ES_ERR_DECODE);
    /* Not zstd at all; trailing bytes; two frames. */
    assert_int_equal(open_zstd(env, (const uint8_t *)"hello, world", 12, &o), ES_ERR_DECODE);
    memcpy(bad, s.data, s.len);
    uint8_t *two = malloc(2 * s.len + 1);
    assert_non_null(two);
    memcpy(two, s.data, s.len);
    two[s.len] = 0;
    assert_int_equal(open_zstd(env, two, s.len + 1, &o), ES_ERR_DECODE);
    memcpy(two + s.len, s.data, s.len);
    assert_int_equal(open_zstd(env, two, 2 * s.len, &o), ES_ERR_DECODE);
    /* Header trouble. */
    es_header unknown[] = {{ES_HDR_COMPRESSION, "gzip"}};
    assert_int_equal(es_envelope_open(env, event(), EVENT_ID, unknown, 1, s.data, s.len, &o),
                     ES_ERR_DECODE);
    es_header dict_alone[] = {{ES_HDR_DICT, "12345"}};
    assert_int_equal(es_envelope_open(env, event(), EVENT_ID, dict_alone, 1, s.data, s.len, &o),
                     ES_ERR_DECODE);
    es_header twice[] = {{ES_HDR_COMPRESSION, "zstd"}, {ES_HDR_COMPRESSION, "zstd"}};
    assert_int_equal(es_envelope_open(env, event(), EVENT_ID, twice, 2, s.data, s.len, &o),
                     ES_ERR_DECODE);
    assert_true(strstr(es_last_error(), "twice") != NULL);
    free(two);
    free(bad);
    free(p);
    es_sealed_free(&s);
    es_opened_free(&o);
    es_envelope_destroy(env);
}

/* A frame of `n` zero bytes, with or without its content size. */
static void zero_frame(size_t n, bool with_size, es_buf *out)
{
    uint8_t *zeros = calloc(n ? n : 1, 1);
    assert_non_null(zeros);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    assert_non_null(c);
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, with_size ? 1 : 0);
    es_buf_clear(out);
    assert_int_equal(es_buf_reserve(out, ZSTD_compressBound(n)), ES_OK);
    if (with_size) {
        size_t r = ZSTD_compress2(c, out->data, out->cap, zeros, n);
        assert_false(ZSTD_isError(r));
        out->len = r;
    } else {
        /* Streaming with no pledged size: the frame cannot declare it. */
        ZSTD_inBuffer in = {zeros, n, 0};
        ZSTD_outBuffer ob = {out->data, out->cap, 0};
        size_t r;
        do {
            r = ZSTD_compressStream2(c, &ob, &in, ZSTD_e_end);
            assert_false(ZSTD_isError(r));
        } while (r != 0);
        out->len = ob.pos;
    }
    assert_int_equal(ZSTD_getFrameContentSize(out->data, out->len) == ZSTD_CONTENTSIZE_UNKNOWN,
                     !with_size);
    ZSTD_freeCCtx(c);
    free(zeros);
}

static void bombs_are_refused(void **state)
{
    (void)state;
    const size_t max = 1 << 20;
    es_envelope *env = plain_envelope(0, max);
    es_opened o = ES_OPENED_INIT;
    es_buf frame = ES_BUF_INIT;
    for (int with_size = 0; with_size < 2; with_size++) {
        /* 256 MiB of zeros in a few KiB: refused, never inflated. */
        zero_frame((size_t)256 << 20, with_size, &frame);
        assert_true(frame.len < 64 << 10);
        assert_int_equal(open_zstd(env, frame.data, frame.len, &o), ES_ERR_LIMIT);
        assert_null(o.data);
        assert_true(o.buf_[0].cap <= max + 1 && o.buf_[1].cap <= 2 * (max + 1));
        /* Exactly the bound passes; one byte more does not. */
        zero_frame(max, with_size, &frame);
        assert_int_equal(open_zstd(env, frame.data, frame.len, &o), ES_OK);
        assert_int_equal(o.len, max);
        zero_frame(max + 1, with_size, &frame);
        assert_int_equal(open_zstd(env, frame.data, frame.len, &o), ES_ERR_LIMIT);
    }
    /* The decoder itself, at its bound. */
    zero_frame(5000, true, &frame);
    esi_zpool *pool = NULL;
    assert_int_equal(esi_zpool_create(0, &pool), ES_OK);
    es_buf out = ES_BUF_INIT;
    assert_int_equal(esi_zstd_decompress(pool, NULL, frame.data, frame.len, 4999, &out),
                     ES_ERR_LIMIT);
    assert_int_equal(out.len, 0);
    assert_int_equal(esi_zstd_decompress(pool, NULL, frame.data, frame.len, 5000, &out), ES_OK);
    assert_int_equal(out.len, 5000);
    /* Writes are bounded the same way. */
    uint8_t *big = compressible(max + 1);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(env, event(), EVENT_ID, 0, big, max + 1, &s),
                     ES_ERR_TOO_LARGE);
    assert_int_equal(s.n_headers, 0);
    free(big);
    es_buf_free(&out);
    es_buf_free(&frame);
    esi_zpool_destroy(pool);
    es_opened_free(&o);
    es_envelope_destroy(env);
}

/* ---- dictionaries -------------------------------------------------------- */

/* Small, similar events (the case dictionaries are for), `n` laid end to end. */
static void order_samples(es_buf *all, size_t *sizes, int n)
{
    for (int i = 0; i < n; i++) {
        char ev[256];
        int k =
            snprintf(ev, sizeof ev,
                     "{\"type\":\"order-created\",\"customer\":\"cust-%05d\",\"currency\":"
                     "\"EUR\",\"lines\":[{\"sku\":\"SKU-%04d\",\"qty\":%d}],\"channel\":\"web\"}",
                     i * 7919 % 100000, i % 1000, i % 9 + 1);
        sizes[i] = (size_t)k;
        assert_int_equal(es_buf_append(all, ev, (size_t)k), ES_OK);
    }
}

typedef struct dict_fixture {
    es_buf samples, dict;
    size_t sizes[2000];
    uint32_t id;
    mem_dicts *store;
    es_dict_source src;
} dict_fixture;

static int dict_setup(void **state)
{
    dict_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    order_samples(&f->samples, f->sizes, 2000);
    assert_int_equal(es_dict_train(f->samples.data, f->sizes, 2000, 16 << 10, &f->dict, &f->id),
                     ES_OK);
    f->store = mem_dicts_create();
    mem_dicts_put(f->store, f->id, f->dict.data, f->dict.len);
    f->src = mem_dicts_source(f->store);
    *state = f;
    return 0;
}

static int dict_teardown(void **state)
{
    dict_fixture *f = *state;
    mem_dicts_free(f->store);
    es_buf_free(&f->dict);
    es_buf_free(&f->samples);
    free(f);
    return 0;
}

static void dictionary_training_and_ids(void **state)
{
    dict_fixture *f = *state;
    assert_true(f->id != 0);
    assert_true(f->dict.len > 0 && f->dict.len <= 16 << 10);
    uint32_t id = 0;
    assert_int_equal(es_dict_id(f->dict.data, f->dict.len, &id), ES_OK);
    assert_int_equal(id, f->id);
    assert_int_equal(es_dict_id((const uint8_t *)"not a dictionary", 16, &id), ES_ERR_INVALID);
    assert_int_equal(es_dict_id(f->dict.data, 7, &id), ES_ERR_INVALID);
    assert_int_equal(es_dict_id(NULL, 16, &id), ES_ERR_INVALID);
    assert_int_equal(es_dict_id(f->dict.data, f->dict.len, NULL), ES_ERR_INVALID);
    es_buf d = ES_BUF_INIT;
    assert_int_equal(es_dict_train(f->samples.data, f->sizes, 2000, 255, &d, &id), ES_ERR_INVALID);
    assert_int_equal(es_dict_train(f->samples.data, f->sizes, 0, 0, &d, &id), ES_ERR_INVALID);
    assert_int_equal(es_dict_train(NULL, f->sizes, 2000, 0, &d, &id), ES_ERR_INVALID);
    assert_int_equal(d.len, 0);
    es_buf_free(&d);
}

static void dictionary_round_trip(void **state)
{
    dict_fixture *f = *state;
    es_envelope_options wo = {
        .compress = true, .compress_min = 64, .compress_dict = f->id, .dicts = &f->src};
    es_envelope *writer = NULL;
    assert_int_equal(es_envelope_create(&wo, &writer), ES_OK);
    assert_int_equal(mem_dicts_gets(f->store), 1); /* loaded at creation */
    const uint8_t *ev = f->samples.data;
    size_t len = f->sizes[0];
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(writer, event(), EVENT_ID, 0, ev, len, &s), ES_OK);
    char want[16];
    snprintf(want, sizeof want, "%u", (unsigned)f->id);
    assert_string_equal(header(&s, ES_HDR_COMPRESSION), "zstd");
    assert_string_equal(header(&s, ES_HDR_DICT), want);
    assert_true(s.len < len / 2); /* a dictionary makes small events shrink */
    /* The sealed event does not depend on its envelope living on. */
    es_envelope_destroy(writer);
    assert_string_equal(header(&s, ES_HDR_DICT), want);

    /* A reader that knows nothing but where dictionaries are; it fetches
     * each once, however many events it reads. */
    es_envelope_options ro = {.dicts = &f->src};
    es_envelope *reader = NULL;
    assert_int_equal(es_envelope_create(&ro, &reader), ES_OK);
    es_opened o = ES_OPENED_INIT;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            es_envelope_open(reader, event(), EVENT_ID, s.headers, s.n_headers, s.data, s.len, &o),
            ES_OK);
        assert_int_equal(o.len, len);
        assert_memory_equal(o.data, ev, len);
    }
    assert_int_equal(mem_dicts_gets(f->store), 2);

    /* Without its dictionary the frame does not decode. */
    es_header no_dict[] = {{ES_HDR_COMPRESSION, "zstd"}};
    assert_int_equal(es_envelope_open(reader, event(), EVENT_ID, no_dict, 1, s.data, s.len, &o),
                     ES_ERR_DECODE);
    es_sealed_free(&s);
    es_opened_free(&o);
    es_envelope_destroy(reader);
}

static void dictionary_trouble(void **state)
{
    dict_fixture *f = *state;
    es_envelope_options wo = {
        .compress = true, .compress_min = 64, .compress_dict = f->id, .dicts = &f->src};
    es_envelope *writer = NULL;
    assert_int_equal(es_envelope_create(&wo, &writer), ES_OK);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(
        es_envelope_seal(writer, event(), EVENT_ID, 0, f->samples.data, f->sizes[0], &s), ES_OK);
    es_envelope_options ro = {.dicts = &f->src};
    es_envelope *reader = NULL;
    assert_int_equal(es_envelope_create(&ro, &reader), ES_OK);
    es_opened o = ES_OPENED_INIT;

    /* An unknown dictionary id is a clear "not found". */
    es_header other[] = {{ES_HDR_COMPRESSION, "zstd"}, {ES_HDR_DICT, "4242"}};
    assert_int_equal(es_envelope_open(reader, event(), EVENT_ID, other, 2, s.data, s.len, &o),
                     ES_ERR_NOT_FOUND);
    /* Malformed ids are refused before any lookup. */
    unsigned gets = mem_dicts_gets(f->store);
    const char *bad_ids[] = {"0", "007", "-1", "4294967296", "12a", ""};
    for (size_t i = 0; i < ES_ARRAY_LEN(bad_ids); i++) {
        es_header h[] = {{ES_HDR_COMPRESSION, "zstd"}, {ES_HDR_DICT, bad_ids[i]}};
        assert_int_equal(es_envelope_open(reader, event(), EVENT_ID, h, 2, s.data, s.len, &o),
                         ES_ERR_DECODE);
    }
    assert_int_equal(mem_dicts_gets(f->store), gets);
    /* A source that fails: its status is the read's. */
    mem_dicts_fail(f->store, ES_ERR_TIMEOUT);
    assert_int_equal(
        es_envelope_open(reader, event(), EVENT_ID, s.headers, s.n_headers, s.data, s.len, &o),
        ES_ERR_TIMEOUT);
    mem_dicts_fail(f->store, ES_OK);
    /* A store without dictionaries reads "not found". */
    es_envelope_options none = {0};
    es_envelope *bare = NULL;
    assert_int_equal(es_envelope_create(&none, &bare), ES_OK);
    assert_int_equal(
        es_envelope_open(bare, event(), EVENT_ID, s.headers, s.n_headers, s.data, s.len, &o),
        ES_ERR_NOT_FOUND);
    /* A dictionary stored under an id that is not its own is refused. */
    mem_dicts_put(f->store, f->id + 1, f->dict.data, f->dict.len);
    char wrong[16];
    snprintf(wrong, sizeof wrong, "%u", (unsigned)(f->id + 1));
    es_header mislabelled[] = {{ES_HDR_COMPRESSION, "zstd"}, {ES_HDR_DICT, wrong}};
    assert_int_equal(es_envelope_open(reader, event(), EVENT_ID, mislabelled, 2, s.data, s.len, &o),
                     ES_ERR_DECODE);
    /* ... and so are bytes that are no dictionary at all (es_dict_id's
     * ES_ERR_INVALID comes through as is). */
    mem_dicts_put(f->store, 99, (const uint8_t *)"not a dictionary", 16);
    es_header garbage[] = {{ES_HDR_COMPRESSION, "zstd"}, {ES_HDR_DICT, "99"}};
    es_status st = es_envelope_open(reader, event(), EVENT_ID, garbage, 2, s.data, s.len, &o);
    assert_true(st == ES_ERR_INVALID || st == ES_ERR_DECODE);
    assert_null(o.data);

    /* A writer naming a dictionary the store lacks fails at creation. */
    es_envelope *missing = NULL;
    wo.compress_dict = 4242;
    assert_int_equal(es_envelope_create(&wo, &missing), ES_ERR_NOT_FOUND);
    assert_null(missing);

    es_sealed_free(&s);
    es_opened_free(&o);
    es_envelope_destroy(bare);
    es_envelope_destroy(reader);
    es_envelope_destroy(writer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(threshold_below_at_above),
        cmocka_unit_test(disabled_and_incompressible_stay_plain),
        cmocka_unit_test(round_trips),
        cmocka_unit_test(corrupt_data_is_refused),
        cmocka_unit_test(bombs_are_refused),
        cmocka_unit_test_setup_teardown(dictionary_training_and_ids, dict_setup, dict_teardown),
        cmocka_unit_test_setup_teardown(dictionary_round_trip, dict_setup, dict_teardown),
        cmocka_unit_test_setup_teardown(dictionary_trouble, dict_setup, dict_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
