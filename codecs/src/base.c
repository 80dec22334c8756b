/* RFC 4648 base32 (lower case, unpadded) and base64 (standard alphabet). Both
 * share one bit-accumulator encoder and decoder, parameterised by the number
 * of bits per character and the alphabet. */
#include <es/base.h>

#include <stdint.h>

#include "base/internal.h"

#define NOT_IN_ALPHABET 0xff

typedef struct radix {
    const char *name;
    const char *alphabet;
    unsigned bits;                        /* per character */
    uint8_t (*value_of)(unsigned char c); /* NOT_IN_ALPHABET when outside */
} radix;

/* Range checks rather than lookup tables: no initialisation to race on. */
static uint8_t base32_value(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return (uint8_t)(c - 'a');
    if (c >= '2' && c <= '7')
        return (uint8_t)(c - '2' + 26);
    return NOT_IN_ALPHABET;
}

static uint8_t base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0' + 52);
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return NOT_IN_ALPHABET;
}

static const radix BASE32 = {"base32", "abcdefghijklmnopqrstuvwxyz234567", 5, base32_value};
static const radix BASE64 = {
    "base64", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 6, base64_value};

static size_t encoded_len(const radix *r, size_t n)
{
    if (n > (SIZE_MAX - r->bits) / 8)
        return SIZE_MAX;
    return (n * 8 + r->bits - 1) / r->bits;
}

size_t es_base32_encoded_len(size_t n)
{
    return encoded_len(&BASE32, n);
}
size_t es_base64_encoded_len(size_t n)
{
    return encoded_len(&BASE64, n);
}
size_t es_base32_decoded_max(size_t n)
{
    return n / 8 * 5 + (n % 8) * 5 / 8;
}
size_t es_base64_decoded_max(size_t n)
{
    return n / 4 * 3 + (n % 4) * 3 / 4;
}

static es_status encode(const radix *r, const uint8_t *in, size_t len, char *out, size_t out_size,
                        size_t *out_len)
{
    size_t need = encoded_len(r, len);
    if (need > out_size)
        return es_error(ES_ERR_TOO_LARGE, "%s: %zu bytes need %zu characters, room for %zu",
                        r->name, len, need, out_size);
    const unsigned mask = (1u << r->bits) - 1;
    uint32_t acc = 0; /* only the low `bits` bits are pending; higher ones are stale */
    unsigned pending = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        pending += 8;
        while (pending >= r->bits) {
            pending -= r->bits;
            out[o++] = r->alphabet[(acc >> pending) & mask];
        }
    }
    if (pending > 0)
        out[o++] = r->alphabet[(acc << (r->bits - pending)) & mask];
    if (out_len != NULL)
        *out_len = o;
    return ES_OK;
}

static es_status decode(const radix *r, const char *s, size_t slen, uint8_t *out, size_t out_size,
                        size_t *out_len)
{
    /* A final group that leaves a whole character's bits unused cannot come
     * from an encoder (base32: 1, 3 or 6 characters; base64: 1). */
    size_t tail_bits = (slen * r->bits) % 8;
    if (tail_bits >= r->bits)
        return es_error(ES_ERR_DECODE, "%s: impossible length %zu", r->name, slen);
    size_t need = slen * r->bits / 8;
    if (need > out_size)
        return es_error(ES_ERR_TOO_LARGE, "%s: %zu characters need %zu bytes, room for %zu",
                        r->name, slen, need, out_size);
    uint32_t acc = 0;
    unsigned pending = 0;
    size_t o = 0;
    for (size_t i = 0; i < slen; i++) {
        uint8_t v = r->value_of((unsigned char)s[i]);
        if (v == NOT_IN_ALPHABET)
            return es_error(ES_ERR_DECODE, "%s: invalid character 0x%02x at offset %zu", r->name,
                            (unsigned char)s[i], i);
        acc = (acc << r->bits) | v;
        pending += r->bits;
        if (pending >= 8) {
            pending -= 8;
            out[o++] = (uint8_t)(acc >> pending);
        }
    }
    if ((acc & ((1u << pending) - 1)) != 0)
        return es_error(ES_ERR_DECODE, "%s: non-zero trailing bits (not a canonical encoding)",
                        r->name);
    if (out_len != NULL)
        *out_len = o;
    return ES_OK;
}

es_status es_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_size,
                           size_t *out_len)
{
    return encode(&BASE32, in, len, out, out_size, out_len);
}

es_status es_base64_encode(const uint8_t *in, size_t len, char *out, size_t out_size,
                           size_t *out_len)
{
    return encode(&BASE64, in, len, out, out_size, out_len);
}

es_status es_base32_decode(const char *s, size_t slen, uint8_t *out, size_t out_size,
                           size_t *out_len)
{
    return decode(&BASE32, s, slen, out, out_size, out_len);
}

es_status es_base64_decode(const char *s, size_t slen, uint8_t *out, size_t out_size,
                           size_t *out_len)
{
    /* Padding is optional, but when present it must complete the last group
     * of four exactly: "QQ==" and "QQ" are accepted, "QQ=" is not. */
    size_t pads = 0;
    while (pads < 2 && pads < slen && s[slen - 1 - pads] == '=')
        pads++;
    if (pads > 0 && (slen % 4 != 0 || (slen - pads) % 4 + pads != 4))
        return es_error(ES_ERR_DECODE, "base64: wrong padding");
    return decode(&BASE64, s, slen - pads, out, out_size, out_len);
}
