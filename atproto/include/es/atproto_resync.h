/* Resync: a repository's full state (a getRepo CAR, as its PDS serves it)
 * applied to the store as the events that make what the store holds for
 * the repository equal to it — a create for each record the store lacks, an
 * update for each whose CID differs, a delete for each the repository no
 * longer has — so every entity stream stays a faithful history. The same
 * call backfills a repository the store has never seen (all creates).
 * docs/atproto.md, "Resync and backfill".
 *
 *   es_car car;             // es_car_parse of the fetched CAR, verified whole first
 *   es_atp_resync_options o;
 *   es_atp_resync_options_init(&o);
 *   o.did = did;
 *   es_atp_resync_result r;
 *   es_status s = es_atp_resync_apply(store, &car, &o, &r);
 *   // ES_OK: the store now holds exactly the CAR's records; r.rev, r.data
 *   // are what the per-repository chain state moves to (es/atproto_repos.h).
 *
 * What the store holds is read back from the repository's own events (every
 * entity whose id is the DID, folded in stream order), not from a cache:
 * the events are the truth. Events are appended in key order, in batches of
 * at most o.batch_max (ES_BATCH_MAX), each marked not live (metadata
 * live=false) and carrying the fetched commit's rev, CID, data root and
 * signature (the audit metadata of docs/atproto.md). Their ids are
 * "<did>/<rev>/<collection>/<rkey>@<seq>", seq the repository's last stored
 * event when the call read it back: the same difference from the same
 * stored state has the same ids (two racing resyncs store it once), a later
 * one never collides with it.
 *
 * How a batch is stored. By default its first event is appended alone,
 * expecting the repository's last event (all its entities) to be the one
 * the call knows of, and the others as plain publishes pipelined together
 * (es_append_batch_async): a batch may be stored in part when the call
 * fails. With o.atomic_batches, each batch is one atomic batch (all or
 * nothing), carrying the same expectation; that is several times slower on
 * a file store (nats-server stages and syncs each atomic batch on disk) and
 * buys nothing a resync needs, as the next paragraph says.
 *
 * Interrupted (a crash, a failed append, o.on_batch stopping it), the call
 * can simply be made again, with this CAR or a newer one: it reads back
 * what is stored, whatever subset of the events got in, so nothing already
 * in is repeated and only the remaining difference is appended.
 *
 * Another writer. A writer that adds an event to the repository while the
 * call runs makes it fail with ES_ERR_CONFLICT, and the call is then made
 * again (it reads that event back): before a batch, through the first
 * event's expectation; and, with pipelined publishes, at the end, when the
 * repository's event count (es_store_subject_counts) is not the count read
 * back plus the events this call appended (or found appended by a racing
 * resync under the same ids): an event of anyone else's stored among or
 * after the publishes. On ES_OK, therefore, the repository holds exactly
 * the events read back and this call's, and its record set equals the
 * CAR's. (Events removed meanwhile by the stream's limits or a shred also
 * make the counts differ: ES_ERR_CONFLICT, and the next call reads back.)
 * The caller holds live commits of the repository until it returns
 * (docs/atproto.md says why and how).
 *
 * The CAR must have been verified whole by the caller (signature, canonical
 * MST); this call checks again what it relies on: the commit's DID is
 * o.did, every MST node and record block hashes to its CID, keys increase. */
#ifndef ES_ATPROTO_RESYNC_H
#define ES_ATPROTO_RESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto_repos.h>
#include <es/car.h>
#include <es/entity_types.h>
#include <es/export.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_atp_resync_result {
    char rev[ES_ATP_REPO_REV_MAX + 1];  /* the applied commit's rev */
    uint8_t data[ES_ATP_REPO_DATA_MAX]; /* its MST root (binary CID) */
    size_t data_len;
    uint64_t records;       /* records in the CAR */
    uint64_t stored_events; /* the repository's record events read back */
    uint64_t created, updated, deleted, unchanged;
    uint64_t batches;  /* batches (of at most batch_max events) stored whole by this call */
    uint64_t last_seq; /* stream sequence of the last event appended (0: none) */
} es_atp_resync_result;

/* Called after each batch is stored (every event acknowledged), with the
 * counts so far; anything but ES_OK stops the call, which returns that
 * status (progress reports; the tests' interruptions). */
typedef es_status (*es_atp_resync_batch_fn)(void *closure, const es_atp_resync_result *so_far);

typedef struct es_atp_resync_options {
    const char *did; /* the repository (required); the CAR's commit must be its */
    size_t did_len;  /* 0: did is NUL-terminated */
    /* Record events of the repository read back, at most [4,000,000]:
     * ES_ERR_LIMIT beyond (each costs ~100 bytes while the call runs). */
    size_t max_events;
    size_t batch_max;  /* events per batch [ES_BATCH_MAX] */
    /* Each batch as one atomic batch (all or nothing) instead of pipelined
     * plain publishes [false]. Slower; for comparisons and tests. */
    bool atomic_batches;
    size_t max_depth;  /* DAG-CBOR nesting of records [64, as es_atp_limits] */
    size_t max_bytes;  /* bytes of the repository's events' keys and CIDs held [512 MiB] */
    int64_t time_ns;   /* the events' Rita-Time; 0: now */
    /* The store's entity-type index (es/entity_types.h): each batch's types
     * are added before it is appended. NULL: not kept [NULL]. */
    es_entity_types *types;
    es_atp_resync_batch_fn on_batch; /* may be NULL */
    void *closure;
} es_atp_resync_options;

ES_API void es_atp_resync_options_init(es_atp_resync_options *o);

/* Applies the repository in `car` (parsed, its buffer alive for the call) to
 * `store` (see above). `out` (may be NULL) gets the counts, also on failure
 * (what was done before it). ES_ERR_INVALID for bad arguments or a DID that
 * is not one; ES_ERR_DECODE (the text says why) for a CAR that is not a
 * repository of o.did (wrong DID, a missing or damaged block, keys out of
 * order, a key that is not collection/rkey); ES_ERR_LIMIT past a bound;
 * ES_ERR_CONFLICT when another writer added events of the repository
 * meanwhile; the store's status for a failed read or append. */
ES_API es_status es_atp_resync_apply(es_store *store, const es_car *car,
                                     const es_atp_resync_options *o, es_atp_resync_result *out);

#ifdef __cplusplus
}
#endif
#endif
