/* Looking into a server and a store without reading their events: the
 * stores on a server, a store's KV buckets, its events counted per
 * (entity, event type) and per entity, from JetStream's own bookkeeping.
 * For tools, dashboards and checks; every listing is paged and bounded by
 * what the server announces, so memory stays bounded whatever the store's
 * size. Callbacks run on the calling thread; what they are handed is valid
 * during the call only; a callback's non-OK status stops the walk and is
 * returned. */
#ifndef ES_INSPECT_H
#define ES_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/export.h>
#include <es/read.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- stores -------------------------------------------------------------- */

typedef es_status (*es_store_list_cb)(const char *name, const es_store_info *info, void *closure);

/* Calls cb for every event store on the server (the streams ES_<name> that
 * es_store_open would open), in the server's order, with its info. Other
 * streams, even under $ES.>, are passed over. `opts` (may be NULL) gives
 * the timeout and where the JetStream API is. Thread-safe. */
ES_API es_status es_store_list(natsConnection *nc, const es_store_options *opts,
                               es_store_list_cb cb, void *closure);

/* ---- KV buckets ---------------------------------------------------------- */

/* One of the store's KV buckets ("ES_<store>_<kind>"). */
typedef struct es_bucket_info {
    const char *bucket; /* the bucket's name */
    const char *kind;   /* what it keeps: "checkpoints", "dicts", "identity", "keys", "repos",
                           "snapshots", "tracked" or "types" */
    uint64_t values;    /* messages in it: values, their history and delete markers */
    uint64_t bytes;
} es_bucket_info;

typedef es_status (*es_bucket_cb)(const es_bucket_info *bucket, void *closure);

/* Calls cb for each of the store's KV buckets that exists, by name.
 * Thread-safe. */
ES_API es_status es_store_buckets(es_store *store, es_bucket_cb cb, void *closure);

/* ---- counts -------------------------------------------------------------- */

/* The events of one entity with one event type (one subject). */
typedef struct es_subject_count {
    const char *tenant; /* NULL without tenancy */
    const char *entity_type;
    const char *entity_id; /* unescaped, NUL-terminated; entity_id_len bytes */
    size_t entity_id_len;
    const char *event_type;
    uint64_t events;
    /* True for the first count of an entity: the counts come sorted by
     * subject, so the counts of one entity are adjacent. */
    bool first_of_entity;
} es_subject_count;

typedef es_status (*es_subject_count_cb)(const es_subject_count *count, void *closure);

/* Calls cb with the number of events of every (entity, event type) of the
 * store that `filter` (NULL: all) matches, sorted by subject, from the
 * stream's per-subject state: no event is read. Subjects under $ES.<store>.>
 * that are not event subjects (published there by something else) are
 * passed over and counted in *skipped (may be NULL). Thread-safe. */
ES_API es_status es_store_subject_counts(es_store *store, const es_filter *filter,
                                         es_subject_count_cb cb, void *closure, uint64_t *skipped);

/* One entity: how many events it has and where the last one is. */
typedef struct es_entity_info {
    const char *tenant; /* NULL without tenancy */
    const char *entity_type;
    const char *entity_id; /* unescaped, NUL-terminated; entity_id_len bytes */
    size_t entity_id_len;
    uint64_t events;   /* of the event types the filter matches */
    uint64_t last_seq; /* the stream sequence of its last such event: what
                          ES_EXPECT_SEQ takes when the filter names no event type */
} es_entity_info;

typedef es_status (*es_entity_cb)(const es_entity_info *entity, void *closure);

/* Calls cb for every entity with events matching `filter` (NULL: all),
 * sorted by type and escaped id: the counts as es_store_subject_counts
 * gives them, and the last sequences by batched direct gets of each
 * subject's last message (no consumer). Thread-safe. */
ES_API es_status es_store_entities(es_store *store, const es_filter *filter, es_entity_cb cb,
                                   void *closure);

#ifdef __cplusplus
}
#endif
#endif
