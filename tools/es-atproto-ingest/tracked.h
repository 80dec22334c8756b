/* The ingester's view of the tracked repositories (es/atproto_tracked.h,
 * bucket ES_<store>_tracked): an in-memory set of DIDs that follows the
 * bucket through a watch, so a DID added or removed by `es-atproto-ingest
 * repos add|remove` (or anyone) takes effect without a restart.
 *
 * The watch's thread only queues changes (a small locked queue, bounded);
 * the ingester's tick thread takes them with tracked_poll, which applies
 * them to the set and hands each to the caller, in the order the bucket
 * saw them. A full queue is not waited on: its changes are dropped and the
 * next poll lists the bucket again instead, handing over the difference.
 * The set holds at most max_tracked DIDs; past it, DIDs added are left out
 * and counted (tracked_stats), not handed over. docs/atproto.md, "Tracked
 * repositories". */
#ifndef ES_INGEST_TRACKED_H
#define ES_INGEST_TRACKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/es.h>

typedef struct tracked tracked;

#define TRACKED_MAX_DEFAULT 100000   /* --max-tracked's default: ~100 bytes a DID */
#define TRACKED_MAX_LIMIT   10000000 /* its largest value */
#define TRACKED_QUEUE_MAX   1024     /* changes queued between two polls before a relist */

/* Called by tracked_poll for each change of the set: added true for a DID
 * now tracked, false for one no longer tracked. did is valid during the
 * call. */
typedef void (*tracked_fn)(void *ctx, const char *did, size_t len, bool added);

/* Opens the store's tracked set and starts following it (max_tracked 0:
 * TRACKED_MAX_DEFAULT). The current set is queued when this returns: the
 * first tracked_poll hands every tracked DID over as added. The store must
 * outlive the handle; the caller owns *out (tracked_close). */
es_status tracked_open(es_store *store, size_t max_tracked, tracked **out);

/* Applies the queued changes (or, after an overflow, lists the bucket
 * again) and calls fn(ctx, ...) for each change of the set, in order. From
 * one thread at a time (the tick thread); fn may be NULL. */
es_status tracked_poll(tracked *t, tracked_fn fn, void *ctx);

/* Whether a DID is in the set as of the last poll: O(1), any thread. */
bool tracked_contains(tracked *t, const char *did, size_t len);

/* DIDs in the set as of the last poll (any thread). */
size_t tracked_count(tracked *t);

typedef struct tracked_stats {
    uint64_t over_limit; /* DIDs left out: the set was full (max_tracked) */
    uint64_t relists;    /* times the queue overflowed and the bucket was listed again */
    uint64_t skipped;    /* hostile bucket entries skipped (by the watch and the relists) */
} tracked_stats;

void tracked_get_stats(tracked *t, tracked_stats *out);

/* Stops the watch and frees everything. Accepts NULL. */
void tracked_close(tracked *t);

#endif
