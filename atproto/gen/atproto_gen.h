/* A deterministic generator of synthetic but real firehose traffic: DAG-CBOR
 * commits with valid CIDs, CAR diffs holding the commit, the new records and
 * the new nodes of a correctly built Merkle Search Tree, plus #identity,
 * #account and #sync events. The same seed always gives the same bytes.
 *
 * Not part of the library: used by the es-atproto-gen tool (the README's
 * demo capture) and by the tests. Commits are signed with real keys (K-256
 * and/or P-256, derived from the seed; gen_sign.h), the accounts' DID
 * documents come from es_atp_gen_did_docs, and keys can rotate through
 * #identity events. Unsigned captures (64 random bytes as `sig`) remain
 * possible. */
#ifndef ES_ATPROTO_GEN_H
#define ES_ATPROTO_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/cid.h>
#include <es/status.h>

typedef enum es_atp_gen_curves {
    ES_ATP_GEN_CURVES_MIXED = 0, /* accounts alternate: even numbers K-256, odd P-256 */
    ES_ATP_GEN_CURVES_K256,
    ES_ATP_GEN_CURVES_P256,
} es_atp_gen_curves;

typedef struct es_atp_gen_options {
    uint64_t seed;
    size_t repos;       /* accounts [50] */
    uint64_t first_seq; /* seq of the first frame [1] */
    int64_t start_ms;   /* time of the first frame, ms since the epoch [2025-06-01T12:00:00Z] */
    unsigned multi_op_permille; /* commits with 2-3 ops, per thousand (1..1000); 0: the
                                   default mix (~19%); the relay's traffic is nearer 7 */
    bool unsigned_commits;      /* `sig` is 64 random bytes instead of a signature */
    es_atp_gen_curves curves;   /* the accounts' key types [mixed] */
    unsigned rotate_permille;   /* key rotations per thousand frames (0..1000) [0]; each is
                                   an #identity of an account that had none yet, so
                                   an account rotates at most once */
    const char *pds_url;        /* the #atproto_pds serviceEndpoint of the DID documents
                                   [https://pds.gen.example]; borrowed */
} es_atp_gen_options;

typedef struct es_atp_gen_counts {
    size_t frames, commits, creates, updates, deletes, identity, account, sync;
    size_t rotations; /* of the identity events, those that rotated a key */
} es_atp_gen_counts;

typedef struct es_atp_gen es_atp_gen;

es_status es_atp_gen_create(const es_atp_gen_options *o, es_atp_gen **out);
void es_atp_gen_destroy(es_atp_gen *g);
/* Append the next frame (header + body) to `frame`. */
es_status es_atp_gen_next(es_atp_gen *g, es_buf *frame);
const es_atp_gen_counts *es_atp_gen_counts_of(const es_atp_gen *g);
/* The DID documents of every account as they are now, appended to `out` as
 * one JSON object {did: document} (the format of es-atproto-ingest
 * --did-docs, documents as a PLC directory serves them: id, alsoKnownAs
 * at://handle, the #atproto Multikey verification method, the #atproto_pds
 * service). Called before the first frame: the documents every commit
 * verifies against until its account's first #identity. Called after the
 * last: the documents after every rotation and handle change, those that
 * verify the account's commits after its first #identity. */
es_status es_atp_gen_did_docs(es_atp_gen *g, es_buf *out);
/* Append a #commit of repo `did` creating one record at `collection/rkey`
 * (its first commit, a one-leaf MST, prevData the empty tree, a zero
 * signature: `did` has no key), taking the next seq.
 * The strings are used as given, however long: for testing the mapping's
 * limits. The generator's own repos are not touched. */
es_status es_atp_gen_commit_at(es_atp_gen *g, const char *did, const char *collection,
                               const char *rkey, es_buf *frame);

/* A full-repository CAR (commit, every MST node, every record) of repo
 * number `repo` in its current state, as com.atproto.sync.getRepo serves it:
 * its commit is the repo's newest (#commit or #sync), the very block of the
 * capture (rev, data, sig). `did` (may be NULL) receives the repo's DID
 * (owned by the generator). */
es_status es_atp_gen_repo_car(es_atp_gen *g, size_t repo, es_buf *car, const char **did);
size_t es_atp_gen_repo_count(const es_atp_gen *g);
/* The records of repo number `repo` appended to `out`, one a line in key
 * order: "collection/rkey<TAB>record CID" (the format of the corpus's
 * car_expected_records.tsv). */
es_status es_atp_gen_repo_tsv(const es_atp_gen *g, size_t repo, es_buf *out);
/* Add `n` posts to repo number `repo` without frames (large repositories
 * for benchmarks): the next es_atp_gen_repo_car signs a new commit of the
 * new tree, with a new rev. */
es_status es_atp_gen_fill_repo(es_atp_gen *g, size_t repo, size_t n);
/* The records of repo number `repo`: key i ("collection/rkey") and its CID. */
size_t es_atp_gen_repo_records(const es_atp_gen *g, size_t repo);
const char *es_atp_gen_record_key(const es_atp_gen *g, size_t repo, size_t i);
const uint8_t *es_atp_gen_record_cid(const es_atp_gen *g, size_t repo, size_t i);

/* ---- the MST builder, exposed for its own tests ------------------------- */

typedef struct es_atp_gen_leaf {
    const char *key; /* sorted ascending, unique */
    uint8_t cid[ES_CID_SHA256_LEN];
} es_atp_gen_leaf;

/* Called for every node of the tree, children before parents. */
typedef es_status (*es_atp_gen_node_fn)(const uint8_t cid[ES_CID_SHA256_LEN], const uint8_t *bytes,
                                        size_t len, void *user);

/* Build the MST of `leaves` (atproto repository spec: SHA-256 key heights,
 * 4-way fanout) and store its root CID. `fn` may be NULL. */
es_status es_atp_gen_mst(const es_atp_gen_leaf *leaves, size_t n, es_atp_gen_node_fn fn, void *user,
                         uint8_t root[ES_CID_SHA256_LEN]);

/* The MST height of a key: leading zero bits of its SHA-256, halved. */
int es_atp_gen_key_height(const char *key, size_t len);

#endif
