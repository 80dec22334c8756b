/* The live ingester: frames from a source are decoded, verified and mapped,
 * and each frame's events are offered to the engine's sink (es/sink.h) as one
 * unit — key the repository's DID, position the frame's seq — which appends
 * them as one atomic batch, keeping per-repository order, retrying, and
 * moving a watermark over what is settled; the cursor follows that watermark
 * into the checkpoint bucket (cursor.h). Both sources — a capture file and
 * a relay's WebSocket — drive it through the same three calls:
 * ingester_room, ingester_take and ingester_tick. */
#ifndef ES_INGEST_INGEST_H
#define ES_INGEST_INGEST_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <es/atproto.h>
#include <es/es.h>

#include "cli.h"
#include "workers.h"

/* Exit codes (docs/atproto.md): the shared ones of cli.h, and one more. */
enum {
    INGEST_EXIT_ERROR_FRAME = 5, /* the stream ended with an error frame the ingester cannot
                                    recover from (a file's, or a relay's FutureCursor) */
    INGEST_EXIT_BACKFILL = 6,    /* repositories could not be backfilled (given up) */
};

typedef struct ingest_config {
    const char *file;     /* --from-file */
    const char *relay;    /* --relay URL, as given */
    const char *relay_ca; /* --relay-ca FILE (NULL: the system's CAs) */
    const char *store;    /* --store (default atproto) */
    const char *name;     /* --name: the cursor's key (default atproto-ingest) */
    bool dry_run, exit_at_end, verify_all, from_start;
    /* verification (docs/atproto.md, "Verification"): on unless no_verify */
    bool no_verify;           /* --no-verify (unsafe) */
    size_t verify_threads;    /* --verify-threads (default: the online CPUs; 0: none) */
    const char *did_docs;     /* --did-docs FILE, or NULL */
    bool offline;             /* --offline: --did-docs is the only source of documents */
    const char *plc_url;      /* --plc URL (NULL: https://plc.directory) */
    int64_t identity_ttl_ms;  /* --identity-ttl (default 24 h) */
    unsigned long repeat;
    es_atp_filter *filter;
    int64_t stats_interval_ms; /* 0: no stats lines */
    int64_t cursor_interval_ms;
    int64_t drain_timeout_ms;
    int64_t reconnect_min_ms, reconnect_max_ms; /* the backoff of the relay and of NATS */
    int64_t nats_wait_ms;        /* --nats-wait: how long start-up retries NATS (0: one attempt) */
    int64_t duplicate_window_ns; /* for a store this creates */
    /* Retention and replication of a store this creates (docs/atproto.md,
     * "Retention"); an existing store must already have what is given, as
     * given (the texts, for the messages) or NULL. */
    const char *max_age_arg;   /* --max-age DUR (0: keep forever, the default) */
    const char *max_bytes_arg; /* --max-bytes SIZE (0: unlimited, the default) */
    int64_t max_age_ns, max_bytes;
    int replicas; /* --replicas N, 1..5; 0: not given (1) */
    const char *compression_arg;        /* --compression none|s2, or NULL: not given */
    es_storage_compression compression; /* its value (the server's block compression) */
    /* the sink's bounds (docs/atproto.md, "Backpressure and memory") */
    size_t max_frames;   /* --max-frames: frames held until settled (default 4096) */
    size_t max_inflight; /* --max-inflight: appends in flight (default 256) */
    size_t max_batches;  /* --max-batches: of which multi-op atomic batches (default 32) */
    size_t max_held;     /* --max-held: bytes of event copies held (default 8 MiB) */
    size_t max_repos_cached; /* --max-repos-cached: repository states in memory (100,000) */
    /* backfill (docs/atproto.md, "Backfill") */
    const char *backfill;         /* --backfill DID[,DID...] */
    const char *backfill_file;    /* --backfill-file FILE */
    size_t backfill_parallelism;  /* --backfill-parallelism (default 4) */
    int64_t repo_fetch_timeout_ms; /* --repo-fetch-timeout (default 5 min) */
    int64_t backfill_retry_min_ms, backfill_retry_max_ms; /* default 1 min, 1 h */
    unsigned backfill_attempts;   /* --backfill-attempts: per repository and run (0: no limit) */
    bool backfill_all;             /* --backfill-all: every repository --backfill-host lists */
    bool resync_desynced;          /* --resync-desynced: every one the chain states mark */
    const char *collection_signal; /* --collection-signal NSID: those with such a record */
    const char *backfill_host;     /* --backfill-host URL: the relay or PDS listing them */
    /* live resync (docs/atproto.md, "Resync"): on with a live source unless no_resync */
    bool no_resync;          /* --no-resync: desynchronized repositories stay so */
    bool require_backfill;   /* --require-backfill: a repository the store does not know is
                                backfilled before its frames are stored */
    size_t max_held_repos;   /* --max-held-repos (0: hold.h's default, 10,000) */
    size_t max_held_frames;  /* --max-held-frames: per repository (0: 1,000) */
    size_t max_held_bytes;   /* --max-held-bytes (0: 32 MiB) */
    /* tracked repositories (docs/atproto.md, "Tracked repositories"; tracked.h) */
    bool tracked_only;  /* --tracked-only: commits of DIDs not in ES_<store>_tracked not stored */
    size_t max_tracked; /* --max-tracked: DIDs of the tracked set in memory (0: 100,000) */
    const char *metrics_listen; /* --metrics-listen HOST:PORT: Prometheus /metrics, or NULL */
    es_cli_conn conn;
} ingest_config;

void ingest_config_init(ingest_config *c);

/* Whether the run has a live source (--relay or --from-file), not only a
 * backfill. */
static inline bool ingest_config_live(const ingest_config *c)
{
    return c->file != NULL || c->relay != NULL;
}

/* --verify-threads' bound, and W, the frames the decoding threads hold at
 * most per thread (submitted, not yet offered to the sink; 1 with no
 * threads): they count toward --max-frames and --max-held like frames the
 * sink holds. */
#define INGEST_MAX_VERIFY_THREADS 256
#define INGEST_SLOTS_PER_THREAD   16

/* The decoding set-up of a run (workers.h): the decoder options from the
 * configuration (filter, --verify-all-blocks, `identity` — NULL with
 * --no-verify), --verify-threads, and W slots. */
void ingest_decoding_options(const ingest_config *c, es_atp_identity *identity,
                             ingest_workers_options *o);

typedef struct ingester ingester;

/* What one frame did. */
typedef enum ingest_take_result {
    INGEST_TAKEN,       /* kept (or settled at once) */
    INGEST_ERROR_FRAME, /* an error frame: the source ends here */
    INGEST_FULL,        /* not taken: full even past ingester_room's bounds (the source
                           ignored them too long); the frame will have to come again */
    INGEST_FAILED,      /* out of memory: give up */
} ingest_take_result;

/* Connects (retrying an unreachable server for up to cfg->nats_wait_ms, or
 * until *stop is set), opens (or creates) the store, reads the cursor.
 * Returns an exit code: ES_EXIT_OK, or the failure's (already reported). */
int ingester_open(const ingest_config *cfg, const char *source_name, volatile sig_atomic_t *stop,
                  ingester **out);
void ingester_close(ingester *g);

/* The stored cursor, when there is one and --from-start was not given. */
bool ingester_resume_cursor(const ingester *g, uint64_t *cursor);

/* Whether the source may hand over another frame: the frames held (by the
 * decoding threads and the sink) and their bytes are under --max-frames and
 * --max-held, and a decoding slot is free. */
bool ingester_room(const ingester *g);

/* What the ingester opened, for the backfill (borrowed: valid until
 * ingester_close). The identity is NULL with --no-verify. */
es_store *ingester_store(ingester *g);
es_atp_identity *ingester_identity(ingester *g);
struct chain *ingester_chain(ingester *g);
/* The live resyncs and backfills (resyncs.h); NULL with --no-resync,
 * --no-verify or --dry-run. */
struct resyncs *ingester_resyncs(ingester *g);
/* The host's listing (listing.h) of --backfill-all, --collection-signal;
 * NULL without them. */
struct listing *ingester_listing(ingester *g);

/* A backfill without a live source (--backfill, --backfill-file): fetch,
 * verify and apply each repository, then exit (--exit-at-end) or wait for
 * a signal. Returns the exit code. backfill_run.c. */
int ingest_backfill(const ingest_config *cfg, volatile sig_atomic_t *stop);

/* Hands a frame over (copied: the source's buffer may change after this).
 * It is decoded on a decoding thread and offered to the sink, in source
 * order, by this call or a later ingester_take / ingester_tick /
 * ingester_finish on this thread. The result says what happened to the
 * frames offered meanwhile: INGEST_ERROR_FRAME or INGEST_FAILED may come from
 * an earlier frame (the frames behind an error frame are dropped, never
 * offered: the cursor stays before them). With --verify-threads 0 the frame
 * is decoded and offered before this returns. */
ingest_take_result ingester_take(ingester *g, const uint8_t *frame, size_t len);
/* What the frames offered by ingester_tick led to: INGEST_ERROR_FRAME once
 * after an error frame (then INGEST_TAKEN again), INGEST_FAILED for good. */
ingest_take_result ingester_outcome(ingester *g);
/* Whether the server refused the user an append (a permissions violation):
 * the INGEST_FAILED that ends the run with exit 7, ES_EXIT_PERMISSION. */
bool ingester_denied(const ingester *g);
/* Frames handed over and not yet offered to the sink. */
size_t ingester_decoding(const ingester *g);
/* The highest seq of the frames taken so far. */
bool ingester_last_seq(const ingester *g, uint64_t *seq);
/* The last error frame's name ("FutureCursor"), after INGEST_ERROR_FRAME. */
const char *ingester_error_name(const ingester *g);
/* Offers the decoded frames, polls the sink, offers the cursor, prints the
 * stats line when due. */
void ingester_tick(ingester *g);
/* Waits up to timeout_ms for something to do (a frame decoded, an
 * acknowledgement). */
void ingester_wait(ingester *g, int64_t timeout_ms);
/* Lets an event loop be woken when acknowledgements arrive or the oldest
 * frame held is decoded (fn runs on another thread). */
void ingester_on_wake(ingester *g, void (*fn)(void *ctx), void *ctx);

/* Offers the frames still being decoded, waits until everything taken is
 * acknowledged (or the drain timeout), then saves the cursor. Returns
 * ES_EXIT_OK, INGEST_EXIT_ERROR_FRAME when one of the frames it offered was
 * an error frame, or ES_EXIT_SERVER when frames stayed unoffered or
 * unacknowledged (they are sent again by the next run: the cursor never
 * passes them). */
int ingester_finish(ingester *g);

/* The file source: reads frames until the end, a signal or an error frame,
 * honouring backpressure. Returns an exit code. */
int ingest_file(const ingest_config *cfg, volatile sig_atomic_t *stop);

#endif
