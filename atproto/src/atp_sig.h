/* Signature keys and checks of ATProto repositories (not installed):
 * Multikey / did:key parsing (base58btc, multicodec-prefixed compressed
 * points), ECDSA verification over SHA-256 with the low-S rule the atproto
 * cryptography spec requires, the check of a commit block's `sig`, and the
 * signing key of a DID document. K-256 goes through libsecp256k1 and P-256
 * through OpenSSL (docs/performance.md has the measurement behind that). */
#ifndef ES_ATP_SIG_H
#define ES_ATP_SIG_H

#include <stddef.h>
#include <stdint.h>

#include <es/arena.h>
#include <es/status.h>
#include <es/value.h>

#define ESI_ATP_SIG_LEN   64 /* compact r || s, both big-endian 32 bytes */
#define ESI_ATP_POINT_LEN 33 /* SEC1 compressed point */

typedef enum esi_atp_curve {
    ESI_ATP_K256 = 1, /* secp256k1, multicodec 0xe7, JWT alg ES256K */
    ESI_ATP_P256,     /* NIST P-256, multicodec 0x1200, JWT alg ES256 */
} esi_atp_curve;

typedef struct esi_atp_key esi_atp_key;

/* Decode base58btc (the Bitcoin alphabet, no multibase prefix) into out.
 * ES_ERR_DECODE on a character outside the alphabet, ES_ERR_TOO_LARGE when
 * the result does not fit out_size; *out_len is the decoded length. The
 * work is quadratic in slen: callers bound it (multikeys are ~50 chars). */
es_status esi_atp_base58_decode(const char *s, size_t slen, uint8_t *out, size_t out_size,
                                size_t *out_len);

/* A public key from its Multikey text ("z" + base58btc of the multicodec
 * varint and the compressed point), or from a did:key ("did:key:" + the
 * same). The point is checked to lie on its curve. *out is the caller's (free
 * it with esi_atp_key_destroy). ES_ERR_DECODE with the reason otherwise. */
es_status esi_atp_key_from_multikey(const char *s, size_t len, esi_atp_key **out);
es_status esi_atp_key_from_did_key(const char *s, size_t len, esi_atp_key **out);
/* A public key from its curve and compressed point (ESI_ATP_POINT_LEN bytes). */
es_status esi_atp_key_from_point(esi_atp_curve curve, const uint8_t *point, esi_atp_key **out);
/* Another reference to `k` (returned): a key is immutable once parsed, so
 * threads share it; each reference is released by esi_atp_key_destroy, and
 * the last one frees the key. Accepts NULL. */
esi_atp_key *esi_atp_key_ref(esi_atp_key *k);
/* Releases one reference (the key's creator holds the first). Accepts NULL. */
void esi_atp_key_destroy(esi_atp_key *k);
esi_atp_curve esi_atp_key_curve(const esi_atp_key *k);
/* The key's compressed point (ESI_ATP_POINT_LEN bytes, owned by the key). */
const uint8_t *esi_atp_key_point(const esi_atp_key *k);

/* Verify sig (compact r || s, sig_len bytes) over SHA-256 of [msg,
 * msg+len). ES_OK when valid; ES_ERR_CRYPTO when the signature does not
 * verify, is not ESI_ATP_SIG_LEN bytes (a DER signature, for one), or its s
 * is in the upper half of the group order (atproto accepts low-S only). */
es_status esi_atp_verify(const esi_atp_key *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                         size_t sig_len);

/* The two back ends behind esi_atp_verify, over an already computed digest
 * and without the low-S check, for the benchmark that chose between them
 * (atproto/bench). The libsecp256k1 one handles K-256 keys only
 * (ES_ERR_INVALID otherwise). */
es_status esi_atp_verify_digest_openssl(const esi_atp_key *k, const uint8_t digest[32],
                                        const uint8_t sig[ESI_ATP_SIG_LEN]);
es_status esi_atp_verify_digest_secp256k1(const esi_atp_key *k, const uint8_t digest[32],
                                          const uint8_t sig[ESI_ATP_SIG_LEN]);

/* Check the `sig` of a commit block (strict DAG-CBOR map with did, version,
 * data, rev, prev, sig): the signature covers the canonical DAG-CBOR of the
 * same map without `sig`. Decoding refuses non-canonical input, so the
 * re-encoding is the only byte string the signer can have signed. Scratch
 * memory comes from `arena`. ES_ERR_DECODE when the block is not such a map
 * or lacks a `sig` byte string, ES_ERR_CRYPTO when the signature does not verify. */
es_status esi_atp_commit_verify(const uint8_t *block, size_t len, const esi_atp_key *key,
                                es_arena *arena);

/* The atproto signing key of a DID document as the identity layer parsed it
 * (identity.h: the "#atproto" verification method's publicKeyMultibase and
 * type), parsed. ES_ERR_NOT_FOUND when the document has none,
 * ES_ERR_UNSUPPORTED for the legacy Ecdsa...VerificationKey2019 types (a
 * bare point; no document of the corpus uses one), ES_ERR_DECODE when the
 * key does not parse. *out as for esi_atp_key_from_multikey. */
struct esi_atp_did_doc;
es_status esi_atp_did_doc_key(const struct esi_atp_did_doc *doc, esi_atp_key **out);

#endif
