/* Atomic batches: all or nothing, limits, idempotency, pipelining. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static void a_batch_spans_entities_and_is_consecutive(void **state)
{
    conf_ctx *c = *state;
    es_event_spec b[4] = {
        conf_spec("account", "a1", "opened", "1"),
        conf_spec("account", "a2", "opened", "2"),
        conf_spec("ledger", "main", "posted", "3"),
        conf_spec("account", "a1", "deposited", "4"),
    };
    es_append_result r;
    assert_int_equal(es_append(c->st, &b[0], NULL), ES_OK);
    assert_int_equal(es_append_batch(c->st, b, 4, &r), ES_OK);
    assert_int_equal(r.first_seq, 2);
    assert_int_equal(r.last_seq, 5);
    assert_int_equal(r.count, 4);
    conf_seen seen = {0};
    assert_int_equal(es_evolve(c->st, NULL, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 5);
    for (size_t i = 1; i < 5; i++) {
        assert_int_equal(seen.seqs[i], i + 1);
        assert_string_equal(seen.data[i], b[i - 1].data);
    }
    conf_seen_free(&seen);
}

static void a_failing_third_event_stores_nothing(void **state)
{
    conf_ctx *c = *state;
    es_event_spec first = conf_spec("account", "a9", "opened", "0");
    assert_int_equal(es_append(c->st, &first, NULL), ES_OK);
    es_event_spec b[5] = {
        conf_spec("account", "a1", "opened", "1"), conf_spec("account", "a2", "opened", "2"),
        conf_spec("account", "a9", "closed", "3"), conf_spec("account", "a3", "opened", "4"),
        conf_spec("account", "a4", "opened", "5"),
    };
    b[2].expect = ES_EXPECT_NEW; /* a9 has an event: this one fails */
    es_append_result r;
    assert_int_equal(es_append_batch(c->st, b, 5, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 1);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 1);
}

/* A batch whose commit never comes is never stored, not even in part. */
static void an_abandoned_batch_stores_nothing(void **state)
{
    conf_ctx *c = *state;
    char subject[128];
    snprintf(subject, sizeof subject, "$ES.%s.account.a1.opened", c->name);
    for (int i = 1; i <= 2; i++) {
        natsMsg *m = NULL;
        char seq[8];
        snprintf(seq, sizeof seq, "%d", i);
        assert_int_equal(natsMsg_Create(&m, subject, NULL, "x", 1), NATS_OK);
        natsMsgHeader_Set(m, "Nats-Batch-Id", "abandoned-batch-1");
        natsMsgHeader_Set(m, "Nats-Batch-Sequence", seq);
        if (i == 1) {
            natsMsg *reply = NULL;
            assert_int_equal(natsConnection_RequestMsg(&reply, c->nc, m, 5000), NATS_OK);
            natsMsg_Destroy(reply);
        } else {
            assert_int_equal(natsConnection_PublishMsg(c->nc, m), NATS_OK);
        }
        natsMsg_Destroy(m);
    }
    assert_int_equal(natsConnection_Flush(c->nc), NATS_OK);
    conf_sleep_ms(300);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);
    /* The store goes on working around it. */
    es_event_spec e = conf_spec("account", "a1", "opened", "y");
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 1);
}

static void limits_are_enforced_never_split(void **state)
{
    conf_ctx *c = *state;
    es_event_spec *b = calloc(ES_BATCH_MAX + 1, sizeof *b);
    for (size_t i = 0; i <= ES_BATCH_MAX; i++)
        b[i] = conf_spec("item", "i1", "added", "x");
    assert_int_equal(es_append_batch(c->st, b, ES_BATCH_MAX + 1, NULL), ES_ERR_TOO_LARGE);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);
    es_append_result r;
    assert_int_equal(es_append_batch(c->st, b, ES_BATCH_MAX, &r), ES_OK);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.last_seq, ES_BATCH_MAX);
    /* One bad event refuses the whole batch before anything is sent. */
    b[500].event_type = "bad.type";
    assert_int_equal(es_append_batch(c->st, b, 10, NULL), ES_OK);
    assert_int_equal(es_append_batch(c->st, b, 600, NULL), ES_ERR_INVALID);
    assert_int_equal(es_append_batch(c->st, b, 0, NULL), ES_ERR_INVALID);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), ES_BATCH_MAX + 10);
    free(b);
}

static void a_batch_is_idempotent(void **state)
{
    conf_ctx *c = *state;
    es_event_spec b[3] = {
        conf_spec("account", "a1", "opened", "1"),
        conf_spec("account", "a1", "deposited", "2"),
        conf_spec("account", "a2", "opened", "3"),
    };
    b[0].event_id = "batch-e1";
    b[1].event_id = "batch-e2";
    b[2].event_id = "batch-e3";
    b[0].expect = ES_EXPECT_NEW;
    es_append_result r;
    assert_int_equal(es_append_batch(c->st, b, 3, &r), ES_OK);
    assert_int_equal(r.first_seq, 1);
    assert_false(r.duplicate);
    assert_int_equal(es_append_batch(c->st, b, 3, &r), ES_OK); /* with its expectation */
    assert_true(r.duplicate);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.last_seq, 3);
    b[0].expect = ES_EXPECT_ANY;
    assert_int_equal(es_append_batch(c->st, b, 3, &r), ES_OK); /* without */
    assert_true(r.duplicate);
    assert_int_equal(r.last_seq, 3);
    /* Some stored, some new: refused as a whole, nothing stored. */
    b[2].event_id = "batch-e4";
    assert_int_equal(es_append_batch(c->st, b, 3, &r), ES_ERR_DUPLICATE);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 3);
}

/* The same event id twice in one batch: refused before sending, as a bad
 * argument (the server would refuse it as a duplicate, which reads as a
 * retry of a stored batch); through the asynchronous call too. */
static void a_batch_with_an_id_twice_is_refused_before_sending(void **state)
{
    conf_ctx *c = *state;
    es_event_spec b[3] = {
        conf_spec("account", "a1", "opened", "1"),
        conf_spec("account", "a2", "opened", "2"),
        conf_spec("account", "a3", "opened", "3"),
    };
    b[0].event_id = "twice";
    b[1].event_id = "once";
    b[2].event_id = "twice";
    assert_int_equal(es_append_batch(c->st, b, 3, NULL), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "event 2: event id 'twice' is also event 0's"));
    assert_int_equal(es_append_batch_async(c->st, b, 3, NULL, NULL), ES_ERR_INVALID);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);
    b[2].event_id = NULL; /* a generated id: stored */
    assert_int_equal(es_append_batch(c->st, b, 3, NULL), ES_OK);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 3);
}

typedef struct pipeline {
    _Atomic int ok;
    _Atomic int failed;
} pipeline;

static void on_done(es_status s, const es_append_result *r, void *closure)
{
    pipeline *p = closure;
    if (s == ES_OK && r->count == 10 && r->last_seq - r->first_seq == 9)
        p->ok++;
    else
        p->failed++;
}

static void async_batches_pipeline(void **state)
{
    conf_ctx *c = *state;
    pipeline p = {0, 0};
    es_event_spec b[10];
    char id[16];
    for (int n = 0; n < 300; n++) {
        snprintf(id, sizeof id, "e%d", n % 7);
        for (int i = 0; i < 10; i++)
            b[i] = conf_spec("entity", id, "changed", "payload");
        assert_int_equal(es_append_batch_async(c->st, b, 10, on_done, &p), ES_OK);
    }
    assert_int_equal(es_append_flush(c->st, 30000), ES_OK);
    assert_int_equal(p.ok, 300);
    assert_int_equal(p.failed, 0);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 3000);
    /* Every batch landed contiguously: events of one batch share an entity. */
    conf_seen seen = {0};
    assert_int_equal(es_evolve(c->st, NULL, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 3000);
    for (size_t i = 0; i < 3000; i += 10)
        for (size_t j = 1; j < 10; j++)
            assert_string_equal(seen.ids[i + j], seen.ids[i]);
    conf_seen_free(&seen);
    assert_int_equal(es_append_batch_async(c->st, b, 10, NULL, NULL), ES_ERR_INVALID);
}

/* What an asynchronous callback saw, copied during the call. */
typedef struct answer {
    _Atomic int calls;
    es_status status;
    int err_code;
    uint64_t actual_seq;
    char error[256];
} answer;

static void keep_answer(es_status s, const es_append_result *r, void *closure)
{
    answer *a = closure;
    a->status = s;
    a->err_code = r->err_code;
    a->actual_seq = r->actual_seq;
    snprintf(a->error, sizeof a->error, "%s", r->error);
    a->calls++;
}

/* The callback runs on a library thread: the server's code and text come in
 * the result, not through es_last_error() (the calling thread's). */
static void async_callbacks_receive_the_server_code_and_text(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("account", "a1", "opened", "1");
    e.expect = ES_EXPECT_NEW;
    answer ok = {0}, refused = {0};
    assert_int_equal(es_append_batch_async(c->st, &e, 1, keep_answer, &ok), ES_OK);
    assert_int_equal(es_append_flush(c->st, 10000), ES_OK);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.status, ES_OK);
    assert_int_equal(ok.err_code, 0);
    assert_string_equal(ok.error, "");
    assert_int_equal(es_append_batch_try_async(c->st, &e, 1, keep_answer, &refused), ES_OK);
    assert_int_equal(es_append_flush(c->st, 10000), ES_OK);
    assert_int_equal(refused.calls, 1);
    assert_int_equal(refused.status, ES_ERR_CONFLICT);
    assert_int_equal(refused.err_code, 10071);
    assert_int_equal(refused.actual_seq, 1);
    assert_non_null(strstr(refused.error, "wrong last sequence"));
}

typedef struct tries {
    _Atomic int answered;
    _Atomic int failed;
} tries;

static void count_try(es_status s, const es_append_result *r, void *closure)
{
    (void)r;
    tries *t = closure;
    t->answered++;
    if (s != ES_OK)
        t->failed++;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* es_append_batch_try_async never waits for room: with one place in flight,
 * submitting back to back meets a full window, told at once as ES_ERR_AGAIN
 * (no callback); everything it took is stored. */
static void try_async_says_again_when_the_window_is_full(void **state)
{
    conf_ctx *c = *state;
    es_store_options o;
    es_store_options_init(&o);
    o.max_inflight = 1;
    o.max_batches_inflight = 1;
    es_store *st;
    assert_int_equal(es_store_open(c->nc, c->name, &o, &st), ES_OK);
    es_event_spec b[10];
    for (int i = 0; i < 10; i++)
        b[i] = conf_spec("entity", "e1", "changed", "payload");
    tries t = {0, 0};
    int taken = 0, again = 0;
    double slowest_again = 0;
    for (int n = 0; n < 2000 && (again < 20 || taken < 20); n++) {
        double start = now_ms();
        es_status s = es_append_batch_try_async(st, b, 10, count_try, &t);
        double took = now_ms() - start;
        if (s == ES_ERR_AGAIN) {
            again++;
            slowest_again = took > slowest_again ? took : slowest_again;
        } else {
            assert_int_equal(s, ES_OK);
            taken++;
        }
    }
    assert_int_equal(es_append_flush(st, 10000), ES_OK);
    assert_true(again > 0);
    assert_true(slowest_again < 100); /* told at once, not after the request timeout */
    assert_int_equal(t.answered, taken);
    assert_int_equal(t.failed, 0);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), (uint64_t)taken * 10);
    es_store_destroy(st);
}

int conf_run_batch(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_batch_spans_entities_and_is_consecutive, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_failing_third_event_stores_nothing, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(an_abandoned_batch_stores_nothing, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(limits_are_enforced_never_split, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(a_batch_is_idempotent, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(a_batch_with_an_id_twice_is_refused_before_sending,
                                        conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(async_batches_pipeline, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(async_callbacks_receive_the_server_code_and_text,
                                        conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(try_async_says_again_when_the_window_is_full, conf_setup,
                                        conf_teardown),
    };
    return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
