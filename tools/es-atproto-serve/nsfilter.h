/* Server-side selection of wantedCollections (docs/atproto.md, "Filtering by
 * NSID namespace on the server"). A collection is one subject token
 * (app_bsky_feed_like), so `app.bsky.feed.*` is no NATS wildcard; the
 * store's entity-type index (es/entity_types.h) says which collections
 * exist, and a subscriber's watch is given one filter per wanted one (plus
 * "repo": identity and account events pass any collection filter), so the
 * server sends only those. When a wanted collection appears while the watch
 * runs (the index's watch says so), the watch is widened with it from its
 * start (es_watch_add_filters): no gap, no repeat. Past ES_FILTERS_MAX
 * filters the watch reads everything and the subscriber's own filter sorts
 * (the subscriber keeps filtering in any case: DIDs, options_update).
 *
 * One ns_index per server, shared by its subscribers; thread-safe. */
#ifndef SERVE_NSFILTER_H
#define SERVE_NSFILTER_H

#include <stdbool.h>
#include <stddef.h>

#include <es/es.h>

/* The entity type of identity, account and sync events: Jetstream and Tap
 * pass them through any collection filter (the mapping of docs/atproto.md). */
#define NS_REPO_TYPE "repo"

/* The collection an entity type stores (app_bsky_feed_like: NSIDs have no
 * '_'); false for NS_REPO_TYPE and types too long to be one. */
bool ns_collection_of(const char *type, char out[ES_ENTITY_TYPE_MAX + 1]);
/* The entity type a collection (an NSID, `len` bytes) is stored under; false
 * when it cannot be one. */
bool ns_entity_type_of(const char *nsid, size_t len, char out[ES_ENTITY_TYPE_MAX + 1]);

typedef struct ns_index ns_index;

/* Opens the store's index (rebuilding it from the stream's subjects when it
 * is empty and the store is not: a store written before the index) and
 * follows it. The store must outlive it; the caller owns *out. */
es_status ns_index_open(es_store *st, ns_index **out);
/* Accepts NULL. After every watch started through it is forgotten. */
void ns_index_close(ns_index *ix);

/* Whether the subscriber wants a collection (an NSID); called from the
 * index's thread as well, under no lock of the caller's. */
typedef bool (*ns_wants_fn)(const char *collection, void *arg);

/* es_watch_start on `st` (the index's store) over the collections `wants`
 * keeps (`wants` or `ix` NULL: every event, as es_watch_start). `wo`'s filter fields are set here. The
 * watch is widened as wanted collections appear, until ns_index_forget. */
es_status ns_watch_start(ns_index *ix, es_store *st, ns_wants_fn wants, void *arg,
                         es_watch_options *wo, es_watch **out);

/* ns_watch_start's counterpart for a pulled replay (es_reader): a reader of
 * `st` after after_seq over the collections `wants` keeps, widened as
 * wanted collections appear, until ns_index_forget. The caller owns *out. */
es_status ns_reader_open(ns_index *ix, es_store *st, ns_wants_fn wants, void *arg,
                         uint64_t after_seq, es_reader **out);

/* The subscriber's wants changed (options_update): collections it wants now
 * and the watch (the reader) does not read are added, for events from its
 * position on (as Jetstream applies an update to what comes next). */
void ns_watch_refresh(ns_index *ix, es_watch *w);
void ns_reader_refresh(ns_index *ix, es_reader *rd);

/* Stops widening a watch or a reader (before es_watch_destroy,
 * es_reader_destroy). Accepts NULLs. */
void ns_index_forget(ns_index *ix, const void *watch_or_reader);

/* How many filter subjects a watch or a reader started here reads (0:
 * everything); for tests and logs. */
size_t ns_watch_filters(ns_index *ix, const void *watch_or_reader);

#endif
