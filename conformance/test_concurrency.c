/* Concurrent writers through decide: no lost update. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
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
    const es_decide_options *opts; /* NULL: es_decide's defaults */
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
    for (int i = 0; i < COMMANDS; i++) {
        counter state;
        es_status s = es_decide(w->st, &f, &counter_decider, &state, w->opts, NULL);
        if (s == ES_OK)
            w->done++;
        else {
            w->failed++;
            w->last = s;
        }
    }
    return NULL;
}

/* `n` writers of COMMANDS commands each on one entity; fails unless every
 * command went through. Prints how long it took and how many were lost. */
static void run_writers(es_store *st, int n, const es_decide_options *opts, const char *what)
{
    pthread_t threads[WRITERS];
    writer w[WRITERS];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        w[i] = (writer){.st = st, .opts = opts};
        assert_int_equal(pthread_create(&threads[i], NULL, write_loop, &w[i]), 0);
    }
    int lost = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        lost += w[i].failed;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("    decide: %d writers x %d commands on one entity (%s): %d/%d stored, %d lost, "
           "%.2f s\n",
           n, COMMANDS, what, n * COMMANDS - lost, n * COMMANDS, lost, secs);
    for (int i = 0; i < n; i++) {
        if (w[i].failed)
            fail_msg("writer %d: %d failed (%s)", i, w[i].failed, es_status_text(w[i].last));
        assert_int_equal(w[i].done, COMMANDS);
    }
}

static void eight_writers_lose_nothing(void **state)
{
    conf_ctx *c = *state;
    es_decide_options o;
    es_decide_options_init(&o);
    o.max_attempts = 1000;
    run_writers(c->st, WRITERS, &o, "1000 attempts");
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

/* The defaults must survive ordinary contention: four writers on one
 * entity lose no command (a correctness assertion; the time is printed). */
static void four_writers_with_the_defaults_lose_nothing(void **state)
{
    conf_ctx *c = *state;
    run_writers(c->st, 4, NULL, "defaults");
    conf_seen seen = {0};
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "counter";
    f.entity_id = "shared";
    assert_int_equal(es_load(c->st, &f, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 4 * COMMANDS);
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

static es_status add_then_reject(void *state, es_decision *d)
{
    (void)state;
    es_event_spec e;
    es_event_spec_init(&e);
    e.event_type = "withdrawn";
    assert_int_equal(es_decision_add(d, &e), ES_OK);
    assert_int_equal(es_decision_reject(d, "balance 5 is below 10"), ES_ERR_ABORTED);
    es_error_clear(); /* decide may call es_ functions after rejecting */
    return ES_OK;     /* the refusal stands */
}

static es_status reject_without_reason(void *state, es_decision *d)
{
    (void)state;
    return es_decision_reject(d, NULL);
}

static void a_decider_can_say_why_it_refuses(void **state)
{
    conf_ctx *c = *state;
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    f.entity_id = "a1";
    counter st;
    es_decider refusing = {reset, evolve, add_then_reject};
    assert_int_equal(es_decide(c->st, &f, &refusing, &st, NULL, NULL), ES_ERR_ABORTED);
    assert_string_equal(es_last_error(), "balance 5 is below 10");
    es_decider silent = {reset, evolve, reject_without_reason};
    assert_int_equal(es_decide(c->st, &f, &silent, &st, NULL, NULL), ES_ERR_ABORTED);
    assert_string_equal(es_last_error(), "the decider refused the command");
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);
    assert_int_equal(es_decision_reject(NULL, "x"), ES_ERR_INVALID);
}

/* A decider that writes to its own entity while deciding: every attempt
 * conflicts, so only the bounds end it. */
typedef struct meddler {
    counter c;
    es_store *st;
    int attempts;
} meddler;

static es_status ignore(void *state, const es_event *ev)
{
    (void)state;
    (void)ev;
    return ES_OK;
}

static es_status meddle(void *state, es_decision *d)
{
    meddler *m = state;
    m->attempts++;
    es_event_spec other = conf_spec("counter", "busy", "incremented", "0");
    es_status s = es_append(m->st, &other, NULL);
    return s == ES_OK ? decide(&m->c, d) : s; /* "1": stored only if nobody wrote */
}

static void conflicts_are_retried_within_the_budget(void **state)
{
    conf_ctx *c = *state;
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "counter";
    f.entity_id = "busy";
    es_decider d = {NULL, ignore, meddle};
    es_decide_options o;
    es_decide_options_init(&o);
    assert_int_equal(o.budget_ms, 5000);
    assert_int_equal(o.max_attempts, 0);
    o.budget_ms = 300;
    meddler m = {.st = c->st};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    es_append_result r;
    assert_int_equal(es_decide(c->st, &f, &d, &m, &o, &r), ES_ERR_CONFLICT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(m.attempts > 5); /* more than the old count, bounded by time */
    assert_true(ms >= 150 && ms < 5000);
    assert_int_equal(r.actual_seq, (uint64_t)m.attempts); /* the entity's last sequence */
    assert_non_null(strstr(es_last_error(), "kept changing"));

    o.max_attempts = 3; /* both bounds: the first reached ends it */
    m.attempts = 0;
    assert_int_equal(es_decide(c->st, &f, &d, &m, &o, NULL), ES_ERR_CONFLICT);
    assert_int_equal(m.attempts, 3);

    o.budget_ms = 0; /* no bound at all is refused */
    o.max_attempts = 0;
    assert_int_equal(es_decide(c->st, &f, &d, &m, &o, NULL), ES_ERR_INVALID);
    o.budget_ms = -1;
    o.max_attempts = 3;
    assert_int_equal(es_decide(c->st, &f, &d, &m, &o, NULL), ES_ERR_INVALID);
}

int conf_run_concurrency(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(eight_writers_lose_nothing, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(four_writers_with_the_defaults_lose_nothing, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_decider_may_refuse_or_do_nothing, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_decider_can_say_why_it_refuses, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(conflicts_are_retried_within_the_budget, conf_setup,
                                        conf_teardown),
    };
    return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
