/* Per-repository chain state of an ATProto ingest, kept in the store's KV
 * bucket ES_<store>_repos (es_checkpoints_open_bucket, ES_CHECKPOINTS_REPOS):
 * for each repository (DID) the rev and MST root (`data`) of the last commit
 * whose events are stored, the account status, and whether the repository
 * is desynchronized (a refused commit, a dropped append, a #sync that
 * disagrees) and why. docs/atproto.md, "Per-repo chain state", says when
 * it moves and why a crash neither loses nor repeats anything.
 *
 *   es_atp_repos *repos;
 *   es_atp_repos_open(store, &repos);
 *   es_atp_repo_state st;
 *   if (es_atp_repos_get(repos, did, did_len, &st) == ES_ERR_NOT_FOUND)
 *       es_atp_repo_state_init(&st);
 *   ... st.rev, st.data ...
 *   es_atp_repos_put(repos, did, did_len, &st, st.revision, &st.revision); // CAS
 *
 * Key: the DID with ':' -> '/' and '%' -> '=' ("did/plc/abc"), reversible;
 * a DID whose form is not a valid key (too long, an empty dot-separated
 * token, a leading or trailing '.') is keyed "cid/<CID string of its
 * SHA-256>". The DID is also inside every value, so a collision is detected
 * (ES_ERR_CONFLICT), never merged. Value: a small versioned JSON object
 * (`nats kv get` shows it), decoded as hostile input. A handle is safe to
 * use from many threads. */
#ifndef ES_ATPROTO_REPOS_H
#define ES_ATPROTO_REPOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_atp_repos es_atp_repos;

#define ES_ATP_REPO_REV_MAX    16  /* a rev is a TID: 13 characters */
#define ES_ATP_REPO_DATA_MAX   64  /* bytes of a binary CID (a sha2-256 CID is 36) */
#define ES_ATP_REPO_STATUS_MAX 64  /* an account status, as the relay sent it */
#define ES_ATP_REPO_REASON_MAX 64  /* why a repository is desynchronized */
#define ES_ATP_REPO_KEY_MAX    255 /* the KV key of a repository */
#define ES_ATP_REPO_DID_MAX    2048

/* Expected revisions for es_atp_repos_put. */
#define ES_ATP_REPO_ANY UINT64_MAX /* no check */
#define ES_ATP_REPO_NEW 0          /* the repository must not have a state yet */

typedef struct es_atp_repo_state {
    char rev[ES_ATP_REPO_REV_MAX + 1];  /* the last stored commit's rev, "" when none */
    uint8_t data[ES_ATP_REPO_DATA_MAX]; /* its MST root (binary CID), data_len 0 when unknown */
    size_t data_len;
    /* "active", "takendown", "suspended", "deleted", "deactivated",
     * "desynchronized", "throttled", or any other status kept as sent */
    char status[ES_ATP_REPO_STATUS_MAX + 1];
    bool desynced;                           /* commits are not stored until a resync */
    char reason[ES_ATP_REPO_REASON_MAX + 1]; /* why ("chain_break", "sync_mismatch", ...) */
    uint64_t desync_seq;                     /* the relay seq where it happened */
    uint64_t seq;       /* the relay seq of the repository's last stored frame */
    uint64_t position;  /* the stream sequence of its last stored event */
    int64_t updated_ns; /* when the state was written (the writer's clock, Unix ns) */
    uint64_t revision;  /* the KV revision read (the expectation of the next put) */
} es_atp_repo_state;

/* A state with nothing known: status "active", no rev. */
ES_API void es_atp_repo_state_init(es_atp_repo_state *st);

/* Whether the account is active (status "active"). */
ES_API bool es_atp_repo_active(const es_atp_repo_state *st);

/* The KV key of a DID (see above) into `out` (NUL-terminated).
 * ES_ERR_INVALID for a string that is not a DID (es_atp_valid_did). */
ES_API es_status es_atp_repo_key(const char *did, size_t did_len,
                                 char out[ES_ATP_REPO_KEY_MAX + 1]);

/* Opens the store's repository bucket, creating it when missing. The store
 * must outlive the handle; the caller owns *out. */
ES_API es_status es_atp_repos_open(es_store *store, es_atp_repos **out);
/* Accepts NULL. */
ES_API void es_atp_repos_destroy(es_atp_repos *repos);

/* Reads a repository's state: ES_ERR_NOT_FOUND when it has none;
 * ES_ERR_DECODE (the text says why) for a value that is not a state of a
 * version this library reads; ES_ERR_CONFLICT when the key holds another
 * DID's state (a hash collision). */
ES_API es_status es_atp_repos_get(es_atp_repos *repos, const char *did, size_t did_len,
                                  es_atp_repo_state *out);

/* Writes a state when the stored revision is `expect_revision`
 * (ES_ATP_REPO_NEW: none yet; a revision from es_atp_repos_get; or
 * ES_ATP_REPO_ANY): ES_ERR_CONFLICT when someone else wrote it in between.
 * st->updated_ns and st->revision are ignored (now, and the new revision
 * in *revision, which may be NULL). ES_ERR_INVALID for an invalid DID or
 * field (a rev or status too long). */
ES_API es_status es_atp_repos_put(es_atp_repos *repos, const char *did, size_t did_len,
                                  const es_atp_repo_state *st, uint64_t expect_revision,
                                  uint64_t *revision);

/* Called per repository; did and st are valid during the call. Return ES_OK
 * to go on; anything else stops the walk, which returns it. */
typedef es_status (*es_atp_repo_cb)(const char *did, size_t did_len, const es_atp_repo_state *st,
                                    void *closure);

/* Every repository with a state, in no particular order. Values that do not
 * decode are skipped (and counted in *skipped, which may be NULL). */
ES_API es_status es_atp_repos_list(es_atp_repos *repos, es_atp_repo_cb cb, void *closure,
                                   size_t *skipped);

#ifdef __cplusplus
}
#endif
#endif
