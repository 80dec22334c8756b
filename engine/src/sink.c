/* The keyed ordered sink (es/sink.h). Units live in a ring in offer order
 * (their number modulo the ring's size is their slot) from es_sink_offer
 * until they and every unit before them are settled; the watermark moves
 * over that settled prefix. A unit's wait for the earlier unit of its key is
 * found through hash buckets: each bucket names its newest unit, and each
 * unit the one registered before it in the same bucket.
 *
 * One thread drives the sink; append callbacks (library threads) only push
 * the acknowledged unit on a list under the lock, which the driving thread
 * takes in es_sink_poll. */
#include <es/sink.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/hash.h"
#include "sink_copy.h"
#include "sink_impl.h"
#include "store_impl.h"

/* After ES_ERR_AGAIN from the store's window with none of our appends in
 * flight (the handle is shared), look again this soon. */
#define AGAIN_RECHECK_MS 2
#define ERROR_TEXT_MAX   256

typedef enum unit_state {
    UNIT_QUEUED,   /* waiting to be sent: its turn, room, or a retry delay */
    UNIT_INFLIGHT, /* sent; the acknowledgement is awaited */
    UNIT_SETTLED,  /* acknowledged, dropped, or nothing to send: the watermark may pass */
} unit_state;

typedef struct unit unit;
struct unit {
    es_sink *sk;
    uint64_t no; /* 1, 2, ... in offer order */
    unit_state state;
    uint64_t position;
    int64_t time_ns;
    bool keyed;
    uint64_t key_hash;
    uint64_t bucket_prev; /* the unit registered before it in its bucket, or 0 */
    uint64_t wait_for;    /* the earlier unit of its key it waits for, or 0 */
    esi_sink_copy copy;   /* the events, until settled */
    unsigned attempts;
    int64_t not_before_ms;
    bool solo;         /* refused within a group once: never gathered again */
    unit *group_next;  /* the next unit of its append, or NULL */
    size_t sent_count; /* on a leader: the events of its append */
    /* written by the append callback, under the lock */
    unit *next_done;
    es_status result;
    bool duplicate;
    uint64_t first_seq; /* the stream sequence of the append's first event */
    int err_code;
    char error[ERROR_TEXT_MAX];
};

struct es_sink {
    es_sink_options o;
    esi_sink_append_fn append;
    void *append_ctx;
    unit *ring;
    size_t cap;
    uint64_t tail_no, head_no; /* held: tail_no .. head_no-1 */
    uint64_t first_queued;     /* no queued unit comes before it: where a scan starts */
    uint64_t *buckets;
    size_t bucket_mask;
    size_t inflight, batches, queued, bytes;
    int64_t next_due_ms;    /* the earliest retry delay to end, or INT64_MAX */
    int64_t again_until_ms; /* the store's window was full: not before this */
    esi_backoff backoff;
    es_event_spec *group; /* the events of a group being gathered */
    size_t group_len, group_bytes;
    es_sink_stats st;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    unit *done; /* acknowledgements not taken yet (newest first) */
    void (*wake)(void *ctx);
    void *wake_ctx;
    es_status stopped; /* ES_OK, or what stopped the sink (see es_sink_stopped) */
    char stop_error[ERROR_TEXT_MAX];
};

void es_sink_options_init(es_sink_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_units = 4096;
    o->max_bytes = (size_t)8 << 20;
    o->retry_min_ms = 100;
    o->retry_max_ms = 5000;
    o->group_max_events = 256;
    o->group_max_bytes = (size_t)4 << 20;
}

static unit *slot_of(const es_sink *sk, uint64_t no)
{
    return &sk->ring[no % sk->cap];
}

static size_t status_slot(es_status s)
{
    return (size_t)s < ES_SINK_STATUS_SLOTS ? (size_t)s : ES_SINK_STATUS_SLOTS - 1;
}

/* ---- creating ------------------------------------------------------------ */

static es_status resolve_options(const es_sink_options *opts, size_t max_inflight,
                                 size_t max_batches, es_sink_options *o)
{
    if (opts)
        *o = *opts;
    else
        es_sink_options_init(o);
    if (o->max_inflight == 0)
        o->max_inflight = max_inflight;
    if (o->max_batches == 0)
        o->max_batches = max_batches;
    if (o->max_batches > o->max_inflight)
        o->max_batches = o->max_inflight;
    if (o->group_max_events > ES_BATCH_MAX)
        o->group_max_events = ES_BATCH_MAX;
    if (o->max_units < 1 || o->max_bytes < 1 || o->max_inflight < 1 || o->max_batches < 1 ||
        o->retry_min_ms < 0 || o->retry_max_ms < o->retry_min_ms)
        return es_error(ES_ERR_INVALID, "sink options: max_units, max_bytes, max_inflight and "
                                        "max_batches must be positive, 0 <= retry_min_ms <= "
                                        "retry_max_ms");
    return ES_OK;
}

static size_t bucket_count(size_t cap)
{
    size_t n = 64;
    while (n < 2 * cap)
        n *= 2;
    return n;
}

es_status esi_sink_create_with(const es_sink_options *opts, size_t max_inflight, size_t max_batches,
                               esi_sink_append_fn append, void *ctx, es_sink **out)
{
    if (out == NULL || append == NULL)
        return es_error(ES_ERR_INVALID, "es_sink_create: out and an append are required");
    es_sink_options o;
    es_status s = resolve_options(opts, max_inflight, max_batches, &o);
    if (s != ES_OK)
        return s;
    es_sink *sk = esi_calloc(1, sizeof *sk);
    if (sk == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    sk->o = o;
    sk->append = append;
    sk->append_ctx = ctx;
    sk->cap = o.max_units;
    sk->tail_no = sk->head_no = sk->first_queued = 1;
    sk->next_due_ms = INT64_MAX;
    size_t nbuckets = bucket_count(sk->cap);
    sk->bucket_mask = nbuckets - 1;
    esi_backoff_init(&sk->backoff, o.retry_min_ms, o.retry_max_ms);
    pthread_mutex_init(&sk->mu, NULL);
    pthread_cond_init(&sk->cond, NULL);
    sk->ring = esi_calloc(sk->cap, sizeof *sk->ring);
    sk->buckets = esi_calloc(nbuckets, sizeof *sk->buckets);
    sk->group = esi_calloc(o.group_max_events > 1 ? o.group_max_events : 1, sizeof *sk->group);
    if (sk->ring == NULL || sk->buckets == NULL || sk->group == NULL) {
        es_sink_destroy(sk);
        return es_error(ES_ERR_NOMEM, "out of memory for a sink of %zu units", o.max_units);
    }
    *out = sk;
    return ES_OK;
}

static es_status store_append(void *ctx, const es_event_spec *events, size_t n, es_append_cb cb,
                              void *closure)
{
    return es_append_batch_try_async(ctx, events, n, cb, closure);
}

es_status es_sink_create(es_store *store, const es_sink_options *opts, es_sink **out)
{
    if (store == NULL)
        return es_error(ES_ERR_INVALID, "es_sink_create: store is NULL");
    return esi_sink_create_with(opts, (size_t)store->opts.max_inflight,
                                (size_t)store->opts.max_batches_inflight, store_append, store, out);
}

/* Takes the acknowledgements that arrived (newest first). */
static unit *take_done(es_sink *sk)
{
    pthread_mutex_lock(&sk->mu);
    unit *done = sk->done;
    sk->done = NULL;
    pthread_mutex_unlock(&sk->mu);
    return done;
}

void es_sink_destroy(es_sink *sk)
{
    if (sk == NULL)
        return;
    /* Every append in flight calls back exactly once (the store expires
     * unanswered ones after its request timeout): wait for those callbacks,
     * which point into the ring. */
    while (sk->inflight > 0) {
        pthread_mutex_lock(&sk->mu);
        while (sk->done == NULL)
            pthread_cond_wait(&sk->cond, &sk->mu);
        pthread_mutex_unlock(&sk->mu);
        for (unit *u = take_done(sk); u != NULL; u = u->next_done)
            sk->inflight--;
    }
    for (uint64_t no = sk->tail_no; no < sk->head_no && sk->ring; no++)
        esi_free(slot_of(sk, no)->copy.events);
    esi_free(sk->ring);
    esi_free(sk->buckets);
    esi_free(sk->group);
    pthread_cond_destroy(&sk->cond);
    pthread_mutex_destroy(&sk->mu);
    esi_free(sk);
}

void es_sink_on_wake(es_sink *sk, void (*fn)(void *ctx), void *ctx)
{
    /* Under the lock: once this returns, no callback is inside the old hook. */
    pthread_mutex_lock(&sk->mu);
    sk->wake = fn;
    sk->wake_ctx = ctx;
    pthread_mutex_unlock(&sk->mu);
}

/* ---- state ----------------------------------------------------------------- */

bool es_sink_has_room(const es_sink *sk)
{
    return sk->head_no - sk->tail_no < sk->cap && sk->bytes < sk->o.max_bytes;
}

es_status es_sink_stopped(const es_sink *sk)
{
    if (sk == NULL || sk->stopped == ES_OK)
        return ES_OK;
    return es_error(sk->stopped, "sink stopped: %s", sk->stop_error);
}

bool es_sink_idle(const es_sink *sk)
{
    return sk->head_no == sk->tail_no;
}

bool es_sink_watermark(const es_sink *sk, uint64_t *position)
{
    *position = sk->st.watermark;
    return sk->st.has_watermark;
}

void es_sink_get_stats(const es_sink *sk, es_sink_stats *out)
{
    *out = sk->st;
    out->held = (size_t)(sk->head_no - sk->tail_no);
    out->queued = sk->queued;
    out->inflight = sk->inflight;
    out->batches_inflight = sk->batches;
    out->bytes_held = sk->bytes;
}

/* ---- per-key order ------------------------------------------------------- */

/* Registers u under its key; returns the newest unsettled unit of the same
 * key (u waits for it), or 0. */
static uint64_t register_key(es_sink *sk, unit *u)
{
    uint64_t *bucket = &sk->buckets[u->key_hash & sk->bucket_mask];
    uint64_t wait_for = 0;
    for (uint64_t no = *bucket; no >= sk->tail_no;) { /* older units are gone */
        const unit *p = slot_of(sk, no);
        if (p->keyed && p->key_hash == u->key_hash && p->state != UNIT_SETTLED) {
            wait_for = no;
            break;
        }
        no = p->bucket_prev;
    }
    u->bucket_prev = *bucket;
    *bucket = u->no;
    return wait_for;
}

static bool turn_has_come(const es_sink *sk, const unit *u)
{
    if (u->wait_for == 0 || u->wait_for < sk->tail_no)
        return true;
    return slot_of(sk, u->wait_for)->state == UNIT_SETTLED;
}

/* ---- outcomes ------------------------------------------------------------ */

static void report(es_sink *sk, const unit *u, es_sink_outcome_kind kind, es_status s, int err_code,
                   const char *error, bool duplicate, int64_t retry_in_ms, uint64_t last_seq)
{
    if (sk->o.on_outcome == NULL)
        return;
    es_sink_outcome o = {.kind = kind,
                         .key = u->copy.key,
                         .key_len = u->copy.key_len,
                         .position = u->position,
                         .events = u->copy.count,
                         .status = s,
                         .err_code = err_code,
                         .error = error ? error : "",
                         .duplicate = duplicate,
                         .attempts = u->attempts,
                         .retry_in_ms = retry_in_ms,
                         .last_seq = last_seq};
    sk->o.on_outcome(&o, sk->o.closure);
}

static void settle(es_sink *sk, unit *u)
{
    if (u->copy.events != NULL) {
        sk->bytes -= u->copy.bytes;
        esi_free(u->copy.events);
        u->copy.events = NULL;
    }
    u->group_next = NULL;
    u->state = UNIT_SETTLED;
}

static void requeue(es_sink *sk, unit *u, int64_t delay_ms)
{
    u->state = UNIT_QUEUED;
    u->group_next = NULL;
    u->not_before_ms = esi_monotonic_ms() + delay_ms;
    if (delay_ms > 0 && u->not_before_ms < sk->next_due_ms)
        sk->next_due_ms = u->not_before_ms;
    if (u->no < sk->first_queued)
        sk->first_queued = u->no;
    sk->queued++;
}

/* Refusals no retry can change: the store's own checks of the events, a
 * failed expectation, ids partly stored before. */
static bool permanent(es_status s)
{
    switch (s) {
    case ES_ERR_INVALID:
    case ES_ERR_TOO_LARGE:
    case ES_ERR_CONFLICT:
    case ES_ERR_DUPLICATE:
    case ES_ERR_SHREDDED:
    case ES_ERR_NO_KEY:
    case ES_ERR_ENCODE:
    case ES_ERR_DECODE:
    case ES_ERR_NO_CODEC:
    case ES_ERR_UNSUPPORTED: return true;
    default: return false;
    }
}

/* A denial: no retry changes the user's permissions, and dropping the unit
 * would let the watermark pass what was never stored. The unit stays
 * queued, never sent again: the sink stops. */
static void stop(es_sink *sk, unit *u, es_status s, int err_code, const char *error)
{
    if (sk->stopped == ES_OK) {
        sk->stopped = s;
        snprintf(sk->stop_error, sizeof sk->stop_error, "%s", error ? error : "");
    }
    report(sk, u, ES_SINK_STOPPED, s, err_code, error, false, 0, 0);
    requeue(sk, u, 0);
}

/* One unit's failure: dropped for good, stopping the sink, or sent again
 * after a backoff. */
static void failed(es_sink *sk, unit *u, es_status s, int err_code, const char *error)
{
    if (s == ES_ERR_PERMISSION) {
        stop(sk, u, s, err_code, error);
        return;
    }
    if (permanent(s) || (sk->o.max_attempts > 0 && u->attempts >= sk->o.max_attempts)) {
        sk->st.dropped++;
        report(sk, u, ES_SINK_DROPPED, s, err_code, error, false, 0, 0);
        settle(sk, u);
        return;
    }
    int64_t delay = esi_backoff_next(&sk->backoff, u->attempts);
    report(sk, u, ES_SINK_RETRYING, s, err_code, error, false, delay, 0);
    requeue(sk, u, delay);
}

/* A group refused as a whole for a reason one of its units may hold alone
 * (an invalid event, ids partly stored before): each goes again alone. */
static void dissolve(es_sink *sk, unit *leader)
{
    for (unit *u = leader, *next; u != NULL; u = next) {
        next = u->group_next;
        u->solo = true;
        u->attempts--; /* not the unit's own failure */
        requeue(sk, u, 0);
    }
}

/* An append's failure, for each of its units. */
static void append_failed(es_sink *sk, unit *leader, es_status s, int err_code, const char *error)
{
    sk->st.failures[status_slot(s)]++;
    if (leader->group_next != NULL && permanent(s)) {
        dissolve(sk, leader);
        return;
    }
    for (unit *u = leader, *next; u != NULL; u = next) {
        next = u->group_next;
        failed(sk, u, s, err_code, error);
    }
}

/* ---- sending ----------------------------------------------------------------- */

static void on_acked(es_status s, const es_append_result *r, void *closure)
{
    unit *leader = closure;
    es_sink *sk = leader->sk;
    pthread_mutex_lock(&sk->mu);
    leader->result = s;
    leader->duplicate = s == ES_OK && r != NULL && r->duplicate;
    leader->first_seq = s == ES_OK && r != NULL ? r->first_seq : 0;
    leader->err_code = r != NULL ? r->err_code : 0;
    snprintf(leader->error, sizeof leader->error, "%s",
             s == ES_OK || r == NULL || r->error == NULL ? "" : r->error);
    leader->next_done = sk->done;
    sk->done = leader;
    pthread_cond_signal(&sk->cond);
    if (sk->wake != NULL) /* must not block: an event loop's wake-up */
        sk->wake(sk->wake_ctx);
    pthread_mutex_unlock(&sk->mu);
}

static bool window_open(const es_sink *sk)
{
    return sk->again_until_ms == 0 || esi_monotonic_ms() >= sk->again_until_ms;
}

static bool can_send(const es_sink *sk, size_t events)
{
    return sk->inflight < sk->o.max_inflight && (events < 2 || sk->batches < sk->o.max_batches) &&
           window_open(sk);
}

/* Sends one append: a unit, or a group of units linked by group_next. */
static void send_append(es_sink *sk, unit *leader, const es_event_spec *events, size_t n)
{
    for (unit *u = leader; u != NULL; u = u->group_next) {
        u->state = UNIT_INFLIGHT;
        u->attempts++;
    }
    leader->sent_count = n;
    sk->inflight++;
    sk->batches += n > 1;
    es_status s = sk->append(sk->append_ctx, events, n, on_acked, leader);
    if (s == ES_OK) {
        for (unit *u = leader; u != NULL; u = u->group_next)
            sk->st.retries += u->attempts > 1;
        return;
    }
    sk->inflight--;
    sk->batches -= n > 1;
    if (s == ES_ERR_AGAIN) { /* the store's window is full: nothing was sent */
        sk->again_until_ms = esi_monotonic_ms() + AGAIN_RECHECK_MS;
        for (unit *u = leader, *next; u != NULL; u = next) {
            next = u->group_next;
            u->attempts--;
            requeue(sk, u, 0);
        }
        return;
    }
    char error[ERROR_TEXT_MAX]; /* refused before sending: this thread's last error */
    snprintf(error, sizeof error, "%s", es_last_error());
    append_failed(sk, leader, s, es_last_error_code(), error);
}

static void send_alone(es_sink *sk, unit *u)
{
    sk->queued--;
    send_append(sk, u, u->copy.events, u->copy.count);
}

static bool gathering(const es_sink *sk)
{
    return sk->o.group_max_events > 1;
}

/* Whether u may join a group: a multi-event unit that fits one, and was not
 * refused within one before. */
static bool gatherable(const es_sink *sk, const unit *u)
{
    return gathering(sk) && u->copy.count > 1 && u->copy.count <= sk->o.group_max_events &&
           !u->solo;
}

/* Sends the group gathered so far (led by `leader`), if any. */
static void send_group(es_sink *sk, unit *leader)
{
    if (leader != NULL) {
        if (leader->group_next == NULL) /* one unit: its own events, no copy */
            send_append(sk, leader, leader->copy.events, leader->copy.count);
        else
            send_append(sk, leader, sk->group, sk->group_len);
    }
    sk->group_len = 0;
    sk->group_bytes = 0;
}

static bool group_full(const es_sink *sk, const unit *u)
{
    return sk->group_len + u->copy.count > sk->o.group_max_events ||
           sk->group_bytes + u->copy.bytes > sk->o.group_max_bytes;
}

/* Queued units whose turn has come, oldest first. A single-event unit goes
 * alone (a plain publish: cheap for the server). Multi-event units are
 * gathered into as few atomic batches as the group bounds allow; solo units
 * (a group refused as a whole) go alone. */
/* Whether a place is free for another append (when none is, only an
 * acknowledgement, or the store's window reopening, can change that). */
static bool room_for_any(const es_sink *sk)
{
    return sk->inflight < sk->o.max_inflight && window_open(sk);
}

/* u stays queued: where the next scan starts, and when es_sink_wait wakes. */
static void left_queued(es_sink *sk, const unit *u, int64_t now)
{
    if (u->no < sk->first_queued)
        sk->first_queued = u->no;
    if (u->not_before_ms > now && u->not_before_ms < sk->next_due_ms)
        sk->next_due_ms = u->not_before_ms;
}

static void send_queued(es_sink *sk)
{
    int64_t now = esi_monotonic_ms();
    uint64_t no = sk->first_queued > sk->tail_no ? sk->first_queued : sk->tail_no;
    sk->first_queued = sk->head_no; /* lowered again for every unit left queued */
    sk->next_due_ms = INT64_MAX;
    unit *leader = NULL, *last = NULL;
    for (; no < sk->head_no && sk->queued > 0; no++) {
        if (leader == NULL && !room_for_any(sk))
            break; /* nothing more can go: the rest waits for an acknowledgement */
        unit *u = slot_of(sk, no);
        if (u->state != UNIT_QUEUED)
            continue;
        if (u->not_before_ms > now || !turn_has_come(sk, u)) {
            left_queued(sk, u, now);
            continue;
        }
        if (!gatherable(sk, u)) {
            if (can_send(sk, u->copy.count))
                send_alone(sk, u);
            else
                left_queued(sk, u, now);
            continue;
        }
        if (leader != NULL && group_full(sk, u)) {
            send_group(sk, leader);
            leader = last = NULL;
        }
        if (leader == NULL && !can_send(sk, u->copy.count)) {
            left_queued(sk, u, now);
            continue;
        }
        sk->queued--;
        memcpy(sk->group + sk->group_len, u->copy.events, u->copy.count * sizeof *u->copy.events);
        sk->group_len += u->copy.count;
        sk->group_bytes += u->copy.bytes;
        u->group_next = NULL;
        if (leader == NULL)
            leader = u;
        else
            last->group_next = u;
        last = u;
    }
    if (no < sk->first_queued) /* the units not looked at */
        sk->first_queued = no;
    send_group(sk, leader);
}

/* ---- acknowledgements ---------------------------------------------------------- */

static void stored(es_sink *sk, unit *leader)
{
    sk->st.appends++;
    sk->st.events += leader->sent_count;
    sk->st.duplicates += leader->duplicate;
    /* a group's units are its events in order: each its own slice */
    uint64_t seq = leader->first_seq;
    for (unit *u = leader, *next; u != NULL; u = next) {
        next = u->group_next;
        if (u->time_ns > sk->st.last_time_ns)
            sk->st.last_time_ns = u->time_ns;
        uint64_t last = seq != 0 && u->copy.count > 0 ? seq + u->copy.count - 1 : 0;
        seq += seq != 0 ? u->copy.count : 0;
        report(sk, u, ES_SINK_STORED, ES_OK, 0, "", leader->duplicate, 0, last);
        settle(sk, u);
    }
}

static void take_ack(es_sink *sk, unit *leader)
{
    sk->inflight--;
    sk->batches -= leader->sent_count > 1;
    sk->again_until_ms = 0; /* a place in the store's window was freed */
    if (leader->result == ES_OK)
        stored(sk, leader);
    else
        append_failed(sk, leader, leader->result, leader->err_code, leader->error);
}

static void retire(es_sink *sk)
{
    while (sk->tail_no < sk->head_no) {
        const unit *u = slot_of(sk, sk->tail_no);
        if (u->state != UNIT_SETTLED)
            break;
        if (u->position != 0 && (!sk->st.has_watermark || u->position > sk->st.watermark)) {
            sk->st.watermark = u->position;
            sk->st.has_watermark = true;
        }
        sk->st.settled++;
        sk->tail_no++;
    }
}

/* Takes acknowledgements; true when there were any. */
static bool take_acks(es_sink *sk)
{
    unit *done = take_done(sk);
    if (done == NULL)
        return false;
    unit *oldest_first = NULL; /* for orderly outcomes: the list is newest first */
    while (done != NULL) {
        unit *next = done->next_done;
        done->next_done = oldest_first;
        oldest_first = done;
        done = next;
    }
    for (unit *u = oldest_first, *next; u != NULL; u = next) {
        next = u->next_done;
        take_ack(sk, u);
    }
    return true;
}

void es_sink_poll(es_sink *sk)
{
    take_acks(sk);
    if (sk->queued > 0 && sk->stopped == ES_OK)
        send_queued(sk);
    retire(sk);
}

/* ---- offering ------------------------------------------------------------------- */

es_status es_sink_offer(es_sink *sk, const es_sink_unit *in)
{
    if (sk == NULL || in == NULL || (in->count > 0 && in->events == NULL))
        return es_error(ES_ERR_INVALID, "es_sink_offer: sink, unit and its events are required");
    if (in->count > ES_BATCH_MAX)
        return es_error(ES_ERR_TOO_LARGE,
                        "a unit holds at most %d events, not %zu (one atomic batch)", ES_BATCH_MAX,
                        in->count);
    if (sk->stopped != ES_OK)
        return es_sink_stopped(sk);
    if (!es_sink_has_room(sk))
        return es_error(ES_ERR_AGAIN, "the sink is full (%zu units, %zu bytes held)",
                        (size_t)(sk->head_no - sk->tail_no), sk->bytes);
    unit *u = slot_of(sk, sk->head_no);
    memset(u, 0, sizeof *u);
    u->sk = sk;
    u->no = sk->head_no;
    u->position = in->position;
    u->time_ns = in->time_ns;
    u->state = UNIT_SETTLED;
    if (in->count > 0) {
        size_t key_len = in->key == NULL ? 0 : in->key_len ? in->key_len : strlen(in->key);
        es_status s =
            esi_sink_copy_make(in->events, in->count, in->key, key_len, esi_now_ns(), &u->copy);
        if (s != ES_OK)
            return s;
        sk->bytes += u->copy.bytes;
        u->state = UNIT_QUEUED;
        u->keyed = key_len > 0;
        if (u->keyed) {
            u->key_hash = esi_fnv1a64(u->copy.key, key_len, ESI_FNV64_OFFSET);
            u->wait_for = register_key(sk, u);
        }
    }
    sk->head_no++;
    sk->st.offered++;
    if (u->state == UNIT_SETTLED) { /* nothing to store: only its position counts */
        retire(sk);
        return ES_OK;
    }
    /* At once when its turn has come and there is room; a multi-event unit
     * only when nothing waits, else it is gathered with the others. */
    bool alone = sk->queued == 0 || !gatherable(sk, u);
    if (alone && turn_has_come(sk, u) && can_send(sk, u->copy.count)) {
        send_append(sk, u, u->copy.events, u->copy.count);
        retire(sk); /* a refusal before sending settles it at once */
    } else {
        sk->queued++;
        if (u->no < sk->first_queued)
            sk->first_queued = u->no;
    }
    return ES_OK;
}

/* ---- waiting ------------------------------------------------------------------- */

static void deadline_at(struct timespec *ts, int64_t ms_from_now)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms_from_now / 1000);
    ts->tv_nsec += (long)(ms_from_now % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

es_status es_sink_wait(es_sink *sk, int64_t timeout_ms)
{
    if (sk->stopped != ES_OK) {
        es_sink_poll(sk); /* still takes what was in flight */
        return es_sink_stopped(sk);
    }
    int64_t now = esi_monotonic_ms();
    int64_t until = now + (timeout_ms > 0 ? timeout_ms : 0);
    bool timer = false; /* woken by a retry or the store's window, not by an ack */
    if (sk->queued > 0 && sk->next_due_ms < until) {
        until = sk->next_due_ms;
        timer = true;
    }
    if (sk->queued > 0 && sk->again_until_ms != 0 && sk->again_until_ms < until) {
        until = sk->again_until_ms;
        timer = true;
    }
    pthread_mutex_lock(&sk->mu);
    for (int64_t left; sk->done == NULL && (left = until - esi_monotonic_ms()) > 0;) {
        struct timespec ts;
        deadline_at(&ts, left);
        pthread_cond_timedwait(&sk->cond, &sk->mu, &ts);
    }
    bool acked = sk->done != NULL;
    pthread_mutex_unlock(&sk->mu);
    es_sink_poll(sk);
    if (sk->stopped != ES_OK)
        return es_sink_stopped(sk);
    if (acked || (timer && esi_monotonic_ms() >= until))
        return ES_OK;
    return es_error(ES_ERR_TIMEOUT, "sink: nothing acknowledged within %lld ms",
                    (long long)timeout_ms);
}

es_status es_sink_drain(es_sink *sk, int64_t timeout_ms)
{
    int64_t give_up = esi_monotonic_ms() + timeout_ms;
    es_sink_poll(sk);
    for (int64_t left; !es_sink_idle(sk) && (left = give_up - esi_monotonic_ms()) > 0;) {
        es_status s = es_sink_wait(sk, left);
        if (s != ES_OK && s != ES_ERR_TIMEOUT)
            return s; /* stopped */
    }
    if (sk->stopped != ES_OK)
        return es_sink_stopped(sk);
    if (!es_sink_idle(sk))
        return es_error(ES_ERR_TIMEOUT, "sink: %zu units still held after %lld ms",
                        (size_t)(sk->head_no - sk->tail_no), (long long)timeout_ms);
    return ES_OK;
}
