/* Allocation inside the library (private): through the allocator of
 * es/alloc.h. Memory that nats.c or jansson allocated (json_dumps text,
 * header key arrays) is theirs, from libc: esi_free_foreign frees it. */
#ifndef ES_BASE_ALLOC_H
#define ES_BASE_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

#include <es/alloc.h>

void *esi_malloc(size_t size);
/* Zeroed; NULL on overflow of n * size too. */
void *esi_calloc(size_t n, size_t size);
void *esi_realloc(void *p, size_t size);
void esi_free(void *p);
char *esi_strdup(const char *s);
char *esi_strndup(const char *s, size_t n);

static inline void esi_free_foreign(void *p)
{
    free(p);
}

#endif
