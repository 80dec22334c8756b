/* The entity types of a store: an index in the store's KV bucket
 * ES_<store>_types, one key per entity type that has events (with tenancy,
 * "<tenant>.<entity type>"), so that a reader can learn which types exist —
 * and, watching it, when a new one appears — without reading events.
 * docs/api.md, "Entity types", says who writes it and why it is not done by
 * every append.
 *
 *   es_entity_types *t;
 *   es_entity_types_open(store, &t);
 *   es_entity_types_add(t, NULL, "app_bsky_feed_like");  // before its first append
 *   es_entity_types_list(t, print_type, NULL);
 *   es_entity_types_watch *w;
 *   es_entity_types_watch_start(t, on_type, ctx, &w);    // every type now, then new ones
 *   ...
 *   es_entity_types_watch_destroy(w);
 *   es_entity_types_destroy(t);
 *
 * The bucket is deleted with the store. A handle is safe to use from many
 * threads. */
#ifndef ES_ENTITY_TYPES_H
#define ES_ENTITY_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_entity_types es_entity_types;

/* How many (tenant, entity type) pairs a handle remembers having written:
 * past it, adds still work but each asks the bucket (a firehose's
 * collections are open-ended; this bounds the memory they take). */
#define ES_ENTITY_TYPES_REMEMBERED 65536

/* Opens the store's index, creating its bucket when missing. The store must
 * outlive the handle; the caller owns *out. */
ES_API es_status es_entity_types_open(es_store *store, es_entity_types **out);
/* Accepts NULL. Stop watches first. */
ES_API void es_entity_types_destroy(es_entity_types *t);

/* Records that `entity_type` (of `tenant`: NULL without tenancy, required
 * with it) has events. The first call for a pair writes it when the bucket
 * does not have it yet (a create: writers racing write it once); later calls
 * for the same pair on the same handle cost nothing (remembered in memory,
 * see ES_ENTITY_TYPES_REMEMBERED). Call it before appending the type's first
 * event, so that the index never lags the stream. ES_ERR_INVALID for a bad
 * name or a tenant the store does not take. */
ES_API es_status es_entity_types_add(es_entity_types *t, const char *tenant,
                                     const char *entity_type);

/* Called per indexed type; the strings are valid during the call (tenant
 * NULL without tenancy). Return ES_OK to go on; anything else stops the
 * walk, which returns it. */
typedef es_status (*es_entity_type_cb)(const char *tenant, const char *entity_type,
                                       void *closure);

/* Every indexed type, in no particular order. Keys that are not an entity
 * type (written by something else) are skipped. */
ES_API es_status es_entity_types_list(es_entity_types *t, es_entity_type_cb cb, void *closure);

/* Rebuilds the index of a store written without it (or checks one): adds
 * every entity type found in the stream's subjects (es_store_subject_counts:
 * memory bounded by one page of subjects, time by the number of distinct
 * subjects). *added (may be NULL) gets how many were missing. */
ES_API es_status es_entity_types_rebuild(es_entity_types *t, uint64_t *added);

/* ---- watching ------------------------------------------------------------ */

typedef struct es_entity_types_watch es_entity_types_watch;

/* Called on the watch's own thread, one call at a time, for each indexed
 * type: every one present when the watch started, then each new one as it
 * is added. A type is normally reported once; two handles racing to write
 * it may repeat it, so a caller keeping a set treats a repeat as nothing.
 * The strings are valid during the call. */
typedef void (*es_entity_types_watch_cb)(const char *tenant, const char *entity_type,
                                         void *closure);

/* Follows the index. Returns once the types present now have been
 * delivered (ES_ERR_TIMEOUT after the store's timeout). The caller owns
 * *out. */
ES_API es_status es_entity_types_watch_start(es_entity_types *t, es_entity_types_watch_cb cb,
                                             void *closure, es_entity_types_watch **out);

/* Stops the watch: once it returns no callback runs. Not from inside the
 * callback. Accepts NULL. */
ES_API void es_entity_types_watch_destroy(es_entity_types_watch *w);

#ifdef __cplusplus
}
#endif
#endif
