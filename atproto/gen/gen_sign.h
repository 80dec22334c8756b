/* Signing keys for the capture generator (and the tests that check it):
 * private keys derived deterministically from a seed, their Multikey text,
 * and ECDSA signatures over SHA-256 in atproto's compact, low-S form.
 * K-256 goes through libsecp256k1, P-256 through OpenSSL's EC arithmetic.
 *
 * Both curves sign deterministically (RFC 6979 nonces): libsecp256k1 does
 * by default; the installed OpenSSL (3.0) offers deterministic ECDSA only
 * from 3.2, so the P-256 nonce is derived here (RFC 6979 section 3.2 with
 * HMAC-SHA-256) and the signature computed from it with OpenSSL's BIGNUM and
 * EC_POINT functions. Not constant-time and not for real keys: these keys
 * sign test data, nothing else. The library only verifies (atp_sig.h). */
#ifndef ES_ATPROTO_GEN_SIGN_H
#define ES_ATPROTO_GEN_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <es/status.h>

#include "atproto/src/atp_sig.h"

#define ES_ATP_GEN_SECRET_LEN 32
/* "z" + base58btc of the 2-byte multicodec prefix and the 33-byte point is
 * 49 characters; with the NUL and room to spare. */
#define ES_ATP_GEN_MULTIKEY_MAX 64

typedef struct es_atp_gen_key es_atp_gen_key;

/* A private key from its 32 big-endian bytes. ES_ERR_INVALID when they are
 * zero or not below the curve's order. *out is the caller's
 * (es_atp_gen_key_destroy). */
es_status es_atp_gen_key_from_secret(esi_atp_curve curve,
                                     const uint8_t secret[ES_ATP_GEN_SECRET_LEN],
                                     es_atp_gen_key **out);
/* A private key derived from `seed` (any bytes): the first SHA-256 of
 * seed || counter (counter 0, 1, ... as one byte) that is a valid secret.
 * The same seed always gives the same key. */
es_status es_atp_gen_key_derive(esi_atp_curve curve, const void *seed, size_t len,
                                es_atp_gen_key **out);
void es_atp_gen_key_destroy(es_atp_gen_key *k); /* accepts NULL */

esi_atp_curve es_atp_gen_key_curve(const es_atp_gen_key *k);
/* The public key as a compressed SEC1 point (ESI_ATP_POINT_LEN bytes, owned
 * by the key). */
const uint8_t *es_atp_gen_key_point(const es_atp_gen_key *k);
/* The public key's Multikey text ("z" + base58btc of the multicodec varint
 * and the point), NUL-terminated; "did:key:" + it is the did:key. */
es_status es_atp_gen_key_multikey(const es_atp_gen_key *k, char out[ES_ATP_GEN_MULTIKEY_MAX]);

/* Sign SHA-256 of [msg, msg+len): compact r || s, s in the lower half of
 * the order (atproto's low-S rule), deterministic (RFC 6979). */
es_status es_atp_gen_sign(const es_atp_gen_key *k, const uint8_t *msg, size_t len,
                          uint8_t sig[ESI_ATP_SIG_LEN]);
/* The same over a computed digest. */
es_status es_atp_gen_sign_digest(const es_atp_gen_key *k, const uint8_t digest[32],
                                 uint8_t sig[ESI_ATP_SIG_LEN]);

#endif
