/* An ordered push consumer (private): an ephemeral, unacknowledged consumer
 * delivering a filter's messages in stream order to a private inbox, with
 * flow control and idle heartbeats. When a delivery goes missing (a gap in
 * consumer sequences, heartbeats that stop, a server restart) it is recreated
 * from the last stream sequence delivered, so readers see every message once,
 * in order. evolve and watch are both built on it. */
#ifndef ES_CONSUMER_H
#define ES_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>

#include "transport/js.h"

/* Longest stream name the transport's consumers accept. */
#define ESI_STREAM_NAME_MAX 64

typedef struct esi_oc esi_oc;

typedef struct esi_oc_msg {
    natsMsg *msg;     /* owned by the caller of esi_oc_next: natsMsg_Destroy it */
    uint64_t seq;     /* stream sequence */
    uint64_t pending; /* messages matching the filter still to come */
    int64_t stored_ns;
} esi_oc_msg;

/* The most filter subjects one consumer takes here. JetStream itself sets
 * no count (only its API request's size, the server's max payload, bounds
 * the list); this bounds what a reset copies and resends. */
#define ESI_OC_FILTERS_MAX 64

/* Creates the consumer over `nfilters` filter subjects (0: the whole
 * stream; several need nats-server >= 2.10, and the server refuses a list in
 * which one filter is a subset of another), delivering from stream sequence
 * start_seq (>= 1). The filters are copied. *pending gets the number of
 * matching messages at creation. heartbeat_ms is the server's idle
 * heartbeat; three missed ones trigger a reset. A creation refused
 * transiently (a cluster electing the stream's leader: esi_js_transient) is
 * retried within ESI_JS_ELECTION_BUDGET_MS (esi_js_retry); a refusal is
 * not. */
es_status esi_oc_create(const esi_js *js, const char *stream, const char *const *filters,
                       size_t nfilters, uint64_t start_seq, int64_t heartbeat_ms, esi_oc **out,
                       uint64_t *pending);

/* How long a reader keeps retrying a consumer reset that fails (a server
 * away, a cluster electing a stream or meta leader: requests get no answer
 * or "no responders" meanwhile) before it gives up: readers that end
 * (replay) give up after this; watches keep trying and report. The same
 * budget as the consumer's creation (esi_oc_create). */
#define ESI_OC_RESET_BUDGET_MS ESI_JS_ELECTION_BUDGET_MS

/* The next message, waiting up to wait_ms: ES_ERR_TIMEOUT when none came in
 * that time (not an error: call again). Resets are handled inside; when one
 * cannot be done (server away) the call waits a backoff delay (base/backoff.h,
 * at most wait_ms) and returns ES_ERR_CONNECTION, with the reason in
 * es_last_error(); the next call tries again.
 *
 * The server's count of messages to come can be wrong (nats-server keeps a
 * running tally that races with appends on a lagging replica): when the
 * server goes idle (two idle heartbeats naming our last delivery) while
 * messages are still counted, the consumer is reset, and its new count is
 * the server's recount. A reset whose recount is 0 where the old count was
 * not returns ES_ERR_TIMEOUT at once, with esi_oc_pending() 0: the reader is
 * caught up. */
es_status esi_oc_next(esi_oc *oc, int64_t wait_ms, esi_oc_msg *out);

/* Matching messages still to come, as the server last counted them: at
 * creation, with each delivery (esi_oc_msg.pending), and at each reset. */
uint64_t esi_oc_pending(const esi_oc *oc);

/* How long resets have been failing in a row, in ms: 0 when the consumer is
 * fine. Compare with ESI_OC_RESET_BUDGET_MS. */
int64_t esi_oc_failing_ms(const esi_oc *oc);

/* Number of resets so far (tests and statistics). */
uint64_t esi_oc_resets(const esi_oc *oc);

/* Deletes the consumer (best effort) and frees. Accepts NULL. */
void esi_oc_destroy(esi_oc *oc);

#endif
