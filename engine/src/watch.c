/* Watches: an ordered consumer read on a thread of the watch's own. */
#include <es/watch.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "transport/consumer.h"
#include "event_impl.h"
#include "filters.h"
#include "own_writes.h"
#include "base/alloc.h"
#include "base/internal.h"
#include "store_impl.h"
#include "transport/msg.h"
#include "wire.h"

#define POLL_MS              200
#define DEFAULT_HEARTBEAT_MS 2000

/* One es_watch_add_filters waiting for the watch's thread. */
typedef struct widening {
    struct widening *next;
    esi_filter_set *add;
    uint64_t after_seq; /* its events after this one and up to the position: late */
} widening;

struct es_watch {
    es_store *st;
    es_watch_options opts;
    esi_oc *oc;
    esi_filter_set *fs;     /* oc's subjects; replaced by the watch's thread under mu */
    esi_filter_set *target; /* fs with every pending widening (NULL: none), under mu */
    widening *widenings, *widenings_tail; /* under mu, applied in order */
    uint64_t pending_at_start;
    /* The last event stored at the start, as the leader has it (own_writes.h):
     * a consumer on a replica behind has nothing pending before it has
     * delivered it. Caught up needs both. */
    uint64_t own_last;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    _Atomic bool stop;
    _Atomic bool caught_up;
    _Atomic uint64_t last_seq;
    bool running; /* the thread has not ended */
    bool joined;
};

void es_watch_options_init(es_watch_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
}

static void mark_caught_up(es_watch *w)
{
    if (atomic_exchange(&w->caught_up, true))
        return;
    if (w->opts.on_caught_up)
        w->opts.on_caught_up(w->opts.closure);
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void report(es_watch *w, es_status s, bool final)
{
    if (w->opts.on_error)
        w->opts.on_error(s, es_last_error(), final, w->opts.closure);
}

/* Hands a message to on_event and frees it. */
static es_status hand(es_watch *w, esi_oc_msg *m)
{
    es_event ev;
    memset(&ev, 0, sizeof ev);
    esi_event_wrap(&ev, w->st, m->msg, esi_msg_subject(m->msg), m->seq, m->stored_ns);
    es_status s = esi_event_well_formed(&ev) ? w->opts.on_event(&ev, w->opts.closure) : ES_OK;
    esi_event_release(&ev);
    esi_msg_destroy(m->msg);
    return s;
}

static es_status deliver(es_watch *w, esi_oc_msg *m)
{
    uint64_t seq = m->seq, pending = m->pending;
    es_status s = hand(w, m);
    atomic_store(&w->last_seq, seq);
    if (pending == 0 && seq >= w->own_last)
        mark_caught_up(w);
    return s;
}

/* ---- widening ------------------------------------------------------------ */

/* How long a catch-up read may see nothing before it is taken as done (its
 * pending events were removed by the store's limits meanwhile). */
static int quiet_polls(const es_watch *w)
{
    return (int)(3 * w->opts.heartbeat_ms / POLL_MS) + 1;
}

/* The widening's events in (after_seq, last]: those the watch's set did not
 * already deliver, late. Advances wd->after_seq as it goes, so a retry after
 * a lost connection repeats nothing. */
static es_status catch_up(es_watch *w, widening *wd, uint64_t last)
{
    esi_oc *oc = NULL;
    uint64_t pending = 0;
    es_status s = esi_oc_create(w->st->js, w->st->stream, wd->add->subjects, wd->add->n,
                                wd->after_seq + 1, w->opts.heartbeat_ms, &oc, &pending);
    for (int quiet = 0; s == ES_OK && pending > 0 && quiet < quiet_polls(w);) {
        if (atomic_load(&w->stop))
            break;
        esi_oc_msg m;
        s = esi_oc_next(oc, POLL_MS, &m);
        if (s == ES_ERR_TIMEOUT) {
            s = ES_OK;
            quiet++;
            pending = esi_oc_pending(oc); /* 0 when the server recounted (consumer.h) */
            continue;
        }
        if (s != ES_OK)
            break;
        quiet = 0;
        pending = m.seq > last ? 0 : m.pending;
        if (m.seq > last || esi_filter_set_matches(w->fs, esi_msg_subject(m.msg))) {
            esi_msg_destroy(m.msg);
            continue;
        }
        uint64_t seq = m.seq;
        s = hand(w, &m);
        wd->after_seq = seq;
    }
    esi_oc_destroy(oc);
    if (s == ES_OK && !atomic_load(&w->stop))
        wd->after_seq = last;
    return s;
}

/* Applies the oldest widening: its late events, then the consumer
 * recreated at the position with the wider set. */
static es_status widen(es_watch *w, widening *wd)
{
    uint64_t last = atomic_load(&w->last_seq);
    es_status s = wd->after_seq < last ? catch_up(w, wd, last) : ES_OK;
    if (s != ES_OK || atomic_load(&w->stop))
        return s;
    esi_filter_set *wider = NULL;
    esi_oc *oc = NULL;
    uint64_t pending = 0;
    s = esi_filter_set_union(w->fs, wd->add, &wider);
    if (s == ES_OK)
        s = esi_oc_create(w->st->js, w->st->stream, wider->subjects, wider->n, last + 1,
                          w->opts.heartbeat_ms, &oc, &pending);
    if (s != ES_OK) {
        esi_filter_set_free(wider);
        return s;
    }
    pthread_mutex_lock(&w->mu);
    esi_filter_set *old = w->fs;
    w->fs = wider;
    w->widenings = wd->next;
    if (w->widenings == NULL) {
        w->widenings_tail = NULL;
        esi_filter_set_free(w->target); /* fs is the target now */
        w->target = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    esi_oc_destroy(w->oc);
    w->oc = oc;
    esi_filter_set_free(old);
    esi_filter_set_free(wd->add);
    esi_free(wd);
    if (pending == 0)
        mark_caught_up(w);
    return ES_OK;
}

static widening *next_widening(es_watch *w)
{
    pthread_mutex_lock(&w->mu);
    widening *wd = w->widenings;
    pthread_mutex_unlock(&w->mu);
    return wd;
}

es_status es_watch_add_filters(es_watch *w, const es_filter *filters, size_t n, uint64_t after_seq)
{
    if (w == NULL)
        return es_error(ES_ERR_INVALID, "es_watch_add_filters: no watch");
    widening *wd = esi_calloc(1, sizeof *wd);
    if (wd == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    wd->after_seq = after_seq;
    es_status s = esi_filter_set_make(w->st, filters, n, &wd->add);
    esi_filter_set *target = NULL;
    pthread_mutex_lock(&w->mu);
    const esi_filter_set *now = w->target ? w->target : w->fs;
    bool nothing_new = s == ES_OK && esi_filter_set_covers(now, wd->add);
    if (s == ES_OK && !nothing_new)
        s = esi_filter_set_union(now, wd->add, &target);
    if (s == ES_OK && !nothing_new) {
        esi_filter_set_free(w->target);
        w->target = target;
        if (w->widenings_tail != NULL)
            w->widenings_tail->next = wd;
        else
            w->widenings = wd;
        w->widenings_tail = wd;
    }
    pthread_mutex_unlock(&w->mu);
    if (s != ES_OK || nothing_new) {
        esi_filter_set_free(wd->add);
        esi_free(wd);
    }
    return s;
}

static void *run(void *arg)
{
    es_watch *w = arg;
    bool troubled = false;
    es_status s = ES_OK;
    int quiet = 0; /* polls with nothing delivered and nothing pending */
    if (w->pending_at_start == 0 && w->own_last == 0)
        mark_caught_up(w);
    while (!atomic_load(&w->stop)) {
        esi_oc_msg m;
        widening *wd = next_widening(w);
        s = wd ? widen(w, wd) : esi_oc_next(w->oc, POLL_MS, &m);
        if (wd != NULL && s == ES_OK)
            continue;
        /* Nothing pending after a recount (consumer.h), and the leader's
         * last event delivered, or gone for good: not delivered for as long
         * as a catch-up read waits (removed by the store's limits meanwhile). */
        if (s == ES_ERR_TIMEOUT) {
            if (wd == NULL && esi_oc_pending(w->oc) == 0 &&
                (atomic_load(&w->last_seq) >= w->own_last || ++quiet >= quiet_polls(w)))
                mark_caught_up(w);
            s = ES_OK;
            continue;
        }
        if (s == ES_ERR_CONNECTION) { /* riding out an outage: report once per episode */
            if (!troubled)
                report(w, s, false);
            troubled = true;
            s = ES_OK;
            continue;
        }
        troubled = false;
        if (s == ES_OK && wd == NULL) {
            quiet = 0;
            s = deliver(w, &m);
        }
        if (s != ES_OK) {
            report(w, s, true);
            break;
        }
    }
    pthread_mutex_lock(&w->mu);
    w->running = false;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static bool filter_empty(const es_filter *f)
{
    return f->tenant == NULL && f->entity_type == NULL && f->entity_id == NULL &&
           f->event_type == NULL;
}

/* The subjects of the options' one filter, or of their several. */
static es_status watch_filters(es_store *st, const es_watch_options *opts, esi_filter_set **out)
{
    if (opts->filter_count == 0)
        return esi_filter_set_make(st, &opts->filter, 1, out);
    if (!filter_empty(&opts->filter))
        return es_error(ES_ERR_INVALID, "es_watch_start: either filter or filters, not both");
    return esi_filter_set_make(st, opts->filters, opts->filter_count, out);
}

es_status es_watch_start(es_store *st, const es_watch_options *opts, es_watch **out)
{
    if (out == NULL || st == NULL || opts == NULL || opts->on_event == NULL)
        return es_error(ES_ERR_INVALID,
                        "es_watch_start: store, options with on_event and out are required");
    *out = NULL;
    es_watch *w = esi_calloc(1, sizeof *w);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    w->st = st;
    w->opts = *opts;
    if (w->opts.heartbeat_ms <= 0)
        w->opts.heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    esi_filter_set *fs = NULL;
    es_status s = watch_filters(st, opts, &fs);
    if (s == ES_OK)
        s = esi_own_writes_target(st, fs, opts->after_seq, 0, &w->own_last);
    if (s == ES_OK)
        s = esi_oc_create(st->js, st->stream, fs->subjects, fs->n, opts->after_seq + 1,
                          w->opts.heartbeat_ms, &w->oc, &w->pending_at_start);
    w->fs = fs; /* what a widening adds to */
    memset(&w->opts.filter, 0, sizeof w->opts.filter); /* borrowed pointers: not kept */
    w->opts.filters = NULL;
    w->opts.filter_count = 0;
    if (s != ES_OK) {
        esi_oc_destroy(w->oc);
        esi_filter_set_free(fs);
        esi_free(w);
        return s;
    }
    atomic_store(&w->last_seq, opts->after_seq);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->running = true;
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        esi_oc_destroy(w->oc);
        esi_filter_set_free(w->fs);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cond);
        esi_free(w);
        return es_error(ES_ERR_NOMEM, "cannot start the watch thread");
    }
    if (!opts->no_wait) {
        pthread_mutex_lock(&w->mu);
        while (!atomic_load(&w->caught_up) && w->running)
            pthread_cond_wait(&w->cond, &w->mu);
        bool failed = !w->running && !atomic_load(&w->caught_up);
        pthread_mutex_unlock(&w->mu);
        if (failed) {
            es_watch_destroy(w);
            return es_error(ES_ERR_ABORTED, "the watch ended before catching up");
        }
    }
    *out = w;
    return ES_OK;
}

void es_watch_stop(es_watch *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    if (pthread_equal(pthread_self(), w->thread) || w->joined)
        return;
    pthread_join(w->thread, NULL);
    w->joined = true;
}

uint64_t es_watch_last_seq(const es_watch *w)
{
    return w ? atomic_load(&w->last_seq) : 0;
}
bool es_watch_caught_up(const es_watch *w)
{
    return w && atomic_load(&w->caught_up);
}

void es_watch_destroy(es_watch *w)
{
    if (w == NULL)
        return;
    es_watch_stop(w);
    esi_oc_destroy(w->oc);
    esi_filter_set_free(w->fs);
    esi_filter_set_free(w->target);
    for (widening *wd = w->widenings, *next; wd != NULL; wd = next) {
        next = wd->next;
        esi_filter_set_free(wd->add);
        esi_free(wd);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    esi_free(w);
}
