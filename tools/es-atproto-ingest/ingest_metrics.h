/* es-atproto-ingest's Prometheus metrics (--metrics-listen; docs/atproto.md,
 * "Metrics"): the counters of the decoders, the sink, the chain state and
 * the resyncs rendered as the exposition text, every second, by the
 * ingester's thread, and served by tools/common/metrics.h. */
#ifndef ES_INGEST_METRICS_H
#define ES_INGEST_METRICS_H

#include <stdint.h>

#include <es/atproto.h>
#include <es/buf.h>
#include <es/sink.h>

#include "chain.h"
#include "resyncs.h"

typedef struct ingest_metrics_in {
    const es_atp_stats *dec;   /* frames offered, by kind and refusal reason */
    const es_sink_stats *sink; /* appends, in flight, held, the watermark */
    const chain_stats *chain;
    const resyncs_stats *rs; /* NULL: no resyncs */
    uint64_t skipped_by_cursor, skipped_untracked;
    int64_t tracked; /* DIDs in the tracked set, -1: not followed */
    int64_t now_ns;
} ingest_metrics_in;

void ingest_metrics_render(es_buf *b, const ingest_metrics_in *in);

#endif
