/* The tools' one clock: wall time, a monotonic clock for intervals and
 * deadlines, sleeping, and absolute deadlines for pthread_cond_timedwait.
 * (The library keeps its own, privately; time formats are public in
 * es/time.h.) */
#ifndef ES_CLI_CLOCK_H
#define ES_CLI_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Unix time in nanoseconds. */
int64_t es_cli_now_ns(void);
/* A clock that never jumps, for intervals only: nanoseconds and
 * milliseconds. */
int64_t es_cli_monotonic_ns(void);
int64_t es_cli_monotonic_ms(void);
/* The CPU time the process has used, in nanoseconds. */
int64_t es_cli_cpu_ns(void);
/* Sleeps `ms` milliseconds (<= 0: not at all), resuming after signals. */
void es_cli_sleep_ms(int64_t ms);
/* The wall-clock time `ms` milliseconds from now, as pthread_cond_timedwait
 * takes it. */
struct timespec es_cli_deadline(int64_t ms);

#endif
