/* Concurrent writers through decide: no lost update. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define WRITERS  8
#define COMMANDS 25

typedef struct counter {
    long value;
    uint64_t events;
} counter;

static es_status reset(void *state)
{
    memset(state, 0, sizeof(counter));
    return ES_OK;
}

static es_status evolve(void *state, const es_event *ev)
{
    counter *c = state;
    const void *d;
    size_t len;
    es_status s = es_event_data(ev, &d, &len);
    if (s != ES_OK)
        return s;
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)d);
    long v = strtol(buf, NULL, 10);
    if (v != c->value + 1) /* every increment must build on the one before */
        return ES_ERR_DECODE;
    c->value = v;
    c->events++;
    return ES_OK;
}

static es_status decide(void *state, es_decision *d)
{
    counter *c = state;
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", c->value + 1);
    es_event_spec e;
    es_event_spec_init(&e);
    e.event_type = "incremented";
    e.data = buf;
    e.data_len = strlen(buf);
    return es_decision_add(d, &e);
}

static const es_decider counter_decider = {reset, evolve, decide};

typedef struct writer {
    es_store *st;
    int done;
    int failed;
    es_status last;
} writer;

static void *write_loop(void *arg)
{
    writer *w = arg;
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "counter";
    f.entity_id = "shared";
    es_decide_options o;
    es_decide_options_init(&o);
    o.max_attempts = 1000;
    for (int i = 0; i < COMMANDS; i++) {
        counter state;
        es_status s = es_decide(w->st, &f, &counter_decider, &state, &o, NULL);
        if (s == ES_OK)
            w->done++;
        else {
            w->failed++;
            w->last = s;
        }
    }
    return NULL;
}

static void eight_writers_lose_nothing(void **state)
{
    conf_ctx *c = *state;
    pthread_t threads[WRITERS];
    writer w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){.st = c->st};
        assert_int_equal(pthread_create(&threads[i], NULL, write_loop, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(threads[i], NULL);
        if (w[i].failed)
            fail_msg("writer %d: %d failed (%s)", i, w[i].failed, es_status_text(w[i].last));
        assert_int_equal(w[i].done, COMMANDS);
    }
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "counter";
    f.entity_id = "shared";
    counter final = {0, 0};
    typedef struct {
        counter *c;
    } unused;
    (void)sizeof(unused);
    conf_seen seen = {0};
    assert_int_equal(es_load(c->st, &f, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, WRITERS * COMMANDS);
    for (size_t i = 0; i < seen.count; i++) {
        char want[32];
        snprintf(want, sizeof want, "%zu", i + 1);
        assert_string_equal(seen.data[i], want);
        final.value = (long)i + 1;
    }
    assert_int_equal(final.value, WRITERS * COMMANDS);
    conf_seen_free(&seen);
}

static es_status refuse(void *state, es_decision *d)
{
    (void)state;
    (void)d;
    return ES_ERR_ABORTED;
}

static es_status decide_nothing(void *state, es_decision *d)
{
    (void)state;
    (void)d;
    return ES_OK;
}

static void a_decider_may_refuse_or_do_nothing(void **state)
{
    conf_ctx *c = *state;
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "counter";
    f.entity_id = "x";
    counter st;
    es_decider refusing = {reset, evolve, refuse};
    assert_int_equal(es_decide(c->st, &f, &refusing, &st, NULL, NULL), ES_ERR_ABORTED);
    es_decider idle = {reset, evolve, decide_nothing};
    assert_int_equal(es_decide(c->st, &f, &idle, &st, NULL, NULL), ES_OK);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);
    f.event_type = "x";
    assert_int_equal(es_decide(c->st, &f, &counter_decider, &st, NULL, NULL), ES_ERR_INVALID);
}

int conf_run_concurrency(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(eight_writers_lose_nothing, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(a_decider_may_refuse_or_do_nothing, conf_setup,
                                        conf_teardown),
    };
    return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
