/* evolve (every filter shape, bounds) and load (equals evolve). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static size_t count(es_store *st, const char *type, const char *id, const char *event,
                    const es_read_options *o, conf_seen *keep)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = type;
    f.entity_id = id;
    f.event_type = event;
    conf_seen seen = {0};
    uint64_t last = 0;
    assert_int_equal(es_evolve(st, &f, o, conf_collect, &seen, &last), ES_OK);
    for (size_t i = 1; i < seen.count; i++)
        assert_true(seen.seqs[i] > seen.seqs[i - 1]);
    assert_int_equal(last, seen.count ? seen.seqs[seen.count - 1] : 0);
    size_t n = seen.count;
    if (keep)
        *keep = seen;
    else
        conf_seen_free(&seen);
    return n;
}

static void every_filter_shape(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    assert_int_equal(count(c->st, NULL, NULL, NULL, NULL, NULL), 24);
    assert_int_equal(count(c->st, "account", NULL, NULL, NULL, NULL), 12);
    assert_int_equal(count(c->st, "account", "y.z", NULL, NULL, NULL), 4);
    assert_int_equal(count(c->st, "account", "y.z", "changed", NULL, NULL), 2);
    assert_int_equal(count(c->st, "account", NULL, "opened", NULL, NULL), 6);
    assert_int_equal(count(c->st, NULL, "w w", NULL, NULL, NULL), 8);
    assert_int_equal(count(c->st, NULL, "w w", "opened", NULL, NULL), 4);
    assert_int_equal(count(c->st, NULL, NULL, "changed", NULL, NULL), 12);
    assert_int_equal(count(c->st, "nobody", NULL, NULL, NULL, NULL), 0);
    assert_int_equal(count(c->st, "account", "y", NULL, NULL, NULL), 0); /* not a prefix match */
    conf_seen seen;
    count(c->st, "customer", "y.z", "opened", NULL, &seen);
    assert_string_equal(seen.data[0], "customer/y.z/opened/0");
    assert_string_equal(seen.data[1], "customer/y.z/opened/1");
    assert_string_equal(seen.ids[0], "y.z");
    conf_seen_free(&seen);
    es_filter bad;
    es_filter_init(&bad);
    bad.entity_type = "a.b";
    assert_int_equal(es_evolve(c->st, &bad, NULL, conf_collect, &seen, NULL), ES_ERR_INVALID);
    bad.entity_type = "*";
    assert_int_equal(es_evolve(c->st, &bad, NULL, conf_collect, &seen, NULL), ES_ERR_INVALID);
}

static void bounds(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    es_read_options o = {.after_seq = 5, .up_to_seq = 0};
    conf_seen seen;
    assert_int_equal(count(c->st, NULL, NULL, NULL, &o, &seen), 19);
    assert_int_equal(seen.seqs[0], 6);
    conf_seen_free(&seen);
    o = (es_read_options){.after_seq = 5, .up_to_seq = 9};
    assert_int_equal(count(c->st, NULL, NULL, NULL, &o, &seen), 4);
    assert_int_equal(seen.seqs[3], 9);
    conf_seen_free(&seen);
    o = (es_read_options){.after_seq = 0, .up_to_seq = 1};
    assert_int_equal(count(c->st, NULL, NULL, NULL, &o, NULL), 1);
    o = (es_read_options){.after_seq = 24, .up_to_seq = 0};
    assert_int_equal(count(c->st, NULL, NULL, NULL, &o, NULL), 0);
    o = (es_read_options){.after_seq = 1000, .up_to_seq = 0};
    assert_int_equal(count(c->st, NULL, NULL, NULL, &o, NULL), 0);
    o = (es_read_options){.after_seq = 0, .up_to_seq = 12}; /* filtered and bounded */
    assert_int_equal(count(c->st, "account", NULL, NULL, &o, NULL), 6);
    o = (es_read_options){.after_seq = 9, .up_to_seq = 9};
    assert_int_equal(es_evolve(c->st, NULL, &o, conf_collect, &seen, NULL), ES_ERR_INVALID);
}

static void an_empty_store_evolves_at_once(void **state)
{
    conf_ctx *c = *state;
    assert_int_equal(count(c->st, NULL, NULL, NULL, NULL, NULL), 0);
}

static es_status stop_at_three(const es_event *ev, void *closure)
{
    (void)closure;
    return es_event_seq(ev) == 3 ? ES_ERR_ABORTED : ES_OK;
}

static void a_callback_can_stop_the_read(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    uint64_t last = 0;
    assert_int_equal(es_evolve(c->st, NULL, NULL, stop_at_three, NULL, &last), ES_ERR_ABORTED);
    assert_int_equal(last, 2);
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    f.entity_id = "x";
    assert_int_equal(es_load(c->st, &f, NULL, stop_at_three, NULL, &last),
                     ES_OK); /* seq 3 is y.z */
}

/* Refuses the event at *closure's sequence: a consumer that stops early. */
static es_status refuse_at(const es_event *ev, void *closure)
{
    return es_event_seq(ev) == *(const uint64_t *)closure ? ES_ERR_ABORTED : ES_OK;
}

/* read.h: *last_seq is the last event the callback accepted, so reading
 * again after it hands the refused event over first and skips nothing. */
static void last_seq_is_the_last_event_accepted(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st); /* account/x is at 1, 2, 13 and 14 */
    uint64_t refuse = 10, last = 99;
    assert_int_equal(es_evolve(c->st, NULL, NULL, refuse_at, &refuse, &last), ES_ERR_ABORTED);
    assert_int_equal(last, 9);
    es_read_options resume = {.after_seq = last, .up_to_seq = 0};
    conf_seen seen = {0};
    assert_int_equal(es_evolve(c->st, NULL, &resume, conf_collect, &seen, &last), ES_OK);
    assert_int_equal(seen.count, 15);
    assert_int_equal(seen.seqs[0], 10); /* the refused event comes first */
    assert_int_equal(last, 24);         /* ran to the end: the last event */
    conf_seen_free(&seen);

    es_filter f;
    es_filter_init(&f);
    f.event_type = "changed"; /* the even sequences */
    assert_int_equal(es_evolve(c->st, &f, NULL, refuse_at, &refuse, &last), ES_ERR_ABORTED);
    assert_int_equal(last, 8); /* the last matching event accepted, not 9 */

    f.event_type = NULL;
    f.entity_type = "account";
    f.entity_id = "x";
    refuse = 13;
    assert_int_equal(es_load(c->st, &f, NULL, refuse_at, &refuse, &last), ES_ERR_ABORTED);
    assert_int_equal(last, 2);
    resume.after_seq = last;
    seen = (conf_seen){0};
    assert_int_equal(es_load(c->st, &f, &resume, conf_collect, &seen, &last), ES_OK);
    assert_int_equal(seen.count, 2);
    assert_int_equal(seen.seqs[0], 13);
    assert_int_equal(last, 14);
    conf_seen_free(&seen);
    refuse = 1; /* refused at once: nothing accepted */
    assert_int_equal(es_load(c->st, &f, NULL, refuse_at, &refuse, &last), ES_ERR_ABORTED);
    assert_int_equal(last, 0);
}

static void compare_load_and_evolve(es_store *st, const char *type, const char *id,
                                    const char *event, const es_read_options *o)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = type;
    f.entity_id = id;
    f.event_type = event;
    conf_seen a = {0}, b = {0};
    uint64_t la = 0, lb = 0;
    assert_int_equal(es_evolve(st, &f, o, conf_collect, &a, &la), ES_OK);
    assert_int_equal(es_load(st, &f, o, conf_collect, &b, &lb), ES_OK);
    assert_int_equal(a.count, b.count);
    assert_int_equal(la, lb);
    for (size_t i = 0; i < a.count; i++) {
        assert_int_equal(a.seqs[i], b.seqs[i]);
        assert_string_equal(a.data[i], b.data[i]);
        assert_string_equal(a.ids[i], b.ids[i]);
        assert_string_equal(a.events[i], b.events[i]);
    }
    conf_seen_free(&a);
    conf_seen_free(&b);
}

static void load_equals_evolve(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    conf_append_many(c->st, "account", "big", "tick", 700); /* several direct-get rounds */
    conf_fill_grid(c->st);
    es_read_options o = {.after_seq = 30, .up_to_seq = 600};
    compare_load_and_evolve(c->st, "account", "x", NULL, NULL);
    compare_load_and_evolve(c->st, "account", "y.z", "opened", NULL);
    compare_load_and_evolve(c->st, "account", "big", NULL, NULL);
    compare_load_and_evolve(c->st, "account", "big", NULL, &o);
    compare_load_and_evolve(c->st, "account", "nobody", NULL, NULL);
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    conf_seen seen = {0};
    assert_int_equal(es_load(c->st, &f, NULL, conf_collect, &seen, NULL), ES_ERR_INVALID);
}

static void replays_100k_events(void **state)
{
    conf_ctx *c = *state;
    conf_append_many(c->st, "sensor", "s1", "reading", 50000);
    conf_append_many(c->st, "sensor", "s2", "reading", 50000);
    conf_seen seen = {0};
    uint64_t last = 0;
    assert_int_equal(es_evolve(c->st, NULL, NULL, conf_collect, &seen, &last), ES_OK);
    assert_int_equal(seen.count, 100000);
    assert_int_equal(last, 100000);
    for (size_t i = 0; i < seen.count; i++)
        assert_int_equal(seen.seqs[i], i + 1);
    assert_string_equal(seen.data[49999], "49999");
    assert_string_equal(seen.ids[50000], "s2");
    conf_seen_free(&seen);
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "sensor";
    f.entity_id = "s2";
    assert_int_equal(es_load(c->st, &f, NULL, conf_collect, &seen, &last), ES_OK);
    assert_int_equal(seen.count, 50000);
    assert_int_equal(seen.seqs[0], 50001);
    conf_seen_free(&seen);
}

/* Messages published under $ES.<store>.> by something else, without the
 * event shape, are skipped by every reader rather than handed out half-parsed. */
static void foreign_messages_are_skipped(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    const char *foreign[] = {"a.b.c.d", "a.b", "only"};
    for (size_t i = 0; i < 3; i++) {
        char subject[128];
        snprintf(subject, sizeof subject, "$ES.%s.%s", c->name, foreign[i]);
        natsMsg *reply = NULL;
        assert_int_equal(natsConnection_RequestString(&reply, c->nc, subject, "x", 5000), NATS_OK);
        natsMsg_Destroy(reply);
    }
    conf_fill_grid(c->st);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 51);
    assert_int_equal(count(c->st, NULL, NULL, NULL, NULL, NULL), 48);
    assert_int_equal(count(c->st, "a", NULL, NULL, NULL, NULL), 0);
    compare_load_and_evolve(c->st, "a", "b", NULL, NULL);
}

/* Last events of a read, into *last (an es_event_cb). */
static es_status note_last(const es_event *ev, void *closure)
{
    *(uint64_t *)closure = es_event_seq(ev);
    return ES_OK;
}

/* A read right after an append returned sees it: on a replicated store
 * too, where the replay's consumer and a direct get may be answered by a
 * replica that has not applied the append yet (the reads then go on to the
 * leader's last event). Each round appends, then loads the entity and
 * replays its type at once. */
static void a_read_sees_the_append_before_it(void **state)
{
    conf_ctx *c = *state;
    es_filter entity, type;
    es_filter_init(&entity);
    entity.entity_type = "note";
    entity.entity_id = "n1";
    es_filter_init(&type);
    type.entity_type = "note";
    for (int round = 0; round < 150; round++) {
        es_event_spec e = conf_spec("note", "n1", "written", "x");
        es_append_result r;
        assert_int_equal(es_append(c->st, &e, &r), ES_OK);
        uint64_t loaded = 0, replayed = 0;
        es_read_options from = {.after_seq = r.last_seq > 1 ? r.last_seq - 1 : 0, .up_to_seq = 0};
        es_status s = es_load(c->st, &entity, &from, note_last, &loaded, NULL);
        if (s != ES_OK)
            fail_msg("round %d: es_load: %s", round, es_last_error());
        if (loaded != r.last_seq)
            fail_msg("round %d: es_load saw %llu, the append was %llu", round,
                     (unsigned long long)loaded, (unsigned long long)r.last_seq);
        s = es_evolve(c->st, &type, &from, note_last, &replayed, NULL);
        if (s != ES_OK)
            fail_msg("round %d: es_evolve: %s", round, es_last_error());
        if (replayed != r.last_seq)
            fail_msg("round %d: es_evolve saw %llu, the append was %llu", round,
                     (unsigned long long)replayed, (unsigned long long)r.last_seq);
    }
}

int conf_run_read(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_filter_shape, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(bounds, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(an_empty_store_evolves_at_once, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(a_callback_can_stop_the_read, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(last_seq_is_the_last_event_accepted, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(load_equals_evolve, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(replays_100k_events, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(foreign_messages_are_skipped, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(a_read_sees_the_append_before_it, conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("read", tests, NULL, NULL);
}
