/* The tracked repositories of an ATProto ingest: the set of DIDs whose
 * commits a store keeps, in the store's KV bucket ES_<store>_tracked
 * (es_checkpoints_open_bucket, ES_CHECKPOINTS_TRACKED). Anyone edits it
 * (`es-atproto-ingest repos add|remove`, an admin route, this API); a
 * running ingester follows it with a watch, so adding or removing a DID
 * needs no restart. docs/atproto.md, "Tracked repositories", says what an
 * ingester does on each change.
 *
 *   es_atp_tracked *t;
 *   es_atp_tracked_open(store, &t);
 *   es_atp_tracked_add(t, "did:plc:abc", 11);
 *   bool yes;
 *   es_atp_tracked_contains(t, "did:plc:abc", 11, &yes);
 *   es_atp_tracked_watch *w;
 *   es_atp_tracked_watch_start(t, on_change, ctx, &w);   // the current set, then changes
 *   ...
 *   es_atp_tracked_watch_destroy(w);
 *   es_atp_tracked_destroy(t);
 *
 * Key: the DID's repository key (es_atp_repo_key: "did/plc/abc"). Only DIDs
 * whose key is the DID itself can be tracked (not those es_atp_repo_key
 * hashes: over 255 bytes or an odd form), so that a deletion, which carries
 * the key alone, names its DID. Value: the engine's checkpoint form, whose
 * "time" is when the DID was added, with the data {"v":1,"did":"<DID>"};
 * entries that are not that (written by something else, a DID that is not
 * the key's) are hostile: skipped and counted, never tracked. A handle is
 * safe to use from many threads. */
#ifndef ES_ATPROTO_TRACKED_H
#define ES_ATPROTO_TRACKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_atp_tracked es_atp_tracked;

/* The longest DID that can be tracked: a repository key (ES_ATP_REPO_KEY_MAX). */
#define ES_ATP_TRACKED_DID_MAX 255

/* Opens the store's tracked set, creating its bucket when missing. The
 * store must outlive the handle; the caller owns *out. */
ES_API es_status es_atp_tracked_open(es_store *store, es_atp_tracked **out);
/* Accepts NULL. Stop watches first. */
ES_API void es_atp_tracked_destroy(es_atp_tracked *t);

/* Adds a DID to the set. ES_OK also when it was tracked already (nothing
 * is written: its added time is kept). ES_ERR_INVALID for a string that is
 * not a DID, ES_ERR_LIMIT for a DID that cannot be tracked (see above),
 * ES_ERR_CONFLICT when other writers kept changing its key. */
ES_API es_status es_atp_tracked_add(es_atp_tracked *t, const char *did, size_t len);

/* Removes a DID from the set (a KV delete; the events stored for it stay).
 * ES_ERR_NOT_FOUND when it was not tracked (nothing is written). */
ES_API es_status es_atp_tracked_remove(es_atp_tracked *t, const char *did, size_t len);

/* Whether a DID is in the set, read from the bucket; *added_ns (may be
 * NULL) gets when it was added (Unix ns, the writer's clock), 0 when not
 * tracked. An invalid DID is not tracked. */
ES_API es_status es_atp_tracked_contains(es_atp_tracked *t, const char *did, size_t len,
                                         bool *tracked, int64_t *added_ns);

/* Called per tracked DID; did is valid during the call. Return ES_OK to go
 * on; anything else stops the walk, which returns it. */
typedef es_status (*es_atp_tracked_cb)(const char *did, size_t len, int64_t added_ns,
                                       void *closure);

/* Every tracked DID, in no particular order. Hostile entries are skipped
 * and counted in *skipped (may be NULL). */
ES_API es_status es_atp_tracked_list(es_atp_tracked *t, es_atp_tracked_cb cb, void *closure,
                                     size_t *skipped);

/* ---- following the set ---------------------------------------------------- */

typedef struct es_atp_tracked_watch es_atp_tracked_watch;

/* Called on the watch's own thread, one call at a time: added true for a DID
 * put in the set, false for one taken out. did is valid during the call. */
typedef void (*es_atp_tracked_watch_cb)(const char *did, size_t len, bool added, void *closure);

/* Follows the set: every DID tracked now (added), then each change as it
 * happens. Returns once the current set has been delivered (or
 * ES_ERR_TIMEOUT after the store's timeout). Changes come as the bucket
 * saw them: normally one call per change of the set, but two writers
 * racing (two removes of one DID) may repeat one, so a caller keeping a set
 * treats a repeat as nothing. The caller owns *out. */
ES_API es_status es_atp_tracked_watch_start(es_atp_tracked *t, es_atp_tracked_watch_cb cb,
                                            void *closure, es_atp_tracked_watch **out);

/* Hostile entries the watch skipped so far (any thread). */
ES_API uint64_t es_atp_tracked_watch_skipped(const es_atp_tracked_watch *w);

/* Stops the watch: once it returns no callback runs. Not from inside the
 * callback. Accepts NULL. */
ES_API void es_atp_tracked_watch_destroy(es_atp_tracked_watch *w);

#ifdef __cplusplus
}
#endif
#endif
