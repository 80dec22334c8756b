/* The ATProto firehose adapter: decode `com.atproto.sync.subscribeRepos`
 * frames, verify their CAR blocks, and map each frame to the batch of entity
 * events the core engine appends atomically (see docs/atproto.md).
 *
 * Every byte handed to these calls is treated as hostile: a malformed frame
 * yields a clear status and an error kind, counted in the decoder's stats,
 * never a crash, never unbounded memory or time, and never a partial batch.
 *
 * Thread safety: a decoder keeps statistics and must be used by one thread at
 * a time; filters are read-only once built and may be shared by decoders on
 * many threads. */
#ifndef ES_ATPROTO_H
#define ES_ATPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/car.h>
#include <es/event.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- syntax (atproto specs: DID, NSID, record key, TID, datetime) -------- */

ES_API bool es_atp_valid_did(const char *s, size_t len);
ES_API bool es_atp_valid_nsid(const char *s, size_t len);
ES_API bool es_atp_valid_rkey(const char *s, size_t len);
ES_API bool es_atp_valid_tid(const char *s, size_t len);
/* A datetime in the atproto profile of RFC 3339 (upper-case T and Z, an
 * explicit offset other than -00:00, real calendar values, not before year 0
 * once normalised to UTC). */
ES_API bool es_atp_valid_datetime(const char *s, size_t len);
/* The same, also storing the instant as nanoseconds since the Unix epoch
 * (when `unix_ns` is not NULL); instants outside int64 nanoseconds (before
 * 1678, after 2262) are refused. */
ES_API bool es_atp_parse_datetime(const char *s, size_t len, int64_t *unix_ns);

/* A handle (atproto handle spec): dot-separated ASCII labels, at least two,
 * 253 characters at most, a last label not starting with a digit. */
ES_API bool es_atp_valid_handle(const char *s, size_t len);

/* ---- identity ------------------------------------------------------------ */

/* The DID documents a verifying decoder checks commit signatures against:
 * did:plc through a PLC directory, did:web through
 * https://<host>/.well-known/did.json (public addresses only), cached in
 * memory with a TTL, optionally seeded from a `--did-docs` file.
 *
 * Threads: one handle may be shared by any number of decoders on any number
 * of threads, and every call below may run concurrently with the others,
 * except es_atp_identity_destroy (after every user is done). The cache is
 * locked; a network fetch runs outside the lock, so different DIDs resolve
 * concurrently, and threads asking for a DID another thread is fetching
 * wait for that fetch (one request per DID, not one per thread). A key a
 * decoder got stays valid while it verifies, whatever other threads
 * invalidate or evict meanwhile. The "re-resolve once on a signature
 * failure, at most once a minute per DID" rule holds across threads: the
 * decoders that fail on the same old key share one refresh. */
typedef struct es_atp_identity es_atp_identity;

typedef struct es_atp_identity_options {
    const char *plc_url; /* PLC directory, https:// [https://plc.directory]; copied */
    int64_t timeout_ms;  /* one resolution, whole request [10,000] */
    int64_t ttl_ms;      /* how long a resolved document is trusted [24 h] */
    size_t max_entries;  /* documents (and remembered failures) cached [100,000] */
    /* How long a failed resolution (404, another HTTP error, a bad document,
     * no connection, a timeout) is remembered [60,000; 0: not at all]:
     * meanwhile the DID's commits are refused ES_ATP_ERR_IDENTITY without a
     * request. A minute bounds what a relay can make us fetch by sending an
     * unresolvable DID (one request a minute, as for forged signatures) and
     * still heals a directory outage or a new DID's propagation quickly. */
    int64_t negative_ttl_ms;
    /* TESTS ONLY: allow an http PLC directory, did:web over http, and did:web
     * hosts on loopback or private addresses (stand-ins). Never in production:
     * relays choose the DIDs, so did:web would let them probe the network. */
    bool allow_insecure;
    /* Resolve nothing over the network: the seeded documents
     * (es_atp_identity_seed_file) are the only ones, and an #identity does
     * not replace them (so a key rotation cannot be learned); commits of any
     * other DID are refused ES_ATP_ERR_IDENTITY. For air-gapped runs and
     * replays of captures with their documents. */
    bool offline;
} es_atp_identity_options;

ES_API void es_atp_identity_options_init(es_atp_identity_options *o);
/* `o` may be NULL (defaults). *out is the caller's: es_atp_identity_destroy. */
ES_API es_status es_atp_identity_create(const es_atp_identity_options *o, es_atp_identity **out);
/* Accepts NULL. */
ES_API void es_atp_identity_destroy(es_atp_identity *id);
/* Seed the cache from a JSON object {did: document} (zstd-compressed or not),
 * the `--did-docs` file: seeded documents do not expire until invalidated.
 * *count (may be NULL) receives the number of documents. ES_ERR_DECODE names
 * the first document that does not parse or is filed under another DID. */
ES_API es_status es_atp_identity_seed_file(es_atp_identity *id, const char *path, size_t *count);
/* Keep documents in `store`'s KV bucket ES_<store>_identity too
 * (es_checkpoints_open_bucket, ES_CHECKPOINTS_IDENTITY; opened, created when
 * missing, here), with the time they were fetched: a restarted ingester, or
 * another one on the store, does not ask the directory again. Lookups go
 * memory -> KV -> network; a document fetched from the network is written
 * there; one fetched longer than ttl_ms ago is not used; invalidation
 * deletes it there too. Seeded documents stay in memory only. A KV failure
 * never fails a resolution: the network answers, and store_errors counts it.
 * Call it once, before the handle is used (not concurrently with the other
 * calls); the store is borrowed and must outlive the handle. ES_ERR_INVALID
 * when already attached; a no-op (ES_OK) for an `offline` handle. */
ES_API es_status es_atp_identity_attach_store(es_atp_identity *id, es_store *store);
/* Forget the cached document of `did` (an #identity event), in memory and in
 * the store's KV bucket: the next use resolves it again. A seeded document still serves while the directory
 * cannot be reached (offline runs); an answer from the directory replaces it.
 * No-op when it is not cached. */
ES_API void es_atp_identity_invalidate(es_atp_identity *id, const char *did, size_t len);

typedef struct es_atp_identity_stats {
    uint64_t hits;     /* documents served from the cache */
    uint64_t fetches;  /* documents requested over the network */
    uint64_t failures; /* resolutions that failed */
    uint64_t cached;   /* documents (and remembered failures) in the cache now */
    /* resolutions refused without a request: a failure remembered
     * (negative_ttl_ms), or another thread's failed request waited for */
    uint64_t negative_hits;
    uint64_t store_hits;   /* documents read from the store's KV bucket (attach_store) */
    uint64_t store_errors; /* KV reads, writes, deletes that failed (resolved from the network) */
} es_atp_identity_stats;

ES_API void es_atp_identity_stats_get(const es_atp_identity *id, es_atp_identity_stats *out);

/* ---- filters ------------------------------------------------------------- */

/* Which collections and repositories to keep. An empty filter (or none) keeps
 * everything; a collection list and a DID list each restrict independently. */
typedef struct es_atp_filter es_atp_filter;

ES_API es_status es_atp_filter_create(es_atp_filter **out);
/* Free the filter. Accepts NULL. */
ES_API void es_atp_filter_destroy(es_atp_filter *f);
/* Add comma-separated collection patterns: an NSID (`app.bsky.graph.follow`),
 * a prefix ending at a segment boundary (`app.bsky.feed.*` keeps every NSID
 * under app.bsky.feed), or `*`. A malformed pattern is ES_ERR_INVALID and
 * leaves the filter unchanged. */
ES_API es_status es_atp_filter_add_collections(es_atp_filter *f, const char *patterns);
/* Add DIDs separated by commas or white space. */
ES_API es_status es_atp_filter_add_dids(es_atp_filter *f, const char *dids);
/* Add the DIDs of a text file (one or more per line, separated by commas or
 * white space; `#` starts a comment). */
ES_API es_status es_atp_filter_add_dids_file(es_atp_filter *f, const char *path);
/* `--dids` semantics: an argument starting with "did:" is a list, anything
 * else is the path of a file. */
ES_API es_status es_atp_filter_add_dids_arg(es_atp_filter *f, const char *arg);
/* Called per DID of a list or file; a status other than ES_OK stops the
 * reading and is returned. `did` is valid during the call. */
typedef es_status (*es_atp_did_fn)(void *ctx, const char *did, size_t len);
/* Each DID of `arg`: when `file` is false a list separated by commas or
 * white space, else the path of a text file of them (one or more per line,
 * `#` starts a comment) — the `--dids` and `--backfill` formats. Every
 * token must be a DID (ES_ERR_INVALID names the first that is not);
 * ES_ERR_NOT_FOUND or ES_ERR_IO for a file that cannot be read. */
ES_API es_status es_atp_dids_each(const char *arg, bool file, es_atp_did_fn fn, void *ctx);
ES_API bool es_atp_filter_keeps_collection(const es_atp_filter *f, const char *nsid, size_t len);
ES_API bool es_atp_filter_keeps_did(const es_atp_filter *f, const char *did, size_t len);
/* The collection patterns of `f` when they name a closed set: each exact
 * NSID is passed to `fn` (valid during the call) and the result is true.
 * False, with nothing passed, when the set is open: no pattern at all, `*`,
 * or a prefix (`app.bsky.feed.*` keeps NSIDs that may first appear later).
 * A server narrows a durable consumer to a closed set only. */
typedef void (*es_atp_nsid_fn)(void *ctx, const char *nsid, size_t len);
ES_API bool es_atp_filter_exact_collections(const es_atp_filter *f, es_atp_nsid_fn fn, void *ctx);

/* ---- decoding and mapping ------------------------------------------------ */

/* Why a frame was refused. Each kind is counted in es_atp_stats.errors. */
typedef enum es_atp_error {
    ES_ATP_ERR_NONE = 0,
    ES_ATP_ERR_CBOR,          /* header or body is not valid DAG-CBOR */
    ES_ATP_ERR_DEPTH,         /* nesting deeper than the bound */
    ES_ATP_ERR_HEADER,        /* the header is not {op, t} as specified */
    ES_ATP_ERR_SCHEMA,        /* a required field is missing or has the wrong type */
    ES_ATP_ERR_SYNTAX,        /* an invalid DID, NSID, record key, rev or datetime */
    ES_ATP_ERR_LIMIT,         /* more bytes, ops or blocks than the limits allow */
    ES_ATP_ERR_CAR,           /* a malformed or truncated CAR */
    ES_ATP_ERR_CAR_ROOT,      /* the CAR's first root is not the commit */
    ES_ATP_ERR_HASH,          /* a block's SHA-256 differs from its CID's digest */
    ES_ATP_ERR_MISSING_BLOCK, /* the commit or an op names a block the CAR lacks */
    ES_ATP_ERR_RECORD,        /* a record's CID is not a dag-cbor CIDv1 (a block that is not a
                                 DAG-CBOR map is kept, marked invalid: es_atp_batch) */
    ES_ATP_ERR_COMMIT,        /* the commit block contradicts the frame (did, rev, version) */
    ES_ATP_ERR_OP,            /* an unknown action, a cid that does not fit it, two ops on a path */
    /* Verification (es_atp_options.identity set): */
    ES_ATP_ERR_SIGNATURE,    /* the commit's `sig` is missing or does not verify with the repo's key */
    ES_ATP_ERR_IDENTITY,     /* no DID document, or none with a usable #atproto key */
    ES_ATP_ERR_NO_PREV_DATA, /* a #commit without prevData: it cannot be inverted */
    ES_ATP_ERR_PREV_DATA,    /* undoing the ops does not give prevData */
    ES_ATP_ERR_OP_PREV,      /* a create with prev, an update or delete without */
    ES_ATP_ERR_OP_MISMATCH,  /* the signed tree does not hold what an op says */
    ES_ATP_ERR_MST,          /* an MST node is malformed or fails its hash */
    ES_ATP_ERR_FUTURE_REV,   /* a rev more than max_future_rev_ms ahead of now */
    ES_ATP_ERR_COUNT
} es_atp_error;

/* A short constant name for logs and statistics ("hash", "car"). */
ES_API const char *es_atp_error_name(es_atp_error e);

typedef enum es_atp_kind {
    ES_ATP_KIND_NONE = 0, /* the frame could not be decoded far enough to tell */
    ES_ATP_KIND_COMMIT,
    ES_ATP_KIND_SYNC,
    ES_ATP_KIND_IDENTITY,
    ES_ATP_KIND_ACCOUNT,
    ES_ATP_KIND_INFO,    /* #info: informational, e.g. OutdatedCursor; no events */
    ES_ATP_KIND_ERROR,   /* op = -1: the server ends the stream; no events */
    ES_ATP_KIND_UNKNOWN, /* an unknown message type: skipped and counted */
} es_atp_kind;
#define ES_ATP_KIND_COUNT 8

/* A short constant name ("commit", "identity"). */
ES_API const char *es_atp_kind_name(es_atp_kind k);

/* Limits; 0 in a field means its default (in brackets). */
typedef struct es_atp_limits {
    size_t max_frame_bytes; /* a whole frame [5 MiB] */
    size_t max_ops;         /* ops in one commit [200, the lexicon's maxLength] */
    size_t max_depth;       /* DAG-CBOR nesting, frames and records [64] */
    es_car_limits car;      /* blocks bytes [2,000,000, the lexicon's maxLength], blocks */
} es_atp_limits;

typedef struct es_atp_options {
    es_atp_limits limits;
    const es_atp_filter *filter; /* borrowed, must outlive the decoder; NULL keeps everything */
    /* Hash every block of every CAR, not only the commit and record blocks
     * the mapping uses (MST nodes then get verified too). Default off. */
    bool verify_all_blocks;
    /* Skip the strict DAG-CBOR check of record blocks (their hashes are still
     * verified). Default off: a stored dag-cbor record always decodes (one
     * that does not is stored marked invalid, codec "binary"). */
    bool skip_record_decode;
    /* Verification: non-NULL turns it on (borrowed; must outlive the
     * decoder, and is used by the decoder's thread). A #commit is then also
     * refused unless its rev is at most max_future_rev_ms ahead of now, its
     * commit block's signature verifies with the repo's key (re-resolved
     * once when it does not: the key may have rotated), and undoing its ops
     * on the signed MST gives back prevData (Sync 1.1); a #sync's signature
     * is checked, and an #identity invalidates the DID's cached document.
     * docs/atproto.md, "Verification". */
    es_atp_identity *identity;
    int64_t max_future_rev_ms; /* [5 minutes] */
} es_atp_options;

/* Counters of one decoder since its creation. */
typedef struct es_atp_stats {
    uint64_t frames;                     /* every frame handed to es_atp_decode */
    uint64_t bytes;                      /* their total size */
    uint64_t by_kind[ES_ATP_KIND_COUNT]; /* accepted frames, indexed by es_atp_kind */
    uint64_t ops;                        /* record ops in accepted commits, before filtering */
    uint64_t events;                     /* events produced (after filtering) */
    uint64_t filtered_ops;               /* ops dropped by the collection filter */
    uint64_t filtered_frames;            /* commits and repo events dropped by the DID filter */
    uint64_t blocks_verified;            /* blocks whose SHA-256 was checked */
    uint64_t invalid_records;            /* records stored marked invalid (see es_atp_batch) */
    uint64_t errors[ES_ATP_ERR_COUNT];   /* refused frames by kind */
} es_atp_stats;

/* Event ids longer than this are replaced by the CID string (raw, sha2-256)
 * of the full id (the core engine's Nats-Msg-Id bound). */
#define ES_ATP_EVENT_ID_MAX 256

/* The result of decoding one frame: the events to append as ONE atomic batch
 * (all of a commit's kept ops, or one repo event), as the core engine's own
 * es_event_spec, ready for es_append_batch / es_append_batch_async:
 *
 *   entity_type  (NUL) the collection with '.' -> '_' (app_bsky_feed_like), or "repo"
 *   entity_id    the DID, raw, with entity_id_len (not NUL-terminated: it
 *                points into the frame; the core escapes it into the subject);
 *                a DID over ES_ID_MAX bytes is replaced by the CID string (raw,
 *                sha2-256) of the DID, and the DID goes into metadata `did`
 *   event_type   (NUL) create | update | delete | identity | account | sync
 *   event_id     (NUL) Nats-Msg-Id: <did>/<rev>/<collection>/<rkey> for ops (see
 *                docs/atproto.md for repo events and for ids over 256 bytes)
 *   data, data_len  the record block exactly as in the CAR, or the frame body;
 *                NULL/0 for deletes
 *   codec        (NUL) "dag-cbor"; "binary" for an invalid record (below);
 *                NULL (the core's "binary") without data
 *   time_ns      the frame's `time`, nanoseconds since the Unix epoch
 *   meta         Rita-Meta-<key>: rkey, cid, rev, seq, commit, prev (ops);
 *                seq (+ rev, commit for #sync) for repo events; NUL-terminated;
 *                `invalid` on a record whose block hashes to its CID but is not
 *                a DAG-CBOR map: stored as it is, codec "binary", so that the
 *                commit's other ops are kept (docs/atproto.md)
 *   tenant, expect  NULL and ES_EXPECT_ANY
 *
 * `count` may be 0: an #info, an error frame, an unknown type, a filtered-out
 * frame, an empty commit. The caller still advances its cursor past `seq`. */
typedef struct es_atp_batch {
    es_atp_kind kind;
    bool has_seq;
    uint64_t seq;
    const char *did; /* the repo's DID when known (commit, sync, identity, account) */
    size_t did_len;
    const char *type;    /* (NUL) the header's `t` ("#commit"), or NULL */
    const char *name;    /* (NUL) #info name or error frame `error`, or NULL */
    const char *message; /* (NUL) #info or error frame `message`, or NULL */
    const char *time;    /* the frame's `time` exactly as sent (not NUL-terminated), or NULL */
    size_t time_len;
    int64_t time_ns;
    /* The repository chain (per-repo state and audit use them): #commit and
     * #sync; binary CIDs and strings point into the frame or the arena. */
    const char *rev;  /* (NUL) the commit's rev, or NULL */
    size_t rev_len;
    const char *since; /* (NUL) #commit `since` (the rev it follows), or NULL when none */
    size_t since_len;
    const uint8_t *commit_cid; /* the commit block's CID (#commit `commit`, #sync CAR root) */
    size_t commit_cid_len;
    const uint8_t *data_cid; /* the commit's `data`: the MST root after it */
    size_t data_cid_len;
    const uint8_t *prev_data; /* #commit `prevData`: the MST root before it, or NULL */
    size_t prev_data_len;
    /* #account: `active` and `status` (NUL, or NULL when absent);
     * #identity: `handle` (NUL, or NULL when absent) */
    bool active;
    const char *status;
    const char *handle;
    size_t ops; /* ops in the commit, before filtering */
    size_t invalid_records; /* kept events marked `invalid` (their block is not a DAG-CBOR map) */
    es_event_spec *events;
    size_t count;
    es_atp_error error; /* why the frame was refused, when es_atp_decode failed */
} es_atp_batch;

typedef struct es_atp_decoder es_atp_decoder;

/* Create a decoder. `opts` may be NULL (defaults). The caller owns the
 * decoder and frees it with es_atp_decoder_destroy(). */
ES_API es_status es_atp_decoder_create(const es_atp_options *opts, es_atp_decoder **out);
/* Accepts NULL. */
ES_API void es_atp_decoder_destroy(es_atp_decoder *d);

/* Decode, verify and map one frame. Everything `out` points to lives in
 * `arena` or in `frame` itself (payloads and most strings are not copied):
 * it stays valid until the caller resets the arena or releases the frame.
 * (es_append_batch_async copies the events before it returns, so both can be
 * reused right after handing the batch over.) The arena's limit bounds the
 * memory one frame can take (a few times the frame size is ample).
 *
 * Returns ES_OK with a batch (possibly empty), or, for a refused frame,
 * ES_ERR_DECODE or ES_ERR_LIMIT with out->error set, out->seq
 * set when it could be read, and es_last_error() naming the seq and the
 * problem. A refused frame produces no event at all. ES_ERR_NOMEM when
 * memory ran out: the frame is not refused (out->error stays
 * ES_ATP_ERR_NONE) and may be decoded again. ES_ERR_INVALID for NULL
 * arguments. An error frame (op = -1) is ES_OK with kind ES_ATP_KIND_ERROR:
 * the server ends the stream after it. */
ES_API es_status es_atp_decode(es_atp_decoder *d, const uint8_t *frame, size_t len, es_arena *arena,
                        es_atp_batch *out);

/* The decoder's counters (owned by the decoder, updated by each call). */
ES_API const es_atp_stats *es_atp_decoder_stats(const es_atp_decoder *d);
/* Fill in the defaults of the zero fields of `limits`. */
ES_API void es_atp_limits_defaults(es_atp_limits *limits);

/* ---- repository walk (MST) ----------------------------------------------- */

/* One record of a repository, found by walking its Merkle Search Tree. */
typedef struct es_atp_record {
    const char *key; /* (NUL) "<collection>/<rkey>", in the callback's scratch memory */
    size_t key_len;
    const uint8_t *cid; /* binary CID of the record */
    size_t cid_len;
    const es_car_block *block; /* the record's block (verified), or NULL when the CAR lacks it */
    /* es_atp_verify_repo only: why the (hash-verified) block is not a
     * DAG-CBOR map ("not DAG-CBOR", "not a map"), or NULL. Such a record is
     * kept and flagged, as the decoder keeps one of a signed commit
     * (es_atp_batch, meta `invalid`). */
    const char *invalid;
} es_atp_record;

/* Return non-zero to stop the walk (es_atp_walk_repo then returns ES_ERR_ABORTED). */
typedef int (*es_atp_record_fn)(const es_atp_record *rec, void *user);

typedef struct es_atp_commit_info {
    const char *did; /* in arena */
    const char *rev;
    int64_t version;
    const uint8_t *data; /* binary CID of the MST root, in the CAR */
    size_t data_len;
} es_atp_commit_info;

/* Walk a full-repository CAR (as from com.atproto.sync.getRepo): verify and
 * decode the commit named by roots[0], then visit every record of its tree in
 * key order. Every MST node is hash-verified; depth, key length, the number
 * of nodes visited and the bytes of nodes decoded (at most the CAR's: a tree
 * decodes each node once) are bounded, ES_ERR_LIMIT beyond. `commit` (may be
 * NULL) receives the commit's fields (its strings live in `arena`). Records
 * whose blocks are absent are reported with block == NULL. The walk holds
 * only the path from the root in memory (depth <= 64) and checks that keys
 * strictly increase. */
ES_API es_status es_atp_walk_repo(const es_car *car, es_arena *arena, es_atp_commit_info *commit,
                           es_atp_record_fn fn, void *user);

/* ---- whole-repository verification --------------------------------------- */

/* What es_atp_verify_repo checks a getRepo CAR against. */
typedef struct es_atp_repo_verify_options {
    const char *did; /* (NUL) the repository the CAR must be: a valid DID, required */
    /* The key source: the commit's signature is checked with `did`'s
     * #atproto key, re-resolved once when it does not verify (a rotated
     * key). Borrowed, used by the caller's thread. Required unless
     * skip_signature. */
    es_atp_identity *identity;
    /* TESTS ONLY (or a CAR whose author's document is unknown, said so):
     * do not check the signature. Every other check still runs. */
    bool skip_signature;
    size_t max_depth; /* DAG-CBOR nesting of a record [64] */
} es_atp_repo_verify_options;

ES_API void es_atp_repo_verify_options_init(es_atp_repo_verify_options *o);

/* The outcome of es_atp_verify_repo. */
typedef struct es_atp_repo_verdict {
    es_atp_error error; /* why the CAR was refused; ES_ATP_ERR_NONE when verified */
    /* (NUL, in the arena) the key at fault: the record's, or for a node that
     * cannot be read the last key before it; "" when none; NULL when the
     * refusal is about the commit or the CAR */
    const char *key;
    size_t records;         /* records visited (all of them once verified) */
    size_t invalid_records; /* of them, flagged `invalid` (kept) */
} es_atp_repo_verdict;

/* Verify a full-repository CAR (com.atproto.sync.getRepo) whole and visit
 * its records in key order. Checks, each refusal with its kind:
 *   - the commit (roots[0]): present (MISSING_BLOCK), hashing to its CID
 *     (HASH), a commit map (COMMIT) whose `did` is o->did and `version` 3
 *     (COMMIT), whose `rev` is a TID (SYNTAX), and whose `sig` verifies with
 *     the DID's key, K-256 or P-256, low-S (SIGNATURE; IDENTITY without a
 *     usable document);
 *   - the MST is the canonical tree of its keys (MST): every key at the
 *     layer of its height (leading zero bits of SHA-256(key) in 2-bit
 *     chunks), subtrees one layer down, nothing below layer 0, no empty node
 *     but the root of an empty repository, keys strictly increasing and
 *     compressed by their whole shared prefix; every node present
 *     (MISSING_BLOCK) and hash-verified (HASH);
 *   - every key is `collection/rkey`, an NSID and a record key (SYNTAX);
 *   - every record's CID is a dag-cbor CIDv1 (RECORD), its block present
 *     (MISSING_BLOCK) and hash-verified (HASH) and strict DAG-CBOR: a block
 *     that is not a DAG-CBOR map is kept and passed with rec->invalid set
 *     (the decoder's rule); deeper than max_depth: DEPTH.
 * Bounds as es_atp_walk_repo (LIMIT beyond).
 *
 * `fn` sees each record after its checks, before the checks of the records
 * after it: a caller that must store nothing of a refused repository
 * collects first and commits after ES_OK. `commit` (may be NULL) receives the
 * commit's fields, `verdict` (may be NULL) the outcome; strings in `arena`.
 * Returns ES_OK, ES_ERR_DECODE or ES_ERR_LIMIT for a refusal (verdict->error
 * set, es_last_error() says more), ES_ERR_ABORTED when `fn` stopped it,
 * ES_ERR_NOMEM (not a refusal), ES_ERR_INVALID for bad arguments. */
ES_API es_status es_atp_verify_repo(const es_car *car, const es_atp_repo_verify_options *o,
                                    es_arena *arena, es_atp_commit_info *commit,
                                    es_atp_record_fn fn, void *user, es_atp_repo_verdict *verdict);

/* ---- capture files ------------------------------------------------------- */

/* A capture is a sequence of `[u32 little-endian length][frame bytes]`,
 * optionally zstd-compressed as a whole (detected by the zstd magic number). */
typedef struct es_atp_capture es_atp_capture;

/* Open a capture for reading; frames longer than `max_frame` (0: 5 MiB) are
 * refused. The caller owns the reader; close it with es_atp_capture_close(). */
ES_API es_status es_atp_capture_open(const char *path, size_t max_frame, es_atp_capture **out);
/* The next frame: ES_OK with *frame and *len (valid until the next call; owned by
 * the reader), ES_ERR_NOT_FOUND at a clean end, ES_ERR_DECODE for a truncated
 * or corrupt file, ES_ERR_LIMIT for a length beyond max_frame, ES_ERR_IO for a
 * read error. After an error the reader stays at its end. */
ES_API es_status es_atp_capture_next(es_atp_capture *c, const uint8_t **frame, size_t *len);
/* Accepts NULL. */
ES_API void es_atp_capture_close(es_atp_capture *c);

typedef struct es_atp_capture_writer es_atp_capture_writer;

/* Create (truncate) a capture file; `zstd_level` 0 writes it uncompressed. */
ES_API es_status es_atp_capture_create(const char *path, int zstd_level, es_atp_capture_writer **out);
ES_API es_status es_atp_capture_write(es_atp_capture_writer *w, const uint8_t *frame, size_t len);
/* Flush, close and free; reports a failed final write. Accepts NULL. */
ES_API es_status es_atp_capture_finish(es_atp_capture_writer *w);

#ifdef __cplusplus
}
#endif
#endif
