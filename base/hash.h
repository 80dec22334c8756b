/* The library's one non-cryptographic hash (private): FNV-1a, in 32 and 64
 * bits. 32 bits is what nats-server's partition() uses, so projections
 * partition entities the way the server does; 64 bits keys the sink's
 * per-key order, where a collision only adds an ordering constraint. */
#ifndef ES_BASE_HASH_H
#define ES_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ESI_FNV32_OFFSET 2166136261u
#define ESI_FNV64_OFFSET 0xcbf29ce484222325ULL

/* FNV-1a over p[0..n), continuing from h (start with the offset above), so
 * that several pieces hash as their concatenation. */
uint32_t esi_fnv1a32(const void *p, size_t n, uint32_t h);
uint64_t esi_fnv1a64(const void *p, size_t n, uint64_t h);

#endif
