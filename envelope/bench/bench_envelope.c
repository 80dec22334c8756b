/* es-bench-envelope: the per-event cost of the envelope's stages, for
 * 256 B, 1 KiB and 16 KiB payloads of JSON-like text.
 *
 *   es-bench-envelope
 *
 * Data keys live in a one-record in-memory backend: keys are cached after
 * the first event, so the figures are the steady state, which does not
 * depend on where keys are kept. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <es/envelope.h>

#define ENTITY      "$ES.bench.order.42"
#define MIN_SECONDS 0.4

/* The event every payload is sealed for. */
static const es_envelope_event event = {.subject = ENTITY ".created",
                                        .entity = ENTITY,
                                        .entity_len = sizeof ENTITY - 1,
                                        .entity_type = "order",
                                        .entity_type_len = 5,
                                        .event_type = "created",
                                        .event_type_len = 7};

/* A keyring backend that holds one record: the bench's one entity. */
typedef struct one_record {
    uint8_t rec[ES_KEYRING_RECORD_MAX];
    size_t len;
} one_record;

static es_status rec_get(void *ctx, const char *name, uint8_t *rec, size_t cap, size_t *len)
{
    (void)name;
    one_record *r = ctx;
    if (r->len == 0)
        return ES_ERR_NOT_FOUND;
    memcpy(rec, r->rec, r->len < cap ? r->len : cap);
    *len = r->len;
    return ES_OK;
}

static es_status rec_put(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    (void)name;
    one_record *r = ctx;
    if (len > sizeof r->rec)
        return ES_ERR_TOO_LARGE;
    memcpy(r->rec, rec, len);
    r->len = len;
    return ES_OK;
}

static es_status rec_create(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    return ((one_record *)ctx)->len ? ES_ERR_EXISTS : rec_put(ctx, name, rec, len);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* JSON-like records with varying numbers: compressible like real events. */
static void fill(uint8_t *p, size_t n)
{
    char rec[96];
    size_t at = 0;
    for (unsigned i = 0; at < n; i++) {
        int k = snprintf(rec, sizeof rec,
                         "{\"sku\":\"SKU-%05u\",\"qty\":%u,\"price\":%u.%02u,\"note\":\"gift\"},",
                         i * 7919u % 100000u, i % 9 + 1, i * 31u % 500u, i % 100u);
        for (int j = 0; j < k && at < n; j++)
            p[at++] = (uint8_t)rec[j];
    }
}

typedef struct result {
    double seal_ns, open_ns;
    size_t wire;
} result;

static void die(const char *what, es_status s)
{
    fprintf(stderr, "es-bench-envelope: %s: %s (%s)\n", what, es_status_text(s), es_last_error());
    exit(1);
}

/* Times seal and open of one payload, each until MIN_SECONDS have passed. */
static result measure(es_envelope *env, const uint8_t *p, size_t n)
{
    result r = {0};
    es_sealed s = ES_SEALED_INIT;
    es_opened o = ES_OPENED_INIT;
    es_status st;
    long iters = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 256; i++)
            if ((st = es_envelope_seal(env, &event, "ev-1", 0, p, n, &s)) != ES_OK)
                die("seal", st);
        iters += 256;
    } while ((t = now_s() - t0) < MIN_SECONDS);
    r.seal_ns = t * 1e9 / (double)iters;
    r.wire = s.len;

    iters = 0;
    t0 = now_s();
    do {
        for (int i = 0; i < 256; i++)
            if ((st = es_envelope_open(env, &event, "ev-1", s.headers, s.n_headers, s.data, s.len,
                                       &o)) != ES_OK)
                die("open", st);
        iters += 256;
    } while ((t = now_s() - t0) < MIN_SECONDS);
    r.open_ns = t * 1e9 / (double)iters;
    if (o.len != n || memcmp(o.data, p, n) != 0)
        die("round trip", ES_ERR_DECODE);
    es_sealed_free(&s);
    es_opened_free(&o);
    return r;
}

static void row(const char *stage, size_t n, result r)
{
    double mbs_seal = (double)n / r.seal_ns * 1e3, mbs_open = (double)n / r.open_ns * 1e3;
    printf("%-22s %7zu %8zu %11.0f %9.1f %11.0f %9.1f\n", stage, n, r.wire, r.seal_ns, mbs_seal,
           r.open_ns, mbs_open);
}

int main(void)
{
    static const size_t sizes[] = {256, 1024, 16384};
    static uint8_t payload[16384];
    fill(payload, sizeof payload);

    printf("%-22s %7s %8s %11s %9s %11s %9s\n", "stage", "bytes", "wire", "write ns/ev",
           "write MB/s", "read ns/ev", "read MB/s");

    es_envelope_options co = {.compress = true, .compress_min = 1};
    es_envelope *env = NULL;
    es_status st = es_envelope_create(&co, &env);
    if (st != ES_OK)
        die("envelope", st);
    for (size_t i = 0; i < 3; i++)
        row("zstd-3", sizes[i], measure(env, payload, sizes[i]));
    es_envelope_destroy(env);

    static one_record record;
    es_keyring_backend backend = {
        .ctx = &record, .get = rec_get, .create = rec_create, .replace = rec_put};
    uint8_t master[ES_MASTER_KEY_BYTES] = {7};
    es_keyring_options ko = {.master_key = master};
    es_keyring *kr = NULL;
    if ((st = es_keyring_create(&backend, &ko, &kr)) != ES_OK)
        die("keyring", st);
    es_envelope_options eo = {.encrypt = true, .keyring = kr};
    if ((st = es_envelope_create(&eo, &env)) != ES_OK)
        die("envelope", st);
    for (size_t i = 0; i < 3; i++)
        row("xchacha20-poly1305", sizes[i], measure(env, payload, sizes[i]));
    es_envelope_destroy(env);

    eo.compress = true;
    if ((st = es_envelope_create(&eo, &env)) != ES_OK)
        die("envelope", st);
    for (size_t i = 0; i < 3; i++)
        row("zstd-3 + xchacha20", sizes[i], measure(env, payload, sizes[i]));
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
    return 0;
}
