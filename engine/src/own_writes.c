/* Reading one's own writes on a replicated store: see own_writes.h. */
#include "own_writes.h"

#include "transport/js.h"
#include "transport/streams.h"

typedef struct last_seq_ask {
    es_store *st;
    const char *subject;
    uint64_t seq;
} last_seq_ask;

static es_status ask_last_seq(void *closure)
{
    last_seq_ask *a = closure;
    return esi_stream_last_seq(a->st->js, a->st->stream, a->subject, &a->seq);
}

es_status esi_own_writes_target(es_store *st, const esi_filter_set *fs, uint64_t after_seq,
                                uint64_t up_to_seq, uint64_t *target)
{
    *target = 0;
    if (st->config.replicas <= 1 || st->opts.confined)
        return ES_OK;
    for (size_t i = 0; i < fs->n; i++) {
        last_seq_ask a = {st, fs->subjects[i], 0};
        es_status s = esi_js_retry(ask_last_seq, &a);
        if (s != ES_OK)
            return s;
        if (a.seq > *target)
            *target = a.seq;
    }
    if (up_to_seq && *target > up_to_seq)
        *target = up_to_seq;
    if (*target <= after_seq)
        *target = 0;
    return ES_OK;
}
