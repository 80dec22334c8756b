/* es-atproto-ingest's Prometheus metrics (ingest_metrics.h). Names follow
 * Prometheus' conventions: es_ingest_ prefix, _total for counters, base
 * units (seconds, bytes). */
#include "ingest_metrics.h"

#include "metrics.h"

static void frames_part(es_buf *b, const es_atp_stats *d)
{
    es_prom_family(b, "es_ingest_frames_total", "counter",
                   "Frames decoded and accepted, by kind (refused ones: es_ingest_refused_total).");
    for (int k = 0; k < ES_ATP_KIND_COUNT; k++)
        es_prom_sample(b, "es_ingest_frames_total", "kind", es_atp_kind_name((es_atp_kind)k),
                       (double)d->by_kind[k]);
    es_prom_family(b, "es_ingest_refused_total", "counter",
                   "Frames refused by verification or decoding, by reason.");
    for (int k = 1; k < ES_ATP_ERR_COUNT; k++)
        es_prom_sample(b, "es_ingest_refused_total", "reason",
                       es_atp_error_name((es_atp_error)k), (double)d->errors[k]);
}

static void sink_part(es_buf *b, const es_sink_stats *w, int64_t now_ns)
{
    es_prom_one(b, "es_ingest_appends_total", "counter", "Appends acknowledged by the store.",
                (double)w->appends);
    es_prom_one(b, "es_ingest_events_total", "counter", "Events acknowledged by the store.",
                (double)w->events);
    es_prom_one(b, "es_ingest_duplicate_appends_total", "counter",
                "Appends whose events were all stored before.", (double)w->duplicates);
    es_prom_one(b, "es_ingest_append_retries_total", "counter", "Appends sent again.",
                (double)w->retries);
    es_prom_one(b, "es_ingest_dropped_total", "counter", "Frames whose append was refused for good.",
                (double)w->dropped);
    es_prom_one(b, "es_ingest_inflight_appends", "gauge", "Appends in flight.", (double)w->inflight);
    es_prom_one(b, "es_ingest_held_frames", "gauge", "Frames held until acknowledged.",
                (double)w->held);
    es_prom_one(b, "es_ingest_held_bytes", "gauge", "Bytes of events held until acknowledged.",
                (double)w->bytes_held);
    if (w->has_watermark)
        es_prom_one(b, "es_ingest_cursor", "gauge",
                    "The relay seq everything up to which is stored or settled.",
                    (double)w->watermark);
    if (w->last_time_ns > 0)
        es_prom_one(b, "es_ingest_lag_seconds", "gauge",
                    "Now minus the time of the newest frame stored.",
                    (double)(now_ns - w->last_time_ns) / 1e9);
}

static void chain_part(es_buf *b, const chain_stats *c)
{
    es_prom_family(b, "es_ingest_skipped_total", "counter", "Frames skipped, by reason.");
    es_prom_sample(b, "es_ingest_skipped_total", "reason", "old_rev", (double)c->old_rev);
    es_prom_sample(b, "es_ingest_skipped_total", "reason", "inactive", (double)c->inactive);
    es_prom_sample(b, "es_ingest_skipped_total", "reason", "desynced", (double)c->desynced);
    es_prom_one(b, "es_ingest_chain_breaks_total", "counter",
                "Commits refused for not following the stored one.", (double)c->chain_break);
    es_prom_one(b, "es_ingest_repos_desynced_total", "counter",
                "Repositories marked desynchronized by this run.", (double)c->repos_desynced);
    es_prom_one(b, "es_ingest_repos_cached", "gauge", "Repository chain states in memory.",
                (double)c->repos_cached);
}

static void resyncs_part(es_buf *b, const resyncs_stats *r)
{
    es_prom_one(b, "es_ingest_resyncs_queued_total", "counter",
                "Repositories queued for a resync or backfill.", (double)r->queued_total);
    es_prom_family(b, "es_ingest_resyncs_total", "counter",
                   "Resyncs and backfills finished, by outcome.");
    es_prom_sample(b, "es_ingest_resyncs_total", "outcome", "applied", (double)r->backfill.applied);
    es_prom_sample(b, "es_ingest_resyncs_total", "outcome", "current", (double)r->backfill.current);
    es_prom_sample(b, "es_ingest_resyncs_total", "outcome", "inactive",
                   (double)r->backfill.inactive);
    es_prom_sample(b, "es_ingest_resyncs_total", "outcome", "failed", (double)r->backfill.failed);
    es_prom_one(b, "es_ingest_resyncs_running", "gauge", "Repositories being fetched or applied.",
                (double)r->backfill.running);
    es_prom_one(b, "es_ingest_resyncs_waiting_retry", "gauge",
                "Repositories waiting for their retry.", (double)r->backfill.waiting);
    es_prom_one(b, "es_ingest_resync_records_total", "counter",
                "Records in the repositories applied.", (double)r->backfill.records);
    es_prom_one(b, "es_ingest_live_frames_held", "gauge",
                "Live frames held while their repository is resynced.", (double)r->hold.frames);
    es_prom_one(b, "es_ingest_live_frames_dropped_total", "counter",
                "Held frames dropped (a bound, a retry): the next snapshot covers them.",
                (double)r->hold.dropped);
}

void ingest_metrics_render(es_buf *b, const ingest_metrics_in *in)
{
    frames_part(b, in->dec);
    sink_part(b, in->sink, in->now_ns);
    chain_part(b, in->chain);
    if (in->rs != NULL)
        resyncs_part(b, in->rs);
    es_prom_one(b, "es_ingest_skipped_by_cursor_total", "counter",
                "Frames of a replay that the cursor covers.", (double)in->skipped_by_cursor);
    if (in->tracked >= 0) {
        es_prom_one(b, "es_ingest_tracked_repos", "gauge", "DIDs in the tracked set.",
                    (double)in->tracked);
        es_prom_one(b, "es_ingest_skipped_untracked_total", "counter",
                    "Frames of repositories not tracked (--tracked-only).",
                    (double)in->skipped_untracked);
    }
}
