/* Out of memory in the envelope: every allocation of sealing and opening
 * fails in turn (base/tests/failalloc.h) — compression with and without a
 * dictionary (and its cache), encryption with keys created and found again
 * (in-memory keys, memstore.h), shredding, upcasting. Each run reports
 * ES_ERR_NOMEM, leaks nothing and does not crash. zstd's and libsodium's own
 * allocations are not the library's: they never fail here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <es/envelope.h>
#include <es/upcast.h>

#include "base/tests/failalloc.h"
#include "memstore.h"

#define SAMPLES 400

typedef struct fixture {
    uint8_t payload[4096]; /* compressible, over the threshold */
    mem_keys *keys;
    mem_dicts *dicts;
    es_dict_source src;
    uint32_t dict_id;
    unsigned entities; /* a fresh entity per run: its key is created anew */
} fixture;

static fixture fx;

/* Seals the payload for `subject` with `o`, opens it again and compares;
 * `schema` is written, `want_schema` expected after upcasting. */
static es_status roundtrip(const es_envelope_options *o, const char *subject, uint32_t schema,
                           uint32_t want_schema, const uint8_t *want, size_t want_len)
{
    es_envelope *env = NULL;
    es_sealed sealed = ES_SEALED_INIT;
    es_opened opened = ES_OPENED_INIT;
    es_envelope_event ev = mem_event(subject);
    es_status s = es_envelope_create(o, &env);
    if (s == ES_OK)
        s = es_envelope_seal(env, &ev, "event-1", schema, fx.payload, sizeof fx.payload, &sealed);
    if (s == ES_OK && o->compress && sealed.len >= sizeof fx.payload)
        s = ES_ERR_PROTOCOL; /* not compressed */
    if (s == ES_OK)
        s = es_envelope_open(env, &ev, "event-1", sealed.headers, sealed.n_headers, sealed.data,
                             sealed.len, &opened);
    if (s == ES_OK && (opened.schema != want_schema || opened.len != want_len ||
                       memcmp(opened.data, want, want_len) != 0))
        s = ES_ERR_PROTOCOL;
    es_opened_free(&opened);
    es_sealed_free(&sealed);
    es_envelope_destroy(env);
    return s;
}

static es_status compress_op(void *ctx)
{
    const es_dict_source *dicts = ctx;
    es_envelope_options o = {.compress = true,
                             .compress_min = 64,
                             .dicts = dicts,
                             .compress_dict = dicts ? fx.dict_id : 0};
    return roundtrip(&o, "$ES.shop.order.1.created", 0, 1, fx.payload, sizeof fx.payload);
}

static void compression_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(compress_op, NULL, 1);
    failalloc_expect_nomem(compress_op, &fx.src,
                           1); /* the dictionary is loaded into the envelope's cache */
}

/* ---- encryption ------------------------------------------------------------------ */

static es_status encrypt_op(void *ctx)
{
    const bool *fresh = ctx;
    static const uint8_t master[ES_MASTER_KEY_BYTES] = {42};
    es_keyring_backend b = mem_keys_backend(fx.keys);
    es_keyring_options ko = {.master_key = master, .cache_size = 4};
    es_keyring *kr = NULL;
    es_status s = es_keyring_create(&b, &ko, &kr);
    char subject[64];
    snprintf(subject, sizeof subject, "$ES.shop.order.%u.created", *fresh ? ++fx.entities : 0);
    es_envelope_options o = {.encrypt = true, .keyring = kr, .compress = true};
    if (s == ES_OK)
        s = roundtrip(&o, subject, 0, 1, fx.payload, sizeof fx.payload);
    if (s == ES_OK && *fresh) { /* shred it: reading it now says so */
        char entity[64];
        snprintf(entity, sizeof entity, "$ES.shop.order.%u", fx.entities);
        s = es_keyring_shred(kr, entity);
        es_status again =
            s == ES_OK ? roundtrip(&o, subject, 0, 1, fx.payload, sizeof fx.payload) : s;
        s = again == ES_ERR_SHREDDED ? ES_OK : again;
    }
    es_keyring_destroy(kr);
    return s;
}

static void encryption_out_of_memory(void **state)
{
    (void)state;
    bool fresh = true, known = false;
    failalloc_expect_nomem(encrypt_op, &fresh, 1); /* the entity's key is created, used, shredded */
    failalloc_expect_nomem(encrypt_op, &known,
                           1); /* the key exists in the backend: fetched and cached */
}

/* ---- upcasting ----------------------------------------------------------------- */

/* v1 -> v2: prefix "v2:"; v2 -> v3: prefix "v3:". */
static es_status prefix_step(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    es_status s = es_buf_append_str(out, ctx);
    return s == ES_OK ? es_buf_append(out, in, len) : s;
}

static es_status upcast_op(void *ctx)
{
    (void)ctx;
    es_upcasters *up = NULL;
    es_status s = es_upcasters_create(0, &up);
    if (s == ES_OK)
        s = es_upcasters_add(up, "order", "created", 1, prefix_step, "v2:");
    if (s == ES_OK)
        s = es_upcasters_add(up, "order", "created", 2, prefix_step, "v3:");
    static uint8_t want[3 + 3 + sizeof fx.payload];
    memcpy(want, "v3:v2:", 6);
    memcpy(want + 6, fx.payload, sizeof fx.payload);
    es_envelope_options o = {.upcasters = up, .compress = true};
    if (s == ES_OK)
        s = roundtrip(&o, "$ES.shop.order.7.created", 1, 3, want, sizeof want);
    es_upcasters_destroy(up);
    return s;
}

static void upcasting_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(upcast_op, NULL, 1);
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fx.payload; i++)
        fx.payload[i] = (uint8_t)("{\"order\":42,\"lines\":[1,2,3]}"[i % 28]);
    fx.keys = mem_keys_create();
    /* A small dictionary of similar events. */
    es_buf samples = ES_BUF_INIT, dict = ES_BUF_INIT;
    size_t sizes[SAMPLES];
    for (int i = 0; i < SAMPLES; i++) {
        char ev[160];
        int k = snprintf(ev, sizeof ev,
                         "{\"type\":\"order-created\",\"customer\":\"cust-%05d\",\"lines\":"
                         "[{\"sku\":\"SKU-%04d\",\"qty\":%d}]}",
                         i * 7919 % 100000, i % 1000, i % 9 + 1);
        sizes[i] = (size_t)k;
        assert_int_equal(es_buf_append(&samples, ev, (size_t)k), ES_OK);
    }
    assert_int_equal(es_dict_train(samples.data, sizes, SAMPLES, 4096, &dict, &fx.dict_id), ES_OK);
    fx.dicts = mem_dicts_create();
    mem_dicts_put(fx.dicts, fx.dict_id, dict.data, dict.len);
    fx.src = mem_dicts_source(fx.dicts);
    es_buf_free(&samples);
    es_buf_free(&dict);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mem_dicts_free(fx.dicts);
    mem_keys_release(fx.keys);
    return 0;
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compression_out_of_memory),
        cmocka_unit_test(encryption_out_of_memory),
        cmocka_unit_test(upcasting_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
