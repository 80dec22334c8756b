/* Watches: catch-up then live, no-wait, stop, resume, and a server restart. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct watched {
    conf_locked_seen ls;
    _Atomic int caught_up_calls;
    _Atomic int errors;
    _Atomic int final_errors;
} watched;

static es_status on_event(const es_event *ev, void *closure)
{
    return conf_collect_locked(ev, &((watched *)closure)->ls);
}

static void on_caught_up(void *closure)
{
    watched *w = closure;
    w->caught_up_calls++;
}

static void on_error(es_status s, const char *text, bool final, void *closure)
{
    (void)s;
    (void)text;
    watched *w = closure;
    if (final)
        w->final_errors++;
    else
        w->errors++;
}

static size_t seen_count(watched *w)
{
    return conf_locked_count(&w->ls);
}

static bool wait_for(watched *w, size_t n, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += 20) {
        if (seen_count(w) >= n)
            return true;
        conf_sleep_ms(20);
    }
    return seen_count(w) >= n;
}

static void options(es_watch_options *o, watched *w)
{
    es_watch_options_init(o);
    o->on_event = on_event;
    o->on_caught_up = on_caught_up;
    o->on_error = on_error;
    o->closure = w;
    o->heartbeat_ms = 500;
    pthread_mutex_init(&w->ls.mu, NULL);
}

static void append_n(es_store *st, const char *id, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char data[16];
        snprintf(data, sizeof data, "%d", i);
        es_event_spec e = conf_spec("account", id, "changed", data);
        assert_int_equal(es_append(st, &e, NULL), ES_OK);
    }
}

static void assert_exact_sequence(watched *w, uint64_t first, size_t n)
{
    pthread_mutex_lock(&w->ls.mu);
    assert_int_equal(w->ls.seen.count, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(w->ls.seen.seqs[i], first + i);
    pthread_mutex_unlock(&w->ls.mu);
}

static void catches_up_then_goes_live(void **state)
{
    conf_ctx *c = *state;
    append_n(c->st, "a1", 0, 5);
    append_n(c->st, "other", 0, 2);
    watched w = {0};
    es_watch_options o;
    options(&o, &w);
    o.filter.entity_type = "account";
    o.filter.entity_id = "a1";
    es_watch *wt = NULL;
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_OK);
    /* Returned after catching up: history is there already. */
    assert_int_equal(seen_count(&w), 5);
    assert_true(es_watch_caught_up(wt));
    assert_int_equal(w.caught_up_calls, 1);
    append_n(c->st, "a1", 5, 3);
    append_n(c->st, "other", 5, 3);
    assert_true(wait_for(&w, 8, 5000));
    conf_sleep_ms(200);
    assert_int_equal(seen_count(&w), 8);
    assert_string_equal(w.ls.seen.data[7], "7");
    assert_int_equal(es_watch_last_seq(wt), w.ls.seen.seqs[7]);
    assert_int_equal(w.caught_up_calls, 1);
    es_watch_destroy(wt);
    conf_seen_free(&w.ls.seen);
}

/* A watch started right after an append returns (caught up) with that
 * append delivered: on a replicated store too, where its consumer may be
 * placed on a replica that has not applied the append yet and counts
 * nothing pending (the watch then waits for the leader's last event). */
static void a_watch_is_caught_up_past_the_append_before_it(void **state)
{
    conf_ctx *c = *state;
    for (int round = 0; round < 15; round++) {
        es_event_spec e = conf_spec("note", "n1", "written", "x");
        es_append_result r;
        assert_int_equal(es_append(c->st, &e, &r), ES_OK);
        watched w = {0};
        es_watch_options o;
        options(&o, &w);
        o.filter.entity_type = "note";
        o.after_seq = r.last_seq > 1 ? r.last_seq - 1 : 0;
        es_watch *wt = NULL;
        assert_int_equal(es_watch_start(c->st, &o, &wt), ES_OK);
        uint64_t last = es_watch_last_seq(wt);
        es_watch_destroy(wt);
        conf_seen_free(&w.ls.seen);
        pthread_mutex_destroy(&w.ls.mu);
        if (last != r.last_seq)
            fail_msg("round %d: the watch was caught up at %llu, the append was %llu", round,
                     (unsigned long long)last, (unsigned long long)r.last_seq);
    }
}

static void an_empty_filter_is_caught_up_at_once(void **state)
{
    conf_ctx *c = *state;
    watched w = {0};
    es_watch_options o;
    options(&o, &w);
    es_watch *wt = NULL;
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_OK);
    assert_true(es_watch_caught_up(wt));
    append_n(c->st, "a1", 0, 1);
    assert_true(wait_for(&w, 1, 5000));
    es_watch_destroy(wt);
    conf_seen_free(&w.ls.seen);
}

static void no_wait_returns_at_once(void **state)
{
    conf_ctx *c = *state;
    conf_append_many(c->st, "account", "a1", "changed", 20000);
    watched w = {0};
    es_watch_options o;
    options(&o, &w);
    o.no_wait = true;
    es_watch *wt = NULL;
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_OK);
    assert_true(seen_count(&w) < 20000); /* still catching up */
    assert_true(wait_for(&w, 20000, 30000));
    for (int i = 0; i < 100 && !es_watch_caught_up(wt); i++)
        conf_sleep_ms(10);
    assert_true(es_watch_caught_up(wt));
    es_watch_destroy(wt);
    assert_exact_sequence(&w, 1, 20000);
    conf_seen_free(&w.ls.seen);
}

static void stop_ends_delivery_and_resume_continues(void **state)
{
    conf_ctx *c = *state;
    append_n(c->st, "a1", 0, 4);
    watched w = {0};
    es_watch_options o;
    options(&o, &w);
    es_watch *wt = NULL;
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_OK);
    es_watch_stop(wt);
    uint64_t last = es_watch_last_seq(wt);
    assert_int_equal(last, 4);
    append_n(c->st, "a1", 4, 3);
    conf_sleep_ms(300);
    assert_int_equal(seen_count(&w), 4);
    es_watch_destroy(wt);

    o.after_seq = last; /* resume where it stopped */
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_OK);
    assert_int_equal(seen_count(&w), 7);
    es_watch_destroy(wt);
    assert_exact_sequence(&w, 1, 7);
    conf_seen_free(&w.ls.seen);
}

static es_status stop_on_second(const es_event *ev, void *closure)
{
    on_event(ev, closure);
    return es_event_seq(ev) == 2 ? ES_ERR_ABORTED : ES_OK;
}

static void a_callback_error_ends_the_watch(void **state)
{
    conf_ctx *c = *state;
    append_n(c->st, "a1", 0, 1);
    watched w = {0};
    es_watch_options o;
    options(&o, &w);
    o.on_event = stop_on_second;
    es_watch *wt = NULL;
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_OK);
    append_n(c->st, "a1", 1, 3);
    assert_true(wait_for(&w, 2, 5000));
    conf_sleep_ms(300);
    assert_int_equal(seen_count(&w), 2);
    assert_int_equal(w.final_errors, 1);
    es_watch_destroy(wt);
    conf_seen_free(&w.ls.seen);
}

/* Kill -9 the server under a live watch, restart it, keep appending: every
 * event arrives exactly once, in order. */
static void survives_a_server_restart(void **state)
{
    (void)state;
    conf_server *srv = conf_server_start();
    if (srv == NULL) {
        print_message("skipped: set ES_NATS_SERVER or --nats-server to run restart tests\n");
        skip();
    }
    natsConnection *nc = conf_connect(conf_server_url(srv));
    es_store *st = NULL;
    assert_int_equal(es_store_create(nc, "restart", conf_store_config(), NULL, &st), ES_OK);
    conf_wait_store_ready(nc, st);
    append_n(st, "a1", 0, 10);
    watched w = {0};
    es_watch_options o;
    options(&o, &w);
    o.heartbeat_ms = 300;
    es_watch *wt = NULL;
    assert_int_equal(es_watch_start(st, &o, &wt), ES_OK);
    assert_int_equal(seen_count(&w), 10);

    conf_server_restart(srv);
    /* Appends fail while the client reconnects; retry until they land. */
    for (int i = 10; i < 20; i++) {
        char data[16];
        snprintf(data, sizeof data, "%d", i);
        es_event_spec e = conf_spec("account", "a1", "changed", data);
        char id[32];
        snprintf(id, sizeof id, "restart-%d", i);
        e.event_id = id;
        es_status s = ES_ERR_CONNECTION;
        for (int attempt = 0; attempt < 100 && s != ES_OK; attempt++) {
            s = es_append(st, &e, NULL);
            if (s != ES_OK)
                conf_sleep_ms(100);
        }
        assert_int_equal(s, ES_OK);
    }
    assert_true(wait_for(&w, 20, 20000));
    conf_sleep_ms(500);
    es_watch_destroy(wt);
    assert_exact_sequence(&w, 1, 20);
    assert_string_equal(w.ls.seen.data[19], "19");
    conf_seen_free(&w.ls.seen);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
    conf_server_destroy(srv);
}

int conf_run_watch(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(catches_up_then_goes_live, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(a_watch_is_caught_up_past_the_append_before_it,
                                        conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(an_empty_filter_is_caught_up_at_once, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(no_wait_returns_at_once, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(stop_ends_delivery_and_resume_continues, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_callback_error_ends_the_watch, conf_setup, conf_teardown),
        cmocka_unit_test(survives_a_server_restart),
    };
    return cmocka_run_group_tests_name("watch", tests, NULL, NULL);
}
