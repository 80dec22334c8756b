/* Reading one's own writes on a replicated store: see own_writes.h. */
#include "own_writes.h"

#include "transport/streams.h"

es_status esi_own_writes_target(es_store *st, const esi_filter_set *fs, uint64_t after_seq,
                                uint64_t up_to_seq, uint64_t *target)
{
    *target = 0;
    if (st->config.replicas <= 1 || st->opts.confined)
        return ES_OK;
    for (size_t i = 0; i < fs->n; i++) {
        uint64_t seq = 0;
        es_status s = esi_stream_last_seq_retried(st->js, st->stream, fs->subjects[i], &seq);
        if (s != ES_OK)
            return s;
        if (seq > *target)
            *target = seq;
    }
    if (up_to_seq && *target > up_to_seq)
        *target = up_to_seq;
    if (*target <= after_seq)
        *target = 0;
    return ES_OK;
}
