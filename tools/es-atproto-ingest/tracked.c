/* The ingester's tracked set (tracked.h): a hash set of DIDs owned by the
 * tick thread (readers take the lock), fed by the public watch through a
 * bounded queue. The watch thread never waits on the tick thread: when the
 * queue is full it drops what it holds and asks for a relist, which the
 * next poll does, so a burst of thousands of adds (or a large set at
 * start) costs one listing, not unbounded memory. */
#define _POSIX_C_SOURCE 200809L
#include "tracked.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <es/atproto_tracked.h>

#include "hash.h"

#define BUCKETS_MIN 1024

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    uint32_t len;
    uint32_t listed; /* the relist that last saw it */
    char did[];      /* len bytes + NUL */
} entry;

/* A chained hash set of DIDs that grows by doubling. */
typedef struct did_set {
    entry **buckets;
    size_t nbuckets, count;
} did_set;

/* One queued change (the watch's callback copies the DID). */
typedef struct change {
    bool added;
    size_t len;
    char did[ES_ATP_TRACKED_DID_MAX + 1];
} change;

struct tracked {
    es_atp_tracked *api;
    es_atp_tracked_watch *watch;
    size_t max;
    pthread_mutex_t mu; /* the queue, the set, the stats */
    change *queue;      /* a ring of TRACKED_QUEUE_MAX */
    size_t head, queued;
    bool relist; /* the queue overflowed: list the bucket at the next poll */
    uint32_t relist_gen; /* which relist is running (the tick thread's) */
    did_set set;
    tracked_stats st;
};

/* ---- the set ------------------------------------------------------------------- */

static entry **set_slot(did_set *s, const char *did, size_t len, uint64_t h)
{
    entry **p = &s->buckets[h & (s->nbuckets - 1)];
    while (*p != NULL && !((*p)->hash == h && (*p)->len == len && memcmp((*p)->did, did, len) == 0))
        p = &(*p)->next;
    return p;
}

static entry *set_find(did_set *s, const char *did, size_t len)
{
    return s->buckets == NULL ? NULL : *set_slot(s, did, len, es_cli_fnv1a(did, len));
}

static bool set_has(did_set *s, const char *did, size_t len)
{
    return set_find(s, did, len) != NULL;
}

/* Doubles the buckets when there are as many entries: false when out of
 * memory (the set stays as it was, only slower). */
static bool set_grow(did_set *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : BUCKETS_MIN;
    entry **b = calloc(n, sizeof *b);
    if (b == NULL)
        return s->buckets != NULL;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (entry *e = s->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    return true;
}

/* Adds a DID not in the set (of at most ES_ATP_TRACKED_DID_MAX bytes):
 * NULL when out of memory. */
static entry *set_add(did_set *s, const char *did, size_t len)
{
    if ((s->buckets == NULL || s->count >= s->nbuckets) && !set_grow(s))
        return NULL;
    entry *e = malloc(sizeof *e + len + 1);
    if (e == NULL)
        return NULL;
    e->hash = es_cli_fnv1a(did, len);
    e->len = (uint32_t)len;
    e->listed = 0;
    memcpy(e->did, did, len);
    e->did[len] = '\0';
    entry **p = &s->buckets[e->hash & (s->nbuckets - 1)];
    e->next = *p;
    *p = e;
    s->count++;
    return e;
}

/* Removes a DID: false when it was not there. */
static bool set_remove(did_set *s, const char *did, size_t len)
{
    if (s->buckets == NULL)
        return false;
    entry **p = set_slot(s, did, len, es_cli_fnv1a(did, len));
    entry *e = *p;
    if (e == NULL)
        return false;
    *p = e->next;
    free(e);
    s->count--;
    return true;
}

static void set_free(did_set *s)
{
    for (size_t i = 0; i < s->nbuckets; i++)
        for (entry *e = s->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    free(s->buckets);
    memset(s, 0, sizeof *s);
}

/* ---- the watch's side ------------------------------------------------------------ */

static void on_change(const char *did, size_t len, bool added, void *closure)
{
    tracked *t = closure;
    pthread_mutex_lock(&t->mu);
    if (t->queued == TRACKED_QUEUE_MAX) {
        t->queued = 0; /* the relist sees what these said, and more */
        t->relist = true;
    }
    if (!t->relist && len <= ES_ATP_TRACKED_DID_MAX) {
        change *c = &t->queue[(t->head + t->queued) % TRACKED_QUEUE_MAX];
        c->added = added;
        c->len = len;
        memcpy(c->did, did, len);
        c->did[len] = '\0';
        t->queued++;
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- the tick thread's side ------------------------------------------------------- */

/* Applies one change to the set (under mu): whether the set changed. */
static bool apply(tracked *t, const char *did, size_t len, bool added)
{
    if (!added)
        return set_remove(&t->set, did, len);
    if (set_has(&t->set, did, len))
        return false;
    if (t->set.count >= t->max || set_add(&t->set, did, len) == NULL) {
        t->st.over_limit++;
        return false;
    }
    return true;
}

typedef struct relist_ctx {
    tracked *t;
    tracked_fn fn;
    void *ctx;
} relist_ctx;

/* A DID the bucket holds: marked as listed, handed over when new. */
static es_status relist_one(const char *did, size_t len, int64_t added_ns, void *closure)
{
    (void)added_ns;
    relist_ctx *r = closure;
    tracked *t = r->t;
    pthread_mutex_lock(&t->mu);
    bool added = apply(t, did, len, true);
    entry *e = set_find(&t->set, did, len);
    if (e != NULL)
        e->listed = t->relist_gen;
    pthread_mutex_unlock(&t->mu);
    if (added && r->fn != NULL)
        r->fn(r->ctx, did, len, true);
    return ES_OK;
}

/* After an overflow: the bucket listed again; DIDs it has that the set has
 * not are added, DIDs the set has that it did not list are removed. */
static es_status relist(tracked *t, tracked_fn fn, void *ctx)
{
    relist_ctx r = {.t = t, .fn = fn, .ctx = ctx};
    size_t skipped = 0;
    t->relist_gen++;
    es_status s = es_atp_tracked_list(t->api, relist_one, &r, &skipped);
    pthread_mutex_lock(&t->mu);
    t->st.relists++;
    t->st.skipped += skipped;
    pthread_mutex_unlock(&t->mu);
    /* Only the tick thread changes the set: walking it unlocked is safe. */
    for (size_t i = 0; s == ES_OK && i < t->set.nbuckets; i++) {
        for (entry *e = t->set.buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            if (e->listed == t->relist_gen)
                continue;
            char did[ES_ATP_TRACKED_DID_MAX + 1];
            size_t len = e->len;
            memcpy(did, e->did, len + 1);
            pthread_mutex_lock(&t->mu);
            set_remove(&t->set, did, len); /* frees e */
            pthread_mutex_unlock(&t->mu);
            if (fn != NULL)
                fn(ctx, did, len, false);
        }
    }
    return s;
}

es_status tracked_poll(tracked *t, tracked_fn fn, void *ctx)
{
    if (t == NULL)
        return es_error(ES_ERR_INVALID, "tracked_poll: no handle");
    pthread_mutex_lock(&t->mu);
    bool again = t->relist;
    t->relist = false;
    pthread_mutex_unlock(&t->mu);
    /* Changes queued during the listing are newer than it, or already in
     * it (applying them again changes nothing): they follow. */
    es_status s = again ? relist(t, fn, ctx) : ES_OK;
    if (s != ES_OK) {
        pthread_mutex_lock(&t->mu);
        t->relist = true; /* try again at the next poll */
        pthread_mutex_unlock(&t->mu);
        return s;
    }
    for (;;) {
        change c = {0};
        pthread_mutex_lock(&t->mu);
        bool have = t->queued > 0 && !t->relist;
        if (have) {
            c = t->queue[t->head];
            t->head = (t->head + 1) % TRACKED_QUEUE_MAX;
            t->queued--;
        }
        bool changed = have && apply(t, c.did, c.len, c.added);
        pthread_mutex_unlock(&t->mu);
        if (!have)
            break;
        if (changed && fn != NULL)
            fn(ctx, c.did, c.len, c.added);
    }
    return ES_OK;
}

bool tracked_contains(tracked *t, const char *did, size_t len)
{
    if (t == NULL)
        return false;
    pthread_mutex_lock(&t->mu);
    bool yes = set_has(&t->set, did, len);
    pthread_mutex_unlock(&t->mu);
    return yes;
}

size_t tracked_count(tracked *t)
{
    if (t == NULL)
        return 0;
    pthread_mutex_lock(&t->mu);
    size_t n = t->set.count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

void tracked_get_stats(tracked *t, tracked_stats *out)
{
    memset(out, 0, sizeof *out);
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    *out = t->st;
    pthread_mutex_unlock(&t->mu);
    out->skipped += es_atp_tracked_watch_skipped(t->watch);
}

/* ---- the handle ------------------------------------------------------------------- */

es_status tracked_open(es_store *store, size_t max_tracked, tracked **out)
{
    if (out == NULL || store == NULL)
        return es_error(ES_ERR_INVALID, "tracked_open: store and out are required");
    *out = NULL;
    tracked *t = calloc(1, sizeof *t);
    if (t == NULL || (t->queue = calloc(TRACKED_QUEUE_MAX, sizeof *t->queue)) == NULL) {
        free(t);
        return es_error(ES_ERR_NOMEM, "out of memory");
    }
    t->max = max_tracked ? max_tracked : TRACKED_MAX_DEFAULT;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t->queue);
        free(t);
        return es_error(ES_ERR_NOMEM, "cannot create a lock");
    }
    es_status s = es_atp_tracked_open(store, &t->api);
    if (s == ES_OK)
        s = es_atp_tracked_watch_start(t->api, on_change, t, &t->watch);
    if (s != ES_OK) {
        tracked_close(t);
        return s;
    }
    *out = t;
    return ES_OK;
}

void tracked_close(tracked *t)
{
    if (t == NULL)
        return;
    es_atp_tracked_watch_destroy(t->watch);
    es_atp_tracked_destroy(t->api);
    set_free(&t->set);
    pthread_mutex_destroy(&t->mu);
    free(t->queue);
    free(t);
}
