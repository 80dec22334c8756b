/* Expectations beyond one entity's sequence: a conflicting batch names every
 * expectation that fails, with expected and actual sequences. */
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
    es_event_spec e[4] = {conf_spec("account", "a1", "opened", "1"),
                          conf_spec("account", "a2", "opened", "2"),
                          conf_spec("account", "a2", "deposited", "3"),
                          conf_spec("account", "a3", "opened", "4")};
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
    assert_non_null(strstr(r.error, "account/a2 expected 2, found 3; account/a3 expected 0, found 4"));
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

int conf_run_expect(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_conflicting_batch_names_every_failing_entity, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(an_asynchronous_batch_names_them_in_its_callback,
                                        conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("expect", tests, NULL, NULL);
}
