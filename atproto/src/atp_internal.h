/* Private helpers shared by the adapter's modules. Not installed. */
#ifndef ES_ATP_INTERNAL_H
#define ES_ATP_INTERNAL_H

#include <es/atproto.h>
#include <es/cbor.h>

#include <es/alloc.h>

#include "base/internal.h"

/* Raise `s` with the text "<formatted prefix>: <the thread's previous error
 * text>", copying the previous text first (es_error would otherwise read and
 * write the same thread-local buffer). */
es_status esi_atp_error_wrap(es_status s, const char *fmt, ...) ES_PRINTF(2, 3);

/* Strict DAG-CBOR decode of exactly [buf, buf+len) (trailing bytes are an
 * error) with the given depth bound, zero copy. */
es_status esi_atp_decode_exact(const uint8_t *buf, size_t len, size_t max_depth, es_arena *arena,
                           es_value **out);

/* A record's CID as atproto requires it: a whole dag-cbor CIDv1. */
bool esi_atp_record_cid_ok(const uint8_t *cid, size_t len);

/* Decode a hash-verified record block strictly into `scratch` (reset
 * first). A block that is not DAG-CBOR, or not a map, is not refused: ES_OK
 * with *invalid saying so ("not DAG-CBOR", "not a map"; NULL when it is
 * sound), the rule for records a repository's owner signed (docs/atproto.md,
 * "Invalid records"). The bounds still refuse: ES_ERR_TOO_DEEP past
 * max_depth, ES_ERR_NOMEM / ES_ERR_LIMIT when `scratch` is full. */
es_status esi_atp_record_decode(const uint8_t *data, size_t len, size_t max_depth,
                                es_arena *scratch, const char **invalid);

/* libes-atproto's string hash (FNV-1a 64) and monotonic clock: base/'s own
 * are hidden inside libes (the shared libraries export ES_API names only). */
uint64_t esi_atp_hash(const char *s, size_t len);
int64_t esi_atp_monotonic_ms(void);
/* A copy through es_malloc (the caller es_free's it), NULL when out of memory. */
char *esi_atp_strdup(const char *s);

/* The DID of a repository key (es_atp_repo_key's inverse, repos.c) into
 * out[0..ES_ATP_REPO_KEY_MAX] (NUL-terminated), its length in *len: false
 * for a hashed key ("cid/...", whose DID only the value holds) or a key
 * that is no DID's. */
bool esi_atp_repo_key_did(const char *key, char *out, size_t *len);

/* base64url without padding (RFC 4648 section 5, as atproto writes
 * signatures in JWTs and the audit metadata `sig` holds them): the codecs'
 * base64 with '-' for '+' and '_' for '/', NUL-terminated in out[cap].
 * ES_ERR_TOO_LARGE when it does not fit. */
es_status esi_atp_base64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/* A repository path "collection/rkey" (an op's `path`, an MST key): NULL
 * when it is one, with *collection_len the length before the '/'; else
 * what is wrong with it ("path has no '/'", ...) (syntax.c). */
const char *esi_atp_repo_path_problem(const char *path, size_t len, size_t *collection_len);

/* Microseconds since the Unix epoch of a TID (es_atp_valid_tid assumed):
 * its 64-bit value without the 10 clock-id bits (syntax.c). */
int64_t esi_atp_tid_time_us(const char *tid);

/* One decoded MST node entry: key prefix length, suffix, value and right
 * subtree (binary CIDs, NULL when absent), pointing into the block. */
typedef struct esi_mst_entry {
    size_t prefix;
    const uint8_t *suffix, *value, *tree;
    size_t suffix_len, value_len, tree_len;
} esi_mst_entry;

typedef struct esi_mst_node {
    const uint8_t *left; /* the subtree before the first entry, or NULL */
    size_t left_len;
    esi_mst_entry *entries; /* es_calloc'ed: the caller frees it with es_free */
    size_t count;
} esi_mst_node;

/* Read a decoded MST node value {l, e: [{p, k, v, t}]} into *n (shapes
 * checked, keys not yet expanded). ES_ERR_DECODE when it is not one. */
es_status esi_mst_read_node(const es_value *v, esi_mst_node *n);

#endif
