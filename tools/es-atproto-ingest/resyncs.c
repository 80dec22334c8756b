/* Resyncs and backfills inside the ingester (resyncs.h). */
#define _POSIX_C_SOURCE 200809L
#include "resyncs.h"

#include <stdlib.h>
#include <string.h>

#include <es/atproto_repos.h>
#include <es/cid.h>

#include "identity.h"
#include "log.h"

/* A repository queued while some of its frames are still in the sink. */
typedef struct waiting {
    struct waiting *next;
    bool force;
    size_t len;
    char did[]; /* len bytes + NUL */
} waiting;

struct resyncs {
    chain *chain;
    backfill *bf;
    hold *hold;
    waiting *waiting;  /* for their frames to settle */
    size_t nwaiting, max_waiting;
    bool in_result;    /* a result is being handled: its desync marks queue nothing */
    uint64_t queued_total, unheld;
    uint64_t listed_current, listed_inactive;
};

/* ---- queueing ------------------------------------------------------------------------ */

static es_status hand_over(resyncs *rs, const char *did, size_t len, bool force)
{
    char rev[ES_ATP_REPO_REV_MAX + 1] = "";
    if (!force)
        chain_known_rev(rs->chain, did, len, rev);
    return backfill_add(rs->bf, did, len, rev);
}

es_status resyncs_queue(resyncs *rs, const char *did, size_t len, bool force)
{
    if (!es_atp_valid_did(did, len))
        return es_error(ES_ERR_INVALID, "'%.*s' is not a DID", (int)(len > 256 ? 256 : len), did);
    if (hold_begin(rs->hold, did, len) != ES_OK && rs->unheld++ == 0) {
        /* Its live frames go on to the sink: the state still ends exact (the
         * snapshot is diffed against what is stored), only "history first"
         * is not kept for it. */
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "too many repositories held: live frames of the next "
                                       "ones are not held during their resync");
        ingest_log_strn(&l, "did", did, len);
        ingest_log_str(&l, "error", es_last_error());
        ingest_log_end(&l);
    }
    rs->queued_total++;
    if (chain_pending(rs->chain, did, len) == 0)
        return hand_over(rs, did, len, force);
    if (rs->nwaiting >= rs->max_waiting)
        return es_error(ES_ERR_LIMIT, "more than %zu repositories waiting to be resynced",
                        rs->max_waiting);
    waiting *w = malloc(sizeof *w + len + 1);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "queueing a resync: out of memory");
    memcpy(w->did, did, len);
    w->did[len] = '\0';
    w->len = len;
    w->force = force;
    w->next = rs->waiting;
    rs->waiting = w;
    rs->nwaiting++;
    return ES_OK;
}

/* The chain state found a repository desynchronized. */
static void on_desynced(void *ctx, const char *did, size_t len)
{
    resyncs *rs = ctx;
    if (rs->in_result)
        return; /* a resync given up marks it: the next run tries again */
    es_status s = resyncs_queue(rs, did, len, true);
    if (s != ES_OK) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "resync not queued");
        ingest_log_strn(&l, "did", did, len);
        ingest_log_str(&l, "error", es_last_error());
        ingest_log_end(&l);
    }
}

static es_status queue_one_desynced(const char *did, size_t did_len, const es_atp_repo_state *st,
                                    void *closure)
{
    return st->desynced ? resyncs_queue(closure, did, did_len, true) : ES_OK;
}

es_status resyncs_queue_desynced(resyncs *rs, es_store *store)
{
    es_atp_repos *repos = NULL;
    es_status s = es_atp_repos_open(store, &repos);
    size_t skipped = 0;
    uint64_t before = rs->queued_total;
    if (s == ES_OK)
        s = es_atp_repos_list(repos, queue_one_desynced, rs, &skipped);
    es_atp_repos_destroy(repos);
    if (s == ES_OK && (rs->queued_total > before || skipped > 0)) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_INFO, "desynchronized repositories queued");
        ingest_log_u64(&l, "repos", rs->queued_total - before);
        ingest_log_u64(&l, "unreadable_states", skipped);
        ingest_log_end(&l);
    }
    return s;
}

es_status resyncs_listed(void *ctx, const listing_repo *r)
{
    resyncs *rs = ctx;
    if (!r->active) { /* recorded: its commits are skipped while so */
        rs->listed_inactive++;
        chain_resynced(rs->chain, r->did, r->did_len, NULL, NULL, 0, 0,
                       r->status ? r->status : "inactive");
        return ES_OK;
    }
    char rev[ES_ATP_REPO_REV_MAX + 1];
    chain_known_rev(rs->chain, r->did, r->did_len, rev);
    if (rev[0] && r->rev[0] && strcmp(r->rev, rev) <= 0) {
        rs->listed_current++; /* the store has that rev: no fetch */
        return ES_OK;
    }
    es_status s = resyncs_queue(rs, r->did, r->did_len, false);
    if (s == ES_ERR_INVALID) { /* a host listing garbage: skipped, said */
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "listed repository skipped");
        ingest_log_str(&l, "error", es_last_error());
        ingest_log_end(&l);
        return ES_OK;
    }
    return s;
}

/* Repositories whose frames in the sink have settled go to the workers. */
static void hand_over_settled(resyncs *rs)
{
    for (waiting **p = &rs->waiting; *p != NULL;) {
        waiting *w = *p;
        if (chain_pending(rs->chain, w->did, w->len) > 0) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        rs->nwaiting--;
        if (hand_over(rs, w->did, w->len, w->force) != ES_OK) {
            ingest_log_line l;
            ingest_log_begin(&l, LOG_WARN, "resync not queued");
            ingest_log_strn(&l, "did", w->did, w->len);
            ingest_log_str(&l, "error", es_last_error());
            ingest_log_end(&l);
            hold_drop(rs->hold, w->did, w->len);
            hold_release(rs->hold, w->did, w->len);
        }
        free(w);
    }
}

/* ---- results ---------------------------------------------------------------------------- */

static void log_applied(const backfill_result *res)
{
    char data[ES_CID_STRING_MAX] = "";
    es_cid_to_string(res->data, res->data_len, data, sizeof data);
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, "repository backfilled");
    ingest_log_strn(&l, "did", res->did, res->did_len);
    ingest_log_str(&l, "rev", res->rev);
    ingest_log_str(&l, "data", data);
    ingest_log_u64(&l, "records", res->records);
    ingest_log_u64(&l, "created", res->created);
    ingest_log_u64(&l, "updated", res->updated);
    ingest_log_u64(&l, "deleted", res->deleted);
    ingest_log_u64(&l, "attempts", res->attempts);
    ingest_log_end(&l);
}

static void log_other(const backfill_result *res)
{
    bool bad = res->kind == BACKFILL_FAILED || res->kind == BACKFILL_RETRYING;
    ingest_log_line l;
    ingest_log_begin(&l, bad ? LOG_WARN : LOG_INFO,
                     res->kind == BACKFILL_FAILED     ? "repository not backfilled"
                     : res->kind == BACKFILL_RETRYING ? "repository fetch failed, retrying"
                     : res->kind == BACKFILL_INACTIVE ? "repository not active"
                                                      : "repository already current");
    ingest_log_strn(&l, "did", res->did, res->did_len);
    if (res->kind == BACKFILL_CURRENT)
        ingest_log_str(&l, "rev", res->rev);
    if (res->kind == BACKFILL_INACTIVE)
        ingest_log_str(&l, "status", res->status);
    if (bad) {
        ingest_log_str(&l, "reason", res->reason);
        ingest_log_str(&l, "error", res->error);
    }
    if (res->kind == BACKFILL_RETRYING)
        ingest_log_i64(&l, "retry_in_ms", res->retry_in_ms);
    ingest_log_u64(&l, "attempts", res->attempts);
    ingest_log_end(&l);
}

/* The snapshot is in (or the repository needs none): its held frames go
 * out; frames dropped meanwhile need a newer snapshot. */
static void release(resyncs *rs, const backfill_result *res)
{
    if (hold_release(rs->hold, res->did, res->did_len))
        return;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, "live frames were dropped during the resync: resyncing again");
    ingest_log_strn(&l, "did", res->did, res->did_len);
    ingest_log_end(&l);
    if (resyncs_queue(rs, res->did, res->did_len, true) != ES_OK)
        on_desynced(rs, res->did, res->did_len); /* logs why */
}

/* One repository's outcome: the chain state follows (the workers never
 * write it), then its held frames. */
static void on_result(void *ctx, const backfill_result *res)
{
    resyncs *rs = ctx;
    rs->in_result = true;
    switch (res->kind) {
    case BACKFILL_APPLIED:
        chain_resynced(rs->chain, res->did, res->did_len, res->rev, res->data, res->data_len,
                       res->last_seq, NULL);
        log_applied(res);
        release(rs, res);
        break;
    case BACKFILL_INACTIVE:
        chain_resynced(rs->chain, res->did, res->did_len, NULL, NULL, 0, 0, res->status);
        log_other(res);
        release(rs, res);
        break;
    case BACKFILL_CURRENT:
        log_other(res);
        release(rs, res);
        break;
    case BACKFILL_RETRYING:
        /* Its frames would wait the whole backoff (up to an hour) and keep
         * the cursor back: the snapshot that comes then covers them. */
        hold_drop(rs->hold, res->did, res->did_len);
        log_other(res);
        break;
    case BACKFILL_FAILED:
        /* Its live commits are not stored until a resync succeeds (the next
         * run tries again: it queues every repository marked so). */
        chain_mark_desynced(rs->chain, res->did, res->did_len, 0, res->reason);
        hold_drop(rs->hold, res->did, res->did_len);
        hold_release(rs->hold, res->did, res->did_len);
        log_other(res);
        break;
    }
    rs->in_result = false;
}

/* ---- frames ------------------------------------------------------------------------------ */

bool resyncs_divert(resyncs *rs, const es_atp_batch *b, const uint8_t *frame, size_t len)
{
    if (b->did == NULL || b->did_len == 0)
        return false;
    hold_state st = hold_get(rs->hold, b->did, b->did_len);
    if (st == HOLD_NONE)
        return false;
    es_status s = hold_push(rs->hold, b->did, b->did_len, b->has_seq ? b->seq : 0, frame, len);
    if (s == ES_ERR_LIMIT && st != HOLD_OVERFLOWED) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "too many live frames held for a repository being "
                                       "resynced: dropped, another resync follows");
        ingest_log_strn(&l, "did", b->did, b->did_len);
        ingest_log_u64(&l, "seq", b->has_seq ? b->seq : 0);
        ingest_log_end(&l);
    }
    return s == ES_OK || s == ES_ERR_LIMIT;
}

void resyncs_tick(resyncs *rs, resyncs_release_fn fn, void *ctx)
{
    if (rs->waiting != NULL)
        hand_over_settled(rs);
    backfill_poll(rs->bf, on_result, rs);
    const char *did;
    size_t did_len, len;
    uint64_t seq;
    const uint8_t *frame;
    while (hold_peek(rs->hold, &did, &did_len, &seq, &frame, &len)) {
        resyncs_released r = fn(ctx, frame, len);
        if (r == RESYNCS_FULL)
            return;
        hold_pop(rs->hold, r == RESYNCS_OFFERED);
    }
}

void resyncs_settled(resyncs *rs, const char *did, size_t len, uint64_t position)
{
    hold_settled(rs->hold, did, len, position);
}

bool resyncs_cursor_limit(resyncs *rs, uint64_t *max)
{
    uint64_t min;
    if (!hold_min_seq(rs->hold, &min))
        return false;
    *max = min - 1;
    return true;
}

bool resyncs_busy(resyncs *rs)
{
    hold_stats h;
    hold_get_stats(rs->hold, &h);
    return rs->waiting != NULL || backfill_working(rs->bf) || h.frames > 0 || h.unsettled > 0;
}

bool resyncs_idle(resyncs *rs)
{
    return !resyncs_busy(rs) && backfill_idle(rs->bf);
}

void resyncs_get_stats(resyncs *rs, resyncs_stats *out)
{
    out->queued_total = rs->queued_total;
    out->waiting_settle = rs->nwaiting;
    out->listed_current = rs->listed_current;
    out->listed_inactive = rs->listed_inactive;
    backfill_get_stats(rs->bf, &out->backfill);
    hold_get_stats(rs->hold, &out->hold);
}

/* ---- the handle ---------------------------------------------------------------------------- */

static bool env_is_1(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && strcmp(v, "1") == 0;
}

es_status resyncs_open(const ingest_config *c, es_store *store, es_atp_identity *identity,
                       chain *ch, resyncs **out)
{
    *out = NULL;
    if (identity == NULL)
        return es_error(ES_ERR_INVALID, "a resync verifies what it fetches: not with --no-verify");
    resyncs *rs = calloc(1, sizeof *rs);
    if (rs == NULL)
        return es_error(ES_ERR_NOMEM, "starting the resyncs: out of memory");
    rs->chain = ch;
    backfill_options o;
    backfill_options_init(&o);
    o.store = store;
    o.identity = identity;
    ingest_xrpc_options(c, &o.xrpc);
    o.parallelism = c->backfill_parallelism;
    o.retry_min_ms = c->backfill_retry_min_ms;
    o.retry_max_ms = c->backfill_retry_max_ms;
    o.max_attempts = c->backfill_attempts;
    /* the crash tests: small batches, and a kill -9 after some of them */
    const char *batch = getenv("ES_INGEST_TEST_RESYNC_BATCH");
    const char *crash = getenv("ES_INGEST_TEST_EXIT_AFTER_BATCHES");
    o.batch_max = batch ? (size_t)strtoull(batch, NULL, 10) : 0;
    o.exit_after_batches = crash ? strtoull(crash, NULL, 10) : 0;
    /* bench_backfill's comparison: the former atomic batches */
    o.atomic_batches = env_is_1("ES_INGEST_TEST_RESYNC_ATOMIC");
    /* the real repo.car's test: its author's DID document is unknown */
    if ((o.skip_signature = env_is_1("ES_INGEST_TEST_SKIP_REPO_SIGNATURE")))
        ingest_log_msg(LOG_WARN,
                       "ES_INGEST_TEST_SKIP_REPO_SIGNATURE: the commit signatures of fetched "
                       "repositories are NOT checked (tests only)",
                       NULL);
    rs->max_waiting = o.max_queued;
    hold_options ho;
    hold_options_init(&ho);
    ho.max_repos = c->max_held_repos ? c->max_held_repos : ho.max_repos;
    ho.max_frames = c->max_held_frames ? c->max_held_frames : ho.max_frames;
    ho.max_bytes = c->max_held_bytes ? c->max_held_bytes : ho.max_bytes;
    es_status s = hold_create(&ho, &rs->hold);
    if (s == ES_OK)
        s = backfill_create(&o, &rs->bf);
    if (s != ES_OK) {
        resyncs_close(rs);
        return s;
    }
    chain_on_desynced(ch, on_desynced, rs);
    *out = rs;
    return ES_OK;
}

void resyncs_close(resyncs *rs)
{
    if (rs == NULL)
        return;
    chain_on_desynced(rs->chain, NULL, NULL);
    backfill_destroy(rs->bf);
    hold_destroy(rs->hold);
    for (waiting *w = rs->waiting; w != NULL;) {
        waiting *next = w->next;
        free(w);
        w = next;
    }
    free(rs);
}
