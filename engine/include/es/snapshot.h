/* Snapshots: an entity's state saved as bytes, with the sequence of the last
 * event it reflects, in the store's KV bucket ES_<store>_snapshots. Loading
 * from a snapshot restores that state and replays only the newer events,
 * so a long-lived entity loads in one snapshot read plus a short tail.
 *
 * The library never interprets the state bytes: the caller encodes them and
 * gives each encoding a version number; snapshots saved under another
 * version are ignored on load (the entity is then replayed from its first
 * event), so changing the state's shape needs no migration. Snapshots are a
 * cache: deleting them all is always safe. The bucket goes with the store. */
#ifndef ES_SNAPSHOT_H
#define ES_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/read.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_snapshots es_snapshots;

typedef struct es_snapshot {
    uint64_t seq;      /* stream sequence of the last event the state reflects */
    uint32_t version;  /* the caller's state-encoding version */
    int64_t time_ns;   /* when it was saved (Unix ns, saver's clock) */
    uint64_t revision; /* KV revision */
    void *data;        /* the state bytes; owned by the struct (es_snapshot_clear) */
    size_t len;
} es_snapshot;

/* Opens the store's snapshot bucket, creating it when missing. The store
 * must outlive the handle; the caller owns *out. Thread-safe. */
ES_API es_status es_snapshots_open(es_store *store, es_snapshots **out);
ES_API void es_snapshots_destroy(es_snapshots *snaps); /* accepts NULL */

/* Saves `state` as the snapshot of `entity` (entity_type and entity_id, and
 * the tenant in a store with tenancy) at sequence `seq`. A snapshot never
 * goes back: when one at `seq` or later is stored already nothing is written
 * and ES_OK is returned (writers racing are resolved by compare-and-set on
 * the KV revision). ES_ERR_TOO_LARGE when the state does not fit a message. */
ES_API es_status es_snapshot_save(es_snapshots *snaps, const es_filter *entity, uint64_t seq,
                           uint32_t version, const void *state, size_t len);

/* The latest snapshot of `entity`: ES_ERR_NOT_FOUND when there is none. The
 * caller owns out->data (es_snapshot_clear). */
ES_API es_status es_snapshot_get(es_snapshots *snaps, const es_filter *entity, es_snapshot *out);
ES_API void es_snapshot_clear(es_snapshot *snap); /* accepts NULL */

/* Drops the entity's snapshot (ES_ERR_NOT_FOUND when there is none). */
ES_API es_status es_snapshot_delete(es_snapshots *snaps, const es_filter *entity);

/* Gives the caller the snapshot's state bytes, valid during the call. */
typedef es_status (*es_snapshot_restore_cb)(const void *state, size_t len, void *closure);

typedef struct es_snapshot_load_result {
    uint64_t snapshot_seq; /* the snapshot restored, 0 when none was (none, or another version) */
    uint64_t last_seq;     /* the sequence the state now reflects (0: the entity has no events) */
    size_t replayed;       /* events applied after the snapshot */
} es_snapshot_load_result;

/* Loads `entity` the fast way: restores its latest snapshot of `version`
 * through `restore` (not called when there is none), then hands only the
 * events after it to `cb`, as es_load does. The state that results equals a
 * full replay. `result` may be NULL. Thread-safe; callbacks run on the
 * calling thread. */
ES_API es_status es_load_from_snapshot(es_snapshots *snaps, const es_filter *entity, uint32_t version,
                                es_snapshot_restore_cb restore, es_event_cb cb, void *closure,
                                es_snapshot_load_result *result);

#ifdef __cplusplus
}
#endif
#endif
