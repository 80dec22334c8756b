/* --backfill-all and --collection-signal (docs/atproto.md, "Backfill"): the
 * repositories a relay or PDS lists (com.atproto.sync.listRepos, or
 * listReposByCollection), read a page at a time on a thread of its own — a
 * page is an HTTP round trip the live ingester must not wait for — into a
 * bounded queue the ingester's thread drains (listing_drain) when its
 * backfill queue has room. Failures that may pass (429, 5xx, timeouts) are
 * tried again from the same cursor, waiting Retry-After or a second per
 * failure in a row (60 s at most); others end the listing (logged) with what
 * was listed. */
#ifndef ES_INGEST_LISTING_H
#define ES_INGEST_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto_repos.h>
#include <es/es.h>

#include "ingest.h"

typedef struct listing listing;

/* One listed repository. listReposByCollection gives DIDs only: rev "",
 * active true. */
typedef struct listing_repo {
    const char *did;
    size_t did_len;
    const char *rev;    /* "" when not listed */
    bool active;
    const char *status; /* when not active: as listed ("takendown", ...), or NULL */
} listing_repo;

/* Starts the thread listing cfg->backfill_host (--backfill-all, or
 * --collection-signal's collection). */
es_status listing_open(const ingest_config *cfg, listing **out);
/* Stops the thread (a page being read is finished first). Accepts NULL. */
void listing_close(listing *l);

/* Hands at most `max` listed repositories to fn (on the calling thread),
 * oldest first; fn's status other than ES_OK stops (the repository stays
 * first). */
void listing_drain(listing *l, size_t max, es_status (*fn)(void *ctx, const listing_repo *r),
                   void *ctx);

/* The listing is over and every repository it listed was drained. */
bool listing_done(listing *l);

typedef struct listing_stats {
    uint64_t pages, listed;
} listing_stats;

void listing_get_stats(listing *l, listing_stats *out);

#endif
