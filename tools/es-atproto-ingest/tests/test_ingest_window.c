/* The ingester's in-flight window (window.c) with a stand-in for the store:
 * the cursor watermark over out-of-order acknowledgements, per-repository
 * order, retries with the same events, refusals, bounds, and the gathering
 * of multi-op commits into one atomic batch. Frames come from the
 * adapter's generator (real DAG-CBOR, real CIDs). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <es/atproto.h>
#include <es/buf.h>

#include "atproto_gen.h"
#include "window.h"

#define MAX_FRAMES 64
#define MAX_SENT   256

typedef struct sent {
    ingest_entry *token;
    size_t n;
    char first_id[300];
} sent;

typedef struct fixture {
    es_buf frames[MAX_FRAMES];
    size_t count;
    es_atp_decoder *dec;
    es_arena *arena;
    ingest_window *w;
    sent units[MAX_SENT];
    size_t sent;
    es_status refuse_next; /* the send function's answer, once */
} fixture;

static es_status fake_send(void *ctx, const es_event_spec *events, size_t n, ingest_entry *token)
{
    fixture *f = ctx;
    if (f->refuse_next != ES_OK) {
        es_status s = f->refuse_next;
        f->refuse_next = ES_OK;
        return s;
    }
    assert_true(f->sent < MAX_SENT);
    sent *u = &f->units[f->sent++];
    u->token = token;
    u->n = n;
    snprintf(u->first_id, sizeof u->first_id, "%s", events[0].event_id);
    return ES_OK;
}

/* frames of `repos` accounts; multi: commits with several ops per thousand */
static fixture *make(size_t frames, size_t repos, unsigned multi, const ingest_window_limits *l)
{
    fixture *f = calloc(1, sizeof *f);
    es_atp_gen_options go = {.seed = 5, .repos = repos, .multi_op_permille = multi};
    es_atp_gen *g;
    assert_int_equal(es_atp_gen_create(&go, &g), ES_OK);
    es_atp_options o = {0};
    es_atp_limits_defaults(&o.limits);
    assert_int_equal(es_atp_decoder_create(&o, &f->dec), ES_OK);
    assert_int_equal(es_arena_create(32 << 20, &f->arena), ES_OK);
    /* commits only: repo events would make the counts below harder to read */
    while (f->count < frames) {
        es_buf *b = &f->frames[f->count];
        es_buf_clear(b);
        assert_int_equal(es_atp_gen_next(g, b), ES_OK);
        es_arena_reset(f->arena);
        es_atp_batch batch;
        assert_int_equal(es_atp_decode(f->dec, b->data, b->len, f->arena, &batch), ES_OK);
        if (batch.kind == ES_ATP_KIND_COMMIT && batch.count > 0)
            f->count++;
    }
    es_atp_gen_destroy(g);
    ingest_window_limits lim;
    ingest_window_limits_init(&lim);
    if (l)
        lim = *l;
    lim.retry_min_ms = lim.retry_max_ms = 1;
    assert_int_equal(ingest_window_create(&lim, &o, fake_send, f, &f->w), ES_OK);
    return f;
}

static void destroy(fixture *f)
{
    ingest_window_destroy(f->w);
    for (size_t i = 0; i < MAX_FRAMES; i++)
        es_buf_free(&f->frames[i]);
    es_arena_destroy(f->arena);
    es_atp_decoder_destroy(f->dec);
    free(f);
}

static es_atp_batch add(fixture *f, size_t i)
{
    es_arena_reset(f->arena);
    es_atp_batch b;
    assert_int_equal(es_atp_decode(f->dec, f->frames[i].data, f->frames[i].len, f->arena, &b),
                     ES_OK);
    assert_true(ingest_window_room(f->w));
    assert_int_equal(ingest_window_add(f->w, ES_OK, &b, f->frames[i].data, f->frames[i].len),
                     ES_OK);
    return b;
}

static uint64_t seq_of(fixture *f, size_t i)
{
    es_arena_reset(f->arena);
    es_atp_batch b;
    es_atp_decode(f->dec, f->frames[i].data, f->frames[i].len, f->arena, &b);
    return b.seq;
}

static ingest_window_stats stats(fixture *f)
{
    ingest_window_pump(f->w);
    ingest_window_stats st;
    ingest_window_get_stats(f->w, &st);
    return st;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void cursor_moves_over_a_settled_prefix_only(void **state)
{
    (void)state;
    fixture *f = make(10, 1000, 0, NULL);
    for (size_t i = 0; i < 10; i++)
        add(f, i);
    assert_int_equal(f->sent, 10);  /* distinct repositories: all in flight at once */
    for (size_t i = 9; i >= 1; i--) /* every ack but the first one's */
        ingest_window_acked(f->units[i].token, ES_OK, false, NULL);
    ingest_window_stats st = stats(f);
    assert_false(st.has_cursor);
    assert_int_equal(st.held, 10);
    ingest_window_acked(f->units[0].token, ES_OK, false, NULL);
    st = stats(f);
    assert_true(st.has_cursor);
    assert_int_equal(st.cursor, seq_of(f, 9));
    assert_true(ingest_window_idle(f->w));
    destroy(f);
}

static void one_repository_one_append_at_a_time(void **state)
{
    (void)state;
    fixture *f = make(6, 1, 0, NULL);
    for (size_t i = 0; i < 6; i++)
        add(f, i);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(f->sent, i + 1); /* the next waits for this one */
        ingest_window_stats st = stats(f);
        assert_int_equal(st.inflight, 1);
        ingest_window_acked(f->units[i].token, ES_OK, false, NULL);
        stats(f);
    }
    assert_true(ingest_window_idle(f->w));
    destroy(f);
}

static void a_failed_append_goes_again_with_the_same_ids_before_later_ones(void **state)
{
    (void)state;
    fixture *f = make(3, 1, 0, NULL);
    for (size_t i = 0; i < 3; i++)
        add(f, i);
    assert_int_equal(f->sent, 1);
    char first[300];
    snprintf(first, sizeof first, "%s", f->units[0].first_id);
    ingest_window_acked(f->units[0].token, ES_ERR_TIMEOUT, false, "no answer");
    ingest_window_stats st = stats(f);
    assert_false(st.has_cursor);
    sleep_ms(5);
    st = stats(f); /* the backoff passed: sent again, and only it */
    assert_int_equal(f->sent, 2);
    assert_string_equal(f->units[1].first_id, first);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.failures[ES_ERR_TIMEOUT], 1);
    ingest_window_acked(f->units[1].token, ES_OK, true, NULL);
    st = stats(f);
    assert_int_equal(st.cursor, seq_of(f, 0));
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(f->sent, 3);
    destroy(f);
}

static void a_refusal_for_good_is_dropped_and_the_cursor_moves_on(void **state)
{
    (void)state;
    fixture *f = make(2, 1000, 0, NULL);
    add(f, 0);
    add(f, 1);
    ingest_window_acked(f->units[0].token, ES_ERR_INVALID, false, "bad event");
    ingest_window_acked(f->units[1].token, ES_OK, false, NULL);
    ingest_window_stats st = stats(f);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.cursor, seq_of(f, 1));
    assert_true(ingest_window_idle(f->w));
    destroy(f);
}

static void the_library_window_full_is_not_a_failure(void **state)
{
    (void)state;
    fixture *f = make(1, 1000, 0, NULL);
    f->refuse_next = ES_ERR_TIMEOUT; /* es_append_batch_async's own window stayed full */
    add(f, 0);
    assert_int_equal(f->sent, 0);
    sleep_ms(20);
    ingest_window_stats st = stats(f);
    assert_int_equal(f->sent, 1);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.failures[ES_ERR_TIMEOUT], 0);
    ingest_window_acked(f->units[0].token, ES_OK, false, NULL);
    assert_true(stats(f).has_cursor);
    destroy(f);
}

static void memory_is_bounded(void **state)
{
    (void)state;
    ingest_window_limits l;
    ingest_window_limits_init(&l);
    l.entries = 8;
    l.max_units = 4;
    fixture *f = make(30, 1000, 0, &l);
    size_t added = 0;
    while (ingest_window_room(f->w))
        add(f, added++);
    assert_int_equal(added, 8);
    assert_int_equal(f->sent, 4); /* max_units */
    ingest_window_stats st = stats(f);
    assert_int_equal(st.queued, 4);
    /* past the room, a few more are taken (a source cannot always stop at once) but
     * never past the ring */
    es_status s = ES_OK;
    size_t extra = 0;
    while (s == ES_OK && added < 30) {
        es_arena_reset(f->arena);
        es_atp_batch b;
        es_atp_decode(f->dec, f->frames[added].data, f->frames[added].len, f->arena, &b);
        s = ingest_window_add(f->w, ES_OK, &b, f->frames[added].data, f->frames[added].len);
        if (s == ES_OK)
            extra++, added++;
    }
    assert_int_equal(s, ES_ERR_LIMIT);
    assert_true(extra < 30 - 8);
    destroy(f);
}

static void multi_op_commits_waiting_are_gathered_into_one_batch(void **state)
{
    (void)state;
    ingest_window_limits l;
    ingest_window_limits_init(&l);
    l.max_batches = 1;
    fixture *f = make(12, 1000, 1000, &l); /* every commit has 2-3 ops */
    size_t events = 0;
    for (size_t i = 0; i < 12; i++)
        events += add(f, i).count;
    assert_int_equal(f->sent, 1); /* the only batch place */
    ingest_window_acked(f->units[0].token, ES_OK, false, NULL);
    stats(f);
    assert_int_equal(f->sent, 2); /* the eleven others, together */
    assert_int_equal(f->units[0].n + f->units[1].n, events);
    /* refused as a partial duplicate: each goes again alone */
    ingest_window_acked(f->units[1].token, ES_ERR_DUPLICATE, false, "partly stored before");
    stats(f);
    assert_int_equal(f->sent, 3); /* one batch place: one at a time now */
    for (size_t i = 2; i < f->sent; i++) {
        ingest_window_acked(f->units[i].token, ES_OK, false, NULL);
        stats(f);
    }
    assert_int_equal(f->sent, 2 + 11);
    ingest_window_stats st = stats(f);
    assert_true(ingest_window_idle(f->w));
    assert_int_equal(st.cursor, seq_of(f, 11));
    assert_int_equal(st.events, events);
    destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cursor_moves_over_a_settled_prefix_only),
        cmocka_unit_test(one_repository_one_append_at_a_time),
        cmocka_unit_test(a_failed_append_goes_again_with_the_same_ids_before_later_ones),
        cmocka_unit_test(a_refusal_for_good_is_dropped_and_the_cursor_moves_on),
        cmocka_unit_test(the_library_window_full_is_not_a_failure),
        cmocka_unit_test(memory_is_bounded),
        cmocka_unit_test(multi_op_commits_waiting_are_gathered_into_one_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
