/* The tools' string hash: the library's FNV-1a, 64 bits (hash tables, grouping). */
#ifndef ES_CLI_HASH_H
#define ES_CLI_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <es/hash.h>

/* The library's hash (es/hash.h). */
static inline uint64_t es_cli_fnv1a(const void *data, size_t len)
{
    return es_hash64(data, len);
}

#endif
