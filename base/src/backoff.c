/* Exponential backoff with jitter (base/backoff.h). */
#include "base/backoff.h"

#include "base/clock.h"
#include "base/hash.h"

int64_t esi_backoff_ms(int64_t first_ms, int64_t max_ms, unsigned attempt)
{
    if (first_ms <= 0)
        return 0;
    int64_t d = first_ms;
    for (unsigned i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

void esi_backoff_init(esi_backoff *b, int64_t first_ms, int64_t max_ms)
{
    b->first_ms = first_ms;
    b->max_ms = max_ms < first_ms ? first_ms : max_ms;
    uint64_t seed[2] = {(uint64_t)esi_now_ns(), (uint64_t)(uintptr_t)b};
    b->rng = esi_fnv1a64(seed, sizeof seed, ESI_FNV64_OFFSET) | 1; /* xorshift needs non-zero */
}

/* xorshift64: cheap, and good enough to keep retries apart. */
static uint64_t next_random(esi_backoff *b)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return b->rng;
}

int64_t esi_backoff_next(esi_backoff *b, unsigned attempt)
{
    int64_t d = esi_backoff_ms(b->first_ms, b->max_ms, attempt);
    int64_t spread = d / 2; /* the jitter covers [d - d/4, d + d/4) */
    if (spread <= 0)
        return d;
    return d - spread / 2 + (int64_t)(next_random(b) % (uint64_t)spread);
}
