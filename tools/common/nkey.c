/* NKey seeds and public keys (see nkey.h). */
#include "nkey.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include <es/base.h>

#define PREFIX_SEED (18 << 3) /* 'S' */
#define PREFIX_USER (20 << 3) /* 'U' */
#define SEED_RAW    36        /* 2 prefix bytes, 32 seed bytes, 2 CRC bytes */
#define PUBLIC_RAW  35        /* 1 prefix byte, 32 key bytes, 2 CRC bytes */

static uint16_t crc16_xmodem(const uint8_t *p, size_t n)
{
    uint32_t crc = 0; /* 32 bits wide, so the shifts need no casts; kept to 16 below */
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint32_t)p[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000u) ? ((crc << 1) ^ 0x1021u) & 0xFFFFu : (crc << 1) & 0xFFFFu;
    }
    return (uint16_t)crc;
}

static void put_crc(uint8_t *p, size_t n)
{
    uint16_t crc = crc16_xmodem(p, n);
    p[n] = (uint8_t)(crc & 0xff);
    p[n + 1] = (uint8_t)(crc >> 8);
}

/* Base32 in NKeys' upper case, through the shared (lower-case) codec. */
static es_status encode_upper(const uint8_t *raw, size_t n, char *out, size_t out_size)
{
    size_t len = 0;
    es_status s = es_base32_encode(raw, n, out, out_size - 1, &len);
    if (s != ES_OK)
        return s;
    out[len] = '\0';
    for (size_t i = 0; i < len; i++)
        out[i] = (char)toupper((unsigned char)out[i]);
    return ES_OK;
}

es_status es_nkey_encode_user_seed(const uint8_t raw[32], char out[ES_NKEY_SEED_LEN + 1])
{
    uint8_t buf[SEED_RAW];
    buf[0] = (uint8_t)(PREFIX_SEED | (PREFIX_USER >> 5));
    buf[1] = (uint8_t)((PREFIX_USER & 31) << 3);
    memcpy(buf + 2, raw, 32);
    put_crc(buf, 34);
    es_status s = encode_upper(buf, sizeof buf, out, ES_NKEY_SEED_LEN + 1);
    sodium_memzero(buf, sizeof buf);
    return s;
}

es_status es_nkey_public_from_seed(const char *seed, size_t len, char out[ES_NKEY_PUBLIC_LEN + 1])
{
    char lower[ES_NKEY_SEED_LEN];
    uint8_t raw[SEED_RAW], pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    size_t n = 0;
    es_status s = ES_ERR_INVALID;
    if (len == ES_NKEY_SEED_LEN) {
        for (size_t i = 0; i < len; i++)
            lower[i] = (char)tolower((unsigned char)seed[i]);
        s = es_base32_decode(lower, len, raw, sizeof raw, &n);
    }
    if (s != ES_OK || n != SEED_RAW || (raw[0] & 0xf8) != PREFIX_SEED ||
        (((raw[0] & 7) << 5) | ((raw[1] & 0xf8) >> 3)) != PREFIX_USER ||
        crc16_xmodem(raw, 34) != (uint16_t)(raw[34] | raw[35] << 8)) {
        s = es_error(ES_ERR_INVALID, "not a valid NKey user seed");
    } else if (crypto_sign_seed_keypair(pk, sk, raw + 2) != 0) {
        s = es_error(ES_ERR_INVALID, "not a valid NKey user seed");
    } else {
        uint8_t pub[PUBLIC_RAW];
        pub[0] = PREFIX_USER;
        memcpy(pub + 1, pk, sizeof pk);
        put_crc(pub, 33);
        s = encode_upper(pub, sizeof pub, out, ES_NKEY_PUBLIC_LEN + 1);
    }
    sodium_memzero(lower, sizeof lower);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(sk, sizeof sk);
    return s;
}

es_status es_nkey_public_from_seed_file(const char *path, char out[ES_NKEY_PUBLIC_LEN + 1])
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return es_error(ES_ERR_IO, "cannot read NKey seed file '%.200s'", path);
    char line[256];
    es_status s = es_error(ES_ERR_INVALID, "no NKey user seed in '%.200s'", path);
    for (int lines = 0; lines < 64 && fgets(line, sizeof line, f) != NULL; lines++) {
        size_t len = strcspn(line, "\r\n \t");
        if (len >= 2 && line[0] == 'S' && line[1] == 'U') {
            s = es_nkey_public_from_seed(line, len, out);
            if (s != ES_OK)
                s = es_error(ES_ERR_INVALID, "'%.200s' holds no valid NKey user seed", path);
            break;
        }
    }
    sodium_memzero(line, sizeof line);
    fclose(f);
    return s;
}
