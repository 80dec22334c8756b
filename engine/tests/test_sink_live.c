/* The sink against a live server (NATS_URL; skipped without it): units of
 * several keys, single events and atomic batches, stored exactly once and in
 * each key's order, with the watermark at the last position; offered again,
 * nothing new is stored; refusals (invalid events, a failed expectation with
 * the server's err_code) are dropped and passed; a store handle whose window
 * is smaller than the sink's answers ES_ERR_AGAIN, which is not a failure. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <es/es.h>

#include "nats_fixture.h"

#define UNITS     1500
#define REPLAYED  200
#define KEYS      17
#define MAX_ITEMS 4

typedef struct live {
    natsConnection *nc;
    char name[33];
    es_store *st;
    size_t dropped_by_status[ES_SINK_STATUS_SLOTS];
    int last_err_code;
    uint64_t stored_last_seq[UNITS + 1]; /* by position: what STORED said */
} live;

static int setup(void **state)
{
    live *l = calloc(1, sizeof *l);
    l->nc = fixture_connect();
    fixture_store_name(l->name);
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    live *l = *state;
    fixture_end_store(l->nc, l->name, l->st);
    free(l);
    return 0;
}

static void open_store(live *l, int max_inflight, int max_batches)
{
    es_store_options o;
    es_store_options_init(&o);
    o.max_inflight = max_inflight;
    o.max_batches_inflight = max_batches;
    assert_int_equal(es_store_create(l->nc, l->name, NULL, &o, &l->st), ES_OK);
}

static void on_outcome(const es_sink_outcome *o, void *closure)
{
    live *l = closure;
    if (o->kind == ES_SINK_STORED && o->position <= UNITS && !o->duplicate)
        l->stored_last_seq[o->position] = o->last_seq;
    if (o->kind == ES_SINK_DROPPED) {
        l->dropped_by_status[o->status < ES_SINK_STATUS_SLOTS ? o->status : 0]++;
        l->last_err_code = o->err_code;
    }
}

static es_sink *make_sink(live *l, size_t max_inflight, size_t max_batches)
{
    es_sink_options o;
    es_sink_options_init(&o);
    o.max_units = 256;
    o.max_inflight = max_inflight;
    o.max_batches = max_batches;
    o.on_outcome = on_outcome;
    o.closure = l;
    es_sink *sk;
    assert_int_equal(es_sink_create(l->st, &o, &sk), ES_OK);
    return sk;
}

/* Unit i: key k<i % KEYS>, position i + 1, 1..3 events "u<i>-<j>" on that key. */
static size_t unit_events(size_t i)
{
    return 1 + i % 3;
}

static void offer_unit(es_sink *sk, size_t i, const char *event_type)
{
    char key[16], ids[MAX_ITEMS][32];
    snprintf(key, sizeof key, "k%zu", i % KEYS);
    es_event_spec e[MAX_ITEMS];
    size_t n = unit_events(i);
    for (size_t j = 0; j < n; j++) {
        snprintf(ids[j], sizeof ids[j], "u%zu-%zu", i, j);
        es_event_spec_init(&e[j]);
        e[j].entity_type = "thing";
        e[j].entity_id = key;
        e[j].event_type = event_type;
        e[j].event_id = ids[j];
        e[j].data = ids[j];
        e[j].data_len = strlen(ids[j]);
    }
    es_sink_unit u = {.key = key, .position = i + 1, .events = e, .count = n};
    es_status s;
    while ((s = es_sink_offer(sk, &u)) == ES_ERR_AGAIN)
        es_sink_wait(sk, 100);
    assert_int_equal(s, ES_OK);
}

/* What the store holds: per event id, how often; per key, the unit order. */
typedef struct readback {
    unsigned char *seen; /* [unit * MAX_ITEMS + item] */
    long last_unit[KEYS];
    uint64_t last_seq[UNITS]; /* per unit, the stream sequence of its last event */
    size_t events;
    bool out_of_order;
} readback;

static es_status collect(const es_event *ev, void *closure)
{
    readback *r = closure;
    size_t unit, item, key;
    if (sscanf(es_event_event_id(ev), "u%zu-%zu", &unit, &item) != 2 || unit >= UNITS)
        return ES_ERR_DECODE;
    if (sscanf(es_event_entity_id(ev, NULL), "k%zu", &key) != 1 || key != unit % KEYS)
        return ES_ERR_DECODE;
    r->seen[unit * MAX_ITEMS + item]++;
    if (es_event_seq(ev) > r->last_seq[unit])
        r->last_seq[unit] = es_event_seq(ev);
    if ((long)unit < r->last_unit[key])
        r->out_of_order = true;
    r->last_unit[key] = (long)unit;
    r->events++;
    return ES_OK;
}

static readback read_back(es_store *st)
{
    readback r = {.seen = calloc(UNITS * MAX_ITEMS, 1)};
    for (size_t k = 0; k < KEYS; k++)
        r.last_unit[k] = -1;
    assert_int_equal(es_evolve(st, NULL, NULL, collect, &r, NULL), ES_OK);
    return r;
}

/* Offers units 0..n-1, polling as it goes, and waits until all are settled;
 * returns how many events they hold. */
static size_t offer_all(es_sink *sk, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        offer_unit(sk, i, "changed");
        total += unit_events(i);
        es_sink_poll(sk);
    }
    assert_int_equal(es_sink_drain(sk, 30000), ES_OK);
    return total;
}

static void units_are_stored_once_in_key_order(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    open_store(l, 256, 32);
    es_sink *sk = make_sink(l, 0, 4); /* few batch places: multi-event units are gathered */
    size_t total = offer_all(sk, UNITS);
    es_sink_stats st;
    es_sink_get_stats(sk, &st);
    assert_true(st.has_watermark);
    assert_int_equal(st.watermark, UNITS);
    assert_int_equal(st.events, total);
    assert_int_equal(st.dropped, 0);
    readback r = read_back(l->st);
    assert_int_equal(r.events, total);
    assert_false(r.out_of_order);
    for (size_t i = 0; i < UNITS; i++)
        for (size_t j = 0; j < unit_events(i); j++)
            assert_int_equal(r.seen[i * MAX_ITEMS + j], 1);
    /* each STORED outcome named where its unit's last event is, gathered
     * into a group or not */
    for (size_t i = 0; i < UNITS; i++)
        assert_int_equal(l->stored_last_seq[i + 1], r.last_seq[i]);
    free(r.seen);

    /* some of the units again (a replay after a restart): nothing new. (A
     * batch stored before costs the library a look at the store, so not
     * all of them.) */
    for (size_t i = 0; i < REPLAYED; i++)
        offer_unit(sk, i, "changed");
    assert_int_equal(es_sink_drain(sk, 30000), ES_OK);
    es_sink_get_stats(sk, &st);
    assert_int_equal(st.dropped, 0);
    assert_true(st.duplicates > 0);
    r = read_back(l->st);
    assert_int_equal(r.events, total);
    free(r.seen);
    es_sink_destroy(sk);
}

static void refusals_are_dropped_and_passed(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    open_store(l, 256, 32);
    es_sink *sk = make_sink(l, 0, 0);
    offer_unit(sk, 0, "changed");
    offer_unit(sk, 1, "not a name"); /* refused by the store's checks */
    offer_unit(sk, 2, "changed");
    assert_int_equal(es_sink_drain(sk, 10000), ES_OK);
    /* an expectation that cannot hold: k0 exists */
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = "thing";
    e.entity_id = "k0";
    e.event_type = "created";
    e.expect = ES_EXPECT_NEW;
    es_sink_unit u = {.key = "k0", .position = 10, .events = &e, .count = 1};
    assert_int_equal(es_sink_offer(sk, &u), ES_OK);
    assert_int_equal(es_sink_drain(sk, 10000), ES_OK);
    assert_int_equal(l->dropped_by_status[ES_ERR_INVALID], 1);
    assert_int_equal(l->dropped_by_status[ES_ERR_CONFLICT], 1);
    assert_int_equal(l->last_err_code, 10071); /* the server's code, in the outcome */
    /* data its codec does not decode: dropped at once, never retried */
    e.expect = ES_EXPECT_ANY;
    e.codec = "json";
    e.data = "a: 1";
    e.data_len = 4;
    u.position = 11;
    assert_int_equal(es_sink_offer(sk, &u), ES_OK);
    assert_int_equal(es_sink_drain(sk, 10000), ES_OK);
    assert_int_equal(l->dropped_by_status[ES_ERR_DECODE], 1);
    uint64_t w;
    assert_true(es_sink_watermark(sk, &w));
    assert_int_equal(w, 11);
    readback r = read_back(l->st);
    assert_int_equal(r.events, unit_events(0) + unit_events(2));
    free(r.seen);
    es_sink_destroy(sk);
}

static void a_store_window_smaller_than_the_sinks_is_not_a_failure(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    open_store(l, 2, 1); /* es_append_batch_try_async says ES_ERR_AGAIN often */
    es_sink *sk = make_sink(l, 64, 16);
    size_t total = offer_all(sk, 300);
    es_sink_stats st;
    es_sink_get_stats(sk, &st);
    assert_int_equal(st.events, total);
    assert_int_equal(st.retries, 0);
    for (size_t k = 0; k < ES_SINK_STATUS_SLOTS; k++)
        assert_int_equal(st.failures[k], 0);
    readback r = read_back(l->st);
    assert_int_equal(r.events, total);
    assert_false(r.out_of_order);
    free(r.seen);
    es_sink_destroy(sk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(units_are_stored_once_in_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(refusals_are_dropped_and_passed, setup, teardown),
        cmocka_unit_test_setup_teardown(a_store_window_smaller_than_the_sinks_is_not_a_failure,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
