/* Live frames held while their repository is resynced or backfilled
 * (docs/atproto.md, "Live commits during a resync"). Tap's promise, kept
 * here: per repository, nothing live is stored before the history it
 * follows. While a repository's snapshot is fetched and applied, its live
 * frames are copied aside (the raw frame: decoded again, and verified again,
 * when released) instead of being offered to the sink; once the snapshot
 * is in, they are released in order and the chain state decides about each
 * as usual (a rev the snapshot covers is skipped, a newer one stored).
 *
 * Bounded: at most max_repos repositories held at once, max_frames frames
 * per repository and max_bytes of frame copies in all. Past a repository's
 * bound its frames are dropped and the repository is "overflowed": its
 * later frames are not held either (hold_push says ES_ERR_LIMIT), and when
 * the snapshot in progress is in, another one must be fetched (it covers
 * what was dropped). Nothing is lost: the relay cursor never passes a frame
 * held or released and not yet settled (hold_min_seq), and a dropped frame
 * is covered by the next snapshot.
 *
 * One thread (the ingester's) uses a hold. */
#ifndef ES_INGEST_HOLD_H
#define ES_INGEST_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/es.h>

typedef struct hold hold;

typedef struct hold_options {
    size_t max_repos;  /* repositories held at once [10,000] */
    size_t max_frames; /* frames held per repository [1,000] */
    size_t max_bytes;  /* bytes of frame copies held in all [32 MiB] */
} hold_options;

void hold_options_init(hold_options *o);

es_status hold_create(const hold_options *o, hold **out);
/* Frees every frame held. Accepts NULL. */
void hold_destroy(hold *h);

typedef enum hold_state {
    HOLD_NONE,       /* not held: frames go to the sink */
    HOLD_HOLDING,    /* a snapshot is being fetched or applied: frames are kept */
    HOLD_OVERFLOWED, /* past a bound while holding: frames are skipped, another snapshot follows */
    HOLD_RELEASING,  /* the snapshot is in: kept frames go out in order (new ones queue behind) */
} hold_state;

hold_state hold_get(hold *h, const char *did, size_t len);

/* Starts holding a repository's frames (HOLD_NONE or HOLD_RELEASING ->
 * HOLD_HOLDING; frames not yet released stay, in order, and go out after
 * the next snapshot). ES_ERR_LIMIT when max_repos are held already,
 * ES_ERR_NOMEM. A repository held already stays as it is. */
es_status hold_begin(hold *h, const char *did, size_t len);

/* Keeps a copy of a frame (its relay seq `seq`) of a repository being held
 * or released. ES_ERR_LIMIT when the repository is overflowed, or becomes
 * so with this frame (its frames are dropped then); ES_ERR_INVALID when it
 * is not held. */
es_status hold_push(hold *h, const char *did, size_t len, uint64_t seq, const uint8_t *frame,
                    size_t frame_len);

/* The snapshot could not be applied now (it is tried again later): the
 * frames kept are dropped, the repository is overflowed (the next snapshot
 * covers them). */
void hold_drop(hold *h, const char *did, size_t len);

/* The snapshot is in. HOLD_HOLDING -> HOLD_RELEASING; an overflowed
 * repository returns to HOLD_NONE and false: it needs another snapshot. */
bool hold_release(hold *h, const char *did, size_t len);

/* The oldest frame of some repository being released (round robin over
 * them); false when none. The pointers stay valid until hold_pop or
 * hold_begin of that repository. */
bool hold_peek(hold *h, const char **did, size_t *did_len, uint64_t *seq, const uint8_t **frame,
               size_t *frame_len);

/* Removes the frame the last hold_peek gave (whatever the repository's
 * state became meanwhile). `unsettled`: it was offered with
 * events: its seq keeps the cursor back until hold_settled. A repository
 * with nothing left to release or settle is no longer held. */
void hold_pop(hold *h, bool unsettled);

/* A released frame of `did` at `seq` was stored or dropped by the sink. */
void hold_settled(hold *h, const char *did, size_t len, uint64_t seq);

/* The lowest seq of a frame held, or released and not settled: the cursor
 * must stay below it. False when there is none. */
bool hold_min_seq(hold *h, uint64_t *seq);

typedef struct hold_stats {
    uint64_t repos;    /* held now (any state but none) */
    uint64_t frames;   /* kept now */
    uint64_t bytes;    /* of their copies */
    uint64_t unsettled; /* released, offered, not yet settled */
    uint64_t held;     /* frames kept so far */
    uint64_t released; /* frames released so far */
    uint64_t dropped;  /* frames dropped (a bound, a snapshot to be tried again) */
    uint64_t overflows; /* repositories that went past a bound */
} hold_stats;

void hold_get_stats(hold *h, hold_stats *out);

#endif
