/* evolve (ordered consumer) and load (batched direct get). */
#include <es/read.h>

#include <stdio.h>
#include <string.h>

#include "transport/consumer.h"
#include "transport/js.h"
#include "transport/scan.h"
#include "event_impl.h"
#include "filters.h"
#include "own_writes.h"
#include "base/clock.h"
#include "base/internal.h"
#include "store_impl.h"
#include "transport/msg.h"
#include "wire.h"

#define LOAD_BATCH          256
#define EVOLVE_HEARTBEAT_MS 2000
/* A replay waits this long for its next event: the consumer resets itself
 * after three missed heartbeats, and its resets retry for as long (a server
 * restarting, a cluster electing), so a shorter wait would give up first. */
#define EVOLVE_WAIT_MS ESI_OC_RESET_BUDGET_MS
/* A load answered by a replica behind the leader asks again after this. */
#define LOAD_BEHIND_PAUSE_MS 10

static es_status check_call(es_store *st, const es_read_options *o, es_event_cb cb)
{
    if (st == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "read: store and callback are required");
    if (o->up_to_seq != 0 && o->up_to_seq <= o->after_seq)
        return es_error(ES_ERR_INVALID, "read: up_to_seq must be above after_seq");
    return ES_OK;
}

static const es_read_options *or_none(const es_read_options *o)
{
    static const es_read_options none = {0, 0};
    return o ? o : &none;
}

/* ---- evolve ------------------------------------------------------------ */

/* Reads the set's events through one ordered consumer, at least up to
 * `target` (esi_own_writes_target). */
static es_status evolve_set(es_store *st, const esi_filter_set *fs, const es_read_options *o,
                            uint64_t target, es_event_cb cb, void *closure, uint64_t *last_seq)
{
    esi_oc *oc = NULL;
    uint64_t pending = 0;
    es_status s = esi_oc_create(st->js, st->stream, fs->subjects, fs->n, o->after_seq + 1,
                                EVOLVE_HEARTBEAT_MS, &oc, &pending);
    es_event ev;
    memset(&ev, 0, sizeof ev);
    /* Caught up when the consumer has nothing pending (known at creation for
     * an empty result, then from each delivery's pending count) and the
     * target is seen. */
    uint64_t seen = o->after_seq;
    while (s == ES_OK && (pending > 0 || seen < target)) {
        esi_oc_msg m;
        s = esi_oc_next(oc, EVOLVE_WAIT_MS, &m);
        if (s == ES_ERR_TIMEOUT && pending > 0 && esi_oc_pending(oc) == 0) {
            pending = 0; /* the server recounted (consumer.h): nothing more to come */
            s = ES_OK;
            continue;
        }
        if (s == ES_ERR_CONNECTION && esi_oc_failing_ms(oc) < ESI_OC_RESET_BUDGET_MS) {
            s = ES_OK; /* a server restarting, a cluster electing: within the budget */
            continue;
        }
        if (s == ES_ERR_TIMEOUT)
            s = es_error(ES_ERR_TIMEOUT, "evolve: no delivery for %d ms with %llu pending",
                         EVOLVE_WAIT_MS, (unsigned long long)pending);
        if (s != ES_OK)
            break;
        pending = m.pending;
        seen = m.seq;
        if (o->up_to_seq && m.seq > o->up_to_seq) {
            esi_msg_destroy(m.msg);
            break;
        }
        esi_event_wrap(&ev, st, m.msg, esi_msg_subject(m.msg), m.seq, m.stored_ns);
        bool deliver = esi_event_well_formed(&ev);
        s = deliver ? cb(&ev, closure) : ES_OK;
        esi_event_clear(&ev);
        esi_msg_destroy(m.msg);
        if (s != ES_OK)
            break;
        if (deliver && last_seq)
            *last_seq = m.seq;
        if (o->up_to_seq && m.seq >= o->up_to_seq)
            break;
    }
    esi_oc_destroy(oc);
    esi_event_release(&ev);
    return s;
}

/* ---- load -------------------------------------------------------------- */

typedef struct load_call {
    es_store *st;
    es_event_cb cb;
    void *closure;
    uint64_t last_seq; /* last sequence cb accepted (read.h: the resume point) */
    es_event ev;
} load_call;

static es_status on_direct(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                           void *closure)
{
    load_call *c = closure;
    esi_event_wrap(&c->ev, c->st, msg, subject, seq, stored_ns);
    es_status s = ES_OK;
    if (esi_event_well_formed(&c->ev)) {
        s = c->cb(&c->ev, c->closure);
        if (s == ES_OK)
            c->last_seq = seq;
    }
    esi_event_clear(&c->ev);
    return s;
}

/* One subject's events by batched direct gets, at least up to `target`
 * (esi_own_writes_target): a replica behind the leader ends its answer early, and the
 * read asks again from there, for as long as a replay would wait. */
static es_status load_subject(es_store *st, const char *subject, const es_read_options *o,
                              uint64_t target, es_event_cb cb, void *closure, uint64_t *last_seq)
{
    load_call c = {.st = st, .cb = cb, .closure = closure};
    esi_dg_request req = {.filter = subject,
                         .start_seq = o->after_seq + 1,
                         .up_to_seq = o->up_to_seq,
                         .batch = LOAD_BATCH};
    int64_t deadline = esi_monotonic_ms() + EVOLVE_WAIT_MS;
    es_status s;
    for (;;) {
        uint64_t scanned = 0;
        s = esi_subject_scan(st->js, st->stream, &req, st->opts.confined, on_direct, &c, &scanned);
        if (scanned >= req.start_seq)
            req.start_seq = scanned + 1;
        if (s != ES_OK || req.start_seq > target)
            break;
        if (esi_monotonic_ms() >= deadline) {
            s = es_error(ES_ERR_TIMEOUT, "load: the replicas stayed behind the leader's event %llu "
                                         "for %d ms", (unsigned long long)target, EVOLVE_WAIT_MS);
            break;
        }
        esi_sleep_ms(LOAD_BEHIND_PAUSE_MS);
    }
    esi_event_release(&c.ev);
    if (last_seq)
        *last_seq = c.last_seq;
    return s;
}

static es_status check_entities(const es_filter *filters, size_t n)
{
    if (n == 0 || filters == NULL)
        return es_error(ES_ERR_INVALID, "es_load: a filter naming an entity is required");
    for (size_t i = 0; i < n; i++)
        if (filters[i].entity_type == NULL || filters[i].entity_id == NULL)
            return es_error(ES_ERR_INVALID,
                            "es_load: filter %zu must name an entity type and id", i);
    return ES_OK;
}

/* Both reads over filters: one consumer over their set, or batched direct
 * gets when a load comes down to one subject (a direct get follows one
 * subject; several in stream order, each event once, is what a
 * multi-filter consumer does). */
static es_status read_filters(es_store *st, const es_filter *filters, size_t n,
                              const es_read_options *o, es_event_cb cb, void *closure,
                              uint64_t *last_seq, bool load)
{
    o = or_none(o);
    if (last_seq)
        *last_seq = 0;
    esi_filter_set *fs = NULL;
    es_status s = load ? check_entities(filters, n) : ES_OK;
    if (s == ES_OK)
        s = check_call(st, o, cb);
    if (s == ES_OK)
        s = esi_filter_set_make(st, filters, n, &fs);
    uint64_t target = 0;
    if (s == ES_OK)
        s = esi_own_writes_target(st, fs, o->after_seq, o->up_to_seq, &target);
    if (s == ES_OK && load && fs->n == 1)
        s = load_subject(st, fs->subjects[0], o, target, cb, closure, last_seq);
    else if (s == ES_OK)
        s = evolve_set(st, fs, o, target, cb, closure, last_seq);
    esi_filter_set_free(fs);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

void es_read_options_init(es_read_options *opts)
{
    if (opts != NULL)
        *opts = (es_read_options){0, 0};
}

es_status es_evolve_filters(es_store *st, const es_filter *filters, size_t n,
                            const es_read_options *o, es_event_cb cb, void *closure,
                            uint64_t *last_seq)
{
    return read_filters(st, filters, n, o, cb, closure, last_seq, false);
}

es_status es_evolve(es_store *st, const es_filter *f, const es_read_options *o, es_event_cb cb,
                    void *closure, uint64_t *last_seq)
{
    return es_evolve_filters(st, f, f ? 1 : 0, o, cb, closure, last_seq);
}

es_status es_load_filters(es_store *st, const es_filter *filters, size_t n,
                          const es_read_options *o, es_event_cb cb, void *closure,
                          uint64_t *last_seq)
{
    return read_filters(st, filters, n, o, cb, closure, last_seq, true);
}

es_status es_load(es_store *st, const es_filter *f, const es_read_options *o, es_event_cb cb,
                  void *closure, uint64_t *last_seq)
{
    return es_load_filters(st, f, f ? 1 : 0, o, cb, closure, last_seq);
}
