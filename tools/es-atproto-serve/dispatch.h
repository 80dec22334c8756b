/* Tap-style delivery's dispatcher: reads the store through a durable
 * JetStream consumer and hands each event, in Tap's JSON, to one tap_target
 * (tap.h), under Tap's per-repo rule and a bound on events in flight.
 *
 * The consumer is an ordered projection with one partition (es/projection.h):
 * the server keeps what is acknowledged, pins the consumer to one serve
 * instance at a time, and gives a dead instance's unacknowledged events to
 * the next one (or to the same one restarted) after `takeover_ms`. A pull of
 * up to DISPATCH_IN_FLIGHT_MAX events is one on_batch call; it returns once
 * every event of it is done (acknowledged by the target, or given up and
 * recorded as a dead letter). Each event is acknowledged to the server as
 * soon as it is done (es_projection_ack), so a killed instance's successor
 * gets again only those that were not.
 * Meanwhile it tells the server every takeover_ms / 3 that the events are
 * still in progress, so a long delivery is not redelivered.
 *
 * Per repo (Tap's rule): a live event is sent once every earlier event of its
 * repo is done, and nothing later of its repo is sent before it is done;
 * historical events (backfill, resync) of a repo may be in flight together.
 * Different repos never wait for each other, except for `max_in_flight`.
 *
 *   dispatch *d;
 *   dispatch_create(store, &cfg, &d);
 *   channel_create(&ccfg, dispatch_done, d, &ch);  // the target reports to d
 *   dispatch_start(d, &target);
 *   ...
 *   dispatch_destroy(d);                            // before the target
 *
 * Threads: the projection's one thread sends; dispatch_done and
 * dispatch_metrics from any thread. */
#ifndef SERVE_DISPATCH_H
#define SERVE_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/es.h>

#include "tap.h"

#define DISPATCH_IN_FLIGHT_MAX 256 /* also the largest pull */

typedef struct dispatch_config {
    const char *consumer; /* the durable consumer (projection) name; default "tap" */
    int max_in_flight;    /* events sent and not done, at most: 1..DISPATCH_IN_FLIGHT_MAX
                             (default 32) */
    int64_t takeover_ms;  /* the consumer's ack wait: a dead instance's events go to the
                             next one after this (default 30000; at least 1000) */
    size_t record_max;    /* memory to render one record (default 8 MiB) */
    const char *collections; /* Tap's collection filters: NSIDs and prefixes (app.bsky.feed.*),
                                separated by commas, the rules of /subscribe's
                                wantedCollections; they apply to record events only (identity
                                events always go, as in Tap). NULL: every collection */
    unsigned log_burst;      /* dead letters logged in full per interval (default 10); the
                                rest are counted in one summary line (loglimit.h) */
    int64_t log_interval_ms; /* default 10000 */
} dispatch_config;

void dispatch_config_init(dispatch_config *cfg);

typedef struct dispatch dispatch;

/* Creates the durable consumer when missing (an existing one keeps its
 * position; its ack wait, pin timeout and filters are brought to `cfg`), and
 * the dead-letter bucket. Collections that name a closed set (exact NSIDs,
 * at most ES_PROJECTION_MAX_FILTERS - 1) become the consumer's filters, so
 * the NATS server sends only those (and identity events); a prefix reads
 * every event and the dispatcher leaves out the others (a collection of the
 * namespace may first appear after the consumer has passed its first event:
 * a filtered durable consumer would skip it for good). Changing the
 * collections of an existing consumer keeps its position: events of a newly
 * added collection stored before it are not delivered (a new consumer name
 * starts from the beginning). Nothing is delivered before dispatch_start. The caller
 * owns *out (dispatch_destroy). */
es_status dispatch_create(es_store *st, const dispatch_config *cfg, dispatch **out);

/* The tap_done_fn of targets: `arg` is the dispatch. Ids it is not waiting
 * for (a late answer for an event already done) are ignored. */
void dispatch_done(void *arg, uint64_t id, tap_outcome outcome, const char *why);

/* Starts delivering to `target` (copied), on a thread of the projection's. */
es_status dispatch_start(dispatch *d, const tap_target *target);

/* Counters, for tests and the metrics. */
typedef struct dispatch_stats {
    uint64_t acked;        /* events the target acknowledged */
    uint64_t dead_letters; /* events given up (the target's limit, or no JSON) */
    uint64_t skipped;      /* events without a Tap form (#sync, other writers') */
    uint64_t filtered;     /* record events of collections the filters leave out */
    uint64_t sent;         /* sends to the target */
    size_t in_flight;      /* sent and not done, now */
    int64_t lag_ns;        /* now - stored time of the oldest event not done (0: none) */
} dispatch_stats;

void dispatch_stats_get(dispatch *d, dispatch_stats *out);

/* The dispatcher's families in Prometheus' text (tools/common/metrics.h). */
void dispatch_metrics(dispatch *d, es_buf *b);

/* Stops: events not done stay unacknowledged in the store, delivered again
 * (here or by another instance) later; then frees. Accepts NULL. Call it
 * before destroying the target: a send may be running until it returns. */
void dispatch_destroy(dispatch *d);

#endif
