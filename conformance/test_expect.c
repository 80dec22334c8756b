/* Expectations beyond one entity's sequence: a conflicting batch names every
 * expectation that fails, with expected and actual sequences; expectations
 * about a filter (Rita's Expect{Pattern}); ES_EXPECT_EXISTS. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static es_event_spec expecting(const char *id, es_expect expect, uint64_t seq)
{
    es_event_spec e = conf_spec("account", id, "changed", "x");
    e.expect = expect;
    e.expect_seq = seq;
    return e;
}

/* a1 at 1, a2 at 3, a3 at 4. */
static void three_accounts(es_store *st)
{
    es_event_spec e[4] = {
        conf_spec("account", "a1", "opened", "1"), conf_spec("account", "a2", "opened", "2"),
        conf_spec("account", "a2", "deposited", "3"), conf_spec("account", "a3", "opened", "4")};
    es_append_result r;
    assert_int_equal(es_append_batch(st, e, 4, &r), ES_OK);
    assert_int_equal(r.last_seq, 4);
}

static void assert_conflict(const conf_ctx *c, const es_append_conflict *k, size_t index,
                            const char *id, uint64_t expected, uint64_t actual)
{
    char subject[128];
    snprintf(subject, sizeof subject, "$ES.%s.account.%s.*", c->name, id);
    assert_int_equal(k->index, index);
    assert_null(k->tenant);
    assert_string_equal(k->entity_type, "account");
    assert_string_equal(k->entity_id, id);
    assert_int_equal(k->entity_id_len, strlen(id));
    assert_string_equal(k->subject, subject);
    assert_int_equal(k->expected_seq, expected);
    assert_int_equal(k->actual_seq, actual);
}

/* The batch of three entities, two of them wrongly expected. */
static void wrong_batch(es_event_spec b[4])
{
    b[0] = expecting("a1", ES_EXPECT_SEQ, 1); /* right */
    b[1] = expecting("a2", ES_EXPECT_SEQ, 2); /* wrong: a2 is at 3 */
    b[2] = expecting("a3", ES_EXPECT_NEW, 0); /* wrong: a3 is at 4 */
    b[3] = conf_spec("ledger", "main", "posted", "y");
}

static void a_conflicting_batch_names_every_failing_entity(void **state)
{
    conf_ctx *c = *state;
    three_accounts(c->st);
    es_event_spec b[4];
    wrong_batch(b);
    es_append_result r;
    assert_int_equal(es_append_batch(c->st, b, 4, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.err_code, 10071);
    assert_int_equal(r.conflict_count, 2);
    assert_non_null(r.conflicts);
    assert_conflict(c, &r.conflicts[0], 1, "a2", 2, 3);
    assert_conflict(c, &r.conflicts[1], 2, "a3", 0, 4);
    assert_non_null(
        strstr(r.error, "account/a2 expected 2, found 3; account/a3 expected 0, found 4"));
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 4);

    /* A single event's conflict is the server's own answer. */
    es_event_spec one = expecting("a2", ES_EXPECT_SEQ, 1);
    assert_int_equal(es_append(c->st, &one, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.conflict_count, 1);
    assert_conflict(c, &r.conflicts[0], 0, "a2", 1, 3);
    assert_int_equal(r.actual_seq, 3);

    /* Success clears them. */
    one.expect_seq = 3;
    assert_int_equal(es_append(c->st, &one, &r), ES_OK);
    assert_int_equal(r.conflict_count, 0);
    assert_null(r.conflicts);
}

typedef struct seen_conflicts {
    es_status status;
    size_t count;
    es_append_conflict items[4];
    char ids[4][8];
} seen_conflicts;

static void keep_conflicts(es_status s, const es_append_result *r, void *closure)
{
    seen_conflicts *seen = closure;
    seen->status = s;
    seen->count = r->conflict_count;
    for (size_t i = 0; i < r->conflict_count && i < 4; i++) {
        seen->items[i] = r->conflicts[i]; /* valid during the call: copy what is read later */
        snprintf(seen->ids[i], sizeof seen->ids[i], "%s", r->conflicts[i].entity_id);
    }
}

static void an_asynchronous_batch_names_them_in_its_callback(void **state)
{
    conf_ctx *c = *state;
    three_accounts(c->st);
    es_event_spec b[4];
    wrong_batch(b);
    seen_conflicts seen = {.status = ES_OK};
    assert_int_equal(es_append_batch_async(c->st, b, 4, keep_conflicts, &seen), ES_OK);
    assert_int_equal(es_append_flush(c->st, 10000), ES_OK);
    assert_int_equal(seen.status, ES_ERR_CONFLICT);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.ids[0], "a2");
    assert_int_equal(seen.items[0].expected_seq, 2);
    assert_int_equal(seen.items[0].actual_seq, 3);
    assert_string_equal(seen.ids[1], "a3");
    assert_int_equal(seen.items[1].expected_seq, 0);
    assert_int_equal(seen.items[1].actual_seq, 4);
}

/* ---- expectations on a filter: wider (or narrower) than one entity ------ */

static es_event_spec order(const char *id, const char *event, const es_filter *f, es_expect x,
                           uint64_t seq)
{
    es_event_spec e = conf_spec("order", id, event, "o");
    e.expect_filter = f;
    e.expect = x;
    e.expect_seq = seq;
    return e;
}

static const char *raw_header(natsMsg *m, const char *k)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, k, &v) == NATS_OK ? v : NULL;
}

static void an_expectation_can_be_about_every_entity_of_a_type(void **state)
{
    conf_ctx *c = *state;
    es_filter orders;
    es_filter_init(&orders);
    orders.entity_type = "order";
    es_append_result r;
    es_event_spec e = order("o1", "placed", &orders, ES_EXPECT_NEW, 0); /* no order yet */
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_int_equal(r.last_seq, 1);
    natsMsg *m = conf_raw_get(c->nc, es_store_stream(c->st), 1);
    char subject[128];
    snprintf(subject, sizeof subject, "$ES.%s.order.>", c->name); /* Rita's "order.*.*" */
    assert_string_equal(raw_header(m, "Nats-Expected-Last-Subject-Sequence-Subject"), subject);
    assert_string_equal(raw_header(m, "Nats-Expected-Last-Subject-Sequence"), "0");
    natsMsg_Destroy(m);

    e = order("o2", "placed", &orders, ES_EXPECT_NEW, 0); /* another entity, same type */
    assert_int_equal(es_append(c->st, &e, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 1);
    assert_int_equal(r.conflict_count, 1);
    assert_string_equal(r.conflicts[0].subject, subject);
    assert_string_equal(r.conflicts[0].entity_id, "o2");

    es_event_spec other = conf_spec("customer", "c1", "joined", "c"); /* outside the filter */
    assert_int_equal(es_append(c->st, &other, &r), ES_OK);
    e = order("o2", "placed", &orders, ES_EXPECT_SEQ, 1);
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_int_equal(r.last_seq, 3);

    /* Narrower: one event type of every entity. */
    es_filter shipped;
    es_filter_init(&shipped);
    shipped.event_type = "shipped";
    e = order("o1", "shipped", &shipped, ES_EXPECT_NEW, 0);
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    e = order("o2", "shipped", &shipped, ES_EXPECT_SEQ, 3); /* wrong: the last shipped is 4 */
    assert_int_equal(es_append(c->st, &e, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 4);

    /* A filter needs an expectation, and must make a subject. */
    e = order("o3", "placed", &orders, ES_EXPECT_ANY, 0);
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    es_filter bad;
    es_filter_init(&bad);
    bad.entity_type = "not a name";
    e = order("o3", "placed", &bad, ES_EXPECT_NEW, 0);
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 4);
}

static void a_batch_checks_filters_against_the_store_before_it(void **state)
{
    conf_ctx *c = *state;
    es_filter orders;
    es_filter_init(&orders);
    orders.entity_type = "order";
    es_event_spec first = order("o1", "placed", &orders, ES_EXPECT_NEW, 0);
    assert_int_equal(es_append(c->st, &first, NULL), ES_OK);
    /* Both expect the type at 1: the batch's own first event does not count. */
    es_event_spec b[2] = {order("o2", "placed", &orders, ES_EXPECT_SEQ, 1),
                          order("o3", "placed", &orders, ES_EXPECT_SEQ, 1)};
    es_append_result r;
    assert_int_equal(es_append_batch(c->st, b, 2, &r), ES_OK);
    assert_int_equal(r.last_seq, 3);
    b[0] = order("o4", "placed", &orders, ES_EXPECT_SEQ, 3);
    b[1] = order("o5", "placed", &orders, ES_EXPECT_SEQ, 1); /* stale */
    assert_int_equal(es_append_batch(c->st, b, 2, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.conflict_count, 1);
    assert_int_equal(r.conflicts[0].index, 1);
    assert_int_equal(r.conflicts[0].expected_seq, 1);
    assert_int_equal(r.conflicts[0].actual_seq, 3);
}

static void an_expectation_can_be_about_one_tenant(void **state)
{
    conf_ctx *c = *state;
    es_filter t1;
    es_filter_init(&t1);
    t1.tenant = "t1";
    es_event_spec e = conf_spec("account", "a1", "opened", "1");
    e.tenant = "t1";
    e.expect_filter = &t1;
    e.expect = ES_EXPECT_NEW; /* the tenant's very first event */
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    es_event_spec other = conf_spec("account", "a1", "opened", "2");
    other.tenant = "t2";
    assert_int_equal(es_append(c->st, &other, NULL), ES_OK);
    e.entity_id = "a2";
    es_append_result r;
    assert_int_equal(es_append(c->st, &e, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 1);
    assert_string_equal(r.conflicts[0].tenant, "t1");
    e.expect = ES_EXPECT_SEQ;
    e.expect_seq = 1; /* t2's event at 2 is outside */
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
}

/* A decision may carry an expectation about a filter of its own: es_decide
 * copies it, as it copies the rest of the event. */
static es_status no_reset(void *state)
{
    (void)state;
    return ES_OK;
}

static es_status no_evolve(void *state, const es_event *ev)
{
    (void)state;
    (void)ev;
    return ES_OK;
}

static es_status place_first_order(void *state, es_decision *d)
{
    (void)state;
    char type[16] = "order";
    es_filter orders;
    es_filter_init(&orders);
    orders.entity_type = type;
    es_event_spec e = order("o1", "placed", &orders, ES_EXPECT_NEW, 0); /* no order at all yet */
    es_status s = es_decision_add(d, &e);
    memset(type, 'x', sizeof type - 1); /* gone when es_decide appends */
    return s;
}

static void a_decision_keeps_its_expect_filter(void **state)
{
    conf_ctx *c = *state;
    const es_decider decider = {no_reset, no_evolve, place_first_order};
    es_filter customer;
    es_filter_init(&customer);
    customer.entity_type = "customer";
    customer.entity_id = "c1";
    es_decide_options o;
    es_decide_options_init(&o);
    o.max_attempts = 1;
    es_append_result r;
    assert_int_equal(es_decide(c->st, &customer, &decider, NULL, &o, &r), ES_OK);
    assert_int_equal(es_decide(c->st, &customer, &decider, NULL, &o, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 1);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 1);
}

/* ---- ES_EXPECT_EXISTS ---------------------------------------------------- */

static void exists_needs_an_event_of_the_entity(void **state)
{
    conf_ctx *c = *state;
    es_append_result r;
    es_event_spec e = expecting("a1", ES_EXPECT_EXISTS, 0);
    assert_int_equal(es_append(c->st, &e, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.conflict_count, 1);
    assert_conflict(c, &r.conflicts[0], 0, "a1", 0, 0);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);

    three_accounts(c->st);
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_int_equal(r.last_seq, 5);

    /* In a batch: the one missing is named, nothing is stored. */
    es_event_spec b[3] = {expecting("a2", ES_EXPECT_EXISTS, 0),
                          expecting("a9", ES_EXPECT_EXISTS, 0),
                          expecting("a3", ES_EXPECT_EXISTS, 0)};
    assert_int_equal(es_append_batch(c->st, b, 3, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.conflict_count, 1);
    assert_conflict(c, &r.conflicts[0], 1, "a9", 0, 0);
    b[1] = expecting("a1", ES_EXPECT_EXISTS, 0);
    assert_int_equal(es_append_batch(c->st, b, 3, &r), ES_OK);
    assert_int_equal(r.last_seq, 8);

    /* About a filter: some order exists. */
    es_filter orders;
    es_filter_init(&orders);
    orders.entity_type = "order";
    es_event_spec o = order("o1", "placed", &orders, ES_EXPECT_EXISTS, 0);
    assert_int_equal(es_append(c->st, &o, &r), ES_ERR_CONFLICT);
    o.expect = ES_EXPECT_ANY;
    o.expect_filter = NULL;
    assert_int_equal(es_append(c->st, &o, &r), ES_OK);
    o = order("o2", "placed", &orders, ES_EXPECT_EXISTS, 0);
    assert_int_equal(es_append(c->st, &o, &r), ES_OK);

    /* Asynchronous appends cannot look it up and send again. */
    seen_conflicts seen = {.status = ES_OK};
    assert_int_equal(es_append_batch_async(c->st, &e, 1, keep_conflicts, &seen), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "ES_EXPECT_EXISTS needs a synchronous append"));
}

typedef struct writer {
    es_store *st;
    _Atomic int stop;
    _Atomic long written;
} writer;

static void *keep_writing(void *arg)
{
    writer *w = arg;
    while (!w->stop) {
        es_event_spec e = conf_spec("account", "a1", "ticked", "t");
        if (es_append(w->st, &e, NULL) == ES_OK)
            w->written++;
        conf_sleep_ms(1);
    }
    return NULL;
}

static void exists_is_not_disturbed_by_an_entity_that_moves_on(void **state)
{
    conf_ctx *c = *state;
    three_accounts(c->st);
    writer w = {.st = c->st};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, keep_writing, &w), 0);
    es_event_spec e = expecting("a1", ES_EXPECT_EXISTS, 0);
    int refused = 0;
    for (int i = 0; i < 100; i++) {
        es_status s = es_append(c->st, &e, NULL);
        if (s != ES_OK)
            fprintf(stderr, "refused: %s\n", es_last_error());
        refused += s != ES_OK;
    }
    w.stop = 1;
    pthread_join(t, NULL);
    assert_true(w.written > 0);
    assert_int_equal(refused, 0);
}

int conf_run_expect(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_conflicting_batch_names_every_failing_entity, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(an_asynchronous_batch_names_them_in_its_callback,
                                        conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(an_expectation_can_be_about_every_entity_of_a_type,
                                        conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(a_batch_checks_filters_against_the_store_before_it,
                                        conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(an_expectation_can_be_about_one_tenant, conf_setup_tenancy,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_decision_keeps_its_expect_filter, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(exists_needs_an_event_of_the_entity, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(exists_is_not_disturbed_by_an_entity_that_moves_on,
                                        conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("expect", tests, NULL, NULL);
}
