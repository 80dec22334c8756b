/* Durable projections: small processes that turn a store's events into
 * views. A projection is a named, durable JetStream pull consumer on the
 * store's stream (the server keeps its position), with one or more filters.
 * Running it hands each matching event to a handler and acknowledges it
 * once the handler returns ES_OK; a retryable failure is retried with
 * backoff, a permanent one (or too many deliveries) dead-letters the event.
 * History and live events are one stream: a new projection catches up, then
 * keeps going, with no special backfill mode. Stop it and start it again: it
 * resumes where it was. Start it in several processes: they share the work.
 *
 * Delivery is at least once. When every handler call succeeds each event is
 * handled exactly once across all instances; after a crash or a handler
 * failure an event may be handled again, so handlers must be idempotent
 * (KV puts and deletes are).
 *
 * Ordering. An unordered projection (the default) is a set of competing
 * consumers: instances pull batches and work in parallel, so two events of
 * one entity may be handled at once or out of order after a retry. An ORDERED
 * projection keeps every entity's events in stream order: it has N partitions
 * (each its own durable consumer, pinned to one instance at a time with
 * JetStream's pinned-client priority groups) and an entity always belongs to
 * partition fnv1a32(<type token><id token>) % N — the same function as the
 * server's {{partition(N, type, id)}} subject transform (with tenancy the
 * tenant token comes first). Retries then happen in place, without letting
 * later events of the partition overtake. Each partition's consumer reads
 * every event of the filters and skips the others' entities, so an ordered
 * projection with N partitions reads N times the events it handles.
 *
 *   es_projection_config cfg;
 *   es_projection_config_init(&cfg);
 *   es_filter likes = {.entity_type = "app_bsky_feed_like"};
 *   cfg.filters = &likes;
 *   cfg.filter_count = 1;
 *   cfg.ordered = true;
 *   es_projection_create(store, "likes", &cfg);        // idempotent
 *   es_projection_handler h = {.on_event = index_like, .closure = view};
 *   es_projection *p;
 *   es_projection_start(store, "likes", &h, NULL, &p);
 *   es_projection_wait_caught_up(p, -1);
 *   ...
 *   es_projection_destroy(p);                           // stops, acks flushed
 */
#ifndef ES_PROJECTION_H
#define ES_PROJECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/read.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_PROJECTION_NAME_MAX       48 /* [A-Za-z0-9_-]{1,48} */
#define ES_PROJECTION_MAX_FILTERS    ES_FILTERS_MAX
#define ES_PROJECTION_MAX_PARTITIONS 64

/* ---- definition (stored on the server) ---------------------------------- */

typedef enum es_projection_start_at {
    ES_PROJECTION_FROM_START = 0, /* every event in the store (default) */
    ES_PROJECTION_AFTER_SEQ,      /* events after sequence after_seq */
    ES_PROJECTION_NEW_ONLY,       /* only events appended after creation */
} es_projection_start_at;

typedef struct es_projection_config {
    const es_filter *filters; /* which events (wildcards as in es_filter); several are one
                                 multi-filter consumer; none: every event of the store */
    size_t filter_count;      /* 0..ES_PROJECTION_MAX_FILTERS */
    es_projection_start_at start;
    uint64_t after_seq;      /* with ES_PROJECTION_AFTER_SEQ */
    int64_t ack_wait_ms;     /* an event not acknowledged this long after delivery is
                                delivered again (default 30000) */
    int max_deliver;         /* deliveries of one event before it is dead-lettered
                                (default 10; -1: unlimited) */
    int max_ack_pending;     /* events delivered and not yet acknowledged, across all
                                instances (default 1000) */
    bool ordered;            /* per-entity order (see above) */
    int partitions;          /* ordered: 1..ES_PROJECTION_MAX_PARTITIONS (default 1) */
    int64_t pin_timeout_ms;  /* ordered: a partition whose instance stopped pulling moves
                                to another after this long (default 30000) */
    const char *description; /* optional */
} es_projection_config;

ES_API void es_projection_config_init(es_projection_config *cfg);

/* Creates the projection's consumers. Creating it again with the same
 * configuration is ES_OK (so every instance may call it at start-up); with
 * a different one it is ES_ERR_EXISTS. Thread-safe. */
ES_API es_status es_projection_create(es_store *store, const char *name, const es_projection_config *cfg);

/* Changes filters, ack wait, max deliver, max ack pending, pin timeout and
 * description. The start position, ordering and partition count are fixed
 * at creation (ES_ERR_INVALID); ES_ERR_NOT_FOUND when there is no such
 * projection. Running instances pick the change up at once. */
ES_API es_status es_projection_update(es_store *store, const char *name, const es_projection_config *cfg);

/* Deletes the projection and its position. ES_ERR_NOT_FOUND when absent. */
ES_API es_status es_projection_delete(es_store *store, const char *name);

/* Lag and settings of one partition (one durable consumer). */
typedef struct es_projection_partition {
    uint64_t pending;       /* matching events not delivered yet */
    uint64_t ack_pending;   /* delivered, not acknowledged yet */
    uint64_t redelivered;   /* delivered more than once and not acknowledged yet */
    uint64_t delivered_seq; /* stream sequence of the last delivery */
    uint64_t ack_floor_seq; /* every event up to this stream sequence is done */
    int waiting;            /* pull requests waiting: idle instances */
    bool pinned;            /* ordered: an instance holds this partition */
} es_projection_partition;

typedef struct es_projection_info {
    char name[ES_PROJECTION_NAME_MAX + 1];
    bool ordered;
    int partitions; /* 1 for an unordered projection */
    size_t filter_count;
    es_projection_start_at start;
    uint64_t after_seq;
    int64_t ack_wait_ms;
    int max_deliver;
    int max_ack_pending;
    int64_t pin_timeout_ms;
    /* Lag, summed up: */
    uint64_t pending;       /* the largest over partitions (each reads every event) */
    uint64_t ack_pending;   /* the sum over partitions */
    uint64_t ack_floor_seq; /* the smallest over partitions */
    es_projection_partition partition[ES_PROJECTION_MAX_PARTITIONS];
} es_projection_info;

/* What the server says of a projection now. ES_ERR_NOT_FOUND when absent. */
ES_API es_status es_projection_info_get(es_store *store, const char *name, es_projection_info *info);

/* Called per projection of the store; `info` is valid during the call.
 * Return ES_OK to go on. */
typedef es_status (*es_projection_list_cb)(const es_projection_info *info, void *closure);

/* Every projection of the store, with its lag, in name order. */
ES_API es_status es_projection_list(es_store *store, es_projection_list_cb cb, void *closure);

/* The partition of an entity in an ordered projection of `partitions`
 * partitions: fnv1a32(tenant token, type token, id token) % partitions. */
ES_API int es_projection_partition_of(const es_event *ev, int partitions);

/* True for a handler status worth retrying (the trouble may pass):
 * ES_ERR_TIMEOUT, ES_ERR_CONNECTION, ES_ERR_SERVER, ES_ERR_CONFLICT,
 * ES_ERR_NOMEM, ES_ERR_IO, ES_ERR_STOPPED. Every other status is permanent:
 * the event is dead-lettered at once. */
ES_API bool es_projection_retryable(es_status s);

/* ---- running it ---------------------------------------------------------- */

typedef struct es_projection es_projection;

typedef struct es_projection_handler {
    /* Exactly one of on_event / on_batch. */
    es_event_cb on_event; /* one event: ES_OK acknowledges it */
    /* The events of one pull, in order (of one partition when ordered): ES_OK
     * acknowledges them all, a failure retries or dead-letters them all.
     * ES_ERR_AGAIN (not now) hands them all back to the server at once, not
     * as a failure: the next pull gets them again, with what came meanwhile
     * (each such return is one more delivery of each event, which counts
     * against max_deliver). A handler waits a little before returning it. */
    es_status (*on_batch)(const es_event *const *events, size_t n, void *closure);
    /* Optional: an event given up on (permanent failure, or max_deliver
     * deliveries), just before it is terminated. */
    void (*on_dead_letter)(const es_event *ev, es_status why, void *closure);
    /* Optional: trouble being ridden out (server away, ...). */
    void (*on_error)(es_status s, const char *text, void *closure);
    void *closure;
} es_projection_handler;

typedef struct es_projection_run_options {
    int workers;                  /* unordered: threads pulling in this process (default 1) */
    int batch;                    /* events per pull, 1..256 (default 64) */
    int64_t retry_backoff_ms;     /* first retry delay (default 200), doubling per delivery */
    int64_t retry_backoff_max_ms; /* the delay's cap (default 10000) */
    /* Ordered: this process takes the partitions p with p % instances == instance
     * (default 0 of 1: all of them; the server still pins each to one
     * process at a time, so overlapping assignments stay safe). */
    int instance;
    int instances;
    int64_t heartbeat_ms; /* pull heartbeat: a silent server is noticed after three
                             (default 1000) */
} es_projection_run_options;

ES_API void es_projection_run_options_init(es_projection_run_options *opts);

/* Starts handling the projection's events on threads of its own (one per
 * worker, or one per partition taken when ordered). Handlers of different
 * workers or partitions run concurrently; one entity's events in an ordered
 * projection always on one thread, in order. The handler struct is copied;
 * its closure must outlive the projection. The caller owns *out. */
ES_API es_status es_projection_start(es_store *store, const char *name, const es_projection_handler *h,
                              const es_projection_run_options *opts, es_projection **out);

/* Waits until the projection has no event left to deliver or acknowledge
 * (every instance's work counts), or, under a steady stream of new events,
 * until it is done with everything stored when the wait began. timeout_ms < 0
 * waits for ever. ES_ERR_TIMEOUT, or the error that ended the projection. */
ES_API es_status es_projection_wait_caught_up(es_projection *p, int64_t timeout_ms);

/* From inside a handler: `ev` (an event it was handed) is still being worked
 * on, so the server restarts its ack wait instead of delivering it again
 * when ack_wait_ms runs out. For handlers that may take longer than that (a
 * batch waiting on acknowledgements from elsewhere): call it at least once
 * per ack_wait_ms for each event still held. Ordered projections: it also
 * keeps the partition's pin (the server moves a pin whose holder asked for
 * nothing for pin_timeout_ms, and a handler at work asks for nothing). Only
 * during the handler call that was given `ev`. ES_ERR_INVALID for an event a
 * projection did not deliver; the server's silence is not reported (the
 * messages are one way). */
ES_API es_status es_projection_in_progress(const es_event *ev);

/* From inside an on_batch handler: `ev` is done, acknowledge it to the
 * server now rather than with the whole batch, so that a crash before the
 * batch returns does not deliver it again. It is not delivered again even
 * when the batch then fails (the others are retried or dead-lettered as
 * usual). Same rules as es_projection_in_progress. */
ES_API es_status es_projection_ack(const es_event *ev);

/* Counters of this instance. */
typedef struct es_projection_stats {
    uint64_t handled; /* events whose handler returned ES_OK */
    uint64_t retried; /* handler failures retried */
    uint64_t dead_lettered;
    uint64_t skipped; /* ordered: other partitions' events, and redeliveries
                         of events already done */
} es_projection_stats;

ES_API void es_projection_stats_get(es_projection *p, es_projection_stats *stats);

/* Stops: no handler runs once it returns; events received and not handled
 * are handed back to the server for redelivery, acknowledgements are
 * flushed, held partitions released to other instances. Returns the error
 * that ended the projection early, if any. Not from inside a handler. */
ES_API es_status es_projection_stop(es_projection *p);

/* Stops (when running) and frees. Accepts NULL. */
ES_API void es_projection_destroy(es_projection *p);

#ifdef __cplusplus
}
#endif
#endif
