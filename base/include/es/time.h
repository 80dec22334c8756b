/* Times as the wire format writes them (Rita-Time, checkpoints): RFC 3339 in
 * UTC with nine fraction digits, so that stored times sort as text. */
#ifndef ES_TIME_H
#define ES_TIME_H

#include <stdint.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "2026-11-24T05:05:35.123456789Z" plus its NUL fits. */
#define ES_TIME_MAX 64

/* The library's clocks, for programs built on it (as nats.c's nats_Now):
 * Unix time in nanoseconds, and a clock for intervals and deadlines that
 * never jumps (CLOCK_MONOTONIC), in nanoseconds and milliseconds. */
ES_API int64_t es_now_ns(void);
ES_API int64_t es_monotonic_ns(void);
ES_API int64_t es_monotonic_ms(void);

/* Unix nanoseconds as "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ". */
ES_API void es_time_format(int64_t ns, char out[ES_TIME_MAX]);

/* Any RFC 3339 time (a fraction of any length, "Z" or ±hh:mm) to Unix
 * nanoseconds. ES_ERR_INVALID for anything else. */
ES_API es_status es_time_parse(const char *s, int64_t *ns);

#ifdef __cplusplus
}
#endif
#endif
