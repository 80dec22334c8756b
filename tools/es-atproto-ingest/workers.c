#define _POSIX_C_SOURCE 200809L
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* A slot whose frame copy or arena grew past this gives its memory back
 * when released: the ring keeps at most slots × this between frames. */
#define SLOT_KEEP_BYTES ((size_t)64 << 10)

typedef enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE } slot_state;

typedef struct slot {
    slot_state state; /* under the ring's lock once submitted */
    uint8_t *frame;   /* the copy, owned by the slot */
    size_t len, cap;
    es_arena *arena; /* the batch's memory; reset when the slot is released */
    ingest_decoded out;
    bool second_look; /* decoded again on the caller's thread (second_look_needed) */
} slot;

typedef struct worker {
    ingest_workers *ring;
    es_atp_decoder *dec;
    pthread_t thread;
    bool started;
} worker;

struct ingest_workers {
    ingest_workers_options opts;
    slot *slots;
    size_t nslots;
    /* the caller's thread only */
    size_t head;  /* the oldest slot held */
    size_t held;  /* slots submitted and not released */
    size_t bytes; /* their frame bytes */
    /* shared, under `lock` */
    pthread_mutex_t lock;
    pthread_cond_t work; /* a frame was queued, or stopping */
    pthread_cond_t done; /* the oldest wait_count slots are decoded */
    size_t next_job;     /* the next slot a worker decodes, in submission order */
    size_t queued;       /* slots queued, not yet picked up */
    size_t head_shared;  /* `head`, for the workers to tell when to wake the caller */
    size_t wait_count;   /* the caller waits for this many oldest slots (0: not waiting) */
    bool stopping;
    void (*on_ready)(void *ctx);
    void *ready_ctx;
    /* the caller's decoder (every frame with threads = 0; a second look
     * otherwise), and the workers */
    es_atp_decoder *inline_dec;
    worker *workers;
    size_t nworkers;
};

void ingest_workers_options_init(ingest_workers_options *o)
{
    memset(o, 0, sizeof *o);
    es_atp_limits_defaults(&o->decode.limits);
    o->threads = ingest_workers_default_threads();
    o->slots = 1;
}

size_t ingest_workers_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

/* ---- counters ---------------------------------------------------------------- */

/* One function walks every counter of es_atp_stats, for the sum and the
 * difference alike: a field added there is added here once. */
static void stats_combine(es_atp_stats *acc, const es_atp_stats *d, int sign)
{
#define COMBINE(field) acc->field = sign > 0 ? acc->field + d->field : acc->field - d->field
    COMBINE(frames);
    COMBINE(bytes);
    for (int k = 0; k < ES_ATP_KIND_COUNT; k++)
        COMBINE(by_kind[k]);
    COMBINE(ops);
    COMBINE(events);
    COMBINE(filtered_ops);
    COMBINE(filtered_frames);
    COMBINE(blocks_verified);
    COMBINE(invalid_records);
    for (int k = 0; k < ES_ATP_ERR_COUNT; k++)
        COMBINE(errors[k]);
#undef COMBINE
}

void ingest_stats_add(es_atp_stats *sum, const es_atp_stats *d)
{
    stats_combine(sum, d, 1);
}

/* ---- decoding one slot ---------------------------------------------------------- */

/* Runs on whichever thread decodes (a worker, or the caller with threads = 0).
 * The slot is that thread's alone until it is marked done. */
static void decode_slot(const ingest_workers *w, es_atp_decoder *dec, slot *s)
{
    ingest_decoded *o = &s->out;
    es_atp_stats before = *es_atp_decoder_stats(dec);
    memset(&o->batch, 0, sizeof o->batch);
    o->error[0] = '\0';
    o->status = s->arena == NULL ? es_arena_create(w->opts.arena_limit, &s->arena) : ES_OK;
    if (o->status == ES_OK)
        o->status = w->opts.decode_fn(dec, s->frame, s->len, s->arena, &o->batch);
    /* es_last_error() is per thread: the message travels with the slot. */
    if (o->status != ES_OK)
        snprintf(o->error, sizeof o->error, "%s", es_last_error());
    o->delta = *es_atp_decoder_stats(dec);
    o->frame = s->frame;
    o->frame_len = s->len;
    stats_combine(&o->delta, &before, -1);
}

/* Under the lock: whether the `count` oldest slots held are decoded. */
static bool oldest_done(const ingest_workers *w, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if (w->slots[(w->head_shared + k) % w->nslots].state != SLOT_DONE)
            return false;
    return true;
}

/* Under the lock, slot i just decoded: wake the caller when what it waits
 * for is complete (not at every frame: a wake-up costs more than a frame's
 * hand-over), and the event loop when the oldest frame is ready. */
static void wake_caller(ingest_workers *w, size_t i)
{
    size_t age = (i + w->nslots - w->head_shared) % w->nslots;
    if (w->wait_count > 0 && age < w->wait_count && oldest_done(w, w->wait_count))
        pthread_cond_signal(&w->done);
    if (age == 0 && w->on_ready != NULL)
        w->on_ready(w->ready_ctx);
}

static void *worker_main(void *arg)
{
    worker *self = arg;
    ingest_workers *w = self->ring;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->stopping && w->queued == 0)
            pthread_cond_wait(&w->work, &w->lock);
        if (w->stopping)
            break;
        size_t i = w->next_job;
        w->next_job = (i + 1) % w->nslots;
        w->queued--;
        slot *s = &w->slots[i];
        s->state = SLOT_BUSY;
        pthread_mutex_unlock(&w->lock);
        decode_slot(w, self->dec, s);
        pthread_mutex_lock(&w->lock);
        s->state = SLOT_DONE;
        wake_caller(w, i);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- life cycle ----------------------------------------------------------------- */

static es_status start_workers(ingest_workers *w)
{
    w->workers = calloc(w->opts.threads, sizeof *w->workers);
    if (w->workers == NULL)
        return es_error(ES_ERR_NOMEM, "starting the decoding threads: out of memory");
    for (size_t i = 0; i < w->opts.threads; i++) {
        worker *t = &w->workers[i];
        t->ring = w;
        es_status s = es_atp_decoder_create(&w->opts.decode, &t->dec);
        if (s != ES_OK)
            return s;
        int rc = pthread_create(&t->thread, NULL, worker_main, t);
        if (rc != 0)
            return es_error(ES_ERR_NOMEM, "starting a decoding thread: %s", strerror(rc));
        t->started = true;
        w->nworkers = i + 1;
    }
    return ES_OK;
}

static es_status init_sync(ingest_workers *w)
{
    int rc = pthread_mutex_init(&w->lock, NULL);
    if (rc == 0)
        rc = pthread_cond_init(&w->work, NULL);
    if (rc == 0)
        rc = pthread_cond_init(&w->done, NULL); /* timed waits: es_cli_deadline's clock */
    return rc == 0 ? ES_OK : es_error(ES_ERR_NOMEM, "starting the decoding threads");
}

es_status ingest_workers_create(const ingest_workers_options *o, ingest_workers **out)
{
    *out = NULL;
    if (o->slots == 0 || o->threads > 1024)
        return es_error(ES_ERR_INVALID, "decoding threads: 1 slot at least, 1024 threads at most");
    ingest_workers *w = calloc(1, sizeof *w);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "starting the decoding threads: out of memory");
    w->opts = *o;
    if (w->opts.decode_fn == NULL)
        w->opts.decode_fn = es_atp_decode;
    es_status s = init_sync(w);
    if (s != ES_OK) {
        free(w);
        return s;
    }
    w->nslots = o->slots;
    w->slots = calloc(w->nslots, sizeof *w->slots);
    if (w->slots == NULL)
        s = es_error(ES_ERR_NOMEM, "starting the decoding threads: out of memory");
    else
        s = es_atp_decoder_create(&w->opts.decode, &w->inline_dec);
    if (s == ES_OK && o->threads > 0)
        s = start_workers(w);
    if (s != ES_OK) {
        ingest_workers_destroy(w);
        return s;
    }
    *out = w;
    return ES_OK;
}

void ingest_workers_destroy(ingest_workers *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < w->nworkers; i++)
        if (w->workers[i].started)
            pthread_join(w->workers[i].thread, NULL);
    if (w->workers != NULL)
        for (size_t i = 0; i < w->opts.threads; i++)
            es_atp_decoder_destroy(w->workers[i].dec);
    free(w->workers);
    es_atp_decoder_destroy(w->inline_dec);
    for (size_t i = 0; w->slots != NULL && i < w->nslots; i++) {
        free(w->slots[i].frame);
        es_arena_destroy(w->slots[i].arena);
    }
    free(w->slots);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* ---- the caller's side ------------------------------------------------------------- */

static es_status copy_frame(slot *s, const uint8_t *frame, size_t len)
{
    if (len > s->cap || s->frame == NULL) {
        size_t cap = len > 0 ? len : 1;
        uint8_t *p = malloc(cap);
        if (p == NULL)
            return es_error(ES_ERR_NOMEM, "keeping a frame of %zu bytes: out of memory", len);
        free(s->frame);
        s->frame = p;
        s->cap = cap;
    }
    if (len > 0)
        memcpy(s->frame, frame, len);
    s->len = len;
    return ES_OK;
}

/* Decoding in parallel breaks one dependency between frames: an #identity
 * (a key rotation) changes the key the repository's next commits verify
 * with, and a commit decoded beside the #identity before it may have seen
 * the old key. A frame refused for its signature or its identity is
 * therefore decoded once more on the caller's thread when it is taken,
 * every frame before it decoded: it is refused only if it would be refused
 * in order. Refusals are rare; so are these second looks. */
static bool second_look_needed(const ingest_workers *w, const slot *s)
{
    return w->opts.threads > 0 && !s->second_look && s->out.status != ES_OK &&
           s->out.status != ES_ERR_NOMEM &&
           (s->out.batch.error == ES_ATP_ERR_SIGNATURE || s->out.batch.error == ES_ATP_ERR_IDENTITY);
}

es_status ingest_workers_decode_here(ingest_workers *w, const uint8_t *frame, size_t len,
                                     es_arena *arena, es_atp_batch *out)
{
    memset(out, 0, sizeof *out);
    return w->opts.decode_fn(w->inline_dec, frame, len, arena, out);
}

es_status ingest_workers_submit(ingest_workers *w, const uint8_t *frame, size_t len)
{
    if (w->held == w->nslots)
        return ES_ERR_AGAIN;
    size_t i = (w->head + w->held) % w->nslots;
    slot *s = &w->slots[i]; /* free: no worker looks at it */
    es_status st = copy_frame(s, frame, len);
    if (st != ES_OK)
        return st;
    w->held++;
    w->bytes += len;
    if (w->opts.threads == 0) {
        decode_slot(w, w->inline_dec, s);
        s->state = SLOT_DONE;
        return ES_OK;
    }
    pthread_mutex_lock(&w->lock);
    s->state = SLOT_QUEUED;
    w->queued++;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
    return ES_OK;
}

bool ingest_workers_wait(ingest_workers *w, size_t count, int64_t timeout_ms)
{
    if (count > w->held)
        count = w->held;
    if (count == 0 || w->opts.threads == 0)
        return true;
    struct timespec until = es_cli_deadline(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&w->lock);
    w->wait_count = count;
    while (!oldest_done(w, count) && timeout_ms != 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&w->done, &w->lock);
        else if (pthread_cond_timedwait(&w->done, &w->lock, &until) == ETIMEDOUT)
            break;
    }
    bool done = oldest_done(w, count);
    w->wait_count = 0;
    pthread_mutex_unlock(&w->lock);
    return done;
}

const ingest_decoded *ingest_workers_head(ingest_workers *w, int64_t timeout_ms)
{
    if (w->held == 0 || !ingest_workers_wait(w, 1, timeout_ms))
        return NULL;
    slot *s = &w->slots[w->head];
    if (second_look_needed(w, s)) {
        s->second_look = true;
        es_arena_reset(s->arena); /* the first batch goes: the second replaces it */
        decode_slot(w, w->inline_dec, s);
    }
    return &s->out;
}

/* A slot that held a large frame gives its memory back; a small one keeps
 * its buffers for the next frame. */
static void recycle(slot *s)
{
    if (s->cap > SLOT_KEEP_BYTES) {
        free(s->frame);
        s->frame = NULL;
        s->cap = 0;
    }
    if (s->arena != NULL && es_arena_used(s->arena) > SLOT_KEEP_BYTES) {
        es_arena_destroy(s->arena);
        s->arena = NULL; /* made again by the next decode */
    }
    es_arena_reset(s->arena);
    s->len = 0;
    s->second_look = false;
}

void ingest_workers_release(ingest_workers *w)
{
    if (w->held == 0)
        return;
    slot *s = &w->slots[w->head];
    w->bytes -= s->len;
    recycle(s); /* done: no worker looks at it any more */
    w->held--;
    w->head = (w->head + 1) % w->nslots;
    pthread_mutex_lock(&w->lock);
    s->state = SLOT_FREE;
    w->head_shared = w->head;
    pthread_mutex_unlock(&w->lock);
}

size_t ingest_workers_held(const ingest_workers *w)
{
    return w->held;
}

size_t ingest_workers_bytes(const ingest_workers *w)
{
    return w->bytes;
}

void ingest_workers_on_ready(ingest_workers *w, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&w->lock);
    w->on_ready = fn;
    w->ready_ctx = ctx;
    pthread_mutex_unlock(&w->lock);
}
