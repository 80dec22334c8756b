/* A /subscribe connection's state (subscriber.h). A replay pulls the store
 * a window at a time (es_reader, on the starter's thread: it asks for no
 * more events than its queue has room for) or, without a hub, reads it
 * through a watch; either turns each event into Jetstream's JSON
 * (es_atp_jetstream_encode), filters it and queues it, then tries to join
 * the hub; the hub's thread offers
 * events already encoded, which are filtered and queued by reference. The
 * connection's thread writes the queue out. The queue is bounded in bytes:
 * a full one makes a replay wait (the history is read no faster than the
 * client takes it); the hub never waits for one subscriber, so a full
 * queue takes the hub's events only for slow_timeout_ms (and up to
 * SLOW_FACTOR times its bound). A client that leaves it full that long is
 * closed with a reason, so memory never grows with a slow reader. */
#define _POSIX_C_SOURCE 200809L
#include "subscriber.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <es/atproto.h>
#include <es/atproto_jetstream.h>

#include "clock.h"
#include "compress.h"
#include "cursor.h"
#include "hub.h"
#include "metrics.h"
#include "nsfilter.h"

#define CLOSE_POLICY   1008 /* WebSocket: policy violation (a too slow client) */
#define CLOSE_INTERNAL 1011 /* WebSocket: the server cannot go on */
#define SLOW_FACTOR    4    /* a full queue takes the hub's events up to this times its bound */
#define REPLAY_RETRY_MS 30000 /* a replay's reads failing this long (NATS away) end it */
#define REPLAY_PAUSE_MS 250   /* between such reads */

/* A subscriber's filter: NULL `f` keeps everything. */
typedef struct sub_filter {
    es_atp_filter *f;
    size_t collections, dids;
    size_t max_size; /* maxMessageSizeBytes; 0: no cap */
} sub_filter;

/* The queue: references to messages in a ring that grows by doubling (no
 * allocation per message: with a thousand subscribers, one per delivery
 * was a seventh of the server's time) and is let go once empty and large. */
typedef struct sub_queue {
    sub_msg **items;
    size_t cap, first, n;
} sub_queue;

#define QUEUE_MIN  64
#define QUEUE_KEEP 1024 /* an empty queue keeps its ring up to this size */

struct subscriber {
    es_store *st;
    sub_config cfg;
    /* options from the query, read before start */
    bool has_cursor, require_hello, started;
    bool compress; /* compress=true: zstd frames (compress.h) */
    int64_t cursor_us;
    /* the replay watch's side */
    es_arena *arena; /* created for a replay, freed once it joins the hub */
    es_buf json;
    pthread_t starter;
    bool starter_running;
    /* shared, under `lock` */
    pthread_mutex_t lock;
    pthread_cond_t room; /* the queue has room, or the subscriber closes */
    sub_filter filter;
    sub_queue q;
    size_t queued; /* bytes of JSON in q */
    int64_t full_since_ms; /* the hub found the queue full (0: it is not) */
    es_watch *watch;
    es_reader *reader; /* a pulled replay's (the starter's thread owns it) */
    size_t in_hand;    /* events the pulled replay's current read may still hand */
    bool joined;   /* the hub delivers: the watch, if any, is ignored */
    bool retiring; /* the hub is destroying the watch (subscriber_retired) */
    bool ended; /* the connection is gone (subscriber_end): no more wakes */
    int close_code;
    char reason[124]; /* a WebSocket close reason is at most 123 bytes */
};

static void filter_free(sub_filter *f)
{
    es_atp_filter_destroy(f->f);
    memset(f, 0, sizeof *f);
}

static es_status filter_add_collection(sub_filter *f, const char *nsid)
{
    if (strchr(nsid, ',') != NULL || nsid[0] == '\0')
        return es_error(ES_ERR_INVALID, "invalid collection: %.60s", nsid);
    if (++f->collections > SUB_COLLECTIONS_MAX)
        return es_error(ES_ERR_INVALID, "too many wanted collections: > %d",
                        SUB_COLLECTIONS_MAX);
    es_status s = f->f ? ES_OK : es_atp_filter_create(&f->f);
    if (s == ES_OK && es_atp_filter_add_collections(f->f, nsid) != ES_OK)
        return es_error(ES_ERR_INVALID, "invalid collection: %.60s", nsid);
    return s;
}

static es_status filter_add_did(sub_filter *f, const char *did)
{
    if (!es_atp_valid_did(did, strlen(did)))
        return es_error(ES_ERR_INVALID, "invalid DID: %.60s", did);
    if (++f->dids > SUB_DIDS_MAX)
        return es_error(ES_ERR_INVALID, "too many wanted DIDs: > %d", SUB_DIDS_MAX);
    es_status s = f->f ? ES_OK : es_atp_filter_create(&f->f);
    return s == ES_OK ? es_atp_filter_add_dids(f->f, did) : s;
}

/* Jetstream's rule: empty, malformed or negative sizes mean no cap. */
static size_t max_size_value(const char *text)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    return errno || *end != '\0' || end == text || v < 0 || v > UINT32_MAX ? 0 : (size_t)v;
}

static bool wants(const sub_filter *f, const es_atp_jetstream_event *d)
{
    if (f->f == NULL)
        return true;
    if (!es_atp_filter_keeps_did(f->f, d->did, d->did_len))
        return false;
    /* identity and account events pass any collection filter (Jetstream) */
    return d->kind != ES_ATP_JS_COMMIT ||
           es_atp_filter_keeps_collection(f->f, d->collection, strlen(d->collection));
}

sub_msg *sub_msg_create(size_t headroom, const void *json, size_t len)
{
    sub_msg *m = malloc(sizeof *m + headroom + len);
    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    atomic_init(&m->zstd, NULL);
    m->len = len;
    memcpy(m->data + headroom, json, len);
    return m;
}

void sub_msg_ref(sub_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void sub_msg_release(sub_msg *m)
{
    if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        sub_msg_release(atomic_load_explicit(&m->zstd, memory_order_acquire));
        free(m);
    }
}

/* ---- the replay watch's and the hub's threads --------------------------------- */

/* The first reason to close wins: "<why>: <text>" (text may be NULL). */
static void close_with(subscriber *s, int code, const char *why, const char *text)
{
    if (s->close_code == 0) {
        s->close_code = code;
        snprintf(s->reason, sizeof s->reason, "%s%s%.90s", why, text ? ": " : "",
                 text ? text : "");
    }
}

/* Under s->lock: wakes the connection's loop, unless the connection is gone
 * (subscriber_end). Under the lock, so that once subscriber_end returns no
 * wake is running or will run: the loop may then be destroyed. */
static void wake_locked(subscriber *s, bool needed)
{
    if (needed && !s->ended)
        s->cfg.wake(s->cfg.wake_arg);
}

static bool queue_push(sub_queue *q, sub_msg *m)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : QUEUE_MIN;
        sub_msg **items = malloc(cap * sizeof *items);
        if (items == NULL)
            return false;
        for (size_t i = 0; i < q->n; i++)
            items[i] = q->items[(q->first + i) % q->cap];
        free(q->items);
        q->items = items;
        q->cap = cap;
        q->first = 0;
    }
    q->items[(q->first + q->n++) % q->cap] = m;
    return true;
}

static sub_msg *queue_peek(const sub_queue *q)
{
    return q->n > 0 ? q->items[q->first] : NULL;
}

static sub_msg *queue_pop(sub_queue *q)
{
    sub_msg *m = q->items[q->first];
    q->first = (q->first + 1) % q->cap;
    if (--q->n == 0 && q->cap > QUEUE_KEEP) {
        free(q->items);
        *q = (sub_queue){0};
    }
    return m;
}

/* Under s->lock: `m` at the end of the queue (the queue takes the
 * caller's reference). false without memory. */
static bool push_locked(subscriber *s, sub_msg *m)
{
    /* the connection writes until the queue is empty, then waits: it needs
     * waking when the queue stops being empty */
    bool was_empty = s->q.n == 0;
    if (!queue_push(&s->q, m))
        return false;
    wake_locked(s, was_empty);
    s->queued += m->len;
    return true;
}

static void raise_to(_Atomic size_t *peak, size_t v)
{
    size_t was = atomic_load(peak);
    while (v > was && !atomic_compare_exchange_weak(peak, &was, v))
        ;
}

/* Under s->lock, after a pulled replay queued an event: what it holds. */
static void count_held_locked(subscriber *s)
{
    if (s->reader == NULL || s->cfg.stats == NULL)
        return;
    raise_to(&s->cfg.stats->peak_events, s->q.n + s->in_hand);
    raise_to(&s->cfg.stats->peak_bytes, s->queued);
}

/* A replayed event as it goes out: its JSON, or compressed (compress=true,
 * one compression per replaying subscriber: the events are its own). */
static sub_msg *replay_msg(subscriber *s, const void *json, size_t len)
{
    sub_msg *m = sub_msg_create(s->cfg.headroom, json, len);
    if (m == NULL || !s->compress)
        return m;
    sub_msg *z = compressor_frame(s->cfg.compress, m, s->cfg.headroom);
    sub_msg_release(m);
    return z;
}

/* A replayed event: waits for room (the history is read at the client's pace). */
static es_status enqueue(subscriber *s, const void *json, size_t json_len)
{
    sub_msg *m = replay_msg(s, json, json_len);
    if (m == NULL)
        return ES_ERR_NOMEM;
    size_t len = m->len;
    struct timespec deadline = es_cli_deadline(s->cfg.slow_timeout_ms);
    pthread_mutex_lock(&s->lock);
    /* one message larger than the bound still goes when the queue is empty */
    while (!s->ended && s->close_code == 0 && s->queued > 0 &&
           s->queued + len > s->cfg.buffer_bytes) {
        if (pthread_cond_timedwait(&s->room, &s->lock, &deadline) == ETIMEDOUT)
            close_with(s, CLOSE_POLICY, "ConsumerTooSlow", "the subscriber's buffer stayed full");
    }
    es_status st = s->ended || s->close_code != 0 ? ES_ERR_STOPPED : ES_OK;
    if (st == ES_OK && push_locked(s, m)) {
        m = NULL;
        count_held_locked(s);
    } else if (st == ES_OK) {
        st = ES_ERR_NOMEM;
    }
    if (st == ES_ERR_STOPPED)
        wake_locked(s, true); /* to close */
    pthread_mutex_unlock(&s->lock);
    sub_msg_release(m); /* not queued */
    return st;
}

/* Under s->lock: the subscriber is closed for want of memory. false. */
static bool closed_for_memory(subscriber *s)
{
    close_with(s, CLOSE_INTERNAL, "out of memory", NULL);
    wake_locked(s, true);
    return false;
}

/* Under s->lock: a live event from the hub, by reference. The hub waits
 * for nobody: a queue full for slow_timeout_ms, or SLOW_FACTOR times over
 * its bound, closes the subscriber. false when it is closed. */
static bool offer_locked(subscriber *s, sub_msg *m)
{
    if (s->queued > 0 && s->queued + m->len > s->cfg.buffer_bytes) {
        int64_t now = es_cli_monotonic_ms();
        if (s->full_since_ms == 0)
            s->full_since_ms = now;
        if (now - s->full_since_ms >= s->cfg.slow_timeout_ms ||
            s->queued > SLOW_FACTOR * s->cfg.buffer_bytes) {
            close_with(s, CLOSE_POLICY, "ConsumerTooSlow", "the subscriber's buffer stayed full");
            wake_locked(s, true);
            return false;
        }
    }
    sub_msg_ref(m);
    if (push_locked(s, m))
        return true;
    sub_msg_release(m);
    return closed_for_memory(s);
}

/* hub_offer_fn: on the hub's thread (or in hub_join), under the hub's
 * lock. One lock of the subscriber for the whole batch. */
static bool offer(void *member, const hub_event *const *evs, size_t n)
{
    subscriber *s = member;
    pthread_mutex_lock(&s->lock);
    bool open = !s->ended && s->close_code == 0;
    if (open && n == 0) {
        close_with(s, CLOSE_INTERNAL, "store read ended", "the live fan-out stopped");
        wake_locked(s, true);
        open = false;
    }
    for (size_t i = 0; open && i < n; i++) {
        const hub_event *e = evs[i];
        if (!wants(&s->filter, &e->d) ||
            (s->filter.max_size != 0 && e->msg->len > s->filter.max_size))
            continue; /* maxMessageSizeBytes: larger ones are left out (of the JSON's size) */
        /* compressed once for every subscriber: cached on the event's
         * message by the first to ask */
        sub_msg *m =
            s->compress ? compressor_frame(s->cfg.compress, e->msg, s->cfg.headroom) : e->msg;
        open = m != NULL ? offer_locked(s, m) : closed_for_memory(s);
        if (s->compress)
            sub_msg_release(m);
    }
    pthread_mutex_unlock(&s->lock);
    return open;
}

/* hub_retire's `done`: the replay's watch is gone. */
static void subscriber_retired(void *arg)
{
    subscriber *s = arg;
    pthread_mutex_lock(&s->lock);
    s->retiring = false;
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->lock);
}

/* The hub delivers from now on: the watch (once started) is handed to the
 * hub to destroy. */
static void joined(subscriber *s, es_watch *w)
{
    pthread_mutex_lock(&s->lock);
    s->joined = true;
    if (w == NULL) {
        w = s->watch;
        s->watch = NULL;
    }
    s->retiring = w != NULL;
    pthread_mutex_unlock(&s->lock);
    ns_index_forget(s->cfg.ns, w); /* the index widens it no more: the hub destroys it */
    if (w != NULL)
        hub_retire(s->cfg.hub, w, subscriber_retired, s);
}

/* After the replay delivered everything up to `seq`: joins the hub when it
 * can take over from there (on the replay's thread). */
static bool try_join(subscriber *s, uint64_t seq)
{
    if (s->cfg.hub == NULL || !hub_join(s->cfg.hub, seq, offer, s))
        return false;
    es_arena_destroy(s->arena); /* the replay's thread, which alone used them, is here */
    s->arena = NULL;
    es_buf_free(&s->json);
    joined(s, NULL);
    return true;
}

static es_status replay_one(subscriber *s, const es_event *ev)
{
    es_atp_jetstream_event d;
    if (es_atp_jetstream_describe(ev, &d) != ES_OK || d.kind == ES_ATP_JS_NONE)
        return ES_OK;
    pthread_mutex_lock(&s->lock);
    bool want = wants(&s->filter, &d);
    size_t max_size = s->filter.max_size;
    pthread_mutex_unlock(&s->lock);
    if (!want)
        return ES_OK;
    es_arena_reset(s->arena);
    s->json.len = 0;
    if (es_atp_jetstream_encode(ev, &d, s->arena, &s->json) != ES_OK) {
        fprintf(stderr, "es-atproto-serve: event %" PRIu64 " not sent: %s\n", es_event_seq(ev),
                es_last_error());
        return ES_OK;
    }
    if (max_size != 0 && s->json.len > max_size)
        return ES_OK; /* maxMessageSizeBytes: Jetstream leaves larger ones out */
    return enqueue(s, s->json.data, s->json.len);
}

static es_status on_event(const es_event *ev, void *closure)
{
    subscriber *s = closure;
    pthread_mutex_lock(&s->lock);
    bool done = s->joined;
    pthread_mutex_unlock(&s->lock);
    if (done)
        return ES_OK; /* the hub delivers; this watch is being destroyed */
    es_status st = replay_one(s, ev);
    if (st == ES_OK)
        try_join(s, es_event_seq(ev));
    return st;
}

static void on_watch_error(es_status status, const char *text, bool final, void *closure)
{
    subscriber *s = closure;
    if (!final)
        return; /* a reconnect the watch rides out */
    pthread_mutex_lock(&s->lock);
    if (!s->joined)
        close_with(s, CLOSE_INTERNAL, "store read ended", text ? text : es_status_text(status));
    wake_locked(s, true);
    pthread_mutex_unlock(&s->lock);
}

/* The watch's server-side filter asks (nsfilter.h): the current filter's. */
static bool wants_collection(const char *nsid, void *arg)
{
    subscriber *s = arg;
    pthread_mutex_lock(&s->lock);
    bool yes = s->filter.f == NULL || es_atp_filter_keeps_collection(s->filter.f, nsid, strlen(nsid));
    pthread_mutex_unlock(&s->lock);
    return yes;
}

/* The replay's watch: every event after after_seq (the subscriber's
 * filter is applied to each event as it comes, so that options_update can
 * change it; ns_watch_start narrows it on the server to the wanted
 * collections when the entity-type index allows). */
static void replay_watch_options(subscriber *s, uint64_t after_seq, es_watch_options *wo)
{
    es_watch_options_init(wo);
    wo->after_seq = after_seq;
    wo->no_wait = true;
    wo->on_event = on_event;
    wo->on_error = on_watch_error;
    wo->closure = s;
}

/* ---- a pulled replay ------------------------------------------------------------ */

/* Waits until at most half the replay's window is queued: how many events
 * the next read may bring (0: the subscriber is closing). Half, so that a
 * read brings at least half a window: a client taking events one by one
 * would otherwise make a round trip per event. A client that takes nothing
 * for slow_timeout_ms is closed (one that takes some is only slow). */
static size_t wait_room(subscriber *s)
{
    struct timespec deadline = es_cli_deadline(s->cfg.slow_timeout_ms);
    pthread_mutex_lock(&s->lock);
    size_t was = s->q.n;
    while (!s->ended && s->close_code == 0 && s->q.n > s->cfg.replay_window / 2) {
        if (s->q.n < was) /* the client took some: it is slow, not gone */
            deadline = es_cli_deadline(s->cfg.slow_timeout_ms);
        was = s->q.n;
        if (pthread_cond_timedwait(&s->room, &s->lock, &deadline) == ETIMEDOUT)
            close_with(s, CLOSE_POLICY, "ConsumerTooSlow", "the subscriber's buffer stayed full");
    }
    size_t room = s->ended || s->close_code != 0 ? 0 : s->cfg.replay_window - s->q.n;
    if (room > ES_READER_BATCH_MAX)
        room = ES_READER_BATCH_MAX;
    s->in_hand = room;
    wake_locked(s, room == 0); /* to close */
    pthread_mutex_unlock(&s->lock);
    return room;
}

static es_status on_pulled(const es_event *ev, void *closure)
{
    subscriber *s = closure;
    pthread_mutex_lock(&s->lock);
    s->in_hand -= s->in_hand > 0;
    pthread_mutex_unlock(&s->lock);
    return replay_one(s, ev);
}

/* After a failed read: true to read again after a pause (NATS reconnecting,
 * a cluster electing), for up to REPLAY_RETRY_MS of failures in a row. */
static bool pause_after(subscriber *s, es_status st, int64_t *failing_since)
{
    if (st != ES_ERR_TIMEOUT && st != ES_ERR_CONNECTION)
        return false;
    int64_t now = es_cli_monotonic_ms();
    if (*failing_since == 0)
        *failing_since = now;
    if (now - *failing_since >= REPLAY_RETRY_MS)
        return false;
    struct timespec until = es_cli_deadline(REPLAY_PAUSE_MS);
    pthread_mutex_lock(&s->lock);
    if (!s->ended && s->close_code == 0) /* a closing subscriber ends the pause */
        pthread_cond_timedwait(&s->room, &s->lock, &until);
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* Reads the window the queue has room for, up to the hub's last event,
 * until the reader has passed it and the hub takes over. */
static es_status pull_until_joined(subscriber *s, es_reader *rd)
{
    int64_t failing_since = 0;
    for (size_t room; (room = wait_room(s)) > 0;) {
        uint64_t up_to = hub_last(s->cfg.hub);
        es_status st = es_reader_next(rd, up_to, room, on_pulled, s, NULL);
        if (st != ES_OK && pause_after(s, st, &failing_since))
            continue;
        if (st != ES_OK)
            return st; /* ES_ERR_STOPPED from a closing subscriber: its own reason stays */
        failing_since = 0;
        if (es_reader_position(rd) < up_to)
            continue;
        if (try_join(s, es_reader_position(rd)))
            break;
        if (hub_last(s->cfg.hub) == up_to) /* not behind the hub, yet refused: it ended */
            return es_error(ES_ERR_STOPPED, "the live fan-out stopped");
    }
    return ES_OK;
}

/* A replay from after_seq pulled a window at a time (es_reader): it holds
 * no more than cfg.replay_window events, and joins the hub once it has
 * caught up with it. On the starter's thread. */
static es_status replay_pulled(subscriber *s, uint64_t after_seq, bool by_collection)
{
    es_reader *rd = NULL;
    es_status st = ns_reader_open(s->cfg.ns, s->st, by_collection ? wants_collection : NULL, s,
                                  after_seq, &rd);
    if (st != ES_OK)
        return st;
    pthread_mutex_lock(&s->lock);
    s->reader = rd;
    pthread_mutex_unlock(&s->lock);
    if (s->cfg.stats != NULL)
        atomic_fetch_add(&s->cfg.stats->replaying, 1);
    st = pull_until_joined(s, rd);
    if (s->cfg.stats != NULL)
        atomic_fetch_sub(&s->cfg.stats->replaying, 1);
    pthread_mutex_lock(&s->lock);
    s->reader = NULL;
    pthread_mutex_unlock(&s->lock);
    ns_index_forget(s->cfg.ns, rd); /* the index widens it no more */
    es_reader_destroy(rd);
    return st;
}

void subscriber_metrics(sub_replay_stats *stats, es_buf *b)
{
    es_prom_one(b, "es_serve_replays", "gauge",
                "Subscribers replaying from a cursor now (pulling the store a window at a time).",
                (double)atomic_load(&stats->replaying));
    es_prom_one(b, "es_serve_replay_held_peak_events", "gauge",
                "The most events one replaying subscriber held at once: queued, and of its "
                "read in hand (--replay-window bounds it).",
                (double)atomic_load(&stats->peak_events));
    es_prom_one(b, "es_serve_replay_held_peak_bytes", "gauge",
                "The most bytes of JSON one replaying subscriber had queued at once.",
                (double)atomic_load(&stats->peak_bytes));
}

/* Joins the hub at once when it can take over from the start (no cursor,
 * or a cursor within the events the hub keeps); else resolves the cursor
 * and starts the replay's watch. Off the connection's thread (the
 * bisection is a few reads). */
static void *starter(void *arg)
{
    subscriber *s = arg;
    hub *h = s->cfg.hub;
    if (!s->has_cursor && h != NULL && hub_join(h, HUB_NOW, offer, s)) {
        joined(s, NULL);
        return NULL;
    }
    uint64_t after_seq = 0;
    es_status st = serve_cursor_after_seq(s->st, s->has_cursor, s->cursor_us, &after_seq);
    if (st == ES_OK && h != NULL && hub_join(h, after_seq, offer, s)) {
        joined(s, NULL);
        return NULL;
    }
    es_watch *w = NULL;
    if (st == ES_OK)
        st = es_arena_create(s->cfg.record_max, &s->arena);
    pthread_mutex_lock(&s->lock);
    bool by_collection = s->filter.collections > 0;
    pthread_mutex_unlock(&s->lock);
    if (st == ES_OK && h != NULL) {
        st = replay_pulled(s, after_seq, by_collection);
        pthread_mutex_lock(&s->lock);
        if (st != ES_OK)
            close_with(s, CLOSE_INTERNAL, "store read ended", es_last_error());
        wake_locked(s, st != ES_OK);
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    if (st == ES_OK) {
        es_watch_options wo;
        replay_watch_options(s, after_seq, &wo);
        st = ns_watch_start(s->cfg.ns, s->st, by_collection ? wants_collection : NULL, s, &wo, &w);
    }
    pthread_mutex_lock(&s->lock);
    if (st != ES_OK)
        close_with(s, CLOSE_INTERNAL, "cannot read the store", es_last_error());
    bool already = s->joined; /* the watch's thread joined before we got here */
    if (!already)
        s->watch = w;
    wake_locked(s, st != ES_OK);
    pthread_mutex_unlock(&s->lock);
    if (already)
        joined(s, w);
    return NULL;
}

/* ---- the connection's thread ------------------------------------------------- */

es_status subscriber_create(es_store *st, const sub_config *cfg, subscriber **out)
{
    subscriber *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ES_ERR_NOMEM;
    s->st = st;
    s->cfg = *cfg;
    s->json = (es_buf)ES_BUF_INIT;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME); /* es_cli_deadline is wall-clock */
    pthread_cond_init(&s->room, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return ES_OK;
}

es_status subscriber_query(subscriber *s, const char *name, const char *value)
{
    if (strcmp(name, "wantedCollections") == 0)
        return filter_add_collection(&s->filter, value);
    if (strcmp(name, "wantedDids") == 0)
        return filter_add_did(&s->filter, value);
    if (strcmp(name, "maxMessageSizeBytes") == 0) {
        s->filter.max_size = max_size_value(value);
        return ES_OK;
    }
    if (strcmp(name, "requireHello") == 0) {
        s->require_hello = strcmp(value, "true") == 0; /* exactly "true", as Jetstream */
        return ES_OK;
    }
    if (strcmp(name, "cursor") == 0) {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0')
            return es_error(ES_ERR_INVALID, "invalid cursor: %.40s", value);
        s->has_cursor = v > 0; /* 0 or negative: live, as no cursor */
        s->cursor_us = v;
        return ES_OK;
    }
    if (strcmp(name, "compress") == 0) {
        /* exactly "true", as Jetstream; ignored when the server has no compressor */
        s->compress = strcmp(value, "true") == 0 && s->cfg.compress != NULL;
        return ES_OK;
    }
    return ES_OK; /* unknown parameters are ignored, as Jetstream does */
}

bool subscriber_binary(const subscriber *s)
{
    return s->compress;
}

es_status subscriber_start(subscriber *s)
{
    if (s->started || s->require_hello)
        return ES_OK;
    if (pthread_create(&s->starter, NULL, starter, s) != 0)
        return es_error(ES_ERR_NOMEM, "cannot start a thread");
    s->started = s->starter_running = true;
    return ES_OK;
}

/* The strings of a JSON array into the filter (absent: nothing). */
static es_status add_strings(sub_filter *f, json_t *array, es_status (*add)(sub_filter *, const char *))
{
    if (array == NULL || json_is_null(array))
        return ES_OK;
    if (!json_is_array(array))
        return es_error(ES_ERR_INVALID, "bad options_update payload");
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v)
    {
        if (!json_is_string(v))
            return es_error(ES_ERR_INVALID, "bad options_update payload");
        es_status s = add(f, json_string_value(v));
        if (s != ES_OK)
            return s;
    }
    return ES_OK;
}

es_status subscriber_message(subscriber *s, const char *text, size_t len)
{
    json_t *msg = json_loadb(text, len, 0, NULL);
    json_t *type = json_object_get(msg, "type");
    if (msg == NULL || !json_is_string(type)) {
        json_decref(msg);
        return es_error(ES_ERR_INVALID, "bad SubscriberSourcedMessage envelope");
    }
    if (strcmp(json_string_value(type), "options_update") != 0) {
        json_decref(msg);
        return ES_OK; /* other types are ignored, as Jetstream does */
    }
    json_t *p = json_object_get(msg, "payload");
    sub_filter f = {0};
    es_status st = json_is_object(p) ? ES_OK : es_error(ES_ERR_INVALID, "bad options_update payload");
    if (st == ES_OK)
        st = add_strings(&f, json_object_get(p, "wantedCollections"), filter_add_collection);
    if (st == ES_OK)
        st = add_strings(&f, json_object_get(p, "wantedDids"), filter_add_did);
    json_t *max = json_object_get(p, "maxMessageSizeBytes");
    if (st == ES_OK && json_is_integer(max) && json_integer_value(max) > 0)
        f.max_size = (size_t)json_integer_value(max);
    json_decref(msg);
    if (st != ES_OK) {
        filter_free(&f);
        return st;
    }
    pthread_mutex_lock(&s->lock);
    sub_filter old = s->filter;
    s->filter = f;
    es_watch *w = s->watch;
    es_reader *rd = s->reader;
    pthread_mutex_unlock(&s->lock);
    filter_free(&old);
    ns_watch_refresh(s->cfg.ns, w); /* collections wanted now, from here on */
    ns_reader_refresh(s->cfg.ns, rd); /* (a forgotten one is left alone) */
    s->require_hello = false;
    return subscriber_start(s);
}

sub_msg *subscriber_next(subscriber *s, size_t max_len, int *close_code, char *reason,
                         size_t reason_size)
{
    pthread_mutex_lock(&s->lock);
    /* a too slow client is closed at once; otherwise what was queued before
     * the end still goes out first */
    sub_msg *m = s->close_code == CLOSE_POLICY ? NULL : queue_peek(&s->q);
    if (m != NULL && m->len > max_len) {
        *close_code = 0; /* it goes next time */
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    if (m != NULL) {
        queue_pop(&s->q);
        s->queued -= m->len;
        if (s->queued <= s->cfg.buffer_bytes)
            s->full_since_ms = 0;
        pthread_cond_signal(&s->room);
    }
    *close_code = m == NULL ? s->close_code : 0;
    if (*close_code != 0)
        snprintf(reason, reason_size, "%s", s->reason);
    pthread_mutex_unlock(&s->lock);
    return m;
}

void subscriber_end(subscriber *s)
{
    pthread_mutex_lock(&s->lock);
    s->ended = true;
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->lock);
}

void subscriber_destroy(subscriber *s)
{
    if (s == NULL)
        return;
    subscriber_end(s);
    if (s->starter_running)
        pthread_join(s->starter, NULL);
    ns_index_forget(s->cfg.ns, s->watch);
    pthread_mutex_lock(&s->lock);
    while (s->retiring) /* the hub is destroying the replay's watch */
        pthread_cond_wait(&s->room, &s->lock);
    pthread_mutex_unlock(&s->lock);
    es_watch_destroy(s->watch); /* no callback runs after it returns */
    if (s->cfg.hub != NULL)
        hub_leave(s->cfg.hub, s); /* nothing joins it any more: no offer after this */
    while (s->q.n > 0)
        sub_msg_release(queue_pop(&s->q));
    free(s->q.items);
    filter_free(&s->filter);
    es_buf_free(&s->json);
    es_arena_destroy(s->arena);
    pthread_cond_destroy(&s->room);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
