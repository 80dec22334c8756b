/* The generator's signer (gen_sign.h): deterministic private keys, their
 * Multikey text, and RFC 6979 ECDSA signatures in atproto's low-S compact
 * form, K-256 through libsecp256k1 and P-256 through OpenSSL. */
#include "gen_sign.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>
#include <secp256k1.h>

#include "base/internal.h"

struct es_atp_gen_key {
    esi_atp_curve curve;
    uint8_t secret[ES_ATP_GEN_SECRET_LEN];
    uint8_t point[ESI_ATP_POINT_LEN];
};

/* ---- libsecp256k1: one signing context for the process ------------------ */

/* The static context cannot sign or derive public keys; a created one can,
 * and is safe to share between threads once made. Never freed: it lives as
 * long as the program. */
static secp256k1_context *secp_ctx;
static pthread_once_t secp_once = PTHREAD_ONCE_INIT;

static void secp_create(void)
{
    secp_ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
}

static secp256k1_context *secp(void)
{
    pthread_once(&secp_once, secp_create);
    return secp_ctx;
}

/* ---- P-256 through OpenSSL ---------------------------------------------- */

typedef struct p256 {
    EC_GROUP *group;
    BN_CTX *bn;
    const BIGNUM *order; /* owned by group */
} p256;

static es_status p256_open(p256 *c)
{
    c->group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    c->bn = BN_CTX_new();
    c->order = c->group ? EC_GROUP_get0_order(c->group) : NULL;
    if (c->group == NULL || c->bn == NULL || c->order == NULL)
        return es_error(ES_ERR_NOMEM, "P-256: OpenSSL could not set up the curve");
    return ES_OK;
}

static void p256_close(p256 *c)
{
    BN_CTX_free(c->bn);
    EC_GROUP_free(c->group);
}

/* The compressed point of secret * G. */
static es_status p256_public(const p256 *c, const BIGNUM *secret, uint8_t out[ESI_ATP_POINT_LEN])
{
    EC_POINT *p = EC_POINT_new(c->group);
    bool ok = p != NULL && EC_POINT_mul(c->group, p, secret, NULL, NULL, c->bn) == 1 &&
              EC_POINT_point2oct(c->group, p, POINT_CONVERSION_COMPRESSED, out, ESI_ATP_POINT_LEN,
                                 c->bn) == ESI_ATP_POINT_LEN;
    EC_POINT_free(p);
    return ok ? ES_OK : es_error(ES_ERR_NOMEM, "P-256: OpenSSL could not compute the point");
}

/* 1 <= v < order: a valid secret or nonce. */
static bool p256_in_range(const p256 *c, const BIGNUM *v)
{
    return !BN_is_zero(v) && BN_cmp(v, c->order) < 0;
}

/* ---- RFC 6979 nonces (section 3.2; qlen = hlen = 256) -------------------- */

typedef struct drbg {
    uint8_t k[32], v[32];
} drbg;

/* K = HMAC_K(V || tag || extra), V = HMAC_K(V) */
static void drbg_update(drbg *d, uint8_t tag, const uint8_t *extra, size_t extra_len)
{
    uint8_t msg[32 + 1 + 64];
    memcpy(msg, d->v, 32);
    msg[32] = tag;
    memcpy(msg + 33, extra, extra_len);
    unsigned n = 32;
    HMAC(EVP_sha256(), d->k, 32, msg, 33 + extra_len, d->k, &n);
    HMAC(EVP_sha256(), d->k, 32, d->v, 32, d->v, &n);
}

/* Steps b-f: seeded with the secret and the digest reduced mod the order. */
static void drbg_init(drbg *d, const uint8_t secret[32], const uint8_t h1[32])
{
    uint8_t seed[64];
    memcpy(seed, secret, 32);
    memcpy(seed + 32, h1, 32);
    memset(d->v, 0x01, sizeof d->v);
    memset(d->k, 0x00, sizeof d->k);
    drbg_update(d, 0x00, seed, sizeof seed);
    drbg_update(d, 0x01, seed, sizeof seed);
}

/* Step h: the next candidate (the caller rejects those out of range). */
static void drbg_next(drbg *d, uint8_t out[32], bool retry)
{
    unsigned n = 32;
    if (retry)
        drbg_update(d, 0x00, NULL, 0);
    HMAC(EVP_sha256(), d->k, 32, d->v, 32, d->v, &n);
    memcpy(out, d->v, 32);
}

/* r = x(kG) mod n and s = k^-1 (e + r d) mod n; false when r or s is zero
 * (the caller draws another nonce). */
static bool p256_sign_with(const p256 *c, const BIGNUM *k, const BIGNUM *d, const BIGNUM *e,
                           BIGNUM *r, BIGNUM *s, bool *failed)
{
    EC_POINT *kg = EC_POINT_new(c->group);
    BIGNUM *x = BN_new(), *kinv = BN_new();
    bool ok =
        kg != NULL && x != NULL && kinv != NULL &&
        EC_POINT_mul(c->group, kg, k, NULL, NULL, c->bn) == 1 &&
        EC_POINT_get_affine_coordinates(c->group, kg, x, NULL, c->bn) == 1 &&
        BN_nnmod(r, x, c->order, c->bn) == 1 && BN_mod_inverse(kinv, k, c->order, c->bn) != NULL &&
        BN_mod_mul(s, r, d, c->order, c->bn) == 1 && BN_mod_add(s, s, e, c->order, c->bn) == 1 &&
        BN_mod_mul(s, s, kinv, c->order, c->bn) == 1;
    EC_POINT_free(kg);
    BN_free(x);
    BN_clear_free(kinv);
    *failed = !ok;
    return ok && !BN_is_zero(r) && !BN_is_zero(s);
}

static es_status p256_sign(const es_atp_gen_key *key, const uint8_t digest[32],
                           uint8_t sig[ESI_ATP_SIG_LEN])
{
    p256 c = {0};
    es_status st = p256_open(&c);
    BIGNUM *d = BN_bin2bn(key->secret, 32, NULL), *e = BN_bin2bn(digest, 32, NULL);
    BIGNUM *k = BN_new(), *r = BN_new(), *s = BN_new(), *half = BN_new();
    if (st == ES_OK &&
        (d == NULL || e == NULL || k == NULL || r == NULL || s == NULL || half == NULL))
        st = es_error(ES_ERR_NOMEM, "P-256 sign: out of memory");
    uint8_t h1[32], cand[32];
    /* bits2octets: the digest reduced mod the order, as 32 bytes */
    if (st == ES_OK && (BN_nnmod(e, e, c.order, c.bn) != 1 || BN_bn2binpad(e, h1, 32) != 32))
        st = es_error(ES_ERR_NOMEM, "P-256 sign: OpenSSL arithmetic failed");
    drbg g;
    bool done = false, failed = false;
    if (st == ES_OK)
        drbg_init(&g, key->secret, h1);
    /* each candidate is out of range or gives r = 0 with probability ~2^-32 */
    for (int tries = 0; st == ES_OK && !done && !failed && tries < 64; tries++) {
        drbg_next(&g, cand, tries > 0);
        if (BN_bin2bn(cand, 32, k) == NULL)
            failed = true;
        else if (p256_in_range(&c, k))
            done = p256_sign_with(&c, k, d, e, r, s, &failed);
    }
    if (st == ES_OK && !done)
        st = es_error(ES_ERR_CRYPTO, "P-256 sign: no usable nonce");
    /* low-S: s above n/2 becomes n - s, an equally valid signature */
    if (st == ES_OK &&
        (BN_rshift1(half, c.order) != 1 || (BN_cmp(s, half) > 0 && BN_sub(s, c.order, s) != 1) ||
         BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32))
        st = es_error(ES_ERR_NOMEM, "P-256 sign: OpenSSL arithmetic failed");
    BN_clear_free(d);
    BN_clear_free(k);
    BN_free(e);
    BN_free(r);
    BN_free(s);
    BN_free(half);
    p256_close(&c);
    return st;
}

/* ---- keys ---------------------------------------------------------------- */

static es_status k256_public(const uint8_t secret[32], uint8_t out[ESI_ATP_POINT_LEN])
{
    secp256k1_pubkey pub;
    size_t len = ESI_ATP_POINT_LEN;
    if (secp() == NULL)
        return es_error(ES_ERR_NOMEM, "K-256: libsecp256k1 context");
    if (secp256k1_ec_seckey_verify(secp(), secret) != 1)
        return es_error(ES_ERR_INVALID, "K-256: the secret is zero or not below the order");
    if (secp256k1_ec_pubkey_create(secp(), &pub, secret) != 1 ||
        secp256k1_ec_pubkey_serialize(secp(), out, &len, &pub, SECP256K1_EC_COMPRESSED) != 1)
        return es_error(ES_ERR_INVALID, "K-256: libsecp256k1 refuses the secret");
    return ES_OK;
}

static es_status p256_public_of(const uint8_t secret[32], uint8_t out[ESI_ATP_POINT_LEN])
{
    p256 c = {0};
    es_status s = p256_open(&c);
    BIGNUM *d = s == ES_OK ? BN_bin2bn(secret, 32, NULL) : NULL;
    if (s == ES_OK && d == NULL)
        s = es_error(ES_ERR_NOMEM, "P-256: out of memory");
    if (s == ES_OK && !p256_in_range(&c, d))
        s = es_error(ES_ERR_INVALID, "P-256: the secret is zero or not below the order");
    if (s == ES_OK)
        s = p256_public(&c, d, out);
    BN_clear_free(d);
    p256_close(&c);
    return s;
}

es_status es_atp_gen_key_from_secret(esi_atp_curve curve,
                                     const uint8_t secret[ES_ATP_GEN_SECRET_LEN],
                                     es_atp_gen_key **out)
{
    if (secret == NULL || out == NULL || (curve != ESI_ATP_K256 && curve != ESI_ATP_P256))
        return es_error(ES_ERR_INVALID, "signing key: NULL argument or unknown curve");
    uint8_t point[ESI_ATP_POINT_LEN];
    es_status s =
        curve == ESI_ATP_K256 ? k256_public(secret, point) : p256_public_of(secret, point);
    if (s != ES_OK)
        return s;
    es_atp_gen_key *k = calloc(1, sizeof *k);
    if (k == NULL)
        return es_error(ES_ERR_NOMEM, "signing key: out of memory");
    k->curve = curve;
    memcpy(k->secret, secret, sizeof k->secret);
    memcpy(k->point, point, sizeof k->point);
    *out = k;
    return ES_OK;
}

es_status es_atp_gen_key_derive(esi_atp_curve curve, const void *seed, size_t len,
                                es_atp_gen_key **out)
{
    if ((seed == NULL && len > 0) || out == NULL)
        return es_error(ES_ERR_INVALID, "signing key: NULL argument");
    /* A hash is out of range with probability ~2^-32 (P-256) or ~2^-128. */
    for (unsigned counter = 0; counter < 256; counter++) {
        uint8_t secret[ES_ATP_GEN_SECRET_LEN], tag = (uint8_t)counter;
        EVP_MD_CTX *h = EVP_MD_CTX_new();
        bool ok = h != NULL && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1 &&
                  EVP_DigestUpdate(h, seed, len) == 1 && EVP_DigestUpdate(h, &tag, 1) == 1 &&
                  EVP_DigestFinal_ex(h, secret, NULL) == 1;
        EVP_MD_CTX_free(h);
        if (!ok)
            return es_error(ES_ERR_NOMEM, "signing key: SHA-256 failed");
        es_status s = es_atp_gen_key_from_secret(curve, secret, out);
        if (s != ES_ERR_INVALID)
            return s;
    }
    return es_error(ES_ERR_INVALID, "signing key: no valid secret from this seed");
}

void es_atp_gen_key_destroy(es_atp_gen_key *k)
{
    if (k == NULL)
        return;
    memset(k->secret, 0, sizeof k->secret);
    free(k);
}

esi_atp_curve es_atp_gen_key_curve(const es_atp_gen_key *k)
{
    return k->curve;
}

const uint8_t *es_atp_gen_key_point(const es_atp_gen_key *k)
{
    return k->point;
}

/* ---- Multikey ------------------------------------------------------------ */

static const char base58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* base58btc of `in` (at most 40 bytes) into out, NUL-terminated. */
static es_status base58_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
    uint8_t digits[64]; /* little-endian base-58 digits: 40 bytes need at most 55 */
    size_t used = 0, zeros = 0;
    if (len > 40)
        return es_error(ES_ERR_TOO_LARGE, "base58btc: more than 40 bytes");
    while (zeros < len && in[zeros] == 0)
        zeros++;
    for (size_t i = zeros; i < len; i++) {
        unsigned carry = in[i];
        for (size_t j = 0; j < used; j++) {
            carry += 256u * digits[j];
            digits[j] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        while (carry != 0) {
            digits[used++] = (uint8_t)(carry % 58);
            carry /= 58;
        }
    }
    if (zeros + used + 1 > out_size)
        return es_error(ES_ERR_TOO_LARGE, "base58btc: %zu characters do not fit", zeros + used);
    size_t n = 0;
    for (size_t i = 0; i < zeros; i++)
        out[n++] = '1';
    while (used > 0)
        out[n++] = base58_alphabet[digits[--used]];
    out[n] = '\0';
    return ES_OK;
}

es_status es_atp_gen_key_multikey(const es_atp_gen_key *k, char out[ES_ATP_GEN_MULTIKEY_MAX])
{
    /* multicodec varints: 0xe7 secp256k1-pub, 0x1200 p256-pub */
    uint8_t bytes[2 + ESI_ATP_POINT_LEN];
    bytes[0] = k->curve == ESI_ATP_K256 ? 0xe7 : 0x80;
    bytes[1] = k->curve == ESI_ATP_K256 ? 0x01 : 0x24;
    memcpy(bytes + 2, k->point, ESI_ATP_POINT_LEN);
    out[0] = 'z';
    return base58_encode(bytes, sizeof bytes, out + 1, ES_ATP_GEN_MULTIKEY_MAX - 1);
}

/* ---- signing ------------------------------------------------------------- */

es_status es_atp_gen_sign_digest(const es_atp_gen_key *k, const uint8_t digest[32],
                                 uint8_t sig[ESI_ATP_SIG_LEN])
{
    if (k == NULL || digest == NULL || sig == NULL)
        return es_error(ES_ERR_INVALID, "sign: NULL argument");
    if (k->curve == ESI_ATP_P256)
        return p256_sign(k, digest, sig);
    /* libsecp256k1's default nonce is RFC 6979 and its signatures are low-S */
    secp256k1_ecdsa_signature s;
    if (secp() == NULL || secp256k1_ecdsa_sign(secp(), &s, digest, k->secret, NULL, NULL) != 1 ||
        secp256k1_ecdsa_signature_serialize_compact(secp(), sig, &s) != 1)
        return es_error(ES_ERR_CRYPTO, "K-256 sign: libsecp256k1 failed");
    return ES_OK;
}

es_status es_atp_gen_sign(const es_atp_gen_key *k, const uint8_t *msg, size_t len,
                          uint8_t sig[ESI_ATP_SIG_LEN])
{
    if (msg == NULL && len > 0)
        return es_error(ES_ERR_INVALID, "sign: NULL message");
    uint8_t digest[32];
    if (SHA256(msg, len, digest) == NULL)
        return es_error(ES_ERR_NOMEM, "sign: SHA-256 failed");
    return es_atp_gen_sign_digest(k, digest, sig);
}
