/* Fetching from PDSes and relays: the com.atproto.sync XRPC calls that a
 * resync or a backfill needs (docs/atproto.md, "Fetching from PDSes").
 *
 *   es_atp_xrpc *x;
 *   es_atp_xrpc_create(NULL, &x);
 *   char pds[ES_ATP_XRPC_URL_MAX + 1];
 *   es_atp_identity_pds(identity, did, did_len, pds, sizeof pds);
 *   es_atp_xrpc_result res;
 *   int fd; uint64_t size;
 *   es_status s = es_atp_xrpc_get_repo_file(x, pds, did, did_len, NULL, &fd, &size, &res);
 *   // ES_ERR_AGAIN: wait res.retry_after_ms (or back off when -1);
 *   // ES_ERR_PERMISSION: res.repo_status is "takendown", "suspended" or "deactivated"
 *
 * Everything a server sends is hostile: HTTPS is verified, redirects are not
 * followed, bodies are bounded while they arrive (an announced
 * Content-Length is never trusted), parameters are URL-encoded, and hosts
 * are connected to only on public addresses (a DID document names the PDS:
 * it must not make the fetcher probe its own network).
 *
 * Outcomes, the same for every call (res->error and res->message carry the
 * XRPC error body {"error", "message"} of a refusal):
 *   ES_OK              the answer, whole
 *   ES_ERR_NOT_FOUND   RepoNotFound, or HTTP 404 / 410
 *   ES_ERR_PERMISSION  RepoTakendown, RepoSuspended, RepoDeactivated:
 *                      res->repo_status says which (for the chain state)
 *   ES_ERR_AGAIN       HTTP 429 or 503: res->retry_after_ms
 *   ES_ERR_SERVER      another 5xx                                   retryable
 *   ES_ERR_TIMEOUT     no whole answer within the timeouts           retryable
 *   ES_ERR_CONNECTION  no connection, a body cut short, TLS failure  retryable
 *   ES_ERR_LIMIT       a body over its bound, a cursor over its bound
 *   ES_ERR_PROTOCOL    another HTTP status (400 InvalidRequest, a 3xx)
 *   ES_ERR_DECODE      a listing page that is not the lexicon's JSON
 *   ES_ERR_INVALID     a bad argument (not a DID, a service URL that is
 *                      not https://, has userinfo, a query or a fragment)
 *   or the status a callback returned to stop.
 *
 * A handle holds only its options: one may serve many threads at once
 * (each call is its own connection). */
#ifndef ES_ATPROTO_XRPC_H
#define ES_ATPROTO_XRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto.h>
#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_ATP_XRPC_URL_MAX     2048 /* a service URL (a PDS or relay base) */
#define ES_ATP_XRPC_ERROR_MAX   64   /* an XRPC error name, kept truncated */
#define ES_ATP_XRPC_MESSAGE_MAX 256  /* its message, kept truncated */
#define ES_ATP_XRPC_CURSOR_MAX  1024 /* a listing cursor; a longer one is ES_ERR_LIMIT */

typedef struct es_atp_xrpc es_atp_xrpc;

typedef struct es_atp_xrpc_options {
    int64_t connect_timeout_ms; /* [10,000] */
    /* One request, whole: a getRepo of 100 MB at 1 MB/s needs 100 s
     * (the ingester's --repo-fetch-timeout) [300,000] */
    int64_t timeout_ms;
    uint64_t max_repo_bytes; /* a getRepo CAR [1 GiB] */
    size_t max_page_bytes;   /* one listing page's JSON [16 MiB] */
    size_t page_limit;       /* the `limit` asked of a listing page, 1..1,000 [1,000] */
    size_t max_pages;        /* pages fetched by one listing call [100] */
    /* Connect to hosts on loopback and private addresses (an operator's
     * own relay or PDS on its network); https:// is still required. */
    bool allow_private_addresses;
    /* TESTS ONLY: plain http:// and any address (stand-ins on loopback). */
    bool allow_insecure;
} es_atp_xrpc_options;

ES_API void es_atp_xrpc_options_init(es_atp_xrpc_options *o);
/* `o` may be NULL (defaults). *out is the caller's: es_atp_xrpc_destroy.
 * ES_ERR_INVALID for an option out of range. */
ES_API es_status es_atp_xrpc_create(const es_atp_xrpc_options *o, es_atp_xrpc **out);
/* Accepts NULL. */
ES_API void es_atp_xrpc_destroy(es_atp_xrpc *x);

/* What a call learned, filled in by every call (also on failure). */
typedef struct es_atp_xrpc_result {
    int http_status;        /* of the last request; 0 when none answered */
    int64_t retry_after_ms; /* ES_ERR_AGAIN: the server's Retry-After (<= 24 h); -1: none */
    char error[ES_ATP_XRPC_ERROR_MAX + 1];     /* the XRPC error name, "" when none */
    char message[ES_ATP_XRPC_MESSAGE_MAX + 1]; /* its message, "" when none */
    /* ES_ERR_PERMISSION: "takendown", "suspended" or "deactivated" (the
     * status an #account event would carry); NULL otherwise. Static. */
    const char *repo_status;
    uint64_t bytes; /* body bytes received (every page of a listing) */
    size_t pages;   /* listing pages fetched */
    size_t items;   /* listing entries handed to the callback */
    size_t skipped; /* listing entries left out: a field missing or malformed */
    /* Listings: where to continue (the next call's `cursor`); "" when the
     * listing is complete. After a failure or a callback's stop: the cursor
     * of the page that was being read (that page is delivered again). */
    char cursor[ES_ATP_XRPC_CURSOR_MAX + 1];
} es_atp_xrpc_result;

/* ---- com.atproto.sync.getRepo: a repository's CAR ------------------------- */

/* Receives the CAR as it arrives. A status other than ES_OK stops the
 * transfer and is returned. On a failure after some chunks, what was
 * received is incomplete: discard it. */
typedef es_status (*es_atp_xrpc_chunk_fn)(void *ctx, const uint8_t *data, size_t len);

/* GET <service>/xrpc/com.atproto.sync.getRepo?did=<did>, streamed to `fn`;
 * at most max_repo_bytes (ES_ERR_LIMIT past it, without holding it). */
ES_API es_status es_atp_xrpc_get_repo(es_atp_xrpc *x, const char *service, const char *did,
                                      size_t did_len, es_atp_xrpc_chunk_fn fn, void *ctx,
                                      es_atp_xrpc_result *res);

/* The same into the caller's buffer buf[cap]: *len bytes on ES_OK;
 * ES_ERR_LIMIT when the CAR is larger than cap (or max_repo_bytes). */
ES_API es_status es_atp_xrpc_get_repo_buf(es_atp_xrpc *x, const char *service, const char *did,
                                          size_t did_len, uint8_t *buf, size_t cap, size_t *len,
                                          es_atp_xrpc_result *res);

/* The same into an unlinked temporary file in `dir` (NULL: $TMPDIR, else
 * /tmp), so a large repository never sits in memory: on ES_OK, *fd (the
 * caller's: close it) reads the CAR from offset 0, *size bytes (mmap it
 * for es_car_parse). Nothing is left behind on failure, nor after close.
 * ES_ERR_IO when the file cannot be made or written. */
ES_API es_status es_atp_xrpc_get_repo_file(es_atp_xrpc *x, const char *service, const char *did,
                                           size_t did_len, const char *dir, int *fd, uint64_t *size,
                                           es_atp_xrpc_result *res);

/* ---- com.atproto.sync.listRepos: every repository of a host -------------- */

/* One entry of a listing page; strings NUL-terminated, valid during the
 * callback. Entries whose did is not a DID, whose rev is not a TID or whose
 * head is missing are skipped (res->skipped). */
typedef struct es_atp_xrpc_repo {
    const char *did;
    size_t did_len;
    const char *head;   /* the commit's CID, as text */
    const char *rev;    /* the commit's rev (TID) */
    bool active;        /* true when the field is absent */
    const char *status; /* when not active: "takendown", "deactivated", ...; else NULL */
} es_atp_xrpc_repo;

/* Called per entry; a status other than ES_OK stops the listing (returned). */
typedef es_status (*es_atp_xrpc_repo_fn)(void *ctx, const es_atp_xrpc_repo *repo);

/* GET <service>/xrpc/com.atproto.sync.listRepos?limit=&cursor=, page after
 * page from `cursor` (NULL or "": the start) until the host has no more or
 * max_pages were read; res->cursor says where to go on. */
ES_API es_status es_atp_xrpc_list_repos(es_atp_xrpc *x, const char *service, const char *cursor,
                                        es_atp_xrpc_repo_fn fn, void *ctx, es_atp_xrpc_result *res);

/* ---- com.atproto.sync.listReposByCollection: the DIDs with a collection --- */

/* Called per DID (valid DID syntax; NUL-terminated, valid during the call). */
typedef es_status (*es_atp_xrpc_did_fn)(void *ctx, const char *did, size_t did_len);

/* GET <service>/xrpc/com.atproto.sync.listReposByCollection?collection=
 * &limit=&cursor=, paged as es_atp_xrpc_list_repos. `collection` must be
 * an NSID (ES_ERR_INVALID). */
ES_API es_status es_atp_xrpc_list_repos_by_collection(es_atp_xrpc *x, const char *service,
                                                      const char *collection, const char *cursor,
                                                      es_atp_xrpc_did_fn fn, void *ctx,
                                                      es_atp_xrpc_result *res);

/* ---- the PDS of a DID ------------------------------------------------------ */

/* The serviceEndpoint of `did`'s "#atproto_pds" service (type
 * AtprotoPersonalDataServer), resolved through the identity handle (its
 * cache, seeds and rules), into buf[cap] NUL-terminated, without a trailing
 * '/'. ES_ERR_NOT_FOUND when the document names no PDS; ES_ERR_DECODE when
 * the endpoint is not a plain http(s) URL (userinfo, a query, a fragment,
 * spaces or control characters, no host); ES_ERR_LIMIT when it does not
 * fit; the resolution's errors otherwise (es_atp_identity). Whether http://
 * may be fetched is the XRPC handle's decision (allow_insecure). */
ES_API es_status es_atp_identity_pds(es_atp_identity *id, const char *did, size_t did_len,
                                     char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
