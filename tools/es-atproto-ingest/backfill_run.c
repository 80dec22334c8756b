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
#include "resyncs.h"

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
    resyncs *rs; /* the ingester's: the workers, and what follows their results */
    lister list;
    uint64_t queued; /* repositories the listing queued */
    int64_t started_ms, last_stats_ms;
} run;

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
    es_status s = resyncs_queue(r->rs, repo->did, repo->did_len, false);
    r->queued += s == ES_OK;
    return s;
}

static es_status on_listed_did(void *ctx, const char *did, size_t len)
{
    run *r = ctx;
    r->list.listed++;
    es_status s = resyncs_queue(r->rs, did, len, false);
    r->queued += s == ES_OK;
    return s;
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

static void stats_line(run *r, const char *msg)
{
    resyncs_stats rst;
    resyncs_get_stats(r->rs, &rst);
    const backfill_stats st = rst.backfill;
    double secs = (double)(es_cli_monotonic_ms() - r->started_ms) / 1000.0;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, msg);
    ingest_log_u64(&l, "repos", rst.queued_total);
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

static es_status start(run *r)
{
    const ingest_config *c = r->cfg;
    if ((r->rs = ingester_resyncs(r->g)) == NULL)
        return es_error(ES_ERR_INVALID, "--backfill verifies what it fetches: not with --no-verify");
    bool listing = c->backfill_all || c->collection_signal != NULL;
    r->list.done = !listing;
    if (!listing)
        return ES_OK;
    es_atp_xrpc_options xo;
    es_atp_xrpc_options_init(&xo);
    xo.timeout_ms = c->repo_fetch_timeout_ms;
    const char *insecure = getenv(INGEST_TEST_INSECURE_ENV);
    xo.allow_insecure = insecure != NULL && strcmp(insecure, "1") == 0;
    xo.max_pages = 1; /* a page per turn: the queue stays short */
    return es_atp_xrpc_create(&xo, &r->list.xrpc);
}

/* Polls the workers until every repository is done (or a signal). */
static void drive(run *r, volatile sig_atomic_t *stop)
{
    es_progress p;
    resyncs_stats rst;
    resyncs_get_stats(r->rs, &rst);
    es_progress_start(&p, "backfill", r->list.done ? rst.queued_total : 0, !ingest_log_quiet());
    while (!*stop && (!r->list.done || !resyncs_idle(r->rs))) {
        resyncs_get_stats(r->rs, &rst);
        const backfill_stats st = rst.backfill;
        uint64_t done = st.applied + st.current + st.inactive + st.failed;
        es_progress_update(&p, done, done);
        if (!r->list.done && st.queued < LIST_AHEAD && es_cli_monotonic_ms() >= r->list.next_ms)
            list_page(r);
        es_cli_sleep_ms(POLL_MS);
        ingester_tick(r->g); /* the workers' results, the chain state's writes */
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
        ingester_tick(r.g);
        stats_line(&r, "backfill done");
        resyncs_stats rst;
        resyncs_get_stats(r.rs, &rst);
        if (rst.backfill.failed > 0 && !*stop)
            code = INGEST_EXIT_BACKFILL;
    }
    es_atp_xrpc_destroy(r.list.xrpc);
    ingester_tick(r.g); /* hands the chain states to the writer; close writes them */
    if (code != ES_EXIT_SERVER && !cfg->exit_at_end && !*stop) {
        ingest_log_msg(LOG_INFO, "backfill done; waiting for SIGINT or SIGTERM", NULL);
        while (!*stop)
            es_cli_sleep_ms(POLL_MS * 5);
    }
    ingester_close(r.g);
    return code;
}
