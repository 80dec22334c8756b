#define _POSIX_C_SOURCE 200809L
#include "window.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <es/arena.h>

#include "backoff.h"
#include "clock.h"
#include "hash.h"

#define REDECODE_ARENA_LIMIT ((size_t)32 << 20)
#define WINDOW_FULL_RETRY_MS 10 /* the library's own window was full: try again soon */
/* Slots beyond `entries`: a source that cannot stop at once (a frame already
 * read when room ran out) may add a few more. */
#define ROOM_SLACK 16
/* The most events gathered into one atomic batch (the core takes 1000). */
#define GROUP_EVENTS_MAX 256
/* ... and frame bytes (their decoding shares one arena). */
#define GROUP_BYTES_MAX ((size_t)4 << 20)

typedef enum entry_state {
    ENTRY_QUEUED,   /* waiting to be sent: its turn, room, or a retry delay */
    ENTRY_INFLIGHT, /* sent; its acknowledgement is awaited */
    ENTRY_SETTLED,  /* acknowledged, or nothing to send: only the cursor waits for it */
} entry_state;

struct ingest_entry {
    ingest_window *w;
    uint64_t no; /* 1, 2, ... in source order; its slot is no % capacity */
    entry_state state;
    bool has_seq;
    uint64_t seq;
    int64_t time_ns;
    uint64_t did_hash;
    uint64_t prev_no; /* an earlier unsettled entry of the same DID, or 0 */
    size_t live_index;
    size_t events;
    uint8_t *frame; /* the copy kept for retries, until settled */
    size_t len;
    unsigned attempts;
    int64_t not_before_ms;
    bool solo;                /* never gathered with other commits again */
    ingest_entry *group_next; /* the next member of its unit, or NULL */
    /* written by ingest_window_acked (under the lock) */
    ingest_entry *next_done;
    es_status result;
    bool duplicate;
    char error[200];
};

struct ingest_window {
    ingest_window_limits lim;
    ingest_send_fn send;
    void *send_ctx;
    ingest_outcome_fn outcome;
    void *outcome_ctx;
    void (*wake)(void *ctx);
    void *wake_ctx;
    es_atp_decoder *redecoder; /* for frames sent later than they arrived */
    es_arena *arena;           /* the unit being gathered */
    es_arena *solo_arena;      /* an entry sent alone */
    ingest_entry *ring;
    uint64_t tail_no, head_no; /* held: tail_no .. head_no-1 */
    ingest_entry **live;       /* unsettled entries with events, in no order */
    size_t live_count;
    size_t inflight, batches, queued, bytes;
    uint64_t rng;
    es_event_spec unit[GROUP_EVENTS_MAX]; /* the events of a unit being built */
    size_t unit_len, unit_bytes;
    ingest_window_stats st;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    ingest_entry *done; /* acknowledgements not taken yet (LIFO) */
};

static size_t ring_size(const ingest_window *w)
{
    return w->lim.entries + ROOM_SLACK;
}

static ingest_entry *entry_of(const ingest_window *w, uint64_t no)
{
    return &w->ring[no % ring_size(w)];
}

void ingest_window_limits_init(ingest_window_limits *l)
{
    l->entries = 4096;
    l->max_units = 256;
    l->max_batches = 32;
    l->max_bytes = (size_t)8 << 20;
    l->retry_min_ms = 100;
    l->retry_max_ms = 5000;
}

es_status ingest_window_create(const ingest_window_limits *limits,
                               const es_atp_options *decoder_opts, ingest_send_fn send,
                               void *send_ctx, ingest_window **out)
{
    ingest_window *w = calloc(1, sizeof *w);
    if (w == NULL)
        return ES_ERR_NOMEM;
    if (limits)
        w->lim = *limits;
    else
        ingest_window_limits_init(&w->lim);
    if (w->lim.entries < 2 || w->lim.max_units < 1 || w->lim.max_batches < 1) {
        free(w);
        return ES_ERR_INVALID;
    }
    w->send = send;
    w->send_ctx = send_ctx;
    w->tail_no = w->head_no = 1;
    w->rng = es_cli_backoff_seed();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->ring = calloc(ring_size(w), sizeof *w->ring);
    w->live = calloc(ring_size(w), sizeof *w->live);
    es_status s = w->ring && w->live ? ES_OK : ES_ERR_NOMEM;
    if (s == ES_OK)
        s = es_atp_decoder_create(decoder_opts, &w->redecoder);
    if (s == ES_OK)
        s = es_arena_create(REDECODE_ARENA_LIMIT, &w->arena);
    if (s == ES_OK)
        s = es_arena_create(REDECODE_ARENA_LIMIT, &w->solo_arena);
    if (s != ES_OK) {
        ingest_window_destroy(w);
        return s;
    }
    *out = w;
    return ES_OK;
}

void ingest_window_destroy(ingest_window *w)
{
    if (w == NULL)
        return;
    for (uint64_t no = w->tail_no; no < w->head_no && w->ring; no++)
        free(entry_of(w, no)->frame);
    free(w->ring);
    free(w->live);
    es_arena_destroy(w->arena);
    es_arena_destroy(w->solo_arena);
    es_atp_decoder_destroy(w->redecoder);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void ingest_window_on_outcome(ingest_window *w, ingest_outcome_fn fn, void *ctx)
{
    w->outcome = fn;
    w->outcome_ctx = ctx;
}

void ingest_window_on_wake(ingest_window *w, void (*fn)(void *ctx), void *ctx)
{
    /* Under the lock: once this returns, no callback is inside the old hook. */
    pthread_mutex_lock(&w->mu);
    w->wake = fn;
    w->wake_ctx = ctx;
    pthread_mutex_unlock(&w->mu);
}

bool ingest_window_room(const ingest_window *w)
{
    return w->head_no - w->tail_no < w->lim.entries && w->bytes < w->lim.max_bytes;
}

bool ingest_window_idle(const ingest_window *w)
{
    return w->head_no == w->tail_no;
}

/* The newest unsettled entry of the same repository: this one waits for it. */
static uint64_t previous_of_did(const ingest_window *w, uint64_t did_hash)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < w->live_count; i++)
        if (w->live[i]->did_hash == did_hash && w->live[i]->no > prev)
            prev = w->live[i]->no;
    return prev;
}

static bool turn_has_come(const ingest_window *w, const ingest_entry *e)
{
    if (e->prev_no == 0 || e->prev_no < w->tail_no)
        return true;
    const ingest_entry *p = entry_of(w, e->prev_no);
    return p->no != e->prev_no || p->state == ENTRY_SETTLED;
}

static bool can_send(const ingest_window *w, const ingest_entry *e)
{
    return w->inflight < w->lim.max_units && (e->events < 2 || w->batches < w->lim.max_batches);
}

static void report(ingest_window *w, const ingest_entry *e, es_status s, const char *error,
                   bool duplicate, bool retrying, int64_t retry_in_ms)
{
    if (w->outcome == NULL)
        return;
    ingest_outcome o = {.entry = e,
                        .seq = e->has_seq ? e->seq : 0,
                        .status = s,
                        .error = error,
                        .duplicate = duplicate,
                        .retrying = retrying,
                        .attempts = e->attempts,
                        .retry_in_ms = retry_in_ms};
    w->outcome(w->outcome_ctx, &o);
}

static void settle(ingest_window *w, ingest_entry *e)
{
    if (e->frame != NULL) {
        w->bytes -= e->len;
        free(e->frame);
        e->frame = NULL;
    }
    if (e->events > 0 && e->state != ENTRY_SETTLED) { /* leaves the live set */
        ingest_entry *last = w->live[--w->live_count];
        w->live[e->live_index] = last;
        last->live_index = e->live_index;
    }
    e->state = ENTRY_SETTLED;
}

/* Retries back off exponentially with jitter, so that many ingesters (or
 * many frames) do not hammer a recovering server in step. */
static int64_t backoff_ms(ingest_window *w, unsigned attempts)
{
    return es_cli_backoff_ms(w->lim.retry_min_ms, w->lim.retry_max_ms,
                             attempts > 0 ? attempts - 1 : 0, &w->rng);
}

/* Refusals that no retry can change: the store's own checks of the events. */
static bool permanent(es_status s)
{
    return s == ES_ERR_INVALID || s == ES_ERR_TOO_LARGE;
}

static void requeue(ingest_window *w, ingest_entry *e, int64_t delay_ms)
{
    e->state = ENTRY_QUEUED;
    e->not_before_ms = es_cli_monotonic_ms() + delay_ms;
    e->group_next = NULL;
    w->queued++;
}

/* One entry's failure: dropped for good, or sent again after a backoff. */
static void failed(ingest_window *w, ingest_entry *e, es_status s, const char *error)
{
    w->st.failures[s <= ES_ERR_IO ? s : 0]++;
    if (permanent(s)) {
        w->st.dropped++;
        report(w, e, s, error, false, false, 0);
        e->group_next = NULL;
        settle(w, e);
        return;
    }
    int64_t delay = backoff_ms(w, e->attempts);
    report(w, e, s, error, false, true, delay);
    requeue(w, e, delay);
}

/* A group (several commits in one atomic batch) that the store refused as a
 * whole for a reason one of its members may hold alone (a partial
 * duplicate, an invalid event): each goes again on its own. */
static void dissolve(ingest_window *w, ingest_entry *leader)
{
    for (ingest_entry *e = leader, *next; e != NULL; e = next) {
        next = e->group_next;
        e->solo = true;
        e->attempts--; /* not the commit's own failure */
        requeue(w, e, 0);
    }
}

/* Sends a unit: one entry, or a group of entries linked by group_next (one
 * atomic batch holding every commit of the group: each commit stays
 * all-or-nothing, the group too). */
static void send_unit(ingest_window *w, ingest_entry *leader, const es_event_spec *events, size_t n)
{
    bool batch = n > 1;
    for (ingest_entry *e = leader; e != NULL; e = e->group_next) {
        e->state = ENTRY_INFLIGHT;
        if (e->attempts++ > 0)
            w->st.retries++;
    }
    w->inflight++;
    w->batches += batch;
    es_status s = w->send(w->send_ctx, events, n, leader);
    if (s == ES_OK)
        return;
    w->inflight--;
    w->batches -= batch;
    if (s == ES_ERR_TIMEOUT) { /* the library's window stayed full: nothing was sent */
        for (ingest_entry *e = leader, *next; e != NULL; e = next) {
            next = e->group_next;
            e->attempts--;
            requeue(w, e, WINDOW_FULL_RETRY_MS);
        }
        return;
    }
    const char *error = es_last_error();
    if (leader->group_next != NULL && permanent(s)) {
        w->st.failures[s]++;
        dissolve(w, leader);
        return;
    }
    for (ingest_entry *e = leader, *next; e != NULL; e = next) {
        next = e->group_next;
        failed(w, e, s, error);
    }
}

es_status ingest_window_add(ingest_window *w, es_status decode_status, const es_atp_batch *b,
                            const uint8_t *frame, size_t len)
{
    if (w->head_no - w->tail_no >= ring_size(w))
        return ES_ERR_LIMIT; /* the caller ignored ingest_window_room too long */
    ingest_entry *e = entry_of(w, w->head_no);
    memset(e, 0, sizeof *e);
    e->w = w;
    e->no = w->head_no;
    e->has_seq = b->has_seq;
    e->seq = b->seq;
    e->time_ns = b->time_ns;
    e->state = ENTRY_SETTLED;
    bool sendable = decode_status == ES_OK && b->kind != ES_ATP_KIND_ERROR && b->count > 0;
    if (sendable) {
        e->frame = malloc(len);
        if (e->frame == NULL)
            return ES_ERR_NOMEM;
        memcpy(e->frame, frame, len);
        e->len = len;
        w->bytes += len;
        e->events = b->count;
        e->did_hash = es_cli_fnv1a(b->did ? b->did : "", b->did ? b->did_len : 0);
        e->prev_no = previous_of_did(w, e->did_hash);
        e->state = ENTRY_QUEUED;
        e->live_index = w->live_count;
        w->live[w->live_count++] = e;
    }
    w->head_no++;
    w->st.frames++;
    if (!sendable)
        return ES_OK;
    /* At once when its turn has come and there is room — a multi-op commit
     * only when nothing waits: else it is gathered with the others
     * (send_queued). */
    if ((e->events == 1 || w->queued == 0) && turn_has_come(w, e) && can_send(w, e)) {
        send_unit(w, e, b->events, b->count); /* the decode at hand: no copy decoded again */
        return ES_OK;
    }
    w->queued++;
    return ES_OK;
}

static void take_ack(ingest_window *w, ingest_entry *leader)
{
    es_status s = leader->result;
    bool group = leader->group_next != NULL;
    size_t events = 0;
    for (ingest_entry *e = leader; e != NULL; e = e->group_next)
        events += e->events;
    w->inflight--;
    w->batches -= events > 1;
    if (s == ES_OK || (s == ES_ERR_DUPLICATE && !group)) {
        /* ES_ERR_DUPLICATE alone: some of the commit's ids were stored before
         * and the rest was refused with them — only when the same commit was
         * stored earlier under another --collections filter. Logged, not
         * retried. */
        w->st.appends++;
        w->st.events += events;
        w->st.duplicates += leader->duplicate;
        if (s != ES_OK) {
            w->st.failures[s]++;
            report(w, leader, s, leader->error, false, false, 0);
        } else if (leader->duplicate) {
            report(w, leader, ES_OK, NULL, true, false, 0);
        }
        for (ingest_entry *e = leader, *next; e != NULL; e = next) {
            next = e->group_next;
            if (e->time_ns > w->st.last_time_ns)
                w->st.last_time_ns = e->time_ns;
            e->group_next = NULL;
            settle(w, e);
        }
        return;
    }
    if (group && (s == ES_ERR_DUPLICATE || permanent(s))) {
        w->st.failures[s]++;
        dissolve(w, leader);
        return;
    }
    for (ingest_entry *e = leader, *next; e != NULL; e = next) {
        next = e->group_next;
        failed(w, e, s, leader->error);
    }
}

/* ---- sending what waits ------------------------------------------------------ */

/* Decodes a kept frame again (into the window's arena, which the caller
 * resets once per unit) and appends its events to the unit being built. */
static bool gather(ingest_window *w, ingest_entry *e)
{
    es_atp_batch b;
    es_status s = es_atp_decode(w->redecoder, e->frame, e->len, w->arena, &b);
    if (s != ES_OK || b.count != e->events) { /* cannot happen: it decoded the first time */
        w->st.dropped++;
        report(w, e, s != ES_OK ? s : ES_ERR_DECODE, "the kept frame no longer decodes", false,
               false, 0);
        settle(w, e);
        return false;
    }
    memcpy(w->unit + w->unit_len, b.events, b.count * sizeof *b.events);
    w->unit_len += b.count;
    w->unit_bytes += e->len;
    return true;
}

static void send_built(ingest_window *w, ingest_entry *leader)
{
    if (leader != NULL)
        send_unit(w, leader, w->unit, w->unit_len);
    w->unit_len = 0;
    w->unit_bytes = 0;
    es_arena_reset(w->arena);
}

/* Sends one queued entry alone, from its copy decoded again. */
static void send_alone(ingest_window *w, ingest_entry *e)
{
    w->queued--;
    es_arena_reset(w->solo_arena);
    es_atp_batch b;
    es_status s = es_atp_decode(w->redecoder, e->frame, e->len, w->solo_arena, &b);
    if (s != ES_OK || b.count != e->events) { /* cannot happen: it decoded the first time */
        w->st.dropped++;
        report(w, e, s != ES_OK ? s : ES_ERR_DECODE, "the kept frame no longer decodes", false,
               false, 0);
        settle(w, e);
        return;
    }
    send_unit(w, e, b.events, b.count);
}

/* Queued entries whose turn has come, oldest first. A single-op commit goes
 * alone (a plain publish: cheap for the server). Multi-op commits are
 * gathered into as few atomic batches as a unit allows: the server commits
 * atomic batches one at a time per stream, each with a flush of its own, so
 * when they pile up, one batch of several commits keeps up where many small
 * ones would not; each commit stays all-or-nothing (the group too). Solo
 * entries (a group refused as a whole) go alone. */
static void send_queued(ingest_window *w)
{
    int64_t now = es_cli_monotonic_ms();
    ingest_entry *leader = NULL, *last = NULL;
    es_arena_reset(w->arena);
    w->unit_len = 0;
    w->unit_bytes = 0;
    for (uint64_t no = w->tail_no; no < w->head_no && w->queued > 0; no++) {
        ingest_entry *e = entry_of(w, no);
        if (e->state != ENTRY_QUEUED || e->not_before_ms > now || !turn_has_come(w, e))
            continue;
        if (e->events == 1 || e->solo) {
            if (can_send(w, e))
                send_alone(w, e);
            continue;
        }
        if (leader != NULL && (w->unit_len + e->events > GROUP_EVENTS_MAX ||
                               w->unit_bytes + e->len > GROUP_BYTES_MAX)) {
            send_built(w, leader);
            leader = last = NULL;
        }
        if (leader == NULL && !can_send(w, e))
            continue;
        w->queued--;
        if (!gather(w, e))
            continue;
        e->group_next = NULL;
        if (leader == NULL)
            leader = e;
        else
            last->group_next = e;
        last = e;
    }
    send_built(w, leader);
}

static void retire(ingest_window *w)
{
    while (w->tail_no < w->head_no) {
        ingest_entry *e = entry_of(w, w->tail_no);
        if (e->state != ENTRY_SETTLED)
            break;
        if (e->has_seq && (!w->st.has_cursor || e->seq > w->st.cursor)) {
            w->st.cursor = e->seq;
            w->st.has_cursor = true;
        }
        w->st.settled++;
        w->tail_no++;
    }
}

void ingest_window_pump(ingest_window *w)
{
    pthread_mutex_lock(&w->mu);
    ingest_entry *done = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->mu);
    /* oldest first, for orderly logs: the list is LIFO */
    ingest_entry *rev = NULL;
    while (done != NULL) {
        ingest_entry *next = done->next_done;
        done->next_done = rev;
        rev = done;
        done = next;
    }
    for (ingest_entry *e = rev, *next; e != NULL; e = next) {
        next = e->next_done;
        take_ack(w, e);
    }
    if (w->queued > 0)
        send_queued(w);
    retire(w);
}

void ingest_window_wait(ingest_window *w, int64_t timeout_ms)
{
    struct timespec ts = es_cli_deadline(timeout_ms);
    pthread_mutex_lock(&w->mu);
    if (w->done == NULL)
        pthread_cond_timedwait(&w->cond, &w->mu, &ts);
    pthread_mutex_unlock(&w->mu);
}

void ingest_window_acked(ingest_entry *e, es_status s, bool duplicate, const char *error)
{
    ingest_window *w = e->w;
    pthread_mutex_lock(&w->mu);
    e->result = s;
    e->duplicate = duplicate;
    snprintf(e->error, sizeof e->error, "%s", s == ES_OK || error == NULL ? "" : error);
    e->next_done = w->done;
    w->done = e;
    pthread_cond_signal(&w->cond);
    if (w->wake != NULL) /* must not block: lws_cancel_service writes to a pipe */
        w->wake(w->wake_ctx);
    pthread_mutex_unlock(&w->mu);
}

void ingest_window_get_stats(const ingest_window *w, ingest_window_stats *out)
{
    *out = w->st;
    out->held = (size_t)(w->head_no - w->tail_no);
    out->inflight = w->inflight;
    out->batches_inflight = w->batches;
    out->queued = w->queued;
    out->bytes_held = w->bytes;
}
