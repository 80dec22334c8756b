/* The dry-run pipeline: frames from a source are decoded, verified and mapped
 * (es_atp_decode, on the decoding threads of workers.h), and each resulting
 * batch is handed to a sink in source order. The dry-run sink drops batches
 * after counting them. Also the log lines the live ingester shares. */
#ifndef ES_INGEST_PIPELINE_H
#define ES_INGEST_PIPELINE_H

#include <signal.h>
#include <stdio.h>
#include <stdbool.h>

#include <es/atproto.h>

#include "source.h"
#include "workers.h"

/* Receives each batch (valid until the call returns; copy or finish with it
 * before returning). A non-OK status stops the pipeline. */
typedef es_status (*ingest_sink_fn)(void *ctx, const es_atp_batch *batch);

typedef struct ingest_result {
    double wall_seconds;     /* spent in the loop */
    double cpu_seconds;      /* process CPU time in the loop */
    bool error_frame;        /* the stream ended with an error frame (op = -1) */
    es_status source_status; /* ES_ERR_NOT_FOUND at a clean end */
    es_atp_stats stats;      /* the decoders' counters over the frames handed to the sink */
} ingest_result;

/* Run until the source ends (or fails), an error frame arrives, the sink
 * fails, or *stop becomes non-zero (signal handlers set it), decoding with
 * `decoding` (its threads; 0: on this thread). Refused frames are logged on
 * stderr with their seq and skipped. The frames already handed to the
 * decoders when the loop stops are finished (unless the sink failed or an
 * error frame came). */
es_status ingest_run(ingest_source *src, const ingest_workers_options *decoding,
                     ingest_sink_fn sink, void *sink_ctx, volatile sig_atomic_t *stop,
                     ingest_result *result);

/* Logs a refused frame (warn "frame refused"): its seq and DID when known,
 * the reason (es_atp_error_name) and the decoder's message `error` (its
 * es_last_error(), carried from the thread that decoded). Limited per
 * reason (ingest_log_admit): the others are counted in a summary line. */
void ingest_log_refused(const es_atp_batch *b, const char *error);
/* Logs an #info (warn "#info", limited as refusals are, reason "info") or
 * an error frame (warn "error frame: the stream ends"); nothing for other
 * kinds. */
void ingest_log_notice(const es_atp_batch *b);

/* The dry-run sink: accepts every batch. */
es_status ingest_sink_discard(void *ctx, const es_atp_batch *batch);

/* The final report: frames/s, ops/s, MB/s, counts by kind and errors by kind. */
void ingest_report(FILE *out, const char *source, const es_atp_stats *st, const ingest_result *r);

#endif
