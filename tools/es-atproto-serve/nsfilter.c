/* Server-side wantedCollections (nsfilter.h): the entity-type index followed
 * once per server, each subscriber's watch given the wanted collections'
 * filters and widened as new ones appear. */
#include "nsfilter.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPO_TYPE NS_REPO_TYPE

/* A list of entity types (NUL-terminated copies). */
typedef struct type_list {
    char **v;
    size_t n, cap;
} type_list;

/* A watch or a reader being widened: the types it reads (besides "repo"),
 * or all. */
typedef struct reg {
    struct reg *next;
    es_watch *w;     /* one of the two */
    es_reader *rd;
    ns_wants_fn wants;
    void *arg;
    uint64_t start_seq; /* its options' after_seq: where a new type is read from */
    type_list reads;
    bool all; /* past ES_FILTERS_MAX: every event */
} reg;

struct ns_index {
    es_store *st;
    es_entity_types *types;
    es_entity_types_watch *tw;
    pthread_mutex_t mu; /* known, regs; held while watches are widened */
    type_list known;    /* every type of the index, bounded */
    reg *regs;
};

/* ---- lists ------------------------------------------------------------------ */

static bool list_has(const type_list *l, const char *type)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], type) == 0)
            return true;
    return false;
}

/* false when out of memory or past the bound (the type is then not added) */
static bool list_add(type_list *l, const char *type)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = cap <= ES_ENTITY_TYPES_REMEMBERED ? realloc(l->v, cap * sizeof *v) : NULL;
        if (v == NULL)
            return false;
        l->v = v;
        l->cap = cap;
    }
    if ((l->v[l->n] = strdup(type)) == NULL)
        return false;
    l->n++;
    return true;
}

static void list_free(type_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

bool ns_collection_of(const char *type, char out[ES_ENTITY_TYPE_MAX + 1])
{
    size_t len = strlen(type);
    if (strcmp(type, REPO_TYPE) == 0 || len > ES_ENTITY_TYPE_MAX)
        return false;
    for (size_t i = 0; i <= len; i++)
        out[i] = type[i] == '_' ? '.' : type[i];
    return true;
}

bool ns_entity_type_of(const char *nsid, size_t len, char out[ES_ENTITY_TYPE_MAX + 1])
{
    if (len == 0 || len > ES_ENTITY_TYPE_MAX || memchr(nsid, '_', len) != NULL)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = nsid[i] == '.' ? '_' : nsid[i];
    out[len] = '\0';
    return true;
}

static bool wanted(const reg *r, const char *type)
{
    char nsid[ES_ENTITY_TYPE_MAX + 1];
    return ns_collection_of(type, nsid) && r->wants(nsid, r->arg);
}

/* ---- widening ----------------------------------------------------------------- */

static es_status add_filter(reg *r, const es_filter *f, uint64_t after_seq)
{
    return r->w != NULL ? es_watch_add_filters(r->w, f, 1, after_seq)
                        : es_reader_add_filters(r->rd, f, 1, after_seq);
}

/* A type `r` wants and does not read yet: added to its watch, read after
 * `after_seq`; past the bound, the watch reads everything from there. */
static void widen(reg *r, const char *type, uint64_t after_seq)
{
    if (r->all || list_has(&r->reads, type) || !wanted(r, type))
        return;
    es_filter f;
    es_filter_init(&f);
    f.entity_type = type;
    es_status s = add_filter(r, &f, after_seq);
    if (s == ES_ERR_LIMIT) {
        es_filter_init(&f); /* every event: the subscriber's filter sorts */
        s = add_filter(r, &f, after_seq);
        r->all = s == ES_OK;
    } else if (s == ES_OK && !list_add(&r->reads, type)) {
        s = ES_ERR_NOMEM;
    }
    if (s != ES_OK)
        fprintf(stderr, "es-atproto-serve: a subscriber's watch misses collection type %s: %s\n",
                type, es_last_error());
}

static void on_type(const char *tenant, const char *type, void *closure)
{
    ns_index *ix = closure;
    (void)tenant;
    pthread_mutex_lock(&ix->mu);
    if (!list_has(&ix->known, type) && list_add(&ix->known, type))
        for (reg *r = ix->regs; r != NULL; r = r->next)
            widen(r, type, r->start_seq);
    pthread_mutex_unlock(&ix->mu);
}

/* ---- the index ---------------------------------------------------------------- */

static es_status count_one(const char *tenant, const char *type, void *closure)
{
    (void)tenant;
    (void)type;
    ++*(uint64_t *)closure;
    return ES_OK;
}

/* A store written before the index (or by a writer that does not keep it):
 * its types from the stream's subjects. */
static es_status rebuild_when_empty(ns_index *ix)
{
    uint64_t listed = 0, added = 0;
    es_store_info info;
    es_status s = es_entity_types_list(ix->types, count_one, &listed);
    if (s != ES_OK || listed > 0)
        return s;
    if ((s = es_store_info_get(ix->st, &info)) != ES_OK || info.events == 0)
        return s;
    s = es_entity_types_rebuild(ix->types, &added);
    if (s == ES_OK)
        fprintf(stderr, "es-atproto-serve: entity-type index rebuilt from the stream: %" PRIu64
                        " types\n", added);
    return s;
}

es_status ns_index_open(es_store *st, ns_index **out)
{
    *out = NULL;
    ns_index *ix = calloc(1, sizeof *ix);
    if (ix == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    ix->st = st;
    pthread_mutex_init(&ix->mu, NULL);
    es_status s = es_entity_types_open(st, &ix->types);
    if (s == ES_OK)
        s = rebuild_when_empty(ix);
    if (s == ES_OK)
        s = es_entity_types_watch_start(ix->types, on_type, ix, &ix->tw);
    if (s != ES_OK) {
        ns_index_close(ix);
        return s;
    }
    *out = ix;
    return ES_OK;
}

static void reg_free(reg *r)
{
    list_free(&r->reads);
    free(r);
}

void ns_index_close(ns_index *ix)
{
    if (ix == NULL)
        return;
    es_entity_types_watch_destroy(ix->tw);
    es_entity_types_destroy(ix->types);
    for (reg *r = ix->regs, *next; r != NULL; r = next) {
        next = r->next;
        reg_free(r);
    }
    list_free(&ix->known);
    pthread_mutex_destroy(&ix->mu);
    free(ix);
}

/* ---- watches ------------------------------------------------------------------- */

/* The filters of the types `r` wants among those known (and "repo"), into
 * r->reads; false past ES_FILTERS_MAX. */
static bool initial_filters(ns_index *ix, reg *r, es_filter f[ES_FILTERS_MAX], size_t *n)
{
    es_filter_init(&f[0]);
    f[0].entity_type = REPO_TYPE;
    *n = 1;
    for (size_t i = 0; i < ix->known.n; i++) {
        if (!wanted(r, ix->known.v[i]))
            continue;
        if (*n == ES_FILTERS_MAX || !list_add(&r->reads, ix->known.v[i]))
            return false;
        es_filter_init(&f[*n]);
        f[(*n)++].entity_type = r->reads.v[r->reads.n - 1];
    }
    return true;
}

/* Registers a watch or a reader started by `start` over the wanted
 * collections' filters (under the index's lock: a type the index reports
 * meanwhile widens it). */
typedef es_status (*start_fn)(es_store *st, const es_filter *f, size_t n, void *arg, reg *r);

static es_status start_registered(ns_index *ix, ns_wants_fn wants, void *arg, uint64_t after_seq,
                                  start_fn start, void *start_arg, reg **made)
{
    reg *r = calloc(1, sizeof *r);
    if (r == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    r->wants = wants;
    r->arg = arg;
    r->start_seq = after_seq;
    es_filter f[ES_FILTERS_MAX];
    size_t n = 0;
    pthread_mutex_lock(&ix->mu);
    r->all = !initial_filters(ix, r, f, &n);
    es_status s = start(ix->st, r->all ? NULL : f, r->all ? 0 : n, start_arg, r);
    if (s == ES_OK) {
        r->next = ix->regs;
        ix->regs = r;
    }
    pthread_mutex_unlock(&ix->mu);
    if (s != ES_OK)
        reg_free(r);
    *made = s == ES_OK ? r : NULL; /* its owner alone forgets it: safe to read */
    return s;
}

static es_status start_watch(es_store *st, const es_filter *f, size_t n, void *arg, reg *r)
{
    es_watch_options *wo = arg;
    wo->filters = f;
    wo->filter_count = n;
    es_status s = es_watch_start(st, wo, &r->w);
    wo->filters = NULL;
    wo->filter_count = 0;
    return s;
}

es_status ns_watch_start(ns_index *ix, es_store *st, ns_wants_fn wants, void *arg,
                         es_watch_options *wo, es_watch **out)
{
    memset(&wo->filter, 0, sizeof wo->filter);
    wo->filters = NULL;
    wo->filter_count = 0;
    if (wants == NULL || ix == NULL)
        return es_watch_start(st, wo, out);
    reg *r = NULL;
    es_status s = start_registered(ix, wants, arg, wo->after_seq, start_watch, wo, &r);
    if (s == ES_OK)
        *out = r->w;
    return s;
}

static es_status start_reader(es_store *st, const es_filter *f, size_t n, void *arg, reg *r)
{
    es_reader_options *ro = arg;
    ro->filters = f;
    ro->filter_count = n;
    es_status s = es_reader_open(st, ro, &r->rd);
    ro->filters = NULL;
    ro->filter_count = 0;
    return s;
}

es_status ns_reader_open(ns_index *ix, es_store *st, ns_wants_fn wants, void *arg,
                         uint64_t after_seq, es_reader **out)
{
    es_reader_options ro;
    es_reader_options_init(&ro);
    ro.after_seq = after_seq;
    if (wants == NULL || ix == NULL)
        return es_reader_open(st, &ro, out);
    reg *r = NULL;
    es_status s = start_registered(ix, wants, arg, after_seq, start_reader, &ro, &r);
    if (s == ES_OK)
        *out = r->rd;
    return s;
}

static reg *find(ns_index *ix, const void *handle)
{
    for (reg *r = ix->regs; r != NULL; r = r->next)
        if ((r->w != NULL && (const void *)r->w == handle) ||
            (r->rd != NULL && (const void *)r->rd == handle))
            return r;
    return NULL;
}

/* Widens `handle`'s registration with every wanted type known, from its
 * position (read under the lock: a forgotten handle may be freed). */
static void refresh(ns_index *ix, const void *handle)
{
    if (ix == NULL || handle == NULL)
        return;
    pthread_mutex_lock(&ix->mu);
    reg *r = find(ix, handle);
    uint64_t from = r == NULL ? 0 : r->w ? es_watch_last_seq(r->w) : es_reader_position(r->rd);
    for (size_t i = 0; r != NULL && i < ix->known.n; i++)
        widen(r, ix->known.v[i], from);
    pthread_mutex_unlock(&ix->mu);
}

void ns_watch_refresh(ns_index *ix, es_watch *w)
{
    refresh(ix, w);
}

void ns_reader_refresh(ns_index *ix, es_reader *rd)
{
    refresh(ix, rd);
}

void ns_index_forget(ns_index *ix, const void *handle)
{
    if (ix == NULL || handle == NULL)
        return;
    pthread_mutex_lock(&ix->mu);
    for (reg **p = &ix->regs; *p != NULL; p = &(*p)->next) {
        if ((const void *)(*p)->w == handle || (const void *)(*p)->rd == handle) {
            reg *r = *p;
            *p = r->next;
            reg_free(r);
            break;
        }
    }
    pthread_mutex_unlock(&ix->mu);
}

size_t ns_watch_filters(ns_index *ix, const void *handle)
{
    pthread_mutex_lock(&ix->mu);
    reg *r = find(ix, handle);
    size_t n = r == NULL || r->all ? 0 : r->reads.n + 1;
    pthread_mutex_unlock(&ix->mu);
    return n;
}
