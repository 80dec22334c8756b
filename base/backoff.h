/* Exponential backoff (private): the one place that decides how long a
 * retry waits. A delay starts at `first_ms`, doubles per attempt and stops
 * growing at `max_ms`; with jitter it is spread by +-25 %, so that many
 * clients (or many units of one) do not hammer a recovering server in step. */
#ifndef ES_BASE_BACKOFF_H
#define ES_BASE_BACKOFF_H

#include <stdint.h>

/* The delay before attempt `attempt` (1 = the first retry): first_ms,
 * doubled attempt-1 times, capped at max_ms. first_ms <= 0 gives 0. */
int64_t esi_backoff_ms(int64_t first_ms, int64_t max_ms, unsigned attempt);

/* A jittered backoff: keeps its own random state (not thread-safe: one per
 * user, or under the user's lock). */
typedef struct esi_backoff {
    int64_t first_ms, max_ms;
    uint64_t rng;
} esi_backoff;

/* Seeds the state from the clock and its own address (distinct per process
 * and per user). */
void esi_backoff_init(esi_backoff *b, int64_t first_ms, int64_t max_ms);

/* esi_backoff_ms(first, max, attempt) +- 25 %. */
int64_t esi_backoff_next(esi_backoff *b, unsigned attempt);

#endif
