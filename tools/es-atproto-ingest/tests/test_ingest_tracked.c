/* The ingester's tracked set (tracked.h) against a live server (NATS_URL;
 * skipped without one): tracked_poll hands over the changes made through
 * the public API (es/atproto_tracked.h) in order and tracked_contains
 * follows them; a burst larger than the queue is caught up by a relist
 * with nothing lost or repeated; the set stops at its bound. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <es/atproto_tracked.h>
#include <es/checkpoint.h>
#include <es/es.h>

#include "live.h"
#include "tracked.h"

#define CHANGES_MAX 4096

typedef struct ctx {
    live_store live;
    es_atp_tracked *api; /* the writer, as `repos add|remove` would be */
} ctx;

/* What tracked_poll handed over. */
typedef struct changes {
    size_t n, added, removed;
    char what[CHANGES_MAX][48]; /* "+did" or "-did" */
} changes;

static changes got;

static int setup(void **state)
{
    static ctx c;
    *state = NULL;
    int made = live_store_create(&c.live, "ingtracked");
    if (made <= 0)
        return made;
    if (es_atp_tracked_open(c.live.store, &c.api) != ES_OK)
        return -1;
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c != NULL) {
        es_atp_tracked_destroy(c->api);
        live_store_destroy(&c->live);
    }
    return 0;
}

static void on_change(void *closure, const char *did, size_t len, bool added)
{
    changes *ch = closure;
    if (ch->n < CHANGES_MAX)
        snprintf(ch->what[ch->n++], sizeof ch->what[0], "%c%.*s", added ? '+' : '-', (int)len,
                 did);
    if (added)
        ch->added++;
    else
        ch->removed++;
}

/* Polls (as the tick thread does, every 20 ms) until n changes were handed
 * over in all, for up to 5 s, then once more to see nothing more comes. */
static void poll_until(tracked *t, size_t n)
{
    for (int i = 0; i < 250 && got.n < n; i++) {
        assert_int_equal(tracked_poll(t, on_change, &got), ES_OK);
        if (got.n < n)
            live_sleep_ms(20);
    }
    live_sleep_ms(100);
    assert_int_equal(tracked_poll(t, on_change, &got), ES_OK);
    assert_int_equal(got.n, n);
}

static void add(ctx *c, const char *did)
{
    assert_int_equal(es_atp_tracked_add(c->api, did, strlen(did)), ES_OK);
}

static void del(ctx *c, const char *did)
{
    assert_int_equal(es_atp_tracked_remove(c->api, did, strlen(did)), ES_OK);
}

static bool has(tracked *t, const char *did)
{
    return tracked_contains(t, did, strlen(did));
}

static void poll_hands_over_changes_in_order(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    memset(&got, 0, sizeof got);
    add(c, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    add(c, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb");
    tracked *t = NULL;
    assert_int_equal(tracked_open(c->live.store, 0, &t), ES_OK);
    /* the set is the tick thread's: nothing before the first poll */
    assert_false(has(t, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_int_equal(tracked_count(t), 0);
    /* the first poll: the current set, queued when tracked_open returned */
    assert_int_equal(tracked_poll(t, on_change, &got), ES_OK);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.what[0], "+did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    assert_string_equal(got.what[1], "+did:plc:bbbbbbbbbbbbbbbbbbbbbbbb");
    assert_true(has(t, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_int_equal(tracked_count(t), 2);
    /* changes while it runs, in the order they were made */
    add(c, "did:plc:cccccccccccccccccccccccc");
    del(c, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    add(c, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    del(c, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb");
    poll_until(t, 6);
    assert_string_equal(got.what[2], "+did:plc:cccccccccccccccccccccccc");
    assert_string_equal(got.what[3], "-did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    assert_string_equal(got.what[4], "+did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    assert_string_equal(got.what[5], "-did:plc:bbbbbbbbbbbbbbbbbbbbbbbb");
    assert_true(has(t, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_false(has(t, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"));
    assert_true(has(t, "did:plc:cccccccccccccccccccccccc"));
    assert_false(has(t, "did:plc:dddddddddddddddddddddddd"));
    assert_int_equal(tracked_count(t), 2);
    tracked_stats st;
    tracked_get_stats(t, &st);
    assert_int_equal(st.relists, 0);
    assert_int_equal(st.over_limit, 0);
    tracked_close(t);
    tracked_close(NULL);
    del(c, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    del(c, "did:plc:cccccccccccccccccccccccc");
}

static void did_of(char out[40], unsigned i)
{
    snprintf(out, 40, "did:plc:burst%019u", i);
}

/* More changes than the queue holds between two polls: the queue is
 * dropped and the bucket listed again; the set ends exact, each DID handed
 * over once. */
static void a_burst_is_caught_up_by_a_relist(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    memset(&got, 0, sizeof got);
    tracked *t = NULL;
    assert_int_equal(tracked_open(c->live.store, 0, &t), ES_OK);
    assert_int_equal(tracked_poll(t, on_change, &got), ES_OK);
    assert_int_equal(got.n, 0);
    const unsigned burst = TRACKED_QUEUE_MAX + 50;
    char did[40];
    for (unsigned i = 0; i < burst; i++) {
        did_of(did, i);
        add(c, did);
    }
    for (unsigned i = 0; i < 10; i++) { /* and some leave again */
        did_of(did, i);
        del(c, did);
    }
    poll_until(t, burst - 10);
    assert_int_equal(got.added, burst - 10);
    assert_int_equal(got.removed, 0);
    assert_int_equal(tracked_count(t), burst - 10);
    did_of(did, 3);
    assert_false(has(t, did));
    did_of(did, burst - 1);
    assert_true(has(t, did));
    tracked_stats st;
    tracked_get_stats(t, &st);
    assert_true(st.relists >= 1);
    /* afterwards the queue works again */
    did_of(did, burst - 1);
    del(c, did);
    poll_until(t, burst - 9);
    char want[48];
    snprintf(want, sizeof want, "-%s", did);
    assert_string_equal(got.what[burst - 10], want);
    tracked_close(t);
    for (unsigned i = 10; i < burst - 1; i++) {
        did_of(did, i);
        del(c, did);
    }
}

/* The set holds max_tracked DIDs; the rest are left out and counted. */
static void the_set_stops_at_its_bound(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    memset(&got, 0, sizeof got);
    add(c, "did:plc:bound1bound1bound1bound1b");
    add(c, "did:plc:bound2bound2bound2bound2b");
    add(c, "did:plc:bound3bound3bound3bound3b");
    tracked *t = NULL;
    assert_int_equal(tracked_open(c->live.store, 2, &t), ES_OK);
    assert_int_equal(tracked_poll(t, on_change, &got), ES_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(tracked_count(t), 2);
    assert_false(has(t, "did:plc:bound3bound3bound3bound3b"));
    tracked_stats st;
    tracked_get_stats(t, &st);
    assert_int_equal(st.over_limit, 1);
    /* a hostile entry is counted, not tracked */
    es_checkpoints *cps = NULL;
    assert_int_equal(es_checkpoints_open_bucket(c->live.store, ES_CHECKPOINTS_TRACKED, &cps),
                     ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "did/plc/hostile", 0, "{\"v\":9}", ES_CHECKPOINT_ANY,
                                       NULL),
                     ES_OK);
    es_checkpoints_destroy(cps);
    for (int i = 0; i < 250 && st.skipped == 0; i++) {
        live_sleep_ms(20);
        tracked_get_stats(t, &st);
    }
    assert_int_equal(st.skipped, 1);
    assert_int_equal(tracked_poll(t, on_change, &got), ES_OK);
    assert_int_equal(got.n, 2);
    tracked_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(poll_hands_over_changes_in_order),
        cmocka_unit_test(a_burst_is_caught_up_by_a_relist),
        cmocka_unit_test(the_set_stops_at_its_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
