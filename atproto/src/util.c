#include "atp_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <es/hash.h>
#include <es/time.h>

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

/* libes's hash and clock (es/hash.h, es/time.h), under the adapter's names. */
uint64_t esi_atp_hash(const char *s, size_t len)
{
    return es_hash64(s, len);
}

int64_t esi_atp_monotonic_ms(void)
{
    return es_monotonic_ms();
}

char *esi_atp_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = es_malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}
