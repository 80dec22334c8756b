/* Time helpers (private). */
#ifndef ES_TIMEFMT_H
#define ES_TIMEFMT_H

#include <stdint.h>

#include <es/status.h>

/* "2026-11-24T05:05:35.123456789Z" plus NUL */
#define ES_TIME_MAX 64

int64_t esi_now_ns(void);
int64_t esi_monotonic_ms(void);
/* Sleeps `ms` milliseconds (<= 0: not at all). */
void esi_sleep_ms(int64_t ms);
/* Always nine fraction digits, so stored times sort as text. */
void es_time_format(int64_t ns, char out[ES_TIME_MAX]);
/* Any RFC 3339 time (fraction of any length, Z or ±hh:mm) to Unix ns. */
es_status es_time_parse(const char *s, int64_t *ns);

#endif
