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

/* Reads one batch's answers off `sub` until EOB (or 404: nothing matched). */
static es_status read_batch(const esi_js *js, esi_sub *sub, uint64_t up_to, esi_dg_cb cb,
                            void *closure, round *r)
{
    memset(r, 0, sizeof *r);
    const esi_conn *conn = esi_js_conn(js);
    for (;;) {
        natsMsg *m = NULL;
        es_status s = conn->ops->next_msg(sub, esi_js_timeout_ms(js), &m);
        if (s != ES_OK)
            return s == ES_ERR_TIMEOUT ? es_error(s, "direct get: no answer in time") : s;
        const char *status = esi_msg_header(m, "Status");
        if (status != NULL) {
            if (strcmp(status, "204") == 0)
                r->pending = header_u64(m, "Nats-Num-Pending");
            else if (strcmp(status, "404") != 0) {
                const char *desc = esi_msg_header(m, "Description");
                s = es_error(ES_ERR_SERVER, "direct get: status %s %s", status, desc ? desc : "");
            }
            esi_msg_destroy(m);
            return s;
        }
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

es_status esi_direct_get(const esi_js *js, const char *stream, const esi_dg_request *req, esi_dg_cb cb,
                        void *closure, uint64_t *last_seq)
{
    char inbox[64], subject[256];
    char id[ES_NEW_ID_LEN + 1];
    esi_new_id(id);
    snprintf(inbox, sizeof inbox, "_INBOX.%s", id);
    const esi_conn *conn = esi_js_conn(js);
    esi_sub *sub = NULL;
    es_status s = esi_js_api_subject(js, subject, sizeof subject, "DIRECT.GET.%s", stream);
    if (s == ES_OK)
        s = conn->ops->subscribe_sync(conn->ctx, inbox, 0, 0, &sub);
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
        s = conn->ops->publish_data(conn->ctx, subject, inbox, body, strlen(body));
        esi_free_foreign(body); /* jansson's */
        round r;
        if (s == ES_OK)
            s = read_batch(js, sub, req->up_to_seq, cb, closure, &r);
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
    /* Every batch was read to its end: nothing more comes. A read that
     * stopped early (a callback, an error) leaves answers in flight. */
    if (s == ES_OK)
        conn->ops->release(conn->ctx, sub);
    else
        esi_js_sub_close(js, sub);
    return s;
}
