/* CAR v1 (Content Addressable aRchive) reading, as atproto uses it: a
 * varint-length DAG-CBOR header {roots, version: 1}, then varint-length
 * sections of a binary CID followed by the block's bytes.
 *
 * Parsing indexes the sections without copying or decoding blocks: each
 * block points into the caller's buffer. Blocks are hash-verified on demand
 * (es_car_verify), once each. Duplicate and unreferenced blocks are allowed. */
#ifndef ES_CAR_H
#define ES_CAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds for one CAR; 0 in a field means its default (in brackets). */
typedef struct es_car_limits {
    size_t max_bytes;  /* the whole CAR [2,000,000] */
    size_t max_blocks; /* sections [10,000] */
    size_t max_roots;  /* header roots [16] */
} es_car_limits;

typedef struct es_car_block {
    const uint8_t *cid; /* binary CID (no multibase prefix), in the CAR buffer */
    size_t cid_len;
    const uint8_t *data; /* the block's bytes, in the CAR buffer */
    size_t len;
    uint8_t state; /* private: whether it was verified */
} es_car_block;

typedef struct es_car {
    const uint8_t *const *roots; /* binary CIDs of the header's roots, in the buffer */
    const size_t *root_lens;
    size_t root_count;
    es_car_block *blocks; /* in section order */
    size_t count;
    void *index; /* private: lookup table by CID */
} es_car;

/* Parse a CAR held in `buf`. The index lives in `arena`; blocks and CIDs
 * point into `buf`, which must outlive the result. ES_ERR_DECODE for
 * malformed or truncated input, ES_ERR_LIMIT beyond `limits` (NULL:
 * defaults), ES_ERR_NOMEM when the arena is full; es_last_error() says where. */
ES_API es_status es_car_parse(const uint8_t *buf, size_t len, const es_car_limits *limits, es_arena *arena,
                       es_car *out);

/* The first block whose CID equals the binary `cid`, or NULL. */
ES_API es_car_block *es_car_find(const es_car *car, const uint8_t *cid, size_t cid_len);

/* Check that the block's bytes hash to its CID's digest (SHA-256 via
 * OpenSSL). ES_OK, or ES_ERR_DECODE with a clear message on a mismatch or an
 * unsupported CID. A verified block is not hashed again. */
ES_API es_status es_car_verify(es_car_block *block);

/* Whether es_car_verify has already succeeded on this block. */
ES_API bool es_car_block_verified(const es_car_block *block);

/* Fill in the defaults of the zero fields of `limits`. */
ES_API void es_car_limits_defaults(es_car_limits *limits);

#ifdef __cplusplus
}
#endif
#endif
