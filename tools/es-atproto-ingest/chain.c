#define _POSIX_C_SOURCE 200809L
#include "chain.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/atproto_repos.h>
#include <es/cid.h>

#include "clock.h"
#include "hash.h"
#include "log.h"

#define DEFAULT_MAX_CACHED 100000
#define DEFAULT_MAX_SCAN   1000000
#define EVICT_LOOK         16 /* entries looked at from the cold end per eviction */
#define PUT_ATTEMPTS       4  /* a put that conflicts: read, merge, put again */
#define CLOSE_ATTEMPTS     3
#define POINTS_MAX         64 /* recovery point candidates waiting for their units */
#define POINT_SUFFIX       ".repos"

/* The state a frame leads to, until its unit settles. */
typedef struct pend {
    struct pend *next;
    uint64_t position;
    bool events; /* a unit without events settles silently: applied when it is first */
    char rev[ES_ATP_REPO_REV_MAX + 1];
    uint8_t data[ES_ATP_REPO_DATA_MAX];
    size_t data_len;
    char status[ES_ATP_REPO_STATUS_MAX + 1];
} pend;

typedef struct repo {
    struct repo *hnext, *newer, *older, *dirty_next;
    uint64_t hash;
    es_atp_repo_state stored; /* stored in the stream (KV has it, or will at the next flush) */
    es_atp_repo_state view;   /* stored + every pending frame: what new frames follow */
    pend *head, *tail;
    size_t npend;
    bool dirty, in_job;
    size_t did_len;
    char did[]; /* did_len bytes + NUL */
} repo;

typedef struct job_item {
    repo *r; /* kept alive by r->in_job */
    es_atp_repo_state st;
    es_status s;
    bool merged; /* st was merged with a newer state someone else wrote */
} job_item;

typedef struct job {
    job_item *items;
    size_t n;
    bool has_point;
    uint64_t point; /* the recovery point to record once every item is written */
    bool read_ok;
    uint64_t last_seq; /* the stream's last sequence, read before writing */
} job;

typedef struct candidate {
    uint64_t last_seq; /* L: read by a flush */
    uint64_t offered;  /* units offered by then (at most) */
} candidate;

struct chain {
    chain_options o;
    es_store *store;
    es_atp_repos *repos;
    es_checkpoints *cps;
    char point_name[ES_CHECKPOINT_NAME_MAX + 1];
    repo **buckets;
    size_t nbuckets, count;
    repo *newest, *oldest;
    repo *dirty;
    chain_stats st;
    int64_t last_flush_ms;
    /* recovery point candidates, oldest first */
    candidate points[POINTS_MAX];
    size_t npoints;
    uint64_t point_written;
    /* the writer */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop, busy, done;
    job job;
    uint64_t kv_writes, kv_errors; /* the writer's counters (under mu) */
    void (*on_desynced)(void *ctx, const char *did, size_t len);
    void *desynced_ctx;
};

/* ---- the map ------------------------------------------------------------------- */

static repo **slot(chain *c, const char *did, size_t len, uint64_t h)
{
    repo **p = &c->buckets[h & (c->nbuckets - 1)];
    while (*p != NULL &&
           !((*p)->hash == h && (*p)->did_len == len && memcmp((*p)->did, did, len) == 0))
        p = &(*p)->hnext;
    return p;
}

static void lru_unlink(chain *c, repo *r)
{
    if (r->newer)
        r->newer->older = r->older;
    else
        c->newest = r->older;
    if (r->older)
        r->older->newer = r->newer;
    else
        c->oldest = r->newer;
    r->newer = r->older = NULL;
}

static void lru_push(chain *c, repo *r)
{
    r->older = c->newest;
    r->newer = NULL;
    if (c->newest)
        c->newest->newer = r;
    c->newest = r;
    if (c->oldest == NULL)
        c->oldest = r;
}

static void free_repo(repo *r)
{
    for (pend *p = r->head, *n; p != NULL; p = n) {
        n = p->next;
        free(p);
    }
    free(r);
}

static void free_map(chain *c)
{
    for (size_t i = 0; c->buckets != NULL && i < c->nbuckets; i++)
        for (repo *r = c->buckets[i], *n; r != NULL; r = n) {
            n = r->hnext;
            free_repo(r);
        }
    free(c->buckets);
}

/* Frees a cold entry when over the bound. An entry with frames pending, a
 * state not written yet or a write in flight stays (their number is bounded
 * by the sink's units and by the flush interval). */
static void evict(chain *c)
{
    repo *r = c->oldest;
    for (int i = 0; c->count > c->o.max_cached && r != NULL && i < EVICT_LOOK; i++) {
        repo *newer = r->newer;
        if (r->npend == 0 && !r->dirty && !r->in_job) {
            lru_unlink(c, r);
            *slot(c, r->did, r->did_len, r->hash) = r->hnext;
            c->count--;
            free_repo(r);
        }
        r = newer;
    }
}

/* The entry of a DID: from memory, or read from KV (one get; none known:
 * a fresh state). NULL when out of memory. */
static repo *lookup(chain *c, const char *did, size_t len)
{
    uint64_t h = es_cli_fnv1a(did, len);
    repo **p = slot(c, did, len, h);
    if (*p != NULL) {
        lru_unlink(c, *p);
        lru_push(c, *p);
        return *p;
    }
    repo *r = calloc(1, sizeof *r + len + 1);
    if (r == NULL)
        return NULL;
    memcpy(r->did, did, len);
    r->did_len = len;
    r->hash = h;
    c->st.kv_reads++;
    es_status s = es_atp_repos_get(c->repos, did, len, &r->stored);
    if (s != ES_OK) {
        if (s != ES_ERR_NOT_FOUND) {
            /* Unknown then: its frames are offered, the store's duplicate
             * window still keeps each event once. */
            c->st.kv_errors++;
            ingest_log_line l;
            ingest_log_begin(&l, LOG_WARN, "repository state not read");
            ingest_log_strn(&l, "did", did, len);
            ingest_log_str(&l, "error", es_last_error());
            ingest_log_end(&l);
        }
        es_atp_repo_state_init(&r->stored);
    }
    r->view = r->stored;
    *p = r;
    lru_push(c, r);
    c->count++;
    evict(c);
    return r;
}

static void mark_dirty(chain *c, repo *r)
{
    if (r->dirty)
        return;
    r->dirty = true;
    r->dirty_next = c->dirty;
    c->dirty = r;
}

/* ---- frames --------------------------------------------------------------------- */

static void set_desynced(chain *c, repo *r, uint64_t seq, const char *reason)
{
    bool was = r->view.desynced;
    if (!was)
        c->st.repos_desynced++;
    es_atp_repo_state *sts[2] = {&r->view, &r->stored};
    for (int i = 0; i < 2; i++) {
        if (sts[i]->desynced)
            continue;
        sts[i]->desynced = true;
        snprintf(sts[i]->reason, sizeof sts[i]->reason, "%s", reason);
        sts[i]->desync_seq = seq;
    }
    /* Written at the next flush: it claims no rev, so it may go before the
     * frames pending (a crash then leaves a repository desynchronized that
     * the scan at start would not have marked: safe). */
    mark_dirty(c, r);
    if (!was && c->on_desynced != NULL)
        c->on_desynced(c->desynced_ctx, r->did, r->did_len);
}

void chain_on_desynced(chain *c, void (*fn)(void *ctx, const char *did, size_t len), void *ctx)
{
    c->on_desynced = fn;
    c->desynced_ctx = ctx;
}

bool chain_unknown(chain *c, const char *did, size_t did_len)
{
    repo *r = lookup(c, did, did_len);
    return r != NULL && r->view.rev[0] == '\0' && !r->view.desynced && r->npend == 0 &&
           es_atp_repo_active(&r->view);
}

size_t chain_pending(chain *c, const char *did, size_t did_len)
{
    repo *r = *slot(c, did, did_len, es_cli_fnv1a(did, did_len));
    return r != NULL ? r->npend : 0;
}

static void log_desynced(const char *did, size_t len, uint64_t seq, const char *reason)
{
    ingest_log_line l;
    ingest_log_begin(&l, LOG_WARN, "repository desynchronized");
    ingest_log_strn(&l, "did", did, len);
    ingest_log_u64(&l, "seq", seq);
    ingest_log_str(&l, "reason", reason);
    ingest_log_end(&l);
}

void chain_mark_desynced(chain *c, const char *did, size_t did_len, uint64_t seq,
                         const char *reason)
{
    repo *r = lookup(c, did, did_len);
    if (r == NULL || r->view.desynced)
        return;
    set_desynced(c, r, seq, reason);
    log_desynced(did, did_len, seq, reason);
}

static bool cid_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* revs are TIDs: fixed-length base32-sortable, so byte order is time order */
static int rev_cmp(const char *a, const char *b)
{
    return strcmp(a, b);
}

static chain_verdict check_commit(const repo *r, const es_atp_batch *b, const char **reason)
{
    const es_atp_repo_state *v = &r->view;
    if (!es_atp_repo_active(v))
        return CHAIN_SKIP_INACTIVE;
    if (v->desynced)
        return CHAIN_SKIP_DESYNCED;
    if (v->rev[0] == '\0' || b->rev == NULL)
        return CHAIN_STORE;
    if (rev_cmp(b->rev, v->rev) <= 0)
        return CHAIN_SKIP_OLD;
    if (b->since == NULL) {
        *reason = "no_since";
        return CHAIN_REFUSE_BREAK;
    }
    if (strcmp(b->since, v->rev) != 0) {
        *reason = "since_mismatch";
        return CHAIN_REFUSE_BREAK;
    }
    if (b->prev_data != NULL && v->data_len > 0 &&
        !cid_equal(b->prev_data, b->prev_data_len, v->data, v->data_len)) {
        *reason = "prev_data_mismatch";
        return CHAIN_REFUSE_BREAK;
    }
    return CHAIN_STORE;
}

static void set_rev_data(es_atp_repo_state *st, const es_atp_batch *b)
{
    if (b->rev != NULL)
        snprintf(st->rev, sizeof st->rev, "%s", b->rev);
    if (b->data_cid != NULL && b->data_cid_len <= sizeof st->data) {
        memcpy(st->data, b->data_cid, b->data_cid_len);
        st->data_len = b->data_cid_len;
    }
}

/* An #account's `active` and `status` (status_len bytes; NULL: none) as
 * the state's status: "active", else the status given, else "inactive". */
static void set_status(es_atp_repo_state *st, bool active, const char *status, size_t status_len)
{
    if (active || status == NULL) {
        snprintf(st->status, sizeof st->status, "%s", active ? "active" : "inactive");
        return;
    }
    if (status_len > ES_ATP_REPO_STATUS_MAX)
        status_len = ES_ATP_REPO_STATUS_MAX;
    snprintf(st->status, sizeof st->status, "%.*s", (int)status_len, status);
}

static void account_status(es_atp_repo_state *st, const es_atp_batch *b)
{
    set_status(st, b->active, b->status, b->status ? strlen(b->status) : 0);
}

/* Applies a settled frame's state to the stored one; `stream_seq` is where
 * its last event is (0: it has none). */
static void apply(chain *c, repo *r, const pend *p, uint64_t stream_seq)
{
    /* forward only: another ingester's newer state may have been merged in
     * (collect) while this frame was pending */
    if (rev_cmp(p->rev, r->stored.rev) > 0) {
        memcpy(r->stored.rev, p->rev, sizeof p->rev);
        memcpy(r->stored.data, p->data, p->data_len);
        r->stored.data_len = p->data_len;
    }
    memcpy(r->stored.status, p->status, sizeof p->status);
    if (p->position > r->stored.seq)
        r->stored.seq = p->position;
    if (stream_seq > r->stored.position)
        r->stored.position = stream_seq;
    mark_dirty(c, r);
}

void chain_known_rev(chain *c, const char *did, size_t did_len, char out[ES_ATP_REPO_REV_MAX + 1])
{
    repo *r = lookup(c, did, did_len);
    snprintf(out, ES_ATP_REPO_REV_MAX + 1, "%s", r != NULL ? r->view.rev : "");
}

void chain_resynced(chain *c, const char *did, size_t did_len, const char *rev,
                    const uint8_t *data, size_t data_len, uint64_t stream_seq, const char *status)
{
    repo *r = lookup(c, did, did_len);
    if (r == NULL)
        return;
    es_atp_repo_state *sts[2] = {&r->stored, &r->view};
    for (int i = 0; i < 2; i++) {
        es_atp_repo_state *st = sts[i];
        if (rev != NULL && rev_cmp(rev, st->rev) >= 0 && data_len <= sizeof st->data) {
            snprintf(st->rev, sizeof st->rev, "%s", rev);
            memcpy(st->data, data, data_len);
            st->data_len = data_len;
        }
        if (status != NULL || rev != NULL)
            set_status(st, status == NULL, status, status ? strlen(status) : 0);
        st->desynced = false;
        st->reason[0] = '\0';
        st->desync_seq = 0;
        if (stream_seq > st->position)
            st->position = stream_seq;
    }
    mark_dirty(c, r);
}

/* Units without events at the front of the FIFO settle silently: apply them. */
static void apply_silent(chain *c, repo *r)
{
    while (r->head != NULL && !r->head->events) {
        pend *p = r->head;
        r->head = p->next;
        if (r->head == NULL)
            r->tail = NULL;
        r->npend--;
        apply(c, r, p, 0);
        free(p);
    }
}

static bool push_pend(chain *c, repo *r, uint64_t position, bool events)
{
    pend *p = calloc(1, sizeof *p);
    if (p == NULL)
        return false;
    p->position = position;
    p->events = events;
    if (position > r->view.seq)
        r->view.seq = position;
    memcpy(p->rev, r->view.rev, sizeof p->rev);
    memcpy(p->data, r->view.data, r->view.data_len);
    p->data_len = r->view.data_len;
    memcpy(p->status, r->view.status, sizeof p->status);
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    r->npend++;
    apply_silent(c, r);
    return true;
}

static bool chain_kind(es_atp_kind k)
{
    return k == ES_ATP_KIND_COMMIT || k == ES_ATP_KIND_SYNC || k == ES_ATP_KIND_ACCOUNT ||
           k == ES_ATP_KIND_IDENTITY;
}

chain_verdict chain_take(chain *c, const es_atp_batch *b, bool has_events, const char **reason)
{
    *reason = "";
    if (!chain_kind(b->kind) || b->did == NULL)
        return CHAIN_STORE;
    repo *r = lookup(c, b->did, b->did_len);
    if (r == NULL)
        return CHAIN_STORE; /* out of memory: unchecked, the ids keep it once */
    uint64_t seq = b->has_seq ? b->seq : 0;
    chain_verdict v = CHAIN_STORE;
    if (b->kind == ES_ATP_KIND_COMMIT) {
        v = check_commit(r, b, reason);
        if (v == CHAIN_STORE)
            set_rev_data(&r->view, b);
    } else if (b->kind == ES_ATP_KIND_SYNC) {
        if (r->view.rev[0] != '\0' && b->rev != NULL && rev_cmp(b->rev, r->view.rev) <= 0)
            v = CHAIN_SKIP_OLD;
        if (v == CHAIN_STORE && r->view.data_len > 0 && b->data_cid != NULL &&
            !cid_equal(b->data_cid, b->data_cid_len, r->view.data, r->view.data_len)) {
            /* We missed something: resync (the next issue) will mend it. */
            set_desynced(c, r, seq, "sync_mismatch");
            log_desynced(b->did, b->did_len, seq, "sync_mismatch");
        }
        if (v == CHAIN_STORE)
            set_rev_data(&r->view, b);
    } else if (r->view.seq != 0 && seq != 0 && seq <= r->view.seq) {
        /* #identity, #account carry no rev: their ids hold the relay seq,
         * and a repository's frames come in seq order, so one at or below
         * the last stored frame's seq was stored before. */
        v = CHAIN_SKIP_OLD;
    } else if (b->kind == ES_ATP_KIND_ACCOUNT) {
        account_status(&r->view, b);
    }
    switch (v) {
    case CHAIN_STORE:
        if (!push_pend(c, r, seq, has_events))
            ingest_log_msg(LOG_WARN, "out of memory keeping a repository state", NULL);
        break;
    case CHAIN_SKIP_OLD: c->st.old_rev++; break;
    case CHAIN_SKIP_INACTIVE: c->st.inactive++; break;
    case CHAIN_SKIP_DESYNCED: c->st.desynced++; break;
    case CHAIN_REFUSE_BREAK:
        c->st.chain_break++;
        set_desynced(c, r, seq, "chain_break");
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "commit refused: chain break");
        ingest_log_strn(&l, "did", b->did, b->did_len);
        ingest_log_u64(&l, "seq", seq);
        ingest_log_str(&l, "reason", *reason);
        ingest_log_end(&l);
        break;
    }
    return v;
}

/* Recomputes the view from the stored state and the frames still pending. */
static void rebuild_view(repo *r)
{
    bool desynced = r->view.desynced;
    char reason[sizeof r->view.reason];
    memcpy(reason, r->view.reason, sizeof reason);
    uint64_t desync_seq = r->view.desync_seq;
    r->view = r->stored;
    const pend *p = r->tail;
    if (p != NULL) {
        memcpy(r->view.rev, p->rev, sizeof p->rev);
        memcpy(r->view.data, p->data, p->data_len);
        r->view.data_len = p->data_len;
        memcpy(r->view.status, p->status, sizeof p->status);
        if (p->position > r->view.seq)
            r->view.seq = p->position;
    }
    if (desynced && !r->view.desynced) {
        r->view.desynced = true;
        memcpy(r->view.reason, reason, sizeof reason);
        r->view.desync_seq = desync_seq;
    }
}

void chain_untake(chain *c, const es_atp_batch *b)
{
    if (!chain_kind(b->kind) || b->did == NULL)
        return;
    repo **slotp = slot(c, b->did, b->did_len, es_cli_fnv1a(b->did, b->did_len));
    repo *r = *slotp;
    uint64_t seq = b->has_seq ? b->seq : 0;
    if (r == NULL || r->tail == NULL || r->tail->position != seq)
        return;
    pend **pp = &r->head;
    while ((*pp)->next != NULL)
        pp = &(*pp)->next;
    free(*pp);
    *pp = NULL;
    r->npend--;
    r->tail = NULL;
    for (pend *p = r->head; p != NULL; p = p->next)
        r->tail = p;
    rebuild_view(r);
}

void chain_settled(chain *c, const char *did, size_t did_len, uint64_t position, bool stored,
                   uint64_t stream_seq)
{
    if (did_len == 0)
        return;
    repo *r = *slot(c, did, did_len, es_cli_fnv1a(did, did_len));
    if (r == NULL || r->head == NULL)
        return; /* a unit chain_take did not keep (a #identity, a skipped frame) */
    pend *p = r->head;
    if (p->position != position)
        return; /* not one of ours: units of a key settle in order */
    r->head = p->next;
    if (r->head == NULL)
        r->tail = NULL;
    r->npend--;
    if (stored) {
        apply(c, r, p, stream_seq);
    } else if (!r->view.desynced) {
        set_desynced(c, r, position, "dropped");
        log_desynced(did, did_len, position, "dropped");
    }
    free(p);
    apply_silent(c, r);
}

/* ---- the writer ---------------------------------------------------------------- */

/* The newer of two states of one repository: the higher rev, status and
 * position from the one that has it, desynchronized if either is. */
static void merge(es_atp_repo_state *ours, const es_atp_repo_state *theirs)
{
    if (rev_cmp(theirs->rev, ours->rev) > 0) {
        memcpy(ours->rev, theirs->rev, sizeof ours->rev);
        memcpy(ours->data, theirs->data, theirs->data_len);
        ours->data_len = theirs->data_len;
        memcpy(ours->status, theirs->status, sizeof ours->status);
    }
    if (theirs->position > ours->position)
        ours->position = theirs->position;
    if (theirs->seq > ours->seq)
        ours->seq = theirs->seq;
    if (theirs->desynced && !ours->desynced) {
        ours->desynced = true;
        memcpy(ours->reason, theirs->reason, sizeof ours->reason);
        ours->desync_seq = theirs->desync_seq;
    }
}

/* Writes one state, compare-and-set; on a conflict (another ingester wrote
 * it), reads theirs, merges and tries again. */
static es_status write_item(chain *c, job_item *it)
{
    const repo *r = it->r;
    es_status s = ES_OK;
    for (int i = 0; i < PUT_ATTEMPTS; i++) {
        uint64_t expect = it->st.revision ? it->st.revision : ES_ATP_REPO_NEW;
        uint64_t revision = 0;
        s = es_atp_repos_put(c->repos, r->did, r->did_len, &it->st, expect, &revision);
        if (s == ES_OK) {
            it->st.revision = revision;
            return s;
        }
        if (s != ES_ERR_CONFLICT)
            return s;
        es_atp_repo_state theirs;
        s = es_atp_repos_get(c->repos, r->did, r->did_len, &theirs);
        if (s == ES_ERR_NOT_FOUND) {
            it->st.revision = 0;
            continue;
        }
        if (s != ES_OK)
            return s;
        merge(&it->st, &theirs);
        it->st.revision = theirs.revision;
        it->merged = true;
    }
    return s;
}

static void run_job(chain *c, job *j)
{
    es_store_info info;
    j->read_ok = es_store_info_get(c->store, &info) == ES_OK;
    j->last_seq = j->read_ok ? info.last_seq : 0;
    bool all_ok = true;
    uint64_t writes = 0, errors = 0;
    for (size_t i = 0; i < j->n; i++) {
        job_item *it = &j->items[i];
        it->s = write_item(c, it);
        writes += it->s == ES_OK;
        errors += it->s != ES_OK;
        all_ok &= it->s == ES_OK;
    }
    if (j->has_point && all_ok &&
        es_checkpoint_advance(c->cps, c->point_name, j->point, NULL, NULL) != ES_OK)
        all_ok = false;
    if (!all_ok) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "repository states not all written: retried later");
        ingest_log_u64(&l, "states", j->n);
        ingest_log_u64(&l, "failed", errors);
        ingest_log_str(&l, "error", es_last_error());
        ingest_log_end(&l);
    }
    pthread_mutex_lock(&c->mu);
    c->kv_writes += writes;
    c->kv_errors += errors;
    pthread_mutex_unlock(&c->mu);
}

static void *writer(void *arg)
{
    chain *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && !(c->busy && !c->done))
            pthread_cond_wait(&c->cond, &c->mu);
        if (c->stop)
            break;
        pthread_mutex_unlock(&c->mu);
        run_job(c, &c->job);
        pthread_mutex_lock(&c->mu);
        c->done = true;
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Takes the finished job's results back (the driving thread). */
static void collect(chain *c, uint64_t offered)
{
    job *j = &c->job;
    for (size_t i = 0; i < j->n; i++) {
        job_item *it = &j->items[i];
        repo *r = it->r;
        r->in_job = false;
        if (it->s != ES_OK) {
            mark_dirty(c, r); /* written at the next flush */
            continue;
        }
        r->stored.revision = it->st.revision;
        if (it->merged) { /* someone else's newer state: ours follows it */
            merge(&r->stored, &it->st);
            if (r->npend == 0)
                rebuild_view(r);
        }
    }
    if (j->has_point && j->point > c->point_written) {
        bool ok = true;
        for (size_t i = 0; i < j->n; i++)
            ok &= j->items[i].s == ES_OK;
        if (ok)
            c->point_written = j->point;
    }
    if (j->read_ok) {
        if (c->npoints == POINTS_MAX) { /* the oldest goes: later ones stand for it */
            memmove(c->points, c->points + 1, (POINTS_MAX - 1) * sizeof *c->points);
            c->npoints--;
        }
        c->points[c->npoints++] = (candidate){j->last_seq, offered};
    }
    free(j->items);
    memset(j, 0, sizeof *j);
}

/* The newest candidate whose units have all settled, removed with the
 * older ones. */
static bool ready_point(chain *c, uint64_t settled, uint64_t *out)
{
    size_t k = 0;
    while (k < c->npoints && c->points[k].offered <= settled)
        k++;
    if (k == 0)
        return false;
    *out = c->points[k - 1].last_seq;
    memmove(c->points, c->points + k, (c->npoints - k) * sizeof *c->points);
    c->npoints -= k;
    return true;
}

/* Builds a job of every dirty state. False when out of memory. */
static bool build(chain *c, uint64_t settled)
{
    size_t n = 0;
    for (repo *r = c->dirty; r != NULL; r = r->dirty_next)
        n++;
    job *j = &c->job;
    j->items = n ? calloc(n, sizeof *j->items) : NULL;
    if (n && j->items == NULL)
        return false;
    for (repo *r = c->dirty; r != NULL; r = r->dirty_next) {
        job_item *it = &j->items[j->n++];
        it->r = r;
        it->st = r->stored;
        r->dirty = false;
        r->in_job = true;
    }
    c->dirty = NULL;
    uint64_t point;
    if (ready_point(c, settled, &point) && point >= c->point_written) {
        j->has_point = true;
        j->point = point;
    }
    return true;
}

/* Starts a job on the writer. */
static void start_job(chain *c)
{
    pthread_mutex_lock(&c->mu);
    c->busy = true;
    c->done = false;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* Whether the writer is idle (after collecting what it finished). */
static bool writer_idle(chain *c, uint64_t offered)
{
    pthread_mutex_lock(&c->mu);
    bool finished = c->busy && c->done;
    bool idle = !c->busy || finished;
    if (finished)
        c->busy = false;
    pthread_mutex_unlock(&c->mu);
    if (finished)
        collect(c, offered);
    return idle;
}

void chain_tick(chain *c, uint64_t offered, uint64_t settled)
{
    if (!writer_idle(c, offered))
        return;
    int64_t now = es_cli_monotonic_ms();
    if (now - c->last_flush_ms < c->o.interval_ms)
        return;
    c->last_flush_ms = now;
    if (build(c, settled))
        start_job(c);
}

/* ---- the recovery scan -------------------------------------------------------------- */

/* The stream is the log, KV the snapshot: at start every event stored after
 * the recovery point is folded into the states, whoever stored it. */

typedef struct scan {
    chain *c;
    es_arena *arena;
    uint64_t events;
    uint64_t last_seq;
} scan;

static uint64_t meta_u64(const es_event *ev, const char *key)
{
    const char *v = es_event_meta(ev, key);
    return v ? strtoull(v, NULL, 10) : 0;
}

/* #account's stored body: {active, status?} */
static void fold_account(scan *sc, const es_event *ev, es_atp_repo_state *st)
{
    es_arena_reset(sc->arena);
    es_value *v = NULL;
    if (es_event_decode(ev, sc->arena, &v) != ES_OK)
        return;
    const es_value *active = es_value_get(v, "active"), *status = es_value_get(v, "status");
    if (active == NULL || active->kind != ES_VALUE_BOOL)
        return;
    bool text = status != NULL && status->kind == ES_VALUE_STRING;
    set_status(st, active->u.b, text ? status->u.str.ptr : NULL, text ? status->u.str.len : 0);
}

/* A commit's or a #sync's rev and MST root (meta `data`, when written). */
static void fold_rev(const es_event *ev, es_atp_repo_state *st)
{
    const char *rev = es_event_meta(ev, "rev"), *data = es_event_meta(ev, "data");
    if (rev == NULL || strlen(rev) > ES_ATP_REPO_REV_MAX || rev_cmp(rev, st->rev) <= 0)
        return;
    snprintf(st->rev, sizeof st->rev, "%s", rev);
    st->data_len = 0; /* unknown unless the event says */
    if (data != NULL &&
        es_cid_from_string(data, strlen(data), st->data, sizeof st->data, &st->data_len) != ES_OK)
        st->data_len = 0;
}

static es_status fold(const es_event *ev, void *closure)
{
    scan *sc = closure;
    sc->last_seq = es_event_seq(ev);
    if (++sc->events > sc->c->o.max_scan)
        return ES_ERR_LIMIT;
    size_t len = 0;
    const char *did = es_event_meta(ev, "did");
    if (did != NULL)
        len = strlen(did);
    else
        did = es_event_entity_id(ev, &len);
    if (did == NULL || !es_atp_valid_did(did, len))
        return ES_OK; /* not an ATProto event */
    /* A resync's events (live=false) say nothing until the whole snapshot
     * is in, which only the resync knows (chain_resynced): a crash half-way
     * leaves the state before it, and the next resync resumes. */
    const char *live = es_event_meta(ev, "live");
    if (live != NULL && strcmp(live, "false") == 0)
        return ES_OK;
    repo *r = lookup(sc->c, did, len);
    if (r == NULL)
        return ES_ERR_NOMEM;
    es_atp_repo_state before = r->stored;
    const char *type = es_event_event_type(ev);
    if (strcmp(type, "account") == 0)
        fold_account(sc, ev, &r->stored);
    else if (strcmp(type, "identity") != 0)
        fold_rev(ev, &r->stored);
    uint64_t seq = meta_u64(ev, "seq");
    if (seq > r->stored.seq)
        r->stored.seq = seq;
    if (es_event_seq(ev) > r->stored.position)
        r->stored.position = es_event_seq(ev);
    bool desynced = r->view.desynced;
    r->view = r->stored;
    r->view.desynced = desynced;
    if (memcmp(&before, &r->stored, sizeof before) != 0) /* KV has it already otherwise */
        mark_dirty(sc->c, r);
    return ES_OK;
}

/* Reads the recovery point, folds in the stream after it, and makes the
 * stream's end at the start the first recovery point (recorded once the
 * folded states are written). */
static es_status recover(chain *c)
{
    es_checkpoint cp;
    uint64_t from = 0;
    es_status s = es_checkpoint_get(c->cps, c->point_name, &cp);
    if (s == ES_OK) {
        from = cp.position;
        c->point_written = from;
        es_checkpoint_clear(&cp);
    } else if (s != ES_ERR_NOT_FOUND) {
        return s;
    }
    es_store_info info;
    s = es_store_info_get(c->store, &info);
    if (s != ES_OK)
        return s;
    scan sc = {.c = c};
    uint64_t accepted = 0, end = info.last_seq;
    int64_t started = es_cli_monotonic_ms();
    if (info.last_seq > from) {
        es_read_options ro;
        es_read_options_init(&ro);
        ro.after_seq = from;
        ro.up_to_seq = info.last_seq;
        s = es_arena_create(1 << 20, &sc.arena);
        if (s == ES_OK)
            s = es_evolve(c->store, NULL, &ro, fold, &sc, &accepted);
        es_arena_destroy(sc.arena);
    }
    c->st.scanned = sc.events > c->o.max_scan ? c->o.max_scan : sc.events;
    ingest_log_line l;
    ingest_log_begin(&l, s == ES_ERR_LIMIT ? LOG_WARN : LOG_INFO,
                     s == ES_ERR_LIMIT ? "recovery scan stopped at its bound: repository states "
                                         "after it may be missing (replays within the duplicate "
                                         "window are still stored once)"
                                       : "recovery scan");
    ingest_log_str(&l, "point", c->point_name);
    ingest_log_u64(&l, "after_seq", from);
    ingest_log_u64(&l, "up_to_seq", info.last_seq);
    ingest_log_u64(&l, "events", c->st.scanned);
    ingest_log_u64(&l, "repos", c->count);
    ingest_log_i64(&l, "ms", es_cli_monotonic_ms() - started);
    ingest_log_end(&l);
    if (s == ES_ERR_LIMIT) { /* the next start goes on from what was folded */
        end = accepted;
        s = ES_OK;
    }
    if (s == ES_OK)
        c->points[c->npoints++] = (candidate){end, 0};
    return s;
}

/* ---- opening, closing --------------------------------------------------------------- */

static void options_defaults(chain_options *o)
{
    if (o->max_cached == 0)
        o->max_cached = DEFAULT_MAX_CACHED;
    if (o->interval_ms <= 0)
        o->interval_ms = 1000;
    if (o->max_scan == 0)
        o->max_scan = DEFAULT_MAX_SCAN;
}

es_status chain_open(es_store *store, const chain_options *o, chain **out)
{
    *out = NULL;
    chain *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ES_ERR_NOMEM;
    c->o = *o;
    options_defaults(&c->o);
    c->store = store;
    snprintf(c->point_name, sizeof c->point_name, "%s" POINT_SUFFIX, o->name ? o->name : "ingest");
    c->nbuckets = 1024;
    while (c->nbuckets < c->o.max_cached && c->nbuckets < ((size_t)1 << 24))
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    es_status s = c->buckets ? ES_OK : ES_ERR_NOMEM;
    if (s == ES_OK)
        s = es_atp_repos_open(store, &c->repos);
    if (s == ES_OK)
        s = es_checkpoints_open(store, &c->cps);
    if (s == ES_OK)
        s = recover(c);
    if (s == ES_OK && pthread_create(&c->thread, NULL, writer, c) != 0)
        s = es_error(ES_ERR_NOMEM, "cannot start the repository state writer");
    if (s != ES_OK) {
        es_checkpoints_destroy(c->cps);
        es_atp_repos_destroy(c->repos);
        free_map(c);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return s;
    }
    c->last_flush_ms = es_cli_monotonic_ms();
    *out = c;
    return ES_OK;
}

/* Waits for the writer's job, then writes what is dirty on this thread
 * (a few attempts). With everything settled, the stream's end is a
 * recovery point. */
static void final_flush(chain *c, bool all_settled)
{
    pthread_mutex_lock(&c->mu);
    while (c->busy && !c->done)
        pthread_cond_wait(&c->cond, &c->mu);
    pthread_mutex_unlock(&c->mu);
    writer_idle(c, UINT64_MAX);
    for (int i = 0; i < CLOSE_ATTEMPTS; i++) {
        if (!build(c, 0))
            break;
        c->job.has_point = false;
        run_job(c, &c->job);
        /* every unit settled before the stream's end was read: it is a
         * recovery point once the states are written */
        bool ok = all_settled && c->job.read_ok;
        for (size_t k = 0; k < c->job.n; k++)
            ok &= c->job.items[k].s == ES_OK;
        uint64_t end = c->job.last_seq;
        collect(c, UINT64_MAX);
        if (ok && end >= c->point_written &&
            es_checkpoint_advance(c->cps, c->point_name, end, NULL, NULL) == ES_OK)
            c->point_written = end;
        if (c->dirty == NULL)
            break;
    }
}

void chain_close(chain *c, bool all_settled)
{
    if (c == NULL)
        return;
    final_flush(c, all_settled);
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    chain_stats st;
    chain_get_stats(c, &st);
    ingest_log_line l;
    ingest_log_begin(&l, c->dirty ? LOG_ERROR : LOG_INFO,
                     c->dirty ? "repository states not all written" : "repository states written");
    ingest_log_u64(&l, "writes", st.kv_writes);
    ingest_log_u64(&l, "errors", st.kv_errors);
    ingest_log_u64(&l, "recovery_point", c->point_written);
    ingest_log_end(&l);
    free_map(c);
    es_checkpoints_destroy(c->cps);
    es_atp_repos_destroy(c->repos);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void chain_get_stats(chain *c, chain_stats *out)
{
    *out = c->st;
    out->repos_cached = c->count;
    pthread_mutex_lock(&c->mu);
    out->kv_writes = c->kv_writes;
    out->kv_errors += c->kv_errors;
    pthread_mutex_unlock(&c->mu);
}
