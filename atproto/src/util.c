#include "atp_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <es/base.h>
#include <es/cid.h>
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

es_status esi_atp_base64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    es_status s = cap > 0 ? es_base64_encode(in, len, out, cap - 1, &n) : ES_ERR_TOO_LARGE;
    if (s != ES_OK)
        return es_error(s, "%zu bytes do not fit %zu characters of base64url", len, cap);
    for (size_t i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[n] = '\0';
    return ES_OK;
}

char *esi_atp_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = es_malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}

bool esi_atp_record_cid_ok(const uint8_t *cid, size_t len)
{
    es_cid c;
    return es_cid_parse(cid, len, &c) == ES_OK && c.len == len && c.version == 1 &&
           c.codec == ES_CID_CODEC_DAG_CBOR;
}

es_status esi_atp_record_decode(const uint8_t *data, size_t len, size_t max_depth,
                                es_arena *scratch, const char **invalid)
{
    es_arena_reset(scratch);
    es_value *v;
    es_status s = esi_atp_decode_exact(data, len, max_depth, scratch, &v);
    *invalid = NULL;
    if (s == ES_ERR_DECODE)
        *invalid = "not DAG-CBOR";
    else if (s == ES_OK && v->kind != ES_VALUE_MAP)
        *invalid = "not a map";
    return s == ES_ERR_DECODE ? ES_OK : s;
}
