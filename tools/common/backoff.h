/* The tools' one exponential backoff with jitter, so that many clients (or
 * many retries of one) do not hammer a recovering server in step. */
#ifndef ES_CLI_BACKOFF_H
#define ES_CLI_BACKOFF_H

#include <stdint.h>

/* The delay before retry number `attempt` (0 for the first): min_ms doubled
 * `attempt` times, at most max_ms, then drawn at random from its upper half
 * [d/2, d]. `rng` is the caller's generator state: seed it once with
 * es_cli_backoff_seed, then pass it to every call. */
int64_t es_cli_backoff_ms(int64_t min_ms, int64_t max_ms, unsigned attempt, uint64_t *rng);

/* A generator state from the clock (never zero). */
uint64_t es_cli_backoff_seed(void);

#endif
