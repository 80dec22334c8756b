/* Offline re-verification of a stored repository history (docs/es-atproto-verify.md).
 *
 * es-atproto-ingest stores, on every op event of a commit, what the signed
 * commit block was made of (metadata `sig`, `data`, `commitprev`, with `rev`,
 * `commit` and the DID) and the chain fields of the frame (`since`,
 * `prevdata`). From them an audit rebuilds the commit block as canonical
 * DAG-CBOR, checks its signature with the key of the repository's DID
 * document, checks that the block's CID is the stored `commit`, and follows
 * each repository's chain in stream order: revs strictly increase, `since`
 * is the previous commit's rev, `prevdata` the previous commit's `data`.
 *
 * What it proves: the author signed this rev and this MST root (`data`), and
 * the stored history of the repository is one unbroken chain. What it does
 * not prove alone: that a stored record is in that tree (that needs the MST
 * path from the root to the record, which the store does not keep).
 *
 * Thread safety: an audit is used by one thread at a time. */
#ifndef ES_ATPROTO_AUDIT_H
#define ES_ATPROTO_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/buf.h>
#include <es/cid.h>
#include <es/event.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The outcome of one commit, in the order the checks run (the first failing
 * check is the one reported). */
typedef enum es_atp_audit_reason {
    ES_ATP_AUDIT_OK = 0,
    ES_ATP_AUDIT_NO_AUDIT_METADATA,   /* sig, data, rev or commit missing or malformed */
    ES_ATP_AUDIT_NO_KEY,              /* no DID document, or one without a usable #atproto key */
    ES_ATP_AUDIT_SIGNATURE,           /* the signature does not verify over the rebuilt commit
                                         (or a #sync holds the commit of another DID or rev) */
    ES_ATP_AUDIT_COMMIT_CID_MISMATCH, /* the rebuilt block's CID is not the stored `commit` */
    ES_ATP_AUDIT_REV_ORDER,           /* rev not newer than the repository's previous commit */
    ES_ATP_AUDIT_SINCE_MISMATCH,      /* `since` is not the previous commit's rev */
    ES_ATP_AUDIT_PREV_DATA_MISMATCH,  /* `prevdata` is not the previous commit's `data` */
} es_atp_audit_reason;
#define ES_ATP_AUDIT_REASON_COUNT 8

/* "ok", "no_audit_metadata", "no_key", "signature", "commit_cid_mismatch",
 * "rev_order", "since_mismatch", "prev_data_mismatch"; "?" otherwise. */
ES_API const char *es_atp_audit_reason_name(es_atp_audit_reason r);

/* A commit as its op events carry it: the metadata values, NUL-terminated
 * text; NULL means absent. All borrowed for the call. */
typedef struct es_atp_audit_commit {
    const char *did;        /* the repository (the entity id, or metadata `did`) */
    const char *rev;        /* metadata `rev` */
    const char *data;       /* `data`: CID text of the MST root the commit signs */
    const char *commitprev; /* `commitprev`: CID text of the block's legacy `prev`; NULL: null */
    const char *sig;        /* `sig`: base64url, no padding, of the 64-byte signature */
    const char *commit;     /* `commit`: the CID text the store gives the commit block */
    const char *since;      /* `since`: the rev this commit follows; NULL: none */
    const char *prevdata;   /* `prevdata`: CID text of the MST root before it; NULL: none */
    /* `live` is "false": a repository's full state a resync applied
     * (es/atproto_resync.h). It has no since or prevdata: the chain restarts
     * at it, as at a #sync, and its rev must only not be older. */
    bool snapshot;
} es_atp_audit_commit;

/* The signed commit block {did, rev, sig, data, prev, version: 3} rebuilt
 * from `c` as canonical DAG-CBOR, appended to `block`, and its CID (CIDv1,
 * dag-cbor, sha2-256) in `cid`. ES_ERR_INVALID when did, rev, data or sig
 * is NULL; ES_ERR_DECODE when a CID text or the signature text does not
 * decode (with the field in es_last_error()). since, prevdata and commit
 * are not part of the block and are not read. */
ES_API es_status es_atp_audit_rebuild(const es_atp_audit_commit *c, es_buf *block,
                                      uint8_t cid[ES_CID_SHA256_LEN]);

typedef struct es_atp_audit es_atp_audit;

typedef struct es_atp_audit_options {
    /* Repositories whose chain is followed at once (default 1,000,000; about
     * 200 bytes each plus the DID). One more is ES_ERR_LIMIT from the call
     * that meets it. */
    size_t max_dids;
    /* Skip the chain checks (rev order, since, prevdata): for a partial
     * history, such as one collection of a store, where the previous commit
     * of a repository may not be among the events read. Default false. */
    bool no_chain;
} es_atp_audit_options;

ES_API void es_atp_audit_options_init(es_atp_audit_options *o);
/* `o` may be NULL (defaults). *out is the caller's: es_atp_audit_destroy. */
ES_API es_status es_atp_audit_create(const es_atp_audit_options *o, es_atp_audit **out);
/* Accepts NULL. */
ES_API void es_atp_audit_destroy(es_atp_audit *a);

/* The DID documents to verify against: a JSON object {did: document}, plain
 * or zstd-compressed (the `--did-docs` file of es-atproto-ingest). A
 * document replaces an earlier one of the same DID. *count (may be NULL)
 * gets the number of documents read. ES_ERR_IO when the file cannot be
 * read, ES_ERR_DECODE (naming the DID) when a document does not parse;
 * the documents read before stay loaded. */
ES_API es_status es_atp_audit_load_did_docs(es_atp_audit *a, const char *path, size_t *count);
/* One DID document (JSON text). */
ES_API es_status es_atp_audit_add_did_doc(es_atp_audit *a, const char *json, size_t len);

/* The result of one commit. The strings belong to the audit and stay valid
 * until the next call on it. */
typedef struct es_atp_audit_result {
    es_atp_audit_reason reason;
    const char *did, *rev, *commit; /* as stored; commit may be NULL when absent */
    size_t events;                  /* events of the commit read (0 for es_atp_audit_check) */
    uint64_t first_seq, last_seq;   /* their stream sequences */
} es_atp_audit_result;

/* Checks one commit (signature, CID, then the chain of its repository, which
 * it then extends) and fills *out. ES_OK whatever the verdict; an error
 * status only for NULL arguments or a group of es_atp_audit_event still open
 * (ES_ERR_INVALID), memory (ES_ERR_NOMEM) and ES_ERR_LIMIT (max_dids). */
ES_API es_status es_atp_audit_check(es_atp_audit *a, const es_atp_audit_commit *c,
                                    es_atp_audit_result *out);

/* Feeds events in stream order. The op events of one commit (same DID, same
 * `commit`, stored together by the atomic batch) are one commit group,
 * checked once; the group is complete when an event of another group, a
 * #sync, or es_atp_audit_finish comes. *ready tells whether *out holds the
 * result of a group completed by this call. An event whose audit metadata differs
 * from its group's first event's is checked too, against the same
 * predecessor; the group then reports the first failure.
 *
 * A #sync event (repo/sync) is a commit of its own: the commit block its
 * data carries (the frame body) is checked as op metadata is (key,
 * signature, CID against its metadata `commit`; its DID and rev must be the
 * event's), its rev must not be older than the chain's, and the chain then
 * restarts at it (since and prevdata do not apply to it). Other events are
 * not checked: #identity and #account (entity type "repo"), events of other
 * applications. Only one group is held at a time: memory stays bounded by
 * max_dids, one group and one #sync body. */
ES_API es_status es_atp_audit_event(es_atp_audit *a, const es_event *ev, es_atp_audit_result *out,
                                    bool *ready);
/* Completes the last group: *ready as for es_atp_audit_event. */
ES_API es_status es_atp_audit_finish(es_atp_audit *a, es_atp_audit_result *out, bool *ready);

/* Totals since the audit was created. */
typedef struct es_atp_audit_stats {
    uint64_t events;         /* handed to es_atp_audit_event */
    uint64_t skipped_events; /* of those, not checked (neither commit ops nor #sync) */
    uint64_t syncs;          /* #sync events (each also counted as a commit) */
    uint64_t commits;        /* commits checked (groups, #syncs, es_atp_audit_check calls) */
    /* The commits by outcome: [ES_ATP_AUDIT_OK] is those that passed. */
    uint64_t by_reason[ES_ATP_AUDIT_REASON_COUNT];
    uint64_t dids;     /* repositories followed */
    uint64_t did_docs; /* DID documents loaded */
} es_atp_audit_stats;

ES_API void es_atp_audit_stats_get(const es_atp_audit *a, es_atp_audit_stats *out);

/* Per repository, in the order first met: its commits and their outcomes
 * (by_reason[ES_ATP_AUDIT_OK] passed). Return non-zero from `fn` to stop. */
typedef int (*es_atp_audit_did_fn)(void *ctx, const char *did, uint64_t commits,
                                   const uint64_t by_reason[ES_ATP_AUDIT_REASON_COUNT]);
ES_API void es_atp_audit_each_did(const es_atp_audit *a, es_atp_audit_did_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
