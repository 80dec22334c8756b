/* XChaCha20-Poly1305 (IETF) with random nonces: the one primitive used both
 * for event payloads and for wrapping data keys, plus the event's associated
 * data and hex helpers. */
#include <string.h>

#include "envelope_internal.h"

void esi_aead_seal(const uint8_t key[ES_KEY_BYTES], const uint8_t *ad, size_t ad_len,
                  const uint8_t *in, size_t len, uint8_t *out)
{
    /* 192-bit random nonces: collisions are negligible for any number of
     * messages under one key, so no counter has to be kept anywhere. */
    randombytes_buf(out, ES_NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + ES_NONCE_BYTES, NULL, in, len, ad, ad_len,
                                               NULL, out, key);
}

es_status esi_aead_open(const uint8_t key[ES_KEY_BYTES], const uint8_t *ad, size_t ad_len,
                       const uint8_t *in, size_t len, uint8_t *out)
{
    if (len < ES_AEAD_OVERHEAD)
        return es_error(ES_ERR_CRYPTO, "encrypted data of %zu bytes is shorter than nonce and tag",
                        len);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, in + ES_NONCE_BYTES,
                                                   len - ES_NONCE_BYTES, ad, ad_len, in, key) != 0)
        return es_error(ES_ERR_CRYPTO, "authentication failed: the data was altered, moved to "
                                       "another subject or id, or the key is wrong");
    return ES_OK;
}

static void ad_field(crypto_generichash_state *st, const char *v)
{
    size_t n = v ? strlen(v) : 0;
    uint8_t len_be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    crypto_generichash_update(st, len_be, sizeof len_be);
    if (n > 0)
        crypto_generichash_update(st, (const uint8_t *)v, n);
}

void esi_event_ad(const esi_event_ad_fields *f, uint8_t ad[ES_AD_BYTES])
{
    static const char domain[] = "es-event-ad-v1"; /* with its NUL */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, ES_AD_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain);
    ad_field(&st, f->subject);
    ad_field(&st, f->event_id);
    ad_field(&st, f->key);
    ad_field(&st, f->compression);
    ad_field(&st, f->dict);
    ad_field(&st, f->schema);
    crypto_generichash_final(&st, ad, ES_AD_BYTES);
}

bool esi_unhex(const char *in, size_t in_len, uint8_t *out, size_t n)
{
    size_t got = 0;
    const char *end = NULL;
    /* sodium_hex2bin runs in constant time: it also parses master keys. */
    return in_len == 2 * n && sodium_hex2bin(out, n, in, in_len, NULL, &got, &end) == 0 &&
           got == n && end == in + in_len;
}
