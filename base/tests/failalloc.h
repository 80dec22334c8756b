/* Out-of-memory testing, as SQLite and libcbor do it: an allocator for
 * es/alloc.h that counts allocations and live blocks and fails the Nth
 * allocation on request, and a sweep that runs an operation with the 1st,
 * 2nd, 3rd... allocation failing until a run needs no more than it was
 * given. Every run must end with the documented status (or succeed, having
 * checked its own result), leave no live block behind, and not crash.
 *
 * Only the library's own allocations go through it: memory allocated inside
 * nats.c, jansson, zstd, libsodium and OpenSSL is not counted and never
 * fails here. Thread-safe counters; one sweep at a time. */
#ifndef ES_TEST_FAILALLOC_H
#define ES_TEST_FAILALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include <es/status.h>

/* Makes the counting allocator the library's (es_allocator_set). Call it
 * first in main(), before the library allocates anything. */
void failalloc_install(void);

/* The n-th allocation from now fails (n >= 1), and with `persistent` every
 * one after it too; n == 0 disarms. Resets the allocation count. */
void failalloc_fail_at(long n, bool persistent);
/* Allocations attempted since the last failalloc_fail_at. */
long failalloc_count(void);
/* Whether an allocation failed since the last failalloc_fail_at. */
bool failalloc_failed(void);
/* Blocks allocated and not yet freed. */
long failalloc_live(void);

/* An operation under test: creates, uses and frees what it needs, checks
 * its result, and returns its status (ES_ERR_PROTOCOL is a good status for
 * "succeeded with a wrong result"). */
typedef es_status (*failalloc_op)(void *ctx);

typedef struct failalloc_report {
    long runs;     /* runs in which an allocation failed */
    long allocs;   /* allocations of the run that succeeded */
    char why[256]; /* the first misbehaviour, or "" */
} failalloc_report;

/* Runs `op` once to warm up (lazy caches), then with allocation 1, 2, 3...
 * failing, once and persistently, until a run succeeds without a failure.
 * A failing run must return `expect` or (having recovered) ES_OK; every run
 * must leave failalloc_live() as it found it. False, with r->why, at the
 * first run that does not; also when the warm-up run fails. */
bool failalloc_sweep(failalloc_op op, void *ctx, es_status expect, failalloc_report *r);

/* For cmocka tests (cmocka.h included first): the sweep with ES_ERR_NOMEM
 * expected, failing the test with the first misbehaviour, and at least
 * `min_allocs` allocations covered (0: none expected at all). */
#ifdef cmocka_unit_test
static inline void failalloc_expect_nomem(failalloc_op op, void *ctx, long min_allocs)
{
    failalloc_report r;
    if (!failalloc_sweep(op, ctx, ES_ERR_NOMEM, &r))
        fail_msg("%s", r.why);
    print_message("%ld allocations, %ld failing runs\n", r.allocs, r.runs);
    if (min_allocs == 0)
        assert_int_equal(r.allocs, 0);
    else
        assert_true(r.allocs >= min_allocs);
}
#endif

#endif
