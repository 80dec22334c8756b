/* Per-repository chain state in the ingester (docs/atproto.md, "Per-repo
 * chain state"): an in-memory map DID -> state, bounded and least recently
 * used, backed by the store's repository bucket (es/atproto_repos.h). Each
 * #commit is checked against it before it is offered: an inactive account,
 * a desynchronized repository or a rev not newer than the known one is
 * skipped (counted), a commit that does not follow the known one (`since`,
 * `prevData`) is refused and its repository marked desynchronized.
 *
 * The state a frame leads to is "pending" until the sink reports the
 * frame's unit stored (units of a key settle in order: a small FIFO per
 * DID); only then does it become the stored state, and only stored states
 * are written to KV — by a thread, every interval and at close, never one
 * request per commit in the hot path. Everything but that thread runs on
 * the thread driving the sink. */
#ifndef ES_INGEST_CHAIN_H
#define ES_INGEST_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/es.h>

typedef struct chain chain;

typedef struct chain_stats {
    uint64_t old_rev;        /* commits skipped: rev not newer than the known one */
    uint64_t inactive;       /* commits skipped: the account is not active */
    uint64_t desynced;       /* commits skipped: the repository is desynchronized */
    uint64_t chain_break;    /* commits refused: they do not follow the known commit */
    uint64_t repos_desynced; /* repositories marked desynchronized by this run */
    uint64_t repos_cached;   /* repositories in memory now */
    uint64_t kv_reads, kv_writes, kv_errors;
    uint64_t scanned; /* events folded in by the recovery scan at start */
} chain_stats;

/* What to do with a frame. */
typedef enum chain_verdict {
    CHAIN_STORE,         /* offer its events */
    CHAIN_SKIP_OLD,      /* rev not newer than the known one: stored before */
    CHAIN_SKIP_INACTIVE, /* the account is not active */
    CHAIN_SKIP_DESYNCED, /* the repository is desynchronized */
    CHAIN_REFUSE_BREAK,  /* does not follow the known commit: nothing stored */
} chain_verdict;

typedef struct chain_options {
    size_t max_cached;   /* repositories kept in memory (default 100,000) */
    int64_t interval_ms; /* how often dirty states are written (default 1000) */
    const char *name;    /* the ingester's --name (the recovery point is <name>.repos) */
    size_t max_scan;     /* events the start-up scan reads at most (default 1,000,000) */
} chain_options;

/* Opens the repository bucket of `store` (which must outlive the chain),
 * scans the stream from the recovery point to fold in what is stored but
 * maybe not in KV, and starts the writer thread. */
es_status chain_open(es_store *store, const chain_options *o, chain **out);

/* Writes what is stored and dirty (a few attempts), stops the thread,
 * frees. `all_settled`: every unit offered has settled (the sink is idle),
 * so the stream's end becomes the recovery point. Accepts NULL. */
void chain_close(chain *c, bool all_settled);

/* Decides about a decoded frame (#commit, #sync; others are CHAIN_STORE)
 * and, when it is to be stored, records the state it leads to as pending.
 * `*reason` gets a constant naming why a frame is refused. Reads the DID's
 * state from KV when it is not in memory (one get). */
chain_verdict chain_take(chain *c, const es_atp_batch *b, bool has_events, const char **reason);

/* The frame chain_take accepted was not taken by the sink after all (it
 * comes again): forget its pending state. */
void chain_untake(chain *c, const es_atp_batch *b);

/* The sink reports a unit of `did` (its relay seq `position`) settled:
 * stored (its last event at `stream_seq`), or dropped for good. */
void chain_settled(chain *c, const char *did, size_t did_len, uint64_t position, bool stored,
                   uint64_t stream_seq);

/* Marks a repository desynchronized (a refused commit). */
void chain_mark_desynced(chain *c, const char *did, size_t did_len, uint64_t seq,
                         const char *reason);

/* fn(ctx, did, len) runs (on the thread driving the chain, inside the call
 * that found it) each time a repository becomes desynchronized: a refused
 * or dropped frame, a chain break, a #sync that disagrees. */
void chain_on_desynced(chain *c, void (*fn)(void *ctx, const char *did, size_t len), void *ctx);

/* Whether the store knows nothing of a repository's commits: no rev stored
 * or pending, not desynchronized, active (--require-backfill backfills
 * such a repository before storing its frames). Reads KV when not in
 * memory. */
bool chain_unknown(chain *c, const char *did, size_t did_len);

/* Frames of a repository taken and not yet settled. */
size_t chain_pending(chain *c, const char *did, size_t did_len);

/* The rev the chain knows for a repository ("" when none) into out. */
void chain_known_rev(chain *c, const char *did, size_t did_len, char out[ES_ATP_REPO_REV_MAX + 1]);

/* A resync or backfill made the store equal to the repository at `rev`
 * (its MST root `data`; its last event at `stream_seq`, 0: none appended):
 * that is now the stored state, no longer desynchronized; or, when the
 * account turned out inactive, `status` ("takendown", ...; NULL: active). */
void chain_resynced(chain *c, const char *did, size_t did_len, const char *rev,
                    const uint8_t *data, size_t data_len, uint64_t stream_seq, const char *status);

/* Hands dirty states to the writer when its interval has passed. `settled`
 * and `offered` are the sink's unit counters (es_sink_stats), used for the
 * recovery point. */
void chain_tick(chain *c, uint64_t offered, uint64_t settled);

void chain_get_stats(chain *c, chain_stats *out);

#endif
