#define _POSIX_C_SOURCE 200809L
#include "pipeline.h"

#include "clock.h"
#include "log.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

void ingest_log_refused(const es_atp_batch *b, const char *error)
{
    if (!ingest_log_admit(es_atp_error_name(b->error)))
        return;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_WARN, "frame refused");
    if (b->has_seq)
        ingest_log_u64(&l, "seq", b->seq);
    if (b->did != NULL)
        ingest_log_strn(&l, "did", b->did, b->did_len);
    ingest_log_str(&l, "kind", es_atp_error_name(b->error));
    ingest_log_str(&l, "error", error);
    ingest_log_end(&l);
}

void ingest_log_notice(const es_atp_batch *b)
{
    if (b->kind != ES_ATP_KIND_INFO && b->kind != ES_ATP_KIND_ERROR)
        return;
    bool info = b->kind == ES_ATP_KIND_INFO;
    if (info && !ingest_log_admit("info"))
        return; /* an error frame ends the stream: always told */
    ingest_log_line l;
    ingest_log_begin(&l, LOG_WARN, info ? "#info" : "error frame: the stream ends");
    ingest_log_str(&l, info ? "name" : "error", b->name);
    ingest_log_str(&l, "message", b->message);
    ingest_log_end(&l);
}

/* What handing the oldest frame to the sink did. */
typedef enum take_step { TAKE_NONE, TAKE_DONE, TAKE_END } take_step;

typedef struct run {
    ingest_workers *w;
    ingest_sink_fn sink;
    void *sink_ctx;
    ingest_result *result;
    es_status status; /* the sink's failure */
} run;

/* The oldest frame, once decoded (waiting up to wait_ms for it), to the sink. */
static take_step take_oldest(run *r, int64_t wait_ms)
{
    const ingest_decoded *d = ingest_workers_head(r->w, wait_ms);
    if (d == NULL)
        return TAKE_NONE;
    ingest_stats_add(&r->result->stats, &d->delta);
    take_step step = TAKE_DONE;
    if (d->status != ES_OK) {
        ingest_log_refused(&d->batch, d->error);
    } else {
        ingest_log_notice(&d->batch);
        if ((r->status = r->sink(r->sink_ctx, &d->batch)) != ES_OK)
            step = TAKE_END;
        else if (d->batch.kind == ES_ATP_KIND_ERROR) {
            r->result->error_frame = true;
            step = TAKE_END;
        }
    }
    ingest_workers_release(r->w);
    return step;
}

/* Reads the source into the decoders, taking what is decoded as it goes.
 * False when the sink failed or an error frame came. */
static bool feed(run *r, ingest_source *src, volatile sig_atomic_t *stop)
{
    while (!*stop) {
        const uint8_t *frame;
        size_t len;
        es_status s = ingest_source_next(src, &frame, &len);
        if (s != ES_OK) {
            r->result->source_status = s;
            return true;
        }
        /* every slot in use: the oldest half is waited for (order is the
         * contract; half, for one wake-up per many frames), then taken */
        while ((s = ingest_workers_submit(r->w, frame, len)) == ES_ERR_AGAIN) {
            ingest_workers_wait(r->w, (ingest_workers_held(r->w) + 1) / 2, -1);
            for (take_step t; (t = take_oldest(r, 0)) != TAKE_NONE;)
                if (t == TAKE_END)
                    return false;
        }
        if (s != ES_OK) {
            r->status = s; /* out of memory */
            return false;
        }
        for (take_step t; (t = take_oldest(r, 0)) != TAKE_NONE;)
            if (t == TAKE_END)
                return false;
    }
    return true;
}

es_status ingest_run(ingest_source *src, const ingest_workers_options *decoding,
                     ingest_sink_fn sink, void *sink_ctx, volatile sig_atomic_t *stop,
                     ingest_result *result)
{
    *result = (ingest_result){0};
    run r = {.sink = sink, .sink_ctx = sink_ctx, .result = result, .status = ES_OK};
    es_status s = ingest_workers_create(decoding, &r.w);
    if (s != ES_OK)
        return s;
    int64_t wall = es_cli_monotonic_ns(), cpu = es_cli_cpu_ns();
    if (feed(&r, src, stop))
        while (ingest_workers_held(r.w) > 0 && take_oldest(&r, -1) != TAKE_END)
            ; /* what the decoders hold is finished */
    result->wall_seconds = (double)(es_cli_monotonic_ns() - wall) / 1e9;
    result->cpu_seconds = (double)(es_cli_cpu_ns() - cpu) / 1e9;
    ingest_workers_destroy(r.w);
    return r.status;
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
    ingest_log_summarize(true); /* what the log left out, before the exact counts */
    uint64_t refused = 0;
    for (int k = 0; k < ES_ATP_ERR_COUNT; k++)
        refused += st->errors[k];
    fprintf(out, "source: %s\n", source);
    fprintf(out, "decoded %" PRIu64 " frames (%" PRIu64 " bytes) in %.3f s, %.3f s of CPU\n",
            st->frames, st->bytes, r->wall_seconds, r->cpu_seconds);
    /* Per CPU second too (the CPU time of every thread of the process): on a
     * shared machine the wall clock includes waiting for a core, and with
     * decoding threads it is the work per core. */
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
