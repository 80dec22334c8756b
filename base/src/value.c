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

static bool equal(const es_value *a, const es_value *b, bool ordered);

/* How many entries of `m` have `e`'s key. */
static size_t count_keys(const es_value *m, const es_value_entry *e)
{
    size_t n = 0;
    for (size_t i = 0; i < m->u.map.count; i++)
        n += same_bytes(e->key, e->key_len, m->u.map.entries[i].key, m->u.map.entries[i].key_len);
    return n;
}

/* How many entries of `m` have the key and a value equal to `e`'s. */
static size_t count_like(const es_value *m, const es_value_entry *e)
{
    size_t n = 0;
    for (size_t i = 0; i < m->u.map.count; i++) {
        const es_value_entry *f = &m->u.map.entries[i];
        if (same_bytes(e->key, e->key_len, f->key, f->key_len) && equal(&f->value, &e->value, false))
            n++;
    }
    return n;
}

/* Maps of as many entries, in any order. Keys may repeat (general CBOR and
 * MessagePack keep them), so the entries are compared as multisets: each
 * entry of `a` is met as often in `b` as in `a` — then nothing of `b` is
 * left over, and the relation is symmetric and reflexive (a lookup of the
 * first entry with a key is neither). */
static bool same_entries(const es_value *a, const es_value *b)
{
    for (size_t i = 0; i < a->u.map.count; i++) {
        const es_value_entry *e = &a->u.map.entries[i];
        const es_value *first = lookup_n(b, e->key, e->key_len);
        if (first == NULL)
            return false;
        /* the common case, a key once in each: one comparison */
        if (count_keys(a, e) == 1 && count_keys(b, e) == 1) {
            if (!equal(&e->value, first, false))
                return false;
        } else if (count_like(a, e) != count_like(b, e)) {
            return false;
        }
    }
    return true;
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
        if (!ordered)
            return same_entries(a, b);
        for (size_t i = 0; i < a->u.map.count; i++) {
            const es_value_entry *e = &a->u.map.entries[i], *f = &b->u.map.entries[i];
            if (!same_bytes(e->key, e->key_len, f->key, f->key_len) ||
                !equal(&e->value, &f->value, true))
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
