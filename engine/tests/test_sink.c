/* The keyed ordered sink (sink.c) against a stand-in for the store that
 * records each append and answers when the test says: the watermark over
 * out-of-order acknowledgements, per-key order, retries with the same events
 * and ids, refusals, the store's full window, the bounds, the gathering of
 * multi-event units into one atomic batch, outcomes with the server's code
 * and text, a denial stopping the sink, and destruction with appends in
 * flight. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <es/read.h>
#include <es/sink.h>

#include "base/clock.h"
#include "sink_impl.h"

#define MAX_SENT 256
#define ID_MAX   64

typedef struct sent {
    es_append_cb cb;
    void *closure;
    size_t n;
    char first_id[ID_MAX];
    char first_entity[ID_MAX];
    char first_data[ID_MAX];
    char first_filter[ID_MAX]; /* "<type>/<id>/<event>" of events[0].expect_filter */
    bool answered;
} sent;

typedef struct fixture {
    es_sink *sk;
    sent units[MAX_SENT];
    size_t sent;
    es_status refuse_next; /* the append's own answer, once */
    es_sink_outcome last;  /* the last outcome reported, its text copied */
    char last_error[128];
    size_t outcomes[4]; /* by kind */
} fixture;

static es_status fake_append(void *ctx, const es_event_spec *events, size_t n, es_append_cb cb,
                             void *closure)
{
    fixture *f = ctx;
    if (f->refuse_next != ES_OK) {
        es_status s = f->refuse_next;
        f->refuse_next = ES_OK;
        return s == ES_ERR_AGAIN ? es_error(s, "window full") : es_error(s, "refused at once");
    }
    assert_true(f->sent < MAX_SENT);
    sent *u = &f->units[f->sent++];
    u->cb = cb;
    u->closure = closure;
    u->n = n;
    snprintf(u->first_id, sizeof u->first_id, "%s", events[0].event_id);
    snprintf(u->first_entity, sizeof u->first_entity, "%.*s", (int)events[0].entity_id_len,
             events[0].entity_id);
    snprintf(u->first_data, sizeof u->first_data, "%.*s", (int)events[0].data_len,
             (const char *)events[0].data);
    const es_filter *xf = events[0].expect_filter;
    if (xf != NULL)
        snprintf(u->first_filter, sizeof u->first_filter, "%s/%.*s/%s", xf->entity_type,
                 (int)xf->entity_id_len, xf->entity_id, xf->event_type);
    return ES_OK;
}

static void on_outcome(const es_sink_outcome *o, void *closure)
{
    fixture *f = closure;
    f->last = *o;
    snprintf(f->last_error, sizeof f->last_error, "%s", o->error);
    f->last.error = f->last_error;
    f->last.key = NULL;
    f->outcomes[o->kind]++;
}

/* A sink over the fake append whose retries wait retry_ms (+-25 %). */
static fixture *make_retrying(const es_sink_options *custom, int64_t retry_ms)
{
    fixture *f = calloc(1, sizeof *f);
    es_sink_options o;
    es_sink_options_init(&o);
    if (custom)
        o = *custom;
    o.retry_min_ms = o.retry_max_ms = retry_ms;
    o.on_outcome = on_outcome;
    o.closure = f;
    assert_int_equal(esi_sink_create_with(&o, 256, 32, fake_append, f, &f->sk), ES_OK);
    return f;
}

static fixture *make(const es_sink_options *custom)
{
    return make_retrying(custom, 1);
}

/* Answers append i. */
static void answer(fixture *f, size_t i, es_status s, bool duplicate, int err_code,
                   const char *error)
{
    assert_true(i < f->sent);
    assert_false(f->units[i].answered);
    f->units[i].answered = true;
    es_append_result r = {.count = f->units[i].n,
                          .duplicate = duplicate,
                          .err_code = err_code,
                          .error = error ? error : ""};
    f->units[i].cb(s, &r, f->units[i].closure);
}

static void ack(fixture *f, size_t i)
{
    answer(f, i, ES_OK, false, 0, NULL);
}

static void destroy(fixture *f)
{
    for (size_t i = 0; i < f->sent; i++)
        if (!f->units[i].answered)
            ack(f, i);
    es_sink_destroy(f->sk);
    free(f);
}

/* Offers a unit of `events` events on entity `key` (also the unit's key) at
 * `position`, with payloads "<key>:<position>:<i>"; the ids are left to the
 * sink. */
static es_status offer(fixture *f, const char *key, uint64_t position, size_t events)
{
    es_event_spec e[8];
    char data[8][64];
    assert_true(events <= 8);
    for (size_t i = 0; i < events; i++) {
        es_event_spec_init(&e[i]);
        e[i].entity_type = "thing";
        e[i].entity_id = key;
        e[i].event_type = "changed";
        int n =
            snprintf(data[i], sizeof data[i], "%s:%llu:%zu", key, (unsigned long long)position, i);
        e[i].data = data[i];
        e[i].data_len = (size_t)n;
    }
    es_sink_unit u = {.key = key, .position = position, .events = e, .count = events};
    es_status s = es_sink_offer(f->sk, &u);
    memset(data, 'x', sizeof data); /* the sink must have copied what it keeps */
    return s;
}

static es_sink_stats stats(fixture *f)
{
    es_sink_poll(f->sk);
    es_sink_stats st;
    es_sink_get_stats(f->sk, &st);
    return st;
}

static void key_of(char out[16], size_t i)
{
    snprintf(out, 16, "k%zu", i);
}

static void watermark_moves_over_a_settled_prefix_only(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    char key[16];
    for (size_t i = 0; i < 10; i++) {
        key_of(key, i);
        assert_int_equal(offer(f, key, 100 + i, 1), ES_OK);
    }
    assert_int_equal(f->sent, 10);  /* distinct keys: all in flight at once */
    for (size_t i = 9; i >= 1; i--) /* every ack but the first one's */
        ack(f, i);
    es_sink_stats st = stats(f);
    assert_false(st.has_watermark);
    assert_int_equal(st.held, 10);
    ack(f, 0);
    st = stats(f);
    uint64_t w;
    assert_true(es_sink_watermark(f->sk, &w));
    assert_int_equal(w, 109);
    assert_int_equal(st.events, 10);
    assert_int_equal(f->outcomes[ES_SINK_STORED], 10);
    assert_true(es_sink_idle(f->sk));
    destroy(f);
}

static void one_key_one_append_at_a_time(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(offer(f, "did:plc:one", i + 1, 1), ES_OK);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(f->sent, i + 1); /* the next waits for this one */
        char want[64];
        snprintf(want, sizeof want, "did:plc:one:%zu:0", i + 1);
        assert_string_equal(f->units[i].first_data, want); /* in offer order */
        assert_int_equal(stats(f).inflight, 1);
        ack(f, i);
        stats(f);
    }
    assert_true(es_sink_idle(f->sk));
    destroy(f);
}

static void keys_are_independent_and_the_empty_key_is_unordered(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    assert_int_equal(offer(f, "a", 1, 1), ES_OK);
    assert_int_equal(offer(f, "b", 2, 1), ES_OK);
    assert_int_equal(offer(f, "a", 3, 1), ES_OK); /* waits for a@1 */
    assert_int_equal(offer(f, "", 4, 1), ES_OK);
    assert_int_equal(offer(f, "", 5, 1), ES_OK);
    assert_int_equal(f->sent, 4);
    assert_string_equal(f->units[2].first_data, ":4:0");
    assert_string_equal(f->units[3].first_data, ":5:0");
    ack(f, 1); /* b@2: a@3 still waits for a@1 */
    stats(f);
    assert_int_equal(f->sent, 4);
    ack(f, 0);
    stats(f);
    assert_int_equal(f->sent, 5);
    assert_string_equal(f->units[4].first_data, "a:3:0");
    destroy(f);
}

static void a_failed_append_goes_again_with_the_same_ids_before_later_ones(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(offer(f, "did:plc:r", 10 + i, 1), ES_OK);
    assert_int_equal(f->sent, 1);
    answer(f, 0, ES_ERR_TIMEOUT, false, 0, "no answer");
    es_sink_stats st = stats(f);
    assert_false(st.has_watermark);
    assert_int_equal(f->last.kind, ES_SINK_RETRYING);
    assert_int_equal(f->last.attempts, 1);
    assert_string_equal(f->last_error, "no answer");
    esi_sleep_ms(5);
    st = stats(f); /* the backoff passed: sent again, and only it */
    assert_int_equal(f->sent, 2);
    assert_string_equal(f->units[1].first_id, f->units[0].first_id); /* ids chosen once */
    assert_string_equal(f->units[1].first_data, "did:plc:r:10:0");
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.failures[ES_ERR_TIMEOUT], 1);
    answer(f, 1, ES_OK, true, 0, NULL); /* it had been stored after all */
    st = stats(f);
    assert_int_equal(st.watermark, 10);
    assert_int_equal(st.duplicates, 1);
    assert_true(f->last.duplicate);
    assert_int_equal(f->sent, 3); /* the next of the key, only now */
    destroy(f);
}

static void es_sink_wait_wakes_up_for_a_retry(void **state)
{
    (void)state;
    es_sink_options o;
    es_sink_options_init(&o);
    /* 300 ms: the retry is not yet due when the failure is taken (with 1 ms
     * a slow run, under valgrind, sent it at once, and the second wait
     * had only an acknowledgement to wait for) */
    fixture *f = make_retrying(&o, 300);
    assert_int_equal(offer(f, "k", 1, 1), ES_OK);
    answer(f, 0, ES_ERR_CONNECTION, false, 0, "connection lost");
    int64_t start = esi_monotonic_ms();
    assert_int_equal(es_sink_wait(f->sk, 5000), ES_OK); /* the ack */
    assert_int_equal(f->sent, 1);
    assert_int_equal(es_sink_wait(f->sk, 5000), ES_OK); /* the retry's 300 ms, not 5 s */
    assert_true(esi_monotonic_ms() - start < 1000);
    assert_int_equal(f->sent, 2);
    ack(f, 1);
    assert_int_equal(es_sink_drain(f->sk, 1000), ES_OK);
    assert_int_equal(es_sink_wait(f->sk, 10), ES_ERR_TIMEOUT); /* nothing left to happen */
    destroy(f);
}

static void a_refusal_for_good_is_dropped_and_the_watermark_moves_on(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    assert_int_equal(offer(f, "a", 1, 1), ES_OK);
    assert_int_equal(offer(f, "b", 2, 1), ES_OK);
    answer(f, 0, ES_ERR_CONFLICT, false, 10071, "wrong last sequence: 3");
    ack(f, 1);
    es_sink_stats st = stats(f);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.failures[ES_ERR_CONFLICT], 1);
    assert_int_equal(st.watermark, 2);
    assert_int_equal(f->outcomes[ES_SINK_DROPPED], 1);
    assert_true(es_sink_idle(f->sk));
    destroy(f);
}

/* A denial is not retried (the user's permissions do not change by
 * waiting) nor dropped (the watermark would pass what was never stored):
 * the sink stops with ES_ERR_PERMISSION, sends nothing more, and keeps the
 * unit held. Before the fix it was retried after its backoff, forever. */
static void a_denial_stops_the_sink_without_retry_or_drop(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    assert_int_equal(offer(f, "a", 1, 1), ES_OK);
    assert_int_equal(offer(f, "b", 2, 1), ES_OK);
    assert_int_equal(offer(f, "c", 3, 1), ES_OK);
    assert_int_equal(f->sent, 3);
    ack(f, 0);
    answer(f, 1, ES_ERR_PERMISSION, false, 0,
           "not permitted: Permissions Violation for Publish to \"x.b\"");
    es_sink_stats st = stats(f);
    assert_int_equal(f->last.kind, ES_SINK_STOPPED);
    assert_int_equal(f->last.status, ES_ERR_PERMISSION);
    assert_int_equal(f->outcomes[ES_SINK_STOPPED], 1);
    assert_int_equal(f->outcomes[ES_SINK_RETRYING], 0);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.watermark, 1); /* not past the refused unit */
    assert_int_equal(es_sink_stopped(f->sk), ES_ERR_PERMISSION);
    assert_non_null(strstr(es_last_error(), "x.b"));
    ack(f, 2);       /* what was in flight is still taken */
    esi_sleep_ms(5); /* past the 1 ms backoff a retry would wait */
    assert_int_equal(es_sink_wait(f->sk, 50), ES_ERR_PERMISSION);
    assert_int_equal(f->sent, 3); /* never sent again */
    assert_int_equal(f->outcomes[ES_SINK_STORED], 2);
    int64_t start = esi_monotonic_ms();
    assert_int_equal(es_sink_drain(f->sk, 5000), ES_ERR_PERMISSION);
    assert_true(esi_monotonic_ms() - start < 1000); /* at once, not at the timeout */
    assert_int_equal(offer(f, "d", 4, 1), ES_ERR_PERMISSION);
    st = stats(f);
    assert_int_equal(st.held, 2); /* b (refused) and c (stored, behind b) */
    assert_int_equal(st.watermark, 1);
    destroy(f);
}

static void outcomes_carry_the_server_code_and_text(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    assert_int_equal(offer(f, "a", 7, 2), ES_OK);
    answer(f, 0, ES_ERR_SERVER, false, 10077, "insufficient resources (err_code 10077)");
    stats(f);
    assert_int_equal(f->last.kind, ES_SINK_RETRYING);
    assert_int_equal(f->last.status, ES_ERR_SERVER);
    assert_int_equal(f->last.err_code, 10077);
    assert_string_equal(f->last_error, "insufficient resources (err_code 10077)");
    assert_int_equal(f->last.position, 7);
    assert_int_equal(f->last.events, 2);
    assert_true(f->last.retry_in_ms >= 0);
    destroy(f);
}

static void an_event_refused_before_sending_is_dropped_at_once(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    f->refuse_next = ES_ERR_INVALID;
    assert_int_equal(offer(f, "a", 1, 1), ES_OK);
    assert_int_equal(f->sent, 0);
    es_sink_stats st = stats(f);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.watermark, 1);
    assert_string_equal(f->last_error, "refused at once");
    destroy(f);
}

static void an_expect_filter_is_copied_with_its_event(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    char type[16] = "order", id[16] = "o1", event[16] = "placed";
    es_filter scope = {.entity_type = type, .entity_id = id, .event_type = event};
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = "thing";
    e.entity_id = "k1";
    e.event_type = "changed";
    e.expect = ES_EXPECT_NEW;
    e.expect_filter = &scope;
    es_sink_unit u = {.key = "k1", .position = 1, .events = &e, .count = 1};
    assert_int_equal(es_sink_offer(f->sk, &u), ES_OK);
    memset(type, 'x', sizeof type - 1); /* the sink must have copied what it keeps */
    memset(id, 'x', sizeof id - 1);
    memset(event, 'x', sizeof event - 1);
    memset(&scope, 0, sizeof scope);
    assert_int_equal(f->sent, 1);
    assert_string_equal(f->units[0].first_filter, "order/o1/placed");
    destroy(f);
}

static void max_attempts_bounds_the_retries(void **state)
{
    (void)state;
    es_sink_options o;
    es_sink_options_init(&o);
    o.max_attempts = 2;
    fixture *f = make(&o);
    assert_int_equal(offer(f, "a", 1, 1), ES_OK);
    answer(f, 0, ES_ERR_TIMEOUT, false, 0, "no answer");
    stats(f);
    esi_sleep_ms(5);
    stats(f);
    assert_int_equal(f->sent, 2);
    answer(f, 1, ES_ERR_TIMEOUT, false, 0, "no answer");
    es_sink_stats st = stats(f);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(f->last.kind, ES_SINK_DROPPED);
    assert_int_equal(f->last.attempts, 2);
    assert_true(es_sink_idle(f->sk));
    destroy(f);
}

static void the_store_window_full_is_not_a_failure(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    f->refuse_next = ES_ERR_AGAIN; /* es_append_batch_try_async: no room now */
    assert_int_equal(offer(f, "a", 1, 1), ES_OK);
    assert_int_equal(f->sent, 0);
    esi_sleep_ms(5);
    es_sink_stats st = stats(f);
    assert_int_equal(f->sent, 1);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.failures[ES_ERR_AGAIN], 0);
    ack(f, 0);
    assert_true(stats(f).has_watermark);
    destroy(f);
}

static void units_without_events_settle_at_once(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    assert_int_equal(offer(f, "a", 1, 1), ES_OK);
    assert_int_equal(offer(f, "a", 2, 0), ES_OK); /* e.g. a frame refused or filtered out */
    assert_int_equal(offer(f, "b", 0, 1), ES_OK); /* no position */
    assert_int_equal(offer(f, NULL, 3, 0), ES_OK);
    assert_int_equal(f->sent, 2);
    ack(f, 0);
    es_sink_stats st = stats(f);
    assert_int_equal(st.watermark, 2); /* b waits */
    ack(f, 1);
    st = stats(f);
    assert_int_equal(st.watermark, 3);
    assert_int_equal(st.offered, 4);
    assert_int_equal(st.settled, 4);
    destroy(f);
}

static void memory_is_bounded(void **state)
{
    (void)state;
    es_sink_options o;
    es_sink_options_init(&o);
    o.max_units = 8;
    o.max_inflight = 4;
    fixture *f = make(&o);
    char key[16];
    size_t offered = 0;
    while (es_sink_has_room(f->sk)) {
        key_of(key, offered);
        assert_int_equal(offer(f, key, offered + 1, 1), ES_OK);
        offered++;
    }
    assert_int_equal(offered, 8);
    assert_int_equal(f->sent, 4); /* max_inflight */
    assert_int_equal(stats(f).queued, 4);
    assert_int_equal(offer(f, "late", 99, 1), ES_ERR_AGAIN); /* nothing taken */
    assert_int_equal(stats(f).offered, 8);
    ack(f, 0);
    stats(f);
    assert_true(es_sink_has_room(f->sk));
    assert_int_equal(f->sent, 5);
    destroy(f);

    /* bytes: offers stop once max_bytes is reached (one unit past it at most) */
    es_sink_options_init(&o);
    o.max_bytes = 1000;
    o.max_inflight = 1;
    f = make(&o);
    es_sink_stats st = stats(f);
    for (offered = 0; es_sink_has_room(f->sk); offered++) {
        key_of(key, offered);
        assert_int_equal(offer(f, key, offered + 1, 2), ES_OK);
        st = stats(f);
    }
    assert_true(offered >= 2 && offered < 20);
    assert_true(st.bytes_held >= 1000);
    assert_int_equal(offer(f, "late", 99, 1), ES_ERR_AGAIN);
    destroy(f);
}

static void offers_it_cannot_take_are_refused(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    es_sink_unit u = {.key = "a", .position = 1, .events = NULL, .count = 1};
    assert_int_equal(es_sink_offer(f->sk, &u), ES_ERR_INVALID);
    es_event_spec e;
    es_event_spec_init(&e);
    u.events = &e;
    u.count = ES_BATCH_MAX + 1;
    assert_int_equal(es_sink_offer(f->sk, &u), ES_ERR_TOO_LARGE);
    assert_int_equal(es_sink_offer(NULL, &u), ES_ERR_INVALID);
    assert_int_equal(stats(f).offered, 0);
    destroy(f);
}

static void multi_event_units_waiting_are_gathered_into_one_batch(void **state)
{
    (void)state;
    es_sink_options o;
    es_sink_options_init(&o);
    o.max_batches = 1;
    fixture *f = make(&o);
    char key[16];
    size_t events = 0;
    for (size_t i = 0; i < 12; i++) {
        key_of(key, i);
        assert_int_equal(offer(f, key, i + 1, 2 + i % 2), ES_OK);
        events += 2 + i % 2;
    }
    offer(f, "single", 13, 1); /* a single event goes alone, at once */
    assert_int_equal(f->sent, 2);
    assert_int_equal(f->units[1].n, 1);
    ack(f, 1);
    ack(f, 0); /* the only batch place is free again */
    stats(f);
    assert_int_equal(f->sent, 3); /* the eleven others, together */
    assert_int_equal(f->units[0].n + f->units[2].n, events);
    /* refused as a partial duplicate: each goes again alone */
    answer(f, 2, ES_ERR_DUPLICATE, false, 10201, "partly stored before");
    stats(f);
    assert_int_equal(f->sent, 4); /* one batch place: one at a time now */
    for (size_t i = 3; i < f->sent; i++) {
        ack(f, i);
        stats(f);
    }
    assert_int_equal(f->sent, 3 + 11);
    es_sink_stats st = stats(f);
    assert_true(es_sink_idle(f->sk));
    assert_int_equal(st.watermark, 13);
    assert_int_equal(st.events, events + 1);
    assert_int_equal(st.dropped, 0);
    destroy(f);
}

static void a_unit_of_one_key_is_never_gathered_with_the_next_of_that_key(void **state)
{
    (void)state;
    es_sink_options o;
    es_sink_options_init(&o);
    o.max_batches = 1;
    fixture *f = make(&o);
    offer(f, "x", 1, 2); /* takes the batch place */
    offer(f, "y", 2, 2);
    offer(f, "y", 3, 2);
    offer(f, "z", 4, 2);
    ack(f, 0);
    stats(f);
    assert_int_equal(f->sent, 2);
    assert_int_equal(f->units[1].n, 4); /* y@2 and z@4; y@3 waits for y@2 */
    ack(f, 1);
    stats(f);
    assert_int_equal(f->sent, 3);
    assert_string_equal(f->units[2].first_data, "y:3:0");
    destroy(f);
}

static void gathering_can_be_turned_off(void **state)
{
    (void)state;
    es_sink_options o;
    es_sink_options_init(&o);
    o.max_batches = 1;
    o.group_max_events = 1;
    fixture *f = make(&o);
    char key[16];
    for (size_t i = 0; i < 4; i++) {
        key_of(key, i);
        offer(f, key, i + 1, 2);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(f->sent, i + 1);
        assert_int_equal(f->units[i].n, 2);
        ack(f, i);
        stats(f);
    }
    destroy(f);
}

/* ---- threads ----------------------------------------------------------------- */

typedef struct late_acker {
    fixture *f;
    size_t from, to;
} late_acker;

static void *ack_later(void *arg)
{
    late_acker *a = arg;
    esi_sleep_ms(50);
    for (size_t i = a->from; i < a->to; i++)
        ack(a->f, i);
    return NULL;
}

static void wake(void *ctx)
{
    (*(int *)ctx)++;
}

static void acknowledgements_from_another_thread_wake_the_driver(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    int woken = 0;
    es_sink_on_wake(f->sk, wake, &woken);
    char key[16];
    for (size_t i = 0; i < 5; i++) {
        key_of(key, i);
        offer(f, key, i + 1, 1);
    }
    late_acker a = {f, 0, 5};
    pthread_t t;
    pthread_create(&t, NULL, ack_later, &a);
    assert_int_equal(es_sink_drain(f->sk, 5000), ES_OK);
    pthread_join(t, NULL);
    assert_int_equal(woken, 5);
    assert_int_equal(stats(f).watermark, 5);
    es_sink_on_wake(f->sk, NULL, NULL);
    destroy(f);
}

static void destroy_waits_for_appends_in_flight(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    char key[16];
    for (size_t i = 0; i < 3; i++) {
        key_of(key, i);
        offer(f, key, i + 1, 1);
    }
    late_acker a = {f, 0, 3};
    pthread_t t;
    pthread_create(&t, NULL, ack_later, &a);
    es_sink_destroy(f->sk); /* returns only after the three callbacks */
    pthread_join(t, NULL);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(watermark_moves_over_a_settled_prefix_only),
        cmocka_unit_test(one_key_one_append_at_a_time),
        cmocka_unit_test(keys_are_independent_and_the_empty_key_is_unordered),
        cmocka_unit_test(a_failed_append_goes_again_with_the_same_ids_before_later_ones),
        cmocka_unit_test(es_sink_wait_wakes_up_for_a_retry),
        cmocka_unit_test(a_refusal_for_good_is_dropped_and_the_watermark_moves_on),
        cmocka_unit_test(outcomes_carry_the_server_code_and_text),
        cmocka_unit_test(an_event_refused_before_sending_is_dropped_at_once),
        cmocka_unit_test(an_expect_filter_is_copied_with_its_event),
        cmocka_unit_test(max_attempts_bounds_the_retries),
        cmocka_unit_test(the_store_window_full_is_not_a_failure),
        cmocka_unit_test(units_without_events_settle_at_once),
        cmocka_unit_test(memory_is_bounded),
        cmocka_unit_test(offers_it_cannot_take_are_refused),
        cmocka_unit_test(multi_event_units_waiting_are_gathered_into_one_batch),
        cmocka_unit_test(a_unit_of_one_key_is_never_gathered_with_the_next_of_that_key),
        cmocka_unit_test(gathering_can_be_turned_off),
        cmocka_unit_test(acknowledgements_from_another_thread_wake_the_driver),
        cmocka_unit_test(destroy_waits_for_appends_in_flight),
        cmocka_unit_test(a_denial_stops_the_sink_without_retry_or_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
