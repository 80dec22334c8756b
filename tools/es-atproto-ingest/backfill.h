/* Backfill and resync workers (docs/atproto.md, "Backfill"): for each DID
 * queued, a worker thread finds the repository's PDS in its DID document,
 * fetches the repository (com.atproto.sync.getRepo, into an unlinked
 * temporary file: a large repository never sits in memory), verifies it
 * whole (es_atp_verify_repo: signature, every block, the canonical MST) and
 * applies it to the store (es_atp_resync_apply: the events that make the
 * store equal to it, resumable). Failures that may pass (429, 5xx, a
 * timeout, a connection) are tried again after an exponential backoff with
 * jitter (retry_min_ms doubling up to retry_max_ms, 1 min to 1 h by
 * default, as Tap), at most max_attempts times in this run.
 *
 * The outcome of each DID is handed to the thread that polls (backfill_poll),
 * which owns the per-repository chain state: workers never write it. */
#ifndef ES_INGEST_BACKFILL_H
#define ES_INGEST_BACKFILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/atproto_xrpc.h>
#include <es/es.h>

typedef struct backfill backfill;

typedef struct backfill_options {
    es_store *store;            /* borrowed; outlives the backfill */
    es_atp_identity *identity;  /* borrowed, required: the PDS and the signing key */
    es_atp_xrpc_options xrpc;   /* getRepo's timeouts and bounds */
    const char *tmp_dir;        /* where fetched CARs are spooled (NULL: $TMPDIR, /tmp) */
    size_t parallelism;         /* worker threads [4] */
    size_t max_queued;          /* DIDs waiting at most [1,000,000]: backfill_add refuses past it */
    int64_t retry_min_ms;       /* first retry delay [60,000] ... */
    int64_t retry_max_ms;       /* ... doubling up to [3,600,000] */
    unsigned max_attempts;      /* per DID in this run, 0: no limit [0] */
    size_t batch_max;           /* events per batch of a resync [ES_BATCH_MAX] */
    bool atomic_batches;        /* a resync's batches as atomic batches (es_atp_resync_options) */
    /* TESTS ONLY (the real repo.car, whose author's DID document is not in
     * the corpus): the commit's signature is not checked; every block hash,
     * the MST and the commit's other fields still are. */
    bool skip_signature;
    /* TESTS ONLY: the process exits (code 99, nothing flushed: a kill -9)
     * once this many batches are stored; 0: never. */
    uint64_t exit_after_batches;
} backfill_options;

void backfill_options_init(backfill_options *o);

/* Starts the workers. */
es_status backfill_create(const backfill_options *o, backfill **out);

/* Stops the workers (a repository being applied is finished or interrupted
 * between batches: a later resync resumes it) and frees. Accepts NULL. */
void backfill_destroy(backfill *bf);

/* Queues a DID. `known_rev` (may be NULL or "") is the rev the store holds
 * for it: a repository the PDS serves at that rev or older is left as it
 * is (nothing older is ever applied over something newer). A DID already
 * queued, running or waiting to retry is not queued twice.
 * ES_ERR_INVALID for a string that is not a DID, ES_ERR_LIMIT past
 * max_queued. */
es_status backfill_add(backfill *bf, const char *did, size_t did_len, const char *known_rev);

/* What happened to one DID. */
typedef enum backfill_result_kind {
    BACKFILL_APPLIED,  /* the store now equals the repository at `rev` */
    BACKFILL_CURRENT,  /* the PDS serves the known rev or an older one: nothing applied */
    BACKFILL_INACTIVE, /* the PDS says takendown, suspended or deactivated (`status`) */
    BACKFILL_FAILED,   /* given up in this run (`error`, `attempts`) */
    BACKFILL_RETRYING, /* not final: an attempt failed (`error`), the next one is in
                          `retry_in_ms` */
} backfill_result_kind;

typedef struct backfill_result {
    backfill_result_kind kind;
    const char *did; /* did_len bytes + NUL */
    size_t did_len;
    char rev[ES_ATP_REPO_REV_MAX + 1];  /* APPLIED, CURRENT: the PDS's rev */
    uint8_t data[ES_ATP_REPO_DATA_MAX]; /* APPLIED: its MST root */
    size_t data_len;
    uint64_t last_seq; /* APPLIED: the stream sequence of the last event appended, 0: none */
    uint64_t records, created, updated, deleted;
    const char *status; /* INACTIVE: the account status (static) */
    unsigned attempts;
    int64_t retry_in_ms; /* RETRYING */
    char error[256]; /* FAILED: why, as the last attempt said it */
    char reason[64]; /* FAILED: a short name for the chain state ("not_found", "signature", ...) */
} backfill_result;

/* Called on the polling thread per finished DID, and per attempt that will
 * be tried again (BACKFILL_RETRYING, before the DID's final result); `r`
 * valid during the call. */
typedef void (*backfill_result_fn)(void *ctx, const backfill_result *r);

/* Hands the finished DIDs to `fn` (on the calling thread). */
void backfill_poll(backfill *bf, backfill_result_fn fn, void *ctx);

typedef struct backfill_stats {
    uint64_t queued, running, waiting; /* now: waiting to start, being done, waiting to retry */
    uint64_t applied, current, inactive, failed, retries;
    uint64_t records, events; /* records in applied repositories; events appended */
    uint64_t bytes;           /* CAR bytes fetched */
} backfill_stats;

void backfill_get_stats(backfill *bf, backfill_stats *out);

/* Nothing queued, running, waiting to retry or waiting to be polled. */
bool backfill_idle(backfill *bf);

/* Something queued, running, or finished and not yet polled (retries
 * waiting for their time do not count). */
bool backfill_working(backfill *bf);

#endif
