/* Reversible byte escapes (private): the one mechanism behind entity-id
 * tokens ('%' escapes, es/subject.h) and KV key components ('=' escapes,
 * es/kvkey.h). Bytes for which `passes` is true are copied; every other byte
 * becomes <esc><two upper-case hex digits>. Unescaping accepts exactly what
 * escaping produces, so the mapping is one-to-one. */
#ifndef ES_ESCAPE_H
#define ES_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

#include <es/status.h>

typedef bool (*esi_passes_fn)(unsigned char c);

/* ES_ERR_LIMIT (with `what` in the message) when out_size is too small for
 * the result and its NUL. The input must not be empty (checked by callers). */
es_status esi_escape_bytes(const void *in, size_t len, char esc, esi_passes_fn passes,
                          const char *what, char *out, size_t out_size, size_t *out_len);
/* ES_ERR_INVALID for anything escaping cannot have produced; ES_ERR_LIMIT when
 * the bytes and a NUL do not fit out_size. */
es_status esi_unescape_bytes(const char *in, size_t len, char esc, esi_passes_fn passes,
                            const char *what, char *out, size_t out_size, size_t *out_len);

#endif
