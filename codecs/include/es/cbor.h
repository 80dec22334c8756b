/* CBOR (RFC 8949) and DAG-CBOR (the IPLD / atproto profile of it): one
 * decoder and one encoder for both, between bytes and the common value model
 * (es/value.h).
 *
 * Strict mode (dag-cbor, atproto) refuses on decode, each with ES_ERR_DECODE
 * and a clear es_last_error() text:
 *   - tags other than 42, and tag 42 not over a byte string holding 0x00
 *     followed by one complete binary CID (the LINK value holds the CID
 *     without the 0x00);
 *   - map keys that are not text strings, duplicate keys, keys not sorted
 *     length-first then bytewise;
 *   - integers, lengths and tags not in their shortest form; indefinite
 *     lengths; integers outside int64 (the atproto data model);
 *   - floats unless allow_floats (then 64-bit only, never NaN or infinite);
 *   - undefined and every simple value other than false/true/null;
 *   - text that is not valid UTF-8.
 * General mode (cbor) accepts any well-formed CBOR the value model can hold:
 *   - indefinite-length strings, arrays and maps; non-shortest forms;
 *   - half, single and double floats (all become double);
 *   - unsigned integers up to 2^64-1 (ES_VALUE_UINT above INT64_MAX);
 *     negative ones below INT64_MIN are refused ("not representable");
 *   - tag 42 as in strict mode (a LINK); tags 2-5 (bignums, decimal
 *     fractions, bigfloats) are refused as not representable; every other
 *     tag is dropped and its content decoded as if untagged;
 *   - undefined decodes as null; other simple values are refused;
 *   - map keys must be text strings ("not representable" otherwise); keys
 *     keep their order and duplicates are kept (es_value_get finds the first);
 *   - text must be valid UTF-8, as RFC 8949 requires.
 * Both modes bound nesting depth (ES_ERR_TOO_DEEP), check every length against
 * the remaining input before allocating, and allocate only from the arena (a
 * full arena is ES_ERR_LIMIT, running out of memory ES_ERR_NOMEM). Trailing
 * bytes after the one decoded item are not an error: *consumed tells where
 * the item ended. */
#ifndef ES_CBOR_H
#define ES_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/buf.h>
#include <es/status.h>
#include <es/value.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_CBOR_DEFAULT_DEPTH 64
#define ES_CBOR_MAX_DEPTH     1024 /* max_depth above this is ES_ERR_INVALID (stack safety) */

typedef struct es_cbor_options {
    bool strict;       /* strict DAG-CBOR (atproto) rules, see above */
    bool allow_floats; /* floats allowed (never in strict atproto mode unless set) */
    size_t max_depth;  /* nesting bound for arrays and maps; 0 means the default 64 */
    bool copy;         /* false: STRING/BYTES/LINK and map keys point into the input buffer
                          (zero copy; the tree is valid only while the buffer is);
                          true: copied into the arena (strings and keys NUL-terminated) */
} es_cbor_options;

/* Defaults: dag_cbor → strict, no floats; otherwise general CBOR with floats.
 * Both zero copy, default depth. */
ES_API void es_cbor_options_init(es_cbor_options *o, bool dag_cbor);

/* Decode ONE item from buf (a firehose frame is two items back to back: use
 * *consumed to find the second). *out is allocated in arena (owned by it);
 * consumed may be NULL. o NULL means es_cbor_options_init(.., true). */
ES_API es_status es_cbor_decode(const uint8_t *buf, size_t len, const es_cbor_options *o, es_arena *arena,
                         es_value **out, size_t *consumed);

/* Encode v, appending to out. Strict: maps written in DAG-CBOR key order
 * (duplicate keys refused), links as tag 42, floats only when allowed (as
 * 64-bit, finite), UINT refused; ES_ERR_ENCODE with a clear text when the
 * value cannot be written. General: maps in their own order, floats as
 * 64-bit. Both: shortest integer/length forms, definite lengths, nesting
 * bounded by max_depth (ES_ERR_TOO_DEEP). On error out may hold a partial
 * encoding past its original length. o NULL means strict. */
ES_API es_status es_cbor_encode(const es_value *v, const es_cbor_options *o, es_buf *out);

#ifdef __cplusplus
}
#endif
#endif
