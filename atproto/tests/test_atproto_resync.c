/* es_atp_resync_apply against a live server (NATS_URL) with the real
 * repository CAR of ../shared (firehose-corpus/repo.car, its records in
 * car_expected_records.tsv): a backfill stores exactly its records; a second
 * run stores nothing; a store that drifted (a record deleted, one changed,
 * one extra) is repaired by exactly three events; an interrupted run resumes
 * without storing anything twice; another writer meanwhile is a conflict,
 * also after the last batch of pipelined publishes (the final count);
 * atomic batches (the option) store the same; a CAR of another DID and bad
 * arguments store nothing. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/atproto.h>
#include <es/atproto_resync.h>
#include <es/car.h>
#include <es/cid.h>
#include <es/es.h>

#include "fixtures.h"
#include "live.h"
#include "record_fold.h"

typedef struct fixture {
    live_store ls;
    corpus_repo r; /* repo.car, its records, DID and rev */
    es_arena *arena;
    es_car car;
} fixture;



static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    if (!corpus_repo_load(&f.r)) {
        *state = NULL;
        return 0;
    }
    int live = live_store_create(&f.ls, "resync");
    assert_int_not_equal(live, -1);
    if (live == 0) {
        printf("SKIP: NATS_URL is not set; the resync tests need a live server\n");
        corpus_repo_free(&f.r);
        *state = NULL;
        return 0;
    }
    assert_int_equal(es_arena_create(0, &f.arena), ES_OK);
    assert_int_equal(es_car_parse(f.r.car, f.r.car_len, NULL, f.arena, &f.car), ES_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f == NULL)
        return 0;
    live_store_destroy(&f->ls);
    es_arena_destroy(f->arena);
    corpus_repo_free(&f->r);
    return 0;
}

/* A fresh store per test: the previous one is deleted. */
static fixture *fresh(void **state)
{
    fixture *f = *state;
    if (f == NULL)
        skip();
    live_store_destroy(&f->ls);
    memset(&f->ls, 0, sizeof f->ls);
    assert_int_equal(live_store_create(&f->ls, "resync"), 1);
    return f;
}

static void stored_set(fixture *f, record_fold *rs)
{
    record_fold_read(f->ls.store, f->r.did, rs);
}

/* The store's set equals the TSV, line for line (any order). */
static void assert_equals_tsv(fixture *f, const record_fold *rs)
{
    record_fold_assert_tsv(rs, (const char *)f->r.tsv);
}

static size_t tsv_lines(const fixture *f)
{
    size_t n = 0;
    for (const char *p = (const char *)f->r.tsv; *p; p++)
        n += *p == '\n';
    return n;
}

static es_status apply(fixture *f, size_t batch_max, es_atp_resync_batch_fn fn, void *closure,
                       es_atp_resync_result *r)
{
    es_atp_resync_options o;
    es_atp_resync_options_init(&o);
    o.did = f->r.did;
    if (batch_max)
        o.batch_max = batch_max;
    o.on_batch = fn;
    o.closure = closure;
    return es_atp_resync_apply(f->ls.store, &f->car, &o, r);
}

static void backfill_stores_exactly_the_records(void **state)
{
    fixture *f = fresh(state);
    es_atp_resync_result r;
    assert_int_equal(apply(f, 0, NULL, NULL, &r), ES_OK);
    size_t n = tsv_lines(f);
    assert_int_equal(r.records, n);
    assert_int_equal(r.created, n);
    assert_int_equal(r.updated + r.deleted + r.unchanged + r.stored_events, 0);
    assert_int_equal(r.batches, 1);
    assert_string_equal(r.rev, f->r.rev);
    static record_fold rs;
    stored_set(f, &rs);
    assert_equals_tsv(f, &rs);
    assert_int_equal(rs.events, n);
    assert_int_equal(rs.not_live, n); /* every resync event says it is not live */
    assert_string_equal(rs.rev, f->r.rev);

    /* the same repository again: nothing to do */
    assert_int_equal(apply(f, 0, NULL, NULL, &r), ES_OK);
    assert_int_equal(r.stored_events, n);
    assert_int_equal(r.unchanged, n);
    assert_int_equal(r.created + r.updated + r.deleted + r.batches, 0);
    stored_set(f, &rs);
    assert_int_equal(rs.events, n);
}

/* An event of the DID's as another writer (or a live commit) would append it. */
static void append_record_event(fixture *f, const char *type, const char *action,
                                const char *rkey, const char *cid)
{
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = type;
    e.entity_id = f->r.did;
    e.event_type = action;
    es_meta m[2] = {{"rkey", rkey}, {"cid", cid}};
    e.meta = m;
    e.meta_count = cid ? 2 : 1;
    assert_int_equal(es_append(f->ls.store, &e, NULL), ES_OK);
}

static void drifted_store_is_repaired(void **state)
{
    fixture *f = fresh(state);
    es_atp_resync_result r;
    assert_int_equal(apply(f, 0, NULL, NULL, &r), ES_OK);
    const char *other = "bafyreia3zwwmogntyn7zhsr6kyzvelma2l77axbldfja6jwcqbjq5e5tj4";
    append_record_event(f, "app_bsky_feed_like", "delete", "3lqdkdjpy6t2e", NULL);
    append_record_event(f, "app_bsky_feed_like", "update", "3lrtfauocr722", other);
    append_record_event(f, "app_bsky_feed_like", "create", "3zzzzzzzzzzzz", other);

    assert_int_equal(apply(f, 0, NULL, NULL, &r), ES_OK);
    assert_int_equal(r.created, 1); /* the deleted like again */
    assert_int_equal(r.updated, 1); /* the changed like back */
    assert_int_equal(r.deleted, 1); /* the extra like gone */
    assert_int_equal(r.unchanged, tsv_lines(f) - 2);
    assert_int_equal(r.batches, 1);
    static record_fold rs;
    stored_set(f, &rs);
    assert_equals_tsv(f, &rs);
}

typedef struct stopper {
    uint64_t after;
} stopper;

static es_status stop_after(void *closure, const es_atp_resync_result *so_far)
{
    const stopper *s = closure;
    return so_far->batches >= s->after ? ES_ERR_ABORTED : ES_OK;
}

static void interrupted_run_resumes_without_repeating(void **state)
{
    fixture *f = fresh(state);
    es_atp_resync_result r;
    stopper st = {.after = 2};
    assert_int_equal(apply(f, 5, stop_after, &st, &r), ES_ERR_ABORTED);
    assert_int_equal(r.batches, 2);
    assert_int_equal(r.created, 10);
    size_t n = tsv_lines(f);
    assert_int_equal(apply(f, 5, NULL, NULL, &r), ES_OK);
    assert_int_equal(r.stored_events, 10);
    assert_int_equal(r.unchanged, 10);
    assert_int_equal(r.created, n - 10);
    assert_int_equal(r.batches, (n - 10 + 4) / 5);
    static record_fold rs;
    stored_set(f, &rs);
    assert_equals_tsv(f, &rs);
    assert_int_equal(rs.events, n); /* not one record event twice */
}

typedef struct intruder {
    fixture *f;
    uint64_t at_batch; /* after which batch it appends */
} intruder;

/* After a batch, another writer appends to the repository. */
static es_status intrude(void *closure, const es_atp_resync_result *so_far)
{
    intruder *in = closure;
    if (so_far->batches == in->at_batch)
        append_record_event(in->f, "app_bsky_feed_post", "create", "3yyyyyyyyyyyy",
                            "bafyreia3zwwmogntyn7zhsr6kyzvelma2l77axbldfja6jwcqbjq5e5tj4");
    return ES_OK;
}

/* Another writer appends after batch `at_batch` (of 5 events): the call
 * stops with ES_ERR_CONFLICT (the text says `why`) after that batch; made
 * again, it reads the intruder's record back and deletes it. */
static void intruded_then_mended(fixture *f, uint64_t at_batch, const char *why)
{
    size_t n = tsv_lines(f);
    es_atp_resync_result r;
    intruder in = {f, at_batch};
    assert_int_equal(apply(f, 5, intrude, &in, &r), ES_ERR_CONFLICT);
    if (strstr(es_last_error(), why) == NULL)
        fail_msg("the conflict says: %s", es_last_error());
    assert_int_equal(r.batches, at_batch);
    assert_int_equal(r.created, 5 * at_batch < n ? 5 * at_batch : n);
    assert_int_equal(apply(f, 5, NULL, NULL, &r), ES_OK);
    assert_int_equal(r.updated, 0);
    assert_int_equal(r.deleted, 1);
    static record_fold rs;
    stored_set(f, &rs);
    assert_equals_tsv(f, &rs);
}

/* Between two batches: the next batch's expectation refuses it. */
static void another_writer_meanwhile_is_a_conflict(void **state)
{
    intruded_then_mended(fresh(state), 1, "wrong last sequence");
}

/* After the last batch no batch follows to carry an expectation: only the
 * final count (the repository's events = those read back + those appended)
 * can see the other writer's event. */
static void another_writer_after_the_last_batch_is_a_conflict(void **state)
{
    fixture *f = fresh(state);
    intruded_then_mended(f, (tsv_lines(f) + 4) / 5, "another writer appended meanwhile");
}

/* The option: each batch one atomic batch; the same events in the end. */
static void atomic_batches_store_the_same(void **state)
{
    fixture *f = fresh(state);
    size_t n = tsv_lines(f);
    es_atp_resync_options o;
    es_atp_resync_options_init(&o);
    assert_false(o.atomic_batches); /* pipelined publishes by default */
    o.did = f->r.did;
    o.batch_max = 5;
    o.atomic_batches = true;
    es_atp_resync_result r;
    assert_int_equal(es_atp_resync_apply(f->ls.store, &f->car, &o, &r), ES_OK);
    assert_int_equal(r.created, n);
    assert_int_equal(r.batches, (n + 4) / 5);
    static record_fold rs;
    stored_set(f, &rs);
    assert_equals_tsv(f, &rs);
    assert_int_equal(rs.events, n);
    assert_int_equal(rs.not_live, n);
    /* and again: nothing to do */
    assert_int_equal(es_atp_resync_apply(f->ls.store, &f->car, &o, &r), ES_OK);
    assert_int_equal(r.unchanged, n);
    assert_int_equal(r.batches, 0);
}

static void another_did_stores_nothing(void **state)
{
    fixture *f = fresh(state);
    es_atp_resync_options o;
    es_atp_resync_options_init(&o);
    o.did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    es_atp_resync_result r;
    assert_int_equal(es_atp_resync_apply(f->ls.store, &f->car, &o, &r), ES_ERR_DECODE);
    assert_non_null(strstr(es_last_error(), "not of the DID asked for"));
    assert_int_equal(r.batches, 0);
    es_store_info info;
    assert_int_equal(es_store_info_get(f->ls.store, &info), ES_OK);
    assert_int_equal(info.events, 0);
}

static void bounds_and_arguments(void **state)
{
    fixture *f = fresh(state);
    es_atp_resync_options o;
    es_atp_resync_options_init(&o);
    o.did = f->r.did;
    assert_int_equal(es_atp_resync_apply(NULL, &f->car, &o, NULL), ES_ERR_INVALID);
    assert_int_equal(es_atp_resync_apply(f->ls.store, NULL, &o, NULL), ES_ERR_INVALID);
    assert_int_equal(es_atp_resync_apply(f->ls.store, &f->car, NULL, NULL), ES_ERR_INVALID);
    o.batch_max = ES_BATCH_MAX + 1;
    assert_int_equal(es_atp_resync_apply(f->ls.store, &f->car, &o, NULL), ES_ERR_INVALID);
    o.batch_max = ES_BATCH_MAX;
    o.did = "not-a-did";
    assert_int_equal(es_atp_resync_apply(f->ls.store, &f->car, &o, NULL), ES_ERR_INVALID);
    /* more stored record events than max_events */
    o.did = f->r.did;
    assert_int_equal(es_atp_resync_apply(f->ls.store, &f->car, &o, NULL), ES_OK);
    o.max_events = 3;
    assert_int_equal(es_atp_resync_apply(f->ls.store, &f->car, &o, NULL), ES_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backfill_stores_exactly_the_records),
        cmocka_unit_test(drifted_store_is_repaired),
        cmocka_unit_test(interrupted_run_resumes_without_repeating),
        cmocka_unit_test(another_writer_meanwhile_is_a_conflict),
        cmocka_unit_test(another_writer_after_the_last_batch_is_a_conflict),
        cmocka_unit_test(atomic_batches_store_the_same),
        cmocka_unit_test(another_did_stores_nothing),
        cmocka_unit_test(bounds_and_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
