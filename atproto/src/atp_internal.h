/* Private helpers shared by the adapter's modules. Not installed. */
#ifndef ES_ATP_INTERNAL_H
#define ES_ATP_INTERNAL_H

#include <es/atproto.h>
#include <es/cbor.h>

#include <es/alloc.h>

#include "base/internal.h"

/* Raise `s` with the text "<formatted prefix>: <the thread's previous error
 * text>", copying the previous text first (es_error would otherwise read and
 * write the same thread-local buffer). */
es_status esi_atp_error_wrap(es_status s, const char *fmt, ...) ES_PRINTF(2, 3);

/* Strict DAG-CBOR decode of exactly [buf, buf+len) (trailing bytes are an
 * error) with the given depth bound, zero copy. */
es_status esi_atp_decode_exact(const uint8_t *buf, size_t len, size_t max_depth, es_arena *arena,
                           es_value **out);

/* libes-atproto's string hash (FNV-1a 64) and monotonic clock: base/'s own
 * are hidden inside libes (the shared libraries export ES_API names only). */
uint64_t esi_atp_hash(const char *s, size_t len);
int64_t esi_atp_monotonic_ms(void);
/* A copy through es_malloc (the caller es_free's it), NULL when out of memory. */
char *esi_atp_strdup(const char *s);

/* Handle syntax (atproto handle spec); case-insensitive, as handles are. */
bool esi_atp_valid_handle(const char *s, size_t len);

#endif
