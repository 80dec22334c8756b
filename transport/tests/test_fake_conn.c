/* The scripted server itself (fake_conn): what the publisher's and the
 * engine's tests rely on it for — routing, both kinds of subscription,
 * drain and close semantics, requests, delayed answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include "base/clock.h"
#include "transport/msg.h"
#include "transport/tests/fake_conn.h"

#define WAIT_MS 5000

static void matches_subjects(void **state)
{
    (void)state;
    assert_true(fake_subject_matches("a.b", "a.b"));
    assert_false(fake_subject_matches("a.b", "a.b.c"));
    assert_false(fake_subject_matches("a.b.c", "a.b"));
    assert_true(fake_subject_matches("a.*", "a.b"));
    assert_false(fake_subject_matches("a.*", "a.b.c"));
    assert_true(fake_subject_matches("a.*.c", "a.x.c"));
    assert_true(fake_subject_matches("a.>", "a.b.c"));
    assert_false(fake_subject_matches("a.>", "a"));
    assert_false(fake_subject_matches("ab.>", "a.b"));
    assert_false(fake_subject_matches("a.*", "a."));
}

static natsMsg *msg(const char *subject, const char *reply, const char *data)
{
    natsMsg *m = NULL;
    assert_int_equal(esi_msg_create(subject, reply, data, strlen(data), &m), ES_OK);
    return m;
}

static void routes_to_synchronous_subscriptions(void **state)
{
    (void)state;
    fake_conn *f = fake_conn_create();
    esi_conn c;
    fake_conn_table(f, &c);
    esi_sub *all = NULL, *one = NULL, *small = NULL;
    assert_int_equal(c.ops->subscribe_sync(c.ctx, "x.>", 0, 0, &all), ES_OK);
    assert_int_equal(c.ops->subscribe_sync(c.ctx, "x.one", 0, 0, &one), ES_OK);
    assert_int_equal(c.ops->subscribe_sync(c.ctx, "x.*", 2, 0, &small), ES_OK);
    natsMsg *m = msg("x.one", NULL, "1");
    assert_int_equal(esi_msg_header_set(m, "H", "v"), ES_OK);
    assert_int_equal(c.ops->publish(c.ctx, m), ES_OK);
    esi_msg_destroy(m);
    assert_int_equal(c.ops->publish_data(c.ctx, "x.two", NULL, "2", 1), ES_OK);
    assert_int_equal(c.ops->publish_data(c.ctx, "x.three", NULL, "3", 1), ES_OK);
    assert_int_equal(fake_conn_stats_now(f).dropped, 1); /* "small" holds two at most */
    natsMsg *got = NULL;
    assert_int_equal(c.ops->next_msg(one, 100, &got), ES_OK);
    assert_string_equal(esi_msg_header(got, "H"), "v"); /* headers travel */
    esi_msg_destroy(got);
    int64_t t0 = esi_monotonic_ms();
    assert_int_equal(c.ops->next_msg(one, 50, &got), ES_ERR_TIMEOUT);
    assert_true(esi_monotonic_ms() - t0 >= 50);
    /* drained: what came before is still read, then "stopped" */
    assert_int_equal(c.ops->drain(c.ctx, all, 1000), ES_OK);
    assert_int_equal(c.ops->publish_data(c.ctx, "x.four", NULL, "4", 1), ES_OK);
    for (const char *want = "123"; *want; want++) {
        assert_int_equal(c.ops->next_msg(all, 100, &got), ES_OK);
        assert_memory_equal(esi_msg_data(got), want, 1);
        esi_msg_destroy(got);
    }
    assert_int_equal(c.ops->next_msg(all, 100, &got), ES_ERR_STOPPED);
    c.ops->close(c.ctx, all);
    c.ops->release(c.ctx, one);
    c.ops->close(c.ctx, small);
    c.ops->close(c.ctx, NULL);
    assert_int_equal(fake_conn_stats_now(f).subscriptions, 0);
    assert_int_equal(fake_conn_stats_now(f).published, 4);
    natsMsg *first = fake_conn_published_msg(f, 0);
    assert_string_equal(esi_msg_header(first, "H"), "v");
    esi_msg_destroy(first);
    assert_null(fake_conn_published_msg(f, 4));
    fake_conn_destroy(f);
}

typedef struct counter {
    pthread_mutex_t mu;
    int started, calls;
    int64_t sleep_ms;
    pthread_t thread;
} counter;

static void count(natsMsg *m, void *closure)
{
    counter *k = closure;
    pthread_mutex_lock(&k->mu);
    k->started++;
    pthread_mutex_unlock(&k->mu);
    esi_sleep_ms(k->sleep_ms);
    pthread_mutex_lock(&k->mu);
    k->calls++;
    k->thread = pthread_self();
    pthread_mutex_unlock(&k->mu);
    esi_msg_destroy(m);
}

static int calls_of(counter *k)
{
    pthread_mutex_lock(&k->mu);
    int n = k->calls;
    pthread_mutex_unlock(&k->mu);
    return n;
}

static void drain_delivers_what_came_before_then_nothing(void **state)
{
    (void)state;
    fake_conn *f = fake_conn_create();
    esi_conn c;
    fake_conn_table(f, &c);
    counter k = {.sleep_ms = 20};
    pthread_mutex_init(&k.mu, NULL);
    esi_sub *sub = NULL;
    assert_int_equal(c.ops->subscribe(c.ctx, "y", count, &k, &sub), ES_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c.ops->publish_data(c.ctx, "y", NULL, "m", 1), ES_OK);
    fake_conn_deliver_after(f, 30, msg("y", NULL, "late"));
    assert_int_equal(c.ops->drain(c.ctx, sub, WAIT_MS), ES_OK);
    assert_int_equal(calls_of(&k), 3); /* all three, and the handler has returned */
    assert_false(pthread_equal(k.thread, pthread_self()));
    esi_sleep_ms(60);
    assert_int_equal(calls_of(&k), 3); /* the late one found no interest */
    pthread_mutex_destroy(&k.mu);
    fake_conn_destroy(f);
}

static void drain_timeout_drops_the_rest(void **state)
{
    (void)state;
    fake_conn *f = fake_conn_create();
    esi_conn c;
    fake_conn_table(f, &c);
    counter k = {.sleep_ms = 150};
    pthread_mutex_init(&k.mu, NULL);
    esi_sub *sub = NULL;
    assert_int_equal(c.ops->subscribe(c.ctx, "y", count, &k, &sub), ES_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(c.ops->publish_data(c.ctx, "y", NULL, "m", 1), ES_OK);
    int64_t give_up = esi_monotonic_ms() + WAIT_MS;
    pthread_mutex_lock(&k.mu);
    while (k.started == 0 && esi_monotonic_ms() < give_up) { /* the first is being handled */
        pthread_mutex_unlock(&k.mu);
        esi_sleep_ms(2);
        pthread_mutex_lock(&k.mu);
    }
    pthread_mutex_unlock(&k.mu);
    assert_int_equal(c.ops->drain(c.ctx, sub, 50), ES_ERR_TIMEOUT);
    int n = calls_of(&k);
    assert_true(n >= 1 && n < 4);
    esi_sleep_ms(200);
    assert_int_equal(calls_of(&k), n); /* nothing after drain returned */
    /* close drains too, without a timeout of the caller's */
    k.sleep_ms = 0;
    assert_int_equal(c.ops->subscribe(c.ctx, "y", count, &k, &sub), ES_OK);
    assert_int_equal(c.ops->publish_data(c.ctx, "y", NULL, "m", 1), ES_OK);
    c.ops->close(c.ctx, sub);
    assert_int_equal(calls_of(&k), n + 1);
    pthread_mutex_destroy(&k.mu);
    fake_conn_destroy(f);
}

static void answer_requests(fake_conn *f, natsMsg *m, void *closure)
{
    (void)closure;
    const char *subject = esi_msg_subject(m);
    if (strcmp(subject, "svc.echo") == 0)
        fake_conn_answer(f, m, esi_msg_data(m), esi_msg_len(m), 0);
    else if (strcmp(subject, "svc.slow") == 0)
        fake_conn_answer_text(f, m, "slow", 40);
    else if (strcmp(subject, "svc.late") == 0) /* long after anyone waits */
        fake_conn_answer_text(f, m, "late", 60000);
    else if (strcmp(subject, "svc.none") == 0)
        fake_conn_answer_status(f, m, "503", NULL);
    /* anything else: dropped */
}

static void requests_are_answered_by_the_handler(void **state)
{
    (void)state;
    fake_conn *f = fake_conn_create();
    esi_conn c;
    fake_conn_table(f, &c);
    natsMsg *reply = NULL;
    /* no handler: nobody listens */
    assert_int_equal(c.ops->request(c.ctx, "svc.echo", "hi", 2, 100, &reply), ES_ERR_UNSUPPORTED);
    assert_null(reply);
    fake_conn_set_handler(f, answer_requests, NULL);
    assert_int_equal(c.ops->request(c.ctx, "svc.echo", "hi", 2, 100, &reply), ES_OK);
    assert_memory_equal(esi_msg_data(reply), "hi", 2);
    esi_msg_destroy(reply);
    natsMsg *req = msg("svc.slow", NULL, "");
    assert_int_equal(c.ops->request_msg(c.ctx, req, 1000, &reply), ES_OK);
    assert_memory_equal(esi_msg_data(reply), "slow", 4);
    esi_msg_destroy(reply);
    esi_msg_destroy(req);
    req = msg("svc.late", NULL, "");
    assert_int_equal(c.ops->request_msg(c.ctx, req, 10, &reply), ES_ERR_TIMEOUT);
    esi_msg_destroy(req);
    assert_int_equal(c.ops->request(c.ctx, "svc.none", "", 0, 100, &reply), ES_ERR_UNSUPPORTED);
    int64_t t0 = esi_monotonic_ms();
    assert_int_equal(c.ops->request(c.ctx, "svc.drop", "", 0, 60, &reply), ES_ERR_TIMEOUT);
    assert_true(esi_monotonic_ms() - t0 >= 60);
    assert_int_equal(fake_conn_stats_now(f).subscriptions, 0); /* inboxes are released */
    fake_conn_fail_publish(f, ES_ERR_CONNECTION, 1);
    assert_int_equal(c.ops->request(c.ctx, "svc.echo", "", 0, 100, &reply), ES_ERR_CONNECTION);
    assert_int_equal(c.ops->flush(c.ctx, 10), ES_OK);
    assert_int_equal(c.ops->max_payload(c.ctx), 1024 * 1024);
    fake_conn_destroy(f);
}

static void delayed_deliveries_keep_their_order(void **state)
{
    (void)state;
    fake_conn *f = fake_conn_create();
    esi_conn c;
    fake_conn_table(f, &c);
    esi_sub *sub = NULL;
    assert_int_equal(c.ops->subscribe_sync(c.ctx, "z", 0, 0, &sub), ES_OK);
    fake_conn_deliver_after(f, 60, msg("z", NULL, "3"));
    fake_conn_deliver_after(f, 20, msg("z", NULL, "1"));
    fake_conn_deliver_after(f, 40, msg("z", NULL, "2"));
    fake_conn_deliver_after(f, 10000, msg("z", NULL, "never")); /* dropped at destroy */
    for (const char *want = "123"; *want; want++) {
        natsMsg *got = NULL;
        assert_int_equal(c.ops->next_msg(sub, WAIT_MS, &got), ES_OK);
        assert_memory_equal(esi_msg_data(got), want, 1);
        esi_msg_destroy(got);
    }
    c.ops->close(c.ctx, sub);
    fake_conn_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_subjects),
        cmocka_unit_test(routes_to_synchronous_subscriptions),
        cmocka_unit_test(drain_delivers_what_came_before_then_nothing),
        cmocka_unit_test(drain_timeout_drops_the_rest),
        cmocka_unit_test(requests_are_answered_by_the_handler),
        cmocka_unit_test(delayed_deliveries_keep_their_order),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
