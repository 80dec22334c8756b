/* The shared live fan-out (hub.h). The watch's thread encodes each event
 * once, keeps it in a ring of the last HUB_RING_MAX and offers it to the
 * members under the lock; a janitor thread destroys the watches of
 * replays that joined (deleting a consumer waits on NATS, which neither
 * the hub's thread nor a subscriber's should). */
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
    /* under lock */
    pthread_mutex_t lock;
    uint64_t floor, last; /* every event in (floor, last] was seen */
    hub_event *ring[HUB_RING_MAX];
    size_t ring_first, ring_n; /* the oldest kept, and how many */
    member *members;
    size_t n, cap;
    bool ended;
    /* the janitor, under lock too */
    pthread_t janitor;
    bool janitor_running, stopping;
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

/* Under lock: offers `e` to every member after it, dropping those that
 * leave. */
static void offer_all(hub *h, const hub_event *e)
{
    for (size_t i = 0; i < h->n;) {
        member *m = &h->members[i];
        if (e != NULL && e->seq <= m->after) {
            i++;
            continue;
        }
        if (m->offer(m->arg, e) && e != NULL) {
            i++;
            continue;
        }
        h->members[i] = h->members[--h->n]; /* order among members does not matter */
    }
}

/* Under lock: the event joins the ring, pushing out the oldest. */
static void keep(hub *h, hub_event *e)
{
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

static es_status on_event(const es_event *ev, void *closure)
{
    hub *h = closure;
    hub_event *e = encode(h, ev);
    pthread_mutex_lock(&h->lock);
    h->last = es_event_seq(ev);
    if (e != NULL) {
        keep(h, e);
        offer_all(h, e);
    }
    pthread_mutex_unlock(&h->lock);
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
    h->ended = true;
    offer_all(h, NULL); /* every member closes */
    pthread_mutex_unlock(&h->lock);
}

static void *janitor(void *arg)
{
    hub *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->n_retired == 0 && !h->stopping)
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
    es_status s = es_arena_create(cfg->record_max, &h->arena);
    if (s == ES_OK && pthread_create(&h->janitor, NULL, janitor, h) != 0)
        s = es_error(ES_ERR_NOMEM, "cannot start a thread");
    h->janitor_running = s == ES_OK;
    uint64_t after = 0;
    if (s == ES_OK)
        s = serve_cursor_after_seq(st, false, 0, &after); /* the store's last event */
    h->floor = h->last = after;
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
    es_watch_destroy(h->watch); /* no offer runs after it returns */
    if (h->janitor_running) {
        pthread_mutex_lock(&h->lock);
        h->stopping = true;
        pthread_cond_signal(&h->retired_cond);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->janitor, NULL);
    }
    for (size_t i = 0; i < h->ring_n; i++)
        event_free(h->ring[(h->ring_first + i) % HUB_RING_MAX]);
    free(h->members);
    free(h->retired);
    es_buf_free(&h->json);
    es_arena_destroy(h->arena);
    pthread_cond_destroy(&h->retired_cond);
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
    bool open = joined;
    for (size_t i = 0; open && i < h->ring_n; i++) {
        const hub_event *e = h->ring[(h->ring_first + i) % HUB_RING_MAX];
        open = e->seq <= after || offer(member_arg, e);
    }
    if (open)
        h->members[h->n++] = (member){offer, member_arg, after};
    pthread_mutex_unlock(&h->lock);
    return joined;
}

uint64_t hub_last(hub *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t last = h->last;
    pthread_mutex_unlock(&h->lock);
    return last;
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
    if (!h->stopping && h->n_retired == h->cap_retired) {
        size_t cap = h->cap_retired ? h->cap_retired * 2 : 16;
        retiree *r = realloc(h->retired, cap * sizeof *r);
        if (r != NULL) {
            h->retired = r;
            h->cap_retired = cap;
        }
    }
    if (!h->stopping && h->n_retired < h->cap_retired) {
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
