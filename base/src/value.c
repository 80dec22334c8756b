#include <es/value.h>

#include <string.h>

const es_value *es_value_get(const es_value *map, const char *key)
{
    if (map == NULL || map->kind != ES_VALUE_MAP || key == NULL)
        return NULL;
    size_t len = strlen(key);
    for (size_t i = 0; i < map->u.map.count; i++) {
        const es_value_entry *e = &map->u.map.entries[i];
        if (e->key_len == len && memcmp(e->key, key, len) == 0)
            return &e->value;
    }
    return NULL;
}

bool es_value_is_string(const es_value *v, const char *s)
{
    size_t len = strlen(s);
    return v != NULL && v->kind == ES_VALUE_STRING && v->u.str.len == len &&
           memcmp(v->u.str.ptr, s, len) == 0;
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static const es_value *lookup_n(const es_value *map, const char *key, size_t len)
{
    for (size_t i = 0; i < map->u.map.count; i++) {
        const es_value_entry *e = &map->u.map.entries[i];
        if (same_bytes(e->key, e->key_len, key, len))
            return &e->value;
    }
    return NULL;
}

/* The entry of `b` matching the i-th of `a`: the same place when map order
 * counts, else the same key anywhere. */
static const es_value *counterpart(const es_value *a, const es_value *b, size_t i, bool ordered)
{
    const es_value_entry *e = &a->u.map.entries[i];
    if (!ordered)
        return lookup_n(b, e->key, e->key_len);
    const es_value_entry *f = &b->u.map.entries[i];
    return same_bytes(e->key, e->key_len, f->key, f->key_len) ? &f->value : NULL;
}

static bool equal(const es_value *a, const es_value *b, bool ordered)
{
    if (a == NULL || b == NULL || a->kind != b->kind)
        return a == b;
    switch (a->kind) {
    case ES_VALUE_NULL: return true;
    case ES_VALUE_BOOL: return a->u.b == b->u.b;
    case ES_VALUE_INT: return a->u.i == b->u.i;
    case ES_VALUE_UINT: return a->u.u == b->u.u;
    case ES_VALUE_FLOAT: return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0;
    case ES_VALUE_STRING: return same_bytes(a->u.str.ptr, a->u.str.len, b->u.str.ptr, b->u.str.len);
    case ES_VALUE_BYTES:
    case ES_VALUE_LINK:
        return same_bytes(a->u.bytes.ptr, a->u.bytes.len, b->u.bytes.ptr, b->u.bytes.len);
    case ES_VALUE_ARRAY:
        if (a->u.array.count != b->u.array.count)
            return false;
        for (size_t i = 0; i < a->u.array.count; i++)
            if (!equal(&a->u.array.items[i], &b->u.array.items[i], ordered))
                return false;
        return true;
    case ES_VALUE_MAP:
        if (a->u.map.count != b->u.map.count)
            return false;
        for (size_t i = 0; i < a->u.map.count; i++) {
            const es_value *other = counterpart(a, b, i, ordered);
            if (other == NULL || !equal(&a->u.map.entries[i].value, other, ordered))
                return false;
        }
        return true;
    }
    return false;
}

bool es_value_equal(const es_value *a, const es_value *b)
{
    return equal(a, b, false);
}

bool es_value_identical(const es_value *a, const es_value *b)
{
    return equal(a, b, true);
}

static es_value *new_kind(es_arena *arena, es_value_kind kind)
{
    es_value *v = es_arena_calloc(arena, 1, sizeof *v);
    if (v != NULL)
        v->kind = kind;
    return v;
}

es_value *es_value_new_null(es_arena *arena)
{
    return new_kind(arena, ES_VALUE_NULL);
}

es_value *es_value_new_bool(es_arena *arena, bool b)
{
    es_value *v = new_kind(arena, ES_VALUE_BOOL);
    if (v != NULL)
        v->u.b = b;
    return v;
}

es_value *es_value_new_int(es_arena *arena, int64_t i)
{
    es_value *v = new_kind(arena, ES_VALUE_INT);
    if (v != NULL)
        v->u.i = i;
    return v;
}

es_value *es_value_new_string(es_arena *arena, const char *s, size_t len)
{
    es_value *v = new_kind(arena, ES_VALUE_STRING);
    char *copy = v ? es_arena_strndup(arena, s, len) : NULL;
    if (copy == NULL)
        return NULL;
    v->u.str.ptr = copy;
    v->u.str.len = len;
    return v;
}

es_value *es_value_new_bytes(es_arena *arena, const void *p, size_t len)
{
    es_value *v = new_kind(arena, ES_VALUE_BYTES);
    uint8_t *copy = v ? es_arena_alloc(arena, len) : NULL;
    if (copy == NULL)
        return NULL;
    if (len)
        memcpy(copy, p, len);
    v->u.bytes.ptr = copy;
    v->u.bytes.len = len;
    return v;
}

es_value *es_value_new_array(es_arena *arena, size_t count)
{
    es_value *v = new_kind(arena, ES_VALUE_ARRAY);
    es_value *items = v ? es_arena_calloc(arena, count, sizeof *items) : NULL;
    if (items == NULL)
        return NULL;
    v->u.array.items = items;
    v->u.array.count = count;
    return v;
}

es_value *es_value_new_map(es_arena *arena, size_t count)
{
    es_value *v = new_kind(arena, ES_VALUE_MAP);
    es_value_entry *entries = v ? es_arena_calloc(arena, count, sizeof *entries) : NULL;
    if (entries == NULL)
        return NULL;
    v->u.map.entries = entries;
    v->u.map.count = count;
    return v;
}
