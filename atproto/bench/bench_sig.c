/* Signature verification throughput, the figures of docs/performance.md
 * ("Commit signatures"): K-256 through OpenSSL and through libsecp256k1 side
 * by side, P-256 through OpenSSL, then the full check atproto ingest runs
 * (SHA-256 of a commit-sized message, low-S rule, the chosen back end).
 * Keys and signatures are fresh each run (OpenSSL key generation), one per
 * key, and the loop walks all of them so that no single key stays cached.
 * Built with ES_BUILD_BENCHMARKS, never installed, never run by ctest.
 * Usage: bench_sig [keys [seconds]]   (defaults: 1000 keys, 1 s a row) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <es/time.h>
#include <es/cid.h>

#include "atp_sig.h"

#define MSG_LEN 150 /* about the size of an unsigned commit block */

typedef struct sample {
    esi_atp_key *key;
    uint8_t msg[MSG_LEN];
    uint8_t digest[32];
    uint8_t sig[ESI_ATP_SIG_LEN];
} sample;

static double now_s(void)
{
    return (double)es_monotonic_ns() / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_sig: %s failed\n", what);
    exit(1);
}

/* Sign digest with pkey; true when the signature is in low-S form (the only
 * form atproto accepts: the caller signs again otherwise). */
static int sign_compact(EVP_PKEY *pkey, const uint8_t digest[32], uint8_t sig[ESI_ATP_SIG_LEN],
                        const BIGNUM *half)
{
    uint8_t der[80];
    size_t der_len = sizeof der;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
        EVP_PKEY_sign(ctx, der, &der_len, digest, 32) != 1)
        die("EVP_PKEY_sign");
    EVP_PKEY_CTX_free(ctx);
    const uint8_t *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (es == NULL)
        die("d2i_ECDSA_SIG");
    int low = BN_cmp(ECDSA_SIG_get0_s(es), half) <= 0;
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
    ECDSA_SIG_free(es);
    return low;
}

static void make_sample(const char *group, esi_atp_curve curve, const BIGNUM *half, sample *s)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    if (pkey == NULL ||
        EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "compressed") != 1)
        die("EVP_PKEY_Q_keygen");
    uint8_t point[ESI_ATP_POINT_LEN];
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &n) !=
            1 ||
        n != sizeof point || esi_atp_key_from_point(curve, point, &s->key) != ES_OK)
        die("public key export");
    uint8_t cid[ES_CID_SHA256_LEN];
    do {
        if (RAND_bytes(s->msg, MSG_LEN) != 1 ||
            es_cid_sha256(ES_CID_CODEC_RAW, s->msg, MSG_LEN, cid) != ES_OK)
            die("message");
        memcpy(s->digest, cid + ES_CID_SHA256_LEN - 32, 32);
    } while (!sign_compact(pkey, s->digest, s->sig, half));
    EVP_PKEY_free(pkey);
}

typedef enum way { OPENSSL_DIGEST, SECP256K1_DIGEST, FULL_CHECK } way;

/* Verifications per second of `way` over the samples, for about `seconds`. */
static double rate(sample *samples, size_t count, way w, double seconds)
{
    size_t done = 0;
    double start = now_s(), elapsed = 0;
    while (elapsed < seconds) {
        for (size_t i = 0; i < count; i++) {
            sample *s = &samples[i];
            es_status st = w == OPENSSL_DIGEST ? esi_atp_verify_digest_openssl(s->key, s->digest, s->sig)
                           : w == SECP256K1_DIGEST
                               ? esi_atp_verify_digest_secp256k1(s->key, s->digest, s->sig)
                               : esi_atp_verify(s->key, s->msg, MSG_LEN, s->sig, ESI_ATP_SIG_LEN);
            if (st != ES_OK)
                die("a verification");
        }
        done += count;
        elapsed = now_s() - start;
    }
    return (double)done / elapsed;
}

static sample *make_samples(const char *group, esi_atp_curve curve, const char *half_hex, size_t n)
{
    BIGNUM *half = NULL;
    if (BN_hex2bn(&half, half_hex) == 0)
        die("BN_hex2bn");
    sample *s = calloc(n, sizeof *s);
    if (s == NULL)
        die("calloc");
    for (size_t i = 0; i < n; i++)
        make_sample(group, curve, half, &s[i]);
    BN_free(half);
    return s;
}

static void free_samples(sample *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        esi_atp_key_destroy(s[i].key);
    free(s);
}

int main(int argc, char **argv)
{
    size_t keys = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    double seconds = argc > 2 ? strtod(argv[2], NULL) : 1.0;
    if (keys == 0 || keys > 1000000 || !(seconds > 0))
        die("arguments (usage: bench_sig [keys [seconds]])");
    sample *k256 = make_samples("secp256k1", ESI_ATP_K256,
                                "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0", keys);
    sample *p256 = make_samples("prime256v1", ESI_ATP_P256,
                                "7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8", keys);
    printf("%zu keys per curve, one signature each, %.1f s per row, one thread\n", keys, seconds);
    printf("%-44s %12s\n", "curve, library", "verifies/s");
    printf("%-44s %12.0f\n", "K-256, OpenSSL " OPENSSL_VERSION_TEXT,
           rate(k256, keys, OPENSSL_DIGEST, seconds));
    printf("%-44s %12.0f\n", "K-256, libsecp256k1", rate(k256, keys, SECP256K1_DIGEST, seconds));
    printf("%-44s %12.0f\n", "P-256, OpenSSL", rate(p256, keys, OPENSSL_DIGEST, seconds));
    printf("%-44s %12.0f\n", "K-256, full check (SHA-256, low-S, chosen)",
           rate(k256, keys, FULL_CHECK, seconds));
    printf("%-44s %12.0f\n", "P-256, full check (SHA-256, low-S, chosen)",
           rate(p256, keys, FULL_CHECK, seconds));
    free_samples(k256, keys);
    free_samples(p256, keys);
    return 0;
}
