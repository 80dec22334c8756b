/* zstd dictionaries: training, checking, and a cache of the ones loaded from
 * the envelope's dictionary source, so that each is fetched once. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zdict.h>

#include <es/envelope.h>
#include <es/names.h>

#include "envelope_internal.h"

#define DICT_MAX_BYTES  ((size_t)512 << 10)
#define DICT_MIN_BYTES  256
#define CACHE_MAX_DICTS 16

es_status es_dict_train(const uint8_t *samples, const size_t *sample_sizes, size_t n_samples,
                        size_t max_size, es_buf *dict, uint32_t *dict_id)
{
    if (samples == NULL || sample_sizes == NULL || dict == NULL || dict_id == NULL)
        return es_error(ES_ERR_INVALID, "es_dict_train: NULL argument");
    if (max_size == 0)
        max_size = 64 << 10;
    if (max_size < DICT_MIN_BYTES || max_size > DICT_MAX_BYTES)
        return es_error(ES_ERR_INVALID, "dictionary size %zu is not %d..%zu", max_size,
                        DICT_MIN_BYTES, DICT_MAX_BYTES);
    if (n_samples == 0 || n_samples > UINT32_MAX)
        return es_error(ES_ERR_INVALID, "%zu samples: zstd needs 1..%u", n_samples, UINT32_MAX);
    es_status s = es_buf_reserve(dict, max_size);
    if (s != ES_OK)
        return s;
    size_t r = ZDICT_trainFromBuffer(dict->data + dict->len, max_size, samples, sample_sizes,
                                     (unsigned)n_samples);
    if (ZDICT_isError(r))
        return es_error(ES_ERR_INVALID, "zstd cannot train a dictionary from these samples: %s",
                        ZDICT_getErrorName(r));
    *dict_id = ZDICT_getDictID(dict->data + dict->len, r);
    dict->len += r;
    return ES_OK;
}

es_status es_dict_id(const uint8_t *dict, size_t len, uint32_t *id)
{
    if (dict == NULL || id == NULL)
        return es_error(ES_ERR_INVALID, "es_dict_id: NULL argument");
    if (len < 8 || len > DICT_MAX_BYTES)
        return es_error(ES_ERR_INVALID, "a dictionary of %zu bytes (want 8..%zu)", len,
                        DICT_MAX_BYTES);
    *id = ZDICT_getDictID(dict, len);
    if (*id == 0)
        return es_error(ES_ERR_INVALID, "not a zstd dictionary (no dictionary id)");
    return ES_OK;
}

/* ---- cache --------------------------------------------------------------- */

typedef struct loaded_dict {
    uint32_t id;
    es_buf bytes;
    ZSTD_DDict *ddict;
    ZSTD_CDict *cdict; /* made on the first write that needs it */
} loaded_dict;

struct esi_dict_cache {
    es_dict_source source; /* .get NULL: no dictionaries */
    int level;
    pthread_mutex_t lock; /* guards everything below; held while loading */
    loaded_dict dicts[CACHE_MAX_DICTS];
    size_t n;
};

es_status esi_dict_cache_create(const es_dict_source *source, int level, esi_dict_cache **out)
{
    *out = NULL;
    esi_dict_cache *c = esi_calloc(1, sizeof *c);
    if (c == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory creating a dictionary cache");
    if (source != NULL)
        c->source = *source;
    c->level = level ? level : ZSTD_CLEVEL_DEFAULT;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return ES_OK;
}

void esi_dict_cache_destroy(esi_dict_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        ZSTD_freeDDict(c->dicts[i].ddict);
        ZSTD_freeCDict(c->dicts[i].cdict);
        es_buf_free(&c->dicts[i].bytes);
    }
    pthread_mutex_destroy(&c->lock);
    esi_free(c);
}

/* Called with the lock held. */
static es_status load(esi_dict_cache *c, uint32_t id, loaded_dict **out)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->dicts[i].id == id) {
            *out = &c->dicts[i];
            return ES_OK;
        }
    if (c->n == CACHE_MAX_DICTS)
        return es_error(ES_ERR_LIMIT, "more than %d zstd dictionaries in use", CACHE_MAX_DICTS);
    if (c->source.get == NULL)
        return es_error(ES_ERR_NOT_FOUND, "zstd dictionary %u: no dictionaries here", (unsigned)id);
    loaded_dict *d = &c->dicts[c->n];
    memset(d, 0, sizeof *d);
    es_status s = c->source.get(c->source.ctx, id, &d->bytes);
    uint32_t got = 0;
    if (s == ES_OK)
        s = es_dict_id(d->bytes.data, d->bytes.len, &got);
    if (s == ES_OK && got != id)
        s = es_error(ES_ERR_DECODE, "dictionary stored as %u has id %u", (unsigned)id,
                     (unsigned)got);
    if (s == ES_OK && (d->ddict = ZSTD_createDDict(d->bytes.data, d->bytes.len)) == NULL)
        s = es_error(ES_ERR_DECODE, "zstd rejects dictionary %u", (unsigned)id);
    if (s != ES_OK) {
        es_buf_free(&d->bytes);
        return s;
    }
    d->id = id;
    c->n++;
    *out = d;
    return ES_OK;
}

es_status esi_dict_cache_ddict(esi_dict_cache *c, uint32_t id, const ZSTD_DDict **out)
{
    loaded_dict *d = NULL;
    pthread_mutex_lock(&c->lock);
    es_status s = load(c, id, &d);
    if (s == ES_OK)
        *out = d->ddict; /* entries are never removed: safe after unlock */
    pthread_mutex_unlock(&c->lock);
    return s;
}

es_status esi_dict_cache_cdict(esi_dict_cache *c, uint32_t id, const ZSTD_CDict **out)
{
    loaded_dict *d = NULL;
    pthread_mutex_lock(&c->lock);
    es_status s = load(c, id, &d);
    if (s == ES_OK && d->cdict == NULL &&
        (d->cdict = ZSTD_createCDict(d->bytes.data, d->bytes.len, c->level)) == NULL)
        s = es_error(ES_ERR_NOMEM, "cannot prepare zstd dictionary %u", (unsigned)id);
    if (s == ES_OK)
        *out = d->cdict;
    pthread_mutex_unlock(&c->lock);
    return s;
}
