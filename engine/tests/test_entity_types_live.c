/* The entity-type index and widening watches against a live server
 * (NATS_URL; skipped without it): the index lists exactly the types added,
 * once each, and a rebuild finds exactly the types a store written without
 * it holds; its watch reports the present types, then a new one; a watch
 * widened mid-way by es_watch_add_filters delivers every event of the new
 * filter once (those behind it late, the rest in order) and nothing of
 * another type; a widening past ES_FILTERS_MAX is refused. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include <cmocka.h>

#include <es/es.h>

#include "nats_fixture.h"

#define MAX_SEEN 256

typedef fixture_live live;

static void append(es_store *st, const char *type, const char *id, const char *event)
{
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = type;
    e.entity_id = id;
    e.event_type = event;
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
}

/* ---- a set of type names, for listings and watches ----------------------- */

typedef struct names {
    pthread_mutex_t mu;
    char seen[MAX_SEEN][64];
    size_t n;
} names;

static void names_add(names *s, const char *type)
{
    pthread_mutex_lock(&s->mu);
    if (s->n < MAX_SEEN)
        snprintf(s->seen[s->n++], sizeof s->seen[0], "%s", type);
    pthread_mutex_unlock(&s->mu);
}

static size_t names_count(names *s, const char *type)
{
    size_t c = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        c += strcmp(s->seen[i], type) == 0;
    pthread_mutex_unlock(&s->mu);
    return c;
}

static es_status on_listed(const char *tenant, const char *type, void *closure)
{
    assert_null(tenant);
    names_add(closure, type);
    return ES_OK;
}

static void on_watched(const char *tenant, const char *type, void *closure)
{
    assert_null(tenant);
    names_add(closure, type);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void index_lists_each_added_type_once(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    es_entity_types *t;
    assert_int_equal(es_entity_types_open(l->st, &t), ES_OK);
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_feed_post"), ES_OK);
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_feed_post"), ES_OK);
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_graph_follow"), ES_OK);
    assert_int_equal(es_entity_types_add(t, NULL, "a.b"), ES_ERR_INVALID);
    assert_int_equal(es_entity_types_add(t, "acme", "x"), ES_ERR_INVALID); /* no tenancy */

    es_entity_types *other; /* another writer: the bucket has it, nothing is written twice */
    assert_int_equal(es_entity_types_open(l->st, &other), ES_OK);
    assert_int_equal(es_entity_types_add(other, NULL, "app_bsky_feed_post"), ES_OK);

    names listed = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(es_entity_types_list(t, on_listed, &listed), ES_OK);
    assert_int_equal(listed.n, 2);
    assert_int_equal(names_count(&listed, "app_bsky_feed_post"), 1);
    assert_int_equal(names_count(&listed, "app_bsky_graph_follow"), 1);

    names watched = {.mu = PTHREAD_MUTEX_INITIALIZER};
    es_entity_types_watch *w;
    assert_int_equal(es_entity_types_watch_start(t, on_watched, &watched, &w), ES_OK);
    assert_int_equal(watched.n, 2); /* the present ones, before start returns */
    assert_int_equal(es_entity_types_add(other, NULL, "app_bsky_feed_like"), ES_OK);
    for (int i = 0; i < 100 && names_count(&watched, "app_bsky_feed_like") == 0; i++)
        sleep_ms(20);
    assert_int_equal(names_count(&watched, "app_bsky_feed_like"), 1);
    es_entity_types_watch_destroy(w);
    es_entity_types_destroy(other);
    es_entity_types_destroy(t);
}

static void rebuild_finds_exactly_the_stored_types(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    append(l->st, "order", "o-1", "placed");
    append(l->st, "order", "o-2", "placed");
    append(l->st, "order", "o-1", "shipped");
    append(l->st, "customer", "c-1", "joined");
    append(l->st, "stock", "s-1", "counted");
    es_entity_types *t;
    assert_int_equal(es_entity_types_open(l->st, &t), ES_OK);
    assert_int_equal(es_entity_types_add(t, NULL, "stock"), ES_OK); /* one already indexed */
    uint64_t added = 99;
    assert_int_equal(es_entity_types_rebuild(t, &added), ES_OK);
    assert_int_equal(added, 2);
    names listed = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(es_entity_types_list(t, on_listed, &listed), ES_OK);
    assert_int_equal(listed.n, 3);
    assert_int_equal(names_count(&listed, "order"), 1);
    assert_int_equal(names_count(&listed, "customer"), 1);
    assert_int_equal(names_count(&listed, "stock"), 1);
    assert_int_equal(es_entity_types_rebuild(t, &added), ES_OK); /* again: nothing missing */
    assert_int_equal(added, 0);
    es_entity_types_destroy(t);
}

/* ---- widening ------------------------------------------------------------- */

typedef struct delivered {
    pthread_mutex_t mu;
    uint64_t seqs[MAX_SEEN];
    char types[MAX_SEEN][16];
    size_t n;
} delivered;

static es_status on_event(const es_event *ev, void *closure)
{
    delivered *d = closure;
    pthread_mutex_lock(&d->mu);
    if (d->n < MAX_SEEN) {
        d->seqs[d->n] = es_event_seq(ev);
        snprintf(d->types[d->n], sizeof d->types[0], "%s", es_event_entity_type(ev));
        d->n++;
    }
    pthread_mutex_unlock(&d->mu);
    return ES_OK;
}

static size_t delivered_count(delivered *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->n;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static void wait_delivered(delivered *d, size_t n)
{
    for (int i = 0; i < 250 && delivered_count(d) < n; i++)
        sleep_ms(20);
    assert_int_equal(delivered_count(d), n);
}

static void a_widened_watch_has_no_gap_and_no_repeat(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    /* seq 1..6: a b a c b a */
    append(l->st, "a", "1", "e");
    append(l->st, "b", "1", "e");
    append(l->st, "a", "2", "e");
    append(l->st, "c", "1", "e");
    append(l->st, "b", "2", "e");
    append(l->st, "a", "3", "e");
    delivered d = {.mu = PTHREAD_MUTEX_INITIALIZER};
    es_watch_options wo;
    es_watch_options_init(&wo);
    wo.filter.entity_type = "a";
    wo.on_event = on_event;
    wo.closure = &d;
    es_watch *w;
    assert_int_equal(es_watch_start(l->st, &wo, &w), ES_OK);
    assert_int_equal(delivered_count(&d), 3); /* 1, 3, 6 */

    es_filter b = {.entity_type = "b"};
    assert_int_equal(es_watch_add_filters(w, &b, 1, 0), ES_OK); /* b from the start */
    wait_delivered(&d, 5);                                       /* 2, 5 late */
    append(l->st, "b", "3", "e"); /* 7 */
    append(l->st, "c", "2", "e"); /* 8: not watched */
    append(l->st, "a", "4", "e"); /* 9 */
    wait_delivered(&d, 7);
    es_filter a_again = {.entity_type = "a"}; /* covered already: costs nothing */
    assert_int_equal(es_watch_add_filters(w, &a_again, 1, 0), ES_OK);
    append(l->st, "a", "5", "e"); /* 10 */
    wait_delivered(&d, 8);
    sleep_ms(300); /* nothing more comes */
    assert_int_equal(delivered_count(&d), 8);
    assert_int_equal(es_watch_last_seq(w), 10);
    es_watch_destroy(w);

    const uint64_t want[] = {1, 3, 6, 2, 5, 7, 9, 10};
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(d.seqs[i], want[i]);
        assert_string_not_equal(d.types[i], "c");
    }
}

static void a_widening_past_the_bound_is_refused(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    es_filter f[ES_FILTERS_MAX];
    char types[ES_FILTERS_MAX + 1][8];
    for (int i = 0; i < ES_FILTERS_MAX; i++) {
        snprintf(types[i], sizeof types[i], "t%d", i);
        f[i] = (es_filter){.entity_type = types[i]};
    }
    delivered d = {.mu = PTHREAD_MUTEX_INITIALIZER};
    es_watch_options wo;
    es_watch_options_init(&wo);
    wo.filters = f;
    wo.filter_count = ES_FILTERS_MAX;
    wo.on_event = on_event;
    wo.closure = &d;
    es_watch *w;
    assert_int_equal(es_watch_start(l->st, &wo, &w), ES_OK);
    snprintf(types[ES_FILTERS_MAX], sizeof types[0], "t%d", ES_FILTERS_MAX);
    es_filter more = {.entity_type = types[ES_FILTERS_MAX]};
    assert_int_equal(es_watch_add_filters(w, &more, 1, 0), ES_ERR_LIMIT);
    es_filter all; /* every event covers every filter: one subject */
    es_filter_init(&all);
    assert_int_equal(es_watch_add_filters(w, &all, 1, 0), ES_OK);
    append(l->st, "zzz", "1", "e");
    wait_delivered(&d, 1);
    es_watch_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_LIVE_TEST(index_lists_each_added_type_once),
        FIXTURE_LIVE_TEST(rebuild_finds_exactly_the_stored_types),
        FIXTURE_LIVE_TEST(a_widened_watch_has_no_gap_and_no_repeat),
        FIXTURE_LIVE_TEST(a_widening_past_the_bound_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
