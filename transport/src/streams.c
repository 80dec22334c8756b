/* Paged JetStream listings: see streams.h. */
#include "transport/streams.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"

/* One page of `api`: `body` (may be NULL: empty) with the page's offset. */
static es_status page(const esi_js *js, const char *api, json_t *body, size_t offset,
                      json_t **reply)
{
    json_t *req = body ? json_deep_copy(body) : json_object();
    if (req == NULL || json_object_set_new(req, "offset", json_integer((json_int_t)offset)) != 0) {
        json_decref(req);
        return es_error(ES_ERR_NOMEM, "out of memory");
    }
    es_status s = esi_js_request(js, api, req, 0, reply);
    json_decref(req);
    return s;
}

static size_t total_of(json_t *reply)
{
    json_int_t t = json_integer_value(json_object_get(reply, "total"));
    return t > 0 ? (size_t)t : 0;
}

/* Reads one page's items; *count gets how many it held. */
typedef es_status (*page_fn)(json_t *reply, size_t *count, void *closure);

/* Pages of `api` until the announced total or an empty page. Takes `body`. */
static es_status paged(const esi_js *js, const char *api, json_t *body, page_fn fn, void *closure)
{
    es_status s = body ? ES_OK : es_error(ES_ERR_NOMEM, "out of memory");
    size_t offset = 0;
    for (int n = 0; s == ES_OK; n++) {
        if (n == ESI_PAGES_MAX) {
            s = es_error(ES_ERR_LIMIT, "%s: too many pages", api);
            break;
        }
        json_t *reply = NULL;
        s = page(js, api, body, offset, &reply);
        if (s != ES_OK)
            break;
        size_t count = 0, total = total_of(reply);
        s = fn(reply, &count, closure);
        json_decref(reply);
        offset += count;
        if (count == 0 || offset >= total)
            break;
    }
    json_decref(body);
    return s;
}

/* The caller's callback (one of the two) and closure, for a page reader. */
typedef struct walk {
    esi_stream_cb on_stream;
    esi_subjects_cb on_subjects;
    void *closure;
} walk;

static es_status each_stream(json_t *reply, size_t *count, void *closure)
{
    const walk *w = closure;
    json_t *streams = json_object_get(reply, "streams");
    *count = json_array_size(streams);
    es_status s = ES_OK;
    for (size_t i = 0; i < *count && s == ES_OK; i++)
        s = w->on_stream(json_array_get(streams, i), w->closure);
    return s;
}

es_status esi_stream_list(const esi_js *js, const char *subject, esi_stream_cb cb, void *closure)
{
    char api[ESI_JS_PREFIX_MAX + 16];
    es_status s = esi_js_api_subject(js, api, sizeof api, "STREAM.LIST");
    walk w = {.on_stream = cb, .closure = closure};
    return s == ES_OK ? paged(js, api, json_pack("{s:s}", "subject", subject), each_stream, &w) : s;
}

typedef struct subject_count {
    const char *subject;
    uint64_t count;
} subject_count;

static int by_subject(const void *a, const void *b)
{
    return strcmp(((const subject_count *)a)->subject, ((const subject_count *)b)->subject);
}

/* Hands one page's subjects to the callback, sorted. */
static es_status each_subjects_page(json_t *reply, size_t *count, void *closure)
{
    const walk *w = closure;
    json_t *subjects = json_object_get(json_object_get(reply, "state"), "subjects");
    size_t n = *count = json_object_size(subjects);
    if (n == 0)
        return ES_OK;
    subject_count *items = esi_calloc(n, sizeof *items);
    const char **names = esi_calloc(n, sizeof *names);
    uint64_t *counts = esi_calloc(n, sizeof *counts);
    es_status s = items && names && counts ? ES_OK : es_error(ES_ERR_NOMEM, "out of memory");
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(subjects, key, value)
    {
        if (s == ES_OK && i < n) {
            json_int_t c = json_integer_value(value);
            items[i++] = (subject_count){key, c > 0 ? (uint64_t)c : 0};
        }
    }
    if (s == ES_OK) {
        qsort(items, i, sizeof *items, by_subject);
        for (size_t k = 0; k < i; k++) {
            names[k] = items[k].subject;
            counts[k] = items[k].count;
        }
        s = w->on_subjects(names, counts, i, w->closure);
    }
    esi_free(items);
    esi_free(names);
    esi_free(counts);
    return s;
}

es_status esi_stream_subjects(const esi_js *js, const char *stream, const char *filter,
                              esi_subjects_cb cb, void *closure)
{
    char api[ESI_JS_PREFIX_MAX + 320];
    es_status s = esi_js_api_subject(js, api, sizeof api, "STREAM.INFO.%s", stream);
    walk w = {.on_subjects = cb, .closure = closure};
    return s == ES_OK ? paged(js, api, json_pack("{s:s}", "subjects_filter", filter),
                              each_subjects_page, &w)
                      : s;
}

es_status esi_stream_last_seq(const esi_js *js, const char *stream, const char *filter,
                              uint64_t *seq)
{
    *seq = 0;
    char api[ESI_JS_PREFIX_MAX + 320];
    es_status s = esi_js_api_subject(js, api, sizeof api, "STREAM.MSG.GET.%s", stream);
    json_t *body = s == ES_OK ? json_pack("{s:s}", "last_by_subj", filter) : NULL;
    if (s == ES_OK && body == NULL)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    json_t *reply = NULL;
    if (s == ES_OK)
        s = esi_js_request(js, api, body, 0, &reply);
    json_decref(body);
    if (s == ES_ERR_NOT_FOUND) /* no message matches (the stream's absence shows elsewhere) */
        return ES_OK;
    if (s != ES_OK)
        return s;
    json_int_t n = json_integer_value(json_object_get(json_object_get(reply, "message"), "seq"));
    json_decref(reply);
    if (n <= 0)
        return es_error(ES_ERR_PROTOCOL, "%s: no message sequence in the reply", api);
    *seq = (uint64_t)n;
    return ES_OK;
}

typedef struct last_seq_ask {
    const esi_js *js;
    const char *stream, *filter;
    uint64_t seq;
} last_seq_ask;

static es_status ask_last_seq(void *closure)
{
    last_seq_ask *a = closure;
    return esi_stream_last_seq(a->js, a->stream, a->filter, &a->seq);
}

es_status esi_stream_last_seq_retried(const esi_js *js, const char *stream, const char *filter,
                                      uint64_t *seq)
{
    last_seq_ask a = {js, stream, filter, 0};
    es_status s = esi_js_retry(ask_last_seq, &a);
    *seq = a.seq;
    return s;
}
