/* The decide/evolve helper, as Rita has it: load an entity into the caller's
 * state, let the caller decide which events a command produces, and append
 * them with the entity's expected sequence set automatically, retrying on a
 * conflict (another writer got there first) within a time budget. */
#ifndef ES_DECIDE_H
#define ES_DECIDE_H

#include <es/export.h>
#include <es/append.h>
#include <es/buf.h>
#include <es/read.h>
#include <es/snapshot.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The events a decision produces; filled by the decide callback. */
typedef struct es_decision es_decision;

/* Adds an event (copied, so the spec and its buffers may live on the stack).
 * An event with no entity_type/entity_id/tenant is for the decided entity.
 * At most ES_BATCH_MAX events per decision. */
ES_API es_status es_decision_add(es_decision *d, const es_event_spec *event);

/* Refuses the command, saying why: es_decide appends nothing (events added
 * before are dropped), tries no more and returns ES_ERR_ABORTED, with
 * es_last_error() being `reason` (copied; cut at 255 bytes; NULL or "" gives
 * a generic text). Returns ES_ERR_ABORTED, so that decide can end with
 * `return es_decision_reject(d, "insufficient funds");`. The refusal
 * stands even if decide then returns ES_OK. */
ES_API es_status es_decision_reject(es_decision *d, const char *reason);

typedef struct es_decider {
    /* Puts `state` back to its initial value (before each attempt). Optional. */
    es_status (*reset)(void *state);
    /* Applies one stored event to `state`. */
    es_status (*evolve)(void *state, const es_event *ev);
    /* Decides, from the evolved state, which events to append (none is fine).
     * A status other than ES_OK is returned by es_decide as it is, without
     * retrying; to refuse with a reason, use es_decision_reject. */
    es_status (*decide)(void *state, es_decision *d);
} es_decider;

typedef struct es_decide_options {
    /* A conflict is retried, after a jittered backoff (2 ms doubling to
     * 64 ms, +-25 %), while both bounds allow: */
    int64_t budget_ms; /* no retry starts later than this after the call
                          began (default 5000; 0: no time bound) */
    int max_attempts;  /* attempts in all (default 0: no count bound) */
    /* At least one bound must be set. The time budget is the default
     * because contention is a matter of time, not of attempts: with it, 4
     * threads x 25 commands on one entity all go through (a count of 5
     * lost 8-12 of them; conformance, concurrency group). */
    /* Snapshot policy: load from the entity's latest snapshot, and save a
     * new one whenever a load replayed at least snapshot_every events past
     * it. The snapshot is taken of the loaded state, before decide runs. A
     * failed save does not fail the command. */
    es_snapshots *snapshots;   /* NULL: no snapshots (default) */
    uint64_t snapshot_every;   /* default 100 */
    uint32_t snapshot_version; /* the state encoding's version (default 1) */
    /* Required with snapshots: append the state's bytes to `out`; restore
     * the state (after reset) from such bytes. */
    es_status (*snapshot_write)(const void *state, es_buf *out);
    es_status (*snapshot_read)(void *state, const void *data, size_t len);
} es_decide_options;

ES_API void es_decide_options_init(es_decide_options *opts);

/* Runs one command against the entity named by `entity` (entity_type and
 * entity_id required; event_type must be NULL); opts NULL: the defaults.
 * Each attempt resets `state` (reset), loads the entity into it (evolve),
 * asks decide for events and appends them as one atomic batch, the first
 * event for the decided entity expecting the sequence the state was loaded
 * at (or no events). Returns:
 *  - ES_OK: the events are stored (result: their sequences), or decide
 *    added none (nothing appended, result zero);
 *  - ES_ERR_ABORTED from es_decision_reject, with its reason in
 *    es_last_error(); any other status of reset, evolve or decide as it is;
 *  - ES_ERR_CONFLICT once the budget or max_attempts is spent, with
 *    result->actual_seq the entity's last sequence;
 *  - the append's failures (es_append_batch).
 * `result` may be NULL. Thread-safe as es_append is; the callbacks run on
 * the calling thread. */
ES_API es_status es_decide(es_store *store, const es_filter *entity, const es_decider *decider,
                    void *state, const es_decide_options *opts, es_append_result *result);

#ifdef __cplusplus
}
#endif
#endif
