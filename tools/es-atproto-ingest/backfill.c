/* Backfill and resync workers (backfill.h). One mutex guards the queues;
 * the work itself (HTTP, verification, appends) runs outside it. */
#define _POSIX_C_SOURCE 200809L
#include "backfill.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <es/atproto_resync.h>
#include <es/car.h>

#include "backoff.h"
#include "clock.h"
#include "hash.h"

#define PARALLELISM_DEFAULT 4
#define MAX_QUEUED_DEFAULT  ((size_t)1000000)
#define RETRY_MIN_DEFAULT   (60 * 1000)
#define RETRY_MAX_DEFAULT   (60 * 60 * 1000)
#define CONFLICT_ATTEMPTS   3  /* a resync racing another writer: read back and go again */
#define IDLE_WAIT_MS        1000
#define CAR_ROOTS_MAX       16
/* A CAR section is at least a length byte, a 36-byte CID and one byte: a
 * CAR of n bytes holds at most n / 38 blocks, whatever it announces. */
#define CAR_SECTION_MIN     38
#define CAR_INDEX_LIMIT     ((size_t)1 << 30) /* the CAR's index and the commit's fields */

/* An attempt that will be tried again, told to the poller. */
typedef struct notice {
    struct notice *next;
    backfill_result res;
    char did[]; /* res.did_len bytes + NUL */
} notice;

typedef struct item {
    struct item *next;  /* in the ready queue, the waiting list or the done list */
    struct item *hnext; /* in the DID set */
    uint64_t hash;
    int64_t not_before_ms; /* waiting: when it may go again */
    unsigned attempts;
    char known_rev[ES_ATP_REPO_REV_MAX + 1];
    backfill_result res;
    size_t did_len;
    char did[]; /* did_len bytes + NUL */
} item;

struct backfill {
    backfill_options o;
    es_atp_xrpc *xrpc;
    es_entity_types *types; /* the store's index, kept by every resync */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    item *ready, *ready_tail; /* FIFO */
    item *waiting;            /* retries, unordered: few */
    item *done, *done_tail;   /* FIFO, for backfill_poll */
    notice *notices, *notices_tail; /* FIFO, for backfill_poll */
    item **set;               /* every DID not yet polled, by hash */
    size_t nset, nbuckets;
    backfill_stats st;
    uint64_t rng;
    uint64_t batches; /* stored by every worker (atomic): exit_after_batches */
    bool stop;
    pthread_t *threads;
    size_t nthreads;
};

void backfill_options_init(backfill_options *o)
{
    memset(o, 0, sizeof *o);
    es_atp_xrpc_options_init(&o->xrpc);
    o->parallelism = PARALLELISM_DEFAULT;
    o->max_queued = MAX_QUEUED_DEFAULT;
    o->retry_min_ms = RETRY_MIN_DEFAULT;
    o->retry_max_ms = RETRY_MAX_DEFAULT;
    o->batch_max = ES_BATCH_MAX;
}

/* ---- the DID set and the lists (under mu) ------------------------------------------ */

static item **set_slot(backfill *bf, const char *did, size_t len, uint64_t h)
{
    item **p = &bf->set[h % bf->nbuckets];
    while (*p != NULL && ((*p)->hash != h || (*p)->did_len != len || memcmp((*p)->did, did, len)))
        p = &(*p)->hnext;
    return p;
}

static void push(item **head, item **tail, item *it)
{
    it->next = NULL;
    if (*tail != NULL)
        (*tail)->next = it;
    else
        *head = it;
    *tail = it;
}

static item *pop(item **head, item **tail)
{
    item *it = *head;
    if (it != NULL && (*head = it->next) == NULL)
        *tail = NULL;
    return it;
}

/* Moves the retries that are due to the ready queue; the earliest
 * not-yet-due time in *next_ms (INT64_MAX: none). */
static void wake_due(backfill *bf, int64_t now, int64_t *next_ms)
{
    *next_ms = INT64_MAX;
    for (item **p = &bf->waiting; *p != NULL;) {
        item *it = *p;
        if (it->not_before_ms <= now || bf->stop) {
            *p = it->next;
            bf->st.waiting--;
            bf->st.queued++;
            push(&bf->ready, &bf->ready_tail, it);
            continue;
        }
        if (it->not_before_ms < *next_ms)
            *next_ms = it->not_before_ms;
        p = &it->next;
    }
}

/* ---- one attempt ------------------------------------------------------------------- */

typedef enum outcome { DONE, RETRY, GIVE_UP } outcome;

static void say(item *it, const char *reason, es_status s)
{
    snprintf(it->res.reason, sizeof it->res.reason, "%s", reason);
    snprintf(it->res.error, sizeof it->res.error, "%s: %s", es_status_text(s), es_last_error());
}

/* What a failed fetch means: INACTIVE and NOT_FOUND are answers, the
 * passing troubles are tried again, the rest given up. */
static outcome fetch_failed(item *it, es_status s, const es_atp_xrpc_result *xr,
                            int64_t *retry_after_ms)
{
    if (s == ES_ERR_PERMISSION && xr->repo_status != NULL) {
        it->res.kind = BACKFILL_INACTIVE;
        it->res.status = xr->repo_status;
        return DONE;
    }
    say(it, s == ES_ERR_NOT_FOUND ? "not_found" : "fetch", s);
    if (s == ES_ERR_AGAIN) {
        *retry_after_ms = xr->retry_after_ms;
        return RETRY;
    }
    if (s == ES_ERR_SERVER || s == ES_ERR_TIMEOUT || s == ES_ERR_CONNECTION || s == ES_ERR_IO ||
        s == ES_ERR_NOMEM)
        return RETRY;
    return GIVE_UP;
}

static int ignore_record(const es_atp_record *rec, void *user)
{
    (void)rec;
    (void)user;
    return 0;
}

/* After each stored batch: the crash tests' kill -9 at a chosen point. */
static es_status on_batch(void *closure, const es_atp_resync_result *so_far)
{
    backfill *bf = closure;
    (void)so_far;
    if (bf->o.exit_after_batches &&
        __atomic_add_fetch(&bf->batches, 1, __ATOMIC_SEQ_CST) >= bf->o.exit_after_batches)
        _exit(99);
    return ES_OK;
}

/* Verifies the CAR whole, then applies it unless the store is as new. */
static outcome verify_and_apply(backfill *bf, item *it, const uint8_t *buf, size_t size)
{
    es_arena *arena = NULL;
    es_status s = es_arena_create(CAR_INDEX_LIMIT, &arena);
    es_car car;
    es_car_limits lim = {.max_bytes = size, .max_blocks = size / CAR_SECTION_MIN + 1,
                         .max_roots = CAR_ROOTS_MAX};
    if (s == ES_OK && (s = es_car_parse(buf, size, &lim, arena, &car)) != ES_OK)
        say(it, "car", s);
    es_atp_repo_verify_options vo;
    es_atp_repo_verify_options_init(&vo);
    vo.did = it->did;
    vo.identity = bf->o.identity;
    vo.skip_signature = bf->o.skip_signature;
    es_atp_commit_info info;
    es_atp_repo_verdict verdict;
    if (s == ES_OK &&
        (s = es_atp_verify_repo(&car, &vo, arena, &info, ignore_record, NULL,
                                &verdict)) != ES_OK)
        say(it, es_atp_error_name(verdict.error), s);
    if (s == ES_OK && it->known_rev[0] && strcmp(info.rev, it->known_rev) <= 0) {
        it->res.kind = BACKFILL_CURRENT;
        snprintf(it->res.rev, sizeof it->res.rev, "%s", info.rev);
        es_arena_destroy(arena);
        return DONE;
    }
    es_atp_resync_options ro;
    es_atp_resync_options_init(&ro);
    ro.did = it->did;
    ro.did_len = it->did_len;
    ro.batch_max = bf->o.batch_max;
    ro.atomic_batches = bf->o.atomic_batches;
    ro.types = bf->types;
    ro.on_batch = on_batch;
    ro.closure = bf;
    es_atp_resync_result rr = {0};
    for (int i = 0; s == ES_OK && i < CONFLICT_ATTEMPTS; i++)
        if ((s = es_atp_resync_apply(bf->o.store, &car, &ro, &rr)) == ES_ERR_CONFLICT &&
            i + 1 < CONFLICT_ATTEMPTS)
            s = ES_OK; /* another writer: read back and go again */
        else
            break;
    es_arena_destroy(arena);
    if (s != ES_OK) {
        if (it->res.reason[0] == '\0')
            say(it, "store", s);
        return s == ES_ERR_NOMEM || s == ES_ERR_DECODE || s == ES_ERR_LIMIT ||
                       s == ES_ERR_CONFLICT || s == ES_ERR_TIMEOUT || s == ES_ERR_CONNECTION ||
                       s == ES_ERR_SERVER
                   ? RETRY
                   : GIVE_UP;
    }
    it->res.kind = BACKFILL_APPLIED;
    memcpy(it->res.rev, rr.rev, sizeof it->res.rev);
    memcpy(it->res.data, rr.data, rr.data_len);
    it->res.data_len = rr.data_len;
    it->res.last_seq = rr.last_seq;
    it->res.records = rr.records;
    it->res.created = rr.created;
    it->res.updated = rr.updated;
    it->res.deleted = rr.deleted;
    return DONE;
}

static outcome attempt(backfill *bf, item *it, int64_t *retry_after_ms)
{
    it->res.reason[0] = it->res.error[0] = '\0';
    char pds[ES_ATP_XRPC_URL_MAX + 1];
    es_status s = es_atp_identity_pds(bf->o.identity, it->did, it->did_len, pds, sizeof pds);
    if (s != ES_OK) {
        say(it, s == ES_ERR_NOT_FOUND ? "no_pds" : "identity", s);
        return s == ES_ERR_NOT_FOUND || s == ES_ERR_DECODE || s == ES_ERR_LIMIT ? GIVE_UP : RETRY;
    }
    int fd = -1;
    uint64_t size = 0;
    es_atp_xrpc_result xr;
    s = es_atp_xrpc_get_repo_file(bf->xrpc, pds, it->did, it->did_len, bf->o.tmp_dir, &fd, &size,
                                  &xr);
    pthread_mutex_lock(&bf->mu);
    bf->st.bytes += xr.bytes;
    pthread_mutex_unlock(&bf->mu);
    if (s != ES_OK)
        return fetch_failed(it, s, &xr, retry_after_ms);
    void *map = size ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size == 0 || map == MAP_FAILED) {
        say(it, "car", es_error(size ? ES_ERR_IO : ES_ERR_DECODE, "%s: %s", it->did,
                                size ? strerror(errno) : "the PDS sent an empty repository"));
        return RETRY;
    }
    outcome o = verify_and_apply(bf, it, map, (size_t)size);
    munmap(map, (size_t)size);
    return o;
}

/* ---- the workers -------------------------------------------------------------------- */

static void finish(backfill *bf, item *it)
{
    backfill_stats *st = &bf->st;
    st->applied += it->res.kind == BACKFILL_APPLIED;
    st->current += it->res.kind == BACKFILL_CURRENT;
    st->inactive += it->res.kind == BACKFILL_INACTIVE;
    st->failed += it->res.kind == BACKFILL_FAILED;
    if (it->res.kind == BACKFILL_APPLIED) {
        st->records += it->res.records;
        st->events += it->res.created + it->res.updated + it->res.deleted;
    }
    push(&bf->done, &bf->done_tail, it);
}

/* Under mu. Out of memory: the poller is not told (the DID's final result
 * still comes). */
static void notify_retry(backfill *bf, const item *it, int64_t delay)
{
    notice *n = malloc(sizeof *n + it->did_len + 1);
    if (n == NULL)
        return;
    n->next = NULL;
    n->res = it->res;
    n->res.kind = BACKFILL_RETRYING;
    n->res.retry_in_ms = delay;
    memcpy(n->did, it->did, it->did_len + 1);
    n->res.did = n->did;
    if (bf->notices_tail != NULL)
        bf->notices_tail->next = n;
    else
        bf->notices = n;
    bf->notices_tail = n;
}

/* After an attempt (under mu): done, given up, or waiting to retry. */
static void settle(backfill *bf, item *it, outcome o, int64_t retry_after_ms)
{
    it->res.attempts = ++it->attempts;
    bool more = bf->o.max_attempts == 0 || it->attempts < bf->o.max_attempts;
    if (o == RETRY && more && !bf->stop) {
        int64_t delay = es_cli_backoff_ms(bf->o.retry_min_ms, bf->o.retry_max_ms,
                                          it->attempts - 1, &bf->rng);
        if (retry_after_ms > delay)
            delay = retry_after_ms;
        it->not_before_ms = es_cli_monotonic_ms() + delay;
        notify_retry(bf, it, delay);
        it->next = bf->waiting;
        bf->waiting = it;
        bf->st.waiting++;
        bf->st.retries++;
        return;
    }
    if (o != DONE)
        it->res.kind = BACKFILL_FAILED;
    finish(bf, it);
}

static void *worker(void *arg)
{
    backfill *bf = arg;
    pthread_mutex_lock(&bf->mu);
    while (!bf->stop) {
        int64_t next_ms;
        wake_due(bf, es_cli_monotonic_ms(), &next_ms);
        item *it = pop(&bf->ready, &bf->ready_tail);
        if (it == NULL) {
            int64_t wait = next_ms == INT64_MAX ? IDLE_WAIT_MS : next_ms - es_cli_monotonic_ms();
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            wait = wait < 1 ? 1 : wait > IDLE_WAIT_MS ? IDLE_WAIT_MS : wait;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&bf->cond, &bf->mu, &ts);
            continue;
        }
        bf->st.queued--;
        bf->st.running++;
        pthread_mutex_unlock(&bf->mu);
        int64_t retry_after_ms = -1;
        outcome o = attempt(bf, it, &retry_after_ms);
        pthread_mutex_lock(&bf->mu);
        bf->st.running--;
        settle(bf, it, o, retry_after_ms);
    }
    pthread_mutex_unlock(&bf->mu);
    return NULL;
}

/* ---- the handle --------------------------------------------------------------------- */

es_status backfill_create(const backfill_options *o, backfill **out)
{
    *out = NULL;
    if (o->store == NULL || o->identity == NULL)
        return es_error(ES_ERR_INVALID, "backfill: a store and an identity are required");
    backfill *bf = calloc(1, sizeof *bf);
    if (bf == NULL)
        return es_error(ES_ERR_NOMEM, "backfill: out of memory");
    bf->o = *o;
    if (bf->o.parallelism == 0)
        bf->o.parallelism = PARALLELISM_DEFAULT;
    if (bf->o.max_queued == 0)
        bf->o.max_queued = MAX_QUEUED_DEFAULT;
    if (bf->o.batch_max == 0 || bf->o.batch_max > ES_BATCH_MAX)
        bf->o.batch_max = ES_BATCH_MAX;
    bf->rng = es_cli_backoff_seed();
    bf->nbuckets = 4096;
    pthread_mutex_init(&bf->mu, NULL);
    pthread_cond_init(&bf->cond, NULL);
    es_status s = es_atp_xrpc_create(&o->xrpc, &bf->xrpc);
    if (s == ES_OK)
        s = es_entity_types_open(o->store, &bf->types);
    if (s == ES_OK && ((bf->set = calloc(bf->nbuckets, sizeof *bf->set)) == NULL ||
                       (bf->threads = calloc(bf->o.parallelism, sizeof *bf->threads)) == NULL))
        s = es_error(ES_ERR_NOMEM, "backfill: out of memory");
    for (size_t i = 0; s == ES_OK && i < bf->o.parallelism; i++, bf->nthreads++)
        if (pthread_create(&bf->threads[i], NULL, worker, bf) != 0)
            s = es_error(ES_ERR_NOMEM, "backfill: cannot start a worker thread");
    if (s != ES_OK) {
        backfill_destroy(bf);
        return s;
    }
    *out = bf;
    return ES_OK;
}

static void free_list(item *it)
{
    while (it != NULL) {
        item *next = it->next;
        free(it);
        it = next;
    }
}

void backfill_destroy(backfill *bf)
{
    if (bf == NULL)
        return;
    pthread_mutex_lock(&bf->mu);
    bf->stop = true;
    pthread_cond_broadcast(&bf->cond);
    pthread_mutex_unlock(&bf->mu);
    for (size_t i = 0; i < bf->nthreads; i++)
        pthread_join(bf->threads[i], NULL);
    free_list(bf->ready);
    free_list(bf->waiting);
    free_list(bf->done);
    for (notice *n = bf->notices; n != NULL;) {
        notice *next = n->next;
        free(n);
        n = next;
    }
    free(bf->threads);
    free(bf->set);
    es_atp_xrpc_destroy(bf->xrpc);
    es_entity_types_destroy(bf->types);
    pthread_cond_destroy(&bf->cond);
    pthread_mutex_destroy(&bf->mu);
    free(bf);
}

es_status backfill_add(backfill *bf, const char *did, size_t did_len, const char *known_rev)
{
    if (!es_atp_valid_did(did, did_len))
        return es_error(ES_ERR_INVALID, "'%.*s' is not a DID", (int)(did_len > 256 ? 256 : did_len),
                        did);
    uint64_t h = es_cli_fnv1a(did, did_len);
    pthread_mutex_lock(&bf->mu);
    es_status s = ES_OK;
    item **p = set_slot(bf, did, did_len, h);
    if (*p == NULL && bf->nset >= bf->o.max_queued)
        s = es_error(ES_ERR_LIMIT, "backfill: more than %zu repositories queued", bf->o.max_queued);
    else if (*p == NULL) {
        item *it = calloc(1, sizeof *it + did_len + 1);
        if (it == NULL) {
            pthread_mutex_unlock(&bf->mu);
            return es_error(ES_ERR_NOMEM, "backfill: out of memory");
        }
        memcpy(it->did, did, did_len);
        it->did_len = did_len;
        it->hash = h;
        it->res.did = it->did;
        it->res.did_len = did_len;
        snprintf(it->known_rev, sizeof it->known_rev, "%s", known_rev ? known_rev : "");
        *p = it;
        bf->nset++;
        bf->st.queued++;
        push(&bf->ready, &bf->ready_tail, it);
        pthread_cond_signal(&bf->cond);
    }
    pthread_mutex_unlock(&bf->mu);
    return s;
}

void backfill_poll(backfill *bf, backfill_result_fn fn, void *ctx)
{
    for (;;) { /* retries first: each came before its DID's final result */
        pthread_mutex_lock(&bf->mu);
        notice *n = bf->notices;
        if (n != NULL && (bf->notices = n->next) == NULL)
            bf->notices_tail = NULL;
        pthread_mutex_unlock(&bf->mu);
        if (n == NULL)
            break;
        fn(ctx, &n->res);
        free(n);
    }
    for (;;) {
        pthread_mutex_lock(&bf->mu);
        item *it = pop(&bf->done, &bf->done_tail);
        if (it != NULL) {
            item **p = set_slot(bf, it->did, it->did_len, it->hash);
            *p = it->hnext;
            bf->nset--;
        }
        pthread_mutex_unlock(&bf->mu);
        if (it == NULL)
            return;
        fn(ctx, &it->res);
        free(it);
    }
}

void backfill_get_stats(backfill *bf, backfill_stats *out)
{
    pthread_mutex_lock(&bf->mu);
    *out = bf->st;
    pthread_mutex_unlock(&bf->mu);
}

bool backfill_idle(backfill *bf)
{
    pthread_mutex_lock(&bf->mu);
    bool idle = bf->nset == 0;
    pthread_mutex_unlock(&bf->mu);
    return idle;
}

bool backfill_working(backfill *bf)
{
    pthread_mutex_lock(&bf->mu);
    bool working = bf->st.queued > 0 || bf->st.running > 0 || bf->done != NULL;
    pthread_mutex_unlock(&bf->mu);
    return working;
}
