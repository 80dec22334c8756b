/* Clocks (private to the library): the one owner of wall time, monotonic
 * time and sleeping. Time formats are public: es/time.h. */
#ifndef ES_BASE_CLOCK_H
#define ES_BASE_CLOCK_H

#include <stdint.h>

#include <es/time.h>

/* Unix time in nanoseconds. */
int64_t esi_now_ns(void);
/* A clock for intervals and deadlines, in milliseconds: never jumps. */
int64_t esi_monotonic_ms(void);
int64_t esi_monotonic_ns(void);
/* Sleeps `ms` milliseconds (<= 0: not at all). */
void esi_sleep_ms(int64_t ms);

#endif
