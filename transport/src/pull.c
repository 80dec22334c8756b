/* A pull consumer client over raw JetStream requests: see pull.h. */
#include "transport/pull.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/newid.h"
#include "base/clock.h"
#include "transport/msg.h"

#define FIRST_WAIT_SLICE_MS 100 /* how often a waiting pull looks at the stop flag */
#define GAP_MS              5   /* a batch is what arrives without a pause longer than this */
#define MISSED_HEARTBEATS   3
#define KEEP_PIN_EXPIRES_MS 100 /* a pin keep-alive the server cannot answer at once */

struct esi_pull {
    const esi_js *js;
    const esi_conn *conn;
    esi_sub *sub;
    char inbox[64];
    char next_subject[512];
    char group[64];
    char pin[64];
    int64_t expires_ms, hb_ms, api_timeout_ms;
    bool open;             /* a request is outstanding on the server */
    int owed;              /* messages it may still bring */
    int64_t last_heard_ms; /* last message, status or heartbeat */
};

es_status esi_pull_create(const esi_js *js, const esi_pull_options *o, esi_pull **out)
{
    *out = NULL;
    if (js == NULL || o == NULL || o->stream == NULL || o->consumer == NULL || o->expires_ms <= 0 ||
        o->heartbeat_ms <= 0 || o->heartbeat_ms * 2 > o->expires_ms)
        return es_error(ES_ERR_INVALID, "pull: stream, consumer, and a heartbeat at most half "
                                        "the request's life are required");
    esi_pull *p = esi_calloc(1, sizeof *p);
    if (p == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    p->js = js;
    p->conn = esi_js_conn(js);
    p->expires_ms = o->expires_ms;
    p->hb_ms = o->heartbeat_ms;
    p->api_timeout_ms = esi_js_timeout_ms(js);
    es_status s = esi_js_api_subject(js, p->next_subject, sizeof p->next_subject,
                                     "CONSUMER.MSG.NEXT.%s.%s", o->stream, o->consumer);
    if (s != ES_OK) {
        esi_free(p);
        return s;
    }
    snprintf(p->group, sizeof p->group, "%s", o->group ? o->group : "");
    char id[ES_NEW_ID_LEN + 1];
    esi_new_id(id);
    snprintf(p->inbox, sizeof p->inbox, "_INBOX.%s", id);
    s = p->conn->ops->subscribe_sync(p->conn->ctx, p->inbox, 1 << 16, 1 << 30, &p->sub);
    if (s != ES_OK) {
        esi_free(p);
        return s;
    }
    *out = p;
    return ES_OK;
}

void esi_pull_destroy(esi_pull *p)
{
    if (p == NULL)
        return;
    esi_js_sub_close(p->js, p->sub); /* pulled messages may still be on their way */
    esi_free(p);
}

es_status esi_pull_drain(esi_pull *p, void (*cb)(natsMsg *m, void *closure), void *closure,
                        int64_t timeout_ms)
{
    es_status s = p->conn->ops->drain(p->conn->ctx, p->sub, timeout_ms);
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    while (s == ES_OK) {
        natsMsg *m = NULL;
        es_status r = p->conn->ops->next_msg(p->sub, FIRST_WAIT_SLICE_MS, &m);
        if (r == ES_ERR_TIMEOUT) {
            if (esi_monotonic_ms() >= deadline)
                s = es_error(ES_ERR_TIMEOUT, "pull: the inbox did not drain in %lld ms",
                             (long long)timeout_ms);
            continue;
        }
        if (r != ES_OK)
            break; /* drained: nothing more can come */
        if (esi_msg_header(m, "Status") != NULL && esi_msg_len(m) == 0)
            esi_msg_destroy(m);
        else
            cb(m, closure);
    }
    p->open = false;
    return s;
}

const char *esi_pull_pin(const esi_pull *p)
{
    return p->pin;
}

es_status esi_pull_keep_pin(const esi_pull *p)
{
    if (p->pin[0] == '\0' || p->group[0] == '\0')
        return ES_OK;
    /* max_bytes 1: a message found is refused (409) rather than delivered;
     * no_wait: none found is answered at once (404); both go nowhere. */
    json_t *req = json_pack("{s:i, s:i, s:b, s:I, s:s, s:s}", "batch", 1, "max_bytes", 1, "no_wait",
                            1, "expires", (json_int_t)KEEP_PIN_EXPIRES_MS * 1000000, "group",
                            p->group, "id", p->pin);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (text == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    char nowhere[sizeof p->inbox + 8];
    snprintf(nowhere, sizeof nowhere, "%s.pin", p->inbox); /* the inbox is no wildcard */
    es_status s =
        p->conn->ops->publish_data(p->conn->ctx, p->next_subject, nowhere, text, strlen(text));
    esi_free_foreign(text); /* jansson's */
    return s;
}

static es_status open_request(esi_pull *p, int batch)
{
    json_t *req =
        json_pack("{s:i, s:I, s:I}", "batch", batch, "expires", (json_int_t)p->expires_ms * 1000000,
                  "idle_heartbeat", (json_int_t)p->hb_ms * 1000000);
    if (req != NULL && p->group[0] != '\0')
        json_object_set_new(req, "group", json_string(p->group));
    if (req != NULL && p->pin[0] != '\0')
        json_object_set_new(req, "id", json_string(p->pin));
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (text == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status s =
        p->conn->ops->publish_data(p->conn->ctx, p->next_subject, p->inbox, text, strlen(text));
    esi_free_foreign(text); /* jansson's */
    if (s != ES_OK)
        return s;
    p->open = true;
    p->owed = batch;
    p->last_heard_ms = esi_monotonic_ms();
    return ES_OK;
}

/* A status message: true when it ends the request. */
static es_status on_status(esi_pull *p, natsMsg *m, const char *status, esi_pull_batch *b,
                           bool *ended)
{
    const char *desc = esi_msg_header(m, "Description");
    *ended = true;
    if (strcmp(status, "100") == 0) { /* idle heartbeat */
        *ended = false;
        return ES_OK;
    }
    p->open = false;
    if (strcmp(status, "404") == 0 || strcmp(status, "408") == 0) {
        b->idle = b->count == 0;
        return ES_OK;
    }
    if (strcmp(status, "423") == 0) { /* Nats-Pin-Id mismatch: someone else holds it now */
        p->pin[0] = '\0';
        b->lost_pin = true;
        b->idle = b->count == 0;
        return ES_OK;
    }
    if (strcmp(status, "409") == 0) {
        if (desc != NULL && strstr(desc, "Deleted") != NULL) {
            b->gone = true;
            return es_error(ES_ERR_NOT_FOUND, "pull: the consumer was deleted (%s)", desc);
        }
        b->refused = true; /* leadership change, max waiting...: ask again */
        return ES_OK;
    }
    return es_error(ES_ERR_SERVER, "pull: the server answered %s %s", status, desc ? desc : "");
}

es_status esi_pull_next(esi_pull *p, int max, const atomic_bool *stop, esi_pull_batch *b)
{
    memset(b, 0, sizeof *b);
    if (max < 1 || max > ES_PULL_BATCH_MAX)
        return es_error(ES_ERR_INVALID, "pull: batch of 1..%d", ES_PULL_BATCH_MAX);
    if (!p->open) {
        es_status s = open_request(p, max);
        if (s != ES_OK)
            return s;
    }
    int64_t silent_limit = MISSED_HEARTBEATS * p->hb_ms + p->hb_ms / 2;
    while (b->count < max && !atomic_load(stop)) {
        natsMsg *m = NULL;
        es_status r = p->conn->ops->next_msg(p->sub, b->count ? GAP_MS : FIRST_WAIT_SLICE_MS, &m);
        int64_t now = esi_monotonic_ms();
        if (r == ES_ERR_TIMEOUT) {
            if (b->count > 0)
                break;
            if (now - p->last_heard_ms > silent_limit) {
                p->open = false; /* the server restarted or the link broke: ask afresh */
                return es_error(ES_ERR_TIMEOUT, "pull: no heartbeat from the server for %lld ms",
                                (long long)(now - p->last_heard_ms));
            }
            continue;
        }
        if (r != ES_OK)
            return r == ES_ERR_STOPPED ? es_error(r, "pull: the inbox was closed") : r;
        p->last_heard_ms = now;
        const char *status = esi_msg_header(m, "Status");
        if (status != NULL && esi_msg_len(m) == 0) {
            bool ended = false;
            es_status s = on_status(p, m, status, b, &ended);
            esi_msg_destroy(m);
            if (s != ES_OK || ended)
                return s;
            continue;
        }
        const char *pin = esi_msg_header(m, "Nats-Pin-Id");
        if (pin != NULL)
            snprintf(p->pin, sizeof p->pin, "%s", pin);
        b->msgs[b->count++] = m;
        if (--p->owed <= 0) {
            p->open = false;
            break;
        }
    }
    return ES_OK;
}

/* The body JetStream reads on a delivery's reply subject. */
static void ack_body(esi_ack_kind kind, int64_t delay_ms, char *body, size_t size)
{
    switch (kind) {
    case ES_ACK: snprintf(body, size, "+ACK"); break;
    case ES_TERM: snprintf(body, size, "+TERM"); break;
    case ES_PROGRESS: snprintf(body, size, "+WPI"); break;
    case ES_NAK:
        if (delay_ms > 0)
            snprintf(body, size, "-NAK {\"delay\":%" PRId64 "}", delay_ms * 1000000);
        else
            snprintf(body, size, "-NAK");
        break;
    }
}

es_status esi_js_ack_msg(const esi_conn *conn, natsMsg *m, esi_ack_kind kind, int64_t delay_ms)
{
    const char *reply = esi_msg_reply(m);
    if (reply == NULL || reply[0] == '\0')
        return es_error(ES_ERR_PROTOCOL, "ack: the message has no reply subject");
    char body[64];
    ack_body(kind, delay_ms, body, sizeof body);
    return conn->ops->publish_data(conn->ctx, reply, NULL, body, strlen(body));
}

es_status esi_pull_ack(esi_pull *p, natsMsg *m, esi_ack_kind kind, int64_t delay_ms, bool sync)
{
    if (!sync)
        return esi_js_ack_msg(p->conn, m, kind, delay_ms);
    const char *reply = esi_msg_reply(m);
    if (reply == NULL || reply[0] == '\0')
        return es_error(ES_ERR_PROTOCOL, "ack: the message has no reply subject");
    char body[64];
    ack_body(kind, delay_ms, body, sizeof body);
    natsMsg *answer = NULL;
    es_status s =
        p->conn->ops->request(p->conn->ctx, reply, body, strlen(body), p->api_timeout_ms, &answer);
    esi_msg_destroy(answer);
    return s;
}
