#define _POSIX_C_SOURCE 200809L
#include "pipeline.h"

#include "clock.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>

void ingest_log_refused(const es_atp_batch *b)
{
    ingest_log_line l;
    ingest_log_begin(&l, LOG_WARN, "frame refused");
    if (b->has_seq)
        ingest_log_u64(&l, "seq", b->seq);
    if (b->did != NULL)
        ingest_log_strn(&l, "did", b->did, b->did_len);
    ingest_log_str(&l, "kind", es_atp_error_name(b->error));
    ingest_log_str(&l, "error", es_last_error());
    ingest_log_end(&l);
}

es_status ingest_run(ingest_source *src, es_atp_decoder *dec, es_arena *arena, ingest_sink_fn sink,
                     void *sink_ctx, volatile sig_atomic_t *stop, ingest_result *result)
{
    int64_t wall = es_cli_monotonic_ns(), cpu = es_cli_cpu_ns();
    es_status s = ES_OK;
    *result = (ingest_result){0};
    while (!*stop) {
        const uint8_t *frame;
        size_t len;
        es_status src_status = ingest_source_next(src, &frame, &len);
        if (src_status != ES_OK) {
            result->source_status = src_status;
            break;
        }
        es_arena_reset(arena);
        es_atp_batch batch;
        if (es_atp_decode(dec, frame, len, arena, &batch) != ES_OK) {
            ingest_log_refused(&batch);
            continue;
        }
        if (batch.kind == ES_ATP_KIND_INFO) {
            ingest_log_line l;
            ingest_log_begin(&l, LOG_WARN, "#info");
            ingest_log_str(&l, "name", batch.name);
            ingest_log_str(&l, "message", batch.message);
            ingest_log_end(&l);
        }
        if ((s = sink(sink_ctx, &batch)) != ES_OK)
            break;
        if (batch.kind == ES_ATP_KIND_ERROR) {
            ingest_log_line l;
            ingest_log_begin(&l, LOG_WARN, "error frame: the stream ends");
            ingest_log_str(&l, "error", batch.name);
            ingest_log_str(&l, "message", batch.message);
            ingest_log_end(&l);
            result->error_frame = true;
            break;
        }
    }
    result->wall_seconds = (double)(es_cli_monotonic_ns() - wall) / 1e9;
    result->cpu_seconds = (double)(es_cli_cpu_ns() - cpu) / 1e9;
    return s;
}

es_status ingest_sink_discard(void *ctx, const es_atp_batch *batch)
{
    (void)ctx;
    (void)batch;
    return ES_OK;
}

static double per_second(uint64_t n, double secs)
{
    return secs > 0 ? (double)n / secs : 0;
}

void ingest_report(FILE *out, const char *source, const es_atp_stats *st, const ingest_result *r)
{
    uint64_t refused = 0;
    for (int k = 0; k < ES_ATP_ERR_COUNT; k++)
        refused += st->errors[k];
    fprintf(out, "source: %s\n", source);
    fprintf(out, "decoded %" PRIu64 " frames (%" PRIu64 " bytes) in %.3f s, %.3f s of CPU\n",
            st->frames, st->bytes, r->wall_seconds, r->cpu_seconds);
    /* Per CPU second too: on a shared machine the wall clock includes waiting
     * for a core, while the loop itself is single-threaded. */
    const double secs[2] = {r->wall_seconds, r->cpu_seconds};
    const char *labels[2] = {"wall clock", "per CPU second"};
    for (int i = 0; i < 2; i++)
        fprintf(out, "  %-15s %.0f frames/s, %.0f ops/s, %.1f MB/s\n", labels[i],
                per_second(st->frames, secs[i]), per_second(st->ops, secs[i]),
                per_second(st->bytes, secs[i]) / 1e6);
    fprintf(out, "frames:");
    for (int k = ES_ATP_KIND_COMMIT; k < ES_ATP_KIND_COUNT; k++)
        fprintf(out, " %s %" PRIu64, es_atp_kind_name((es_atp_kind)k), st->by_kind[k]);
    fprintf(out, ", refused %" PRIu64 "\n", refused);
    fprintf(out,
            "events: %" PRIu64 " from %" PRIu64 " ops (filtered out: %" PRIu64 " ops, %" PRIu64
            " frames); blocks verified: %" PRIu64 "; invalid records kept: %" PRIu64 "\n",
            st->events, st->ops, st->filtered_ops, st->filtered_frames, st->blocks_verified,
            st->invalid_records);
    fprintf(out, "errors:");
    if (refused == 0)
        fprintf(out, " none");
    for (int k = 1; k < ES_ATP_ERR_COUNT; k++)
        if (st->errors[k])
            fprintf(out, " %s %" PRIu64, es_atp_error_name((es_atp_error)k), st->errors[k]);
    fprintf(out, "\n");
}
