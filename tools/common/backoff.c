/* Exponential backoff with jitter (backoff.h). */
#include "backoff.h"

#include "clock.h"

/* xorshift64: cheap and good enough to spread retries. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

int64_t es_cli_backoff_ms(int64_t min_ms, int64_t max_ms, unsigned attempt, uint64_t *rng)
{
    int64_t d = min_ms < max_ms ? min_ms : max_ms;
    for (unsigned i = 0; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    int64_t half = d / 2;
    return half > 0 ? half + (int64_t)(next_random(rng) % (uint64_t)(half + 1)) : d;
}

uint64_t es_cli_backoff_seed(void)
{
    return 0x9e3779b97f4a7c15ULL ^ (uint64_t)es_cli_now_ns();
}
