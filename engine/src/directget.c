#include "directget.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/internal.h"
#include "jsapi.h"
#include "base/newid.h"
#include "store_impl.h"
#include "base/timefmt.h"

static uint64_t header_u64(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK ? strtoull(v, NULL, 10) : 0;
}

static json_t *request_json(const es_dg_request *req, uint64_t from, int batch)
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
static es_status read_batch(const es_store *st, natsSubscription *sub, uint64_t up_to, es_dg_cb cb,
                            void *closure, round *r)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, sub, st->opts.timeout_ms);
        if (ns != NATS_OK)
            return es_nats_status(ns, "direct get");
        const char *status = NULL;
        if (natsMsgHeader_Get(m, "Status", &status) == NATS_OK) {
            es_status s = ES_OK;
            if (strcmp(status, "204") == 0)
                r->pending = header_u64(m, "Nats-Num-Pending");
            else if (strcmp(status, "404") != 0) {
                const char *desc = NULL;
                natsMsgHeader_Get(m, "Description", &desc);
                s = es_error(ES_ERR_SERVER, "direct get: status %s %s", status, desc ? desc : "");
            }
            natsMsg_Destroy(m);
            return s;
        }
        const char *subject = NULL, *ts = NULL;
        natsMsgHeader_Get(m, "Nats-Subject", &subject);
        natsMsgHeader_Get(m, "Nats-Time-Stamp", &ts);
        uint64_t seq = header_u64(m, "Nats-Sequence");
        int64_t stored = 0;
        if (ts)
            es_time_parse(ts, &stored);
        es_status s = ES_OK;
        if (subject == NULL || seq == 0)
            s = es_error(ES_ERR_PROTOCOL, "direct get: a message without subject or sequence");
        else if (up_to && seq > up_to)
            r->beyond = true; /* the server does not bound batches: do it here */
        else {
            s = cb(m, subject, seq, stored, closure);
            r->last_seq = seq;
            r->delivered++;
        }
        natsMsg_Destroy(m);
        if (s != ES_OK) /* drain nothing: the subscription is dropped with its leftovers */
            return s;
    }
}

es_status es_direct_get(const es_store *st, const es_dg_request *req, es_dg_cb cb, void *closure,
                        uint64_t *last_seq)
{
    char inbox[64], subject[128];
    char id[ES_NEW_ID_LEN + 1];
    es_new_id(id);
    snprintf(inbox, sizeof inbox, "_INBOX.%s", id);
    snprintf(subject, sizeof subject, "$JS.API.DIRECT.GET.%s", st->stream);
    natsSubscription *sub = NULL;
    es_status s = es_nats_status(natsConnection_SubscribeSync(&sub, st->nc, inbox), "direct get");
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
        s = es_nats_status(
            natsConnection_PublishRequest(st->nc, subject, inbox, body, (int)strlen(body)),
            "direct get");
        free(body);
        round r;
        if (s == ES_OK)
            s = read_batch(st, sub, req->up_to_seq, cb, closure, &r);
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
        natsSubscription_Destroy(sub);
    else
        es_sub_close(st->nc, sub);
    return s;
}
