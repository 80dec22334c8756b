#include "atp_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

es_status esi_atp_error_wrap(es_status s, const char *fmt, ...)
{
    char previous[512], prefix[256];
    snprintf(previous, sizeof previous, "%s", es_last_error());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    return es_error(s, "%s: %s", prefix, previous);
}

es_status esi_atp_decode_exact(const uint8_t *buf, size_t len, size_t max_depth, es_arena *arena,
                               es_value **out)
{
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    o.max_depth = max_depth;
    size_t used = 0;
    es_status s = es_cbor_decode(buf, len, &o, arena, out, &used);
    if (s == ES_OK && used != len)
        return es_error(ES_ERR_DECODE, "%zu stray bytes after the DAG-CBOR item", len - used);
    return s;
}

/* FNV-1a, 64 bits. base/hash.h owns the hash inside libes, but its symbols
 * are hidden behind libes's export boundary: this is libes-atproto's one. */
uint64_t esi_atp_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The same boundary keeps base/clock.h out of reach: libes-atproto's one
 * monotonic clock. */
int64_t esi_atp_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *esi_atp_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = es_malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}
