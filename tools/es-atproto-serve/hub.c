/* The shared live fan-out (hub.h). The watch's thread encodes each event
 * once and hands it over through an inbox (its own lock: the watch never
 * waits for an offer); the fan-out thread keeps what the inbox holds in a
 * ring of the last HUB_RING_MAX and offers it to the members, all of it
 * in one call per member (one lock and one wake of each subscriber per
 * batch, not per event: at a thousand subscribers the per-event locking
 * was a fifth of the server's time). Idle, a batch is one event and waits
 * for nothing; under load the batches grow by themselves. A janitor
 * thread destroys the watches of replays that joined (deleting a consumer
 * waits on NATS, which neither the hub's thread nor a subscriber's
 * should). */
#define _POSIX_C_SOURCE 200809L
#include "hub.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

typedef struct retiree {
    es_watch *w;
    void (*done)(void *arg);
    void *arg;
} retiree;

typedef struct member {
    hub_offer_fn offer;
    void *arg;
    uint64_t after; /* offered only events after this sequence */
} member;

struct hub {
    es_store *st;
    hub_config cfg;
    es_watch *watch;
    /* the watch's thread */
    es_arena *arena;
    es_buf json;
    /* the inbox, under inbox_lock: from the watch's thread to the fan-out's */
    pthread_mutex_t inbox_lock;
    pthread_cond_t inbox_cond; /* something came, or the hub stops */
    hub_event **inbox, **spare; /* events (the fan-out thread swaps the two) */
    size_t in_n, in_cap, spare_cap;
    uint64_t in_last, in_taken; /* the last event seen, and taken by the fan-out thread */
    bool stopping;
    /* under lock */
    pthread_mutex_t lock;
    uint64_t floor, last; /* every event in (floor, last] was seen */
    hub_event *ring[HUB_RING_MAX];
    size_t ring_first, ring_n; /* the oldest kept, and how many */
    uint64_t offered; /* every kept event up to this sequence was offered */
    const hub_event *batch[HUB_RING_MAX]; /* the events of one offer */
    member *members;
    size_t n, cap;
    bool ended;
    /* the fan-out thread; the janitor, under lock too */
    pthread_t fanout, janitor;
    bool fanout_running, janitor_running, retiring_stops;
    pthread_cond_t retired_cond;
    retiree *retired;
    size_t n_retired, cap_retired;
};

static void event_free(hub_event *e)
{
    if (e != NULL)
        sub_msg_release(e->msg);
    free(e);
}

/* Under lock: the kept events after sequence `after`, oldest first, into
 * h->batch; how many. */
static size_t kept_after(hub *h, uint64_t after)
{
    size_t k = h->ring_n;
    while (k > 0 && h->ring[(h->ring_first + k - 1) % HUB_RING_MAX]->seq > after)
        k--;
    for (size_t i = k; i < h->ring_n; i++)
        h->batch[i - k] = h->ring[(h->ring_first + i) % HUB_RING_MAX];
    return h->ring_n - k;
}

/* Under lock: offers the `n` events of h->batch (n 0: the end) to every
 * member, each only those after its sequence, dropping those that leave. */
static void offer_all(hub *h, size_t n)
{
    for (size_t i = 0; i < h->n;) {
        member *m = &h->members[i];
        if (n == 0) { /* the end: every member closes */
            m->offer(m->arg, NULL, 0);
            h->members[i] = h->members[--h->n];
            continue;
        }
        size_t skip = 0;
        while (skip < n && h->batch[skip]->seq <= m->after)
            skip++;
        if (skip == n) {
            i++;
            continue;
        }
        if (m->offer(m->arg, h->batch + skip, n - skip)) {
            m->after = h->batch[n - 1]->seq;
            i++;
            continue;
        }
        h->members[i] = h->members[--h->n]; /* order among members does not matter */
    }
}

/* Under lock: the events kept since the last offer go to the members. */
static void offer_pending(hub *h)
{
    size_t n = kept_after(h, h->offered);
    if (n == 0)
        return;
    offer_all(h, n);
    h->offered = h->batch[n - 1]->seq;
}

static void keep(hub *h, hub_event *e);

/* Under lock: what the inbox holds joins the ring, and goes to the members. */
static void absorb_inbox(hub *h)
{
    pthread_mutex_lock(&h->inbox_lock);
    hub_event **in = h->inbox;
    size_t n = h->in_n, cap = h->in_cap;
    uint64_t last = h->in_last;
    h->inbox = h->spare;
    h->in_cap = h->spare_cap;
    h->in_n = 0;
    h->in_taken = last;
    pthread_mutex_unlock(&h->inbox_lock);
    for (size_t i = 0; i < n; i++)
        keep(h, in[i]);
    if (last > h->last)
        h->last = last;
    offer_pending(h);
    pthread_mutex_lock(&h->inbox_lock);
    h->spare = in; /* emptied: the next swap's */
    h->spare_cap = cap;
    pthread_mutex_unlock(&h->inbox_lock);
}

/* Waits for the inbox (a stop: false). */
static bool inbox_wait(hub *h)
{
    pthread_mutex_lock(&h->inbox_lock);
    while (!h->stopping && h->in_n == 0 && h->in_last == h->in_taken)
        pthread_cond_wait(&h->inbox_cond, &h->inbox_lock);
    bool go = !h->stopping;
    pthread_mutex_unlock(&h->inbox_lock);
    return go;
}

static void *fanout(void *arg)
{
    hub *h = arg;
    while (inbox_wait(h)) {
        pthread_mutex_lock(&h->lock);
        absorb_inbox(h);
        pthread_mutex_unlock(&h->lock);
    }
    return NULL;
}

/* Under lock: the event joins the ring, pushing out the oldest. */
static void keep(hub *h, hub_event *e)
{
    if (h->ring_n == HUB_RING_MAX && h->ring[h->ring_first]->seq > h->offered)
        offer_pending(h); /* the fan-out thread is a whole ring behind: not one is lost */
    if (h->ring_n == HUB_RING_MAX) {
        hub_event *old = h->ring[h->ring_first];
        h->floor = old->seq;
        event_free(old);
        h->ring_first = (h->ring_first + 1) % HUB_RING_MAX;
        h->ring_n--;
    }
    h->ring[(h->ring_first + h->ring_n) % HUB_RING_MAX] = e;
    h->ring_n++;
}

/* The event encoded once, with the DID it is filtered by copied in. NULL
 * when it has no Jetstream form or cannot be encoded (logged). */
static hub_event *encode(hub *h, const es_event *ev)
{
    es_atp_jetstream_event d;
    if (es_atp_jetstream_describe(ev, &d) != ES_OK || d.kind == ES_ATP_JS_NONE)
        return NULL;
    es_arena_reset(h->arena);
    h->json.len = 0;
    if (es_atp_jetstream_encode(ev, &d, h->arena, &h->json) != ES_OK) {
        fprintf(stderr, "es-atproto-serve: event %" PRIu64 " not sent: %s\n", es_event_seq(ev),
                es_last_error());
        return NULL;
    }
    hub_event *e = malloc(sizeof *e + d.did_len + 1);
    sub_msg *m = sub_msg_create(h->cfg.headroom, h->json.data, h->json.len);
    if (e == NULL || m == NULL) {
        free(e);
        sub_msg_release(m);
        fprintf(stderr, "es-atproto-serve: event %" PRIu64 " not sent: out of memory\n",
                es_event_seq(ev));
        return NULL;
    }
    char *did = (char *)(e + 1);
    memcpy(did, d.did, d.did_len);
    did[d.did_len] = '\0';
    e->seq = es_event_seq(ev);
    e->d = d;
    e->d.did = did;
    e->msg = m;
    return e;
}

/* Under inbox_lock: room for one more event. */
static bool inbox_room(hub *h)
{
    if (h->in_n < h->in_cap)
        return true;
    size_t cap = h->in_cap ? h->in_cap * 2 : 256;
    hub_event **in = realloc(h->inbox, cap * sizeof *in);
    if (in == NULL)
        return false;
    h->inbox = in;
    h->in_cap = cap;
    return true;
}

static es_status on_event(const es_event *ev, void *closure)
{
    hub *h = closure;
    hub_event *e = encode(h, ev);
    pthread_mutex_lock(&h->inbox_lock);
    h->in_last = es_event_seq(ev);
    if (e != NULL && inbox_room(h)) {
        h->inbox[h->in_n++] = e;
        e = NULL;
    }
    pthread_cond_signal(&h->inbox_cond);
    pthread_mutex_unlock(&h->inbox_lock);
    if (e != NULL) {
        fprintf(stderr, "es-atproto-serve: event %" PRIu64 " not sent: out of memory\n",
                es_event_seq(ev));
        event_free(e);
    }
    return ES_OK;
}

static void on_error(es_status status, const char *text, bool final, void *closure)
{
    hub *h = closure;
    if (!final)
        return; /* a reconnect the watch rides out */
    fprintf(stderr, "es-atproto-serve: the live fan-out ended: %s\n",
            text ? text : es_status_text(status));
    pthread_mutex_lock(&h->lock);
    absorb_inbox(h); /* what came before the end still goes */
    h->ended = true;
    offer_all(h, 0); /* every member closes */
    pthread_mutex_unlock(&h->lock);
}

static void *janitor(void *arg)
{
    hub *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->n_retired == 0 && !h->retiring_stops)
            pthread_cond_wait(&h->retired_cond, &h->lock);
        if (h->n_retired == 0)
            break; /* stopping, and nothing left */
        retiree r = h->retired[--h->n_retired];
        pthread_mutex_unlock(&h->lock);
        es_watch_destroy(r.w);
        r.done(r.arg);
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

es_status hub_create(es_store *st, const hub_config *cfg, hub **out)
{
    *out = NULL;
    hub *h = calloc(1, sizeof *h);
    if (h == NULL)
        return ES_ERR_NOMEM;
    h->st = st;
    h->cfg = *cfg;
    h->json = (es_buf)ES_BUF_INIT;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->retired_cond, NULL);
    pthread_mutex_init(&h->inbox_lock, NULL);
    pthread_cond_init(&h->inbox_cond, NULL);
    es_status s = es_arena_create(cfg->record_max, &h->arena);
    if (s == ES_OK && pthread_create(&h->janitor, NULL, janitor, h) != 0)
        s = es_error(ES_ERR_NOMEM, "cannot start a thread");
    h->janitor_running = s == ES_OK;
    if (s == ES_OK && pthread_create(&h->fanout, NULL, fanout, h) != 0)
        s = es_error(ES_ERR_NOMEM, "cannot start a thread");
    h->fanout_running = s == ES_OK;
    uint64_t after = 0;
    if (s == ES_OK)
        s = serve_cursor_after_seq(st, false, 0, &after); /* the store's last event */
    h->floor = h->last = h->offered = h->in_last = h->in_taken = after;
    if (s == ES_OK) {
        es_watch_options wo;
        es_watch_options_init(&wo);
        wo.after_seq = after;
        wo.no_wait = true;
        wo.on_event = on_event;
        wo.on_error = on_error;
        wo.closure = h;
        s = es_watch_start(st, &wo, &h->watch);
    }
    if (s != ES_OK) {
        hub_destroy(h);
        return s;
    }
    *out = h;
    return ES_OK;
}

void hub_destroy(hub *h)
{
    if (h == NULL)
        return;
    es_watch_destroy(h->watch); /* nothing comes into the inbox after it returns */
    pthread_mutex_lock(&h->inbox_lock);
    h->stopping = true;
    pthread_cond_signal(&h->inbox_cond);
    pthread_mutex_unlock(&h->inbox_lock);
    pthread_mutex_lock(&h->lock);
    h->retiring_stops = true;
    pthread_cond_signal(&h->retired_cond);
    pthread_mutex_unlock(&h->lock);
    if (h->fanout_running)
        pthread_join(h->fanout, NULL); /* no offer runs after it returns */
    if (h->janitor_running)
        pthread_join(h->janitor, NULL);
    for (size_t i = 0; i < h->ring_n; i++)
        event_free(h->ring[(h->ring_first + i) % HUB_RING_MAX]);
    for (size_t i = 0; i < h->in_n; i++)
        event_free(h->inbox[i]);
    free(h->inbox);
    free(h->spare);
    free(h->members);
    free(h->retired);
    es_buf_free(&h->json);
    es_arena_destroy(h->arena);
    pthread_cond_destroy(&h->retired_cond);
    pthread_cond_destroy(&h->inbox_cond);
    pthread_mutex_destroy(&h->inbox_lock);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

bool hub_join(hub *h, uint64_t after_seq, hub_offer_fn offer, void *member_arg)
{
    pthread_mutex_lock(&h->lock);
    uint64_t after = after_seq == HUB_NOW ? h->last : after_seq;
    bool joined = !h->ended && after >= h->floor;
    if (joined && h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        member *m = realloc(h->members, cap * sizeof *m);
        joined = m != NULL;
        if (m != NULL) {
            h->members = m;
            h->cap = cap;
        }
    }
    size_t n = joined ? kept_after(h, after) : 0;
    bool open = joined && (n == 0 || offer(member_arg, h->batch, n));
    /* offered up to the newest kept event now, some perhaps before the
     * others (the fan-out thread's next pass skips them for this one) */
    if (open)
        h->members[h->n++] = (member){offer, member_arg, n ? h->batch[n - 1]->seq : after};
    pthread_mutex_unlock(&h->lock);
    return joined;
}

size_t hub_members(hub *h)
{
    pthread_mutex_lock(&h->lock);
    size_t n = h->n;
    pthread_mutex_unlock(&h->lock);
    return n;
}

void hub_leave(hub *h, void *member_arg)
{
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n; i++)
        if (h->members[i].arg == member_arg) {
            h->members[i] = h->members[--h->n];
            break;
        }
    pthread_mutex_unlock(&h->lock);
}

void hub_retire(hub *h, es_watch *w, void (*done)(void *arg), void *arg)
{
    pthread_mutex_lock(&h->lock);
    bool kept = false;
    if (!h->retiring_stops && h->n_retired == h->cap_retired) {
        size_t cap = h->cap_retired ? h->cap_retired * 2 : 16;
        retiree *r = realloc(h->retired, cap * sizeof *r);
        if (r != NULL) {
            h->retired = r;
            h->cap_retired = cap;
        }
    }
    if (!h->retiring_stops && h->n_retired < h->cap_retired) {
        h->retired[h->n_retired++] = (retiree){w, done, arg};
        pthread_cond_signal(&h->retired_cond);
        kept = true;
    }
    pthread_mutex_unlock(&h->lock);
    if (!kept) { /* no room: here, then */
        es_watch_destroy(w);
        done(arg);
    }
}
