#include <es/arena.h>

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"

#define ARENA_DEFAULT_LIMIT ((size_t)64 << 20)
#define ARENA_FIRST_BLOCK   ((size_t)4096)

typedef struct block {
    struct block *next;
    size_t cap;
    size_t used;
    alignas(max_align_t) unsigned char data[];
} block;

/* Why an allocation returned NULL. */
typedef enum arena_failure { FAILED_NOT, FAILED_LIMIT, FAILED_MEMORY } arena_failure;

struct es_arena {
    block *head;          /* the block being filled; older ones follow */
    size_t limit;         /* bound on the sum of all block capacities */
    size_t total;         /* sum of all block capacities */
    size_t used;          /* bytes handed out */
    arena_failure failed; /* the first NULL not yet reported (es_arena_error) */
};

es_status es_arena_create(size_t limit, es_arena **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_arena_create: out is NULL");
    *out = NULL;
    es_arena *a = esi_calloc(1, sizeof *a);
    if (a == NULL)
        return es_error(ES_ERR_NOMEM, "es_arena_create: out of memory");
    a->limit = limit ? limit : ARENA_DEFAULT_LIMIT;
    *out = a;
    return ES_OK;
}

static void free_blocks(block *b)
{
    while (b != NULL) {
        block *next = b->next;
        esi_free(b);
        b = next;
    }
}

void es_arena_reset(es_arena *a)
{
    if (a == NULL)
        return;
    a->failed = FAILED_NOT;
    if (a->head == NULL)
        return;
    /* Keep the newest (largest) block: a reused arena then rarely mallocs. */
    free_blocks(a->head->next);
    a->head->next = NULL;
    a->head->used = 0;
    a->total = a->head->cap;
    a->used = 0;
}

void es_arena_destroy(es_arena *a)
{
    if (a == NULL)
        return;
    free_blocks(a->head);
    esi_free(a);
}

static size_t align_up(size_t n)
{
    const size_t al = alignof(max_align_t);
    return (n + al - 1) & ~(al - 1);
}

/* NULL, remembering why (the first failure is the one reported). */
static void *fail(es_arena *a, arena_failure why)
{
    if (a != NULL && a->failed == FAILED_NOT)
        a->failed = why;
    return NULL;
}

static block *grow(es_arena *a, size_t need)
{
    size_t cap = a->head ? a->head->cap * 2 : ARENA_FIRST_BLOCK;
    if (cap < need)
        cap = need;
    if (cap > a->limit - a->total)
        cap = a->limit - a->total;
    if (cap < need)
        return fail(a, FAILED_LIMIT);
    block *b = esi_malloc(sizeof *b + cap);
    if (b == NULL)
        return fail(a, FAILED_MEMORY);
    b->next = a->head;
    b->cap = cap;
    b->used = 0;
    a->head = b;
    a->total += cap;
    return b;
}

void *es_arena_alloc(es_arena *a, size_t size)
{
    if (a == NULL || size > a->limit || size > SIZE_MAX - alignof(max_align_t))
        return fail(a, FAILED_LIMIT);
    size_t need = align_up(size ? size : 1);
    block *b = a->head;
    if (b == NULL || b->cap - b->used < need) {
        b = grow(a, need);
        if (b == NULL)
            return NULL;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *es_arena_calloc(es_arena *a, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return fail(a, FAILED_LIMIT);
    void *p = es_arena_alloc(a, count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

char *es_arena_strndup(es_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return fail(a, FAILED_LIMIT);
    char *p = es_arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

es_status es_arena_error(es_arena *a, const char *what)
{
    arena_failure why = a != NULL ? a->failed : FAILED_LIMIT;
    if (a != NULL)
        a->failed = FAILED_NOT;
    if (why == FAILED_MEMORY)
        return es_error(ES_ERR_NOMEM, "%s: out of memory", what);
    return es_error(ES_ERR_LIMIT, "%s: arena limit reached", what);
}

size_t es_arena_used(const es_arena *a)
{
    return a ? a->used : 0;
}
