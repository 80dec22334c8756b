/* The entity-type index (es/entity_types.h): a checkpoint set over the
 * store's bucket ES_<store>_types, one key per (tenant, entity type), and
 * an in-memory set of the pairs this handle already knows are written. */
#include <es/entity_types.h>

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <es/checkpoint.h>
#include <es/inspect.h>
#include <es/names.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/internal.h"
#include "checkpoint_impl.h"
#include "store_impl.h"

/* "<tenant>.<entity type>", with its NUL */
#define KEY_MAX (ES_NAME_MAX + 1 + ES_ENTITY_TYPE_MAX + 1)

struct es_entity_types {
    es_store *st;
    es_checkpoints *cps;
    pthread_mutex_t mu;
    char **slots; /* open addressing over the keys written or seen written */
    size_t cap, count;
};

/* ---- keys ---------------------------------------------------------------- */

static es_status make_key(es_entity_types *t, const char *tenant, const char *type,
                          char out[KEY_MAX])
{
    if (!es_valid_entity_type(type))
        return es_error(ES_ERR_INVALID, "es_entity_types_add: invalid entity type '%.64s'",
                        type ? type : "(null)");
    const char *tn = NULL;
    es_status s = esi_store_tenant_of(t->st, tenant, &tn);
    if (s != ES_OK)
        return s;
    if (t->st->config.tenancy && tn == NULL)
        return es_error(ES_ERR_INVALID, "es_entity_types_add: store '%s' needs a tenant",
                        t->st->name);
    if (tn != NULL && !t->st->config.tenancy)
        return es_error(ES_ERR_INVALID, "es_entity_types_add: store '%s' has no tenancy",
                        t->st->name);
    char *p = out;
    if (tn != NULL) {
        p = esi_put(p, tn);
        *p++ = '.';
    }
    p = esi_put(p, type);
    *p = '\0';
    return ES_OK;
}

/* Splits a key read from the bucket (hostile: written by anyone) into a
 * tenant (NULL without tenancy) and a type; false for one that is not ours. */
static bool split_key(const es_entity_types *t, char *key, const char **tenant, const char **type)
{
    char *dot = strchr(key, '.');
    *tenant = NULL;
    *type = key;
    if (t->st->config.tenancy) {
        if (dot == NULL)
            return false;
        *dot = '\0';
        *tenant = key;
        *type = dot + 1;
        if (!es_valid_name(*tenant))
            return false;
    } else if (dot != NULL) {
        return false;
    }
    return es_valid_entity_type(*type);
}

/* ---- what this handle knows is written ----------------------------------- */

static size_t slot_of(char *const *slots, size_t cap, const char *key)
{
    size_t i = (size_t)esi_fnv1a64(key, strlen(key), ESI_FNV64_OFFSET) & (cap - 1);
    while (slots[i] != NULL && strcmp(slots[i], key) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static bool known(es_entity_types *t, const char *key)
{
    pthread_mutex_lock(&t->mu);
    bool yes = t->cap > 0 && t->slots[slot_of(t->slots, t->cap, key)] != NULL;
    pthread_mutex_unlock(&t->mu);
    return yes;
}

/* Doubles the table (cap 0: 64 slots); false when memory is short. */
static bool grow(es_entity_types *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    char **slots = esi_calloc(cap, sizeof *slots);
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i] != NULL)
            slots[slot_of(slots, cap, t->slots[i])] = t->slots[i];
    esi_free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return true;
}

/* Remembers a key, best effort: past ES_ENTITY_TYPES_REMEMBERED, or short
 * of memory, it is only not remembered (the next add asks the bucket). */
static void remember(es_entity_types *t, const char *key)
{
    pthread_mutex_lock(&t->mu);
    if (t->count < ES_ENTITY_TYPES_REMEMBERED && (t->count * 2 < t->cap || grow(t))) {
        size_t i = slot_of(t->slots, t->cap, key);
        if (t->slots[i] == NULL && (t->slots[i] = esi_strdup(key)) != NULL)
            t->count++;
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- the handle ---------------------------------------------------------- */

es_status es_entity_types_open(es_store *store, es_entity_types **out)
{
    if (out == NULL || store == NULL)
        return es_error(ES_ERR_INVALID, "es_entity_types_open: store and out are required");
    *out = NULL;
    es_entity_types *t = esi_calloc(1, sizeof *t);
    if (t == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    t->st = store;
    es_status s = esi_checkpoints_open_kind(store, ES_BUCKET_TYPES, 1, &t->cps);
    if (s != ES_OK) {
        esi_free(t);
        return s;
    }
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return ES_OK;
}

void es_entity_types_destroy(es_entity_types *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->cap; i++)
        esi_free(t->slots[i]);
    esi_free(t->slots);
    pthread_mutex_destroy(&t->mu);
    es_checkpoints_destroy(t->cps);
    esi_free(t);
}

/* Writes the key when the bucket lacks it; *written says whether it did. */
static es_status add_key(es_entity_types *t, const char *key, bool *written)
{
    *written = false;
    if (known(t, key))
        return ES_OK;
    es_status s = es_checkpoint_set(t->cps, key, 0, NULL, ES_CHECKPOINT_NEW, NULL);
    if (s == ES_ERR_CONFLICT) /* there already: written before, or by another writer */
        s = ES_OK;
    else if (s == ES_OK)
        *written = true;
    if (s == ES_OK) {
        remember(t, key);
        es_error_clear();
    }
    return s;
}

es_status es_entity_types_add(es_entity_types *t, const char *tenant, const char *entity_type)
{
    if (t == NULL)
        return es_error(ES_ERR_INVALID, "es_entity_types_add: no index");
    char key[KEY_MAX];
    bool written;
    es_status s = make_key(t, tenant, entity_type, key);
    return s == ES_OK ? add_key(t, key, &written) : s;
}

/* ---- listing ------------------------------------------------------------- */

typedef struct list_ctx {
    es_entity_types *t;
    es_entity_type_cb cb;
    void *closure;
} list_ctx;

static es_status list_one(const char *name, const es_checkpoint *cp, void *closure)
{
    (void)cp;
    list_ctx *c = closure;
    char key[KEY_MAX];
    const char *tenant, *type;
    if (strlen(name) >= sizeof key)
        return ES_OK;
    strcpy(key, name);
    return split_key(c->t, key, &tenant, &type) ? c->cb(tenant, type, c->closure) : ES_OK;
}

es_status es_entity_types_list(es_entity_types *t, es_entity_type_cb cb, void *closure)
{
    if (t == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_entity_types_list: index and callback are required");
    list_ctx c = {t, cb, closure};
    return es_checkpoint_list(t->cps, list_one, &c);
}

/* ---- rebuilding ---------------------------------------------------------- */

typedef struct rebuild_ctx {
    es_entity_types *t;
    char last[KEY_MAX]; /* the subjects come sorted: a type's counts are adjacent */
    uint64_t added;
} rebuild_ctx;

static es_status rebuild_one(const es_subject_count *c, void *closure)
{
    rebuild_ctx *r = closure;
    char key[KEY_MAX];
    es_status s = make_key(r->t, c->tenant, c->entity_type, key);
    if (s != ES_OK || strcmp(key, r->last) == 0)
        return s;
    strcpy(r->last, key);
    bool written;
    s = add_key(r->t, key, &written);
    r->added += written;
    return s;
}

es_status es_entity_types_rebuild(es_entity_types *t, uint64_t *added)
{
    if (added != NULL)
        *added = 0;
    if (t == NULL)
        return es_error(ES_ERR_INVALID, "es_entity_types_rebuild: no index");
    rebuild_ctx *r = esi_calloc(1, sizeof *r);
    if (r == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    r->t = t;
    es_status s = es_store_subject_counts(t->st, NULL, rebuild_one, r, NULL);
    if (added != NULL)
        *added = r->added;
    esi_free(r);
    return s;
}

/* ---- watching ------------------------------------------------------------ */

struct es_entity_types_watch {
    es_entity_types *t;
    es_checkpoint_watch *w;
    es_entity_types_watch_cb cb;
    void *closure;
};

static void watched(const char *name, const es_checkpoint *cp, void *closure)
{
    es_entity_types_watch *tw = closure;
    char key[KEY_MAX];
    const char *tenant, *type;
    if (cp == NULL || strlen(name) >= sizeof key) /* a deletion: the index only grows */
        return;
    strcpy(key, name);
    if (split_key(tw->t, key, &tenant, &type))
        tw->cb(tenant, type, tw->closure);
}

es_status es_entity_types_watch_start(es_entity_types *t, es_entity_types_watch_cb cb,
                                      void *closure, es_entity_types_watch **out)
{
    if (out == NULL || t == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID,
                        "es_entity_types_watch_start: index, callback and out are required");
    *out = NULL;
    es_entity_types_watch *tw = esi_calloc(1, sizeof *tw);
    if (tw == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    tw->t = t;
    tw->cb = cb;
    tw->closure = closure;
    es_status s = es_checkpoint_watch_start(t->cps, NULL, watched, tw, &tw->w);
    if (s == ES_OK)
        s = es_checkpoint_watch_wait_current(tw->w, t->st->opts.timeout_ms);
    if (s != ES_OK) {
        es_entity_types_watch_destroy(tw);
        return s;
    }
    *out = tw;
    return ES_OK;
}

void es_entity_types_watch_destroy(es_entity_types_watch *tw)
{
    if (tw == NULL)
        return;
    es_checkpoint_watch_destroy(tw->w);
    esi_free(tw);
}
