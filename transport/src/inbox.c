/* One wildcard inbox per connection for the answers of synchronous
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

struct esi_inbox {
    natsConnection *nc;
    natsSubscription *sub;
    char prefix[ES_NEW_ID_LEN + 8]; /* _INBOX.<id> */
    size_t prefix_len;
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
 * reference once its thread is done; waiters still holding one finish. */
static void inbox_retire(esi_inbox *in)
{
    natsSubscription_Unsubscribe(in->sub);
    natsSubscription_Destroy(in->sub);
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

es_status esi_inbox_begin(natsConnection *nc, int64_t timeout_ms, esi_inbox_waiter *w)
{
    memset(w, 0, sizeof *w);
    esi_inbox *in = NULL;
    es_status s = inbox_acquire(nc, &in);
    if (s != ES_OK)
        return s;
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    pthread_mutex_lock(&in->mu);
    while (in->free_count == 0 && esi_monotonic_ms() < deadline)
        wait_until(&in->freed, &in->mu, deadline);
    if (in->free_count == 0) {
        pthread_mutex_unlock(&in->mu);
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
    w->inbox = in;
    snprintf(w->reply, sizeof w->reply, "%s.%llu", in->prefix, (unsigned long long)w->token);
    return ES_OK;
}

es_status esi_inbox_wait(esi_inbox_waiter *w, int64_t timeout_ms, natsMsg **reply)
{
    *reply = NULL;
    esi_inbox *in = w->inbox;
    slot *sl = &in->slots[w->token & SLOT_MASK];
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    pthread_mutex_lock(&in->mu);
    while (sl->reply == NULL && esi_monotonic_ms() < deadline)
        wait_until(&sl->arrived, &in->mu, deadline);
    *reply = sl->reply;
    sl->reply = NULL;
    pthread_mutex_unlock(&in->mu);
    return *reply != NULL ? ES_OK : ES_ERR_TIMEOUT;
}

void esi_inbox_end(esi_inbox_waiter *w)
{
    esi_inbox *in = w->inbox;
    if (in == NULL)
        return;
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
