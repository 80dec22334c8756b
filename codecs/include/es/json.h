/* JSON and the atproto JSON form of the common value model.
 *
 * Written form: a LINK renders as {"$link":"bafy..."} (the CID's base32
 * string) and BYTES as {"$bytes":"<base64, standard alphabet, unpadded>"},
 * as atproto displays DAG-CBOR data; everything else is plain JSON. Map keys
 * are written in the value's own order; text is written as UTF-8 with only
 * '"', '\\' and control characters escaped. Floats are written in the
 * shortest form that reads back to the same double, with ".0" added to
 * integral ones so they stay floats; NaN and infinities cannot be written
 * (ES_ERR_ENCODE).
 *
 * Read form (parsed with jansson): an object whose only key is "$link" with
 * a CID string becomes a LINK, one whose only key is "$bytes" with a base64
 * string (padding optional) becomes BYTES; an object that has either key
 * with another type of value or with other keys is refused (ES_ERR_DECODE),
 * as the atproto data model requires. A plain map that happens to have that
 * shape cannot be represented in this form: that ambiguity is atproto's.
 * Duplicate keys are refused. Integers must fit int64 (jansson's range);
 * larger ones are refused. Numbers with a fraction or exponent are FLOAT,
 * except in atproto mode (below). */
#ifndef ES_JSON_H
#define ES_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/buf.h>
#include <es/status.h>
#include <es/value.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_JSON_DEFAULT_DEPTH 64
#define ES_JSON_MAX_DEPTH     1024 /* max_depth above this is ES_ERR_INVALID */

typedef struct es_json_options {
    /* atproto data model on read: a number with a fraction must be integral
     * (123.0 reads as the integer 123; 123.5 is refused), so that what is
     * read can be written as DAG-CBOR. On write: floats are refused. */
    bool atproto;
    size_t max_depth; /* nesting bound; 0 means the default 64 */
} es_json_options;

/* Defaults: not atproto mode, default depth. */
ES_API void es_json_options_init(es_json_options *o);

/* Append the JSON text of v to out (no NUL is appended). o may be NULL. */
ES_API es_status es_json_encode(const es_value *v, const es_json_options *o, es_buf *out);

/* Parse exactly `len` bytes of JSON text (any JSON value at the top, with
 * surrounding white space) into a value allocated in arena; strings are
 * copied into the arena and NUL-terminated. o may be NULL. */
ES_API es_status es_json_decode(const char *text, size_t len, const es_json_options *o, es_arena *arena,
                         es_value **out);

/* The atproto data model's rules beyond the JSON form itself, as the atproto
 * interop fixtures test them: the top level is a map; no floats; no UINT;
 * every "$type" is a non-empty string; a map whose "$type" is "blob" has a
 * LINK "ref", a string "mimeType" and an integer "size". ES_ERR_DECODE with
 * a clear text naming the path of the first violation. */
ES_API es_status es_atproto_check(const es_value *v);

#ifdef __cplusplus
}
#endif
#endif
