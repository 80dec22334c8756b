/* MessagePack <-> the common value model.
 *
 * Mapping: nil, bool, int (INT, or UINT above INT64_MAX), float32/float64
 * (FLOAT; float32 widened), str (STRING, must be valid UTF-8), bin (BYTES),
 * array, map (keys must be str: other keys are not representable), and ext
 * type 42 holding one binary CID (LINK) — the same number DAG-CBOR uses for
 * its CID tag. Other ext types (timestamps included) are refused as not
 * representable. The encoder writes the shortest forms (msgpack-c's packer). */
#ifndef ES_MSGPACK_H
#define ES_MSGPACK_H

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

#define ES_MSGPACK_EXT_LINK      42
#define ES_MSGPACK_DEFAULT_DEPTH 64

/* Append the MessagePack form of v to out. max_depth 0 means the default. */
ES_API es_status es_msgpack_encode(const es_value *v, size_t max_depth, es_buf *out);

/* Decode one item from buf into arena (strings and bytes copied, strings
 * NUL-terminated); *consumed (may be NULL) is where it ended. Lengths are
 * checked against the input before allocating; nesting is bounded by
 * max_depth (0: default 64, at most 1024). */
ES_API es_status es_msgpack_decode(const uint8_t *buf, size_t len, size_t max_depth, es_arena *arena,
                            es_value **out, size_t *consumed);

#ifdef __cplusplus
}
#endif
#endif
