/* compress=true's zstd frames (compress.h). libzstd's contexts are not
 * thread-safe and the callers are several threads (the hub's, each
 * replay's): a context is taken from a small pool for each message, and
 * the dictionary is digested once into a CDict they all share. */
#define _POSIX_C_SOURCE 200809L
#include "compress.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "metrics.h"

/* Contexts kept for reuse; more are made while more threads compress at
 * once, and freed after. */
#define POOL_KEEP 8
/* A context given back keeps its output buffer up to this size: the rare
 * large event (records may reach --record-max) does not pin its size. */
#define LANE_OUT_KEEP (256u << 10)

typedef struct lane {
    ZSTD_CCtx *cctx;
    void *out; /* the frame before it is copied into its message */
    size_t cap;
} lane;

struct compressor {
    ZSTD_CDict *cdict; /* NULL: no dictionary */
    unsigned dict_id;
    pthread_mutex_t lock;
    lane *free[POOL_KEEP];
    size_t n_free;
    _Atomic uint64_t frames, bytes_in, bytes_out;
};

/* The whole file, at most COMPRESS_DICT_MAX bytes (the caller frees). */
static es_status read_dictionary(const char *path, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return es_error(ES_ERR_INVALID, "--zstd-dictionary: cannot read '%.200s': %s", path,
                        strerror(errno));
    unsigned char *buf = malloc(COMPRESS_DICT_MAX + 1);
    size_t n = buf ? fread(buf, 1, COMPRESS_DICT_MAX + 1, f) : 0;
    bool failed = ferror(f);
    fclose(f);
    es_status s = ES_OK;
    if (buf == NULL)
        s = ES_ERR_NOMEM;
    else if (failed)
        s = es_error(ES_ERR_INVALID, "--zstd-dictionary: cannot read '%.200s'", path);
    else if (n > COMPRESS_DICT_MAX)
        s = es_error(ES_ERR_INVALID, "--zstd-dictionary: '%.200s' is larger than %u bytes", path,
                     COMPRESS_DICT_MAX);
    if (s != ES_OK) {
        free(buf);
        return s;
    }
    *data = buf;
    *size = n;
    return ES_OK;
}

/* A zstd dictionary with an ID, its entropy tables checked by libzstd. */
static es_status digest_dictionary(compressor *c, const char *path, const void *dict, size_t size)
{
    c->dict_id = ZSTD_getDictID_fromDict(dict, size);
    if (c->dict_id == 0)
        return es_error(ES_ERR_INVALID,
                        "--zstd-dictionary: '%.200s' is not a zstd dictionary with an ID "
                        "(make one with zstd --train)",
                        path);
    /* with its magic number, libzstd reads it as a whole dictionary: damaged
     * entropy tables fail here */
    c->cdict = ZSTD_createCDict(dict, size, ZSTD_CLEVEL_DEFAULT);
    if (c->cdict == NULL)
        return es_error(ES_ERR_INVALID, "--zstd-dictionary: '%.200s' is a damaged zstd dictionary",
                        path);
    return ES_OK;
}

es_status compressor_create(const char *dict_path, compressor **out)
{
    *out = NULL;
    compressor *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ES_ERR_NOMEM;
    pthread_mutex_init(&c->lock, NULL);
    es_status s = ES_OK;
    if (dict_path != NULL) {
        void *dict = NULL;
        size_t size = 0;
        s = read_dictionary(dict_path, &dict, &size);
        if (s == ES_OK)
            s = digest_dictionary(c, dict_path, dict, size);
        free(dict);
    }
    if (s != ES_OK) {
        compressor_destroy(c);
        return s;
    }
    *out = c;
    return ES_OK;
}

static void lane_free(lane *l)
{
    if (l == NULL)
        return;
    ZSTD_freeCCtx(l->cctx);
    free(l->out);
    free(l);
}

void compressor_destroy(compressor *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_free; i++)
        lane_free(c->free[i]);
    ZSTD_freeCDict(c->cdict);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

unsigned compressor_dict_id(const compressor *c)
{
    return c->dict_id;
}

static lane *lane_take(compressor *c)
{
    pthread_mutex_lock(&c->lock);
    lane *l = c->n_free > 0 ? c->free[--c->n_free] : NULL;
    pthread_mutex_unlock(&c->lock);
    if (l != NULL)
        return l;
    l = calloc(1, sizeof *l);
    if (l != NULL && (l->cctx = ZSTD_createCCtx()) == NULL) {
        free(l);
        l = NULL;
    }
    return l;
}

static void lane_give(compressor *c, lane *l)
{
    if (l->cap > LANE_OUT_KEEP) {
        free(l->out);
        l->out = NULL;
        l->cap = 0;
    }
    pthread_mutex_lock(&c->lock);
    bool kept = c->n_free < POOL_KEEP;
    if (kept)
        c->free[c->n_free++] = l;
    pthread_mutex_unlock(&c->lock);
    if (!kept)
        lane_free(l);
}

/* `len` bytes of JSON compressed into a new message; NULL without memory. */
static sub_msg *compress_json(compressor *c, lane *l, const void *json, size_t len, size_t headroom)
{
    size_t bound = ZSTD_compressBound(len);
    if (bound > l->cap) {
        void *out = realloc(l->out, bound);
        if (out == NULL)
            return NULL;
        l->out = out;
        l->cap = bound;
    }
    size_t n = c->cdict != NULL
                   ? ZSTD_compress_usingCDict(l->cctx, l->out, l->cap, json, len, c->cdict)
                   : ZSTD_compressCCtx(l->cctx, l->out, l->cap, json, len, ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(n)) /* only for want of memory: the bound was given */
        return NULL;
    atomic_fetch_add_explicit(&c->frames, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->bytes_in, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->bytes_out, n, memory_order_relaxed);
    return sub_msg_create(headroom, l->out, n);
}

sub_msg *compressor_frame(compressor *c, sub_msg *m, size_t headroom)
{
    sub_msg *z = atomic_load_explicit(&m->zstd, memory_order_acquire);
    if (z == NULL) {
        lane *l = lane_take(c);
        z = l ? compress_json(c, l, m->data + headroom, m->len, headroom) : NULL;
        if (l != NULL)
            lane_give(c, l);
        if (z == NULL)
            return NULL;
        sub_msg *none = NULL; /* another thread may have been first: its frame is kept */
        if (!atomic_compare_exchange_strong_explicit(&m->zstd, &none, z, memory_order_acq_rel,
                                                     memory_order_acquire)) {
            sub_msg_release(z);
            z = none;
        }
    }
    sub_msg_ref(z); /* the cache keeps its own */
    return z;
}

void compressor_metrics(compressor *c, es_buf *b)
{
    es_prom_one(b, "es_serve_zstd_frames_total", "counter",
                "Messages compressed for compress=true subscribers (once per event for all of "
                "the live ones, once per event and subscriber in a replay).",
                (double)atomic_load_explicit(&c->frames, memory_order_relaxed));
    es_prom_one(b, "es_serve_zstd_in_bytes_total", "counter", "Bytes of JSON compressed.",
                (double)atomic_load_explicit(&c->bytes_in, memory_order_relaxed));
    es_prom_one(b, "es_serve_zstd_out_bytes_total", "counter", "Bytes of zstd frames made of them.",
                (double)atomic_load_explicit(&c->bytes_out, memory_order_relaxed));
}
