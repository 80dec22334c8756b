/* A pull consumer client over raw JetStream requests: see pull.h. */
#include "pull.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "jsapi.h"
#include "base/newid.h"
#include "base/timefmt.h"

#define FIRST_WAIT_SLICE_MS 100 /* how often a waiting pull looks at the stop flag */
#define GAP_MS              5   /* a batch is what arrives without a pause longer than this */
#define MISSED_HEARTBEATS   3

static const char *header(natsMsg *m, const char *name);

struct es_pull {
    natsConnection *nc;
    natsSubscription *sub;
    char inbox[64];
    char next_subject[512];
    char group[64];
    char pin[64];
    int64_t expires_ms, hb_ms, api_timeout_ms;
    bool open;             /* a request is outstanding on the server */
    int owed;              /* messages it may still bring */
    int64_t last_heard_ms; /* last message, status or heartbeat */
};

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool es_js_delivery_parse(const char *reply, es_js_delivery *d)
{
    memset(d, 0, sizeof *d);
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
        return false;
    const char *tok[13];
    size_t len[13];
    int n = 0;
    for (const char *p = reply;;) {
        if (n == 13)
            return false;
        const char *dot = strchr(p, '.');
        tok[n] = p;
        len[n++] = dot ? (size_t)(dot - p) : strlen(p);
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    /* v1: $JS.ACK.<stream>.<consumer>.<5 numbers>; v2 adds domain and
     * account hash before the stream and may end with a random token. */
    int base = n == 9 ? 4 : (n == 11 || n == 12) ? 6 : -1;
    uint64_t ts = 0;
    if (base < 0 || !parse_u64(tok[base], len[base], &d->delivered) ||
        !parse_u64(tok[base + 1], len[base + 1], &d->stream_seq) ||
        !parse_u64(tok[base + 2], len[base + 2], &d->consumer_seq) ||
        !parse_u64(tok[base + 3], len[base + 3], &ts) ||
        !parse_u64(tok[base + 4], len[base + 4], &d->pending) || d->delivered == 0 ||
        d->stream_seq == 0 || ts > INT64_MAX) {
        memset(d, 0, sizeof *d);
        return false;
    }
    d->stored_ns = (int64_t)ts;
    return true;
}

es_status es_pull_create(natsConnection *nc, const es_pull_options *o, es_pull **out)
{
    *out = NULL;
    if (nc == NULL || o == NULL || o->stream == NULL || o->consumer == NULL || o->expires_ms <= 0 ||
        o->heartbeat_ms <= 0 || o->heartbeat_ms * 2 > o->expires_ms)
        return es_error(ES_ERR_INVALID, "pull: stream, consumer, and a heartbeat at most half "
                                        "the request's life are required");
    es_pull *p = calloc(1, sizeof *p);
    if (p == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    p->nc = nc;
    p->expires_ms = o->expires_ms;
    p->hb_ms = o->heartbeat_ms;
    p->api_timeout_ms = o->api_timeout_ms > 0 ? o->api_timeout_ms : 5000;
    snprintf(p->next_subject, sizeof p->next_subject, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", o->stream,
             o->consumer);
    snprintf(p->group, sizeof p->group, "%s", o->group ? o->group : "");
    char id[ES_NEW_ID_LEN + 1];
    es_new_id(id);
    snprintf(p->inbox, sizeof p->inbox, "_INBOX.%s", id);
    es_status s = es_nats_status(natsConnection_SubscribeSync(&p->sub, nc, p->inbox),
                                 "subscribing a pull inbox");
    if (s != ES_OK) {
        free(p);
        return s;
    }
    natsSubscription_SetPendingLimits(p->sub, 1 << 16, 1 << 30);
    *out = p;
    return ES_OK;
}

void es_pull_destroy(es_pull *p)
{
    if (p == NULL)
        return;
    es_sub_close(p->nc, p->sub); /* pulled messages may still be on their way */
    free(p);
}

es_status es_pull_drain(es_pull *p, void (*cb)(natsMsg *m, void *closure), void *closure,
                        int64_t timeout_ms)
{
    es_status s = es_nats_status(natsSubscription_Drain(p->sub), "draining a pull inbox");
    int64_t deadline = es_monotonic_ms() + timeout_ms;
    while (s == ES_OK) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, p->sub, FIRST_WAIT_SLICE_MS);
        if (ns == NATS_TIMEOUT) {
            if (!natsSubscription_IsValid(p->sub))
                break; /* drained: nothing more can come */
            if (es_monotonic_ms() >= deadline)
                s = es_error(ES_ERR_TIMEOUT, "pull: the inbox did not drain in %lld ms",
                             (long long)timeout_ms);
            continue;
        }
        if (ns != NATS_OK)
            break; /* invalid subscription: the drain is complete */
        if (header(m, "Status") != NULL && natsMsg_GetDataLength(m) == 0)
            natsMsg_Destroy(m);
        else
            cb(m, closure);
    }
    p->open = false;
    return s;
}

const char *es_pull_pin(const es_pull *p)
{
    return p->pin;
}

static es_status open_request(es_pull *p, int batch)
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
    es_status s = es_nats_status(
        natsConnection_PublishRequest(p->nc, p->next_subject, p->inbox, text, (int)strlen(text)),
        "pull request");
    free(text);
    if (s != ES_OK)
        return s;
    p->open = true;
    p->owed = batch;
    p->last_heard_ms = es_monotonic_ms();
    return ES_OK;
}

static const char *header(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : NULL;
}

/* A status message: true when it ends the request. */
static es_status on_status(es_pull *p, natsMsg *m, const char *status, es_pull_batch *b,
                           bool *ended)
{
    const char *desc = header(m, "Description");
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

es_status es_pull_next(es_pull *p, int max, const atomic_bool *stop, es_pull_batch *b)
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
        natsStatus ns =
            natsSubscription_NextMsg(&m, p->sub, b->count ? GAP_MS : FIRST_WAIT_SLICE_MS);
        int64_t now = es_monotonic_ms();
        if (ns == NATS_TIMEOUT) {
            if (b->count > 0)
                break;
            if (now - p->last_heard_ms > silent_limit) {
                p->open = false; /* the server restarted or the link broke: ask afresh */
                return es_error(ES_ERR_TIMEOUT, "pull: no heartbeat from the server for %lld ms",
                                (long long)(now - p->last_heard_ms));
            }
            continue;
        }
        if (ns != NATS_OK)
            return es_nats_status(ns, "pull");
        p->last_heard_ms = now;
        const char *status = header(m, "Status");
        if (status != NULL && natsMsg_GetDataLength(m) == 0) {
            bool ended = false;
            es_status s = on_status(p, m, status, b, &ended);
            natsMsg_Destroy(m);
            if (s != ES_OK || ended)
                return s;
            continue;
        }
        const char *pin = header(m, "Nats-Pin-Id");
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

es_status es_pull_ack(es_pull *p, natsMsg *m, es_ack_kind kind, int64_t delay_ms, bool sync)
{
    const char *reply = natsMsg_GetReply(m);
    if (reply == NULL || reply[0] == '\0')
        return es_error(ES_ERR_PROTOCOL, "ack: the message has no reply subject");
    char body[64];
    switch (kind) {
    case ES_ACK: snprintf(body, sizeof body, "+ACK"); break;
    case ES_TERM: snprintf(body, sizeof body, "+TERM"); break;
    case ES_PROGRESS: snprintf(body, sizeof body, "+WPI"); break;
    case ES_NAK:
        if (delay_ms > 0)
            snprintf(body, sizeof body, "-NAK {\"delay\":%" PRId64 "}", delay_ms * 1000000);
        else
            snprintf(body, sizeof body, "-NAK");
        break;
    }
    if (!sync)
        return es_nats_status(natsConnection_Publish(p->nc, reply, body, (int)strlen(body)), "ack");
    natsMsg *answer = NULL;
    es_status s = es_nats_status(
        natsConnection_Request(&answer, p->nc, reply, body, (int)strlen(body), p->api_timeout_ms),
        "ack");
    natsMsg_Destroy(answer);
    return s;
}
