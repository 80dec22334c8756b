/* Identity (private to the adapter): DID documents, the `--did-docs` file and
 * a resolver for did:plc and did:web with an in-memory cache. Tools reach it
 * through the public es_atp_identity (es/atproto.h, identity.c). */
#ifndef ES_ATP_IDENTITY_H
#define ES_ATP_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <es/status.h>

/* A DID document larger than this is refused, from a file or the network:
 * real documents are under 2 KiB; the bound leaves room for many services. */
#define ESI_ATP_DID_DOC_MAX (64 * 1024)
/* The longest DID the identity layer accepts (the atproto DID spec's 2 KiB). */
#define ESI_ATP_DID_MAX 2048
/* A decompressed `--did-docs` file larger than this is refused. */
#define ESI_ATP_DID_DOCS_FILE_MAX ((size_t)256 << 20)

/* What the adapter needs from a DID document. Every string is owned by the
 * document, NUL-terminated; NULL means the document has none. */
typedef struct esi_atp_did_doc {
    char *did;         /* "id", valid DID syntax; never NULL */
    char *handle;      /* the first "at://" alsoKnownAs, valid handle syntax */
    char *signing_key; /* publicKeyMultibase of the "#atproto" verification method */
    char *key_type;    /* its "type": Multikey or an Ecdsa...VerificationKey2019 */
    char *pds;         /* serviceEndpoint of the "#atproto_pds" service */
} esi_atp_did_doc;

/* Parses one document (JSON text of at most ESI_ATP_DID_DOC_MAX bytes).
 * ES_ERR_DECODE for anything that is not a document with a valid "id"; a
 * malformed optional part (a bad handle, a method without a key) is left
 * out rather than failing the whole document, as the atproto identity spec
 * asks: the caller decides whether a missing key or handle matters.
 * *out is the caller's (esi_atp_did_doc_destroy). */
es_status esi_atp_did_doc_parse(const char *json, size_t len, esi_atp_did_doc **out);
/* A deep copy; *out is the caller's. */
es_status esi_atp_did_doc_copy(const esi_atp_did_doc *d, esi_atp_did_doc **out);
void esi_atp_did_doc_destroy(esi_atp_did_doc *d);

/* Called once per document of a `--did-docs` file, with the key it was
 * filed under; `doc` becomes the callee's (even when it fails). A status
 * other than ES_OK stops the load and is returned. */
typedef es_status (*esi_atp_did_doc_fn)(void *ctx, esi_atp_did_doc *doc);

/* Loads a JSON object {did: document} from `path`, zstd-compressed or not
 * (told by the zstd magic). Every document must parse and its "id" must equal
 * its key (ES_ERR_DECODE otherwise, naming the DID). *count (may be NULL)
 * receives the number of documents handed to `fn`. */
es_status esi_atp_did_docs_load(const char *path, esi_atp_did_doc_fn fn, void *ctx, size_t *count);

/* ---- resolver --------------------------------------------------------------- */

/* A resolver may be used by many threads at once: its cache is locked, the
 * network is reached outside the lock (different DIDs resolve concurrently),
 * and threads asking for a DID that another thread is fetching wait for
 * that fetch instead of making their own. */
typedef struct esi_atp_resolver esi_atp_resolver;

/* A second level below the memory cache that outlives the process (the
 * store's KV bucket: identity_kv.c): consulted on a memory miss before the
 * network, written with every document fetched, cleared by invalidation.
 * Its failures never fail a resolution: the network answers instead (they
 * are counted). Each function is called without the resolver's lock, from
 * any thread. */
typedef struct esi_atp_doc_store {
    /* The document kept for `did` (*out the caller's) and how long ago it
     * was fetched (*age_ms); ES_ERR_NOT_FOUND when none. */
    es_status (*load)(void *ctx, const char *did, esi_atp_did_doc **out, int64_t *age_ms);
    /* Keeps `json` (`len` bytes, the document as fetched just now) for `did`. */
    es_status (*save)(void *ctx, const char *did, const char *json, size_t len);
    /* Drops what is kept for `did` (none kept: ES_OK). */
    es_status (*forget)(void *ctx, const char *did);
    void *ctx;
} esi_atp_doc_store;

/* The esi_atp_doc_store over a checkpoint set (es/checkpoint.h, the store's
 * ES_CHECKPOINTS_IDENTITY bucket; `ctx` is the es_checkpoints handle): one
 * entry per DID under es_atp_repo_key(did), its position the fetch time
 * (Unix ms), its data the document. */
es_status esi_atp_doc_kv_load(void *ctx, const char *did, esi_atp_did_doc **out, int64_t *age_ms);
es_status esi_atp_doc_kv_save(void *ctx, const char *did, const char *json, size_t len);
es_status esi_atp_doc_kv_forget(void *ctx, const char *did);

/* A clock in milliseconds for the cache's TTL (tests inject one). */
typedef int64_t (*esi_atp_clock_fn)(void *ctx);

typedef struct esi_atp_resolver_options {
    const char *plc_url; /* PLC directory (<= 1,024 bytes); default https://plc.directory */
    int64_t timeout_ms;  /* whole-request timeout; default 10,000 */
    int64_t ttl_ms;      /* how long a resolved document is trusted (<= 10 years); default 24 h */
    size_t max_entries;  /* cached documents (and remembered failures); default 100,000 */
    /* How long a failed resolution (HTTP 404 or another error status, a bad
     * document, no connection, a timeout) is remembered: lookups of the DID
     * meanwhile fail at once, with the same status, without a request.
     * Default 60 s: a relay delivers an account's commits in bursts, so an
     * unresolvable DID would otherwise cost a request (or a 10 s timeout)
     * per frame; a minute is the period at which a forged signature may
     * cost a refresh (the same ceiling on what a relay can make us fetch),
     * and short enough that a directory outage or a just-created DID not
     * yet propagated heals within it. 0: failures are not remembered. */
    int64_t negative_ttl_ms;
    /* Test only: allow a plain http PLC directory, fetch did:web documents
     * over http instead of https, and let did:web reach loopback and
     * private addresses (stand-ins on loopback). Off, did:web connects to
     * public addresses only: a relay chooses the DIDs, and must not make
     * the ingester probe its own network (SSRF). */
    int allow_insecure;
    /* Never fetch: seeded documents are the only source, kept across
     * invalidations; any other DID fails as unreachable (ES_ERR_CONNECTION). */
    int offline;
    esi_atp_clock_fn clock; /* NULL: esi_atp_monotonic_ms */
    void *clock_ctx;
} esi_atp_resolver_options;

void esi_atp_resolver_options_init(esi_atp_resolver_options *o);
/* `o` may be NULL for the defaults; strings are copied. */
es_status esi_atp_resolver_create(const esi_atp_resolver_options *o, esi_atp_resolver **out);
void esi_atp_resolver_destroy(esi_atp_resolver *r);
/* Adds the store below the memory cache (copied; its ctx must outlive the
 * resolver), before the resolver is used by other threads. A document kept
 * there longer than ttl_ms ago is not used; seeded documents are not
 * written to it; an offline resolver does not use it. */
void esi_atp_resolver_set_store(esi_atp_resolver *r, const esi_atp_doc_store *store);

/* The document of `did`: from the cache while its TTL runs, else from the
 * store (options.store) when kept there less than the TTL ago, else fetched
 * (did:plc: GET <plc_url>/<did>; did:web: GET https://<host>/.well-known/did.json),
 * checked (its "id" must be `did`) and cached. *out is a copy, the caller's.
 * Errors: ES_ERR_INVALID (not a DID, or a method other than plc and web),
 * ES_ERR_NOT_FOUND (HTTP 404 or 410), ES_ERR_SERVER (another HTTP status),
 * ES_ERR_TIMEOUT, ES_ERR_CONNECTION, ES_ERR_LIMIT (document too large),
 * ES_ERR_DECODE (not a valid document, or one for another DID). Redirects are
 * not followed. A failure of the network or the document is remembered for
 * negative_ttl_ms (the same status, not asked again meanwhile); an
 * esi_atp_resolver_invalidate forgets it. A document fetched is written
 * to the store too. */
es_status esi_atp_resolve(esi_atp_resolver *r, const char *did, esi_atp_did_doc **out);
/* The atproto signing key of `did`'s document (resolved as by
 * esi_atp_resolve), parsed once per cached document. *key is a reference
 * of the caller's (esi_atp_key_destroy releases it): it stays valid however
 * other threads invalidate or evict the entry. ES_ERR_NOT_FOUND when the
 * document has no usable key (none, a legacy type, one that does not parse);
 * the resolution errors otherwise. */
struct esi_atp_key;
es_status esi_atp_resolve_key(esi_atp_resolver *r, const char *did, struct esi_atp_key **key);
/* Fetches `did`'s document again, whatever the cache holds (a signature
 * that does not verify: the key may have rotated), and caches it. On
 * failure the cached document, if any, stays: a relay sending forged
 * signatures must not be able to evict documents (nor, offline, the seeded
 * ones). At most once a minute per cached document (ES_ERR_LIMIT before):
 * a relay repeating forged frames must not turn each into a request.
 * `failed` (may be NULL) is the key that did not verify: when the cache
 * holds another one by now (another thread refreshed it, or an #identity
 * dropped it), ES_OK without a fetch; a fetch of `did` in progress on
 * another thread is waited for and counts as this refresh. */
es_status esi_atp_resolver_refresh(esi_atp_resolver *r, const char *did,
                                   const struct esi_atp_key *failed);
/* Puts a document into the cache as if just resolved (the `--did-docs`
 * seed); takes `doc` (even on failure). Seeded documents do not expire: they
 * stand for an offline source; esi_atp_resolver_invalidate drops them. */
es_status esi_atp_resolver_seed(esi_atp_resolver *r, esi_atp_did_doc *doc);
/* Forgets the cached document of `did` (an #identity event, a key rotation),
 * in memory and in the store (a fetch of it in flight meanwhile is neither
 * cached nor kept): the next esi_atp_resolve fetches it again. A seeded document is kept as a
 * fallback: while the directory cannot be reached (ES_ERR_CONNECTION,
 * ES_ERR_TIMEOUT; tried again at most once a minute) it is still served, so
 * an offline `--did-docs` run survives #identity events; an answer from the
 * directory (a document, or 404) supersedes it. No-op when not cached. */
void esi_atp_resolver_invalidate(esi_atp_resolver *r, const char *did);
/* Counters, for tests and stats, read under the lock (consistent with one
 * another). Each lookup of a valid DID counts once in hits (a document
 * without a request of its own: from the cache, or by waiting for another
 * thread's request), fetches (it made a request) or negative_hits (a failure
 * without a request of its own: remembered, or shared by the thread whose
 * request failed). failures: lookups and refreshes that failed, those
 * answered by negative_hits included. cached: entries now, remembered
 * failures included. */
typedef struct esi_atp_resolver_stats {
    uint64_t hits, fetches, failures, cached, negative_hits;
    uint64_t store_hits;   /* lookups answered by the store (a lookup's fourth way) */
    uint64_t store_errors; /* store calls that failed (the network answered instead) */
} esi_atp_resolver_stats;
void esi_atp_resolver_stats_get(const esi_atp_resolver *r, esi_atp_resolver_stats *out);

#endif
