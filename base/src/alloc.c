/* The library's allocator (es/alloc.h, base/alloc.h). */
#include "base/alloc.h"

#include <stdint.h>
#include <string.h>

#include "base/internal.h"

static void *libc_malloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}

static void *libc_realloc(void *p, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(p, size);
}

static void libc_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static es_allocator current = {libc_malloc, libc_realloc, libc_free, NULL};

es_status es_allocator_set(const es_allocator *a)
{
    if (a == NULL) {
        current = (es_allocator){libc_malloc, libc_realloc, libc_free, NULL};
        return ES_OK;
    }
    if (a->malloc == NULL || a->realloc == NULL || a->free == NULL)
        return es_error(ES_ERR_INVALID, "es_allocator_set: malloc, realloc and free are required");
    current = *a;
    return ES_OK;
}

void *esi_malloc(size_t size)
{
    return current.malloc(size ? size : 1, current.ctx);
}

void *esi_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    void *p = esi_malloc(bytes);
    if (p != NULL && bytes > 0)
        memset(p, 0, bytes);
    return p;
}

void *esi_realloc(void *p, size_t size)
{
    return current.realloc(p, size ? size : 1, current.ctx);
}

void esi_free(void *p)
{
    if (p != NULL)
        current.free(p, current.ctx);
}

char *esi_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = esi_malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *esi_strdup(const char *s)
{
    return esi_strndup(s, SIZE_MAX);
}

void *es_malloc(size_t size)
{
    return esi_malloc(size);
}

void *es_calloc(size_t n, size_t size)
{
    return esi_calloc(n, size);
}

void *es_realloc(void *p, size_t size)
{
    return esi_realloc(p, size);
}

void es_free(void *p)
{
    esi_free(p);
}
