/* Names and subjects. An event lives on
 *     $ES.<store>.<type>.<id>.<event>            (or, with tenancy,
 *     $ES.<store>.<tenant>.<type>.<id>.<event>)
 * Store, tenant, entity type and event type are names ([A-Za-z0-9_-]+);
 * the entity id is any byte string, written as ONE subject token by a
 * reversible escape: '%', '.', '*', '>' and every byte <= 0x20 or >= 0x7F
 * become %XX (upper-case hex), everything else passes through. So no id,
 * however hostile, can produce a subject outside its own entity. */
#ifndef ES_SUBJECT_H
#define ES_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include <es/export.h>
#include <es/names.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_ID_MAX   1024 /* entity id, in bytes before escaping */
/* An escaped id is at most three times as long, plus its NUL. */
#define ES_ID_TOKEN_MAX (3 * ES_ID_MAX + 1)

/* Escapes `len` bytes of `id` into `out` (NUL-terminated). ES_ERR_INVALID for
 * an empty id or one over ES_ID_MAX bytes; ES_ERR_LIMIT when out_size is too
 * small. *out_len (may be NULL) gets the token length. */
ES_API es_status es_id_escape(const void *id, size_t len, char *out, size_t out_size, size_t *out_len);

/* Reverses es_id_escape: the token must be a valid escaped id (only
 * pass-through bytes and %XX with upper-case hex of a byte that needs
 * escaping), else ES_ERR_INVALID. Writes the raw bytes plus a NUL. */
ES_API es_status es_id_unescape(const char *token, size_t token_len, char *out, size_t out_size,
                         size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
