#include "corpus.h"

#include <es/cid.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

char *corpus_fixture_path(const char *rel)
{
    const char *dir = getenv("ES_SHARED_DIR");
    if (dir == NULL || *dir == '\0')
        return NULL;
    size_t n = strlen(dir) + strlen(rel) + sizeof "/fixtures/";
    char *p = malloc(n);
    if (p == NULL)
        return NULL;
    snprintf(p, n, "%s/fixtures/%s", dir, rel);
    FILE *f = fopen(p, "rb");
    if (f == NULL) {
        free(p);
        return NULL;
    }
    fclose(f);
    return p;
}

uint8_t *corpus_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            uint8_t *p = realloc(data, cap + 1);
            if (p == NULL)
                break;
            data = p;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            fclose(f);
            data[n] = 0;
            *len = n;
            return data;
        }
    }
    fclose(f);
    free(data);
    return NULL;
}

es_status corpus_load_frames(uint8_t **data, size_t *len)
{
    char *path = corpus_fixture_path("firehose-corpus/frames.bin.zst");
    size_t zlen = 0;
    uint8_t *z = path ? corpus_read_file(path, &zlen) : NULL;
    free(path);
    if (z == NULL)
        return ES_ERR_NOT_FOUND;
    ZSTD_DStream *ds = ZSTD_createDStream();
    size_t cap = zlen * 4, n = 0;
    uint8_t *out = malloc(cap);
    ZSTD_inBuffer in = {z, zlen, 0};
    es_status s = ES_OK;
    while (s == ES_OK && in.pos < in.size) {
        if (cap - n < 65536) {
            cap *= 2;
            uint8_t *p = realloc(out, cap);
            if (p == NULL) {
                s = ES_ERR_NOMEM;
                break;
            }
            out = p;
        }
        ZSTD_outBuffer o = {out + n, cap - n, 0};
        if (ZSTD_isError(ZSTD_decompressStream(ds, &o, &in)))
            s = ES_ERR_DECODE;
        n += o.pos;
    }
    ZSTD_freeDStream(ds);
    free(z);
    if (s != ES_OK) {
        free(out);
        return s;
    }
    *data = out;
    *len = n;
    return ES_OK;
}

int corpus_next_frame(const uint8_t *data, size_t len, size_t *pos, const uint8_t **frame,
                      size_t *frame_len)
{
    if (*pos == len)
        return 0;
    if (len - *pos < 4)
        return -1;
    const uint8_t *p = data + *pos;
    size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    if (n > len - *pos - 4)
        return -1;
    *frame = p + 4;
    *frame_len = n;
    *pos += 4 + n;
    return 1;
}

int corpus_car_blocks(const uint8_t *car, size_t len, corpus_block_fn fn, void *ctx)
{
    size_t pos = 0, used = 0;
    uint64_t n = 0;
    if (es_varint_decode(car, len, &n, &used) != ES_OK || n > len - used)
        return -1;
    pos = used + (size_t)n; /* the header: {version, roots} */
    while (pos < len) {
        if (es_varint_decode(car + pos, len - pos, &n, &used) != ES_OK || n > len - pos - used)
            return -1;
        pos += used;
        es_cid cid;
        if (es_cid_parse(car + pos, (size_t)n, &cid) != ES_OK)
            return -1;
        int r = fn(ctx, car + pos, cid.len, car + pos + cid.len, (size_t)n - cid.len);
        if (r != 0)
            return r;
        pos += (size_t)n;
    }
    return 0;
}
