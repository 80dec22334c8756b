/* Capture files: `[u32 LE length][frame]` repeated, plain or zstd-compressed
 * as a whole. The reader decompresses as it goes into one window that never
 * grows beyond the largest allowed frame plus a read chunk, so a capture of
 * any length is read in bounded memory. */
#include <es/atproto.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include <es/alloc.h>
#include "base/internal.h"

#define DEFAULT_MAX_FRAME ((size_t)5 << 20)
#define READ_CHUNK        ((size_t)128 << 10)
static const uint8_t zstd_magic[4] = {0x28, 0xB5, 0x2F, 0xFD};

struct es_atp_capture {
    FILE *file;
    char *path;
    ZSTD_DStream *zstd; /* NULL for a plain capture */
    uint8_t *in;        /* compressed input (zstd only) */
    size_t in_cap, in_pos, in_len;
    bool zstd_frame_open; /* a compressed frame was started and not finished */
    uint8_t *buf;         /* decompressed window: [pos, len) is unread */
    size_t cap, pos, len;
    size_t max_frame;
    bool input_done;  /* the file is exhausted */
    es_status failed; /* sticky error after a failure */
};

static es_status read_file(es_atp_capture *c, uint8_t *dst, size_t n, size_t *got)
{
    *got = fread(dst, 1, n, c->file);
    if (*got < n) {
        if (ferror(c->file))
            return es_error(ES_ERR_IO, "capture %s: read failed: %s", c->path, strerror(errno));
        c->input_done = true;
    }
    return ES_OK;
}

/* Decompress or read more bytes into the window, after [pos, len). */
static es_status refill(es_atp_capture *c)
{
    size_t room = c->cap - c->len, got;
    if (c->zstd == NULL) {
        es_status s = read_file(c, c->buf + c->len, room, &got);
        c->len += got;
        return s;
    }
    ZSTD_outBuffer out = {c->buf + c->len, room, 0};
    while (out.pos == 0) {
        if (c->in_pos == c->in_len) {
            if (c->input_done)
                break;
            es_status s = read_file(c, c->in, c->in_cap, &got);
            if (s != ES_OK)
                return s;
            c->in_pos = 0;
            c->in_len = got;
            if (got == 0)
                break;
        }
        ZSTD_inBuffer in = {c->in, c->in_len, c->in_pos};
        size_t r = ZSTD_decompressStream(c->zstd, &out, &in);
        c->in_pos = in.pos;
        if (ZSTD_isError(r))
            return es_error(ES_ERR_DECODE, "capture %s: corrupt zstd data: %s", c->path,
                            ZSTD_getErrorName(r));
        c->zstd_frame_open = r != 0;
    }
    c->len += out.pos;
    return ES_OK;
}

/* Make at least `need` unread bytes available, unless the input ends first. */
static es_status ensure(es_atp_capture *c, size_t need)
{
    while (c->len - c->pos < need) {
        if (c->pos > 0) {
            memmove(c->buf, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos;
            c->pos = 0;
        }
        if (c->cap - c->len < READ_CHUNK / 4 && c->cap < need + READ_CHUNK) {
            size_t cap = need + READ_CHUNK;
            uint8_t *b = es_realloc(c->buf, cap);
            if (b == NULL)
                return es_error(ES_ERR_NOMEM, "capture %s: out of memory", c->path);
            c->buf = b;
            c->cap = cap;
        }
        size_t before = c->len;
        es_status s = refill(c);
        if (s != ES_OK)
            return s;
        if (c->len == before) /* refill only comes back empty at the end of input */
            return ES_OK;     /* the caller sees the shortfall */
    }
    return ES_OK;
}

static es_status detect_format(es_atp_capture *c)
{
    uint8_t head[4];
    size_t got;
    es_status s = read_file(c, head, sizeof head, &got);
    if (s != ES_OK)
        return s;
    if (got == sizeof head && memcmp(head, zstd_magic, sizeof head) == 0) {
        c->zstd = ZSTD_createDStream();
        c->in_cap = ZSTD_DStreamInSize();
        c->in = es_malloc(c->in_cap);
        if (c->zstd == NULL || c->in == NULL)
            return es_error(ES_ERR_NOMEM, "capture %s: out of memory", c->path);
        memcpy(c->in, head, got);
        c->in_len = got;
        return ES_OK;
    }
    memcpy(c->buf, head, got); /* plain: these are the first data bytes */
    c->len = got;
    return ES_OK;
}

es_status es_atp_capture_open(const char *path, size_t max_frame, es_atp_capture **out)
{
    if (path == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_capture_open: NULL argument");
    *out = NULL;
    es_atp_capture *c = es_calloc(1, sizeof *c);
    if (c == NULL)
        return es_error(ES_ERR_NOMEM, "capture %s: out of memory", path);
    c->max_frame = max_frame ? max_frame : DEFAULT_MAX_FRAME;
    c->cap = READ_CHUNK;
    c->buf = es_malloc(c->cap);
    c->path = es_malloc(strlen(path) + 1);
    if (c->buf == NULL || c->path == NULL) {
        es_atp_capture_close(c);
        return es_error(ES_ERR_NOMEM, "capture %s: out of memory", path);
    }
    strcpy(c->path, path);
    c->file = fopen(path, "rb");
    if (c->file == NULL) {
        es_status s = es_error(errno == ENOENT ? ES_ERR_NOT_FOUND : ES_ERR_IO,
                               "capture %s: cannot open: %s", path, strerror(errno));
        es_atp_capture_close(c);
        return s;
    }
    es_status s = detect_format(c);
    if (s != ES_OK) {
        es_atp_capture_close(c);
        return s;
    }
    *out = c;
    return ES_OK;
}

static es_status fail(es_atp_capture *c, es_status s)
{
    c->failed = s;
    return s;
}

es_status es_atp_capture_next(es_atp_capture *c, const uint8_t **frame, size_t *len)
{
    if (c == NULL || frame == NULL || len == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_capture_next: NULL argument");
    if (c->failed != ES_OK)
        return es_error(c->failed, "capture %s: already failed", c->path);
    es_status s = ensure(c, 4);
    if (s != ES_OK)
        return fail(c, s);
    size_t avail = c->len - c->pos;
    if (avail == 0) {
        if (c->zstd_frame_open)
            return fail(
                c, es_error(ES_ERR_DECODE, "capture %s: compressed data is truncated", c->path));
        return ES_ERR_NOT_FOUND;
    }
    if (avail < 4)
        return fail(c, es_error(ES_ERR_DECODE, "capture %s: truncated length prefix", c->path));
    const uint8_t *p = c->buf + c->pos;
    size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    if (n > c->max_frame)
        return fail(c,
                    es_error(ES_ERR_LIMIT, "capture %s: frame of %zu bytes exceeds the %zu limit",
                             c->path, n, c->max_frame));
    s = ensure(c, 4 + n);
    if (s != ES_OK)
        return fail(c, s);
    if (c->len - c->pos < 4 + n)
        return fail(c, es_error(ES_ERR_DECODE, "capture %s: truncated frame (%zu of %zu bytes)",
                                c->path, c->len - c->pos - 4, n));
    *frame = c->buf + c->pos + 4;
    *len = n;
    c->pos += 4 + n;
    return ES_OK;
}

void es_atp_capture_close(es_atp_capture *c)
{
    if (c == NULL)
        return;
    if (c->file != NULL)
        fclose(c->file);
    ZSTD_freeDStream(c->zstd);
    es_free(c->in);
    es_free(c->buf);
    es_free(c->path);
    es_free(c);
}

/* ---- writer -------------------------------------------------------------- */

struct es_atp_capture_writer {
    FILE *file;
    ZSTD_CStream *zstd;
    uint8_t *out;
    size_t out_cap;
    es_status failed;
};

static es_status write_all(es_atp_capture_writer *w, const void *p, size_t n)
{
    if (n > 0 && fwrite(p, 1, n, w->file) != n)
        return w->failed = es_error(ES_ERR_IO, "capture write failed: %s", strerror(errno));
    return ES_OK;
}

/* Push `n` bytes through the compressor (or straight to the file). With
 * `end`, also finish the compressed frame. */
static es_status put(es_atp_capture_writer *w, const void *p, size_t n, bool end)
{
    if (w->zstd == NULL)
        return write_all(w, p, n);
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->out, w->out_cap, 0};
        size_t r = end ? ZSTD_endStream(w->zstd, &out)
                       : ZSTD_compressStream2(w->zstd, &out, &in, ZSTD_e_continue);
        if (ZSTD_isError(r))
            return w->failed =
                       es_error(ES_ERR_IO, "capture compression failed: %s", ZSTD_getErrorName(r));
        es_status s = write_all(w, w->out, out.pos);
        if (s != ES_OK)
            return s;
        if (end ? r == 0 : in.pos == in.size)
            return ES_OK;
    }
}

es_status es_atp_capture_create(const char *path, int zstd_level, es_atp_capture_writer **out)
{
    if (path == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_capture_create: NULL argument");
    *out = NULL;
    es_atp_capture_writer *w = es_calloc(1, sizeof *w);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "capture %s: out of memory", path);
    if (zstd_level != 0) {
        w->zstd = ZSTD_createCStream();
        w->out_cap = ZSTD_CStreamOutSize();
        w->out = es_malloc(w->out_cap);
        if (w->zstd == NULL || w->out == NULL ||
            ZSTD_isError(ZSTD_CCtx_setParameter(w->zstd, ZSTD_c_compressionLevel, zstd_level))) {
            es_atp_capture_finish(w);
            return es_error(ES_ERR_NOMEM, "capture %s: cannot set up zstd", path);
        }
    }
    w->file = fopen(path, "wb");
    if (w->file == NULL) {
        es_status s = es_error(ES_ERR_IO, "capture %s: cannot create: %s", path, strerror(errno));
        es_atp_capture_finish(w);
        return s;
    }
    *out = w;
    return ES_OK;
}

es_status es_atp_capture_write(es_atp_capture_writer *w, const uint8_t *frame, size_t len)
{
    if (w == NULL || (frame == NULL && len > 0))
        return es_error(ES_ERR_INVALID, "es_atp_capture_write: NULL argument");
    if (w->failed != ES_OK)
        return w->failed;
    if (len > UINT32_MAX)
        return es_error(ES_ERR_TOO_LARGE, "capture frame of %zu bytes does not fit a u32", len);
    uint8_t prefix[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                         (uint8_t)(len >> 24)};
    es_status s = put(w, prefix, sizeof prefix, false);
    return s != ES_OK ? s : put(w, frame, len, false);
}

es_status es_atp_capture_finish(es_atp_capture_writer *w)
{
    if (w == NULL)
        return ES_OK;
    es_status s = w->failed;
    if (s == ES_OK && w->zstd != NULL && w->file != NULL)
        s = put(w, NULL, 0, true);
    if (w->file != NULL && fclose(w->file) != 0 && s == ES_OK)
        s = es_error(ES_ERR_IO, "capture close failed: %s", strerror(errno));
    ZSTD_freeCStream(w->zstd);
    es_free(w->out);
    es_free(w);
    return s;
}
