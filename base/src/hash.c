/* FNV-1a (base/hash.h). */
#include "base/hash.h"

#include <es/hash.h>

#define FNV32_PRIME 16777619u
#define FNV64_PRIME 0x100000001b3ULL

uint32_t esi_fnv1a32(const void *p, size_t n, uint32_t h)
{
    for (const unsigned char *b = p, *end = b + n; b < end; b++)
        h = (h ^ *b) * FNV32_PRIME;
    return h;
}

uint64_t esi_fnv1a64(const void *p, size_t n, uint64_t h)
{
    for (const unsigned char *b = p, *end = b + n; b < end; b++)
        h = (h ^ *b) * FNV64_PRIME;
    return h;
}

uint64_t es_hash64(const void *data, size_t len)
{
    return esi_fnv1a64(data, len, ESI_FNV64_OFFSET);
}
