#include "transport/directget.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/newid.h"
#include "base/clock.h"
#include "transport/msg.h"

static uint64_t header_u64(natsMsg *m, const char *name)
{
    const char *v = esi_msg_header(m, name);
    return v != NULL ? strtoull(v, NULL, 10) : 0;
}

static json_t *request_json(const esi_dg_request *req, uint64_t from, int batch)
{
    json_t *j = json_pack("{s:s, s:i}", "next_by_subj", req->filter, "batch", batch);
    if (from > 0 || req->start_time_ns == 0) {
        json_object_set_new(j, "seq", json_integer((json_int_t)(from ? from : 1)));
    } else {
        char when[ES_TIME_MAX];
        es_time_format(req->start_time_ns, when);
        json_object_set_new(j, "start_time", json_string(when));
    }
    return j;
}

typedef struct round {
    uint64_t last_seq; /* last message delivered in this round */
    uint64_t pending;  /* what the EOB says is left beyond this batch */
    uint64_t delivered;
    bool beyond; /* a message past up_to_seq came: nothing more is wanted */
} round;

/* One or more requests to a stream's direct gets (<prefix>.DIRECT.GET.<stream>)
 * and the inbox subscription their answers come to. */
typedef struct exchange {
    char api[256];
    char inbox[64];
    esi_sub *sub;
    uint64_t denials; /* esi_conn_denials() before the last request */
} exchange;

static es_status exchange_open(const esi_js *js, const char *stream, exchange *x)
{
    char id[ES_NEW_ID_LEN + 1];
    esi_new_id(id);
    snprintf(x->inbox, sizeof x->inbox, "_INBOX.%s", id);
    x->sub = NULL;
    const esi_conn *conn = esi_js_conn(js);
    es_status s = esi_js_api_subject(js, x->api, sizeof x->api, "DIRECT.GET.%s", stream);
    return s == ES_OK ? conn->ops->subscribe_sync(conn->ctx, x->inbox, 0, 0, &x->sub) : s;
}

static es_status exchange_send(const esi_js *js, exchange *x, const char *body)
{
    const esi_conn *conn = esi_js_conn(js);
    x->denials = esi_conn_denials();
    return conn->ops->publish_data(conn->ctx, x->api, x->inbox, body, strlen(body));
}

/* Frees the subscription: at once when every answer was read (nothing more
 * comes), else through close (answers may still be in flight). */
static void exchange_close(const esi_js *js, exchange *x, bool read_all)
{
    const esi_conn *conn = esi_js_conn(js);
    if (read_all)
        conn->ops->release(conn->ctx, x->sub);
    else
        esi_js_sub_close(js, x->sub);
}

/* The next answer of a batch into *m (the caller's), waited for in slices:
 * the server refusing this user the API subject sends no answer, only an
 * asynchronous error, which ends the wait at once. */
static es_status next_answer(const esi_js *js, const exchange *x, natsMsg **m)
{
    const esi_conn *conn = esi_js_conn(js);
    int64_t timeout_ms = esi_js_timeout_ms(js), deadline = esi_monotonic_ms() + timeout_ms;
    for (int64_t left = timeout_ms; left > 0; left = deadline - esi_monotonic_ms()) {
        es_status s =
            conn->ops->next_msg(x->sub, left < ESI_DENIAL_POLL_MS ? left : ESI_DENIAL_POLL_MS, m);
        if (s != ES_ERR_TIMEOUT)
            return s;
        if ((s = esi_conn_denial_since(conn, x->api, x->denials)) != ES_OK)
            return s;
    }
    es_status s = esi_conn_denied_or(conn, x->api, ES_ERR_TIMEOUT);
    return s == ES_ERR_TIMEOUT ? es_error(s, "direct get: no answer in time") : s;
}

/* The status message `m` (taken) that ends a batch: 204, its end (with
 * *pending, what matches beyond it), 404 (nothing matched), or an error. */
static es_status batch_end(natsMsg *m, const char *status, uint64_t *pending)
{
    es_status s = ES_OK;
    if (strcmp(status, "204") == 0) {
        *pending = header_u64(m, "Nats-Num-Pending");
    } else if (strcmp(status, "404") != 0) {
        const char *desc = esi_msg_header(m, "Description");
        s = es_error(ES_ERR_SERVER, "direct get: status %s %s", status, desc ? desc : "");
    }
    esi_msg_destroy(m);
    return s;
}

/* One request of an exchange and its first answer. */
typedef struct ask {
    const esi_js *js;
    exchange *x;
    const char *body;
    natsMsg *first;
} ask;

static es_status ask_once(void *closure)
{
    ask *a = closure;
    es_status s = exchange_send(a->js, a->x, a->body);
    if (s == ES_OK)
        s = next_answer(a->js, a->x, &a->first);
    if (s == ES_OK && esi_msg_no_responders(a->first)) {
        esi_msg_destroy(a->first);
        a->first = NULL;
        s = esi_nats_status(NATS_NO_RESPONDERS, a->x->api);
    }
    return s;
}

/* Sends `body` and takes its first answer into *first (the caller's). A
 * stream's replicas answer direct gets only once they are current: right
 * after a stream's (a KV bucket's) creation on a cluster a request may find
 * none ("no responders") although the stream exists. That is asked again,
 * with the transport's backoff, within the request's timeout. */
static es_status exchange_ask(const esi_js *js, exchange *x, const char *body, natsMsg **first)
{
    ask a = {js, x, body, NULL};
    es_status s = esi_js_retry_for(esi_js_timeout_ms(js), esi_js_no_responders, ask_once, &a);
    *first = a.first;
    return s;
}

typedef struct one {
    const esi_js *js;
    const char *api;
    natsMsg *reply;
} one;

static es_status get_once(void *closure)
{
    one *o = closure;
    const esi_conn *conn = esi_js_conn(o->js);
    return conn->ops->request(conn->ctx, o->api, NULL, 0, esi_js_timeout_ms(o->js), &o->reply);
}

es_status esi_direct_get_one(const esi_js *js, const char *api, natsMsg **reply)
{
    one o = {js, api, NULL};
    es_status s = esi_js_retry_for(esi_js_timeout_ms(js), esi_js_no_responders, get_once, &o);
    *reply = o.reply;
    return s;
}

/* Reads one batch's answers off `sub`, the first one given, until EOB (or
 * 404: nothing matched). */
static es_status read_batch(const esi_js *js, const exchange *x, natsMsg *first, uint64_t up_to,
                            esi_dg_cb cb, void *closure, round *r)
{
    memset(r, 0, sizeof *r);
    for (natsMsg *m = first;; m = NULL) {
        es_status s = m != NULL ? ES_OK : next_answer(js, x, &m);
        if (s != ES_OK)
            return s;
        const char *status = esi_msg_header(m, "Status");
        if (status != NULL)
            return batch_end(m, status, &r->pending);
        const char *subject = esi_msg_header(m, "Nats-Subject");
        const char *ts = esi_msg_header(m, "Nats-Time-Stamp");
        uint64_t seq = header_u64(m, "Nats-Sequence");
        int64_t stored = 0;
        if (ts)
            es_time_parse(ts, &stored);
        if (subject == NULL || seq == 0)
            s = es_error(ES_ERR_PROTOCOL, "direct get: a message without subject or sequence");
        else if (up_to && seq > up_to)
            r->beyond = true; /* the server does not bound batches: do it here */
        else {
            s = cb(m, subject, seq, stored, closure);
            r->last_seq = seq;
            r->delivered++;
        }
        esi_msg_destroy(m);
        if (s != ES_OK) /* drain nothing: the subscription is dropped with its leftovers */
            return s;
    }
}

es_status esi_direct_get(const esi_js *js, const char *stream, const esi_dg_request *req,
                         esi_dg_cb cb, void *closure, uint64_t *last_seq)
{
    exchange x;
    es_status s = exchange_open(js, stream, &x);
    if (last_seq)
        *last_seq = 0;
    uint64_t from = req->start_seq, total = 0;
    while (s == ES_OK) {
        int batch = req->batch;
        if (req->max_msgs && req->max_msgs - total < (uint64_t)batch)
            batch = (int)(req->max_msgs - total);
        json_t *j = request_json(req, from, batch);
        char *body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (body == NULL) {
            s = es_error(ES_ERR_NOMEM, "out of memory");
            break;
        }
        natsMsg *first = NULL;
        s = exchange_ask(js, &x, body, &first);
        esi_free_foreign(body); /* jansson's */
        round r;
        if (s == ES_OK)
            s = read_batch(js, &x, first, req->up_to_seq, cb, closure, &r);
        if (s != ES_OK)
            break;
        total += r.delivered;
        if (r.last_seq && last_seq)
            *last_seq = r.last_seq;
        /* Done when nothing is left, or the caller's bound or budget is reached. */
        if (r.pending == 0 || r.delivered == 0 || r.beyond ||
            (req->up_to_seq && r.last_seq >= req->up_to_seq) ||
            (req->max_msgs && total >= req->max_msgs))
            break;
        from = r.last_seq + 1;
    }
    /* Every batch was read to its end, unless a read stopped early (a
     * callback, an error). */
    exchange_close(js, &x, s == ES_OK);
    return s;
}

/* ---- the last message of many subjects (multi_last) ---------------------- */

#define MULTI_LAST_BYTES (256 * 1024) /* request size, well within a server's max payload */

/* A subject asked for and its place in the caller's arrays. */
typedef struct asked {
    const char *subject;
    size_t index;
} asked;

typedef struct last_query {
    asked *sorted; /* by subject, for the answers' lookup */
    size_t n;
    uint64_t *seqs;
} last_query;

static int by_subject(const void *a, const void *b)
{
    return strcmp(((const asked *)a)->subject, ((const asked *)b)->subject);
}

static long find_subject(const last_query *q, const char *subject)
{
    size_t lo = 0, hi = q->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(q->sorted[mid].subject, subject);
        if (c == 0)
            return (long)q->sorted[mid].index;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Reads the answers of one multi_last request, the first one given, up to
 * its end of batch. */
static es_status read_last(const esi_js *js, const exchange *x, natsMsg *first, const last_query *q)
{
    natsMsg *m = first;
    for (size_t answers = 0; answers <= q->n; answers++, m = NULL) {
        es_status s = m != NULL ? ES_OK : next_answer(js, x, &m);
        if (s != ES_OK)
            return s;
        const char *status = esi_msg_header(m, "Status");
        uint64_t pending = 0;
        if (status != NULL)
            return batch_end(m, status, &pending);
        const char *subject = esi_msg_header(m, "Nats-Subject");
        long i = subject ? find_subject(q, subject) : -1;
        if (i >= 0)
            q->seqs[i] = header_u64(m, "Nats-Sequence");
        esi_msg_destroy(m);
    }
    return es_error(ES_ERR_PROTOCOL, "direct get: more answers than subjects asked for");
}

static char *multi_last_body(const char *const *subjects, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        if (json_array_append_new(list, json_string(subjects[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    json_t *body =
        list ? json_pack("{s:o, s:I}", "multi_last", list, "batch", (json_int_t)n) : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

/* One request for subjects[0..n), n <= ESI_DG_MULTI_LAST_MAX. */
static es_status last_seqs_once(const esi_js *js, const char *stream, const char *const *subjects,
                                size_t n, uint64_t *seqs)
{
    last_query q = {esi_calloc(n, sizeof(asked)), n, seqs};
    char *body = multi_last_body(subjects, n);
    es_status s = q.sorted && body ? ES_OK : es_error(ES_ERR_NOMEM, "out of memory");
    if (s == ES_OK) {
        for (size_t i = 0; i < n; i++)
            q.sorted[i] = (asked){subjects[i], i};
        qsort(q.sorted, n, sizeof *q.sorted, by_subject);
    }
    exchange x = {.sub = NULL};
    if (s == ES_OK)
        s = exchange_open(js, stream, &x);
    natsMsg *first = NULL;
    if (s == ES_OK)
        s = exchange_ask(js, &x, body, &first);
    if (s == ES_OK)
        s = read_last(js, &x, first, &q);
    exchange_close(js, &x, s == ES_OK);
    esi_free_foreign(body); /* jansson's */
    esi_free(q.sorted);
    return s;
}

es_status esi_direct_last_seqs(const esi_js *js, const char *stream, const char *const *subjects,
                               size_t n, uint64_t *seqs)
{
    memset(seqs, 0, n * sizeof *seqs);
    /* Chunks bounded in count (the server's multi_last limit) and in bytes. */
    for (size_t start = 0, end; start < n; start = end) {
        size_t bytes = 0;
        end = start;
        while (end < n && end - start < ESI_DG_MULTI_LAST_MAX &&
               (end == start || bytes + strlen(subjects[end]) + 3 < MULTI_LAST_BYTES))
            bytes += strlen(subjects[end++]) + 3;
        es_status s = last_seqs_once(js, stream, subjects + start, end - start, seqs + start);
        if (s != ES_OK)
            return s;
    }
    return ES_OK;
}

/* ---- the last message of one subject filter (last_by_subj) --------------- */

es_status esi_direct_last_seq(const esi_js *js, const char *stream, const char *filter,
                              uint64_t *seq)
{
    *seq = 0;
    json_t *j = json_pack("{s:s}", "last_by_subj", filter);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (body == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    exchange x;
    es_status s = exchange_open(js, stream, &x);
    natsMsg *m = NULL;
    if (s == ES_OK)
        s = exchange_ask(js, &x, body, &m);
    esi_free_foreign(body); /* jansson's */
    if (s == ES_OK) { /* one answer: the message, or a status (404: none matches) */
        const char *status = esi_msg_header(m, "Status");
        uint64_t pending = 0;
        if (status == NULL) {
            *seq = header_u64(m, "Nats-Sequence");
            esi_msg_destroy(m);
        } else {
            s = batch_end(m, status, &pending);
        }
    }
    exchange_close(js, &x, s == ES_OK);
    return s;
}
