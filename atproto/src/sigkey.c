/* ATProto signing keys: Multikey / did:key parsing and ECDSA verification
 * (atproto cryptography spec: K-256 and P-256, SHA-256, compact 64-byte
 * signatures, low-S only). Each key holds what its back end needs, parsed
 * once: a libsecp256k1 public key for K-256 (the faster library for that
 * curve, docs/performance.md) and an OpenSSL EVP_PKEY for both curves (P-256
 * verification, and the K-256 comparison of the benchmark). */
#include "atp_sig.h"

#include <es/alloc.h>
#include <es/cid.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <secp256k1.h>

#include "atp_internal.h"
#include "identity.h"

struct esi_atp_key {
    /* References (esi_atp_key_ref): an identity cache hands its keys to
     * decoders on other threads; the last holder frees the key. The parsed
     * keys are never changed after parsing, so holders share them. */
    atomic_uint refs;
    esi_atp_curve curve;
    uint8_t point[ESI_ATP_POINT_LEN];
    EVP_PKEY *pkey;
    secp256k1_pubkey secp; /* K-256 only */
};

/* ---- base58btc ---------------------------------------------------------- */

static const char base58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static int base58_digit(char c)
{
    const char *p = c != '\0' ? strchr(base58_alphabet, c) : NULL;
    return p != NULL ? (int)(p - base58_alphabet) : -1;
}

es_status esi_atp_base58_decode(const char *s, size_t slen, uint8_t *out, size_t out_size,
                                size_t *out_len)
{
    size_t zeros = 0;
    while (zeros < slen && s[zeros] == '1')
        zeros++;
    /* Big-endian accumulator in the tail of out: `used` bytes so far. */
    size_t used = 0;
    for (size_t i = zeros; i < slen; i++) {
        int d = base58_digit(s[i]);
        if (d < 0)
            return es_error(ES_ERR_DECODE, "base58btc: invalid character at %zu", i);
        unsigned carry = (unsigned)d;
        for (size_t k = 0; k < used; k++) {
            carry += 58u * out[out_size - 1 - k];
            out[out_size - 1 - k] = (uint8_t)carry;
            carry >>= 8;
        }
        while (carry != 0) {
            if (used + zeros >= out_size)
                return es_error(ES_ERR_TOO_LARGE, "base58btc: more than %zu bytes", out_size);
            out[out_size - 1 - used++] = (uint8_t)carry;
            carry >>= 8;
        }
    }
    if (used + zeros > out_size)
        return es_error(ES_ERR_TOO_LARGE, "base58btc: more than %zu bytes", out_size);
    memmove(out + zeros, out + out_size - used, used);
    memset(out, 0, zeros);
    *out_len = zeros + used;
    return ES_OK;
}

/* ---- keys --------------------------------------------------------------- */

/* Multicodec varints of the two public key types atproto uses. */
static const uint8_t prefix_k256[2] = {0xe7, 0x01};   /* 0xe7 secp256k1-pub */
static const uint8_t prefix_p256[2] = {0x80, 0x24};   /* 0x1200 p256-pub */
#define MULTIKEY_MAX_CHARS 64 /* z + base58 of 35 bytes is 49: bounds the quadratic decode */

static es_status openssl_key(esi_atp_key *k)
{
    const char *group = k->curve == ESI_ATP_K256 ? "secp256k1" : "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, k->point, sizeof k->point),
        OSSL_PARAM_END,
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    int ok = ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return es_error(ES_ERR_DECODE, "key: the point is not on the %s curve",
                        k->curve == ESI_ATP_K256 ? "K-256" : "P-256");
    return ES_OK;
}

/* libsecp256k1 asks users of its static context to run its self test once
 * first (it aborts when the library was miscompiled). */
static pthread_once_t secp_selftest_once = PTHREAD_ONCE_INIT;

static void secp_selftest(void)
{
    secp256k1_selftest();
}

es_status esi_atp_key_from_point(esi_atp_curve curve, const uint8_t *point, esi_atp_key **out)
{
    pthread_once(&secp_selftest_once, secp_selftest);
    if (point == NULL || out == NULL || (curve != ESI_ATP_K256 && curve != ESI_ATP_P256))
        return es_error(ES_ERR_INVALID, "key: NULL argument or unknown curve");
    esi_atp_key *k = es_calloc(1, sizeof *k);
    if (k == NULL)
        return es_error(ES_ERR_NOMEM, "key: out of memory");
    atomic_init(&k->refs, 1);
    k->curve = curve;
    memcpy(k->point, point, ESI_ATP_POINT_LEN);
    es_status s = openssl_key(k);
    if (s == ES_OK && curve == ESI_ATP_K256 &&
        secp256k1_ec_pubkey_parse(secp256k1_context_static, &k->secp, k->point,
                                  sizeof k->point) != 1)
        s = es_error(ES_ERR_DECODE, "key: libsecp256k1 refuses the K-256 point");
    if (s != ES_OK) {
        esi_atp_key_destroy(k);
        return s;
    }
    *out = k;
    return ES_OK;
}

static es_status key_from_bytes(const uint8_t *b, size_t n, esi_atp_key **out)
{
    if (n == 2 + ESI_ATP_POINT_LEN && memcmp(b, prefix_k256, 2) == 0)
        return esi_atp_key_from_point(ESI_ATP_K256, b + 2, out);
    if (n == 2 + ESI_ATP_POINT_LEN && memcmp(b, prefix_p256, 2) == 0)
        return esi_atp_key_from_point(ESI_ATP_P256, b + 2, out);
    return es_error(ES_ERR_DECODE,
                    "multikey: not a compressed secp256k1-pub or p256-pub key (%zu bytes)", n);
}

es_status esi_atp_key_from_multikey(const char *s, size_t len, esi_atp_key **out)
{
    if (s == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "multikey: NULL argument");
    if (len < 2 || s[0] != 'z')
        return es_error(ES_ERR_DECODE, "multikey: not base58btc multibase (no 'z' prefix)");
    if (len > MULTIKEY_MAX_CHARS)
        return es_error(ES_ERR_DECODE, "multikey: %zu characters, more than a key has", len);
    uint8_t bytes[48];
    size_t n = 0;
    es_status st = esi_atp_base58_decode(s + 1, len - 1, bytes, sizeof bytes, &n);
    if (st != ES_OK)
        return esi_atp_error_wrap(ES_ERR_DECODE, "multikey");
    return key_from_bytes(bytes, n, out);
}

es_status esi_atp_key_from_did_key(const char *s, size_t len, esi_atp_key **out)
{
    static const char scheme[] = "did:key:";
    if (s == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "did:key: NULL argument");
    if (len < sizeof scheme - 1 || memcmp(s, scheme, sizeof scheme - 1) != 0)
        return es_error(ES_ERR_DECODE, "did:key: does not start with \"did:key:\"");
    return esi_atp_key_from_multikey(s + sizeof scheme - 1, len - (sizeof scheme - 1), out);
}

esi_atp_key *esi_atp_key_ref(esi_atp_key *k)
{
    if (k != NULL)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void esi_atp_key_destroy(esi_atp_key *k)
{
    if (k == NULL || atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    EVP_PKEY_free(k->pkey);
    es_free(k);
}

esi_atp_curve esi_atp_key_curve(const esi_atp_key *k)
{
    return k->curve;
}

const uint8_t *esi_atp_key_point(const esi_atp_key *k)
{
    return k->point;
}

/* ---- verification ------------------------------------------------------- */

/* Half the group order of each curve, big-endian: s above it is high-S. */
static const uint8_t half_order_k256[32] = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0};
static const uint8_t half_order_p256[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};

es_status esi_atp_verify_digest_openssl(const esi_atp_key *k, const uint8_t digest[32],
                                        const uint8_t sig[ESI_ATP_SIG_LEN])
{
    /* OpenSSL verifies DER only: wrap the compact (r, s) as ECDSA-Sig-Value. */
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    uint8_t der[80], *p = der;
    int der_len = -1;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by es now */
        if (i2d_ECDSA_SIG(es, NULL) <= (int)sizeof der)
            der_len = i2d_ECDSA_SIG(es, &p);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    if (der_len <= 0)
        return es_error(ES_ERR_NOMEM, "signature: OpenSSL could not encode it");
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->pkey, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok ? ES_OK : es_error(ES_ERR_CRYPTO, "signature does not verify");
}

es_status esi_atp_verify_digest_secp256k1(const esi_atp_key *k, const uint8_t digest[32],
                                          const uint8_t sig[ESI_ATP_SIG_LEN])
{
    if (k->curve != ESI_ATP_K256)
        return es_error(ES_ERR_INVALID, "libsecp256k1 verifies K-256 keys only");
    secp256k1_ecdsa_signature parsed;
    if (secp256k1_ecdsa_signature_parse_compact(secp256k1_context_static, &parsed, sig) != 1)
        return es_error(ES_ERR_CRYPTO, "signature: r or s is not below the group order");
    if (secp256k1_ecdsa_verify(secp256k1_context_static, &parsed, digest, &k->secp) != 1)
        return es_error(ES_ERR_CRYPTO, "signature does not verify");
    return ES_OK;
}

es_status esi_atp_verify(const esi_atp_key *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                         size_t sig_len)
{
    if (k == NULL || (msg == NULL && len > 0) || sig == NULL)
        return es_error(ES_ERR_INVALID, "verify: NULL argument");
    if (sig_len != ESI_ATP_SIG_LEN)
        return es_error(ES_ERR_CRYPTO, "signature: %zu bytes, not the 64 of compact (r, s)", sig_len);
    const uint8_t *half = k->curve == ESI_ATP_K256 ? half_order_k256 : half_order_p256;
    if (memcmp(sig + 32, half, 32) > 0)
        return es_error(ES_ERR_CRYPTO, "signature: high-S form (atproto requires low-S)");
    /* The SHA-256 of cid.c (its tuned, per-thread context): a raw-codec
     * CIDv1 is 4 header bytes followed by the digest. */
    uint8_t cid[ES_CID_SHA256_LEN];
    es_status s = es_cid_sha256(ES_CID_CODEC_RAW, msg, len, cid);
    if (s != ES_OK)
        return s;
    const uint8_t *digest = cid + ES_CID_SHA256_LEN - 32;
    if (k->curve == ESI_ATP_K256)
        return esi_atp_verify_digest_secp256k1(k, digest, sig);
    return esi_atp_verify_digest_openssl(k, digest, sig);
}

es_status esi_atp_did_doc_key(const esi_atp_did_doc *doc, esi_atp_key **out)
{
    if (doc == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "DID document: NULL argument");
    *out = NULL;
    if (doc->signing_key == NULL)
        return es_error(ES_ERR_NOT_FOUND, "DID document of %s: no #atproto signing key", doc->did);
    if (doc->key_type == NULL || strcmp(doc->key_type, "Multikey") != 0)
        return es_error(ES_ERR_UNSUPPORTED, "DID document of %s: #atproto key of type %s",
                        doc->did, doc->key_type ? doc->key_type : "(none)");
    es_status s = esi_atp_key_from_multikey(doc->signing_key, strlen(doc->signing_key), out);
    return s == ES_OK ? s : esi_atp_error_wrap(s, "DID document #atproto key");
}
