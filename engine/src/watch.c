/* Watches: an ordered consumer read on a thread of the watch's own. */
#include <es/watch.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "transport/consumer.h"
#include "event_impl.h"
#include "filters.h"
#include "base/alloc.h"
#include "base/internal.h"
#include "store_impl.h"
#include "transport/msg.h"
#include "wire.h"

#define POLL_MS              200
#define DEFAULT_HEARTBEAT_MS 2000

struct es_watch {
    es_store *st;
    es_watch_options opts;
    esi_oc *oc;
    uint64_t pending_at_start;
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

static es_status deliver(es_watch *w, esi_oc_msg *m)
{
    es_event ev;
    memset(&ev, 0, sizeof ev);
    esi_event_wrap(&ev, w->st, m->msg, esi_msg_subject(m->msg), m->seq, m->stored_ns);
    es_status s = esi_event_well_formed(&ev) ? w->opts.on_event(&ev, w->opts.closure) : ES_OK;
    esi_event_release(&ev);
    esi_msg_destroy(m->msg);
    atomic_store(&w->last_seq, m->seq);
    if (m->pending == 0)
        mark_caught_up(w);
    return s;
}

static void *run(void *arg)
{
    es_watch *w = arg;
    bool troubled = false;
    es_status s = ES_OK;
    if (w->pending_at_start == 0)
        mark_caught_up(w);
    while (!atomic_load(&w->stop)) {
        esi_oc_msg m;
        s = esi_oc_next(w->oc, POLL_MS, &m);
        if (s == ES_ERR_TIMEOUT) {
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
        if (s == ES_OK)
            s = deliver(w, &m);
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
        s = esi_oc_create(st->js, st->stream, fs->subjects, fs->n, opts->after_seq + 1,
                          w->opts.heartbeat_ms, &w->oc, &w->pending_at_start);
    esi_filter_set_free(fs); /* the consumer keeps copies */
    memset(&w->opts.filter, 0, sizeof w->opts.filter); /* borrowed pointers: not kept */
    w->opts.filters = NULL;
    w->opts.filter_count = 0;
    if (s != ES_OK) {
        esi_oc_destroy(w->oc);
        esi_free(w);
        return s;
    }
    atomic_store(&w->last_seq, opts->after_seq);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->running = true;
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        esi_oc_destroy(w->oc);
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
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    esi_free(w);
}
