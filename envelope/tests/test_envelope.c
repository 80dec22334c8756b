/* The envelope as the engine uses it: arguments, the event it is given,
 * headers, and the full write and read pipeline (compression with a
 * dictionary, encryption, upcasting, shredding) over in-memory keys and
 * dictionaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <es/envelope.h>

#include "envelope_internal.h"
#include "memstore.h"

#define SUBJECT "$ES.shop.order.42.created"

static es_envelope *make(const es_envelope_options *o)
{
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(o, &env), ES_OK);
    return env;
}

static void header_names(void **state)
{
    (void)state;
    assert_string_equal(es_envelope_header_names[0], "Es-Compression");
    assert_string_equal(es_envelope_header_names[1], "Es-Dict");
    assert_string_equal(es_envelope_header_names[2], "Es-Key");
    assert_string_equal(es_envelope_header_names[3], "Es-Schema");
}

static void create_arguments(void **state)
{
    (void)state;
    es_envelope_options o = {0};
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(NULL, &env), ES_ERR_INVALID);
    assert_int_equal(es_envelope_create(&o, NULL), ES_ERR_INVALID);
    o.compress_level = 99;
    assert_int_equal(es_envelope_create(&o, &env), ES_ERR_INVALID);
    assert_null(env);
    o.compress_level = -1;
    assert_int_equal(es_envelope_create(&o, &env), ES_ERR_INVALID);
    assert_null(env);
    o.compress_level = 19;
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    es_envelope_destroy(env);
    /* A dictionary to write with needs a source to load it from. */
    o.compress_level = 0;
    o.compress_dict = 77;
    assert_int_equal(es_envelope_create(&o, &env), ES_ERR_NOT_FOUND);
    assert_null(env);
    es_envelope_destroy(NULL);
    es_sealed_free(NULL);
    es_opened_free(NULL);
}

static void seal_open_arguments(void **state)
{
    (void)state;
    es_envelope_options o = {0};
    es_envelope *env = make(&o);
    es_envelope_event ev = mem_event(SUBJECT);
    es_sealed s = ES_SEALED_INIT;
    es_opened r = ES_OPENED_INIT;
    const uint8_t *p = (const uint8_t *)"x";
    assert_int_equal(es_envelope_seal(NULL, &ev, "id", 0, p, 1, &s), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, NULL, "id", 0, p, 1, &s), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, &ev, NULL, 0, p, 1, &s), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, &ev, "id", 0, NULL, 1, &s), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, &ev, "id", 0, p, 1, NULL), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, &ev, "id", 0, NULL, 0, &s), ES_OK);
    assert_int_equal(s.len, 0);
    assert_int_equal(es_envelope_open(NULL, &ev, "id", NULL, 0, p, 1, &r), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, NULL, "id", NULL, 0, p, 1, &r), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 1, p, 1, &r), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 0, NULL, 1, &r), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 0, p, 1, NULL), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, &ev, NULL, NULL, 0, p, 1, &r), ES_OK);
    assert_ptr_equal(r.data, p);
    es_sealed_free(&s);
    es_opened_free(&r);
    es_envelope_destroy(env);
}

/* `ev` with one part taken away (subject, entity, entity type, event type:
 * pointer or length). */
static es_envelope_event without(es_envelope_event ev, int part)
{
    switch (part) {
    case 0: ev.subject = NULL; break;
    case 1: ev.entity = NULL; break;
    case 2: ev.entity_len = 0; break;
    case 3: ev.entity_type = NULL; break;
    case 4: ev.entity_type_len = 0; break;
    case 5: ev.event_type = NULL; break;
    default: ev.event_type_len = 0; break;
    }
    return ev;
}

/* The envelope no longer reads subjects: the engine names the event's parts,
 * and an event lacking one is refused before anything else happens, also
 * when there is nothing to encrypt or upcast. */
static void incomplete_event_refused(void **state)
{
    (void)state;
    mem_keys *keys = mem_keys_create();
    es_keyring_backend b = mem_keys_backend(keys);
    static const uint8_t master[ES_MASTER_KEY_BYTES] = {5};
    es_keyring_options ko = {.master_key = master};
    es_keyring *kr = NULL;
    assert_int_equal(es_keyring_create(&b, &ko, &kr), ES_OK);
    es_envelope_options plain = {0}, enc = {.encrypt = true, .keyring = kr};
    es_envelope *envs[2] = {make(&plain), make(&enc)};
    const es_envelope_event whole = mem_event(SUBJECT);
    es_sealed s = ES_SEALED_INIT;
    es_opened r = ES_OPENED_INIT;
    const uint8_t *p = (const uint8_t *)"x";
    for (int e = 0; e < 2; e++)
        for (int part = 0; part < 7; part++) {
            es_envelope_event ev = without(whole, part);
            assert_int_equal(es_envelope_seal(envs[e], &ev, "id", 2, p, 1, &s), ES_ERR_INVALID);
            assert_int_equal(s.n_headers, 0);
            assert_null(s.data);
            assert_int_equal(es_envelope_open(envs[e], &ev, "id", NULL, 0, p, 1, &r),
                             ES_ERR_INVALID);
            assert_null(r.data);
        }
    /* Nothing reached the keys: the refusal came first. */
    mem_keys_stats st;
    mem_keys_stats_get(keys, &st);
    assert_int_equal(st.calls[MEM_GET] + st.calls[MEM_CREATE], 0);
    es_envelope_destroy(envs[0]);
    es_envelope_destroy(envs[1]);
    es_keyring_destroy(kr);
    mem_keys_release(keys);
}

/* The tests' own subject splitting, which every other test relies on. */
static void event_helper_splits_from_the_end(void **state)
{
    (void)state;
    es_envelope_event ev = mem_event("$ES.bank.account.did:web:x%2Ecom.opened");
    assert_int_equal(ev.entity_len, strlen("$ES.bank.account.did:web:x%2Ecom"));
    assert_memory_equal(ev.entity_type, "account", ev.entity_type_len);
    assert_int_equal(ev.entity_type_len, 7);
    assert_memory_equal(ev.event_type, "opened", ev.event_type_len);
    assert_int_equal(ev.event_type_len, 6);
    /* With a tenant, counted from the end all the same. */
    ev = mem_event("$ES.bank.acme.account.7.opened");
    assert_memory_equal(ev.entity, "$ES.bank.acme.account.7", ev.entity_len);
    assert_memory_equal(ev.entity_type, "account", ev.entity_type_len);
    /* Three tokens after something: the smallest shape. */
    ev = mem_event("x.t.i.e");
    assert_int_equal(ev.entity_len, 5);
}

static void headers_on_write(void **state)
{
    (void)state;
    es_envelope_options o = {.compress = true, .compress_min = 8};
    es_envelope *env = make(&o);
    es_envelope_event ev = mem_event(SUBJECT);
    es_sealed s = ES_SEALED_INIT;
    const uint8_t text[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(es_envelope_seal(env, &ev, "id", 4294967295u, text, sizeof text, &s), ES_OK);
    assert_int_equal(s.n_headers, 2);
    assert_string_equal(s.headers[0].name, "Es-Compression");
    assert_string_equal(s.headers[0].value, "zstd");
    assert_string_equal(s.headers[1].name, "Es-Schema");
    assert_string_equal(s.headers[1].value, "4294967295");
    /* Schema 0 writes nothing: the event reads as version 1. */
    assert_int_equal(es_envelope_seal(env, &ev, "id", 0, text, 4, &s), ES_OK);
    assert_int_equal(s.n_headers, 0);
    assert_int_equal(es_envelope_seal(env, &ev, "id", 1, text, 4, &s), ES_OK);
    assert_int_equal(s.n_headers, 1);
    assert_string_equal(s.headers[0].value, "1");
    es_sealed_free(&s);
    es_envelope_destroy(env);
}

static void headers_on_read(void **state)
{
    (void)state;
    es_envelope_options o = {0};
    es_envelope *env = make(&o);
    es_envelope_event ev = mem_event(SUBJECT);
    es_opened r = ES_OPENED_INIT;
    const uint8_t p[] = "payload";
    /* Other headers are none of the envelope's business; names are exact;
     * a NULL value counts as absent. */
    es_header h[] = {{"Rita-Type", "created"}, {"es-schema", "9"},
                     {"Es-Schema ", "9"},      {NULL, "x"},
                     {ES_HDR_SCHEMA, NULL},    {ES_HDR_SCHEMA, "5"}};
    assert_int_equal(es_envelope_open(env, &ev, "id", h, ES_ARRAY_LEN(h), p, 7, &r), ES_OK);
    assert_int_equal(r.schema, 5);
    assert_ptr_equal(r.data, p); /* nothing to undo: no copy */
    assert_int_equal(r.len, 7);
    es_header twice[] = {{ES_HDR_SCHEMA, "5"}, {ES_HDR_SCHEMA, "5"}};
    assert_int_equal(es_envelope_open(env, &ev, "id", twice, 2, p, 7, &r), ES_ERR_DECODE);
    assert_null(r.data);
    assert_int_equal(r.len, 0);
    es_opened_free(&r);
    es_envelope_destroy(env);
}

/* ---- the whole pipeline -------------------------------------------------- */

static es_status to_v2(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    (void)ctx;
    es_status s = es_buf_append_str(out, "v2:");
    return s ? s : es_buf_append(out, in, len);
}

/* Order-like JSON records, `n` of them laid end to end in `all`. */
static void order_samples(es_buf *all, size_t *sizes, int n)
{
    for (int i = 0; i < n; i++) {
        char ev[160];
        int k = snprintf(ev, sizeof ev,
                         "{\"sku\":\"SKU-%04d\",\"qty\":%d,\"customer\":\"cust-%05d\","
                         "\"currency\":\"EUR\",\"channel\":\"web\"}",
                         i % 1000, i % 9 + 1, i * 7919 % 100000);
        sizes[i] = (size_t)k;
        assert_int_equal(es_buf_append(all, ev, (size_t)k), ES_OK);
    }
}

/* Every stage at once, through envelopes that share nothing but the keys
 * and dictionaries (a writer and a reader process). */
static void full_pipeline(void **state)
{
    (void)state;
    enum { N = 1000 };
    es_buf samples = ES_BUF_INIT, dict = ES_BUF_INIT;
    size_t sizes[N];
    order_samples(&samples, sizes, N);
    uint32_t dict_id = 0;
    assert_int_equal(es_dict_train(samples.data, sizes, N, 8 << 10, &dict, &dict_id), ES_OK);
    mem_dicts *dicts = mem_dicts_create();
    mem_dicts_put(dicts, dict_id, dict.data, dict.len);
    es_dict_source src = mem_dicts_source(dicts);
    mem_keys *keys = mem_keys_create();
    static const uint8_t master[ES_MASTER_KEY_BYTES] = {9, 9, 9};
    es_keyring_options ko = {.master_key = master};
    es_keyring *wkr = NULL, *rkr = NULL;
    es_keyring_backend b = mem_keys_backend(keys);
    assert_int_equal(es_keyring_create(&b, &ko, &wkr), ES_OK);
    b = mem_keys_backend(keys);
    assert_int_equal(es_keyring_create(&b, &ko, &rkr), ES_OK);
    es_upcasters *up = NULL;
    assert_int_equal(es_upcasters_create(0, &up), ES_OK);
    assert_int_equal(es_upcasters_add(up, "order", "created", 1, to_v2, NULL), ES_OK);
    es_envelope_options wo = {.compress = true,
                              .compress_min = 64,
                              .compress_dict = dict_id,
                              .dicts = &src,
                              .encrypt = true,
                              .keyring = wkr};
    es_envelope_options ro = {.dicts = &src, .encrypt = true, .keyring = rkr, .upcasters = up};
    es_envelope *writer = make(&wo), *reader = make(&ro);

    es_envelope_event ev = mem_event(SUBJECT);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(writer, &ev, "ev-1", 1, samples.data, sizes[0], &s), ES_OK);
    /* Compressed with the dictionary, then encrypted: in the documented
     * order, and smaller than the plaintext despite the nonce and tag. */
    assert_int_equal(s.n_headers, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(s.headers[i].name, es_envelope_header_names[i]);
    char id_text[16];
    snprintf(id_text, sizeof id_text, "%u", (unsigned)dict_id);
    assert_string_equal(s.headers[1].value, id_text);
    assert_true(s.len < sizes[0]);

    /* Headers arrive in any order on read. */
    es_header h[4] = {s.headers[3], s.headers[1], s.headers[0], s.headers[2]};
    es_opened r = ES_OPENED_INIT;
    assert_int_equal(es_envelope_open(reader, &ev, "ev-1", h, 4, s.data, s.len, &r), ES_OK);
    assert_int_equal(r.stored_schema, 1);
    assert_int_equal(r.schema, 2);
    assert_int_equal(r.len, 3 + sizes[0]);
    assert_memory_equal(r.data, "v2:", 3);
    assert_memory_equal(r.data + 3, samples.data, sizes[0]);

    /* Shredding makes the same event unreadable, with its own status. */
    assert_int_equal(es_keyring_shred(rkr, "$ES.shop.order.42"), ES_OK);
    assert_int_equal(es_envelope_open(reader, &ev, "ev-1", h, 4, s.data, s.len, &r),
                     ES_ERR_SHREDDED);
    assert_null(r.data);

    es_sealed_free(&s);
    es_opened_free(&r);
    es_envelope_destroy(writer);
    es_envelope_destroy(reader);
    es_upcasters_destroy(up);
    es_keyring_destroy(wkr);
    es_keyring_destroy(rkr);
    assert_int_equal(mem_keys_refs(keys), 1);
    mem_keys_release(keys);
    mem_dicts_free(dicts);
    es_buf_free(&dict);
    es_buf_free(&samples);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_names),
        cmocka_unit_test(create_arguments),
        cmocka_unit_test(seal_open_arguments),
        cmocka_unit_test(incomplete_event_refused),
        cmocka_unit_test(event_helper_splits_from_the_end),
        cmocka_unit_test(headers_on_write),
        cmocka_unit_test(headers_on_read),
        cmocka_unit_test(full_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
