/* Counters by name (counts.h). */
#include "counts.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

static tool_count *slot(tool_count *slots, size_t cap, const char *name, size_t len)
{
    size_t i = (size_t)es_cli_fnv1a(name, len) & (cap - 1);
    while (slots[i].name != NULL &&
           !(strncmp(slots[i].name, name, len) == 0 && slots[i].name[len] == '\0'))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static es_status grow(tool_counts *c)
{
    size_t cap = c->cap ? c->cap * 2 : 64;
    tool_count *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].name != NULL)
            *slot(slots, cap, c->slots[i].name, strlen(c->slots[i].name)) = c->slots[i];
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return ES_OK;
}

es_status tool_counts_add(tool_counts *c, const char *name, size_t len, uint64_t a, uint64_t b)
{
    tool_count *e = c->cap > 0 ? slot(c->slots, c->cap, name, len) : NULL;
    if (e == NULL || e->name == NULL) {
        if (c->n >= TOOL_COUNTS_MAX) {
            c->overflow_a += a;
            c->overflow_b += b;
            c->overflow_names++;
            return ES_OK;
        }
        if ((c->n + 1) * 2 > c->cap) {
            es_status s = grow(c);
            if (s != ES_OK)
                return s;
        }
        e = slot(c->slots, c->cap, name, len);
        e->name = strndup(name, len);
        if (e->name == NULL)
            return es_error(ES_ERR_NOMEM, "out of memory");
        c->n++;
    }
    e->a += a;
    e->b += b;
    return ES_OK;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(((const tool_count *)x)->name, ((const tool_count *)y)->name);
}

tool_count *tool_counts_sorted(const tool_counts *c)
{
    if (c->n == 0)
        return NULL;
    tool_count *out = malloc(c->n * sizeof *out);
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].name != NULL)
            out[k++] = c->slots[i];
    qsort(out, k, sizeof *out, by_name);
    return out;
}

void tool_counts_free(tool_counts *c)
{
    for (size_t i = 0; i < c->cap; i++)
        free(c->slots[i].name);
    free(c->slots);
    memset(c, 0, sizeof *c);
}
