/* A reader (read.h): the events after a position, pulled a bounded batch at
 * a time. Each filter subject is read by batched direct gets (esi_subject_scan:
 * a consumer per batch for a confined user) up to the call's bound; one
 * subject's events are handed as they arrive, several subjects' answers are
 * held and merged in stream order. What a subject answered past
 * the merge's frontier (the last event of a subject whose answer was cut by
 * the bound: an event of another subject past it may still be missing) is
 * let go and asked for again by the next call; nothing is kept between calls
 * but the position. */
#include <es/read.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "event_impl.h"
#include "filters.h"
#include "store_impl.h"
#include "transport/msg.h"
#include "transport/scan.h"
#include "transport/streams.h"

/* One event a subject answered, held until the merge hands it or lets it go. */
typedef struct held {
    natsMsg *msg;
    const char *subject; /* owned by msg */
    uint64_t seq;
    int64_t stored_ns;
} held;

/* Events late from an es_reader_add_filters: those of `set` in (after, up_to]
 * that `before` (the reader's set when they were added) did not match. */
typedef struct late {
    esi_filter_set *set, *before;
    uint64_t after, up_to;
} late;

struct es_reader {
    es_store *st;
    esi_filter_set *fs;
    late late;                 /* set NULL: none */
    _Atomic uint64_t position; /* written by es_reader_next only */
    es_event ev;
    held *held; /* the merge's events: at most max_events per subject of a round */
    size_t n_held, cap_held;
    pthread_mutex_t mu;     /* guards the widenings below */
    esi_filter_set *adding; /* filters added and not yet applied (NULL: none) */
    uint64_t adding_after;
};

void es_reader_options_init(es_reader_options *opts)
{
    if (opts != NULL)
        memset(opts, 0, sizeof *opts);
}

es_status es_reader_open(es_store *st, const es_reader_options *o, es_reader **out)
{
    *out = NULL;
    if (st == NULL || o == NULL)
        return es_error(ES_ERR_INVALID, "reader: store and options are required");
    es_reader *r = esi_calloc(1, sizeof *r);
    if (r == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    r->st = st;
    atomic_init(&r->position, o->after_seq);
    pthread_mutex_init(&r->mu, NULL);
    es_status s = esi_filter_set_make(st, o->filters, o->filter_count, &r->fs);
    if (s != ES_OK) {
        es_reader_destroy(r);
        return s;
    }
    *out = r;
    return ES_OK;
}

static void late_free(late *l)
{
    esi_filter_set_free(l->set);
    esi_filter_set_free(l->before);
    memset(l, 0, sizeof *l);
}

static void release_held(es_reader *r, size_t from)
{
    for (size_t i = from; i < r->n_held; i++)
        esi_msg_destroy(r->held[i].msg);
    r->n_held = 0;
}

void es_reader_destroy(es_reader *r)
{
    if (r == NULL)
        return;
    release_held(r, 0);
    esi_free(r->held);
    esi_event_release(&r->ev);
    esi_filter_set_free(r->fs);
    esi_filter_set_free(r->adding);
    late_free(&r->late);
    pthread_mutex_destroy(&r->mu);
    esi_free(r);
}

uint64_t es_reader_position(const es_reader *r)
{
    return atomic_load(&r->position);
}

es_status es_reader_add_filters(es_reader *r, const es_filter *filters, size_t n,
                                uint64_t after_seq)
{
    esi_filter_set *add = NULL, *wider = NULL;
    es_status s = esi_filter_set_make(r->st, filters, n, &add);
    pthread_mutex_lock(&r->mu);
    if (s == ES_OK)
        s = esi_filter_set_union(r->adding ? r->adding : add, add, &wider);
    if (s == ES_OK) { /* bounded as the reader's own set will be */
        esi_filter_set *all = NULL;
        s = esi_filter_set_union(r->fs, wider, &all);
        esi_filter_set_free(all);
    }
    if (s == ES_OK) {
        /* pending widenings are applied together, from the earliest start */
        if (r->adding == NULL || after_seq < r->adding_after)
            r->adding_after = after_seq;
        esi_filter_set_free(r->adding);
        r->adding = wider;
        wider = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    esi_filter_set_free(add);
    esi_filter_set_free(wider);
    return s;
}

/* At the start of a call: the pending widening becomes the reader's set,
 * its events behind the position a late read. One late read at a time: a
 * widening waits while another's late events are being read (their
 * `before` set would differ). Under mu: es_reader_add_filters reads fs. */
static es_status apply_widening(es_reader *r)
{
    pthread_mutex_lock(&r->mu);
    esi_filter_set *add = NULL, *wider = NULL;
    es_status s = ES_OK;
    if (r->adding != NULL && r->late.set == NULL) {
        add = r->adding; /* taken: a widening that fails is reported once */
        uint64_t after = r->adding_after, pos = atomic_load(&r->position);
        r->adding = NULL;
        r->adding_after = 0;
        s = esi_filter_set_union(r->fs, add, &wider);
        if (s != ES_OK || esi_filter_set_covers(r->fs, add)) {
            /* nothing (new) to read: add and wider are freed below */
        } else if (after < pos) {
            r->late = (late){.set = add, .before = r->fs, .after = after, .up_to = pos};
            r->fs = wider;
            add = wider = NULL;
        } else {
            esi_filter_set_free(r->fs);
            r->fs = wider;
            wider = NULL;
        }
    }
    pthread_mutex_unlock(&r->mu);
    esi_filter_set_free(add);
    esi_filter_set_free(wider);
    return s;
}

/* ---- one merged round ------------------------------------------------------ */

static es_status keep_held(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                           void *closure)
{
    es_reader *r = closure;
    r->held[r->n_held++] = (held){msg, subject, seq, stored_ns};
    return ES_OK;
}

/* The sequence every event of `subject` at or below which a replica
 * answering direct gets must have shown: the leader's last one, capped at
 * up_to (0: the replicas' answers are the truth: one server, or a confined
 * user, whom the leader's API is not granted; see own_writes.h). */
static es_status leader_last(es_reader *r, const char *subject, uint64_t up_to, uint64_t *last)
{
    *last = 0;
    if (r->st->config.replicas <= 1 || r->st->opts.confined || up_to == 0)
        return ES_OK;
    es_status s = esi_stream_last_seq(r->st->js, r->st->stream, subject, last);
    if (*last > up_to)
        *last = up_to;
    return s;
}

/* Reads up to `max` events of each subject of `fs` in (after, up_to] into
 * r->held, and sets *frontier: every event of the set at or below it is
 * held (up_to, or UINT64_MAX without a bound, when no subject was cut). */
static es_status gather(es_reader *r, const esi_filter_set *fs, uint64_t after, uint64_t up_to,
                        size_t max, uint64_t *frontier)
{
    *frontier = up_to ? up_to : UINT64_MAX;
    for (size_t i = 0; i < fs->n; i++) {
        esi_dg_request req = {.filter = fs->subjects[i],
                              .start_seq = after + 1,
                              .up_to_seq = up_to,
                              .batch = (int)max,
                              .max_msgs = max,
                              .cb_owns_msg = true};
        size_t before = r->n_held;
        es_status s = esi_subject_scan(r->st->js, r->st->stream, &req, r->st->opts.confined,
                                       keep_held, r, NULL);
        uint64_t got = r->n_held > before ? r->held[r->n_held - 1].seq : after, last = 0;
        if (s == ES_OK && r->n_held - before < max)
            s = leader_last(r, fs->subjects[i], up_to, &last);
        if (s != ES_OK)
            return s;
        if (r->n_held - before == max || got < last)
            *frontier = got < *frontier ? got : *frontier; /* cut, or a replica behind */
    }
    return ES_OK;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = ((const held *)a)->seq, y = ((const held *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Hands the held events at or below `frontier` in order, each once, those
 * `skip` matches left out, at most `max`; *through gets the last one
 * accepted (or skipped), and *whole whether every one up to the frontier
 * went. A refusal stops it. */
static es_status hand_held(es_reader *r, const esi_filter_set *skip, uint64_t frontier, size_t max,
                           es_event_cb cb, void *closure, size_t *count, uint64_t *through,
                           bool *whole)
{
    qsort(r->held, r->n_held, sizeof *r->held, by_seq);
    es_status s = ES_OK;
    size_t i = 0;
    *whole = false;
    for (; i < r->n_held && s == ES_OK; i++) {
        held *h = &r->held[i];
        if (h->seq > frontier)
            break;
        if (*count == max)
            goto out; /* the rest is asked for again by the next call */
        if (h->seq == *through || (skip != NULL && esi_filter_set_matches(skip, h->subject)))
            goto next; /* the same event through two subjects, or not late after all */
        esi_event_wrap(&r->ev, r->st, h->msg, h->subject, h->seq, h->stored_ns);
        if (esi_event_well_formed(&r->ev)) {
            s = cb(&r->ev, closure);
            *count += s == ES_OK;
        }
        esi_event_clear(&r->ev);
        if (s != ES_OK)
            break;
    next:
        *through = h->seq;
        esi_msg_destroy(h->msg);
    }
    *whole = s == ES_OK;
out:
    release_held(r, i);
    return s;
}

/* ---- one subject: handed as it arrives ----------------------------------------- */

typedef struct stream_call {
    es_reader *r;
    const esi_filter_set *skip;
    es_event_cb cb;
    void *closure;
    size_t *count, seen;
    uint64_t *through;
} stream_call;

static es_status hand_one(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                          void *closure)
{
    stream_call *c = closure;
    es_status s = ES_OK;
    c->seen++;
    if (c->skip == NULL || !esi_filter_set_matches(c->skip, subject)) {
        esi_event_wrap(&c->r->ev, c->r->st, msg, subject, seq, stored_ns);
        if (esi_event_well_formed(&c->r->ev)) {
            s = c->cb(&c->r->ev, c->closure);
            *c->count += s == ES_OK;
        }
        esi_event_clear(&c->r->ev);
    }
    if (s == ES_OK)
        *c->through = seq;
    return s;
}

/* A round over one subject needs no merge: each event is handed as its
 * answer arrives, while the rest of the batch is on its way. */
static es_status stream_subject(es_reader *r, const char *subject, const esi_filter_set *skip,
                                uint64_t after, uint64_t up_to, size_t max, es_event_cb cb,
                                void *closure, size_t *count, uint64_t *through)
{
    stream_call c = {r, skip, cb, closure, count, 0, through};
    esi_dg_request req = {.filter = subject,
                          .start_seq = after + 1,
                          .up_to_seq = up_to,
                          .batch = (int)max,
                          .max_msgs = max};
    es_status s =
        esi_subject_scan(r->st->js, r->st->stream, &req, r->st->opts.confined, hand_one, &c, NULL);
    uint64_t last = 0;
    if (s == ES_OK && c.seen < max) /* not cut: nothing more up to up_to, unless a replica lags */
        s = leader_last(r, subject, up_to, &last);
    if (s == ES_OK && c.seen < max && *through >= last && up_to > *through)
        *through = up_to;
    return s;
}

/* One round over `fs` from `after`: *through is where it got to. */
static es_status round_of(es_reader *r, const esi_filter_set *fs, const esi_filter_set *skip,
                          uint64_t after, uint64_t up_to, size_t max, es_event_cb cb, void *closure,
                          size_t *count, uint64_t *through)
{
    *through = after;
    if (fs->n == 1)
        return stream_subject(r, fs->subjects[0], skip, after, up_to, max, cb, closure, count,
                              through);
    size_t need = fs->n * max; /* <= ES_FILTERS_MAX * ES_READER_BATCH_MAX */
    if (r->cap_held < need) {
        held *h = esi_realloc(r->held, need * sizeof *h);
        if (h == NULL)
            return es_error(ES_ERR_NOMEM, "out of memory");
        r->held = h;
        r->cap_held = need;
    }
    uint64_t frontier = 0;
    es_status s = gather(r, fs, after, up_to, max, &frontier);
    if (s != ES_OK) {
        release_held(r, 0);
        return s;
    }
    bool whole = false;
    size_t before = *count;
    s = hand_held(r, skip, frontier, before + max, cb, closure, count, through, &whole);
    if (whole && frontier != UINT64_MAX && frontier > *through)
        *through = frontier; /* nothing more matches up to there */
    return s;
}

es_status es_reader_next(es_reader *r, uint64_t up_to, size_t max, es_event_cb cb, void *closure,
                         size_t *count)
{
    size_t handed = 0;
    if (count)
        *count = 0;
    if (r == NULL || cb == NULL || max < 1 || max > ES_READER_BATCH_MAX)
        return es_error(ES_ERR_INVALID, "reader: a callback and 1..%d events are required",
                        ES_READER_BATCH_MAX);
    es_status s = apply_widening(r);
    uint64_t through = 0;
    if (s == ES_OK && r->late.set != NULL) { /* late events first */
        s = round_of(r, r->late.set, r->late.before, r->late.after, r->late.up_to, max, cb, closure,
                     &handed, &through);
        r->late.after = through;
        if (s == ES_OK && through >= r->late.up_to)
            late_free(&r->late);
    } else if (s == ES_OK && (up_to == 0 || atomic_load(&r->position) < up_to)) {
        s = round_of(r, r->fs, NULL, atomic_load(&r->position), up_to, max, cb, closure, &handed,
                     &through);
        atomic_store(&r->position, through);
    }
    if (count)
        *count = handed;
    if (s == ES_OK)
        es_error_clear();
    return s;
}
