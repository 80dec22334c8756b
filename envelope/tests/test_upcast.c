/* Upcasting: chains, their bounds, registry rules, and upcasting on read by
 * the types the event names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <es/envelope.h>
#include <es/upcast.h>

#include "base/internal.h"
#include "memstore.h"

/* Appends ",v<N+1>" where ctx points at N: the output shows every step. */
static es_status add_version(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    char tag[16];
    int k = snprintf(tag, sizeof tag, ",v%u", *(const unsigned *)ctx + 1);
    es_status s = es_buf_append(out, in, len);
    return s ? s : es_buf_append(out, tag, (size_t)k);
}

static es_status refuse(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    (void)ctx, (void)in, (void)len, (void)out;
    return ES_ERR_DECODE;
}

/* Doubles its input: a runaway chain must hit the size bound. */
static es_status double_it(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    (void)ctx;
    es_status s = es_buf_append(out, in, len);
    return s ? s : es_buf_append(out, in, len);
}

static unsigned versions[200];

static es_upcasters *order_chain(unsigned max_chain, unsigned upto)
{
    es_upcasters *r = NULL;
    assert_int_equal(es_upcasters_create(max_chain, &r), ES_OK);
    for (unsigned v = 1; v < upto; v++) {
        versions[v] = v;
        assert_int_equal(es_upcasters_add(r, "order", "created", v, add_version, &versions[v]),
                         ES_OK);
    }
    return r;
}

static void expect_upcast(const es_upcasters *r, const char *type, const char *event, uint32_t from,
                          const char *in, const char *want, uint32_t want_version)
{
    es_buf out = ES_BUF_INIT;
    uint32_t v = from;
    assert_int_equal(es_upcast(r, type, event, &v, (const uint8_t *)in, strlen(in), 1 << 20, &out),
                     ES_OK);
    assert_int_equal(v, want_version);
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    es_buf_free(&out);
}

static void chains(void **state)
{
    (void)state;
    es_upcasters *r = order_chain(0, 4); /* 1→2→3→4 */
    expect_upcast(r, "order", "created", 1, "x", "x,v2,v3,v4", 4);
    expect_upcast(r, "order", "created", 2, "x", "x,v3,v4", 4);
    expect_upcast(r, "order", "created", 4, "x", "x", 4);        /* current: untouched */
    expect_upcast(r, "order", "created", 9, "x", "x", 9);        /* newer than known */
    expect_upcast(r, "order", "shipped", 1, "x", "x", 1);        /* other event */
    expect_upcast(r, "orders", "created", 1, "x", "x", 1);       /* other entity type */
    expect_upcast(r, "orde", "created", 1, "x", "x", 1);         /* prefix of a type */
    expect_upcast(r, "order", "created", 1, "", ",v2,v3,v4", 4); /* empty payload */
    /* A gap stops the chain: nothing registered from 4, so 5→6 is unreachable. */
    versions[5] = 5;
    assert_int_equal(es_upcasters_add(r, "order", "created", 5, add_version, &versions[5]), ES_OK);
    expect_upcast(r, "order", "created", 1, "x", "x,v2,v3,v4", 4);
    expect_upcast(r, "order", "created", 5, "x", "x,v6", 6);
    es_upcasters_destroy(r);
}

static void many_registrations_in_any_order(void **state)
{
    (void)state;
    es_upcasters *r = NULL;
    assert_int_equal(es_upcasters_create(0, &r), ES_OK);
    static const char *types[] = {"b", "a", "c-1", "A", "a_b"};
    static const char *events[] = {"z", "y", "Y", "x0"};
    static unsigned from[] = {7, 3, 1, 5};
    for (size_t t = 0; t < 5; t++)
        for (size_t e = 0; e < 4; e++)
            for (size_t f = 0; f < 4; f++)
                assert_int_equal(
                    es_upcasters_add(r, types[t], events[e], from[f], add_version, &from[f]),
                    ES_OK);
    for (size_t t = 0; t < 5; t++)
        for (size_t e = 0; e < 4; e++) {
            char want[16];
            for (size_t f = 0; f < 4; f++) {
                snprintf(want, sizeof want, "x,v%u", from[f] + 1);
                expect_upcast(r, types[t], events[e], from[f], "x", want, from[f] + 1);
            }
            expect_upcast(r, types[t], events[e], 2, "x", "x", 2);
        }
    es_upcasters_destroy(r);
}

static void bounds(void **state)
{
    (void)state;
    es_buf out = ES_BUF_INIT;
    uint32_t v;
    /* Chain length: exactly max_chain steps pass, one more does not. */
    es_upcasters *r = order_chain(3, 5); /* 1→…→5: four steps */
    v = 2;
    assert_int_equal(es_upcast(r, "order", "created", &v, (const uint8_t *)"x", 1, 100, &out),
                     ES_OK);
    assert_int_equal(v, 5);
    v = 1;
    assert_int_equal(es_upcast(r, "order", "created", &v, (const uint8_t *)"x", 1, 100, &out),
                     ES_ERR_LIMIT);
    assert_non_null(strstr(es_last_error(), "steps"));
    es_upcasters_destroy(r);

    r = order_chain(150, 150); /* 149 steps, all allowed */
    v = 1;
    assert_int_equal(es_upcast(r, "order", "created", &v, (const uint8_t *)"x", 1, 4096, &out),
                     ES_OK);
    assert_int_equal(v, 150);
    es_upcasters_destroy(r);

    /* Output size: a doubling chain stops at the bound. */
    es_upcasters *r2 = NULL;
    assert_int_equal(es_upcasters_create(64, &r), ES_OK);
    for (uint32_t i = 1; i <= 40; i++)
        assert_int_equal(es_upcasters_add(r, "t", "e", i, double_it, NULL), ES_OK);
    v = 1;
    assert_int_equal(es_upcast(r, "t", "e", &v, (const uint8_t *)"abcd", 4, 1000, &out),
                     ES_ERR_LIMIT);
    v = 1;
    assert_int_equal(es_upcast(r, "t", "e", &v, (const uint8_t *)"abcd", 4, 1 << 16, &out),
                     ES_ERR_LIMIT);
    v = 1;
    assert_int_equal(es_upcasters_create(14, &r2), ES_OK);
    for (uint32_t i = 1; i <= 14; i++)
        assert_int_equal(es_upcasters_add(r2, "t", "e", i, double_it, NULL), ES_OK);
    assert_int_equal(es_upcast(r2, "t", "e", &v, (const uint8_t *)"abcd", 4, 1 << 16, &out),
                     ES_OK); /* 4 << 14 == 1 << 16: exactly the bound */
    assert_int_equal(out.len, 1 << 16);
    es_upcasters_destroy(r2);
    es_upcasters_destroy(r);

    /* An upcaster's failure is the read's failure. */
    assert_int_equal(es_upcasters_create(0, &r), ES_OK);
    assert_int_equal(es_upcasters_add(r, "t", "e", 1, refuse, NULL), ES_OK);
    v = 1;
    assert_int_equal(es_upcast(r, "t", "e", &v, (const uint8_t *)"x", 1, 100, &out), ES_ERR_DECODE);
    assert_non_null(strstr(es_last_error(), "t/e from version 1"));
    es_upcasters_destroy(r);
    es_buf_free(&out);
}

static void registry_rules(void **state)
{
    (void)state;
    es_upcasters *r = NULL;
    assert_int_equal(es_upcasters_create(0, &r), ES_OK);
    unsigned one = 1;
    assert_int_equal(es_upcasters_add(r, "order", "created", 1, add_version, &one), ES_OK);
    assert_int_equal(es_upcasters_add(r, "order", "created", 1, add_version, &one), ES_ERR_EXISTS);
    assert_int_equal(es_upcasters_add(r, "order", "created", 0, add_version, &one), ES_ERR_INVALID);
    assert_int_equal(es_upcasters_add(r, "order", "created", UINT32_MAX, add_version, &one),
                     ES_ERR_INVALID);
    assert_int_equal(es_upcasters_add(r, "order", "created", 2, NULL, NULL), ES_ERR_INVALID);
    const char *bad[] = {"", "a.b", "a b", "a*", ">", "é", NULL};
    for (size_t i = 0; i < ES_ARRAY_LEN(bad); i++) {
        assert_int_equal(es_upcasters_add(r, bad[i], "created", 3, add_version, &one),
                         ES_ERR_INVALID);
        assert_int_equal(es_upcasters_add(r, "order", bad[i], 3, add_version, &one),
                         ES_ERR_INVALID);
    }
    assert_int_equal(es_upcasters_add(NULL, "a", "b", 1, add_version, NULL), ES_ERR_INVALID);
    es_buf out = ES_BUF_INIT;
    uint32_t v = 1;
    assert_int_equal(es_upcast(r, NULL, "created", &v, (const uint8_t *)"x", 1, 10, &out),
                     ES_ERR_INVALID);
    assert_int_equal(es_upcast(r, "order", "created", &v, NULL, 1, 10, &out), ES_ERR_INVALID);
    assert_int_equal(es_upcasters_create(0, NULL), ES_ERR_INVALID);
    es_upcasters_destroy(NULL);
    es_upcasters_destroy(r);
}

static void upcast_on_read(void **state)
{
    (void)state;
    es_upcasters *r = order_chain(0, 4);
    es_envelope_options o = {.upcasters = r, .compress = true, .compress_min = 16};
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    es_opened out = ES_OPENED_INIT;

    /* No Es-Schema: version 1, the whole chain. */
    es_envelope_event ev = mem_event("$ES.shop.order.42.created");
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 0, (const uint8_t *)"x", 1, &out),
                     ES_OK);
    assert_int_equal(out.stored_schema, 1);
    assert_int_equal(out.schema, 4);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, "x,v2,v3,v4", 10);

    /* Es-Schema: 3, under tenancy. */
    es_header h[] = {{ES_HDR_SCHEMA, "3"}};
    es_envelope_event tenant = mem_event("$ES.shop.acme.order.42.created");
    assert_int_equal(es_envelope_open(env, &tenant, "id", h, 1, (const uint8_t *)"x", 1, &out),
                     ES_OK);
    assert_int_equal(out.stored_schema, 3);
    assert_int_equal(out.schema, 4);
    assert_memory_equal(out.data, "x,v4", 4);

    /* Other event types pass untouched, without a copy. */
    const uint8_t payload[] = "y";
    es_envelope_event shipped = mem_event("$ES.shop.order.42.shipped");
    assert_int_equal(es_envelope_open(env, &shipped, "id", NULL, 0, payload, 1, &out), ES_OK);
    assert_ptr_equal(out.data, payload);
    assert_int_equal(out.schema, 1);

    /* Upcasting sees decompressed bytes. */
    char text[64];
    memset(text, 'q', sizeof text);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(env, &ev, "id", 2, (const uint8_t *)text, sizeof text, &s),
                     ES_OK);
    assert_int_equal(s.n_headers, 2); /* compression, schema */
    assert_int_equal(es_envelope_open(env, &ev, "id", s.headers, s.n_headers, s.data, s.len, &out),
                     ES_OK);
    assert_int_equal(out.schema, 4);
    assert_int_equal(out.len, sizeof text + 6);
    assert_memory_equal(out.data, text, sizeof text);
    assert_memory_equal(out.data + sizeof text, ",v3,v4", 6);

    /* Bad Es-Schema values are malformed headers. */
    const char *bad[] = {"0", "01", "-1", "+1", " 1", "1 ", "4294967296", "abc", ""};
    for (size_t i = 0; i < ES_ARRAY_LEN(bad); i++) {
        es_header b[] = {{ES_HDR_SCHEMA, bad[i]}};
        assert_int_equal(es_envelope_open(env, &ev, "id", b, 1, (const uint8_t *)"x", 1, &out),
                         ES_ERR_DECODE);
    }
    es_header max[] = {{ES_HDR_SCHEMA, "4294967295"}};
    assert_int_equal(es_envelope_open(env, &ev, "id", max, 1, (const uint8_t *)"x", 1, &out),
                     ES_OK);
    assert_int_equal(out.schema, UINT32_MAX);

    es_sealed_free(&s);
    es_opened_free(&out);
    es_envelope_destroy(env);
    es_upcasters_destroy(r);
}

/* Upcasters are picked by the types the event names, exactly (lengths
 * included), never by reading its subject. */
static void types_come_from_the_event(void **state)
{
    (void)state;
    es_upcasters *r = order_chain(0, 3);
    es_envelope_options o = {.upcasters = r};
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    es_opened out = ES_OPENED_INIT;
    const uint8_t *x = (const uint8_t *)"x";

    /* A subject that says "invoice ... paid", for an event that is an order
     * created: the event wins. */
    const char *subject = "$ES.shop.invoice.7.paid";
    es_envelope_event ev = mem_event(subject);
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 0, x, 1, &out), ES_OK);
    assert_int_equal(out.schema, 1);
    ev.entity_type = "order";
    ev.entity_type_len = 5;
    ev.event_type = "created";
    ev.event_type_len = 7;
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 0, x, 1, &out), ES_OK);
    assert_int_equal(out.schema, 3);
    assert_memory_equal(out.data, "x,v2,v3", 7);

    /* Types are not NUL-terminated at their lengths: a longer string whose
     * first bytes name the type counts as that type, and only those bytes. */
    ev.entity_type = "orders";
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 0, x, 1, &out), ES_OK);
    assert_int_equal(out.schema, 3);
    ev.entity_type_len = 6;
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 0, x, 1, &out), ES_OK);
    assert_int_equal(out.schema, 1);
    ev.entity_type_len = 4; /* "orde" */
    assert_int_equal(es_envelope_open(env, &ev, "id", NULL, 0, x, 1, &out), ES_OK);
    assert_int_equal(out.schema, 1);

    es_opened_free(&out);
    es_envelope_destroy(env);
    es_upcasters_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chains),         cmocka_unit_test(many_registrations_in_any_order),
        cmocka_unit_test(bounds),         cmocka_unit_test(registry_rules),
        cmocka_unit_test(upcast_on_read), cmocka_unit_test(types_come_from_the_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
