/* es_reader against a live server (NATS_URL; skipped without it): a reader
 * hands every matching event once, in stream order, never more than asked
 * per call, stops at up_to_seq and then reports the bound as its position;
 * two filters are merged in stream order; a refused event comes first
 * again; a widening hands the new filter's earlier events late, once, then
 * goes on in order; the same holds through the confined (consumer) path. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <es/es.h>

#include "nats_fixture.h"

#define MAX_SEEN 512

typedef fixture_live live;

typedef struct seen {
    uint64_t seq[MAX_SEEN];
    char type[MAX_SEEN][16];
    size_t n;
    uint64_t refuse_seq; /* 0: accept everything */
} seen;

/* Appends `n` events alternating between types "a" and "b" (and every
 * fifth of type "c"); returns the last sequence. */
static uint64_t fill(es_store *st, int n)
{
    uint64_t seq = 0;
    for (int i = 0; i < n; i++) {
        es_event_spec e;
        es_event_spec_init(&e);
        e.entity_type = i % 5 == 4 ? "c" : i % 2 ? "b" : "a";
        e.entity_id = "x";
        e.event_type = "happened";
        es_append_result res;
        assert_int_equal(es_append(st, &e, &res), ES_OK);
        seq = res.last_seq;
    }
    return seq;
}

static es_status keep(const es_event *ev, void *closure)
{
    seen *s = closure;
    if (s->refuse_seq == es_event_seq(ev)) {
        s->refuse_seq = 0; /* once */
        return ES_ERR_STOPPED;
    }
    assert_true(s->n < MAX_SEEN);
    s->seq[s->n] = es_event_seq(ev);
    snprintf(s->type[s->n++], sizeof s->type[0], "%s", es_event_entity_type(ev));
    return ES_OK;
}

/* Calls next with `max` until the reader reaches `up_to`, asserting each
 * call handed at most `max`. */
static void read_all(es_reader *r, uint64_t up_to, size_t max, seen *s)
{
    for (int calls = 0; es_reader_position(r) < up_to; calls++) {
        assert_true(calls < 1000);
        size_t count = 0;
        es_status st = es_reader_next(r, up_to, max, keep, s, &count);
        assert_true(st == ES_OK || st == ES_ERR_STOPPED);
        assert_true(count <= max);
    }
}

static void assert_in_order(const seen *s)
{
    for (size_t i = 1; i < s->n; i++)
        assert_true(s->seq[i] > s->seq[i - 1]);
}

static size_t count_type(const seen *s, const char *type)
{
    size_t c = 0;
    for (size_t i = 0; i < s->n; i++)
        c += strcmp(s->type[i], type) == 0;
    return c;
}

static void every_event_once_in_batches(es_store *st)
{
    uint64_t last = fill(st, 100);
    es_reader_options o;
    es_reader_options_init(&o);
    o.after_seq = 10;
    es_reader *r = NULL;
    assert_int_equal(es_reader_open(st, &o, &r), ES_OK);
    seen *s = calloc(1, sizeof *s);
    s->refuse_seq = 37; /* refused once: handed again first */
    read_all(r, last - 5, 7, s);
    assert_int_equal(es_reader_position(r), last - 5);
    assert_int_equal(s->n, 85); /* (10, last-5] */
    assert_int_equal(s->seq[0], 11);
    assert_int_equal(s->seq[84], last - 5);
    assert_in_order(s);
    /* nothing more below the bound: the call hands nothing */
    size_t count = 1;
    assert_int_equal(es_reader_next(r, last - 5, 7, keep, s, &count), ES_OK);
    assert_int_equal(count, 0);
    /* no bound: the rest */
    assert_int_equal(es_reader_next(r, 0, 7, keep, s, &count), ES_OK);
    assert_int_equal(count, 5);
    assert_int_equal(s->seq[s->n - 1], last);
    assert_int_equal(es_reader_next(r, 7, 1, keep, s, &count) == ES_OK ? count : 99, 0);
    es_reader_destroy(r);
    free(s);
}

static void two_filters_merged_and_widened(es_store *st)
{
    uint64_t last = fill(st, 100); /* 40 a, 40 b, 20 c */
    es_filter f[2];
    es_filter_init(&f[0]);
    f[0].entity_type = "a";
    es_filter_init(&f[1]);
    f[1].entity_type = "b";
    es_reader_options o;
    es_reader_options_init(&o);
    o.filters = f;
    o.filter_count = 2;
    es_reader *r = NULL;
    assert_int_equal(es_reader_open(st, &o, &r), ES_OK);
    seen *s = calloc(1, sizeof *s);
    read_all(r, 50, 4, s); /* a and b in (0, 50]: 40 of them */
    assert_int_equal(s->n, 40);
    assert_in_order(s);
    /* c from the start: its 10 events up to 50 come late, then the rest in order */
    es_filter c;
    es_filter_init(&c);
    c.entity_type = "c";
    assert_int_equal(es_reader_add_filters(r, &c, 1, 0), ES_OK);
    read_all(r, last, 4, s);
    assert_int_equal(s->n, 100);
    assert_int_equal(count_type(s, "a"), 40);
    assert_int_equal(count_type(s, "b"), 40);
    assert_int_equal(count_type(s, "c"), 20);
    for (size_t i = 0; i < 10; i++) /* the late ones, in order among themselves */
        assert_string_equal(s->type[40 + i], "c");
    for (size_t i = 50; i < 100; i++) /* then every event after 50 in stream order */
        assert_int_equal(s->seq[i], 51 + (i - 50));
    es_reader_destroy(r);
    free(s);
}

static void reader_reads_in_batches(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    every_event_once_in_batches(l->st);
}

static void reader_merges_and_widens(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    two_filters_merged_and_widened(l->st);
}

/* The same store opened as a confined user reads it: by a consumer per batch. */
static es_store *confined_store(live *l)
{
    es_store_options so;
    es_store_options_init(&so);
    so.confined = true;
    es_store *st = NULL;
    assert_int_equal(es_store_open(l->nc, l->name, &so, &st), ES_OK);
    return st;
}

static void confined_reader_reads_in_batches(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    es_store *st = confined_store(l);
    every_event_once_in_batches(st);
    es_store_destroy(st);
}

static void confined_reader_merges_and_widens(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    es_store *st = confined_store(l);
    two_filters_merged_and_widened(st);
    es_store_destroy(st);
}

static void reader_refuses_bad_calls(void **state)
{
    live *l = *state;
    REQUIRE_NATS(l->nc);
    es_reader_options o;
    es_reader_options_init(&o);
    es_reader *r = NULL;
    assert_int_equal(es_reader_open(l->st, &o, &r), ES_OK);
    assert_int_equal(es_reader_next(r, 0, 0, keep, NULL, NULL), ES_ERR_INVALID);
    assert_int_equal(es_reader_next(r, 0, ES_READER_BATCH_MAX + 1, keep, NULL, NULL),
                     ES_ERR_INVALID);
    es_filter f[ES_FILTERS_MAX + 1];
    char types[ES_FILTERS_MAX + 1][8];
    for (int i = 0; i <= ES_FILTERS_MAX; i++) {
        es_filter_init(&f[i]);
        snprintf(types[i], sizeof types[i], "t%d", i);
        f[i].entity_type = types[i];
    }
    es_reader_destroy(r);
    o.filters = f;
    o.filter_count = 1;
    assert_int_equal(es_reader_open(l->st, &o, &r), ES_OK);
    assert_int_equal(es_reader_add_filters(r, f + 1, ES_FILTERS_MAX, 0), ES_ERR_LIMIT);
    es_reader_destroy(r);
    es_reader_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_LIVE_TEST(reader_reads_in_batches),
        FIXTURE_LIVE_TEST(reader_merges_and_widens),
        FIXTURE_LIVE_TEST(confined_reader_reads_in_batches),
        FIXTURE_LIVE_TEST(confined_reader_merges_and_widens),
        FIXTURE_LIVE_TEST(reader_refuses_bad_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
