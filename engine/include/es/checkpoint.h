/* Checkpoints: named positions kept in the store's KV bucket
 * ES_<store>_checkpoints — where an indexer, an ingester's relay cursor or
 * any other consumer got to — each with an optional JSON blob and the time
 * it was set. Writes compare-and-set on the KV revision, so two instances
 * sharing a name cannot move a checkpoint backwards: a stale writer gets
 * ES_ERR_CONFLICT. The bucket is deleted with the store.
 *
 *   es_checkpoints *cps;
 *   es_checkpoints_open(store, &cps);
 *   es_checkpoint cp;
 *   uint64_t cursor = es_checkpoint_get(cps, "relay", &cp) == ES_OK ? cp.position : 0;
 *   es_checkpoint_clear(&cp);
 *   ...
 *   es_checkpoint_advance(cps, "relay", new_cursor, NULL, NULL);   // forward only
 *
 * Names are KV keys: 1..255 bytes of [-/_=.A-Za-z0-9], not starting or ending
 * with '.', no "..". A handle is safe to use from many threads. */
#ifndef ES_CHECKPOINT_H
#define ES_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_checkpoints es_checkpoints;

#define ES_CHECKPOINT_NAME_MAX     255
#define ES_CHECKPOINT_DATA_MAX     65536     /* bytes of JSON blob */
#define ES_CHECKPOINT_POSITION_MAX INT64_MAX /* positions travel as JSON integers */

/* Expected revisions for es_checkpoint_set / es_checkpoint_delete. */
#define ES_CHECKPOINT_ANY UINT64_MAX /* no check */
#define ES_CHECKPOINT_NEW 0          /* set: the checkpoint must not exist yet */

typedef struct es_checkpoint {
    uint64_t position; /* a stream sequence, a relay cursor, ... */
    char *data;        /* the JSON blob as compact text (NUL-terminated), or NULL; owned by
                          the struct: es_checkpoint_clear frees it */
    size_t data_len;
    int64_t time_ns;   /* when it was set, by the writer's clock (Unix ns) */
    uint64_t revision; /* its KV revision: what to expect in the next compare-and-set */
} es_checkpoint;

/* Opens the store's checkpoint bucket, creating it when missing. The store
 * must outlive the handle; the caller owns *out. */
ES_API es_status es_checkpoints_open(es_store *store, es_checkpoints **out);

/* The sets of checkpoints a store keeps, each in its own bucket (deleted
 * with the store). */
typedef enum es_checkpoint_bucket {
    ES_CHECKPOINTS_DEFAULT = 0, /* ES_<store>_checkpoints: cursors, positions (history 5) */
    ES_CHECKPOINTS_REPOS,       /* ES_<store>_repos: one entry per source repository, e.g. the
                                   ATProto chain state (es/atproto_repos.h); history 1 */
    ES_CHECKPOINTS_IDENTITY,    /* ES_<store>_identity: one entry per identity resolved, e.g. the
                                   ATProto DID documents (es_atp_identity_options.store);
                                   history 1 */
    ES_CHECKPOINTS_TRACKED,     /* ES_<store>_tracked: one entry per source the store follows, e.g.
                                   the ATProto tracked repositories (es/atproto_tracked.h);
                                   history 1 */
    ES_CHECKPOINTS_DEAD_LETTERS, /* ES_<store>_dead_letters: one entry per event a deliverer gave
                                    up on (position: its sequence; data: why), e.g.
                                    es-atproto-serve's Tap-style delivery; history 1 */
} es_checkpoint_bucket;

/* es_checkpoints_open on another set: the same calls, another bucket. */
ES_API es_status es_checkpoints_open_bucket(es_store *store, es_checkpoint_bucket set,
                                            es_checkpoints **out);
/* Accepts NULL. Stop watches first. */
ES_API void es_checkpoints_destroy(es_checkpoints *cps);

/* Reads a checkpoint: ES_ERR_NOT_FOUND when there is none (never set, or
 * deleted). On success the caller owns out->data (es_checkpoint_clear). */
ES_API es_status es_checkpoint_get(es_checkpoints *cps, const char *name, es_checkpoint *out);

/* Frees out->data and zeroes the struct. Accepts NULL. */
ES_API void es_checkpoint_clear(es_checkpoint *cp);

/* Sets a checkpoint when its current revision is `expect_revision`:
 * ES_CHECKPOINT_NEW (it must not exist), a revision from es_checkpoint_get,
 * or ES_CHECKPOINT_ANY (no check). ES_ERR_CONFLICT when someone else wrote it
 * in between. `json` is an optional JSON text (NULL: none), checked and
 * stored compact; ES_ERR_INVALID when it does not parse or is over
 * ES_CHECKPOINT_DATA_MAX. *revision (may be NULL) gets the new revision. */
ES_API es_status es_checkpoint_set(es_checkpoints *cps, const char *name, uint64_t position,
                            const char *json, uint64_t expect_revision, uint64_t *revision);

/* Moves a checkpoint forward only: creates it, or sets it when its stored
 * position is at or below `position` (compare-and-set, retried when another
 * writer races ahead). ES_ERR_CONFLICT when the stored position is beyond
 * `position`: this writer is stale. */
ES_API es_status es_checkpoint_advance(es_checkpoints *cps, const char *name, uint64_t position,
                                const char *json, uint64_t *revision);

/* Deletes a checkpoint when its revision is `expect_revision` (or any with
 * ES_CHECKPOINT_ANY). ES_ERR_NOT_FOUND when there is none, ES_ERR_CONFLICT on
 * a revision mismatch. */
ES_API es_status es_checkpoint_delete(es_checkpoints *cps, const char *name, uint64_t expect_revision);

/* Called per checkpoint; `cp` is valid during the call. Return ES_OK to go
 * on; anything else stops the walk, which returns it. */
typedef es_status (*es_checkpoint_cb)(const char *name, const es_checkpoint *cp, void *closure);

/* Every current checkpoint, in no particular order. Entries that do not
 * decode (written by something else) are skipped. */
ES_API es_status es_checkpoint_list(es_checkpoints *cps, es_checkpoint_cb cb, void *closure);

/* ---- watching ------------------------------------------------------------ */

typedef struct es_checkpoint_watch es_checkpoint_watch;

/* Called on the watch's own thread for each current value, then for each
 * change; `cp` is NULL when the checkpoint was deleted (a checkpoint deleted
 * before the watch started is no current value: not reported). */
typedef void (*es_checkpoint_watch_cb)(const char *name, const es_checkpoint *cp, void *closure);

/* Watches one checkpoint, or a pattern ("ingest.*", "ingest.>"), or all
 * (pattern NULL): current values first, then changes as they happen. The
 * caller owns *out (es_checkpoint_watch_destroy). */
ES_API es_status es_checkpoint_watch_start(es_checkpoints *cps, const char *pattern,
                                    es_checkpoint_watch_cb cb, void *closure,
                                    es_checkpoint_watch **out);

/* Waits until the watch has delivered every current value (the callbacks
 * for them have returned): ES_OK, ES_ERR_TIMEOUT after timeout_ms, or
 * ES_ERR_STOPPED when the watch ended first (its connection closed). */
ES_API es_status es_checkpoint_watch_wait_current(es_checkpoint_watch *w, int64_t timeout_ms);

/* Stops the watch: once it returns no callback runs. Not from inside the
 * callback. Accepts NULL. */
ES_API void es_checkpoint_watch_destroy(es_checkpoint_watch *w);

#ifdef __cplusplus
}
#endif
#endif
