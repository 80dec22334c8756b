/* The sink's seam (private): the append it calls is a function, so that its
 * ordering, retry and watermark logic can be tested against a stand-in for
 * the store that answers when and how a test decides. */
#ifndef ES_SINK_IMPL_H
#define ES_SINK_IMPL_H

#include <es/sink.h>

/* Starts one append of events[0..n) as one atomic batch, without waiting for
 * room: as es_append_batch_try_async (ES_ERR_AGAIN when full; when it
 * returns ES_OK, cb is called exactly once, from any thread). */
typedef es_status (*esi_sink_append_fn)(void *ctx, const es_event_spec *events, size_t n,
                                        es_append_cb cb, void *closure);

/* es_sink_create with another append. `max_inflight` and `max_batches` stand
 * for the store handle's limits (the defaults of the options' zeros). */
es_status esi_sink_create_with(const es_sink_options *opts, size_t max_inflight, size_t max_batches,
                               esi_sink_append_fn append, void *ctx, es_sink **out);

#endif
