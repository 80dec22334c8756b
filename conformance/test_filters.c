/* Reads and watches over several filters: the union of what each matches,
 * in stream order, each event once (overlapping filters too), and a list
 * with a bad filter refused before anything is read. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static es_filter filter(const char *type, const char *id, const char *event)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = type;
    f.entity_id = id;
    f.event_type = event;
    return f;
}

static bool field_is(const char *want, const char *have, size_t have_len)
{
    return want == NULL || (strlen(want) == have_len && memcmp(want, have, have_len) == 0);
}

/* Does the payload "<type>/<id>/<event>/<round>" match f? */
static bool matches(const es_filter *f, const char *data)
{
    const char *id = strchr(data, '/') + 1, *event = strchr(id, '/') + 1;
    const char *end = strchr(event, '/');
    return field_is(f->entity_type, data, (size_t)(id - 1 - data)) &&
           field_is(f->entity_id, id, (size_t)(event - 1 - id)) &&
           field_is(f->event_type, event, (size_t)(end - event));
}

/* What the filters must read, from a read of everything: each event that
 * any filter matches, once, in stream order. */
static conf_seen expected(es_store *st, const es_filter *filters, size_t n)
{
    conf_seen all = {0}, want = {0};
    assert_int_equal(es_evolve(st, NULL, NULL, conf_collect, &all, NULL), ES_OK);
    for (size_t i = 0; i < all.count; i++)
        for (size_t k = 0; k < n; k++)
            if (matches(&filters[k], all.data[i])) {
                if (want.count == want.cap) {
                    want.cap = want.cap ? want.cap * 2 : 64;
                    want.seqs = realloc(want.seqs, want.cap * sizeof *want.seqs);
                    want.data = realloc(want.data, want.cap * sizeof *want.data);
                    want.ids = realloc(want.ids, want.cap * sizeof *want.ids);
                    want.events = realloc(want.events, want.cap * sizeof *want.events);
                }
                want.seqs[want.count] = all.seqs[i];
                want.data[want.count] = strdup(all.data[i]);
                want.ids[want.count] = strdup(all.ids[i]);
                want.events[want.count] = strdup(all.events[i]);
                want.count++;
                break;
            }
    conf_seen_free(&all);
    return want;
}

static void assert_same(const conf_seen *got, const conf_seen *want)
{
    assert_int_equal(got->count, want->count);
    for (size_t i = 0; i < want->count; i++) {
        assert_int_equal(got->seqs[i], want->seqs[i]);
        assert_string_equal(got->data[i], want->data[i]);
    }
}

/* es_evolve_filters reads exactly `want`, and so does es_load_filters when
 * every filter names an entity. */
static void check_reads(es_store *st, const es_filter *filters, size_t n, size_t want_count)
{
    conf_seen want = expected(st, filters, n), got = {0};
    assert_int_equal(want.count, want_count);
    uint64_t last = 0;
    assert_int_equal(es_evolve_filters(st, filters, n, NULL, conf_collect, &got, &last), ES_OK);
    assert_same(&got, &want);
    assert_int_equal(last, want.count ? want.seqs[want.count - 1] : 0);
    conf_seen_free(&got);
    bool entities = true;
    for (size_t k = 0; k < n; k++)
        entities = entities && filters[k].entity_type && filters[k].entity_id;
    if (entities) {
        memset(&got, 0, sizeof got);
        assert_int_equal(es_load_filters(st, filters, n, NULL, conf_collect, &got, &last), ES_OK);
        assert_same(&got, &want);
        assert_int_equal(last, want.count ? want.seqs[want.count - 1] : 0);
        conf_seen_free(&got);
    }
    conf_seen_free(&want);
}

static void two_disjoint_filters(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    es_filter two[] = {filter("account", "x", NULL), filter("customer", "y.z", NULL)};
    check_reads(c->st, two, 2, 8);
    es_filter kinds[] = {filter("account", NULL, "opened"), filter(NULL, "w w", "changed")};
    check_reads(c->st, kinds, 2, 6 + 4);
    /* Bounds apply to the union: after the first 12 events, up to the 20th. */
    conf_seen got = {0};
    es_read_options o = {.after_seq = 12, .up_to_seq = 20};
    assert_int_equal(es_evolve_filters(c->st, two, 2, &o, conf_collect, &got, NULL), ES_OK);
    for (size_t i = 0; i < got.count; i++)
        assert_true(got.seqs[i] > 12 && got.seqs[i] <= 20);
    assert_int_equal(got.count, 2); /* round 1's account/x (13, 14); customer/y.z is 21, 22 */
    conf_seen_free(&got);
}

static void overlapping_filters_read_each_event_once(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    /* One within another (and a duplicate): JetStream refuses such a list,
     * so the library drops what a wider filter covers. */
    es_filter nested[] = {filter("account", "x", NULL), filter("account", NULL, NULL),
                          filter("account", "x", "opened"), filter("account", "x", NULL)};
    check_reads(c->st, nested, 4, 12);
    es_filter same[] = {filter("customer", "w w", NULL), filter("customer", "w w", NULL)};
    check_reads(c->st, same, 2, 4);
    /* Overlapping without either holding the other: account/x/opened is in
     * both, and comes once. */
    es_filter crossed[] = {filter("account", NULL, "opened"), filter(NULL, "x", NULL)};
    check_reads(c->st, crossed, 2, 6 + 8 - 2);
    /* Every event, and a narrower filter besides: still each once. */
    es_filter all[] = {filter(NULL, NULL, NULL), filter("customer", "x", "opened")};
    check_reads(c->st, all, 2, 24);
}

static void an_invalid_filter_refuses_the_list(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    conf_seen got = {0};
    es_filter bad[] = {filter("account", "x", NULL), filter("a.b", NULL, NULL)};
    assert_int_equal(es_evolve_filters(c->st, bad, 2, NULL, conf_collect, &got, NULL),
                     ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "filter 1"));
    bad[1] = filter("account", "x", "*");
    assert_int_equal(es_load_filters(c->st, bad, 2, NULL, conf_collect, &got, NULL),
                     ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "filter 1"));
    es_filter no_id[] = {filter("account", "x", NULL), filter("account", NULL, NULL)};
    assert_int_equal(es_load_filters(c->st, no_id, 2, NULL, conf_collect, &got, NULL),
                     ES_ERR_INVALID);
    es_filter many[ES_FILTERS_MAX + 1];
    for (size_t i = 0; i <= ES_FILTERS_MAX; i++)
        many[i] = filter("account", NULL, NULL);
    assert_int_equal(es_evolve_filters(c->st, many, ES_FILTERS_MAX + 1, NULL, conf_collect, &got,
                                       NULL),
                     ES_ERR_INVALID);
    assert_int_equal(es_evolve_filters(c->st, NULL, 2, NULL, conf_collect, &got, NULL),
                     ES_ERR_INVALID);
    assert_int_equal(got.count, 0); /* nothing was read by any of them */
    /* ES_FILTERS_MAX is accepted. */
    assert_int_equal(es_evolve_filters(c->st, many, ES_FILTERS_MAX, NULL, conf_collect, &got,
                                       NULL),
                     ES_OK);
    assert_int_equal(got.count, 12);
    conf_seen_free(&got);
}

/* ---- watching -------------------------------------------------------------- */

static void watch_reads_several_filters(void **state)
{
    conf_ctx *c = *state;
    conf_fill_grid(c->st);
    conf_locked_seen w = {.seen = {0}};
    pthread_mutex_init(&w.mu, NULL);
    es_filter crossed[] = {filter("account", NULL, "opened"), filter(NULL, "x", NULL)};
    es_watch_options o;
    es_watch_options_init(&o);
    o.filters = crossed;
    o.filter_count = 2;
    o.on_event = conf_collect_locked;
    o.closure = &w;
    o.heartbeat_ms = 500;
    es_watch *wt = NULL;
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_OK);
    assert_int_equal(conf_locked_count(&w), 12); /* history, each once */
    /* Live: one event for each filter, one for both, one for neither. */
    const char *live[][3] = {{"account", "y.z", "opened"},
                             {"customer", "x", "changed"},
                             {"account", "x", "opened"},
                             {"customer", "y.z", "opened"}};
    for (int i = 0; i < 4; i++) {
        char data[64];
        snprintf(data, sizeof data, "%s/%s/%s/live", live[i][0], live[i][1], live[i][2]);
        es_event_spec e = conf_spec(live[i][0], live[i][1], live[i][2], data);
        assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    }
    for (int t = 0; t < 250 && conf_locked_count(&w) < 15; t++)
        conf_sleep_ms(20);
    conf_sleep_ms(300); /* room for a wrong fourth to arrive */
    es_watch_destroy(wt);
    conf_seen want = expected(c->st, crossed, 2);
    assert_int_equal(want.count, 15);
    assert_same(&w.seen, &want);
    conf_seen_free(&want);
    conf_seen_free(&w.seen);
    pthread_mutex_destroy(&w.mu);
    /* filter and filters at once, or a bad filter: refused. */
    o.filter = filter("account", NULL, NULL);
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_ERR_INVALID);
    assert_null(wt);
    es_filter_init(&o.filter);
    crossed[1] = filter("no.such", NULL, NULL);
    assert_int_equal(es_watch_start(c->st, &o, &wt), ES_ERR_INVALID);
}

/* A projection's filters come down to a set as a read's do: one within
 * another, which the server refuses, is dropped. */
static void projections_take_nested_filters(void **state)
{
    conf_ctx *c = *state;
    es_filter nested[] = {filter("account", NULL, NULL), filter("account", "x", NULL)};
    es_projection_config cfg;
    es_projection_config_init(&cfg);
    cfg.filters = nested;
    cfg.filter_count = 2;
    assert_int_equal(es_projection_create(c->st, "nested", &cfg), ES_OK);
    assert_int_equal(es_projection_create(c->st, "nested", &cfg), ES_OK); /* the same again */
    es_projection_info info;
    assert_int_equal(es_projection_info_get(c->st, "nested", &info), ES_OK);
    assert_int_equal(info.filter_count, 1);
    assert_int_equal(es_projection_delete(c->st, "nested"), ES_OK);
}

int conf_run_filters(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(two_disjoint_filters, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(overlapping_filters_read_each_event_once, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(an_invalid_filter_refuses_the_list, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(watch_reads_several_filters, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(projections_take_nested_filters, conf_setup,
                                        conf_teardown),
    };
    return cmocka_run_group_tests_name("filters", tests, NULL, NULL);
}
