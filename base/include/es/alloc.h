/* The library's allocator. Every allocation the library makes for itself
 * goes through it (not those made inside nats.c, jansson, zstd or
 * libsodium), so that an application can account for memory or inject
 * failures: the library's own tests fail the Nth allocation to prove that
 * every out-of-memory path returns ES_ERR_NOMEM and leaks nothing. */
#ifndef ES_ALLOC_H
#define ES_ALLOC_H

#include <stddef.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_allocator {
    void *(*malloc)(size_t size, void *ctx);
    void *(*realloc)(void *p, size_t size, void *ctx); /* p may be NULL */
    void (*free)(void *p, void *ctx);                  /* p may be NULL */
    void *ctx;
} es_allocator;

/* Replaces the allocator (copied); NULL restores libc's. Set it before any
 * other es_ call and never while the library holds memory: what one
 * allocator gave, the other would free. ES_ERR_INVALID when a call is
 * missing. */
ES_API es_status es_allocator_set(const es_allocator *a);

/* Memory from the allocator above, for code built on the library that must
 * allocate as it does (libes-atproto does: a shared library sees none of
 * libes's internals). es_calloc zeroes, and returns NULL when n * size
 * overflows; es_realloc takes NULL; es_free accepts NULL. */
ES_API void *es_malloc(size_t size);
ES_API void *es_calloc(size_t n, size_t size);
ES_API void *es_realloc(void *p, size_t size);
ES_API void es_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
