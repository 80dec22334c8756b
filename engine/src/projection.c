/* Running a projection: worker threads pulling from the projection's
 * durable consumers, handing events to the handler, acknowledging them. */
#include <es/projection.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event_impl.h"
#include "base/alloc.h"
#include "base/internal.h"
#include "transport/js.h"
#include "projection_impl.h"
#include "transport/pull.h"
#include "store_impl.h"
#include "transport/msg.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/hash.h"

#define SLEEP_SLICE_MS     50 /* how often a sleeping worker looks at the stop flag */
#define CAUGHT_UP_POLL_MS  100
#define STOP_FLUSH_MS      2000
#define ERROR_PAUSE_MAX_MS 5000 /* between attempts while the server is away */
#define DRAIN_MS           2000
#define REFUSED_PAUSE_MS   100  /* before asking again after a 409 */
#define DONE_RING          4096 /* ordered: events a worker remembers having settled */
#define HELD_POLL_MS       100  /* at most, between looks at the consumer while another holds events */

typedef struct worker {
    struct es_projection *p;
    int partition; /* ordered: the partition this worker serves; else -1 */
    char consumer[ES_PROJECTION_CONSUMER_MAX];
    esi_pull *pull;
    pthread_t thread;
    bool started;
    /* Ordered: the last DONE_RING events this worker settled, so that a
     * redelivered copy (an acknowledgement lost, or late) is not handled a
     * second time after later events of its entity. */
    uint64_t done[DONE_RING];
    size_t done_next;
    /* Ordered: the pin under which nothing earlier was found held by
     * another instance ("" before the first), and whether this worker has
     * handed events back since its last pull found nothing missing (the
     * server may serve later events before it queues those again). */
    char checked_pin[64];
    bool handed_back;
    es_event *events; /* batch handlers: views of one pull's events */
    const es_event **ptrs;
    esi_js_delivery *deliveries;
} worker;

struct es_projection {
    es_store *st;
    char name[ES_PROJECTION_NAME_MAX + 1];
    es_projection_handler h;
    es_projection_run_options o;
    bool ordered;
    int partitions;
    int max_deliver;
    int64_t ack_wait_ms;
    int64_t pin_timeout_ms;
    worker *workers;
    int nworkers;
    atomic_bool stop;
    bool stopped;
    pthread_mutex_t mu; /* fatal */
    es_status fatal;
    char fatal_text[512];
    _Atomic uint64_t handled, retried, dead_lettered, skipped;
};

void es_projection_run_options_init(es_projection_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 1;
    o->batch = 64;
    o->retry_backoff_ms = 200;
    o->retry_backoff_max_ms = 10000;
    o->instance = 0;
    o->instances = 1;
    o->heartbeat_ms = 1000;
}

bool es_projection_retryable(es_status s)
{
    switch (s) {
    case ES_ERR_TIMEOUT:
    case ES_ERR_CONNECTION:
    case ES_ERR_SERVER:
    case ES_ERR_CONFLICT:
    case ES_ERR_NOMEM:
    case ES_ERR_IO:
    case ES_ERR_STOPPED: return true;
    default: return false;
    }
}

int es_projection_partition_of(const es_event *ev, int partitions)
{
    if (ev == NULL || partitions <= 1)
        return 0;
    /* Hash the entity's tokens ([tenant,] type, id), without their dots, as
     * the server's partition() does with the subject's wildcard tokens. */
    const esi_subject_parts *parts = esi_event_parts(ev);
    if (parts == NULL)
        return 0;
    uint32_t h = ESI_FNV32_OFFSET;
    if (parts->tenant != NULL)
        h = esi_fnv1a32(parts->tenant, strlen(parts->tenant), h);
    h = esi_fnv1a32(parts->type, strlen(parts->type), h);
    h = esi_fnv1a32(parts->id_token, strlen(parts->id_token), h);
    return (int)(h % (uint32_t)partitions);
}

/* ---- small helpers --------------------------------------------------------- */

static bool stopping(const es_projection *p)
{
    return atomic_load(&p->stop);
}

/* Sleeps up to ms, waking early when the projection stops. */
static void nap(es_projection *p, int64_t ms)
{
    for (int64_t slept = 0; slept < ms && !stopping(p); slept += SLEEP_SLICE_MS) {
        esi_sleep_ms(ms - slept < SLEEP_SLICE_MS ? ms - slept : SLEEP_SLICE_MS);
    }
}

static void report(es_projection *p, es_status s)
{
    if (p->h.on_error != NULL)
        p->h.on_error(s, es_last_error(), p->h.closure);
}

static void set_fatal(es_projection *p, es_status s)
{
    pthread_mutex_lock(&p->mu);
    if (p->fatal == ES_OK) {
        p->fatal = s;
        snprintf(p->fatal_text, sizeof p->fatal_text, "%s", es_last_error());
    }
    pthread_mutex_unlock(&p->mu);
    report(p, s);
}

static int64_t backoff_ms(const es_projection *p, uint64_t deliveries)
{
    int64_t max = p->o.retry_backoff_max_ms;
    if (p->ordered && max > p->pin_timeout_ms / 4)
        max = p->pin_timeout_ms / 4; /* retrying in place must not cost the partition's pin */
    unsigned attempt = deliveries > 64 ? 64 : (unsigned)deliveries;
    return esi_backoff_ms(p->o.retry_backoff_ms, max, attempt);
}

static bool deliveries_left(const es_projection *p, uint64_t deliveries)
{
    return p->max_deliver < 0 || deliveries < (uint64_t)p->max_deliver;
}

static void ack(worker *w, natsMsg *m, esi_ack_kind kind, int64_t delay_ms)
{
    es_status s = esi_pull_ack(w->pull, m, kind, delay_ms, false);
    if (s != ES_OK) /* the server will redeliver after ack_wait: at least once holds */
        report(w->p, s);
}

static void remember(worker *w, uint64_t seq)
{
    w->done[w->done_next++ % DONE_RING] = seq;
}

static bool remembered(const worker *w, uint64_t seq)
{
    size_t n = w->done_next < DONE_RING ? w->done_next : DONE_RING;
    for (size_t i = 0; i < n; i++)
        if (w->done[i] == seq)
            return true;
    return false;
}

/* Hands messages not handled back to the server, for redelivery now. */
static void give_back(worker *w, esi_pull_batch *b, int from)
{
    w->handed_back |= from < b->count;
    for (int i = from; i < b->count; i++) {
        ack(w, b->msgs[i], ES_NAK, 0);
        esi_msg_destroy(b->msgs[i]);
    }
    b->count = from;
}

/* ---- handling ---------------------------------------------------------------- */

/* The outcome of one handler call for a set of messages (one, or a batch). */
typedef enum outcome { DONE, RETRY_LATER, GIVE_UP, INTERRUPTED } outcome;

static void dead_letter(worker *w, const es_event *ev, es_status why)
{
    if (w->p->h.on_dead_letter != NULL)
        w->p->h.on_dead_letter(ev, why, w->p->h.closure);
    w->p->dead_lettered++;
}

/* Calls the handler until it succeeds or must give up. Unordered: one call,
 * a retryable failure is retried by redelivery (nak with backoff). Ordered:
 * retried here, in place, so nothing of the partition overtakes it. */
static outcome run_handler(worker *w, es_event *const *evs, size_t n, uint64_t delivered,
                           natsMsg *const *msgs, es_status *why, int64_t *delay)
{
    es_projection *p = w->p;
    for (uint64_t attempt = delivered;; attempt++) {
        es_status s = p->h.on_event ? p->h.on_event(evs[0], p->h.closure)
                                    : p->h.on_batch((const es_event *const *)evs, n, p->h.closure);
        if (s == ES_OK)
            return DONE;
        *why = s;
        if (s == ES_ERR_AGAIN) { /* not now: back at once, the next pull has it again */
            *delay = 0;
            return RETRY_LATER;
        }
        if (!es_projection_retryable(s) || !deliveries_left(p, attempt))
            return GIVE_UP;
        p->retried++;
        *delay = backoff_ms(p, attempt);
        if (!p->ordered)
            return RETRY_LATER;
        /* Keep the server from redelivering what we hold while we wait,
         * and from pinning another instance meanwhile. */
        for (size_t i = 0; i < n; i++)
            ack(w, msgs[i], ES_PROGRESS, 0);
        esi_pull_keep_pin(w->pull);
        nap(p, *delay);
        if (stopping(p))
            return INTERRUPTED;
    }
}

/* Settles the messages of one handler call according to its outcome. */
static void settle(worker *w, es_event *const *evs, natsMsg *const *msgs, const uint64_t *seqs,
                   size_t n, outcome o, es_status why, int64_t delay)
{
    es_projection *p = w->p;
    for (size_t i = 0; i < n; i++) {
        switch (o) {
        case DONE:
            ack(w, msgs[i], ES_ACK, 0);
            p->handled++;
            break;
        case RETRY_LATER:
            ack(w, msgs[i], ES_NAK, delay);
            w->handed_back = true;
            break;
        case INTERRUPTED:
            ack(w, msgs[i], ES_NAK, 0);
            w->handed_back = true;
            break;
        case GIVE_UP:
            dead_letter(w, evs[i], why);
            ack(w, msgs[i], ES_TERM, 0);
            break;
        }
        if (p->ordered && (o == DONE || o == GIVE_UP))
            remember(w, seqs[i]);
    }
}

/* Ordered projections see every event of the filters on every partition:
 * take only this partition's, and skip redeliveries of what is done. */
static bool skip(worker *w, const es_event *ev, const esi_js_delivery *d)
{
    if (!w->p->ordered)
        return false;
    return es_projection_partition_of(ev, w->p->partitions) != w->partition ||
           (d->delivered > 1 && remembered(w, d->stream_seq));
}

/* ---- order across pin moves and redeliveries ---------------------------------- */

/* The server delivers new events in stream order, to the pin's holder only.
 * Two things break that for a partition, and both are guarded here:
 * - a pin moves (its holder asked for nothing for the pin timeout, the
 *   consumer's leader changed, pins not being replicated, or the holder let
 *   go) while the previous holder still handles earlier events: the new
 *   holder's first pull brings later ones;
 * - redeliveries (handed back, or not acknowledged in time) come first but
 *   not always in stream order: the server puts one it could not send at
 *   once at the back of its queue.
 * So a worker under a pin it has not checked yet, with a redelivery in its
 * pull, or after handing events back (the server may serve later events
 * before it queues those again), sorts the pull and hands the handler only
 * the events before which nothing of the consumer is unacknowledged outside
 * the pull. Otherwise the server delivers to this worker alone, in order,
 * and nothing earlier can be out: the check is not made, and the steady
 * state costs nothing. */

static uint64_t seq_of(natsMsg *m, esi_js_delivery *d)
{
    if (!esi_js_delivery_parse(esi_msg_reply(m), d))
        memset(d, 0, sizeof *d); /* not a delivery: dropped later, sorted first */
    return d->stream_seq;
}

static bool has_redelivery(const esi_pull_batch *b)
{
    for (int i = 0; i < b->count; i++) {
        esi_js_delivery d;
        if (seq_of(b->msgs[i], &d) > 0 && d.delivered > 1)
            return true;
    }
    return false;
}

/* Sorts a pull by stream sequence (insertion sort: at most a batch, mostly
 * in order already). */
static void sort_pull(esi_pull_batch *b)
{
    for (int i = 1; i < b->count; i++) {
        esi_js_delivery d, e;
        natsMsg *m = b->msgs[i];
        uint64_t seq = seq_of(m, &d);
        int k = i;
        for (; k > 0 && seq_of(b->msgs[k - 1], &e) > seq; k--)
            b->msgs[k] = b->msgs[k - 1];
        b->msgs[k] = m;
    }
}

/* How many of the sorted pull's first messages may be handled now. All of
 * them when nothing outside the pull is unacknowledged, or when every
 * delivery before the pull's first new one is acknowledged (anything
 * unacknowledged elsewhere was then first delivered after it, so it comes
 * later in the stream). Else up to the first event of the consumer that is
 * neither settled nor in the pull (a look at the stream for each gap). */
static int ready_prefix(worker *w, const esi_pull_batch *b, const esi_consumer_state *cs)
{
    uint64_t first_new = UINT64_MAX;
    for (int i = 0; i < b->count; i++) {
        esi_js_delivery d;
        seq_of(b->msgs[i], &d);
        if (d.delivered == 1 && d.consumer_seq < first_new)
            first_new = d.consumer_seq;
    }
    if (cs->ack_pending <= (uint64_t)b->count ||
        (first_new != UINT64_MAX && cs->floor_delivery + 1 >= first_new))
        return b->count;
    uint64_t prev = cs->floor_seq;
    for (int i = 0; i < b->count; i++) {
        esi_js_delivery d;
        uint64_t seq = seq_of(b->msgs[i], &d);
        bool between = false;
        if (seq > prev + 1 &&
            (esi_consumer_has_between(w->p->st, cs, prev, seq, &between) != ES_OK || between))
            return i; /* unknown counts as held: it waits */
        prev = seq > prev ? seq : prev;
    }
    return b->count;
}

/* Keeps a pull this worker waits with: not redelivered, and its pin. */
static void keep_pull(worker *w, const esi_pull_batch *b)
{
    for (int i = 0; i < b->count; i++)
        ack(w, b->msgs[i], ES_PROGRESS, 0);
    esi_pull_keep_pin(w->pull);
}

/* The messages of a pull that may go to the handler now; the rest is given
 * back. Under a new pin, earlier events may still be with the previous
 * holder: waited for, up to half an ack wait (the pull kept, the pin
 * kept), then the pull goes back and is asked again (what a dead holder
 * held comes back first). Under a checked pin, what is missing is queued for
 * redelivery to this worker: the pull goes back soon. */
static int ready_now(worker *w, esi_pull_batch *b)
{
    es_projection *p = w->p;
    const char *pin = esi_pull_pin(w->pull);
    bool checked = pin[0] != '\0' && strcmp(pin, w->checked_pin) == 0;
    if (checked && !w->handed_back && !has_redelivery(b))
        return b->count;
    sort_pull(b);
    /* under a checked pin, only while this worker's own last acknowledgements
     * may not be applied yet (the server queues them) */
    int64_t start = esi_monotonic_ms();
    int64_t until = start + (checked ? HELD_POLL_MS : p->ack_wait_ms / 2);
    int64_t keep_every = p->pin_timeout_ms / 4, next_keep = start + keep_every;
    for (int64_t poll = 2; !stopping(p); poll = poll * 2 < HELD_POLL_MS ? poll * 2 : HELD_POLL_MS) {
        esi_consumer_state cs;
        es_status s = esi_consumer_state_get(p->st, w->consumer, &cs);
        int ready = s == ES_OK ? ready_prefix(w, b, &cs) : 0;
        esi_consumer_state_free(&cs);
        if (s != ES_OK)
            report(p, s);
        if (ready > 0) {
            snprintf(w->checked_pin, sizeof w->checked_pin, "%s", pin);
            w->handed_back &= ready < b->count;
            return ready;
        }
        int64_t now = esi_monotonic_ms();
        if (s != ES_OK || now >= until)
            return 0;
        if (now >= next_keep) {
            keep_pull(w, b);
            next_keep = now + keep_every;
        }
        nap(p, poll);
    }
    return 0;
}

/* Handles one pull's messages; those left when stopping are given back. */
static void handle_batch(worker *w, esi_pull_batch *b)
{
    es_projection *p = w->p;
    if (p->ordered) {
        int ready = ready_now(w, b);
        give_back(w, b, ready);
    }
    size_t n = 0; /* events for the handler, in w->events */
    natsMsg *take[ES_PULL_BATCH_MAX];
    uint64_t seqs[ES_PULL_BATCH_MAX], max_delivered = 1;
    es_event *evs[ES_PULL_BATCH_MAX];
    for (int i = 0; i < b->count; i++) {
        natsMsg *m = b->msgs[i];
        esi_js_delivery *d = &w->deliveries[n];
        es_event *ev = &w->events[n];
        if (!esi_js_delivery_parse(esi_msg_reply(m), d)) {
            esi_msg_destroy(m); /* not a JetStream delivery: nothing to acknowledge */
            continue;
        }
        esi_event_wrap(ev, p->st, m, esi_msg_subject(m), d->stream_seq, d->stored_ns);
        ev->pull = w->pull;
        if (skip(w, ev, d)) {
            ack(w, m, ES_ACK, 0);
            p->skipped++;
            esi_event_clear(ev);
            esi_msg_destroy(m);
            continue;
        }
        take[n] = m;
        seqs[n] = d->stream_seq;
        evs[n] = ev;
        max_delivered = d->delivered > max_delivered ? d->delivered : max_delivered;
        n++;
    }
    b->count = 0; /* every message is ours to settle now */
    size_t step = p->h.on_event ? 1 : n;
    for (size_t i = 0; i < n; i += step) {
        es_status why = ES_OK;
        int64_t delay = 0;
        outcome o = INTERRUPTED;
        if (!stopping(p))
            o = run_handler(w, &evs[i], step,
                            step == 1 ? w->deliveries[i].delivered : max_delivered, &take[i], &why,
                            &delay);
        settle(w, &evs[i], &take[i], &seqs[i], step, o, why, delay);
    }
    for (size_t i = 0; i < n; i++) {
        esi_event_clear(evs[i]);
        esi_msg_destroy(take[i]);
    }
}

/* A handler's own answer for one event it holds. */
static es_status answer(const es_event *ev, esi_ack_kind kind, const char *what)
{
    esi_js_delivery d;
    if (ev == NULL || ev->msg == NULL || !esi_js_delivery_parse(esi_msg_reply(ev->msg), &d))
        return es_error(ES_ERR_INVALID, "%s: not an event a projection delivered", what);
    return esi_js_ack_msg(esi_js_conn(ev->st->js), ev->msg, kind, 0);
}

es_status es_projection_in_progress(const es_event *ev)
{
    es_status s = answer(ev, ES_PROGRESS, "es_projection_in_progress");
    if (s == ES_OK && ev->pull != NULL) /* a handler at work keeps its partition */
        s = esi_pull_keep_pin(ev->pull); /* its worker is in the handler call: the pin stays */
    return s;
}

es_status es_projection_ack(const es_event *ev)
{
    return answer(ev, ES_ACK, "es_projection_ack");
}

/* ---- workers ----------------------------------------------------------------- */

/* Lets another instance take the partition now rather than after the pin
 * times out. Best effort. */
static void unpin(es_projection *p, const char *consumer)
{
    json_t *req = json_pack("{s:s}", "group", ES_PROJECTION_GROUP), *reply = NULL;
    esi_store_api(p->st, req, &reply, "CONSUMER.UNPIN.%s.%s", p->st->stream, consumer);
    json_decref(req);
    json_decref(reply);
}

static void nak_now(natsMsg *m, void *closure)
{
    ack(closure, m, ES_NAK, 0);
    esi_msg_destroy(m);
}

static void *work(void *arg)
{
    worker *w = arg;
    es_projection *p = w->p;
    int64_t pause = 0;
    while (!stopping(p)) {
        esi_pull_batch b;
        es_status s = esi_pull_next(w->pull, p->o.batch, &p->stop, &b);
        if (stopping(p) || s != ES_OK)
            give_back(w, &b, 0);
        if (b.gone) {
            set_fatal(p, s);
            break;
        }
        if (s != ES_OK) {
            report(p, s);
            pause = pause ? (pause * 2 < ERROR_PAUSE_MAX_MS ? pause * 2 : ERROR_PAUSE_MAX_MS) : 100;
            nap(p, pause);
            continue;
        }
        pause = 0;
        if (b.count > 0)
            handle_batch(w, &b);
        else if (b.refused)
            nap(p, REFUSED_PAUSE_MS);
    }
    /* Every message the server sent goes back before the partition is
     * released: else the next holder would overtake them. */
    if (esi_pull_drain(w->pull, nak_now, w, DRAIN_MS) != ES_OK)
        report(p, ES_ERR_TIMEOUT);
    const esi_conn *conn = esi_js_conn(p->st->js);
    conn->ops->flush(conn->ctx, STOP_FLUSH_MS);
    if (p->ordered && esi_pull_pin(w->pull)[0] != '\0')
        unpin(p, w->consumer);
    return NULL;
}

static es_status make_worker(es_projection *p, worker *w, int partition)
{
    w->p = p;
    w->partition = partition;
    esi_projection_consumer_name(p->name, p->partitions, partition < 0 ? 0 : partition,
                                 w->consumer);
    w->events = esi_calloc((size_t)p->o.batch, sizeof *w->events);
    w->deliveries = esi_calloc((size_t)p->o.batch, sizeof *w->deliveries);
    if (w->events == NULL || w->deliveries == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory for a projection worker");
    esi_pull_options po = {.stream = p->st->stream,
                           .consumer = w->consumer,
                           .group = p->ordered ? ES_PROJECTION_GROUP : NULL,
                           .expires_ms = p->o.heartbeat_ms * 5,
                           .heartbeat_ms = p->o.heartbeat_ms};
    es_status s = esi_pull_create(p->st->js, &po, &w->pull);
    if (s == ES_OK && pthread_create(&w->thread, NULL, work, w) != 0)
        s = es_error(ES_ERR_NOMEM, "cannot start a projection thread");
    w->started = s == ES_OK;
    return s;
}

static es_status check_run(const es_projection_handler *h, const es_projection_run_options *o)
{
    if (h == NULL || (h->on_event == NULL) == (h->on_batch == NULL))
        return es_error(ES_ERR_INVALID, "projection handler: exactly one of on_event and on_batch");
    if (o->workers < 1 || o->workers > 64 || o->batch < 1 || o->batch > ES_PULL_BATCH_MAX ||
        o->retry_backoff_ms < 1 || o->retry_backoff_max_ms < o->retry_backoff_ms ||
        o->instances < 1 || o->instance < 0 || o->instance >= o->instances || o->heartbeat_ms < 50)
        return es_error(ES_ERR_INVALID,
                        "projection run options: 1..64 workers, batch 1..%d, "
                        "backoff 1 <= first <= max, 0 <= instance < instances, "
                        "heartbeat >= 50 ms",
                        ES_PULL_BATCH_MAX);
    return ES_OK;
}

static es_status start_workers(es_projection *p)
{
    int n = 0;
    if (p->ordered) {
        for (int i = 0; i < p->partitions; i++)
            n += i % p->o.instances == p->o.instance;
    } else {
        n = p->o.workers;
    }
    p->workers = esi_calloc((size_t)(n ? n : 1), sizeof *p->workers);
    if (p->workers == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status s = ES_OK;
    for (int i = 0, k = 0; s == ES_OK && k < n; i++) {
        if (p->ordered && i % p->o.instances != p->o.instance)
            continue;
        s = make_worker(p, &p->workers[k], p->ordered ? i : -1);
        p->nworkers = ++k;
    }
    return s;
}

typedef struct info_ask {
    es_store *st;
    const char *name;
    es_projection_info *info;
} info_ask;

static es_status ask_info(void *closure)
{
    info_ask *a = closure;
    return es_projection_info_get(a->st, a->name, a->info);
}

es_status es_projection_start(es_store *st, const char *name, const es_projection_handler *h,
                              const es_projection_run_options *opts, es_projection **out)
{
    if (out == NULL || st == NULL)
        return es_error(ES_ERR_INVALID, "es_projection_start: store and out are required");
    *out = NULL;
    es_projection_run_options defaults;
    if (opts == NULL) {
        es_projection_run_options_init(&defaults);
        opts = &defaults;
    }
    es_projection_info *info = esi_malloc(sizeof *info);
    if (info == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status s = check_run(h, opts);
    info_ask ask = {st, name, info};
    if (s == ES_OK) /* through an election, as a replay's consumer is created */
        s = esi_js_retry(ask_info, &ask);
    es_projection *p = s == ES_OK ? esi_calloc(1, sizeof *p) : NULL;
    if (s == ES_OK && p == NULL)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    if (s != ES_OK) {
        esi_free(info);
        return s;
    }
    p->st = st;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->h = *h;
    p->o = *opts;
    p->ordered = info->ordered;
    p->partitions = info->partitions;
    p->max_deliver = info->max_deliver;
    p->ack_wait_ms = info->ack_wait_ms;
    p->pin_timeout_ms = info->pin_timeout_ms;
    esi_free(info);
    pthread_mutex_init(&p->mu, NULL);
    s = start_workers(p);
    if (s != ES_OK) {
        es_projection_destroy(p);
        return s;
    }
    *out = p;
    es_error_clear();
    return ES_OK;
}

static bool caught_up(const es_projection_info *info, uint64_t target)
{
    for (int i = 0; i < info->partitions; i++) {
        const es_projection_partition *pp = &info->partition[i];
        bool drained = pp->pending == 0 && pp->ack_pending == 0;
        if (!drained && !(target > 0 && pp->ack_floor_seq >= target))
            return false;
    }
    return true;
}

static es_status fatal_of(es_projection *p)
{
    pthread_mutex_lock(&p->mu);
    es_status s = p->fatal;
    if (s != ES_OK)
        es_error(s, "projection '%s': %s", p->name, p->fatal_text);
    pthread_mutex_unlock(&p->mu);
    return s;
}

es_status es_projection_wait_caught_up(es_projection *p, int64_t timeout_ms)
{
    if (p == NULL)
        return es_error(ES_ERR_INVALID, "es_projection_wait_caught_up: projection is NULL");
    es_store_info si;
    es_status s = es_store_info_get(p->st, &si);
    es_projection_info *info = esi_malloc(sizeof *info);
    if (s == ES_OK && info == NULL)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    int64_t deadline = esi_monotonic_ms() + timeout_ms;
    while (s == ES_OK) {
        if ((s = fatal_of(p)) != ES_OK)
            break;
        if (p->stopped) {
            s = es_error(ES_ERR_STOPPED, "projection '%s' was stopped", p->name);
            break;
        }
        s = es_projection_info_get(p->st, p->name, info);
        if (s != ES_OK || caught_up(info, si.last_seq))
            break;
        if (timeout_ms >= 0 && esi_monotonic_ms() >= deadline) {
            s = es_error(ES_ERR_TIMEOUT,
                         "projection '%s': %llu events pending, %llu unacknowledged", p->name,
                         (unsigned long long)info->pending, (unsigned long long)info->ack_pending);
            break;
        }
        esi_sleep_ms(CAUGHT_UP_POLL_MS);
    }
    esi_free(info);
    return s;
}

void es_projection_stats_get(es_projection *p, es_projection_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    if (p == NULL)
        return;
    stats->handled = p->handled;
    stats->retried = p->retried;
    stats->dead_lettered = p->dead_lettered;
    stats->skipped = p->skipped;
}

es_status es_projection_stop(es_projection *p)
{
    if (p == NULL)
        return es_error(ES_ERR_INVALID, "es_projection_stop: projection is NULL");
    if (!p->stopped) {
        atomic_store(&p->stop, true);
        for (int i = 0; i < p->nworkers; i++)
            if (p->workers[i].started)
                pthread_join(p->workers[i].thread, NULL);
        p->stopped = true;
    }
    return fatal_of(p);
}

void es_projection_destroy(es_projection *p)
{
    if (p == NULL)
        return;
    es_projection_stop(p);
    for (int i = 0; i < p->nworkers; i++) {
        esi_pull_destroy(p->workers[i].pull);
        for (int k = 0; p->workers[i].events != NULL && k < p->o.batch; k++)
            esi_event_release(&p->workers[i].events[k]); /* buffers kept across events */
        esi_free(p->workers[i].events);
        esi_free(p->workers[i].deliveries);
    }
    esi_free(p->workers);
    pthread_mutex_destroy(&p->mu);
    esi_free(p);
}
