/* The webhook's signature (webhook.h): HMAC-SHA256 over "<t>.<body>",
 * computed in two updates so the body is never copied. */
#include "webhook.h"

#include <inttypes.h>
#include <stdio.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define T_TEXT_MAX 24 /* an int64 in decimal, its '.' and NUL */

static bool hmac_sha256(const void *key, size_t key_len, const void *a, size_t a_len,
                        const void *b, size_t b_len, unsigned char out[32])
{
    /* EVP_MAC, not the HMAC_CTX OpenSSL 3 deprecates; a zero-length key is
     * refused by the provider, so it gets one zero byte (HMAC pads keys
     * with zeros: the same MAC). */
    static const unsigned char zero = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t n = 0;
    bool ok = ctx != NULL &&
              EVP_MAC_init(ctx, key_len > 0 ? key : &zero, key_len > 0 ? key_len : 1, params) &&
              EVP_MAC_update(ctx, a, a_len) && EVP_MAC_update(ctx, b, b_len) &&
              EVP_MAC_final(ctx, out, &n, 32) && n == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

es_status webhook_sign(const void *secret, size_t secret_len, int64_t t, const unsigned char *body,
                       size_t len, char out[WEBHOOK_SIGNATURE_MAX])
{
    static const char hex[] = "0123456789abcdef";
    char prefix[T_TEXT_MAX];
    int pn = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
    unsigned char mac[32];
    if (!hmac_sha256(secret, secret_len, prefix, (size_t)pn, body, len, mac))
        return es_error(ES_ERR_UNSUPPORTED, "webhook: OpenSSL's HMAC-SHA256 failed");
    int n = snprintf(out, WEBHOOK_SIGNATURE_MAX, "t=%" PRId64 ",v1=", t);
    for (size_t i = 0; i < sizeof mac; i++) {
        out[n++] = hex[mac[i] >> 4];
        out[n++] = hex[mac[i] & 15];
    }
    out[n] = '\0';
    return ES_OK;
}
