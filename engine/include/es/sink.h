/* A keyed ordered sink: hands units of work to the store in the order they
 * were offered, and keeps the promises a producer that resumes from a cursor
 * needs (the ATProto ingester is one; a projection writing events is
 * another). A unit is a key, a position and 0..ES_BATCH_MAX events appended
 * as ONE atomic batch. The sink guarantees:
 *
 *  - never loss: it keeps a copy of a unit's events until the store
 *    acknowledged them; a failed or unanswered append is sent again, with the
 *    same event ids (the store drops ids it has seen: nothing is stored
 *    twice), after an exponential backoff with jitter. Refusals no retry can
 *    change (invalid events, too large, a conflict) are reported and dropped;
 *  - per-key order: a unit is not sent while an earlier unit of the same key
 *    is unacknowledged, so whatever fails and is retried, a key's units are
 *    stored in the order offered. Units with the empty key are unordered;
 *  - a watermark: the highest position such that its unit and every unit
 *    offered before it are settled (stored, or dropped for good, or had
 *    nothing to store). Acknowledgements come out of order; the watermark
 *    only moves over a settled prefix. A producer stores it as its cursor:
 *    resuming after it loses nothing;
 *  - a stop on denial: an append the server refuses the user
 *    (ES_ERR_PERMISSION) stops the sink: nothing more is sent, and offer,
 *    wait and drain return that status (es_sink_stopped says why). The
 *    refused unit is neither retried nor dropped, so a producer resuming
 *    from the watermark later (with the permission granted) loses nothing;
 *  - bounded memory: at most max_units units and about max_bytes bytes of
 *    event copies are held (es_sink_offer says ES_ERR_AGAIN when full), and
 *    at most max_inflight appends, max_batches of them multi-event, travel.
 *
 * One thread drives the sink (es_sink_offer, es_sink_poll, es_sink_wait,
 * es_sink_drain: outcome callbacks run on it); acknowledgements arrive on
 * library threads and wait for the driving thread's next call. */
#ifndef ES_SINK_H
#define ES_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/append.h>
#include <es/event.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_sink es_sink;

/* What happened to a unit's append, reported to on_outcome. */
typedef enum es_sink_outcome_kind {
    ES_SINK_STORED,   /* acknowledged: stored (or, with `duplicate`, found stored before) */
    ES_SINK_RETRYING, /* failed: it is sent again after retry_in_ms */
    ES_SINK_DROPPED,  /* refused for good: invalid, too large, a conflict, partly stored
                         before, or max_attempts reached. The watermark passes it */
    ES_SINK_STOPPED,  /* the server refused the user the append (ES_ERR_PERMISSION): no
                         retry can change that, so the sink stopped (es_sink_stopped). The
                         unit stays held and the watermark stays before it */
} es_sink_outcome_kind;

typedef struct es_sink_outcome {
    es_sink_outcome_kind kind;
    const char *key; /* the unit's key: key_len bytes, then a NUL ("" for none) */
    size_t key_len;
    uint64_t position;
    size_t events;
    es_status status;    /* ES_OK when stored, else the append's status */
    int err_code;        /* the server's JetStream err_code, or 0 */
    const char *error;   /* the failure's text ("" when stored) */
    bool duplicate;      /* stored before: every event id was found in the store */
    unsigned attempts;   /* appends of this unit so far */
    int64_t retry_in_ms; /* ES_SINK_RETRYING: when it goes again */
    uint64_t last_seq;   /* ES_SINK_STORED: the stream sequence of the unit's last event
                            (where it was stored before, for a duplicate); 0 otherwise */
} es_sink_outcome;

/* Called on the thread driving the sink, once per unit with events when it
 * settles (STORED, DROPPED) and once per failed attempt (RETRYING); units
 * without events settle silently. Everything it points to is valid during
 * the call. */
typedef void (*es_sink_outcome_fn)(const es_sink_outcome *o, void *closure);

typedef struct es_sink_options {
    size_t max_units;      /* units held until settled (default 4096) */
    size_t max_bytes;      /* bytes of event copies held (default 8 MiB): offers stop while this
                              is reached, so it is exceeded by at most one unit */
    size_t max_inflight;   /* appends in flight (default 0: the store handle's max_inflight) */
    size_t max_batches;    /* of which multi-event (default 0: the handle's max_batches_inflight) */
    int64_t retry_min_ms;  /* first retry delay (default 100), doubling per attempt ... */
    int64_t retry_max_ms;  /* ... up to this (default 5000), +-25 % jitter */
    unsigned max_attempts; /* appends of a unit before it is dropped (default 0: no limit) */
    /* Multi-event units that wait for a batch place are gathered into one
     * atomic batch of up to group_max_events events and group_max_bytes
     * bytes (each unit stays all-or-nothing; so does the group): the server
     * commits atomic batches one at a time per stream, so when they pile up,
     * one batch of several units keeps up where many would not. A group the
     * store refuses as a whole for a reason one member may hold alone is sent
     * again unit by unit. 0 or 1: never gather. Defaults 256 and 4 MiB. */
    size_t group_max_events;
    size_t group_max_bytes;
    es_sink_outcome_fn on_outcome; /* may be NULL */
    void *closure;
} es_sink_options;

ES_API void es_sink_options_init(es_sink_options *o);

/* A sink appending to `store` (which must outlive it). opts may be NULL. */
ES_API es_status es_sink_create(es_store *store, const es_sink_options *opts, es_sink **out);

/* Waits for the appends in flight (each bounded by the store's request
 * timeout: their callbacks must have run before the sink is freed), then
 * frees the sink and every unit it holds. Units not settled are NOT stored
 * by this: drain first (es_sink_drain) to store them. Accepts NULL. */
ES_API void es_sink_destroy(es_sink *sink);

/* One unit of work. Everything is borrowed for the call: the sink copies what
 * it keeps. */
typedef struct es_sink_unit {
    const char *key;             /* the ordering key (e.g. a repository's DID); NULL or "": none */
    size_t key_len;              /* 0: key is NUL-terminated */
    uint64_t position;           /* the caller's position (e.g. a relay seq); 0: none. Positions are
                                    expected to grow; the watermark never goes back */
    int64_t time_ns;             /* when the unit's data was made (Unix ns), for lag; 0: unknown */
    const es_event_spec *events; /* appended as ONE atomic batch; events without an id get
                                    one now and events without a time get the current
                                    time, so that a retry is the same append */
    size_t count;                /* 0..ES_BATCH_MAX (0: nothing to store, only a position) */
} es_sink_unit;

/* Takes a unit, without blocking: it is sent at once when its key's earlier
 * units are settled and a place is free, else later (es_sink_poll).
 * The sink's stop status when it stopped (es_sink_stopped).
 * ES_ERR_AGAIN when the sink is full (max_units units or max_bytes held):
 * nothing was taken; es_sink_wait, then offer it again. ES_ERR_TOO_LARGE for
 * count > ES_BATCH_MAX; ES_ERR_INVALID for a NULL sink or unit, or count > 0
 * with NULL events. Events the store refuses (invalid names, payloads over
 * the limit) are not refused here: the unit is dropped later, reported
 * through on_outcome, and the watermark passes it. */
ES_API es_status es_sink_offer(es_sink *sink, const es_sink_unit *unit);

/* Whether es_sink_offer would take a unit now. */
ES_API bool es_sink_has_room(const es_sink *sink);

/* Takes the acknowledgements that arrived (running on_outcome), schedules
 * retries, sends what may be sent, moves the watermark. Never blocks on the
 * network. */
ES_API void es_sink_poll(es_sink *sink);

/* Waits up to timeout_ms for an acknowledgement (or a retry falling due, or
 * the store's window reopening), then polls. ES_OK when something happened, ES_ERR_TIMEOUT
 * when nothing did, the stop status once the sink stopped (es_sink_stopped). */
ES_API es_status es_sink_wait(es_sink *sink, int64_t timeout_ms);

/* Polls and waits until every unit offered is settled: ES_OK, or
 * ES_ERR_TIMEOUT after timeout_ms with units still held (retries go on if
 * the sink is polled again), or the stop status once the sink stopped. */
ES_API es_status es_sink_drain(es_sink *sink, int64_t timeout_ms);

/* Called (from a library thread, without blocking) whenever an
 * acknowledgement arrives: lets an event loop wake up and poll. NULL: none.
 * Safe to change while appends are in flight: once it returns, the old hook
 * is not called any more. */
ES_API void es_sink_on_wake(es_sink *sink, void (*fn)(void *ctx), void *ctx);

/* ES_OK, or the status that stopped the sink (ES_ERR_PERMISSION: an append
 * the server refused this user), with its text in es_last_error(). A
 * stopped sink sends nothing more; destroy it. */
ES_API es_status es_sink_stopped(const es_sink *sink);

/* Nothing held: every unit offered is settled. */
ES_API bool es_sink_idle(const es_sink *sink);

/* The watermark, when some unit with a position was settled (with its whole
 * prefix). */
ES_API bool es_sink_watermark(const es_sink *sink, uint64_t *position);

/* Failed appends are counted by status in failures[status]; statuses at or
 * beyond ES_SINK_STATUS_SLOTS - 1 share the last slot. */
#define ES_SINK_STATUS_SLOTS 64

typedef struct es_sink_stats {
    uint64_t offered;                        /* units taken */
    uint64_t settled;                        /* units retired in order (behind the watermark) */
    uint64_t appends;                        /* appends acknowledged */
    uint64_t events;                         /* events acknowledged (stored now or before) */
    uint64_t duplicates;                     /* appends whose events were all stored before */
    uint64_t retries;                        /* appends sent again */
    uint64_t dropped;                        /* units refused for good */
    uint64_t failures[ES_SINK_STATUS_SLOTS]; /* failed appends by status */
    bool has_watermark;
    uint64_t watermark;
    int64_t last_time_ns; /* the newest time_ns of a stored unit */
    size_t held;          /* units not retired yet */
    size_t queued;        /* units waiting to be sent */
    size_t inflight;      /* appends in flight */
    size_t batches_inflight;
    size_t bytes_held;
} es_sink_stats;

ES_API void es_sink_get_stats(const es_sink *sink, es_sink_stats *out);

#ifdef __cplusplus
}
#endif
#endif
