/* JetStream API requests of es-tool (jsinfo.h). */
#include "jsinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/store.h>
#include <es/subject.h>

#include "base/internal.h"
#include "store_impl.h" /* TEMPORARY: esi_store_js until the public API lists stores */
#include "transport/js.h"
#include "transport/msg.h"

/* TEMPORARY: a request through the library's private JetStream context. */
static es_status es_js_request(natsConnection *nc, const char *subject, json_t *body,
                               int64_t timeout_ms, json_t **reply)
{
    esi_js *js = NULL;
    es_store_options o;
    es_store_options_init(&o);
    o.timeout_ms = timeout_ms;
    es_status s = esi_store_js(nc, &o, &js);
    if (s == ES_OK)
        s = esi_js_request(js, subject, body, timeout_ms, reply);
    esi_js_destroy(js);
    return s;
}

#define PAGES_MAX     1000000 /* a bound no real server reaches */
#define REQUEST_BYTES (256 * 1024)

/* ---- paged lists ------------------------------------------------------------- */

/* Requests pages of `subject` until `total` is reached or a page is empty;
 * `items` names the reply's array; each element goes to cb. */
static es_status paged(natsConnection *nc, const char *subject, json_t *body_template,
                       const char *items, int64_t timeout_ms,
                       es_status (*each)(json_t *item, void *closure), void *closure)
{
    size_t offset = 0;
    for (int page = 0; page < PAGES_MAX; page++) {
        json_t *body = json_deep_copy(body_template);
        json_object_set_new(body, "offset", json_integer((json_int_t)offset));
        json_t *reply = NULL;
        es_status s = es_js_request(nc, subject, body, timeout_ms, &reply);
        json_decref(body);
        if (s != ES_OK)
            return s;
        json_t *list = json_object_get(reply, items);
        size_t n = json_array_size(list);
        size_t total = (size_t)json_integer_value(json_object_get(reply, "total"));
        for (size_t i = 0; i < n && s == ES_OK; i++)
            s = each(json_array_get(list, i), closure);
        json_decref(reply);
        offset += n;
        if (s != ES_OK || n == 0 || offset >= total)
            return s;
    }
    return es_error(ES_ERR_LIMIT, "%s: too many pages", subject);
}

typedef struct store_filter {
    tool_stream_cb cb;
    void *closure;
} store_filter;

/* A stream is a store when it is named ES_<name> and has exactly $ES.<name>.> */
static es_status each_store(json_t *info, void *closure)
{
    store_filter *f = closure;
    json_t *cfg = json_object_get(info, "config");
    const char *name = json_string_value(json_object_get(cfg, "name"));
    json_t *subjects = json_object_get(cfg, "subjects");
    if (name == NULL || strncmp(name, "ES_", 3) != 0 || !es_valid_store_name(name + 3) ||
        json_array_size(subjects) != 1)
        return ES_OK;
    char want[64];
    snprintf(want, sizeof want, "$ES.%s.>", name + 3);
    if (!esi_json_string_is(json_array_get(subjects, 0), want))
        return ES_OK;
    return f->cb(info, f->closure);
}

es_status tool_list_stores(natsConnection *nc, int64_t timeout_ms, tool_stream_cb cb, void *closure)
{
    store_filter f = {cb, closure};
    json_t *body = json_pack("{s:s}", "subject", "$ES.>");
    es_status s = paged(nc, "$JS.API.STREAM.LIST", body, "streams", timeout_ms, each_store, &f);
    json_decref(body);
    return s;
}

typedef struct bucket_filter {
    natsConnection *nc;
    char prefix[64];
    int64_t timeout_ms;
    tool_stream_cb cb;
    void *closure;
} bucket_filter;

static es_status each_bucket(json_t *item, void *closure)
{
    bucket_filter *f = closure;
    const char *name = json_string_value(item);
    size_t plen = strlen(f->prefix);
    /* KV_ES_a_keys belongs to store a; KV_ES_a_b_keys to store a_b, not a. */
    if (name == NULL || strncmp(name, f->prefix, plen) != 0 || name[plen] == '\0' ||
        strchr(name + plen, '_') != NULL)
        return ES_OK;
    char subject[256];
    snprintf(subject, sizeof subject, "$JS.API.STREAM.INFO.%s", name);
    json_t *info = NULL;
    es_status s = es_js_request(f->nc, subject, NULL, f->timeout_ms, &info);
    if (s == ES_ERR_NOT_FOUND) /* deleted meanwhile */
        return ES_OK;
    if (s == ES_OK)
        s = f->cb(info, f->closure);
    json_decref(info);
    return s;
}

es_status tool_list_buckets(natsConnection *nc, const char *store, int64_t timeout_ms,
                            tool_stream_cb cb, void *closure)
{
    bucket_filter f = {nc, "", timeout_ms, cb, closure};
    snprintf(f.prefix, sizeof f.prefix, "KV_ES_%s_", store);
    json_t *body = json_object();
    es_status s = paged(nc, "$JS.API.STREAM.NAMES", body, "streams", timeout_ms, each_bucket, &f);
    json_decref(body);
    return s;
}

/* ---- subject counts ---------------------------------------------------------- */

static int by_subject(const void *a, const void *b)
{
    return strcmp(((const tool_subject_count *)a)->subject,
                  ((const tool_subject_count *)b)->subject);
}

es_status tool_subjects_walk(natsConnection *nc, const char *stream, const char *filter,
                             int64_t timeout_ms, tool_subjects_cb cb, void *closure)
{
    char subject[128];
    snprintf(subject, sizeof subject, "$JS.API.STREAM.INFO.%s", stream);
    size_t offset = 0;
    es_status s = ES_OK;
    for (int page = 0; page < PAGES_MAX && s == ES_OK; page++) {
        json_t *body =
            json_pack("{s:s, s:I}", "subjects_filter", filter, "offset", (json_int_t)offset);
        json_t *reply = NULL;
        s = es_js_request(nc, subject, body, timeout_ms, &reply);
        json_decref(body);
        if (s != ES_OK)
            return s;
        json_t *subjects = json_object_get(json_object_get(reply, "state"), "subjects");
        size_t n = json_object_size(subjects);
        size_t total = (size_t)json_integer_value(json_object_get(reply, "total"));
        tool_subject_count *items = n ? calloc(n, sizeof *items) : NULL;
        if (n > 0 && items == NULL) {
            json_decref(reply);
            return es_error(ES_ERR_NOMEM, "out of memory");
        }
        size_t i = 0;
        const char *key;
        json_t *value;
        json_object_foreach(subjects, key, value)
        {
            if (i < n)
                items[i++] = (tool_subject_count){key, (uint64_t)json_integer_value(value)};
        }
        /* The server sorts across pages; sort the page too rather than trust
         * the order of a JSON object. */
        qsort(items, i, sizeof *items, by_subject);
        if (i > 0)
            s = cb(items, i, closure);
        free(items);
        json_decref(reply);
        offset += n;
        if (n == 0 || offset >= total)
            return s;
    }
    return s == ES_OK ? es_error(ES_ERR_LIMIT, "%s: too many pages", subject) : s;
}

/* ---- last sequences ---------------------------------------------------------- */

static uint64_t header_u64(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK ? strtoull(v, NULL, 10) : 0;
}

static long find_subject(const char *const *subjects, size_t n, const char *subject)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(subjects[mid], subject);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Reads the answers of one multi_last request until its end of batch. */
static es_status read_last(natsSubscription *sub, const char *const *subjects, size_t n,
                           int64_t timeout_ms, uint64_t *seqs)
{
    for (size_t answers = 0; answers <= n; answers++) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, sub, timeout_ms);
        if (ns != NATS_OK)
            return esi_nats_status(ns, "direct get");
        const char *status = NULL, *subject = NULL;
        if (natsMsgHeader_Get(m, "Status", &status) == NATS_OK) {
            es_status s = ES_OK;
            if (strcmp(status, "204") != 0 && strcmp(status, "404") != 0) {
                const char *desc = NULL;
                natsMsgHeader_Get(m, "Description", &desc);
                s = es_error(ES_ERR_SERVER, "direct get: status %s %s", status, desc ? desc : "");
            }
            natsMsg_Destroy(m);
            return s;
        }
        natsMsgHeader_Get(m, "Nats-Subject", &subject);
        long i = subject ? find_subject(subjects, n, subject) : -1;
        if (i >= 0)
            seqs[i] = header_u64(m, "Nats-Sequence");
        natsMsg_Destroy(m);
    }
    return es_error(ES_ERR_PROTOCOL, "direct get: more answers than subjects asked for");
}

/* One request for subjects[0..n), n <= TOOL_MULTI_LAST_MAX. */
static es_status last_seqs_once(natsConnection *nc, const char *stream, const char *const *subjects,
                                size_t n, int64_t timeout_ms, uint64_t *seqs)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(subjects[i]));
    json_t *body = json_pack("{s:o, s:I}", "multi_last", list, "batch", (json_int_t)n);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    char inbox[128], subject[128];
    natsInbox *ib = NULL;
    natsInbox_Create(&ib);
    snprintf(inbox, sizeof inbox, "%s", ib ? (const char *)ib : "_INBOX.es-tool");
    natsInbox_Destroy(ib);
    snprintf(subject, sizeof subject, "$JS.API.DIRECT.GET.%s", stream);
    natsSubscription *sub = NULL;
    es_status s = esi_nats_status(natsConnection_SubscribeSync(&sub, nc, inbox), "direct get");
    if (s == ES_OK)
        s = esi_nats_status(
            natsConnection_PublishRequest(nc, subject, inbox, text, (int)strlen(text)),
            "direct get");
    free(text);
    if (s == ES_OK)
        s = read_last(sub, subjects, n, timeout_ms, seqs);
    natsSubscription_Unsubscribe(sub); /* TEMPORARY */
    natsConnection_FlushTimeout(nc, 2000);
    natsSubscription_Destroy(sub);
    return s;
}

es_status tool_last_seqs(natsConnection *nc, const char *stream, const char *const *subjects,
                         size_t n, int64_t timeout_ms, uint64_t *seqs)
{
    memset(seqs, 0, n * sizeof *seqs);
    /* Chunks bounded in count (the server's multi_last limit) and in bytes
     * (the request must fit the server's max payload). */
    size_t start = 0;
    while (start < n) {
        size_t end = start, bytes = 0;
        while (end < n && end - start < TOOL_MULTI_LAST_MAX &&
               (end == start || bytes + strlen(subjects[end]) + 3 < REQUEST_BYTES))
            bytes += strlen(subjects[end++]) + 3;
        es_status s =
            last_seqs_once(nc, stream, subjects + start, end - start, timeout_ms, seqs + start);
        if (s != ES_OK)
            return s;
        start = end;
    }
    return ES_OK;
}
