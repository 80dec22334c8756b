/* es-atproto-ingest --backfill without a live source: the ingester's store,
 * identity and chain state, the backfill workers (backfill.h), and this
 * thread handing their outcomes to the chain state and the log. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <es/cid.h>

#include <es/atproto_repos.h>

#include "backfill.h"
#include "chain.h"
#include "clock.h"
#include "identity.h"
#include "ingest.h"
#include "log.h"
#include "progress.h"

#define POLL_MS    100
#define LIST_AHEAD 10000 /* DIDs queued before the listing reads its next page */

/* --backfill-all / --collection-signal: the host's listing, a page at a time. */
typedef struct lister {
    es_atp_xrpc *xrpc;
    char cursor[ES_ATP_XRPC_CURSOR_MAX + 1];
    bool done;
    unsigned failures;      /* in a row: the next page waits failures seconds (<= 60) */
    int64_t next_ms;        /* not before */
    uint64_t pages, listed, current, inactive;
} lister;

typedef struct run {
    const ingest_config *cfg;
    ingester *g;
    chain *chain;
    backfill *bf;
    lister list;
    uint64_t queued; /* DIDs handed to the workers */
    int64_t started_ms, last_stats_ms;
} run;

static es_status queue_did(void *ctx, const char *did, size_t len)
{
    run *r = ctx;
    char rev[ES_ATP_REPO_REV_MAX + 1];
    chain_known_rev(r->chain, did, len, rev);
    es_status s = backfill_add(r->bf, did, len, rev);
    r->queued += s == ES_OK;
    return s;
}

/* ---- the host's listing ------------------------------------------------------------- */

/* A listed repository: skipped when the chain already has its rev, marked
 * when the host says it is not active, else queued. */
static es_status on_listed(void *ctx, const es_atp_xrpc_repo *repo)
{
    run *r = ctx;
    r->list.listed++;
    if (!repo->active) {
        r->list.inactive++;
        chain_resynced(r->chain, repo->did, repo->did_len, NULL, NULL, 0, 0,
                       repo->status ? repo->status : "inactive");
        return ES_OK;
    }
    char rev[ES_ATP_REPO_REV_MAX + 1];
    chain_known_rev(r->chain, repo->did, repo->did_len, rev);
    if (rev[0] && strcmp(repo->rev, rev) <= 0) {
        r->list.current++;
        return ES_OK;
    }
    es_status s = backfill_add(r->bf, repo->did, repo->did_len, rev);
    r->queued += s == ES_OK;
    return s;
}

static es_status on_listed_did(void *ctx, const char *did, size_t len)
{
    run *r = ctx;
    r->list.listed++;
    return queue_did(r, did, len);
}

/* One page of the listing, when the queue has room for it. */
static void list_page(run *r)
{
    const ingest_config *c = r->cfg;
    es_atp_xrpc_result res;
    es_status s = c->collection_signal != NULL
                      ? es_atp_xrpc_list_repos_by_collection(r->list.xrpc, c->backfill_host,
                                                             c->collection_signal, r->list.cursor,
                                                             on_listed_did, r, &res)
                      : es_atp_xrpc_list_repos(r->list.xrpc, c->backfill_host, r->list.cursor,
                                               on_listed, r, &res);
    r->list.pages += res.pages;
    memcpy(r->list.cursor, res.cursor, sizeof r->list.cursor);
    if (s == ES_OK && res.cursor[0] == '\0')
        r->list.done = true;
    r->list.failures = s == ES_OK ? 0 : r->list.failures + 1;
    if (s == ES_OK)
        return;
    if (s == ES_ERR_AGAIN || s == ES_ERR_SERVER || s == ES_ERR_TIMEOUT || s == ES_ERR_CONNECTION) {
        int64_t wait = res.retry_after_ms > 0 ? res.retry_after_ms
                                              : 1000 * (int64_t)(r->list.failures < 60
                                                                     ? r->list.failures
                                                                     : 60);
        r->list.next_ms = es_cli_monotonic_ms() + wait;
        return; /* the next turn goes on from the cursor */
    }
    ingest_log_line l;
    ingest_log_begin(&l, LOG_ERROR, "listing the repositories failed; the backfill goes on "
                                    "with what was listed");
    ingest_log_str(&l, "host", c->backfill_host);
    ingest_log_str(&l, "error", es_last_error());
    ingest_log_end(&l);
    r->list.done = true;
}

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
    bool failed = res->kind == BACKFILL_FAILED;
    ingest_log_line l;
    ingest_log_begin(&l, failed ? LOG_WARN : LOG_INFO,
                     failed                              ? "repository not backfilled"
                     : res->kind == BACKFILL_INACTIVE    ? "repository not active"
                                                         : "repository already current");
    ingest_log_strn(&l, "did", res->did, res->did_len);
    if (res->kind == BACKFILL_CURRENT)
        ingest_log_str(&l, "rev", res->rev);
    if (res->kind == BACKFILL_INACTIVE)
        ingest_log_str(&l, "status", res->status);
    if (failed) {
        ingest_log_str(&l, "reason", res->reason);
        ingest_log_str(&l, "error", res->error);
    }
    ingest_log_u64(&l, "attempts", res->attempts);
    ingest_log_end(&l);
}

/* One repository done: the chain state follows (the workers never write
 * it), and the log says what happened. */
static void on_result(void *ctx, const backfill_result *res)
{
    run *r = ctx;
    switch (res->kind) {
    case BACKFILL_APPLIED:
        chain_resynced(r->chain, res->did, res->did_len, res->rev, res->data, res->data_len,
                       res->last_seq, NULL);
        log_applied(res);
        return;
    case BACKFILL_INACTIVE:
        chain_resynced(r->chain, res->did, res->did_len, NULL, NULL, 0, 0, res->status);
        break;
    case BACKFILL_FAILED:
        /* Its live commits are not stored until a resync succeeds. */
        chain_mark_desynced(r->chain, res->did, res->did_len, 0, res->reason);
        break;
    case BACKFILL_CURRENT: break;
    }
    log_other(res);
}

static void stats_line(run *r, const char *msg)
{
    backfill_stats st;
    backfill_get_stats(r->bf, &st);
    double secs = (double)(es_cli_monotonic_ms() - r->started_ms) / 1000.0;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, msg);
    ingest_log_u64(&l, "repos", r->queued);
    if (r->list.xrpc != NULL) {
        ingest_log_u64(&l, "listed", r->list.listed);
        ingest_log_u64(&l, "listed_current", r->list.current);
        ingest_log_u64(&l, "listed_inactive", r->list.inactive);
        ingest_log_u64(&l, "pages", r->list.pages);
    }
    ingest_log_u64(&l, "applied", st.applied);
    ingest_log_u64(&l, "current", st.current);
    ingest_log_u64(&l, "inactive", st.inactive);
    ingest_log_u64(&l, "failed", st.failed);
    ingest_log_u64(&l, "queued", st.queued);
    ingest_log_u64(&l, "running", st.running);
    ingest_log_u64(&l, "waiting_retry", st.waiting);
    ingest_log_u64(&l, "retries", st.retries);
    ingest_log_u64(&l, "records", st.records);
    ingest_log_u64(&l, "events", st.events);
    ingest_log_u64(&l, "bytes", st.bytes);
    ingest_log_f64(&l, "seconds", secs, 3);
    ingest_log_f64(&l, "records_per_s", secs > 0 ? (double)st.records / secs : 0, 0);
    ingest_log_end(&l);
}

/* A desynchronized repository: fetched and applied whatever its rev (the
 * stored events may have drifted from the state it claims), which also
 * clears the mark. */
static es_status queue_one_desynced(const char *did, size_t did_len, const es_atp_repo_state *st,
                                    void *closure)
{
    run *r = closure;
    if (!st->desynced)
        return ES_OK;
    es_status s = backfill_add(r->bf, did, did_len, NULL);
    r->queued += s == ES_OK;
    return s;
}

/* --resync-desynced: every repository the store's chain states mark. */
static es_status queue_desynced(run *r)
{
    es_atp_repos *repos = NULL;
    es_status s = es_atp_repos_open(ingester_store(r->g), &repos);
    size_t skipped = 0;
    uint64_t before = r->queued;
    if (s == ES_OK)
        s = es_atp_repos_list(repos, queue_one_desynced, r, &skipped);
    es_atp_repos_destroy(repos);
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, "desynchronized repositories queued");
    ingest_log_u64(&l, "repos", r->queued - before);
    ingest_log_u64(&l, "unreadable_states", skipped);
    ingest_log_end(&l);
    return s;
}

static bool env_is_1(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && strcmp(v, "1") == 0;
}

static es_status start(run *r)
{
    const ingest_config *c = r->cfg;
    backfill_options o;
    backfill_options_init(&o);
    o.store = ingester_store(r->g);
    o.identity = ingester_identity(r->g);
    o.xrpc.timeout_ms = c->repo_fetch_timeout_ms;
    o.xrpc.allow_insecure = env_is_1(INGEST_TEST_INSECURE_ENV);
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
    if (o.identity == NULL)
        return es_error(ES_ERR_INVALID, "--backfill verifies what it fetches: not with --no-verify");
    es_status s = backfill_create(&o, &r->bf);
    bool listing = c->backfill_all || c->collection_signal != NULL;
    r->list.done = !listing;
    if (s == ES_OK && listing) {
        es_atp_xrpc_options xo = o.xrpc;
        xo.max_pages = 1; /* a page per turn: the queue stays short */
        s = es_atp_xrpc_create(&xo, &r->list.xrpc);
    }
    if (s == ES_OK && c->resync_desynced)
        s = queue_desynced(r);
    if (s == ES_OK && c->backfill != NULL)
        s = es_atp_dids_each(c->backfill, false, queue_did, r);
    if (s == ES_OK && c->backfill_file != NULL)
        s = es_atp_dids_each(c->backfill_file, true, queue_did, r);
    return s;
}

/* Polls the workers until every repository is done (or a signal). */
static void drive(run *r, volatile sig_atomic_t *stop)
{
    es_progress p;
    es_progress_start(&p, "backfill", r->list.done ? r->queued : 0, !ingest_log_quiet());
    while (!*stop && (!r->list.done || !backfill_idle(r->bf))) {
        backfill_stats st;
        backfill_get_stats(r->bf, &st);
        uint64_t done = st.applied + st.current + st.inactive + st.failed;
        es_progress_update(&p, done, done);
        if (!r->list.done && st.queued < LIST_AHEAD && es_cli_monotonic_ms() >= r->list.next_ms)
            list_page(r);
        es_cli_sleep_ms(POLL_MS);
        backfill_poll(r->bf, on_result, r);
        ingester_tick(r->g); /* the chain state's writes */
        int64_t now = es_cli_monotonic_ms();
        if (r->cfg->stats_interval_ms > 0 && now - r->last_stats_ms >= r->cfg->stats_interval_ms) {
            stats_line(r, "backfill");
            r->last_stats_ms = now;
        }
    }
    es_progress_finish(&p);
}

int ingest_backfill(const ingest_config *cfg, volatile sig_atomic_t *stop)
{
    run r = {.cfg = cfg};
    int code = ingester_open(cfg, "backfill", stop, &r.g);
    if (code != ES_EXIT_OK)
        return code;
    r.chain = ingester_chain(r.g);
    r.started_ms = r.last_stats_ms = es_cli_monotonic_ms();
    es_status s = start(&r);
    if (s != ES_OK)
        code = es_cli_fail(s, "starting the backfill");
    else
        drive(&r, stop);
    if (code == ES_EXIT_OK) {
        backfill_poll(r.bf, on_result, &r);
        stats_line(&r, "backfill done");
        backfill_stats st;
        backfill_get_stats(r.bf, &st);
        if (st.failed > 0 && !*stop)
            code = INGEST_EXIT_BACKFILL;
    }
    backfill_destroy(r.bf); /* stops the workers; a repository cut short resumes next time */
    es_atp_xrpc_destroy(r.list.xrpc);
    ingester_tick(r.g);     /* hands the chain states to the writer; close writes them */
    if (code != ES_EXIT_SERVER && !cfg->exit_at_end && !*stop) {
        ingest_log_msg(LOG_INFO, "backfill done; waiting for SIGINT or SIGTERM", NULL);
        while (!*stop)
            es_cli_sleep_ms(POLL_MS * 5);
    }
    ingester_close(r.g);
    return code;
}
