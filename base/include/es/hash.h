/* The library's string hash, for programs built on it: FNV-1a, 64 bits. It
 * is stable (the same value on every machine and version), fast on short
 * keys, and not keyed: fine for tables whose keys an attacker does not
 * choose freely, not a defence against hash flooding. */
#ifndef ES_HASH_H
#define ES_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FNV-1a 64 of data[0..len). */
ES_API uint64_t es_hash64(const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
