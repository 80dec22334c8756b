/* Resyncs and backfills inside the ingester (docs/atproto.md, "Resync"):
 * the backfill workers (backfill.h) fed with the repositories to fetch —
 * those the chain state finds desynchronized (a refused commit, a chain
 * break, a #sync that disagrees, a dropped append), those marked so in KV
 * when the ingester starts, those given with --backfill — and the hold
 * (hold.h) that keeps their live frames aside until their snapshot is in.
 *
 * Per repository: its live frames are held from the moment it is queued; it
 * is handed to a worker once the frames it had in the sink have settled
 * (the snapshot's first append expects the repository's last event: nothing
 * of ours may land in between); its result moves the chain state; then the
 * frames held are released, in order, through the caller's `release`
 * function, which decodes them again and lets the chain state decide as for
 * any frame. A snapshot that cannot be applied now (tried again after a
 * backoff) drops the frames held: the next snapshot covers them.
 *
 * Everything runs on the ingester's thread; only the fetching and applying
 * happens on the workers. */
#ifndef ES_INGEST_RESYNCS_H
#define ES_INGEST_RESYNCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto.h>
#include <es/es.h>

#include "backfill.h"
#include "chain.h"
#include "hold.h"
#include "ingest.h"
#include "listing.h"

typedef struct resyncs resyncs;

/* Opens the workers with the configuration's backfill settings (the
 * identity is required: a snapshot is verified) and registers with the
 * chain state for the repositories it finds desynchronized. The store, the
 * identity and the chain outlive the handle. */
es_status resyncs_open(const ingest_config *cfg, es_store *store, es_atp_identity *identity,
                       chain *ch, resyncs **out);
/* Stops the workers (a snapshot being applied stops between batches: the
 * next resync resumes it); frames still held are dropped (the cursor never
 * passed them). Accepts NULL. */
void resyncs_close(resyncs *rs);

/* Queues a repository: `force` fetches and applies it whatever rev the
 * store has (a desynchronized one), else it is left alone when the PDS
 * serves no newer rev than the chain state knows (a backfill). Its live
 * frames are held from now on. ES_ERR_INVALID for a string that is not a
 * DID, ES_ERR_LIMIT past the backfill queue's bound. */
es_status resyncs_queue(resyncs *rs, const char *did, size_t len, bool force);

/* A repository a host listed (listing.h; ctx is the resyncs): recorded
 * when the host says it is not active, left alone when the store has its
 * rev, else queued as a backfill. */
es_status resyncs_listed(void *ctx, const listing_repo *r);

/* Every repository the store's chain states mark desynchronized. */
es_status resyncs_queue_desynced(resyncs *rs, es_store *store);

/* Called for every valid frame of a repository before the chain state
 * decides about it: true when the frame was held (or, past the hold's
 * bound, dropped — a snapshot to come covers it): it is not to be offered. */
bool resyncs_divert(resyncs *rs, const es_atp_batch *b, const uint8_t *frame, size_t len);

/* What the ingester did with a released frame. */
typedef enum resyncs_released {
    RESYNCS_OFFERED, /* offered to the sink with events: the cursor waits for it */
    RESYNCS_DONE,    /* nothing to store (skipped, refused, held again) */
    RESYNCS_FULL,    /* the sink is full: the same frame comes again later */
} resyncs_released;

typedef resyncs_released (*resyncs_release_fn)(void *ctx, const uint8_t *frame, size_t len);

/* Hands queued repositories to the workers, polls their results (the chain
 * state follows, the log says), releases held frames through `release`. */
void resyncs_tick(resyncs *rs, resyncs_release_fn release, void *ctx);

/* The sink settled a unit of `did` at `position` (a released frame, maybe). */
void resyncs_settled(resyncs *rs, const char *did, size_t len, uint64_t position);

/* The highest position the cursor may take: below every frame held or
 * released and not settled. False when nothing limits it. */
bool resyncs_cursor_limit(resyncs *rs, uint64_t *max);

/* Repositories queued or being fetched, or frames held or being released
 * (retries waiting for their time do not count): a run ending at the end
 * of its source waits for this to be false. */
bool resyncs_busy(resyncs *rs);

/* Nothing at all to do: not busy, and no retry waiting for its time. */
bool resyncs_idle(resyncs *rs);

typedef struct resyncs_stats {
    uint64_t queued_total;   /* repositories queued so far */
    uint64_t waiting_settle; /* queued, waiting for their frames in the sink to settle */
    uint64_t listed_current, listed_inactive; /* listed: the store had the rev; not active */
    backfill_stats backfill;
    hold_stats hold;
} resyncs_stats;

void resyncs_get_stats(resyncs *rs, resyncs_stats *out);

#endif
