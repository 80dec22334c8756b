/* The connection table over nats.c: the one place that calls nats.c's
 * connection and subscription functions (see conn.h). */
#include "transport/conn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/internal.h"
#include "transport/inbox.h"

struct esi_sub {
    natsSubscription *s;
    esi_msg_handler cb; /* asynchronous subscriptions only */
    void *closure;
};

es_status esi_nats_status(natsStatus s, const char *what)
{
    switch (s) {
    case NATS_OK: return ES_OK;
    case NATS_TIMEOUT: return es_error(ES_ERR_TIMEOUT, "%s: no answer in time", what);
    case NATS_NO_MEMORY: return es_error(ES_ERR_NOMEM, "%s: out of memory", what);
    case NATS_NO_RESPONDERS:
        return es_error_code(ES_ERR_UNSUPPORTED, ESI_NO_RESPONDERS,
                             "%s: no responders (is JetStream enabled?)", what);
    case NATS_MAX_PAYLOAD:
        return es_error(ES_ERR_TOO_LARGE, "%s: message over the server's max payload", what);
    default: return es_error(ES_ERR_CONNECTION, "%s: %s", what, natsStatus_GetText(s));
    }
}

void esi_nats_open(void)
{
    nats_Open(-1);
}

void esi_nats_close(void)
{
    nats_Close();
}

static es_status nats_publish(void *ctx, natsMsg *m)
{
    return esi_nats_status(natsConnection_PublishMsg(ctx, m), "publishing");
}

static es_status nats_publish_data(void *ctx, const char *subject, const char *reply,
                                   const void *data, size_t len)
{
    natsStatus ns = reply ? natsConnection_PublishRequest(ctx, subject, reply, data, (int)len)
                          : natsConnection_Publish(ctx, subject, data, (int)len);
    return esi_nats_status(ns, subject);
}

/* The permissions violations the server sent lately, as nats.c's
 * asynchronous error handler reports them: a publish refused this way gets
 * no answer at all, so whoever waits for one looks here (nats.c keeps only
 * its last error). The newest replace the oldest: enough are kept for
 * every unit of a full window of appends (a sink's 256 by default) refused
 * at once; one refused in a larger crowd still ends, at its timeout. */
#define DENIALS_KEPT 1024
#define DENIAL_TEXT 320

static pthread_mutex_t denials_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const natsConnection *nc;
    char text[DENIAL_TEXT];
} denials[DENIALS_KEPT];
static size_t denials_next;
static atomic_uint_fast64_t denials_seen;

void esi_nats_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                          void *closure)
{
    (void)sub;
    (void)closure;
    const char *last = NULL;
    if (err != NATS_NOT_PERMITTED || natsConnection_GetLastError(nc, &last) != NATS_NOT_PERMITTED ||
        last == NULL)
        return;
    pthread_mutex_lock(&denials_mu);
    denials[denials_next].nc = nc;
    snprintf(denials[denials_next].text, DENIAL_TEXT, "%s", last);
    denials_next = (denials_next + 1) % DENIALS_KEPT;
    pthread_mutex_unlock(&denials_mu);
    atomic_fetch_add(&denials_seen, 1);
}

uint64_t esi_conn_denials(void)
{
    return atomic_load(&denials_seen);
}

/* A permissions violation names the subject ("Permissions Violation for
 * Publish to \"<subject>\""): looked for among the kept ones, then in
 * nats.c's last error (a connection made without our error handler). */
static bool nats_denied(void *ctx, const char *subject, char *text, size_t size)
{
    char quoted[512];
    snprintf(quoted, sizeof quoted, "Publish to \"%s\"", subject);
    bool found = false;
    pthread_mutex_lock(&denials_mu);
    for (size_t i = 0; i < DENIALS_KEPT && !found; i++)
        if (denials[i].nc == ctx && strstr(denials[i].text, quoted) != NULL) {
            snprintf(text, size, "%s", denials[i].text);
            found = true;
        }
    pthread_mutex_unlock(&denials_mu);
    const char *last = NULL;
    if (!found && natsConnection_GetLastError(ctx, &last) == NATS_NOT_PERMITTED && last != NULL &&
        strstr(last, quoted) != NULL) {
        snprintf(text, size, "%s", last);
        found = true;
    }
    return found;
}

es_status esi_conn_denied_or(const esi_conn *c, const char *subject, es_status s)
{
    char text[600];
    if (s != ES_ERR_TIMEOUT || c->ops->denied == NULL ||
        !c->ops->denied(c->ctx, subject, text, sizeof text))
        return s;
    return es_error(ES_ERR_PERMISSION, "not permitted: %s", text);
}

/* nats.c before 3.6 can crash when a subscription is freed while its reader
 * thread is delivering to it (nats.c issue #637; Debian bookworm ships
 * 3.4.1), so the interest is removed first and a PING/PONG round trip proves
 * the reader has passed every message the server sent before the UNSUB; only
 * then is the subscription freed. */
void esi_nats_sub_close(natsConnection *nc, natsSubscription *s)
{
    if (s == NULL)
        return;
    if (natsSubscription_Unsubscribe(s) == NATS_OK &&
        natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED)
        natsConnection_FlushTimeout(nc, 2000); /* disconnected: the reader delivers nothing */
    natsSubscription_Destroy(s);
}

es_status esi_conn_denial_since(const esi_conn *c, const char *subject, uint64_t since)
{
    if (esi_conn_denials() == since)
        return ES_OK;
    es_status s = esi_conn_denied_or(c, subject, ES_ERR_TIMEOUT);
    return s == ES_ERR_TIMEOUT ? ES_OK : s;
}

/* What was known of denials before a request's publish: the handler's
 * count, and nats.c's last error if it was one (a connection es_connect
 * did not make has no handler, only that). */
typedef struct denial_mark {
    uint64_t count;
    char last[DENIAL_TEXT]; /* empty: the last error was no denial */
} denial_mark;

static void denial_mark_take(natsConnection *nc, denial_mark *m)
{
    m->count = esi_conn_denials();
    const char *last = NULL;
    bool denial = natsConnection_GetLastError(nc, &last) == NATS_NOT_PERMITTED && last != NULL;
    snprintf(m->last, sizeof m->last, "%s", denial ? last : "");
}

/* Whether the server refused the publish to `subject` since the mark: the
 * kept denials when the handler counted a new one, else nats.c's last
 * error when it is a denial other than the one already there. */
static es_status denied_since(const esi_conn *c, const char *subject, const denial_mark *m)
{
    es_status s = esi_conn_denial_since(c, subject, m->count);
    const char *last = NULL;
    if (s == ES_OK && natsConnection_GetLastError(c->ctx, &last) == NATS_NOT_PERMITTED &&
        last != NULL && strncmp(last, m->last, sizeof m->last - 1) != 0)
        s = esi_conn_denied_or(c, subject, ES_ERR_TIMEOUT);
    return s == ES_ERR_TIMEOUT ? ES_OK : s;
}

/* Waits for the waiter's one answer, in slices: between them it looks for
 * a denial of the request's publish, which gets no answer, only an
 * asynchronous error (nats.c's own request could only wait out its
 * timeout). */
static es_status await_answer(void *ctx, esi_inbox_waiter *w, const char *subject,
                              const denial_mark *before, int64_t timeout_ms, natsMsg **reply)
{
    esi_conn c;
    esi_conn_nats(ctx, &c);
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    for (int64_t left = timeout_ms; left > 0; left = deadline - esi_monotonic_ms()) {
        int64_t slice = left < ESI_DENIAL_POLL_MS ? left : ESI_DENIAL_POLL_MS;
        es_status s = esi_inbox_wait(w, slice, reply);
        if (s == ES_ERR_UNSUPPORTED)
            return esi_nats_status(NATS_NO_RESPONDERS, subject);
        if (s != ES_ERR_TIMEOUT)
            return s;
        s = denied_since(&c, subject, before);
        if (s != ES_OK)
            return s;
    }
    return esi_conn_denied_or(&c, subject, esi_nats_status(NATS_TIMEOUT, subject));
}

/* What is left until `deadline`, at least 1 ms: an answer already there is
 * taken even when the time is up. */
static int64_t left_or_one(int64_t deadline)
{
    int64_t left = deadline - esi_monotonic_ms();
    return left > 0 ? left : 1;
}

/* A request whose reply subject is the waiter's, on the connection's
 * request inbox (inbox.h); a denial ends its wait at once (await_answer). */
static es_status watched_request(void *ctx, esi_inbox_waiter *w, natsMsg *m, int64_t timeout_ms,
                                 natsMsg **reply)
{
    *reply = NULL;
    denial_mark before; /* before the publish: its denial counts */
    denial_mark_take(ctx, &before);
    const char *subject = natsMsg_GetSubject(m);
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    es_status s = esi_nats_status(natsConnection_PublishMsg(ctx, m), subject);
    /* nats.c sends what is published from its flusher thread, a millisecond
     * or more later (its own request flushes at once, which no public call
     * does for a publish): the PING of a flush goes out with the PUB in one
     * write, now, and its PONG comes about when the answer does. Best
     * effort: the wait below says what happened. */
    if (s == ES_OK)
        natsConnection_FlushTimeout(ctx, timeout_ms);
    if (s == ES_OK)
        s = await_answer(ctx, w, subject, &before, left_or_one(deadline), reply);
    return s;
}

/* `m` with the inbox as its reply subject (nats.c sets a reply only at
 * creation): subject, data and headers copied. */
static es_status with_inbox(natsMsg *m, const char *inbox, natsMsg **out)
{
    const char *subject = natsMsg_GetSubject(m);
    es_status s = esi_nats_status(
        natsMsg_Create(out, subject, inbox, natsMsg_GetData(m), natsMsg_GetDataLength(m)), subject);
    const char **keys = NULL;
    int n = 0;
    natsStatus ns = s == ES_OK ? natsMsgHeader_Keys(m, &keys, &n) : NATS_OK;
    if (ns != NATS_OK && ns != NATS_NOT_FOUND)
        s = esi_nats_status(ns, subject);
    for (int i = 0; s == ES_OK && i < n; i++) {
        const char **values = NULL;
        int nv = 0;
        s = esi_nats_status(natsMsgHeader_Values(m, keys[i], &values, &nv), subject);
        for (int j = 0; s == ES_OK && j < nv; j++)
            s = esi_nats_status(natsMsgHeader_Add(*out, keys[i], values[j]), subject);
        free((void *)values); /* nats.c's allocation */
    }
    free((void *)keys);
    if (s != ES_OK) {
        natsMsg_Destroy(*out);
        *out = NULL;
    }
    return s;
}

static es_status nats_request_msg(void *ctx, natsMsg *m, int64_t timeout_ms, natsMsg **reply)
{
    *reply = NULL;
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    esi_inbox_waiter w;
    es_status s = esi_inbox_begin(ctx, timeout_ms, &w);
    if (s != ES_OK)
        return s;
    natsMsg *mine = NULL;
    s = with_inbox(m, w.reply, &mine);
    if (s == ES_OK)
        s = watched_request(ctx, &w, mine, left_or_one(deadline), reply);
    natsMsg_Destroy(mine);
    esi_inbox_end(&w);
    return s;
}

static es_status nats_request(void *ctx, const char *subject, const void *data, size_t len,
                              int64_t timeout_ms, natsMsg **reply)
{
    *reply = NULL;
    natsMsg *m = NULL;
    es_status s = esi_nats_status(natsMsg_Create(&m, subject, NULL, data, (int)len), subject);
    if (s == ES_OK)
        s = nats_request_msg(ctx, m, timeout_ms, reply);
    natsMsg_Destroy(m);
    return s;
}

static void deliver(natsConnection *nc, natsSubscription *s, natsMsg *m, void *closure)
{
    (void)nc;
    (void)s;
    esi_sub *sub = closure;
    sub->cb(m, sub->closure);
}

static es_status nats_subscribe(void *ctx, const char *subject, esi_msg_handler cb, void *closure,
                                esi_sub **out)
{
    esi_sub *sub = esi_calloc(1, sizeof *sub);
    if (sub == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory subscribing to %s", subject);
    sub->cb = cb;
    sub->closure = closure;
    es_status s = esi_nats_status(natsConnection_Subscribe(&sub->s, ctx, subject, deliver, sub),
                                  subject);
    if (s != ES_OK) {
        esi_free(sub);
        return s;
    }
    /* Unbounded: what arrives here answers what we sent, bounded by our own window. */
    natsSubscription_SetPendingLimits(sub->s, -1, -1);
    *out = sub;
    return ES_OK;
}

static es_status nats_subscribe_sync(void *ctx, const char *subject, int max_msgs,
                                     int64_t max_bytes, esi_sub **out)
{
    esi_sub *sub = esi_calloc(1, sizeof *sub);
    if (sub == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory subscribing to %s", subject);
    es_status s = esi_nats_status(natsConnection_SubscribeSync(&sub->s, ctx, subject), subject);
    if (s != ES_OK) {
        esi_free(sub);
        return s;
    }
    if (max_msgs > 0)
        natsSubscription_SetPendingLimits(sub->s, max_msgs, (int)(max_bytes > INT32_MAX ? INT32_MAX : max_bytes));
    *out = sub;
    return ES_OK;
}

static es_status nats_next_msg(esi_sub *sub, int64_t timeout_ms, natsMsg **out)
{
    *out = NULL;
    natsStatus ns = natsSubscription_NextMsg(out, sub->s, timeout_ms);
    if (ns == NATS_OK)
        return ES_OK;
    if (ns == NATS_TIMEOUT)
        return natsSubscription_IsValid(sub->s) ? ES_ERR_TIMEOUT : ES_ERR_STOPPED;
    if (ns == NATS_INVALID_SUBSCRIPTION || ns == NATS_CONNECTION_CLOSED)
        return ES_ERR_STOPPED;
    return esi_nats_status(ns, "reading a subscription");
}

static es_status nats_drain(void *ctx, esi_sub *sub, int64_t timeout_ms)
{
    (void)ctx;
    es_status s = esi_nats_status(natsSubscription_Drain(sub->s), "draining a subscription");
    if (sub->cb == NULL)
        return s; /* synchronous: next_msg reads what is left, close frees */
    if (s == ES_OK)
        s = esi_nats_status(natsSubscription_WaitForDrainCompletion(sub->s, timeout_ms),
                            "draining a subscription");
    else
        natsSubscription_Unsubscribe(sub->s);
    natsSubscription_Destroy(sub->s);
    esi_free(sub);
    return s;
}

/* A synchronous subscription the safe way (esi_nats_sub_close); an asynchronous
 * one is drained instead, so that its handler has returned before the
 * closure goes. */
static void nats_close(void *ctx, esi_sub *sub)
{
    if (sub == NULL)
        return;
    if (sub->cb != NULL) {
        nats_drain(ctx, sub, 5000);
        return;
    }
    esi_nats_sub_close(ctx, sub->s);
    esi_free(sub);
}

static void nats_release(void *ctx, esi_sub *sub)
{
    (void)ctx;
    if (sub == NULL)
        return;
    natsSubscription_Destroy(sub->s);
    esi_free(sub);
}

static es_status nats_flush(void *ctx, int64_t timeout_ms)
{
    return esi_nats_status(natsConnection_FlushTimeout(ctx, timeout_ms), "flush");
}

static int64_t nats_max_payload(void *ctx)
{
    return natsConnection_GetMaxPayload(ctx);
}

static const esi_conn_ops nats_ops = {
    .publish = nats_publish,
    .publish_data = nats_publish_data,
    .request = nats_request,
    .request_msg = nats_request_msg,
    .subscribe = nats_subscribe,
    .subscribe_sync = nats_subscribe_sync,
    .next_msg = nats_next_msg,
    .drain = nats_drain,
    .close = nats_close,
    .release = nats_release,
    .flush = nats_flush,
    .max_payload = nats_max_payload,
    .denied = nats_denied,
};

void esi_conn_nats(natsConnection *nc, esi_conn *out)
{
    out->ops = &nats_ops;
    out->ctx = nc;
}

natsConnection *esi_conn_nats_connection(const esi_conn *c)
{
    return c != NULL && c->ops == &nats_ops ? c->ctx : NULL;
}
