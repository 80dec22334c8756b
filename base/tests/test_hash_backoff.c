/* base/hash.h and base/backoff.h: FNV-1a against the reference values, and
 * the backoff's doubling, cap and jitter bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/backoff.h"
#include "base/hash.h"

#include <es/hash.h>
#include <es/time.h>

/* The public hash and clocks are the library's own (es/hash.h, es/time.h). */
static void public_hash_and_clocks(void **state)
{
    (void)state;
    assert_true(es_hash64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(es_hash64("foobar", 6) == 0x85944171f73967e8ULL);
    int64_t m0 = es_monotonic_ns(), ms = es_monotonic_ms(), m1 = es_monotonic_ns();
    assert_true(m0 <= m1);
    assert_true(m0 / 1000000 <= ms && ms <= m1 / 1000000);
    assert_true(es_now_ns() > 1767225600LL * 1000000000LL); /* after 2026-01-01 */
}

static void fnv1a_matches_the_reference(void **state)
{
    (void)state;
    assert_int_equal(esi_fnv1a32("", 0, ESI_FNV32_OFFSET), 0x811c9dc5u);
    assert_int_equal(esi_fnv1a32("a", 1, ESI_FNV32_OFFSET), 0xe40c292cu);
    assert_int_equal(esi_fnv1a32("foobar", 6, ESI_FNV32_OFFSET), 0xbf9cf968u);
    /* Continuing a hash equals hashing the concatenation (projections hash
     * subject tokens joined without separators, as the server's partition()). */
    assert_int_equal(esi_fnv1a32("bar", 3, esi_fnv1a32("foo", 3, ESI_FNV32_OFFSET)), 0xbf9cf968u);
    assert_true(esi_fnv1a64("", 0, ESI_FNV64_OFFSET) == 0xcbf29ce484222325ULL);
    assert_true(esi_fnv1a64("a", 1, ESI_FNV64_OFFSET) == 0xaf63dc4c8601ec8cULL);
    assert_true(esi_fnv1a64("foobar", 6, ESI_FNV64_OFFSET) == 0x85944171f73967e8ULL);
    assert_true(esi_fnv1a64("bar", 3, esi_fnv1a64("foo", 3, ESI_FNV64_OFFSET)) ==
                0x85944171f73967e8ULL);
}

static void backoff_doubles_up_to_its_cap(void **state)
{
    (void)state;
    assert_int_equal(esi_backoff_ms(100, 5000, 0), 100);
    assert_int_equal(esi_backoff_ms(100, 5000, 1), 100);
    assert_int_equal(esi_backoff_ms(100, 5000, 2), 200);
    assert_int_equal(esi_backoff_ms(100, 5000, 6), 3200);
    assert_int_equal(esi_backoff_ms(100, 5000, 7), 5000);
    assert_int_equal(esi_backoff_ms(100, 5000, 4000000000u), 5000); /* no overflow */
    assert_int_equal(esi_backoff_ms(300, 200, 1), 200);             /* the cap wins */
    assert_int_equal(esi_backoff_ms(0, 200, 3), 0);
}

static void jitter_stays_within_a_quarter(void **state)
{
    (void)state;
    esi_backoff b;
    esi_backoff_init(&b, 100, 5000);
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 2000; i++) {
        int64_t d = esi_backoff_next(&b, 3); /* 400 +- 25 % */
        assert_true(d >= 300 && d < 500);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(hi - lo > 100); /* spread, not constant */
    esi_backoff_init(&b, 1, 1);
    assert_int_equal(esi_backoff_next(&b, 5), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fnv1a_matches_the_reference),
        cmocka_unit_test(public_hash_and_clocks),
        cmocka_unit_test(backoff_doubles_up_to_its_cap),
        cmocka_unit_test(jitter_stays_within_a_quarter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
