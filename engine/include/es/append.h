/* Appending events. An append is one event, or a batch of up to
 * ES_BATCH_MAX events stored atomically (all or nothing) with JetStream's
 * atomic batch publish; a batch may span several entities. Appends are
 * idempotent by event id within the store's duplicate window. */
#ifndef ES_APPEND_H
#define ES_APPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/event.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_BATCH_MAX 1000

/* One expectation that failed in a conflicting append (ES_ERR_CONFLICT). */
typedef struct es_append_conflict {
    size_t index; /* the event of the batch that carried the expectation */
    /* That event's entity: tenant (NULL without tenancy), type, and id,
     * unescaped and NUL-terminated (it may hold NULs: entity_id_len). */
    const char *tenant;
    const char *entity_type;
    const char *entity_id;
    size_t entity_id_len;
    /* What was checked: the entity's events ("$ES.bank.account.a1.*"), or
     * the subject of the event's expect_filter. */
    const char *subject;
    uint64_t expected_seq; /* the last sequence expected (0: none, ES_EXPECT_NEW) */
    uint64_t actual_seq;   /* the last sequence found (0: none) */
} es_append_conflict;

typedef struct es_append_result {
    uint64_t first_seq; /* stream sequence of the first event appended */
    uint64_t last_seq;  /* ... and of the last; events in between are consecutive */
    size_t count;
    bool duplicate;      /* every event was stored before (same ids): nothing new stored,
                            first_seq/last_seq are where they were stored */
    uint64_t actual_seq; /* on ES_ERR_CONFLICT: the entity's actual last sequence */
    int err_code;        /* on failure: the server's JetStream err_code when it refused, else 0 */
    const char *error;   /* on failure: the detailed text ("" on success). In an asynchronous
                            append's callback it is valid during the call; after a synchronous
                            append it is es_last_error(), valid until the thread's next es_ call */
    /* On ES_ERR_CONFLICT: every expectation of the append that fails, in
     * event order (JetStream answers at the first; the library looks up the
     * others' last sequences). Valid like `error`: during an asynchronous
     * callback, or until the thread's next append. NULL and 0 otherwise. */
    const es_append_conflict *conflicts;
    size_t conflict_count;
} es_append_result;

/* Appends one event. ES_ERR_CONFLICT when its expectation fails (with
 * result->actual_seq); result may be NULL. Thread-safe. */
ES_API es_status es_append(es_store *store, const es_event_spec *event, es_append_result *result);

/* Appends `n` events as ONE atomic batch: either all are stored, consecutively,
 * or none. n > ES_BATCH_MAX is ES_ERR_TOO_LARGE (never silently split). Each
 * event's expectation is checked against the store as it was before the
 * batch, so put an entity's expectation on its first event in the batch.
 * A batch whose events were all stored before (same ids, within the
 * duplicate window) succeeds with result->duplicate set; one where only some
 * were is ES_ERR_DUPLICATE. Invalid input is refused before anything is sent. */
ES_API es_status es_append_batch(es_store *store, const es_event_spec *events, size_t n,
                          es_append_result *result);

/* Called once per asynchronous append, on a library thread; `result` is
 * valid during the call and carries the failure's server err_code and text
 * (result->err_code, result->error): read them there, never es_last_error(),
 * which belongs to whatever thread calls it. Keep it short: it delays other
 * acknowledgements. */
typedef void (*es_append_cb)(es_status status, const es_append_result *result, void *closure);

/* es_append_batch without waiting for the acknowledgement: up to the store's
 * max_inflight appends travel at once (pipelining), and the call blocks while
 * that many are in flight (backpressure). The events are copied before it
 * returns. A status other than ES_OK means nothing was sent and `cb` will not
 * be called; ES_OK means `cb` will be called exactly once with the outcome
 * (ES_ERR_TIMEOUT when no answer came: the outcome is then unknown, and
 * appending the same events again is safe thanks to their ids). */
ES_API es_status es_append_batch_async(es_store *store, const es_event_spec *events, size_t n,
                                       es_append_cb cb, void *closure);

/* es_append_batch_async that never waits for room: ES_ERR_AGAIN at once when
 * the store handle's window is full (max_inflight appends, or, for a batch of
 * several events, max_batches_inflight batches, are in flight), and `cb` will
 * not be called. Try again after an acknowledgement (any callback of this
 * handle) has freed a place. For callers that keep their own queue and must
 * not block: an event loop, es_sink. */
ES_API es_status es_append_batch_try_async(es_store *store, const es_event_spec *events, size_t n,
                                           es_append_cb cb, void *closure);

/* Sends `n` (1..ES_BATCH_MAX) events as plain publishes that ask for no
 * acknowledgement: the cheapest way to load many events (neither the server
 * nor the client handles an answer per event), and the least certain, as
 * nothing says whether the server stored them. A refusal (a stream limit, a
 * permission, an invalid message) is silent, and so is an event id already
 * stored (a duplicate is dropped). What the caller can rely on: the server
 * handles one connection's publishes to the stream in the order sent, so
 * once a LATER acknowledged append of this handle (es_append,
 * es_append_batch, an asynchronous append's callback) is acknowledged,
 * every event sent before it has been handled: stored or dropped. Check
 * what got in then (es_store_subject_counts, or reading back). There is no
 * backpressure either: nats-server queues a stream's incoming messages up
 * to a cap (10,000 or 100,000 messages by version, and 128 MB) and drops
 * past it, so wait for an acknowledged append after each call or so: at
 * most ES_BATCH_MAX unacknowledged events in flight. Invalid input is
 * refused before anything is sent, as for es_append_batch; an
 * expectation (anything but ES_EXPECT_ANY) is ES_ERR_INVALID, since nobody
 * would hear that it failed. ES_OK means sent (buffered for the socket),
 * not stored. Thread-safe. */
ES_API es_status es_append_unacked(es_store *store, const es_event_spec *events, size_t n);

/* Waits until every asynchronous append (and import, es/import.h) of this
 * handle has completed, its callback included. */
ES_API es_status es_append_flush(es_store *store, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
