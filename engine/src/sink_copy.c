/* A unit's events kept by the sink (sink_copy.h). Laid out as
 * [es_event_spec x n][es_meta x all entries][es_filter x expect filters]
 * [bytes: strings, payloads, key]. */
#include "sink_copy.h"

#include <stdint.h>
#include <string.h>

#include <es/read.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/newid.h"

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static size_t id_len_of(const es_event_spec *e)
{
    if (e->entity_id == NULL)
        return 0;
    return e->entity_id_len ? e->entity_id_len : strlen(e->entity_id);
}

static bool has_data(const es_event_spec *e)
{
    return e->data != NULL && e->data_len > 0;
}

static bool has_meta(const es_event_spec *e)
{
    return e->meta != NULL && e->meta_count > 0;
}

static size_t filter_id_len(const es_filter *f)
{
    if (f->entity_id == NULL)
        return 0;
    return f->entity_id_len ? f->entity_id_len : strlen(f->entity_id);
}

static size_t filter_bytes(const es_filter *f)
{
    if (f == NULL)
        return 0;
    return str_size(f->tenant) + str_size(f->entity_type) + str_size(f->event_type) +
           (f->entity_id ? filter_id_len(f) + 1 : 0);
}

/* The bytes one event's strings and payload take in the copy. */
static size_t event_bytes(const es_event_spec *e)
{
    size_t n = str_size(e->tenant) + str_size(e->entity_type) + str_size(e->event_type) +
               str_size(e->codec);
    n += e->event_id ? str_size(e->event_id) : ES_NEW_ID_LEN + 1;
    if (e->entity_id != NULL)
        n += id_len_of(e) + 1;
    if (has_data(e))
        n += e->data_len;
    if (has_meta(e))
        for (size_t i = 0; i < e->meta_count; i++)
            n += str_size(e->meta[i].key) + str_size(e->meta[i].value);
    return n + filter_bytes(e->expect_filter);
}

/* Copies `len` bytes and a NUL at *at; returns the copy. */
static char *put_bytes(char **at, const void *src, size_t len)
{
    char *dst = *at;
    memcpy(dst, src, len);
    dst[len] = '\0';
    *at += len + 1;
    return dst;
}

static const char *put_str(char **at, const char *s)
{
    return s ? put_bytes(at, s, strlen(s)) : NULL;
}

static const es_filter *copy_filter(const es_filter *src, es_filter **filters, char **at)
{
    es_filter *f = (*filters)++;
    *f = *src;
    f->tenant = put_str(at, src->tenant);
    f->entity_type = put_str(at, src->entity_type);
    f->event_type = put_str(at, src->event_type);
    if (src->entity_id != NULL) {
        f->entity_id_len = filter_id_len(src);
        f->entity_id = put_bytes(at, src->entity_id, f->entity_id_len);
    }
    return f;
}

static void copy_event(const es_event_spec *src, es_event_spec *dst, es_meta **metas,
                       es_filter **filters, char **at, int64_t now_ns)
{
    *dst = *src;
    dst->tenant = put_str(at, src->tenant);
    dst->entity_type = put_str(at, src->entity_type);
    dst->event_type = put_str(at, src->event_type);
    dst->codec = put_str(at, src->codec);
    if (src->entity_id != NULL) {
        size_t len = id_len_of(src);
        dst->entity_id = put_bytes(at, src->entity_id, len);
        dst->entity_id_len = len;
    }
    if (src->event_id != NULL) {
        dst->event_id = put_str(at, src->event_id);
    } else { /* the id is chosen once: a retry is the same append */
        esi_new_id(*at);
        dst->event_id = *at;
        *at += ES_NEW_ID_LEN + 1;
    }
    if (src->time_ns == 0)
        dst->time_ns = now_ns;
    if (has_data(src)) {
        memcpy(*at, src->data, src->data_len);
        dst->data = *at;
        *at += src->data_len;
    } else if (src->data_len == 0) {
        dst->data = NULL; /* nothing to point to (never the caller's memory) */
    }
    if (src->meta_count == 0)
        dst->meta = NULL;
    if (has_meta(src)) {
        es_meta *m = *metas;
        for (size_t i = 0; i < src->meta_count; i++) {
            m[i].key = put_str(at, src->meta[i].key);
            m[i].value = put_str(at, src->meta[i].value);
        }
        dst->meta = m;
        *metas += src->meta_count;
    }
    if (src->expect_filter != NULL)
        dst->expect_filter = copy_filter(src->expect_filter, filters, at);
}

es_status esi_sink_copy_make(const es_event_spec *events, size_t n, const char *key, size_t key_len,
                             int64_t now_ns, esi_sink_copy *out)
{
    size_t metas = 0, filters = 0, bytes = key_len + 1;
    for (size_t i = 0; i < n; i++) {
        if (has_meta(&events[i]))
            metas += events[i].meta_count;
        filters += events[i].expect_filter != NULL;
        bytes += event_bytes(&events[i]);
    }
    size_t head = n * sizeof(es_event_spec) + metas * sizeof(es_meta) + filters * sizeof(es_filter);
    if (bytes > SIZE_MAX - head)
        return es_error(ES_ERR_NOMEM, "sink: a unit too large to copy");
    char *mem = esi_malloc(head + bytes);
    if (mem == NULL)
        return es_error(ES_ERR_NOMEM, "sink: out of memory copying a unit of %zu bytes",
                        head + bytes);
    es_event_spec *specs = (es_event_spec *)(void *)mem;
    es_meta *meta_at = (es_meta *)(void *)(mem + n * sizeof(es_event_spec));
    es_filter *filter_at = (es_filter *)(void *)(meta_at + metas);
    char *at = mem + head;
    for (size_t i = 0; i < n; i++)
        copy_event(&events[i], &specs[i], &meta_at, &filter_at, &at, now_ns);
    out->key = put_bytes(&at, key ? key : "", key_len);
    out->key_len = key_len;
    out->events = specs;
    out->count = n;
    out->bytes = head + bytes;
    return ES_OK;
}
