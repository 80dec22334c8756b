/* The `envelope` target's world (envelope_setup.h). */
#include "envelope_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DICT_SAMPLES  400
#define DICT_MAX_SIZE 2048

const es_envelope_event fuzz_env_event = {
    .subject = "$ES.fz.account.42.deposited",
    .entity = "$ES.fz.account.42",
    .entity_len = sizeof "$ES.fz.account.42" - 1,
    .entity_type = "account",
    .entity_type_len = sizeof "account" - 1,
    .event_type = "deposited",
    .event_type_len = sizeof "deposited" - 1,
};

/* Not a secret: the fuzz world's master key, the same in every process. */
static const uint8_t master_key[ES_MASTER_KEY_BYTES] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                                        12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                                        23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* ---- input layout -------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p, *end;
} reader;

/* [len: u8][bytes], clipped to what is left. */
static const uint8_t *take_field(reader *r, size_t *len)
{
    size_t n = r->p < r->end ? *r->p++ : 0;
    if (n > (size_t)(r->end - r->p))
        n = (size_t)(r->end - r->p);
    const uint8_t *f = r->p;
    r->p += n;
    *len = n;
    return f;
}

void fuzz_env_input_parse(const uint8_t *data, size_t size, fuzz_env_input *in)
{
    memset(in, 0, sizeof *in);
    reader r = {data, data + size};
    in->flags = r.p < r.end ? *r.p++ : 0;
    for (size_t k = 0; k < ES_ENVELOPE_HEADER_COUNT; k++) {
        if (!(in->flags & (FUZZ_ENV_HEADER << k)))
            continue;
        size_t n;
        const uint8_t *v = take_field(&r, &n);
        in->headers[k] = malloc(n + 1);
        if (in->headers[k] == NULL)
            abort();
        memcpy(in->headers[k], v, n);
        in->headers[k][n] = '\0';
    }
    in->record = take_field(&r, &in->record_len);
    in->payload = r.p;
    in->payload_len = (size_t)(r.end - r.p);
}

void fuzz_env_input_free(fuzz_env_input *in)
{
    for (size_t k = 0; k < ES_ENVELOPE_HEADER_COUNT; k++)
        free(in->headers[k]);
}

static void put_field(es_buf *out, const void *p, size_t n)
{
    if (n > 255 || es_buf_append_byte(out, (uint8_t)n) != ES_OK ||
        es_buf_append(out, p, n) != ES_OK)
        abort();
}

void fuzz_env_input_write(es_buf *out, uint8_t flags, const es_header *headers, size_t n_headers,
                          const uint8_t *record, size_t record_len, const uint8_t *payload,
                          size_t len)
{
    const char *values[ES_ENVELOPE_HEADER_COUNT] = {0};
    for (size_t i = 0; i < n_headers; i++)
        for (size_t k = 0; k < ES_ENVELOPE_HEADER_COUNT; k++)
            if (strcmp(headers[i].name, es_envelope_header_names[k]) == 0) {
                values[k] = headers[i].value;
                flags |= (uint8_t)(FUZZ_ENV_HEADER << k);
            }
    if (es_buf_append_byte(out, flags) != ES_OK)
        abort();
    for (size_t k = 0; k < ES_ENVELOPE_HEADER_COUNT; k++)
        if (values[k] != NULL)
            put_field(out, values[k], strlen(values[k]));
    put_field(out, record, record_len);
    if (es_buf_append(out, payload, len) != ES_OK)
        abort();
}

/* ---- the keyring's backend: one record ----------------------------------- */

typedef struct one_record {
    uint8_t rec[ES_KEYRING_RECORD_MAX];
    size_t len; /* 0: none */
} one_record;

static es_status rec_get(void *ctx, const char *name, uint8_t *rec, size_t cap, size_t *len)
{
    (void)name;
    one_record *r = ctx;
    if (r->len == 0)
        return ES_ERR_NOT_FOUND;
    if (r->len > cap)
        return ES_ERR_LIMIT;
    memcpy(rec, r->rec, r->len);
    *len = r->len;
    return ES_OK;
}

static es_status rec_create(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    (void)name;
    one_record *r = ctx;
    if (r->len != 0)
        return ES_ERR_EXISTS;
    if (len == 0 || len > sizeof r->rec)
        return ES_ERR_INVALID;
    memcpy(r->rec, rec, len);
    r->len = len;
    return ES_OK;
}

static es_status rec_replace(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    one_record *r = ctx;
    r->len = 0;
    return rec_create(ctx, name, rec, len);
}

/* ---- the dictionary ------------------------------------------------------ */

static es_buf dict = ES_BUF_INIT;
static uint32_t dict_id;

static void free_dict(void)
{
    es_buf_free(&dict);
}

/* Trained once per process from samples that never change, so the seed
 * tool and the target agree on its bytes and id. */
static void train_dict(void)
{
    if (dict.len != 0)
        return;
    es_buf samples = ES_BUF_INIT;
    size_t sizes[DICT_SAMPLES];
    for (int i = 0; i < DICT_SAMPLES; i++) {
        char s[160];
        int n = snprintf(s, sizeof s,
                         "{\"account\":\"acc-%d\",\"amount\":%d,\"currency\":\"%s\","
                         "\"note\":\"deposit %d of the fuzz world\"}",
                         i % 37, i * 7919 % 10007, i % 3 ? "EUR" : "USD", i);
        sizes[i] = (size_t)n;
        if (es_buf_append(&samples, s, (size_t)n) != ES_OK)
            abort();
    }
    if (es_dict_train(samples.data, sizes, DICT_SAMPLES, DICT_MAX_SIZE, &dict, &dict_id) != ES_OK)
        abort();
    es_buf_free(&samples);
    atexit(free_dict);
}

static es_status dict_get(void *ctx, uint32_t id, es_buf *out)
{
    (void)ctx;
    if (id != dict_id)
        return ES_ERR_NOT_FOUND;
    return es_buf_append(out, dict.data, dict.len);
}

static const es_dict_source dict_source = {NULL, dict_get};

uint32_t fuzz_env_dict_id(void)
{
    return dict_id;
}

/* ---- upcasters ----------------------------------------------------------- */

/* v1 -> v2 appends a byte; v2 -> v3 doubles the payload, so that a chain
 * can be driven into the max_payload bound. */
static es_status append_bang(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    (void)ctx;
    es_status s = es_buf_append(out, in, len);
    return s != ES_OK ? s : es_buf_append_byte(out, '!');
}

static es_status twice(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    (void)ctx;
    es_status s = es_buf_append(out, in, len);
    return s != ES_OK ? s : es_buf_append(out, in, len);
}

/* ---- the world ----------------------------------------------------------- */

struct fuzz_env {
    es_envelope *env;
    es_keyring *kr;
    es_upcasters *up;
    one_record *rec; /* owned by the keyring once it exists */
};

static es_keyring *make_keyring(one_record *rec)
{
    es_keyring_backend b = {
        .ctx = rec, .get = rec_get, .create = rec_create, .replace = rec_replace, .destroy = free};
    /* One entity: a cache of one key (the default 1,024 slots of secure
     * memory, made and wiped for every input, took a fifth of the time). */
    es_keyring_options o = {.master_key = master_key, .cache_size = 1};
    es_keyring *kr = NULL;
    if (es_keyring_create(&b, &o, &kr) != ES_OK) /* frees rec on failure */
        abort();
    return kr;
}

static es_upcasters *make_upcasters(void)
{
    es_upcasters *up = NULL;
    if (es_upcasters_create(0, &up) != ES_OK ||
        es_upcasters_add(up, "account", "deposited", 1, append_bang, NULL) != ES_OK ||
        es_upcasters_add(up, "account", "deposited", 2, twice, NULL) != ES_OK)
        abort();
    return up;
}

fuzz_env *fuzz_env_create(uint8_t flags, const uint8_t *record, size_t record_len, bool compress,
                          bool use_dict)
{
    train_dict();
    fuzz_env *w = calloc(1, sizeof *w);
    one_record *rec = calloc(1, sizeof *rec);
    if (w == NULL || rec == NULL)
        abort();
    rec->len = record_len < sizeof rec->rec ? record_len : sizeof rec->rec;
    if (rec->len)
        memcpy(rec->rec, record, rec->len);
    w->rec = rec;
    if (flags & FUZZ_ENV_KEYRING) {
        w->kr = make_keyring(rec);
    } else {
        free(rec);
        w->rec = NULL;
    }
    w->up = make_upcasters();
    es_envelope_options o = {
        .compress = compress,
        .compress_dict = use_dict ? dict_id : 0,
        .dicts = &dict_source,
        .max_payload = flags & FUZZ_ENV_SMALL ? FUZZ_ENV_SMALL_MAX : FUZZ_ENV_MAX_PAYLOAD,
        .encrypt = (flags & FUZZ_ENV_ENCRYPT) != 0,
        .keyring = w->kr,
        .accept_plaintext = (flags & FUZZ_ENV_ACCEPT_PLAIN) != 0,
        .upcasters = w->up,
    };
    if (es_envelope_create(&o, &w->env) != ES_OK)
        abort();
    return w;
}

es_envelope *fuzz_env_envelope(fuzz_env *w)
{
    return w->env;
}

const uint8_t *fuzz_env_record(fuzz_env *w, size_t *len)
{
    *len = w->rec ? w->rec->len : 0;
    return w->rec ? w->rec->rec : NULL;
}

void fuzz_env_destroy(fuzz_env *w)
{
    if (w == NULL)
        return;
    es_envelope_destroy(w->env);
    es_keyring_destroy(w->kr); /* frees the record through the backend's destroy */
    es_upcasters_destroy(w->up);
    free(w);
}
