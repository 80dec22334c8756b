/* The publisher over a scripted server (fake_conn, fake_js): acknowledgements
 * that succeed, repeat, conflict, come early, late, twice or never; a full
 * window; flush, destroy and follow-up work. No server: every race is made
 * to happen on purpose, so each test's outcome is certain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "transport/js.h"
#include "transport/msg.h"
#include "transport/publisher.h"
#include "transport/tests/fake_conn.h"
#include "transport/tests/fake_js.h"

#define WAIT_MS 5000

typedef struct env {
    fake_conn *f;
    fake_js *fj;
    esi_js *js;
    esi_publisher *p;
    int64_t timeout_ms;
    unsigned batches;
    pthread_mutex_t mu;
    pthread_cond_t cond;
} env;

/* One unit's completion, as the callback saw it. */
typedef struct call {
    env *e;
    int calls;
    es_status status;
    esi_pub_result r;
    char text[256];
    pthread_t thread;
    /* keep the messages and run this on the publisher's thread */
    void (*followup)(void *arg);
    natsMsg **kept;
    size_t kept_n;
} call;

static void env_open(env *e, int64_t timeout_ms, int max_inflight, int max_batches)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cond, NULL);
    e->timeout_ms = timeout_ms;
    e->f = fake_conn_create();
    e->fj = fake_js_create(e->f, "ES_t", "t.>");
    esi_conn conn;
    fake_conn_table(e->f, &conn);
    esi_js_options o = {.timeout_ms = timeout_ms};
    assert_int_equal(esi_js_create(&conn, &o, &e->js), ES_OK);
    assert_int_equal(esi_publisher_create(e->js, max_inflight, max_batches, &e->p), ES_OK);
}

static void env_close(env *e)
{
    esi_publisher_destroy(e->p);
    assert_int_equal(fake_conn_stats_now(e->f).subscriptions, 0); /* the inbox was drained */
    esi_js_destroy(e->js);
    fake_js_destroy(e->fj);
    fake_conn_destroy(e->f);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->mu);
}

static bool on_done(es_status s, const esi_pub_result *r, const char *text, natsMsg **msgs,
                    size_t n, void *closure)
{
    call *c = closure;
    env *e = c->e;
    pthread_mutex_lock(&e->mu);
    c->calls++;
    c->status = s;
    c->r = *r;
    snprintf(c->text, sizeof c->text, "%s", text ? text : "");
    c->thread = pthread_self();
    bool keep = c->followup != NULL;
    if (keep) {
        c->kept = msgs;
        c->kept_n = n;
    }
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    if (keep)
        esi_publisher_defer(e->p, c->followup, c);
    return keep;
}

static call new_call(env *e)
{
    return (call){.e = e};
}

/* Waits until c has been called `n` times; false after timeout_ms. */
static bool wait_calls(call *c, int n, int64_t timeout_ms)
{
    env *e = c->e;
    int64_t give_up = esi_monotonic_ms() + timeout_ms;
    pthread_mutex_lock(&e->mu);
    while (c->calls < n && esi_monotonic_ms() < give_up) {
        pthread_mutex_unlock(&e->mu);
        esi_sleep_ms(2);
        pthread_mutex_lock(&e->mu);
    }
    bool done = c->calls >= n;
    pthread_mutex_unlock(&e->mu);
    return done;
}

static int calls_of(call *c)
{
    pthread_mutex_lock(&c->e->mu);
    int n = c->calls;
    pthread_mutex_unlock(&c->e->mu);
    return n;
}

/* The messages of a unit on subject "t.a": one plain, or a batch of n. */
static natsMsg **build(env *e, const esi_pub_ticket *t, size_t n, const char *msg_id)
{
    natsMsg **msgs = esi_calloc(n, sizeof *msgs);
    assert_non_null(msgs);
    char batch[32], seq[24];
    snprintf(batch, sizeof batch, "b%u", ++e->batches);
    for (size_t i = 0; i < n; i++) {
        const char *reply = i + 1 == n ? t->reply : i == 0 ? t->first_reply : NULL;
        char data[32];
        snprintf(data, sizeof data, "{\"n\":%zu}", i);
        assert_int_equal(esi_msg_create("t.a", reply, data, strlen(data), &msgs[i]), ES_OK);
        if (msg_id != NULL)
            assert_int_equal(esi_msg_header_set(msgs[i], "Nats-Msg-Id", msg_id), ES_OK);
        if (n == 1)
            continue;
        snprintf(seq, sizeof seq, "%zu", i + 1);
        assert_int_equal(esi_msg_header_set(msgs[i], "Nats-Batch-Id", batch), ES_OK);
        assert_int_equal(esi_msg_header_set(msgs[i], "Nats-Batch-Sequence", seq), ES_OK);
        if (i + 1 == n)
            assert_int_equal(esi_msg_header_set(msgs[i], "Nats-Batch-Commit", "1"), ES_OK);
    }
    return msgs;
}

static void send_unit(env *e, call *c, size_t n, const char *msg_id)
{
    esi_pub_ticket t;
    assert_int_equal(esi_publisher_reserve(e->p, n > 1, on_done, c, &t), ES_OK);
    esi_publisher_send(e->p, &t, build(e, &t, n, msg_id), n);
}

/* The last message published so far (a copy). */
static natsMsg *last_published(env *e)
{
    natsMsg *m = fake_conn_published_msg(e->f, fake_conn_stats_now(e->f).published - 1);
    assert_non_null(m);
    return m;
}

/* A server-side answer to `m`, as the test writes it. */
static void answer_now(env *e, natsMsg *m, uint64_t seq)
{
    char ack[96];
    snprintf(ack, sizeof ack, "{\"stream\":\"ES_t\",\"seq\":%llu}", (unsigned long long)seq);
    fake_conn_answer_text(e->f, m, ack, 0);
    assert_true(fake_conn_wait_idle(e->f, WAIT_MS));
}

/* ---- acknowledgements ---------------------------------------------------- */

static void acknowledges_messages_and_batches(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 2);
    call one = new_call(&e), batch = new_call(&e);
    send_unit(&e, &one, 1, NULL);
    send_unit(&e, &batch, 3, NULL);
    assert_true(wait_calls(&one, 1, WAIT_MS));
    assert_true(wait_calls(&batch, 1, WAIT_MS));
    assert_int_equal(one.status, ES_OK);
    assert_int_equal(one.r.seq, 1);
    assert_int_equal(one.r.count, 1);
    assert_false(one.r.duplicate);
    /* the empty start acknowledgement did not end the batch: its commit did */
    assert_int_equal(batch.status, ES_OK);
    assert_int_equal(batch.r.seq, 4);
    assert_int_equal(batch.r.count, 3);
    assert_int_equal(fake_js_stats_now(e.fj).stored, 4);
    assert_int_equal(esi_publisher_flush(e.p, WAIT_MS), ES_OK);
    assert_int_equal(calls_of(&batch), 1);
    env_close(&e);
}

static void reports_a_duplicate(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 2);
    call first = new_call(&e), again = new_call(&e);
    send_unit(&e, &first, 1, "event-1");
    assert_true(wait_calls(&first, 1, WAIT_MS));
    send_unit(&e, &again, 1, "event-1");
    assert_true(wait_calls(&again, 1, WAIT_MS));
    assert_int_equal(again.status, ES_OK);
    assert_true(again.r.duplicate);
    assert_int_equal(again.r.seq, first.r.seq);
    assert_int_equal(fake_js_stats_now(e.fj).stored, 1);
    env_close(&e);
}

static void reports_a_conflict_with_the_actual_sequence(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 2);
    char err[256];
    fake_js_error_json(err, sizeof err, 400, 10071, "wrong last sequence: 7");
    fake_js_push(e.fj, (fake_step){.what = FAKE_ANSWER, .json = err});
    call c = new_call(&e);
    send_unit(&e, &c, 1, NULL);
    assert_true(wait_calls(&c, 1, WAIT_MS));
    assert_int_equal(c.status, ES_ERR_CONFLICT);
    assert_int_equal(c.r.actual_seq, 7);
    assert_int_equal(c.r.err_code, 10071);
    assert_non_null(strstr(c.text, "wrong last sequence: 7"));
    /* a batch refused at its commit: the same */
    fake_js_error_json(err, sizeof err, 400, 10201, "duplicate message id");
    fake_js_push(e.fj, (fake_step){.what = FAKE_ANSWER, .json = err});
    call b = new_call(&e);
    send_unit(&e, &b, 2, NULL);
    assert_true(wait_calls(&b, 1, WAIT_MS));
    assert_int_equal(b.status, ES_ERR_SERVER);
    assert_int_equal(b.r.err_code, 10201);
    env_close(&e);
}

/* No stream listens on the subject: a 503 status, not a PubAck. */
static void reports_no_responders(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 2);
    call c = new_call(&e);
    esi_pub_ticket t;
    assert_int_equal(esi_publisher_reserve(e.p, false, on_done, &c, &t), ES_OK);
    natsMsg **msgs = esi_calloc(1, sizeof *msgs);
    assert_int_equal(esi_msg_create("elsewhere", t.reply, "x", 1, &msgs[0]), ES_OK);
    esi_publisher_send(e.p, &t, msgs, 1);
    assert_true(wait_calls(&c, 1, WAIT_MS));
    assert_int_equal(c.status, ES_ERR_CONNECTION);
    assert_non_null(strstr(c.text, "no responders"));
    env_close(&e);
}

/* ---- answers while the unit is still being sent ---------------------------- */

/* nats-server refuses a batch at its first message while the sender is still
 * publishing the others: the answer waits for the sender, which ends the
 * unit itself once its messages are no longer in use. */
static void batch_refused_at_start_waits_for_the_sender(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 1);
    fake_js_push(e.fj, (fake_step){.what = FAKE_REFUSE_START, .early = true});
    call c = new_call(&e);
    send_unit(&e, &c, 4, NULL);
    /* ended by the sender, before esi_publisher_send returned */
    assert_int_equal(calls_of(&c), 1);
    assert_true(pthread_equal(c.thread, pthread_self()));
    assert_int_equal(c.status, ES_ERR_SERVER);
    assert_non_null(strstr(c.text, "too many inflight batches"));
    assert_int_equal(fake_conn_stats_now(e.f).published, 4); /* every message went out */
    assert_int_equal(fake_js_stats_now(e.fj).stored, 0);
    /* its place among the batches is free again (max 1) */
    call next = new_call(&e);
    int64_t t0 = esi_monotonic_ms();
    send_unit(&e, &next, 2, NULL);
    assert_true(esi_monotonic_ms() - t0 < 1000);
    assert_true(wait_calls(&next, 1, WAIT_MS));
    assert_int_equal(next.status, ES_OK);
    assert_int_equal(calls_of(&c), 1);
    env_close(&e);
}

/* The same refusal when the sender was done first: the reply thread ends it. */
static void batch_refused_at_start_after_sending(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 1);
    char err[256];
    fake_js_error_json(err, sizeof err, 400, 10205, "atomic publish is disabled");
    fake_js_push(e.fj, (fake_step){.what = FAKE_REFUSE_START, .json = err});
    call c = new_call(&e);
    send_unit(&e, &c, 3, NULL);
    assert_true(wait_calls(&c, 1, WAIT_MS));
    assert_int_equal(c.status, ES_ERR_SERVER);
    assert_int_equal(c.r.err_code, 10205);
    assert_int_equal(fake_js_stats_now(e.fj).stored, 0);
    esi_sleep_ms(50);
    assert_int_equal(calls_of(&c), 1); /* the commit, never answered, changes nothing */
    env_close(&e);
}

/* A PubAck that arrives before the publish call has returned. */
static void early_acknowledgement_is_kept_for_the_sender(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 2);
    fake_js_push(e.fj, (fake_step){.what = FAKE_ACK, .early = true});
    call c = new_call(&e);
    send_unit(&e, &c, 1, NULL);
    assert_int_equal(calls_of(&c), 1);
    assert_true(pthread_equal(c.thread, pthread_self()));
    assert_int_equal(c.status, ES_OK);
    assert_int_equal(c.r.seq, 1);
    env_close(&e);
}

/* ---- answers that come late, twice, or never ------------------------------- */

static void times_out_without_an_answer(void **state)
{
    (void)state;
    env e;
    env_open(&e, 150, 8, 2);
    fake_js_push(e.fj, (fake_step){.what = FAKE_NO_ANSWER});
    fake_js_push(e.fj, (fake_step){.what = FAKE_LOST});
    call stored = new_call(&e), lost = new_call(&e);
    int64_t t0 = esi_monotonic_ms();
    send_unit(&e, &stored, 1, NULL);
    send_unit(&e, &lost, 2, NULL);
    assert_true(wait_calls(&stored, 1, WAIT_MS));
    assert_true(wait_calls(&lost, 1, WAIT_MS));
    assert_true(esi_monotonic_ms() - t0 >= 150);
    assert_int_equal(stored.status, ES_ERR_TIMEOUT);
    assert_int_equal(lost.status, ES_ERR_TIMEOUT);
    assert_non_null(strstr(lost.text, "no PubAck within 150 ms"));
    assert_int_equal(fake_js_stats_now(e.fj).stored, 1); /* the one whose answer was lost */
    env_close(&e);
}

/* Units answered one after another, each within the timeout of the one
 * before but the last ones later than the timeout of their own sending (a
 * busy server working through our queue): none expires. */
static void units_queued_behind_answered_ones_do_not_expire(void **state)
{
    (void)state;
    env e;
    env_open(&e, 200, 8, 8);
    call c[4];
    for (int i = 0; i < 4; i++) {
        fake_js_push(e.fj, (fake_step){.what = FAKE_LATER, .delay_ms = 120 * (i + 1)});
        c[i] = new_call(&e);
    }
    for (int i = 0; i < 4; i++)
        send_unit(&e, &c[i], 1, NULL);
    for (int i = 0; i < 4; i++) {
        assert_true(wait_calls(&c[i], 1, WAIT_MS));
        assert_int_equal(c[i].status, ES_OK);
    }
    env_close(&e);
}

/* A server that answers nothing fails every unit after one timeout, not
 * one timeout after another. */
static void a_silent_server_fails_all_units_at_once(void **state)
{
    (void)state;
    env e;
    env_open(&e, 150, 8, 8);
    call c[4];
    for (int i = 0; i < 4; i++) {
        fake_js_push(e.fj, (fake_step){.what = FAKE_LOST});
        c[i] = new_call(&e);
    }
    int64_t t0 = esi_monotonic_ms();
    for (int i = 0; i < 4; i++)
        send_unit(&e, &c[i], 1, NULL);
    for (int i = 0; i < 4; i++) {
        assert_true(wait_calls(&c[i], 1, WAIT_MS));
        assert_int_equal(c[i].status, ES_ERR_TIMEOUT);
    }
    assert_true(esi_monotonic_ms() - t0 < 3 * 150); /* one after another: 4 * 150 */
    env_close(&e);
}

/* An answer that comes after its unit expired is dropped, even when its slot
 * (one slot: every unit takes it) belongs to another unit by then. */
static void late_answer_after_timeout_is_dropped(void **state)
{
    (void)state;
    env e;
    env_open(&e, 500, 1, 1);
    fake_js_push_n(e.fj, FAKE_NO_ANSWER, 2);
    call first = new_call(&e), second = new_call(&e);
    send_unit(&e, &first, 1, NULL);
    natsMsg *first_msg = last_published(&e);
    assert_true(wait_calls(&first, 1, WAIT_MS));
    assert_int_equal(first.status, ES_ERR_TIMEOUT);
    send_unit(&e, &second, 1, NULL);
    natsMsg *second_msg = last_published(&e);
    answer_now(&e, first_msg, 1); /* too late for the first, not meant for the second */
    assert_int_equal(calls_of(&first), 1);
    assert_int_equal(calls_of(&second), 0);
    answer_now(&e, second_msg, 2);
    assert_true(wait_calls(&second, 1, WAIT_MS));
    assert_int_equal(second.status, ES_OK);
    assert_int_equal(second.r.seq, 2);
    esi_msg_destroy(first_msg);
    esi_msg_destroy(second_msg);
    env_close(&e);
}

static void late_answer_within_the_timeout_completes(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 2);
    fake_js_push(e.fj, (fake_step){.what = FAKE_LATER, .delay_ms = 100});
    call c = new_call(&e);
    int64_t t0 = esi_monotonic_ms();
    send_unit(&e, &c, 2, NULL);
    assert_int_equal(calls_of(&c), 0);
    assert_true(wait_calls(&c, 1, WAIT_MS));
    assert_true(esi_monotonic_ms() - t0 >= 100);
    assert_int_equal(c.status, ES_OK);
    assert_int_equal(c.r.count, 2);
    env_close(&e);
}

/* A repeated answer ends its unit once, and not the next unit in its slot. */
static void duplicated_answer_is_ignored(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 1, 1);
    fake_js_push(e.fj, (fake_step){.what = FAKE_TWICE, .delay_ms = 100});
    fake_js_push(e.fj, (fake_step){.what = FAKE_NO_ANSWER});
    call first = new_call(&e), second = new_call(&e);
    send_unit(&e, &first, 1, NULL);
    assert_true(wait_calls(&first, 1, WAIT_MS));
    uint64_t handled = fake_conn_stats_now(e.f).handled;
    send_unit(&e, &second, 1, NULL); /* takes the only slot */
    natsMsg *second_msg = last_published(&e);
    int64_t give_up = esi_monotonic_ms() + WAIT_MS;
    while (fake_conn_stats_now(e.f).handled == handled && esi_monotonic_ms() < give_up)
        esi_sleep_ms(5); /* the copy of the first answer arrives */
    assert_true(fake_conn_stats_now(e.f).handled > handled);
    assert_int_equal(calls_of(&first), 1);
    assert_int_equal(calls_of(&second), 0);
    answer_now(&e, second_msg, 2);
    assert_true(wait_calls(&second, 1, WAIT_MS));
    assert_int_equal(second.r.seq, 2);
    assert_int_equal(first.r.seq, 1);
    esi_msg_destroy(second_msg);
    env_close(&e);
}

/* ---- the window -------------------------------------------------------------- */

typedef struct reserver {
    env *e;
    bool batch;
    call *c;
    es_status status;
    esi_pub_ticket t;
    bool returned;
    int64_t waited_ms;
} reserver;

static void *reserve_thread(void *arg)
{
    reserver *r = arg;
    int64_t t0 = esi_monotonic_ms();
    es_status s = esi_publisher_reserve(r->e->p, r->batch, on_done, r->c, &r->t);
    pthread_mutex_lock(&r->e->mu);
    r->status = s;
    r->waited_ms = esi_monotonic_ms() - t0;
    r->returned = true;
    pthread_mutex_unlock(&r->e->mu);
    return NULL;
}

static bool reserver_returned(reserver *r)
{
    pthread_mutex_lock(&r->e->mu);
    bool done = r->returned;
    pthread_mutex_unlock(&r->e->mu);
    return done;
}

/* A third unit waits while two are in flight, and goes once one is answered. */
static void full_window_blocks_then_frees(void **state)
{
    (void)state;
    env e;
    env_open(&e, 3000, 2, 2);
    fake_js_push_n(e.fj, FAKE_NO_ANSWER, 2);
    call a = new_call(&e), b = new_call(&e), c = new_call(&e);
    send_unit(&e, &a, 1, NULL);
    natsMsg *a_msg = last_published(&e);
    send_unit(&e, &b, 1, NULL);
    natsMsg *b_msg = last_published(&e);
    reserver r = {.e = &e, .c = &c};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reserve_thread, &r), 0);
    esi_sleep_ms(150);
    assert_false(reserver_returned(&r));
    answer_now(&e, a_msg, 1);
    pthread_join(th, NULL);
    assert_int_equal(r.status, ES_OK);
    assert_true(r.waited_ms >= 100);
    esi_publisher_send(e.p, &r.t, build(&e, &r.t, 1, NULL), 1);
    answer_now(&e, b_msg, 2);
    assert_true(wait_calls(&c, 1, WAIT_MS));
    assert_int_equal(esi_publisher_flush(e.p, WAIT_MS), ES_OK);
    assert_int_equal(a.status, ES_OK);
    assert_int_equal(b.status, ES_OK);
    assert_int_equal(c.status, ES_OK);
    esi_msg_destroy(a_msg);
    esi_msg_destroy(b_msg);
    env_close(&e);
}

/* Batches have a smaller window of their own; single messages pass it. */
static void batch_window_blocks_batches_only(void **state)
{
    (void)state;
    env e;
    env_open(&e, 3000, 8, 1);
    fake_js_push(e.fj, (fake_step){.what = FAKE_NO_ANSWER});
    call batch = new_call(&e), single = new_call(&e), batch2 = new_call(&e);
    send_unit(&e, &batch, 2, NULL);
    natsMsg *commit = last_published(&e);
    int64_t t0 = esi_monotonic_ms();
    send_unit(&e, &single, 1, NULL);
    assert_true(esi_monotonic_ms() - t0 < 1000);
    assert_true(wait_calls(&single, 1, WAIT_MS));
    reserver r = {.e = &e, .batch = true, .c = &batch2};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reserve_thread, &r), 0);
    esi_sleep_ms(150);
    assert_false(reserver_returned(&r));
    char ack[128];
    snprintf(ack, sizeof ack, "{\"stream\":\"ES_t\",\"seq\":2,\"batch\":\"b1\",\"count\":2}");
    fake_conn_answer_text(e.f, commit, ack, 0);
    pthread_join(th, NULL);
    assert_int_equal(r.status, ES_OK);
    esi_publisher_send(e.p, &r.t, build(&e, &r.t, 2, NULL), 2);
    assert_true(wait_calls(&batch2, 1, WAIT_MS));
    assert_int_equal(batch.status, ES_OK);
    assert_int_equal(batch.r.count, 2);
    assert_int_equal(batch2.status, ES_OK);
    esi_msg_destroy(commit);
    env_close(&e);
}

/* A place that is never freed: reserve gives up after the request timeout. */
static void reserve_times_out_on_a_full_window(void **state)
{
    (void)state;
    env e;
    env_open(&e, 150, 1, 1);
    call a = new_call(&e), b = new_call(&e);
    esi_pub_ticket held, t;
    assert_int_equal(esi_publisher_reserve(e.p, false, on_done, &a, &held), ES_OK);
    int64_t t0 = esi_monotonic_ms();
    assert_int_equal(esi_publisher_reserve(e.p, false, on_done, &b, &t), ES_ERR_TIMEOUT);
    int64_t waited = esi_monotonic_ms() - t0;
    assert_true(waited >= 150 && waited < 1500); /* the request timeout, not more */
    esi_publisher_cancel(e.p, &held);
    assert_int_equal(esi_publisher_reserve(e.p, true, on_done, &b, &t), ES_OK);
    esi_publisher_cancel(e.p, &t);
    assert_int_equal(esi_publisher_flush(e.p, 100), ES_OK);
    assert_int_equal(calls_of(&a) + calls_of(&b), 0); /* cancelled units are never called */
    env_close(&e);
}

/* ---- flush, destroy, failures, follow-up work -------------------------------- */

static void flush_waits_for_units_in_flight(void **state)
{
    (void)state;
    env e;
    env_open(&e, 600, 8, 2);
    fake_js_push(e.fj, (fake_step){.what = FAKE_LATER, .delay_ms = 80});
    fake_js_push(e.fj, (fake_step){.what = FAKE_LATER, .delay_ms = 120});
    call a = new_call(&e), b = new_call(&e);
    send_unit(&e, &a, 1, NULL);
    send_unit(&e, &b, 3, NULL);
    assert_int_equal(esi_publisher_flush(e.p, WAIT_MS), ES_OK);
    assert_int_equal(calls_of(&a), 1);
    assert_int_equal(calls_of(&b), 1);
    /* a unit nobody answers: a short flush gives up, the timeout ends it */
    fake_js_push(e.fj, (fake_step){.what = FAKE_NO_ANSWER});
    call c = new_call(&e);
    send_unit(&e, &c, 1, NULL);
    assert_int_equal(esi_publisher_flush(e.p, 30), ES_ERR_TIMEOUT);
    assert_int_equal(calls_of(&c), 0);
    assert_int_equal(esi_publisher_flush(e.p, WAIT_MS), ES_OK);
    assert_int_equal(c.status, ES_ERR_TIMEOUT);
    env_close(&e);
}

/* Destroy waits for every unit, answered or expired; nothing comes after. */
static void destroy_waits_for_units_in_flight(void **state)
{
    (void)state;
    env e;
    env_open(&e, 600, 8, 2);
    fake_js_push(e.fj, (fake_step){.what = FAKE_LATER, .delay_ms = 60});
    fake_js_push(e.fj, (fake_step){.what = FAKE_LATER, .delay_ms = 90});
    fake_js_push(e.fj, (fake_step){.what = FAKE_NO_ANSWER});
    fake_js_push(e.fj, (fake_step){.what = FAKE_TWICE, .delay_ms = 900});
    call c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = new_call(&e);
        send_unit(&e, &c[i], (size_t)(1 + i % 2), NULL);
    }
    esi_publisher_destroy(e.p);
    e.p = NULL;
    for (int i = 0; i < 4; i++)
        assert_int_equal(calls_of(&c[i]), 1);
    assert_int_equal(c[0].status, ES_OK);
    assert_int_equal(c[1].status, ES_OK);
    assert_int_equal(c[2].status, ES_ERR_TIMEOUT);
    assert_int_equal(c[3].status, ES_OK);
    assert_int_equal(fake_conn_stats_now(e.f).subscriptions, 0);
    esi_sleep_ms(450); /* the repeated answer comes to nobody */
    for (int i = 0; i < 4; i++)
        assert_int_equal(calls_of(&c[i]), 1);
    env_close(&e);
}

static void send_failure_reaches_the_callback(void **state)
{
    (void)state;
    env e;
    env_open(&e, 2000, 8, 2);
    fake_conn_fail_publish(e.f, ES_ERR_CONNECTION, 1);
    call c = new_call(&e);
    send_unit(&e, &c, 2, NULL);
    assert_int_equal(calls_of(&c), 1); /* at once, from the sender */
    assert_int_equal(c.status, ES_ERR_CONNECTION);
    assert_non_null(strstr(c.text, "refused"));
    fake_conn_set_max_payload(e.f, 4);
    call big = new_call(&e);
    send_unit(&e, &big, 1, NULL);
    assert_int_equal(big.status, ES_ERR_TOO_LARGE);
    assert_int_equal(esi_publisher_flush(e.p, 100), ES_OK);
    assert_int_equal(fake_js_stats_now(e.fj).units, 0);
    env_close(&e);
}

/* Follow-up work: the callback keeps the messages and defers a job to the
 * publisher's thread, which may make requests; the unit is in flight until
 * esi_publisher_finish. */
typedef struct followup {
    call c;
    pthread_mutex_t gate;
    es_status request_status;
    int level;
    char subject[64];
    bool ran_on_reply_thread;
} followup;

static void run_followup(void *arg)
{
    followup *fu = arg;
    pthread_mutex_lock(&fu->gate); /* held by the test until it has looked */
    pthread_mutex_unlock(&fu->gate);
    fu->ran_on_reply_thread = pthread_equal(pthread_self(), fu->c.thread);
    snprintf(fu->subject, sizeof fu->subject, "%s", esi_msg_subject(fu->c.kept[0]));
    fu->request_status = esi_js_api_level(fu->c.e->js, &fu->level);
    esi_publisher_finish(fu->c.e->p, fu->c.kept, fu->c.kept_n);
}

static void deferred_followup_keeps_the_unit_in_flight(void **state)
{
    (void)state;
    env e;
    env_open(&e, 1000, 8, 2);
    followup fu = {.c = new_call(&e)};
    fu.c.followup = run_followup;
    pthread_mutex_init(&fu.gate, NULL);
    pthread_mutex_lock(&fu.gate);
    send_unit(&e, &fu.c, 2, NULL);
    assert_true(wait_calls(&fu.c, 1, WAIT_MS));
    assert_int_equal(esi_publisher_flush(e.p, 100), ES_ERR_TIMEOUT); /* not finished yet */
    pthread_mutex_unlock(&fu.gate);
    assert_int_equal(esi_publisher_flush(e.p, WAIT_MS), ES_OK);
    assert_int_equal(fu.request_status, ES_OK);
    assert_int_equal(fu.level, 2);
    assert_string_equal(fu.subject, "t.a");
    assert_false(fu.ran_on_reply_thread);
    assert_int_equal(fu.c.status, ES_OK);
    env_close(&e);
    pthread_mutex_destroy(&fu.gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(acknowledges_messages_and_batches),
        cmocka_unit_test(reports_a_duplicate),
        cmocka_unit_test(reports_a_conflict_with_the_actual_sequence),
        cmocka_unit_test(reports_no_responders),
        cmocka_unit_test(batch_refused_at_start_waits_for_the_sender),
        cmocka_unit_test(batch_refused_at_start_after_sending),
        cmocka_unit_test(early_acknowledgement_is_kept_for_the_sender),
        cmocka_unit_test(times_out_without_an_answer),
        cmocka_unit_test(units_queued_behind_answered_ones_do_not_expire),
        cmocka_unit_test(a_silent_server_fails_all_units_at_once),
        cmocka_unit_test(late_answer_after_timeout_is_dropped),
        cmocka_unit_test(late_answer_within_the_timeout_completes),
        cmocka_unit_test(duplicated_answer_is_ignored),
        cmocka_unit_test(full_window_blocks_then_frees),
        cmocka_unit_test(batch_window_blocks_batches_only),
        cmocka_unit_test(reserve_times_out_on_a_full_window),
        cmocka_unit_test(flush_waits_for_units_in_flight),
        cmocka_unit_test(destroy_waits_for_units_in_flight),
        cmocka_unit_test(send_failure_reaches_the_callback),
        cmocka_unit_test(deferred_followup_keeps_the_unit_in_flight),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
