#include "source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/atproto.h>
#include <es/buf.h>

struct ingest_source {
    char name[512];
    es_atp_capture *capture; /* the streaming file source */
    es_buf frames;           /* the memory source: frames back to back */
    size_t *ends;            /* end offset of each frame in `frames` */
    size_t count, next;
    unsigned long repeat, round;
};

static ingest_source *source_new(const char *kind, const char *path)
{
    ingest_source *s = calloc(1, sizeof *s);
    if (s != NULL)
        snprintf(s->name, sizeof s->name, "%s %s", kind, path);
    return s;
}

es_status ingest_source_file(const char *path, size_t max_frame, ingest_source **out)
{
    ingest_source *s = source_new("file", path);
    if (s == NULL)
        return ES_ERR_NOMEM;
    es_status st = es_atp_capture_open(path, max_frame, &s->capture);
    if (st != ES_OK) {
        free(s);
        return st;
    }
    *out = s;
    return ES_OK;
}

static es_status load_frames(ingest_source *s, const char *path, size_t max_frame, size_t max_bytes)
{
    es_atp_capture *c;
    es_status st = es_atp_capture_open(path, max_frame, &c);
    size_t cap = 0;
    const uint8_t *f;
    size_t len;
    while (st == ES_OK && (st = es_atp_capture_next(c, &f, &len)) == ES_OK) {
        if (len > max_bytes - s->frames.len) {
            st = es_error(ES_ERR_LIMIT, "%s holds more than %zu bytes of frames", path, max_bytes);
            break;
        }
        if (s->count == cap) {
            cap = cap ? cap * 2 : 1024;
            size_t *ends = realloc(s->ends, cap * sizeof *ends);
            if (ends == NULL) {
                st = ES_ERR_NOMEM;
                break;
            }
            s->ends = ends;
        }
        st = es_buf_append(&s->frames, f, len);
        s->ends[s->count++] = s->frames.len;
    }
    es_atp_capture_close(c);
    return st == ES_ERR_NOT_FOUND ? ES_OK : st;
}

es_status ingest_source_memory(const char *path, size_t max_frame, unsigned long repeat,
                               size_t max_bytes, ingest_source **out)
{
    ingest_source *s = source_new("memory", path);
    if (s == NULL)
        return ES_ERR_NOMEM;
    s->repeat = repeat;
    es_status st = load_frames(s, path, max_frame, max_bytes);
    if (st != ES_OK) {
        ingest_source_close(s);
        return st;
    }
    snprintf(s->name + strlen(s->name), sizeof s->name - strlen(s->name),
             " (%zu frames, %zu bytes, replayed %lu times)", s->count, s->frames.len, repeat);
    *out = s;
    return ES_OK;
}

es_status ingest_source_next(ingest_source *s, const uint8_t **frame, size_t *len)
{
    if (s->capture != NULL)
        return es_atp_capture_next(s->capture, frame, len);
    if (s->next == s->count) {
        if (++s->round >= s->repeat || s->count == 0)
            return ES_ERR_NOT_FOUND;
        s->next = 0;
    }
    size_t start = s->next ? s->ends[s->next - 1] : 0;
    *frame = s->frames.data + start;
    *len = s->ends[s->next] - start;
    s->next++;
    return ES_OK;
}

const char *ingest_source_name(const ingest_source *s)
{
    return s->name;
}

void ingest_source_close(ingest_source *s)
{
    if (s == NULL)
        return;
    es_atp_capture_close(s->capture);
    es_buf_free(&s->frames);
    free(s->ends);
    free(s);
}
