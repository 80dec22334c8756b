/* The Tap-style dispatcher (dispatch.h). One pull of the durable consumer is
 * one batch of slots; the projection's thread sends the slots the per-repo
 * rule allows, waits for the target's answers (dispatch_done, any thread),
 * and returns when every slot is done, which acknowledges the whole pull to
 * the server. Everything shared sits under `lock`; sends, renderings and
 * the server's in-progress notices happen outside it (a target may answer
 * from inside its send). */
#define _POSIX_C_SOURCE 200809L
#include "dispatch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <es/atproto.h>
#include <es/atproto_tap.h>
#include <es/checkpoint.h>
#include <es/projection.h>

#include "clock.h"
#include "loglimit.h"
#include "metrics.h"
#include "nsfilter.h"

#define DEFAULT_CONSUMER "tap"
#define WHY_MAX          160

typedef enum slot_state { SLOT_WAITING, SLOT_SENT, SLOT_DONE } slot_state;

/* The consumer's filters for a closed set of collections: identity events,
 * and one per collection; none (every event) for an open set or past the
 * bound. */
typedef struct narrowing {
    char types[ES_PROJECTION_MAX_FILTERS][ES_ENTITY_TYPE_MAX + 1];
    es_filter f[ES_PROJECTION_MAX_FILTERS];
    size_t n;
    bool open;
} narrowing;

/* One event of the batch being delivered. */
typedef struct slot {
    const es_event *ev; /* valid while the batch runs */
    uint64_t seq;
    int64_t stored_ns;
    es_atp_tap_event d; /* kind NONE: nothing to send */
    slot_state state;
    bool dead;          /* done as a dead letter */
    bool acked;         /* acknowledged to the server (and recorded when dead) */
    char why[WHY_MAX];
} slot;

struct dispatch {
    es_store *st;
    dispatch_config cfg;
    char consumer[ES_PROJECTION_NAME_MAX + 1];
    es_checkpoints *dead; /* ES_<store>_dead_letters */
    es_atp_filter *keep;  /* cfg.collections; NULL: every collection */
    es_cli_log_limit log; /* dead letters, waits: a flood of lines is summarised */
    es_projection *p;
    tap_target target;
    /* the projection's thread only */
    es_arena *arena;
    es_buf json, did;
    /* shared */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a slot is done, or stopping */
    bool stopping;
    slot slots[DISPATCH_IN_FLIGHT_MAX];
    size_t n, in_flight;
    uint64_t acked, dead_letters, skipped, filtered, sent;
};

void dispatch_config_init(dispatch_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->consumer = DEFAULT_CONSUMER;
    cfg->max_in_flight = 32;
    cfg->takeover_ms = 30000;
    cfg->record_max = 8u << 20;
    cfg->log_burst = 10;
    cfg->log_interval_ms = 10000;
}

/* ---- the per-repo rule ---------------------------------------------------- */

static bool same_repo(const slot *a, const slot *b)
{
    return a->d.did_len == b->d.did_len && memcmp(a->d.did, b->d.did, a->d.did_len) == 0;
}

/* Under the lock: may slot i go now? Not while an earlier event of its
 * repo still waits (order), nor, for a live event, while any earlier one of
 * its repo is in flight, nor, for a historical one, while a live one is. */
static bool sendable(const dispatch *d, size_t i)
{
    const slot *s = &d->slots[i];
    if (s->state != SLOT_WAITING || d->in_flight >= (size_t)d->cfg.max_in_flight)
        return false;
    for (size_t j = 0; j < i; j++) {
        const slot *e = &d->slots[j];
        if (e->state == SLOT_DONE || e->d.kind == ES_ATP_TAP_NONE || !same_repo(s, e))
            continue;
        if (e->state == SLOT_WAITING || s->d.live || e->d.live)
            return false;
    }
    return true;
}

static bool all_done(const dispatch *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->slots[i].state != SLOT_DONE)
            return false;
    return true;
}

/* Under the lock: the end of one slot, once. */
static void finish(dispatch *d, slot *s, tap_outcome outcome, const char *why)
{
    if (s->state == SLOT_SENT)
        d->in_flight--;
    s->state = SLOT_DONE;
    if (outcome == TAP_DEAD_LETTER) {
        s->dead = true;
        snprintf(s->why, sizeof s->why, "%s", why ? why : "given up");
        d->dead_letters++;
    } else {
        d->acked++;
    }
    pthread_cond_broadcast(&d->changed);
}

void dispatch_done(void *arg, uint64_t id, tap_outcome outcome, const char *why)
{
    dispatch *d = arg;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->n; i++) {
        slot *s = &d->slots[i];
        if (s->seq == id && s->state == SLOT_SENT) {
            finish(d, s, outcome, why);
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
}

/* ---- the projection's thread ------------------------------------------------ */

static long slot_of(const dispatch *d, uint64_t seq)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->slots[i].seq == seq)
            return (long)i;
    return -1;
}

/* Stream order: the server hands events back in the order they came back
 * to it (a clean stop gives back the batch after the events whose ack wait
 * ran out meanwhile), and the per-repo rule needs the stream's. */
static void sort_slots(dispatch *d)
{
    for (size_t i = 1; i < d->n; i++) {
        slot s = d->slots[i];
        size_t j = i;
        for (; j > 0 && d->slots[j - 1].seq > s.seq; j--)
            d->slots[j] = d->slots[j - 1];
        d->slots[j] = s;
    }
}

/* Whether the collection filters keep a record event; identity events are
 * always kept (Tap). */
static bool kept(const dispatch *d, const es_event *ev, const es_atp_tap_event *t)
{
    char nsid[ES_ENTITY_TYPE_MAX + 1];
    if (d->keep == NULL || t->kind != ES_ATP_TAP_RECORD ||
        !ns_collection_of(es_event_entity_type(ev), nsid))
        return true;
    return es_atp_filter_keeps_collection(d->keep, nsid, strlen(nsid));
}

/* Under the lock: the slots of a new pull, in stream order; a pull handed
 * again after a failed attempt (the same events) keeps what is done and in
 * flight. */
static void load(dispatch *d, const es_event *const *evs, size_t n)
{
    bool again = d->n == n;
    for (size_t i = 0; again && i < n; i++)
        again = slot_of(d, es_event_seq(evs[i])) >= 0;
    if (again) {
        for (size_t i = 0; i < n; i++)
            d->slots[slot_of(d, es_event_seq(evs[i]))].ev = evs[i];
        return;
    }
    for (size_t i = 0; i < n; i++) {
        slot *s = &d->slots[i];
        memset(s, 0, sizeof *s);
        s->ev = evs[i];
        s->seq = es_event_seq(evs[i]);
        s->stored_ns = es_event_stored_ns(evs[i]);
        if (es_atp_tap_describe(evs[i], &s->d) != ES_OK || s->d.kind == ES_ATP_TAP_NONE) {
            s->d.kind = ES_ATP_TAP_NONE;
            s->state = SLOT_DONE;
            d->skipped++;
        } else if (!kept(d, evs[i], &s->d)) {
            s->d.kind = ES_ATP_TAP_NONE;
            s->state = SLOT_DONE;
            d->filtered++;
        }
    }
    d->n = n;
    sort_slots(d);
}

/* Renders slot `s` and hands it to the target (outside the lock). A slot
 * that cannot be rendered is done as a dead letter. */
static es_status send_one(dispatch *d, slot *s)
{
    es_arena_reset(d->arena);
    d->json.len = d->did.len = 0;
    es_status r = es_atp_tap_encode(s->ev, &s->d, d->arena, &d->json);
    if (r == ES_OK && (r = es_buf_append(&d->did, s->d.did, s->d.did_len)) == ES_OK)
        r = es_buf_append(&d->did, "", 1);
    if (r != ES_OK) {
        char why[WHY_MAX];
        snprintf(why, sizeof why, "no Tap JSON: %s", es_last_error());
        dispatch_done(d, s->seq, TAP_DEAD_LETTER, why);
        return ES_OK;
    }
    tap_event ev = {.id = s->seq,
                    .did = (const char *)d->did.data,
                    .live = s->d.live,
                    .json = d->json.data,
                    .len = d->json.len};
    return d->target.send(d->target.self, &ev);
}

/* The lines left out (dead letters): one line
 * with the exact counts (the metrics and ES_<store>_dead_letters have every
 * dead letter). */
static void log_summary(const es_cli_log_limit_count *counts, size_t n, uint64_t skipped,
                        double seconds, void *arg)
{
    const dispatch *d = arg;
    char by[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof by; i++)
        if (counts[i].skipped > 0)
            len += (size_t)snprintf(by + len, sizeof by - len, " %s=%" PRIu64, counts[i].reason,
                                    counts[i].skipped);
    fprintf(stderr,
            "es-atproto-serve: %" PRIu64 " lines about %s not logged in %.1f s:%s\n",
            skipped, d->consumer, seconds, by);
}

/* Writes a dead letter where an operator lists it: the key
 * "<consumer>.<seq>" of ES_<store>_dead_letters. A failed write is only
 * reported: the event stays counted. Lines are limited (loglimit.h). */
static void record_dead_letter(dispatch *d, const slot *s)
{
    char name[ES_PROJECTION_NAME_MAX + 24];
    snprintf(name, sizeof name, "%s.%" PRIu64, d->consumer, s->seq);
    json_t *o = json_pack("{s:s%, s:b, s:s}", "did", s->d.did, s->d.did_len, "live",
                          s->d.live, "why", s->why);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    es_status r = text ? es_checkpoint_set(d->dead, name, s->seq, text, ES_CHECKPOINT_ANY, NULL)
                       : ES_ERR_NOMEM;
    bool logged = es_cli_log_limit_admit(&d->log, r != ES_OK ? "not_recorded" : "dead_letter",
                                         log_summary, d);
    if (logged && r != ES_OK)
        fprintf(stderr, "es-atproto-serve: dead letter %s not recorded: %s\n", name,
                es_last_error());
    else if (logged)
        fprintf(stderr, "es-atproto-serve: event %" PRIu64 " dead-lettered: %s\n", s->seq, s->why);
    free(text);
    json_decref(o);
}

/* Under the lock (released around the calls): the slots newly done are
 * recorded when dead and acknowledged to the server at once, so that a
 * crash before the batch ends does not deliver them again. */
static void settle_done(dispatch *d)
{
    for (size_t i = 0; i < d->n; i++) {
        slot *s = &d->slots[i];
        if (s->state != SLOT_DONE || s->acked)
            continue;
        s->acked = true;
        slot copy = *s;
        pthread_mutex_unlock(&d->lock);
        if (copy.dead)
            record_dead_letter(d, &copy);
        es_projection_ack(copy.ev);
        pthread_mutex_lock(&d->lock);
    }
}

/* Outside the lock: the server must not redeliver what is still held. */
static void keep_in_progress(dispatch *d)
{
    for (size_t i = 0; i < d->n; i++) {
        pthread_mutex_lock(&d->lock);
        bool held = d->slots[i].state != SLOT_DONE;
        pthread_mutex_unlock(&d->lock);
        if (held)
            es_projection_in_progress(d->slots[i].ev);
    }
}

/* Under the lock: the first slot that may go, or -1. */
static long next_sendable(const dispatch *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (sendable(d, i))
            return (long)i;
    return -1;
}

static es_status on_batch(const es_event *const *evs, size_t n, void *closure)
{
    dispatch *d = closure;
    /* Tap's per-repo order across instances is the ordered projection's:
     * a pull whose earlier events are still held by another instance (a pin
     * moved) is not handed here before they are acknowledged. */
    int64_t notice_every = d->cfg.takeover_ms / 3;
    es_status r = ES_OK;
    int64_t next_notice = es_cli_monotonic_ms() + notice_every;
    pthread_mutex_lock(&d->lock);
    load(d, evs, n);
    for (;;) {
        settle_done(d);
        if (d->stopping) {
            r = es_error(ES_ERR_STOPPED, "the dispatcher stops");
            break;
        }
        if (all_done(d)) {
            /* a slot done while the pass above had the lock released is
             * recorded and acknowledged here, not lost with the batch */
            settle_done(d);
            break;
        }
        long i = next_sendable(d);
        if (i >= 0) {
            slot *s = &d->slots[i];
            s->state = SLOT_SENT;
            d->in_flight++;
            d->sent++;
            pthread_mutex_unlock(&d->lock);
            r = send_one(d, s);
            pthread_mutex_lock(&d->lock);
            if (r != ES_OK) { /* no answer will come: it waits for the next attempt */
                if (s->state == SLOT_SENT) {
                    s->state = SLOT_WAITING;
                    d->in_flight--;
                }
                break;
            }
            continue;
        }
        if (es_cli_monotonic_ms() >= next_notice) {
            pthread_mutex_unlock(&d->lock);
            keep_in_progress(d);
            pthread_mutex_lock(&d->lock);
            next_notice = es_cli_monotonic_ms() + notice_every;
            continue;
        }
        struct timespec until = es_cli_deadline(next_notice - es_cli_monotonic_ms());
        pthread_cond_timedwait(&d->changed, &d->lock, &until);
    }
    if (r == ES_OK)
        d->n = 0; /* acknowledged once this returns */
    pthread_mutex_unlock(&d->lock);
    return r;
}

static void on_error(es_status s, const char *text, void *closure)
{
    (void)closure;
    fprintf(stderr, "es-atproto-serve: reading the store for /channel: %s (%s)\n",
            text ? text : "", es_status_text(s));
}

/* ---- life ------------------------------------------------------------------ */

static void narrow_to(void *ctx, const char *nsid, size_t len)
{
    narrowing *w = ctx;
    if (w->n == ES_PROJECTION_MAX_FILTERS || !ns_entity_type_of(nsid, len, w->types[w->n])) {
        w->open = true;
        return;
    }
    es_filter_init(&w->f[w->n]);
    w->f[w->n].entity_type = w->types[w->n];
    w->n++;
}

static void narrowing_make(const es_atp_filter *keep, narrowing *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->types[0], sizeof w->types[0], "%s", NS_REPO_TYPE);
    es_filter_init(&w->f[0]);
    w->f[0].entity_type = w->types[0];
    w->n = 1;
    w->open = !es_atp_filter_exact_collections(keep, narrow_to, w);
    if (w->open)
        w->n = 0;
}

/* The consumer: ordered, one partition (pinned to one instance), its ack
 * wait the takeover time, no redelivery limit (the target gives up). */
static es_status create_consumer(es_store *st, const dispatch_config *cfg, narrowing *w)
{
    es_projection_config pc;
    es_projection_config_init(&pc);
    pc.filters = w->n ? w->f : NULL;
    pc.filter_count = w->n;
    pc.ordered = true;
    pc.partitions = 1;
    pc.ack_wait_ms = cfg->takeover_ms;
    pc.pin_timeout_ms = cfg->takeover_ms + cfg->takeover_ms / 2;
    pc.max_deliver = -1;
    /* no more unacknowledged than one pull: nothing waits beyond the batch,
     * out of reach of its in-progress notices, while a batch is held */
    pc.max_ack_pending = DISPATCH_IN_FLIGHT_MAX;
    pc.description = "es-atproto-serve: Tap-style delivery";
    es_status s = es_projection_create(st, cfg->consumer, &pc);
    if (s == ES_ERR_EXISTS)
        s = es_projection_update(st, cfg->consumer, &pc);
    return s;
}

es_status dispatch_create(es_store *st, const dispatch_config *cfg, dispatch **out)
{
    *out = NULL;
    if (cfg->max_in_flight < 1 || cfg->max_in_flight > DISPATCH_IN_FLIGHT_MAX ||
        cfg->takeover_ms < 1000 || cfg->consumer == NULL ||
        strlen(cfg->consumer) > ES_PROJECTION_NAME_MAX)
        return es_error(ES_ERR_INVALID, "dispatch: 1..%d in flight, a takeover of 1s or more",
                        DISPATCH_IN_FLIGHT_MAX);
    dispatch *d = calloc(1, sizeof *d);
    if (d == NULL)
        return ES_ERR_NOMEM;
    d->st = st;
    d->cfg = *cfg;
    snprintf(d->consumer, sizeof d->consumer, "%s", cfg->consumer);
    d->cfg.consumer = d->consumer;
    d->cfg.collections = NULL; /* the caller's; d->keep holds them */
    d->json = (es_buf)ES_BUF_INIT;
    d->did = (es_buf)ES_BUF_INIT;
    pthread_mutex_init(&d->lock, NULL);
    d->log = (es_cli_log_limit)ES_CLI_LOG_LIMIT_INIT(cfg->log_burst, cfg->log_interval_ms);
    pthread_cond_init(&d->changed, NULL); /* the realtime clock, es_cli_deadline's */
    es_status s = es_arena_create(cfg->record_max, &d->arena);
    if (s == ES_OK && cfg->collections != NULL && (s = es_atp_filter_create(&d->keep)) == ES_OK)
        s = es_atp_filter_add_collections(d->keep, cfg->collections);
    if (s == ES_OK)
        s = es_checkpoints_open_bucket(st, ES_CHECKPOINTS_DEAD_LETTERS, &d->dead);
    narrowing *narrow = NULL; /* the consumer's filters: needed to create it only */
    if (s == ES_OK && (narrow = malloc(sizeof *narrow)) == NULL)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    if (s == ES_OK) {
        narrowing_make(d->keep, narrow);
        s = create_consumer(st, &d->cfg, narrow);
    }
    free(narrow);
    if (s != ES_OK) {
        dispatch_destroy(d);
        return s;
    }
    *out = d;
    return ES_OK;
}

es_status dispatch_start(dispatch *d, const tap_target *target)
{
    d->target = *target;
    es_projection_handler h = {.on_batch = on_batch, .on_error = on_error, .closure = d};
    es_projection_run_options o;
    es_projection_run_options_init(&o);
    o.batch = DISPATCH_IN_FLIGHT_MAX;
    return es_projection_start(d->st, d->consumer, &h, &o, &d->p);
}

void dispatch_stats_get(dispatch *d, dispatch_stats *out)
{
    memset(out, 0, sizeof *out);
    int64_t now = es_cli_now_ns(), oldest = 0;
    pthread_mutex_lock(&d->lock);
    out->acked = d->acked;
    out->dead_letters = d->dead_letters;
    out->skipped = d->skipped;
    out->filtered = d->filtered;
    out->sent = d->sent;
    out->in_flight = d->in_flight;
    for (size_t i = 0; i < d->n; i++)
        if (d->slots[i].state != SLOT_DONE && (oldest == 0 || d->slots[i].stored_ns < oldest))
            oldest = d->slots[i].stored_ns;
    pthread_mutex_unlock(&d->lock);
    out->lag_ns = oldest > 0 && now > oldest ? now - oldest : 0;
}

void dispatch_metrics(dispatch *d, es_buf *b)
{
    dispatch_stats s;
    dispatch_stats_get(d, &s);
    es_prom_family(b, "es_serve_tap_deliveries_total", "counter",
                   "Tap-style deliveries ended, by outcome.");
    es_prom_sample(b, "es_serve_tap_deliveries_total", "outcome", "acked", (double)s.acked);
    es_prom_sample(b, "es_serve_tap_deliveries_total", "outcome", "dead_letter",
                   (double)s.dead_letters);
    es_prom_one(b, "es_serve_tap_sent_total", "counter",
                "Events handed to the Tap-style target (redeliveries by the target not counted).",
                (double)s.sent);
    es_prom_one(b, "es_serve_tap_skipped_total", "counter",
                "Stored events without a Tap form (#sync, other writers').", (double)s.skipped);
    es_prom_one(b, "es_serve_tap_filtered_total", "counter",
                "Record events of collections --collections leaves out, read and not sent.",
                (double)s.filtered);
    es_prom_one(b, "es_serve_tap_in_flight", "gauge", "Events sent and not done.",
                (double)s.in_flight);
    es_prom_one(b, "es_serve_tap_lag_seconds", "gauge",
                "Now minus the stored time of the oldest event not done (0: none).",
                (double)s.lag_ns / 1e9);
}

void dispatch_destroy(dispatch *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
    es_projection_destroy(d->p); /* waits for on_batch: events not done go back */
    es_cli_log_limit_summarize(&d->log, true, log_summary, d);
    es_checkpoints_destroy(d->dead);
    es_atp_filter_destroy(d->keep);
    es_arena_destroy(d->arena);
    es_buf_free(&d->json);
    es_buf_free(&d->did);
    pthread_cond_destroy(&d->changed);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->log.mu);
    free(d);
}
