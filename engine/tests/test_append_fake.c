/* Appends over a scripted server (transport/tests/fake_js): what the engine
 * makes of PubAcks, duplicates (a retried batch is refused with err_code
 * 10201 and the engine finds where its ids were stored), conflicts, refused
 * batches and silence, synchronously and asynchronously. No server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include <es/es.h>

#include "base/clock.h"
#include "fake_store.h"
#include "transport/msg.h"

#define WAIT_MS 5000

static void open_store(fake_store *e, int64_t timeout_ms)
{
    assert_int_equal(fake_store_open(e, "shop", timeout_ms), ES_OK);
    assert_null(es_store_connection(e->st));
}

/* Direct gets the engine sent (its duplicate scans). */
static size_t direct_gets(fake_store *e)
{
    size_t n = 0, total = fake_conn_stats_now(e->f).published;
    for (size_t i = 0; i < total; i++) {
        natsMsg *m = fake_conn_published_msg(e->f, i);
        n += strncmp(esi_msg_subject(m), "$JS.API.DIRECT.GET.ES_shop", 26) == 0;
        esi_msg_destroy(m);
    }
    return n;
}

static void appends_events_and_batches(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 2000);
    es_event_spec one = fake_order_event("1", "created", NULL);
    es_append_result r;
    assert_int_equal(es_append(e.st, &one, &r), ES_OK);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.last_seq, 1);
    assert_int_equal(r.count, 1);
    es_event_spec batch[3] = {fake_order_event("1", "paid", NULL),
                              fake_order_event("2", "created", NULL),
                              fake_order_event("1", "shipped", NULL)};
    assert_int_equal(es_append_batch(e.st, batch, 3, &r), ES_OK);
    assert_int_equal(r.first_seq, 2);
    assert_int_equal(r.last_seq, 4);
    assert_int_equal(r.count, 3);
    assert_false(r.duplicate);
    natsMsg *m = fake_js_stored_msg(e.fj, 3);
    assert_string_equal(esi_msg_subject(m), "$ES.shop.order.2.created");
    esi_msg_destroy(m);
    assert_int_equal(direct_gets(&e), 0);
    fake_store_close(&e);
}

/* Unacknowledged: stored in order, no answer asked for (no reply subject);
 * an acknowledged append after them lands after them; an expectation, an
 * empty or oversized batch is refused before anything is sent. */
static void unacked_events_are_stored_in_order(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 2000);
    es_event_spec batch[3] = {fake_order_event("1", "created", "u-1"),
                              fake_order_event("2", "created", "u-2"),
                              fake_order_event("1", "paid", NULL)};
    assert_int_equal(es_append_unacked(e.st, batch, 3), ES_OK);
    es_event_spec last = fake_order_event("2", "paid", NULL);
    es_append_result r;
    assert_int_equal(es_append(e.st, &last, &r), ES_OK);
    assert_int_equal(r.last_seq, 4); /* after the three */
    const char *subjects[] = {"$ES.shop.order.1.created", "$ES.shop.order.2.created",
                              "$ES.shop.order.1.paid"};
    for (uint64_t seq = 1; seq <= 3; seq++) {
        natsMsg *m = fake_js_stored_msg(e.fj, seq);
        assert_non_null(m);
        assert_string_equal(esi_msg_subject(m), subjects[seq - 1]);
        assert_null(esi_msg_reply(m)); /* nobody asked for an answer */
        esi_msg_destroy(m);
    }
    /* an id stored before is dropped silently */
    assert_int_equal(es_append_unacked(e.st, batch, 1), ES_OK);
    assert_int_equal(es_append(e.st, &last, &r), ES_OK);
    assert_int_equal(r.last_seq, 5);
    assert_int_equal(fake_js_stats_now(e.fj).stored, 5);

    size_t sent = fake_conn_stats_now(e.f).published;
    es_event_spec expecting = fake_order_event("3", "created", NULL);
    expecting.expect = ES_EXPECT_NEW;
    assert_int_equal(es_append_unacked(e.st, &expecting, 1), ES_ERR_INVALID);
    assert_int_equal(es_append_unacked(e.st, batch, 0), ES_ERR_INVALID);
    assert_int_equal(es_append_unacked(e.st, batch, ES_BATCH_MAX + 1), ES_ERR_TOO_LARGE);
    assert_int_equal(es_append_unacked(NULL, batch, 1), ES_ERR_INVALID);
    assert_int_equal(fake_conn_stats_now(e.f).published, sent);
    fake_store_close(&e);
}

static void retried_event_is_a_duplicate(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 2000);
    es_event_spec one = fake_order_event("1", "created", "ev-1");
    es_append_result r;
    assert_int_equal(es_append(e.st, &one, &r), ES_OK);
    assert_int_equal(es_append(e.st, &one, &r), ES_OK);
    assert_true(r.duplicate);
    assert_int_equal(r.last_seq, 1);
    assert_int_equal(fake_js_stats_now(e.fj).stored, 1);
    fake_store_close(&e);
}

/* The server refuses a retried batch (err_code 10201) without saying where
 * it was stored: the engine finds its ids on their subjects. */
static void retried_batch_is_found_by_its_ids(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 2000);
    es_event_spec other = fake_order_event("9", "created", NULL);
    es_event_spec batch[3] = {fake_order_event("1", "created", "a"),
                              fake_order_event("2", "created", "b"),
                              fake_order_event("1", "paid", "c")};
    es_append_result r;
    assert_int_equal(es_append(e.st, &other, &r), ES_OK);
    assert_int_equal(es_append_batch(e.st, batch, 3, &r), ES_OK);
    assert_int_equal(r.first_seq, 2);
    assert_int_equal(es_append(e.st, &other, &r), ES_OK);
    assert_int_equal(es_append_batch(e.st, batch, 3, &r), ES_OK);
    assert_true(r.duplicate);
    assert_int_equal(r.first_seq, 2);
    assert_int_equal(r.last_seq, 4);
    assert_int_equal(r.count, 3);
    assert_int_equal(fake_js_stats_now(e.fj).stored, 5);
    assert_int_equal(direct_gets(&e), 3); /* one per event */
    assert_string_equal(es_last_error(), "");
    fake_store_close(&e);
}

static void partly_stored_batch_is_refused(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 2000);
    es_event_spec first[2] = {fake_order_event("1", "created", "a"),
                              fake_order_event("2", "created", "b")};
    es_event_spec mixed[2] = {fake_order_event("1", "created", "a"),
                              fake_order_event("3", "created", "x")};
    es_append_result r;
    assert_int_equal(es_append_batch(e.st, first, 2, &r), ES_OK);
    assert_int_equal(es_append_batch(e.st, mixed, 2, &r), ES_ERR_DUPLICATE);
    assert_non_null(strstr(es_last_error(), "1 of its 2 event ids"));
    assert_int_equal(fake_js_stats_now(e.fj).stored, 2);
    /* a 10201 for a batch whose ids were never stored: looked for, not
     * found, the server's answer stands */
    char err[256];
    fake_js_error_json(err, sizeof err, 400, 10201, "duplicate message id");
    fake_js_push(e.fj, (fake_step){.what = FAKE_ANSWER, .json = err});
    es_event_spec fresh[2] = {fake_order_event("4", "created", NULL),
                              fake_order_event("5", "created", NULL)};
    size_t gets = direct_gets(&e);
    assert_int_equal(es_append_batch(e.st, fresh, 2, &r), ES_ERR_SERVER);
    assert_int_equal(es_last_error_code(), 10201);
    assert_non_null(strstr(es_last_error(), "duplicate message id"));
    assert_int_equal(direct_gets(&e), gets + 2);
    fake_store_close(&e);
}

static void conflict_reports_the_actual_sequence(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 2000);
    es_event_spec created = fake_order_event("1", "created", NULL);
    es_append_result r;
    assert_int_equal(es_append(e.st, &created, &r), ES_OK);
    assert_int_equal(es_append(e.st, &created, &r), ES_OK);
    es_event_spec again = fake_order_event("1", "created", NULL);
    again.expect = ES_EXPECT_NEW;
    assert_int_equal(es_append(e.st, &again, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 2);
    assert_int_equal(es_last_error_code(), 10071);
    assert_non_null(strstr(es_last_error(), "last sequence is 2"));
    /* the same with an id of the caller's that was never stored: looked
     * for, not found, still a conflict */
    again.event_id = "never-stored";
    again.expect = ES_EXPECT_SEQ;
    again.expect_seq = 1;
    assert_int_equal(es_append(e.st, &again, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 2);
    assert_int_equal(direct_gets(&e), 1);
    /* an expectation on another entity is not disturbed */
    es_event_spec other = fake_order_event("2", "created", NULL);
    other.expect = ES_EXPECT_NEW;
    assert_int_equal(es_append(e.st, &other, &r), ES_OK);
    fake_store_close(&e);
}

/* JetStream checks expectations before ids: a retry of a stored event that
 * carried one comes back as a conflict, and is found by its id. */
static void conflict_that_hides_a_retry_is_a_duplicate(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 2000);
    es_event_spec created = fake_order_event("1", "created", "ev-1");
    created.expect = ES_EXPECT_NEW;
    es_append_result r;
    assert_int_equal(es_append(e.st, &created, &r), ES_OK);
    assert_int_equal(es_append(e.st, &created, &r), ES_OK);
    assert_true(r.duplicate);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(fake_js_stats_now(e.fj).stored, 1);
    fake_store_close(&e);
}

static void silence_is_a_timeout(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 500);
    fake_js_push(e.fj, (fake_step){.what = FAKE_NO_ANSWER});
    es_event_spec one = fake_order_event("1", "created", NULL);
    es_append_result r;
    assert_int_equal(es_append(e.st, &one, &r), ES_ERR_TIMEOUT);
    assert_non_null(strstr(es_last_error(), "no PubAck within 500 ms"));
    /* the scan of a retried batch can time out too */
    es_event_spec batch[2] = {fake_order_event("1", "paid", "p"),
                              fake_order_event("1", "shipped", "s")};
    assert_int_equal(es_append_batch(e.st, batch, 2, &r), ES_OK);
    fake_js_lose_requests(e.fj, 1);
    assert_int_equal(es_append_batch(e.st, batch, 2, &r), ES_ERR_TIMEOUT);
    assert_non_null(strstr(es_last_error(), "direct get"));
    fake_store_close(&e);
}

static void refused_batch_start_stores_nothing(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 2000);
    fake_js_push(e.fj, (fake_step){.what = FAKE_REFUSE_START, .early = true});
    es_event_spec batch[3] = {fake_order_event("1", "created", NULL),
                              fake_order_event("2", "created", NULL),
                              fake_order_event("3", "created", NULL)};
    es_append_result r;
    assert_int_equal(es_append_batch(e.st, batch, 3, &r), ES_ERR_SERVER);
    assert_int_equal(es_last_error_code(), 10211);
    assert_int_equal(fake_js_stats_now(e.fj).stored, 0);
    assert_int_equal(es_append_batch(e.st, batch, 3, &r), ES_OK);
    assert_int_equal(r.last_seq, 3);
    fake_store_close(&e);
}

/* ---- asynchronous ---------------------------------------------------------- */

typedef struct outcome {
    pthread_mutex_t mu;
    int calls;
    es_status status;
    es_append_result r;
} outcome;

static void on_appended(es_status s, const es_append_result *r, void *closure)
{
    outcome *o = closure;
    pthread_mutex_lock(&o->mu);
    o->calls++;
    o->status = s;
    o->r = *r;
    pthread_mutex_unlock(&o->mu);
}

static void async_outcomes_reach_the_callback(void **state)
{
    (void)state;
    fake_store e;
    open_store(&e, 500);
    outcome o[4];
    for (int i = 0; i < 4; i++) {
        memset(&o[i], 0, sizeof o[i]);
        pthread_mutex_init(&o[i].mu, NULL);
    }
    es_event_spec batch[2] = {fake_order_event("1", "created", "a"),
                              fake_order_event("1", "paid", "b")};
    assert_int_equal(es_append_batch_async(e.st, batch, 2, on_appended, &o[0]), ES_OK);
    assert_int_equal(es_append_flush(e.st, WAIT_MS), ES_OK);
    /* the retry: its scan runs on the publisher's thread, then the callback */
    assert_int_equal(es_append_batch_async(e.st, batch, 2, on_appended, &o[1]), ES_OK);
    fake_js_push(e.fj, (fake_step){.what = FAKE_LOST});
    es_event_spec lost = fake_order_event("2", "created", NULL);
    assert_int_equal(es_append_batch_async(e.st, &lost, 1, on_appended, &o[2]), ES_OK);
    es_event_spec conflict = fake_order_event("1", "shipped", NULL);
    conflict.expect = ES_EXPECT_NEW;
    assert_int_equal(es_append_batch_async(e.st, &conflict, 1, on_appended, &o[3]), ES_OK);
    assert_int_equal(es_append_flush(e.st, WAIT_MS), ES_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(o[i].calls, 1);
    assert_int_equal(o[0].status, ES_OK);
    assert_int_equal(o[0].r.last_seq, 2);
    assert_int_equal(o[1].status, ES_OK);
    assert_true(o[1].r.duplicate);
    assert_int_equal(o[1].r.first_seq, 1);
    assert_int_equal(o[1].r.last_seq, 2);
    assert_int_equal(o[2].status, ES_ERR_TIMEOUT);
    assert_int_equal(o[3].status, ES_ERR_CONFLICT);
    assert_int_equal(o[3].r.actual_seq, 2);
    for (int i = 0; i < 4; i++)
        pthread_mutex_destroy(&o[i].mu);
    fake_store_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_events_and_batches),
        cmocka_unit_test(unacked_events_are_stored_in_order),
        cmocka_unit_test(retried_event_is_a_duplicate),
        cmocka_unit_test(retried_batch_is_found_by_its_ids),
        cmocka_unit_test(partly_stored_batch_is_refused),
        cmocka_unit_test(conflict_reports_the_actual_sequence),
        cmocka_unit_test(conflict_that_hides_a_retry_is_a_duplicate),
        cmocka_unit_test(silence_is_a_timeout),
        cmocka_unit_test(refused_batch_start_stores_nothing),
        cmocka_unit_test(async_outcomes_reach_the_callback),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
