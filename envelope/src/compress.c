/* zstd compression of event payloads, with decompression that can never be
 * made to produce or allocate more than the caller's bound. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>

#include <zstd_errors.h>

#include "envelope_internal.h"

/* Contexts kept for reuse per kind; more concurrent users simply create and
 * free their own. */
#define ZPOOL_KEEP 8

typedef struct ptr_stack {
    void *items[ZPOOL_KEEP];
    size_t n;
} ptr_stack;

struct esi_zpool {
    pthread_mutex_t lock;
    int level;
    ptr_stack cctx, dctx;
};

static void *stack_pop(esi_zpool *p, ptr_stack *st)
{
    void *item = NULL;
    pthread_mutex_lock(&p->lock);
    if (st->n > 0)
        item = st->items[--st->n];
    pthread_mutex_unlock(&p->lock);
    return item;
}

/* false when the stack is full: the caller frees the item. */
static bool stack_push(esi_zpool *p, ptr_stack *st, void *item)
{
    bool kept = false;
    pthread_mutex_lock(&p->lock);
    if (st->n < ZPOOL_KEEP) {
        st->items[st->n++] = item;
        kept = true;
    }
    pthread_mutex_unlock(&p->lock);
    return kept;
}

es_status esi_zpool_create(int level, esi_zpool **out)
{
    *out = NULL;
    if (level < 0 || level > ZSTD_maxCLevel())
        return es_error(ES_ERR_INVALID, "zstd level %d is not 0..%d", level, ZSTD_maxCLevel());
    esi_zpool *p = esi_calloc(1, sizeof *p);
    if (p == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory creating a zstd pool");
    pthread_mutex_init(&p->lock, NULL);
    p->level = level ? level : ZSTD_CLEVEL_DEFAULT;
    *out = p;
    return ES_OK;
}

void esi_zpool_destroy(esi_zpool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->cctx.n; i++)
        ZSTD_freeCCtx(p->cctx.items[i]);
    for (size_t i = 0; i < p->dctx.n; i++)
        ZSTD_freeDCtx(p->dctx.items[i]);
    pthread_mutex_destroy(&p->lock);
    esi_free(p);
}

static ZSTD_CCtx *take_cctx(esi_zpool *p)
{
    ZSTD_CCtx *c = stack_pop(p, &p->cctx);
    if (c != NULL)
        return c;
    c = ZSTD_createCCtx();
    if (c == NULL)
        return NULL;
    /* Settings that stick for the context's life; ZSTD_compress2 resets
     * only the session. The checksum catches corruption of unencrypted
     * payloads (encrypted ones are authenticated anyway). */
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, p->level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
    return c;
}

static void give_cctx(esi_zpool *p, ZSTD_CCtx *c)
{
    if (!stack_push(p, &p->cctx, c))
        ZSTD_freeCCtx(c);
}

static ZSTD_DCtx *take_dctx(esi_zpool *p)
{
    ZSTD_DCtx *d = stack_pop(p, &p->dctx);
    return d ? d : ZSTD_createDCtx();
}

static void give_dctx(esi_zpool *p, ZSTD_DCtx *d)
{
    if (!stack_push(p, &p->dctx, d))
        ZSTD_freeDCtx(d);
}

es_status esi_zstd_compress(esi_zpool *p, const ZSTD_CDict *cdict, const uint8_t *src, size_t len,
                           es_buf *out, bool *done)
{
    *done = false;
    es_buf_clear(out);
    if (len < 2)
        return ES_OK;
    es_status s = es_buf_reserve(out, len);
    if (s != ES_OK)
        return s;
    ZSTD_CCtx *c = take_cctx(p);
    if (c == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory creating a zstd context");
    ZSTD_CCtx_refCDict(c, cdict);
    /* A destination one byte short of the input: a frame that would not
     * shrink the payload fails with dstSize_tooSmall and is not used. */
    size_t r = ZSTD_compress2(c, out->data, len - 1, src, len);
    give_cctx(p, c);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return ES_OK;
        return es_error(ES_ERR_ENCODE, "zstd compression failed: %s", ZSTD_getErrorName(r));
    }
    out->len = r;
    *done = true;
    return ES_OK;
}

/* zstd's smallest window and its decoder's default largest (both only in
 * zstd's experimental API, hence repeated). */
#define WINDOW_LOG_MIN 10
#define WINDOW_LOG_MAX 27

/* Smallest w with 2^w >= n, clamped to what zstd accepts by default. */
static int window_log_for(size_t n)
{
    int w = WINDOW_LOG_MIN;
    while (w < WINDOW_LOG_MAX && ((size_t)1 << w) < n)
        w++;
    return w;
}

static es_status zstd_decode_error(size_t r)
{
    ZSTD_ErrorCode code = ZSTD_getErrorCode(r);
    if (code == ZSTD_error_frameParameter_windowTooLarge)
        return es_error(ES_ERR_LIMIT, "zstd frame needs a window beyond the payload bound");
    return es_error(ES_ERR_DECODE, "malformed zstd data: %s", ZSTD_getErrorName(r));
}

/* A frame that does not declare its size (only hostile or foreign writers
 * make those): stream it, growing the output up to max + 1 bytes, the extra
 * byte telling "exactly max" from "more than max". */
static es_status decompress_streaming(ZSTD_DCtx *d, const ZSTD_DDict *ddict, const uint8_t *src,
                                      size_t len, size_t max, es_buf *out)
{
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, window_log_for(max));
    ZSTD_DCtx_refDDict(d, ddict);
    size_t limit = max < SIZE_MAX ? max + 1 : max;
    ZSTD_inBuffer in = {src, len, 0};
    for (;;) {
        if (out->len >= limit)
            break;
        if (out->len == out->cap) {
            size_t want = out->cap ? out->cap : (len < 4096 ? 4096 : len);
            if (want > limit - out->len)
                want = limit - out->len;
            es_status s = es_buf_reserve(out, want);
            if (s != ES_OK)
                return s;
        }
        size_t room = out->cap < limit ? out->cap : limit;
        ZSTD_outBuffer ob = {out->data, room, out->len};
        size_t in_before = in.pos, out_before = ob.pos;
        size_t r = ZSTD_decompressStream(d, &ob, &in);
        out->len = ob.pos;
        if (ZSTD_isError(r))
            return zstd_decode_error(r);
        if (r == 0)
            return ES_OK; /* frame complete (and the only one: checked before) */
        if (ob.pos < ob.size && (in.pos == len || (in.pos == in_before && ob.pos == out_before)))
            return es_error(ES_ERR_DECODE, "truncated zstd frame");
    }
    return es_error(ES_ERR_LIMIT, "zstd data decompresses to more than %zu bytes", max);
}

es_status esi_zstd_decompress(esi_zpool *p, const ZSTD_DDict *ddict, const uint8_t *src, size_t len,
                             size_t max, es_buf *out)
{
    es_buf_clear(out);
    unsigned long long declared = ZSTD_getFrameContentSize(src, len);
    if (declared == ZSTD_CONTENTSIZE_ERROR)
        return es_error(ES_ERR_DECODE, "payload marked zstd is not a zstd frame");
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > max)
        return es_error(ES_ERR_LIMIT, "zstd frame declares %llu bytes, more than the %zu allowed",
                        declared, max);
    /* Exactly one frame: the writer makes one, and this keeps the declared
     * size a true bound on the output. */
    size_t frame = ZSTD_findFrameCompressedSize(src, len);
    if (ZSTD_isError(frame))
        return es_error(ES_ERR_DECODE, "truncated or malformed zstd frame: %s",
                        ZSTD_getErrorName(frame));
    if (frame != len)
        return es_error(ES_ERR_DECODE, "%zu bytes after the zstd frame", len - frame);

    ZSTD_DCtx *d = take_dctx(p);
    if (d == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory creating a zstd context");
    /* A pooled context may still reference the dictionary of its last use,
     * which the one-shot call below would silently apply. */
    ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
    es_status s = ES_OK;
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN) {
        s = decompress_streaming(d, ddict, src, len, max, out);
    } else if ((s = es_buf_reserve(out, (size_t)declared + 1)) == ES_OK) {
        /* Room for one byte more than declared, so content beyond the
         * declaration is reported as a mismatch rather than silently cut. */
        size_t r =
            ddict ? ZSTD_decompress_usingDDict(d, out->data, (size_t)declared + 1, src, len, ddict)
                  : ZSTD_decompressDCtx(d, out->data, (size_t)declared + 1, src, len);
        if (ZSTD_isError(r))
            s = zstd_decode_error(r);
        else if (r != declared)
            s = es_error(ES_ERR_DECODE, "zstd frame declares %llu bytes but holds %zu", declared,
                         r);
        else
            out->len = r;
    }
    give_dctx(p, d);
    if (s != ES_OK)
        es_buf_clear(out);
    return s;
}
