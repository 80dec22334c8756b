/* The envelope as the core uses it: arguments, headers, subjects, the full
 * write and read pipeline (the last through a live server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <es/envelope.h>

#include "envelope_internal.h"
#include "nats_fixture.h"

#define SUBJECT "$ES.shop.order.42.created"

static es_envelope *make(const es_envelope_options *o)
{
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(NULL, "shop", o, &env), ES_OK);
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
    assert_int_equal(es_envelope_create(NULL, "shop", NULL, &env), ES_ERR_INVALID);
    assert_int_equal(es_envelope_create(NULL, "shop", &o, NULL), ES_ERR_INVALID);
    const char *bad[] = {"", "a.b", "a b", "$ES", "123456789012345678901234567890123", NULL};
    for (size_t i = 0; i < ES_ARRAY_LEN(bad); i++) {
        assert_int_equal(es_envelope_create(NULL, bad[i], &o, &env), ES_ERR_INVALID);
        assert_null(env);
    }
    assert_int_equal(es_envelope_create(NULL, "12345678901234567890123456789012", &o, &env), ES_OK);
    es_envelope_destroy(env);
    o.compress_level = 99;
    assert_int_equal(es_envelope_create(NULL, "shop", &o, &env), ES_ERR_INVALID);
    o.compress_level = -1;
    assert_int_equal(es_envelope_create(NULL, "shop", &o, &env), ES_ERR_INVALID);
    /* A dictionary needs a connection to load it. */
    o.compress_level = 0;
    o.compress_dict = 77;
    assert_int_equal(es_envelope_create(NULL, "shop", &o, &env), ES_ERR_INVALID);
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
    es_sealed s = ES_SEALED_INIT;
    es_opened r = ES_OPENED_INIT;
    const uint8_t *p = (const uint8_t *)"x";
    assert_int_equal(es_envelope_seal(NULL, SUBJECT, "id", 0, p, 1, &s), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, NULL, "id", 0, p, 1, &s), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, SUBJECT, NULL, 0, p, 1, &s), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, SUBJECT, "id", 0, NULL, 1, &s), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, SUBJECT, "id", 0, p, 1, NULL), ES_ERR_INVALID);
    assert_int_equal(es_envelope_seal(env, SUBJECT, "id", 0, NULL, 0, &s), ES_OK);
    assert_int_equal(s.len, 0);
    assert_int_equal(es_envelope_open(NULL, SUBJECT, "id", NULL, 0, p, 1, &r), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, NULL, "id", NULL, 0, p, 1, &r), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, SUBJECT, "id", NULL, 1, p, 1, &r), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, SUBJECT, "id", NULL, 0, NULL, 1, &r), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, SUBJECT, "id", NULL, 0, p, 1, NULL), ES_ERR_INVALID);
    assert_int_equal(es_envelope_open(env, SUBJECT, NULL, NULL, 0, p, 1, &r), ES_OK);
    /* Not event subjects. */
    const char *bad[] = {"",           "nodots",      "a.b",         "a.b.c",
                         "$ES.s.t..e", "$ES.s.t.id.", "$ES.s..id.e", "...."};
    for (size_t i = 0; i < ES_ARRAY_LEN(bad); i++) {
        assert_int_equal(es_envelope_seal(env, bad[i], "id", 0, p, 1, &s), ES_ERR_INVALID);
        assert_int_equal(es_envelope_open(env, bad[i], "id", NULL, 0, p, 1, &r), ES_ERR_INVALID);
    }
    es_envelope_destroy(env);
}

static void subject_split(void **state)
{
    (void)state;
    es_env_subject p;
    assert_int_equal(es_env_subject_split("$ES.bank.account.did:web:x%2Ecom.opened", &p), ES_OK);
    assert_int_equal(p.entity_len, strlen("$ES.bank.account.did:web:x%2Ecom"));
    assert_memory_equal(p.type, "account", p.type_len);
    assert_int_equal(p.type_len, 7);
    assert_memory_equal(p.event, "opened", p.event_len);
    assert_int_equal(p.event_len, 6);
    /* With a tenant, counted from the end all the same. */
    assert_int_equal(es_env_subject_split("$ES.bank.acme.account.7.opened", &p), ES_OK);
    assert_memory_equal(p.entity, "$ES.bank.acme.account.7", p.entity_len);
    assert_memory_equal(p.type, "account", p.type_len);
    /* Three tokens after something: the smallest accepted shape. */
    assert_int_equal(es_env_subject_split("x.t.i.e", &p), ES_OK);
    assert_int_equal(p.entity_len, 5);
}

static void headers_on_write(void **state)
{
    (void)state;
    es_envelope_options o = {.compress = true, .compress_min = 8};
    es_envelope *env = make(&o);
    es_sealed s = ES_SEALED_INIT;
    const uint8_t text[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(es_envelope_seal(env, SUBJECT, "id", 4294967295u, text, sizeof text, &s),
                     ES_OK);
    assert_int_equal(s.n_headers, 2);
    assert_string_equal(s.headers[0].name, "Es-Compression");
    assert_string_equal(s.headers[0].value, "zstd");
    assert_string_equal(s.headers[1].name, "Es-Schema");
    assert_string_equal(s.headers[1].value, "4294967295");
    /* Schema 0 writes nothing: the event reads as version 1. */
    assert_int_equal(es_envelope_seal(env, SUBJECT, "id", 0, text, 4, &s), ES_OK);
    assert_int_equal(s.n_headers, 0);
    assert_int_equal(es_envelope_seal(env, SUBJECT, "id", 1, text, 4, &s), ES_OK);
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
    es_opened r = ES_OPENED_INIT;
    const uint8_t p[] = "payload";
    /* Other headers are none of the envelope's business; names are exact;
     * a NULL value counts as absent. */
    es_header h[] = {{"Rita-Type", "created"}, {"es-schema", "9"},
                     {"Es-Schema ", "9"},      {NULL, "x"},
                     {ES_HDR_SCHEMA, NULL},    {ES_HDR_SCHEMA, "5"}};
    assert_int_equal(es_envelope_open(env, SUBJECT, "id", h, ES_ARRAY_LEN(h), p, 7, &r), ES_OK);
    assert_int_equal(r.schema, 5);
    assert_ptr_equal(r.data, p); /* nothing to undo: no copy */
    assert_int_equal(r.len, 7);
    es_header twice[] = {{ES_HDR_SCHEMA, "5"}, {ES_HDR_SCHEMA, "5"}};
    assert_int_equal(es_envelope_open(env, SUBJECT, "id", twice, 2, p, 7, &r), ES_ERR_DECODE);
    assert_null(r.data);
    assert_int_equal(r.len, 0);
    es_opened_free(&r);
    es_envelope_destroy(env);
}

/* ---- the whole pipeline (live server) ----------------------------------- */

static es_status to_v2(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    (void)ctx;
    es_status s = es_buf_append_str(out, "v2:");
    return s ? s : es_buf_append(out, in, len);
}

static void full_pipeline(void **state)
{
    (void)state;
    natsConnection *nc = fixture_connect();
    REQUIRE_NATS(nc);
    char store[33];
    fixture_store_name(store);
    static const uint8_t master[ES_MASTER_KEY_BYTES] = {9, 9, 9};
    es_keyring_options ko = {.master_key = master};
    es_keyring *kr = NULL;
    assert_int_equal(es_keyring_create(nc, store, &ko, &kr), ES_OK);
    es_upcasters *up = NULL;
    assert_int_equal(es_upcasters_create(0, &up), ES_OK);
    assert_int_equal(es_upcasters_add(up, "order", "created", 1, to_v2, NULL), ES_OK);
    es_envelope_options o = {.compress = true, .encrypt = true, .keyring = kr, .upcasters = up};
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(nc, store, &o, &env), ES_OK);

    char subject[96];
    snprintf(subject, sizeof subject, "$ES.%s.order.42.created", store);
    static uint8_t text[3000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)("{\"sku\":\"A-1\",\"qty\":2}"[i % 22]);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(env, subject, "ev-1", 1, text, sizeof text, &s), ES_OK);
    /* Compressed, then encrypted: small, and in the documented order. */
    assert_int_equal(s.n_headers, 3);
    assert_string_equal(s.headers[0].name, ES_HDR_COMPRESSION);
    assert_string_equal(s.headers[1].name, ES_HDR_KEY);
    assert_string_equal(s.headers[2].name, ES_HDR_SCHEMA);
    assert_true(s.len < 200);

    /* Headers arrive in any order on read. */
    es_header h[3] = {s.headers[2], s.headers[0], s.headers[1]};
    es_opened r = ES_OPENED_INIT;
    assert_int_equal(es_envelope_open(env, subject, "ev-1", h, 3, s.data, s.len, &r), ES_OK);
    assert_int_equal(r.stored_schema, 1);
    assert_int_equal(r.schema, 2);
    assert_int_equal(r.len, 3 + sizeof text);
    assert_memory_equal(r.data, "v2:", 3);
    assert_memory_equal(r.data + 3, text, sizeof text);

    /* Shredding makes the same event unreadable, with its own status. */
    char entity[96];
    snprintf(entity, sizeof entity, "$ES.%s.order.42", store);
    assert_int_equal(es_keyring_shred(kr, entity), ES_OK);
    assert_int_equal(es_envelope_open(env, subject, "ev-1", h, 3, s.data, s.len, &r),
                     ES_ERR_SHREDDED);
    assert_null(r.data);

    es_sealed_free(&s);
    es_opened_free(&r);
    es_envelope_destroy(env);
    es_upcasters_destroy(up);
    es_keyring_destroy(kr);
    fixture_drop_store(nc, store);
    /* Deleting buckets that are gone is fine. */
    assert_int_equal(es_envelope_delete_buckets(nc, store), ES_OK);
    assert_int_equal(es_envelope_delete_buckets(nc, "bad.name"), ES_ERR_INVALID);
    fixture_disconnect(nc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_names),        cmocka_unit_test(create_arguments),
        cmocka_unit_test(seal_open_arguments), cmocka_unit_test(subject_split),
        cmocka_unit_test(headers_on_write),    cmocka_unit_test(headers_on_read),
        cmocka_unit_test(full_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
