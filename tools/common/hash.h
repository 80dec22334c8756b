/* The tools' one string hash: FNV-1a, 64 bits (hash tables, grouping). */
#ifndef ES_CLI_HASH_H
#define ES_CLI_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t es_cli_fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

#endif
