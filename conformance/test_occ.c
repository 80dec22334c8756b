/* Optimistic concurrency per entity. */
#include <string.h>

#include "harness.h"

static void expect_new_then_exact_then_conflict(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("account", "a1", "opened", "1");
    e.expect = ES_EXPECT_NEW;
    es_append_result r;
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_int_equal(r.last_seq, 1);
    assert_int_equal(es_append(c->st, &e, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 1);
    assert_int_equal(es_last_error_code(), 10071);
    assert_non_null(strstr(es_last_error(), "wrong last sequence"));
    assert_int_equal(r.err_code, 10071); /* the result says it too */
    assert_string_equal(r.error, es_last_error());

    e.event_type = "deposited";
    e.expect = ES_EXPECT_SEQ;
    e.expect_seq = 1;
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_int_equal(r.last_seq, 2);
    assert_int_equal(r.err_code, 0);
    assert_string_equal(r.error, "");
    assert_int_equal(es_append(c->st, &e, &r), ES_ERR_CONFLICT); /* stale: it is at 2 now */
    assert_int_equal(r.actual_seq, 2);
    e.expect_seq = 7;
    assert_int_equal(es_append(c->st, &e, &r), ES_ERR_CONFLICT); /* from the future */
    assert_int_equal(r.actual_seq, 2);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 2);
}

/* The expectation covers every event type of the entity, and only it. */
static void the_entity_is_the_unit(void **state)
{
    conf_ctx *c = *state;
    es_event_spec opened = conf_spec("account", "a1", "opened", "1");
    es_event_spec other = conf_spec("account", "a2", "opened", "x");
    es_event_spec other_type = conf_spec("customer", "a1", "opened", "x");
    assert_int_equal(es_append(c->st, &opened, NULL), ES_OK); /* 1 */
    assert_int_equal(es_append(c->st, &other, NULL), ES_OK);  /* 2 */
    es_event_spec dep = conf_spec("account", "a1", "deposited", "5");
    assert_int_equal(es_append(c->st, &dep, NULL), ES_OK);        /* 3 */
    assert_int_equal(es_append(c->st, &other_type, NULL), ES_OK); /* 4 */
    es_event_spec w = conf_spec("account", "a1", "withdrawn", "2");
    w.expect = ES_EXPECT_SEQ;
    w.expect_seq = 1; /* the entity moved on through another event type */
    es_append_result r;
    assert_int_equal(es_append(c->st, &w, &r), ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 3);
    w.expect_seq = 3; /* a2 and customer.a1 at 2 and 4 do not count */
    assert_int_equal(es_append(c->st, &w, &r), ES_OK);
    assert_int_equal(r.last_seq, 5);
    /* A prefix of an id is another entity. */
    es_event_spec prefix = conf_spec("account", "a", "opened", "x");
    prefix.expect = ES_EXPECT_NEW;
    assert_int_equal(es_append(c->st, &prefix, NULL), ES_OK);
}

static void batch_expectations_use_the_state_before_the_batch(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("account", "a1", "opened", "1");
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    es_event_spec b[2] = {conf_spec("account", "a1", "deposited", "1"),
                          conf_spec("account", "a2", "opened", "1")};
    b[0].expect = ES_EXPECT_SEQ;
    b[0].expect_seq = 1;
    b[1].expect = ES_EXPECT_NEW;
    es_append_result r;
    assert_int_equal(es_append_batch(c->st, b, 2, &r), ES_OK);
    assert_int_equal(r.last_seq, 3);
    assert_int_equal(es_append_batch(c->st, b, 2, &r), ES_ERR_CONFLICT);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 3);
}

int conf_run_occ(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(expect_new_then_exact_then_conflict, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(the_entity_is_the_unit, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(batch_expectations_use_the_state_before_the_batch,
                                        conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("occ", tests, NULL, NULL);
}
