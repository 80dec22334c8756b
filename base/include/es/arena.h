/* A bump allocator with a hard size limit: decoders allocate from one so that
 * hostile input can never make them allocate more than the caller allowed, and
 * a whole decoded value is freed (or reset for reuse) in one call. */
#ifndef ES_ARENA_H
#define ES_ARENA_H

#include <stddef.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_arena es_arena;

/* Create an arena that will never hold more than `limit` bytes in total
 * (0: 64 MiB). The caller owns it; free it with es_arena_destroy(). */
ES_API es_status es_arena_create(size_t limit, es_arena **out);

/* Forget every allocation but keep the first block for reuse. */
ES_API void es_arena_reset(es_arena *a);

/* Frees the arena and everything allocated from it. Accepts NULL. */
ES_API void es_arena_destroy(es_arena *a);

/* `size` bytes aligned for any type, or NULL when the limit would be exceeded
 * or memory is exhausted. The memory is uninitialised. */
ES_API void *es_arena_alloc(es_arena *a, size_t size);

/* The same, zero-filled, for `count` elements of `size` (overflow-checked). */
ES_API void *es_arena_calloc(es_arena *a, size_t count, size_t size);

/* A copy of `len` bytes plus a terminating NUL, or NULL. */
ES_API char *es_arena_strndup(es_arena *a, const char *s, size_t len);

/* Bytes handed out so far (for tests and statistics). */
ES_API size_t es_arena_used(const es_arena *a);

/* Why an allocation from `a` returned NULL: the first such failure since the
 * last call (or reset) becomes the thread's last error, prefixed with `what`,
 * and its status is returned: ES_ERR_NOMEM when memory ran out, ES_ERR_LIMIT
 * when the arena's limit would have been exceeded (or no failure was
 * recorded). Code that goes on allocating after a failure and checks once
 * still learns the first cause. */
ES_API es_status es_arena_error(es_arena *a, const char *what);

#ifdef __cplusplus
}
#endif
#endif
