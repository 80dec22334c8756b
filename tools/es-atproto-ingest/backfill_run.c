/* es-atproto-ingest --backfill without a live source: the ingester (its
 * store, identity, chain state, resyncs and listing) driven by this thread
 * until every repository is done, with progress on a TTY and stats lines. */
#define _POSIX_C_SOURCE 200809L
#include "clock.h"
#include "ingest.h"
#include "listing.h"
#include "log.h"
#include "progress.h"
#include "resyncs.h"

#define POLL_MS 100

typedef struct run {
    const ingest_config *cfg;
    ingester *g;
    resyncs *rs;   /* the ingester's: the workers, and what follows their results */
    listing *list; /* the ingester's: --backfill-all, --collection-signal; NULL: none */
    int64_t started_ms, last_stats_ms;
} run;

static void stats_line(run *r, const char *msg)
{
    resyncs_stats rst;
    resyncs_get_stats(r->rs, &rst);
    const backfill_stats st = rst.backfill;
    double secs = (double)(es_cli_monotonic_ms() - r->started_ms) / 1000.0;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, msg);
    ingest_log_u64(&l, "repos", rst.queued_total);
    if (r->list != NULL) {
        listing_stats ls;
        listing_get_stats(r->list, &ls);
        ingest_log_u64(&l, "listed", ls.listed);
        ingest_log_u64(&l, "listed_current", rst.listed_current);
        ingest_log_u64(&l, "listed_inactive", rst.listed_inactive);
        ingest_log_u64(&l, "pages", ls.pages);
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

/* Polls the workers until every repository is done (or a signal). */
static void drive(run *r, volatile sig_atomic_t *stop)
{
    es_progress p;
    resyncs_stats rst;
    resyncs_get_stats(r->rs, &rst);
    es_progress_start(&p, "backfill", r->list == NULL ? rst.queued_total : 0,
                      !ingest_log_quiet());
    while (!*stop && ((r->list != NULL && !listing_done(r->list)) || !resyncs_idle(r->rs))) {
        resyncs_get_stats(r->rs, &rst);
        const backfill_stats st = rst.backfill;
        uint64_t done = st.applied + st.current + st.inactive + st.failed;
        es_progress_update(&p, done, done);
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
    r.rs = ingester_resyncs(r.g);
    r.list = ingester_listing(r.g);
    r.started_ms = r.last_stats_ms = es_cli_monotonic_ms();
    if (r.rs == NULL) /* main.c refuses --no-verify and --no-resync with --backfill */
        code = es_cli_fail(es_error(ES_ERR_INVALID, "--backfill verifies what it fetches"),
                           "starting the backfill");
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
    ingester_tick(r.g); /* hands the chain states to the writer; close writes them */
    if (code != ES_EXIT_SERVER && !cfg->exit_at_end && !*stop) {
        ingest_log_msg(LOG_INFO, "backfill done; waiting for SIGINT or SIGTERM", NULL);
        while (!*stop)
            es_cli_sleep_ms(POLL_MS * 5);
    }
    ingester_close(r.g);
    return code;
}
