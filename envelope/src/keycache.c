/* A bounded LRU cache of unwrapped data keys (and shred marks), indexed by the
 * entity's 32-byte hash. Key bytes live in one guarded, locked slab from
 * sodium_allocarray, wiped when an entry leaves; everything else is plain
 * bookkeeping. Not thread-safe: the keyring holds its lock around calls. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "envelope_internal.h"

#define NIL          (-1)
#define MAX_CAPACITY ((size_t)1 << 20)

typedef struct entry {
    uint8_t id[32];
    uint8_t kid[ES_KID_BYTES];
    esi_keycache_state state;
    int64_t loaded_ms;
    int32_t prev, next; /* LRU list, most recent at head */
    int32_t chain;      /* next entry in the same bucket, or next free slot */
} entry;

struct esi_keycache {
    size_t capacity, size, n_buckets;
    int64_t ttl_ms;
    entry *entries;
    int32_t *buckets;
    int32_t head, tail, free_list;
    uint8_t *keys; /* capacity * ES_KEY_BYTES, secure memory */
    esi_keycache_stats stats;
};

es_status esi_keycache_create(size_t capacity, int64_t ttl_ms, esi_keycache **out)
{
    *out = NULL;
    if (capacity == 0 || capacity > MAX_CAPACITY)
        return es_error(ES_ERR_INVALID, "key cache size %zu is not 1..%zu", capacity, MAX_CAPACITY);
    esi_keycache *c = esi_calloc(1, sizeof *c);
    if (c == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory creating the key cache");
    c->capacity = capacity;
    c->ttl_ms = ttl_ms;
    c->n_buckets = 1;
    while (c->n_buckets < 2 * capacity)
        c->n_buckets *= 2;
    c->entries = esi_calloc(capacity, sizeof *c->entries);
    c->buckets = esi_malloc(c->n_buckets * sizeof *c->buckets);
    c->keys = sodium_allocarray(capacity, ES_KEY_BYTES);
    if (c->entries == NULL || c->buckets == NULL || c->keys == NULL) {
        esi_keycache_destroy(c);
        return es_error(ES_ERR_NOMEM, "out of memory for a key cache of %zu entries", capacity);
    }
    for (size_t i = 0; i < c->n_buckets; i++)
        c->buckets[i] = NIL;
    for (size_t i = 0; i < capacity; i++)
        c->entries[i].chain = i + 1 < capacity ? (int32_t)(i + 1) : NIL;
    c->free_list = 0;
    c->head = c->tail = NIL;
    c->stats.capacity = capacity;
    *out = c;
    return ES_OK;
}

void esi_keycache_destroy(esi_keycache *c)
{
    if (c == NULL)
        return;
    sodium_free(c->keys); /* wipes before freeing */
    esi_free(c->entries);
    esi_free(c->buckets);
    esi_free(c);
}

static int32_t *bucket_of(esi_keycache *c, const uint8_t id[32])
{
    uint32_t h;
    memcpy(&h, id, sizeof h); /* the id is a hash already */
    return &c->buckets[h & (c->n_buckets - 1)];
}

static int32_t find(esi_keycache *c, const uint8_t id[32])
{
    for (int32_t i = *bucket_of(c, id); i != NIL; i = c->entries[i].chain)
        if (memcmp(c->entries[i].id, id, 32) == 0)
            return i;
    return NIL;
}

static void lru_unlink(esi_keycache *c, int32_t i)
{
    entry *e = &c->entries[i];
    if (e->prev != NIL)
        c->entries[e->prev].next = e->next;
    else
        c->head = e->next;
    if (e->next != NIL)
        c->entries[e->next].prev = e->prev;
    else
        c->tail = e->prev;
}

static void lru_push_front(esi_keycache *c, int32_t i)
{
    entry *e = &c->entries[i];
    e->prev = NIL;
    e->next = c->head;
    if (c->head != NIL)
        c->entries[c->head].prev = i;
    c->head = i;
    if (c->tail == NIL)
        c->tail = i;
}

static void remove_entry(esi_keycache *c, int32_t i)
{
    int32_t *link = bucket_of(c, c->entries[i].id);
    while (*link != i)
        link = &c->entries[*link].chain;
    *link = c->entries[i].chain;
    lru_unlink(c, i);
    sodium_memzero(c->keys + (size_t)i * ES_KEY_BYTES, ES_KEY_BYTES);
    memset(&c->entries[i], 0, sizeof c->entries[i]);
    c->entries[i].chain = c->free_list;
    c->free_list = i;
    c->size--;
}

bool esi_keycache_get(esi_keycache *c, const uint8_t id[32], esi_keycache_state *state,
                     uint8_t key[ES_KEY_BYTES], uint8_t kid[ES_KID_BYTES])
{
    int32_t i = find(c, id);
    if (i != NIL && c->ttl_ms >= 0 && esi_monotonic_ms() - c->entries[i].loaded_ms > c->ttl_ms) {
        remove_entry(c, i);
        c->stats.expired++;
        i = NIL;
    }
    if (i == NIL) {
        c->stats.misses++;
        return false;
    }
    c->stats.hits++;
    lru_unlink(c, i);
    lru_push_front(c, i);
    *state = c->entries[i].state;
    memcpy(key, c->keys + (size_t)i * ES_KEY_BYTES, ES_KEY_BYTES);
    memcpy(kid, c->entries[i].kid, ES_KID_BYTES);
    return true;
}

void esi_keycache_put(esi_keycache *c, const uint8_t id[32], esi_keycache_state state,
                     const uint8_t *key, const uint8_t *kid)
{
    int32_t i = find(c, id);
    if (i != NIL) {
        lru_unlink(c, i);
    } else {
        if (c->size == c->capacity) {
            remove_entry(c, c->tail);
            c->stats.evictions++;
        }
        i = c->free_list;
        c->free_list = c->entries[i].chain;
        memcpy(c->entries[i].id, id, 32);
        int32_t *b = bucket_of(c, id);
        c->entries[i].chain = *b;
        *b = i;
        c->size++;
    }
    entry *e = &c->entries[i];
    e->state = state;
    e->loaded_ms = esi_monotonic_ms();
    uint8_t *slot = c->keys + (size_t)i * ES_KEY_BYTES;
    if (key != NULL)
        memcpy(slot, key, ES_KEY_BYTES);
    else
        sodium_memzero(slot, ES_KEY_BYTES);
    if (kid != NULL)
        memcpy(e->kid, kid, ES_KID_BYTES);
    else
        memset(e->kid, 0, ES_KID_BYTES);
    lru_push_front(c, i);
}

void esi_keycache_stats_get(const esi_keycache *c, esi_keycache_stats *out)
{
    *out = c->stats;
    out->size = c->size;
}
