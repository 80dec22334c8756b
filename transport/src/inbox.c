/* One inbox per connection for the answers of synchronous
 * requests: see inbox.h. */
#include "transport/inbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/internal.h"
#include "base/newid.h"
#include "transport/conn.h"

#define SLOT_BITS 10 /* 1 << SLOT_BITS == ESI_INBOX_WAITERS */
#define SLOT_MASK ((uint64_t)ESI_INBOX_WAITERS - 1)
#define TOKEN_DIGITS_MAX 20 /* a uint64_t in decimal */

typedef struct slot {
    uint64_t gen;   /* bumped at each use: a token names one use only */
    bool busy;      /* a request waits here */
    bool answered;  /* its answer came (further ones are dropped) */
    natsMsg *reply; /* the answer, until esi_inbox_wait takes it */
    pthread_cond_t arrived;
} slot;

/* Two subscriptions: `solo`, read by one request at a time, and `sub`, for
 * the requests made while that one waits. A request alone on its
 * connection (the usual case: a thread's requests follow one another)
 * reads its answer itself, waking once, as on an inbox of its own; the
 * others' answers go through nats.c's delivery thread, which hands each
 * to its waiter by the token, a second wake (measured under load: the
 * median about 1.5x an inbox of its own's). A synchronous read cannot serve them all: nats.c
 * drops a "no responders" answer there without saying whose it was. */
struct esi_inbox {
    natsConnection *nc;
    natsSubscription *sub; /* <prefix>.* */
    char prefix[ES_NEW_ID_LEN + 8]; /* _INBOX.<id> */
    size_t prefix_len;
    /* <prefix>.s<epoch>.*, made again (a new epoch) after a request left it
     * unanswered, so that nothing of that request can come to the next;
     * its fields are the solo request's own while solo_busy */
    natsSubscription *solo;
    unsigned solo_epoch;
    uint64_t solo_gen;
    bool solo_busy;
    bool solo_dirty;
    /* one reference for the registry, one for the subscription (dropped
     * once nats.c will deliver nothing more to it), one per waiter */
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t freed; /* a slot became free */
    unsigned free_count;
    uint16_t free_list[ESI_INBOX_WAITERS];
    slot slots[ESI_INBOX_WAITERS];
    esi_inbox *next; /* in the registry */
};

_Static_assert((1u << SLOT_BITS) == ESI_INBOX_WAITERS, "slot bits");

/* The inboxes of the connections that made requests, found by connection:
 * a subscription keeps nats.c's connection object alive, so its address
 * cannot be reused by another connection while its inbox is listed. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static esi_inbox *registry;

static void inbox_free(esi_inbox *in)
{
    natsSubscription_Destroy(in->solo); /* nobody reads it any more */
    for (size_t i = 0; i < ESI_INBOX_WAITERS; i++) {
        natsMsg_Destroy(in->slots[i].reply);
        pthread_cond_destroy(&in->slots[i].arrived);
    }
    pthread_cond_destroy(&in->freed);
    pthread_mutex_destroy(&in->mu);
    esi_free(in);
}

static void inbox_release(esi_inbox *in)
{
    if (atomic_fetch_sub(&in->refs, 1) == 1)
        inbox_free(in);
}

/* The waiter a reply subject's last token names, or NULL: a token of
 * digits only, within a uint64_t. */
static bool parse_token(const esi_inbox *in, const char *subject, uint64_t *token)
{
    if (strncmp(subject, in->prefix, in->prefix_len) != 0 || subject[in->prefix_len] != '.')
        return false;
    const char *digits = subject + in->prefix_len + 1;
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || n > TOKEN_DIGITS_MAX || digits[n] != '\0')
        return false;
    char *end = NULL;
    *token = strtoull(digits, &end, 10);
    return end == digits + n;
}

/* nats.c's delivery thread: the answer goes to the waiter its token names
 * if that one still waits for it; anything else is dropped. */
static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    esi_inbox *in = closure;
    uint64_t token = 0;
    if (parse_token(in, natsMsg_GetSubject(m), &token)) {
        pthread_mutex_lock(&in->mu);
        slot *sl = &in->slots[token & SLOT_MASK];
        if (sl->busy && !sl->answered && sl->gen == token >> SLOT_BITS) {
            sl->reply = m;
            sl->answered = true;
            m = NULL;
            pthread_cond_signal(&sl->arrived);
        }
        pthread_mutex_unlock(&in->mu);
    }
    natsMsg_Destroy(m);
}

/* nats.c is done with the subscription: its thread delivers no more. */
static void on_complete(void *closure)
{
    inbox_release(closure);
}

/* Waits on the monotonic clock: a wall clock step moves no deadline. */
static bool cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return false;
    bool ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(c, &attr) == 0;
    pthread_condattr_destroy(&attr);
    return ok;
}

static void wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(c, mu, &ts);
}

static esi_inbox *inbox_alloc(natsConnection *nc)
{
    esi_inbox *in = esi_calloc(1, sizeof *in);
    if (in == NULL)
        return NULL;
    bool ok = pthread_mutex_init(&in->mu, NULL) == 0;
    ok = ok && cond_init(&in->freed);
    size_t made = 0;
    while (ok && made < ESI_INBOX_WAITERS && cond_init(&in->slots[made].arrived))
        made++;
    if (!ok || made < ESI_INBOX_WAITERS) {
        for (size_t i = 0; i < made; i++)
            pthread_cond_destroy(&in->slots[i].arrived);
        if (ok) {
            pthread_cond_destroy(&in->freed);
            pthread_mutex_destroy(&in->mu);
        }
        esi_free(in);
        return NULL;
    }
    in->nc = nc;
    for (unsigned i = 0; i < ESI_INBOX_WAITERS; i++) /* slot 0 is taken first */
        in->free_list[i] = (uint16_t)(ESI_INBOX_WAITERS - 1 - i);
    in->free_count = ESI_INBOX_WAITERS;
    char id[ES_NEW_ID_LEN + 1];
    esi_new_id(id);
    in->prefix_len = (size_t)snprintf(in->prefix, sizeof in->prefix, "_INBOX.%s", id);
    return in;
}

/* A new inbox for `nc`, subscribed, with the registry's and the
 * subscription's references. */
static es_status inbox_create(natsConnection *nc, esi_inbox **out)
{
    *out = NULL;
    esi_inbox *in = inbox_alloc(nc);
    if (in == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory for a request inbox");
    char wildcard[sizeof in->prefix + 2];
    snprintf(wildcard, sizeof wildcard, "%s.*", in->prefix);
    natsStatus ns = natsConnection_Subscribe(&in->sub, nc, wildcard, on_reply, in);
    if (ns == NATS_OK && (ns = natsSubscription_SetOnCompleteCB(in->sub, on_complete, in)) != NATS_OK) {
        /* closed as it was made (the connection closed): nothing was
         * delivered to it, nor will be */
        natsSubscription_Unsubscribe(in->sub);
        natsSubscription_Destroy(in->sub);
    }
    if (ns != NATS_OK) {
        inbox_free(in);
        return esi_nats_status(ns, wildcard);
    }
    atomic_init(&in->refs, 2);
    *out = in;
    return ES_OK;
}

/* Ends an inbox taken off the registry: nats.c drops the subscription's
 * reference once its thread is done; waiters still holding one finish
 * (a solo one reads its subscription until it ends). */
static void inbox_retire(esi_inbox *in)
{
    natsSubscription_Unsubscribe(in->sub);
    natsSubscription_Destroy(in->sub);
    pthread_mutex_lock(&in->mu);
    if (in->solo != NULL) /* freed with the last waiter, which may read it */
        natsSubscription_Unsubscribe(in->solo);
    pthread_mutex_unlock(&in->mu);
    inbox_release(in);
}

static void sweep_locked(void)
{
    for (esi_inbox **p = &registry; *p != NULL;) {
        esi_inbox *in = *p;
        if (natsConnection_IsClosed(in->nc)) {
            *p = in->next;
            inbox_retire(in);
        } else {
            p = &in->next;
        }
    }
}

/* `nc`'s inbox with a reference for the caller, made the first time. */
static es_status inbox_acquire(natsConnection *nc, esi_inbox **out)
{
    pthread_mutex_lock(&registry_mu);
    esi_inbox *in = registry;
    while (in != NULL && in->nc != nc)
        in = in->next;
    es_status s = ES_OK;
    if (in == NULL) {
        sweep_locked(); /* a new connection: forget the closed ones */
        s = inbox_create(nc, &in);
        if (s == ES_OK) {
            in->next = registry;
            registry = in;
        }
    }
    if (s == ES_OK)
        atomic_fetch_add(&in->refs, 1);
    pthread_mutex_unlock(&registry_mu);
    *out = in;
    return s;
}

/* The solo subscription for the request that took it (solo_busy), made
 * again first when the last one left it unanswered. */
static es_status solo_take(esi_inbox *in, esi_inbox_waiter *w)
{
    w->solo = true;
    natsSubscription *old = NULL;
    natsStatus ns = NATS_OK;
    char wildcard[ESI_INBOX_REPLY_MAX];
    pthread_mutex_lock(&in->mu); /* against inbox_retire */
    if (in->solo == NULL || in->solo_dirty) {
        old = in->solo;
        in->solo = NULL;
        in->solo_dirty = false;
        in->solo_epoch++;
        snprintf(wildcard, sizeof wildcard, "%s.s%u.*", in->prefix, in->solo_epoch);
        ns = natsConnection_SubscribeSync(&in->solo, in->nc, wildcard);
    }
    pthread_mutex_unlock(&in->mu);
    esi_nats_sub_close(in->nc, old);
    if (ns != NATS_OK) /* in->solo stays NULL: made again next time */
        return esi_nats_status(ns, wildcard);
    w->token = ++in->solo_gen;
    snprintf(w->reply, sizeof w->reply, "%s.s%u.%llu", in->prefix, in->solo_epoch,
             (unsigned long long)w->token);
    return ES_OK;
}

/* The solo request reads its answer itself; anything else there is a late
 * answer to an earlier request, dropped. A "no responders" answer is its
 * own: an earlier request either had its answer or left the subscription
 * to be made again. */
static es_status solo_wait(esi_inbox_waiter *w, int64_t timeout_ms, natsMsg **reply)
{
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    for (int64_t left = timeout_ms; left > 0; left = deadline - esi_monotonic_ms()) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, w->inbox->solo, left);
        if (ns == NATS_OK && strcmp(natsMsg_GetSubject(m), w->reply) == 0) {
            *reply = m;
            w->answered = true;
            return ES_OK;
        }
        natsMsg_Destroy(m);
        if (ns == NATS_NO_RESPONDERS) {
            w->answered = true;
            return ES_ERR_UNSUPPORTED;
        }
        if (ns == NATS_TIMEOUT)
            break;
        if (ns != NATS_OK && ns != NATS_SLOW_CONSUMER)
            return esi_nats_status(ns, "a request's inbox");
    }
    return ES_ERR_TIMEOUT;
}

es_status esi_inbox_begin(natsConnection *nc, int64_t timeout_ms, esi_inbox_waiter *w)
{
    memset(w, 0, sizeof *w);
    esi_inbox *in = NULL;
    es_status s = inbox_acquire(nc, &in);
    if (s != ES_OK)
        return s;
    w->inbox = in;
    pthread_mutex_lock(&in->mu);
    if (!in->solo_busy) {
        in->solo_busy = true;
        pthread_mutex_unlock(&in->mu);
        if ((s = solo_take(in, w)) != ES_OK)
            esi_inbox_end(w);
        return s;
    }
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    while (in->free_count == 0 && esi_monotonic_ms() < deadline)
        wait_until(&in->freed, &in->mu, deadline);
    if (in->free_count == 0) {
        pthread_mutex_unlock(&in->mu);
        w->inbox = NULL;
        inbox_release(in);
        return es_error(ES_ERR_TIMEOUT, "no request inbox free in time: %d requests wait on "
                                        "this connection",
                        ESI_INBOX_WAITERS);
    }
    unsigned i = in->free_list[--in->free_count];
    slot *sl = &in->slots[i];
    sl->gen++;
    sl->busy = true;
    sl->answered = false;
    w->token = sl->gen << SLOT_BITS | i;
    pthread_mutex_unlock(&in->mu);
    snprintf(w->reply, sizeof w->reply, "%s.%llu", in->prefix, (unsigned long long)w->token);
    return ES_OK;
}

es_status esi_inbox_wait(esi_inbox_waiter *w, int64_t timeout_ms, natsMsg **reply)
{
    *reply = NULL;
    if (w->solo)
        return solo_wait(w, timeout_ms, reply);
    esi_inbox *in = w->inbox;
    slot *sl = &in->slots[w->token & SLOT_MASK];
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    pthread_mutex_lock(&in->mu);
    while (sl->reply == NULL && esi_monotonic_ms() < deadline)
        wait_until(&sl->arrived, &in->mu, deadline);
    *reply = sl->reply;
    sl->reply = NULL;
    pthread_mutex_unlock(&in->mu);
    if (*reply != NULL && natsMsg_IsNoResponders(*reply)) {
        natsMsg_Destroy(*reply);
        *reply = NULL;
        return ES_ERR_UNSUPPORTED;
    }
    return *reply != NULL ? ES_OK : ES_ERR_TIMEOUT;
}

void esi_inbox_end(esi_inbox_waiter *w)
{
    esi_inbox *in = w->inbox;
    if (in == NULL)
        return;
    if (w->solo) {
        pthread_mutex_lock(&in->mu);
        in->solo_dirty |= !w->answered; /* its answer may still come */
        in->solo_busy = false;
        pthread_mutex_unlock(&in->mu);
        w->inbox = NULL;
        inbox_release(in);
        return;
    }
    unsigned i = (unsigned)(w->token & SLOT_MASK);
    pthread_mutex_lock(&in->mu);
    slot *sl = &in->slots[i];
    natsMsg *late = sl->reply; /* came after the last wait */
    sl->reply = NULL;
    sl->busy = false;
    in->free_list[in->free_count++] = (uint16_t)i;
    pthread_cond_signal(&in->freed);
    pthread_mutex_unlock(&in->mu);
    natsMsg_Destroy(late);
    w->inbox = NULL;
    inbox_release(in);
}

void esi_inbox_forget(natsConnection *nc)
{
    pthread_mutex_lock(&registry_mu);
    for (esi_inbox **p = &registry; *p != NULL; p = &(*p)->next)
        if ((*p)->nc == nc) {
            esi_inbox *in = *p;
            *p = in->next;
            inbox_retire(in);
            break;
        }
    pthread_mutex_unlock(&registry_mu);
}

void esi_inbox_sweep(void)
{
    pthread_mutex_lock(&registry_mu);
    sweep_locked();
    pthread_mutex_unlock(&registry_mu);
}
