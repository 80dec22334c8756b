/* What the webhook tests' receivers share: reading a request's headers,
 * verifying its signature as a receiver would (OpenSSL's one-shot HMAC over
 * "<t>.<body>", independent of webhook_sign), and the deterministic rule by
 * which a flaky receiver fails ~30 % of requests and is slow. Used with
 * atproto/tests/http_standin.h's POST handler. Test-only. */
#ifndef SERVE_TEST_WEBHOOK_RECEIVER_H
#define SERVE_TEST_WEBHOOK_RECEIVER_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* A pseudo-random number for (id, attempt): the same on every run. */
static inline uint64_t wr_mix(uint64_t id, uint64_t attempt)
{
    uint64_t x = id * 0x9e3779b97f4a7c15ULL + attempt * 0xbf58476d1ce4e5b9ULL + 1;
    x ^= x >> 31;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 29);
}

/* The flaky receiver's rule: about 30 % of requests fail. */
static inline bool wr_flaky_fails(uint64_t id, unsigned attempt)
{
    return wr_mix(id, attempt) % 100 < 30;
}

/* The flaky receiver's slowness: 2 to 10 ms. */
static inline int wr_delay_ms(uint64_t id, unsigned attempt)
{
    return 2 + (int)(wr_mix(id, attempt + 100) % 9);
}

/* The value of header `name` in `head`, copied into out[cap]; false if
 * absent or longer. */
static inline bool wr_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) != 0 || p[2 + n] != ':')
            continue;
        const char *v = p + 3 + n, *end = strstr(v, "\r\n");
        while (*v == ' ')
            v++;
        size_t len = end != NULL ? (size_t)(end - v) : strlen(v);
        if (len >= cap)
            return false;
        memcpy(out, v, len);
        out[len] = '\0';
        return true;
    }
    return false;
}

/* The event id and attempt of a webhook request; false when either is
 * missing or malformed. */
static inline bool wr_request_ids(const char *head, uint64_t *id, unsigned *attempt)
{
    char v[64];
    return wr_header(head, "X-Es-Event-Id", v, sizeof v) && sscanf(v, "%" SCNu64, id) == 1 &&
           wr_header(head, "X-Es-Attempt", v, sizeof v) && sscanf(v, "%u", attempt) == 1;
}

/* Verifies the request's X-Es-Signature, "t=<t>,v1=<hex>", as a receiver
 * would: the HMAC recomputed over "<t>.<body>", and t within five minutes
 * of now. */
static inline bool wr_signature_verifies(const char *secret, const char *head, const void *body,
                                         size_t len)
{
    char sig[128], hex[65];
    long long t;
    if (!wr_header(head, "X-Es-Signature", sig, sizeof sig) ||
        sscanf(sig, "t=%lld,v1=%64[0-9a-f]", &t, hex) != 2 || strlen(hex) != 64 ||
        llabs((long long)time(NULL) - t) > 300)
        return false;
    char *msg = malloc(32 + len);
    int n = snprintf(msg, 32, "%lld.", t);
    memcpy(msg + n, body, len);
    unsigned char mac[32];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg, (size_t)n + len, mac,
         &mac_len);
    free(msg);
    char want[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    return mac_len == 32 && strcmp(want, hex) == 0;
}

#endif
