/* The shared live fan-out (hub.c) in process, against a live server
 * (NATS_URL): events handed from the watch's thread to the fan-out thread
 * and offered in batches reach every member once, in order, from exactly
 * where it joined: before the appends, during them at the hub's position
 * (HUB_NOW), at a sequence the hub has not reached yet and at one it has
 * passed; and a member that leaves from inside an offer gets nothing more. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>

#include "cursor.h"
#include "hub.h"
#include "live.h"
#include "tap_events.h"

#define EVENTS   640 /* appended in batches of TAP_BATCH_MAX */
#define MAX_SEQS (EVENTS + 16)
#define WAIT_MS  20000

/* A member that records the sequences offered to it. Offers come under the
 * hub's lock, one at a time; the test reads `n` and `last` while they come. */
typedef struct recorder {
    uint64_t seqs[MAX_SEQS];
    _Atomic size_t n;
    _Atomic uint64_t last;
    size_t leave_after; /* > 0: returns false once it has this many */
    _Atomic size_t offers_after_leaving;
    bool left;
} recorder;

static bool record(void *member, const hub_event *const *evs, size_t n)
{
    recorder *r = member;
    if (r->left) {
        atomic_fetch_add(&r->offers_after_leaving, 1);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = atomic_load(&r->n);
        if (k < MAX_SEQS)
            r->seqs[k] = evs[i]->seq;
        atomic_store(&r->n, k + 1);
        atomic_store(&r->last, evs[i]->seq);
    }
    if (r->leave_after > 0 && atomic_load(&r->n) >= r->leave_after)
        r->left = true;
    return !r->left;
}

/* Waits for the member's last sequence to reach `seq`. */
static void wait_last(recorder *r, uint64_t seq)
{
    for (int ms = 0; ms < WAIT_MS && atomic_load(&r->last) < seq; ms += 10)
        live_sleep_ms(10);
    assert_int_equal(atomic_load(&r->last), seq);
}

/* It got exactly first..last, each once, in order. */
static void assert_contiguous(const recorder *r, uint64_t first, uint64_t last)
{
    assert_int_equal(atomic_load(&r->n), last - first + 1);
    for (size_t i = 0; i < atomic_load(&r->n); i++)
        assert_int_equal(r->seqs[i], first + i);
}

typedef struct joiner {
    hub *h;
    recorder *r;
    uint64_t after;
    bool joined;
} joiner;

static void *join_later(void *arg)
{
    joiner *j = arg;
    live_sleep_ms(20);
    j->joined = hub_join(j->h, j->after, record, j->r);
    return NULL;
}

static void batches_reach_every_member_once_in_order(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    uint64_t base = 0;
    assert_int_equal(serve_cursor_after_seq(st, false, 0, &base), ES_OK);
    hub_config cfg = {.record_max = 1u << 20, .headroom = 16};
    hub *h = NULL;
    assert_int_equal(hub_create(st, &cfg, &h), ES_OK);
    static recorder from_start, at_now, at_seq, behind, leaver;
    leaver.leave_after = 3;
    assert_true(hub_join(h, HUB_NOW, record, &from_start));
    assert_true(hub_join(h, HUB_NOW, record, &leaver));
    joiner js[2] = {{h, &at_now, HUB_NOW, false}, {h, &at_seq, base + EVENTS - 100, false}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, join_later, &js[i]), 0);
    for (int i = 0; i < EVENTS / TAP_BATCH_MAX; i++)
        assert_int_equal(tap_append_ops(st, tap_dids[i % TAP_REPOS], i * TAP_BATCH_MAX,
                                        TAP_BATCH_MAX, true),
                         ES_OK);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_true(js[i].joined);
    }
    wait_last(&from_start, base + EVENTS);
    /* all kept (the ring holds more than EVENTS): one behind the hub gets
     * the kept ones at once, then the rest */
    assert_true(hub_join(h, base + 10, record, &behind));
    wait_last(&at_now, base + EVENTS);
    wait_last(&at_seq, base + EVENTS);
    wait_last(&behind, base + EVENTS);
    hub_leave(h, &from_start); /* its lock: what the offers wrote is seen */
    hub_leave(h, &at_now);
    hub_leave(h, &at_seq);
    hub_leave(h, &behind);
    assert_int_equal(hub_members(h), 0); /* the leaver left from its offer */
    assert_contiguous(&from_start, base + 1, base + EVENTS);
    assert_contiguous(&at_now, at_now.seqs[0], base + EVENTS); /* from where the hub was */
    assert_contiguous(&at_seq, base + EVENTS - 99, base + EVENTS);
    assert_contiguous(&behind, base + 11, base + EVENTS);
    assert_true(leaver.left);
    assert_true(atomic_load(&leaver.n) >= 3);
    assert_int_equal(leaver.seqs[0], base + 1);
    assert_int_equal(atomic_load(&leaver.offers_after_leaving), 0);
    hub_destroy(h);
}

static int setup(void **state)
{
    static live_store ls;
    return live_group_setup(state, &ls, "hub_t");
}

static int teardown(void **state)
{
    return live_group_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batches_reach_every_member_once_in_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
