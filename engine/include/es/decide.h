/* The decide/evolve helper, as Rita has it: load an entity into the caller's
 * state, let the caller decide which events a command produces, and append
 * them with the entity's expected sequence set automatically, retrying on a
 * conflict (another writer got there first) a bounded number of times. */
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

typedef struct es_decider {
    /* Puts `state` back to its initial value (before each attempt). Optional. */
    es_status (*reset)(void *state);
    /* Applies one stored event to `state`. */
    es_status (*evolve)(void *state, const es_event *ev);
    /* Decides, from the evolved state, which events to append (none is fine).
     * A status other than ES_OK is returned by es_decide as it is. */
    es_status (*decide)(void *state, es_decision *d);
} es_decider;

typedef struct es_decide_options {
    int max_attempts; /* attempts in all, >= 1 (default 5) */
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
 * entity_id required; event_type must be NULL). The decided events are
 * appended as one atomic batch; the first event for the decided entity
 * expects the sequence the state was loaded at (or no events). Returns
 * ES_ERR_CONFLICT only after max_attempts conflicting attempts. */
ES_API es_status es_decide(es_store *store, const es_filter *entity, const es_decider *decider,
                    void *state, const es_decide_options *opts, es_append_result *result);

#ifdef __cplusplus
}
#endif
#endif
