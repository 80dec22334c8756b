/* Out-of-memory testing (failalloc.h). */
#include "failalloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <es/alloc.h>

/* Runs longer than this are a runaway, not a test. */
#define SWEEP_MAX_RUNS 200000

static atomic_long fail_at;      /* 0: never */
static atomic_bool fail_persist; /* every allocation after fail_at fails too */
static atomic_long count;
static atomic_long live;
static atomic_bool failed;

/* Whether this allocation attempt is one that must fail. */
static bool should_fail(void)
{
    long n = atomic_fetch_add(&count, 1) + 1;
    long at = atomic_load(&fail_at);
    bool fail = at > 0 && (n == at || (n > at && atomic_load(&fail_persist)));
    if (fail)
        atomic_store(&failed, true);
    return fail;
}

static void *counting_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (should_fail())
        return NULL;
    void *p = malloc(size);
    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

static void *counting_realloc(void *p, size_t size, void *ctx)
{
    (void)ctx;
    if (should_fail())
        return NULL;
    void *q = realloc(p, size);
    if (q != NULL && p == NULL)
        atomic_fetch_add(&live, 1);
    return q;
}

static void counting_free(void *p, void *ctx)
{
    (void)ctx;
    if (p != NULL)
        atomic_fetch_sub(&live, 1);
    free(p);
}

void failalloc_install(void)
{
    es_allocator a = {counting_malloc, counting_realloc, counting_free, NULL};
    if (es_allocator_set(&a) != ES_OK)
        abort();
}

void failalloc_fail_at(long n, bool persistent)
{
    atomic_store(&fail_persist, persistent);
    atomic_store(&fail_at, n);
    atomic_store(&count, 0);
    atomic_store(&failed, false);
}

long failalloc_count(void)
{
    return atomic_load(&count);
}

bool failalloc_failed(void)
{
    return atomic_load(&failed);
}

long failalloc_live(void)
{
    return atomic_load(&live);
}

/* One run with allocation n failing; false with r->why when it misbehaves.
 * *done: no allocation failed (n was past the last one) and it succeeded. */
static bool run_once(failalloc_op op, void *ctx, es_status expect, long n, bool persistent,
                     failalloc_report *r, bool *done)
{
    long before = failalloc_live();
    failalloc_fail_at(n, persistent);
    es_status s = op(ctx);
    bool hit = failalloc_failed();
    long allocs = failalloc_count();
    failalloc_fail_at(0, false);
    long leaked = failalloc_live() - before;
    const char *mode = persistent ? "persistent" : "single";
    *done = !hit;
    if (leaked != 0) {
        snprintf(r->why, sizeof r->why, "allocation %ld failing (%s): %ld blocks leaked (%s)", n,
                 mode, leaked, es_status_text(s));
        return false;
    }
    if (!hit && s != ES_OK) {
        snprintf(r->why, sizeof r->why, "no allocation failed, yet: %s (%s)", es_status_text(s),
                 es_last_error());
        return false;
    }
    if (hit && s != expect && s != ES_OK) {
        snprintf(r->why, sizeof r->why, "allocation %ld failing (%s): %s instead of %s (%s)", n,
                 mode, es_status_text(s), es_status_text(expect), es_last_error());
        return false;
    }
    if (hit)
        r->runs++;
    else
        r->allocs = allocs;
    return true;
}

bool failalloc_sweep(failalloc_op op, void *ctx, es_status expect, failalloc_report *r)
{
    r->runs = 0;
    r->allocs = 0;
    r->why[0] = '\0';
    es_status warm = op(ctx); /* may fill lazy caches: not a leak */
    if (warm != ES_OK) {
        snprintf(r->why, sizeof r->why, "the operation fails by itself: %s (%s)",
                 es_status_text(warm), es_last_error());
        return false;
    }
    bool done = false;
    for (long n = 1; n <= SWEEP_MAX_RUNS; n++) {
        bool single_done = false;
        if (!run_once(op, ctx, expect, n, false, r, &single_done) ||
            !run_once(op, ctx, expect, n, true, r, &done))
            return false;
        if (single_done && done)
            return true;
    }
    snprintf(r->why, sizeof r->why, "still allocating after %d runs", SWEEP_MAX_RUNS);
    return false;
}
