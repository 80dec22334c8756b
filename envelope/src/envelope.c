/* Sealing and opening event payloads: the order of the stages, the Es-
 * headers and what binds them together. Formats: docs/envelope.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/envelope.h>

#include "envelope_internal.h"

const char *const es_envelope_header_names[ES_ENVELOPE_HEADER_COUNT] = {
    ES_HDR_COMPRESSION, ES_HDR_DICT, ES_HDR_KEY, ES_HDR_SCHEMA};

static const char zstd_name[] = "zstd";

struct es_envelope {
    es_envelope_options o; /* with defaults applied */
    esi_zpool *zpool;
    esi_dict_cache *dicts;
    const ZSTD_CDict *cdict; /* owned by `dicts` */
    char dict_text[11];      /* o.compress_dict in decimal */
};

es_status es_envelope_create(const es_envelope_options *opt, es_envelope **out)
{
    if (out == NULL || opt == NULL)
        return es_error(ES_ERR_INVALID, "es_envelope_create: NULL argument");
    *out = NULL;
    if (sodium_init() < 0)
        return es_error(ES_ERR_CRYPTO, "libsodium failed to initialise");
    es_envelope *env = esi_calloc(1, sizeof *env);
    if (env == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory creating an envelope");
    env->o = *opt;
    if (env->o.compress_min == 0)
        env->o.compress_min = ES_ENVELOPE_DEFAULT_COMPRESS_MIN;
    if (env->o.max_payload == 0)
        env->o.max_payload = ES_ENVELOPE_DEFAULT_MAX_PAYLOAD;
    es_status s = esi_zpool_create(opt->compress_level, &env->zpool);
    if (s == ES_OK)
        s = esi_dict_cache_create(opt->dicts, opt->compress_level, &env->dicts);
    if (s == ES_OK && opt->compress_dict != 0) {
        snprintf(env->dict_text, sizeof env->dict_text, "%u", (unsigned)opt->compress_dict);
        s = esi_dict_cache_cdict(env->dicts, opt->compress_dict, &env->cdict);
    }
    if (s != ES_OK) {
        es_envelope_destroy(env);
        return s;
    }
    *out = env;
    return ES_OK;
}

void es_envelope_destroy(es_envelope *env)
{
    if (env == NULL)
        return;
    esi_dict_cache_destroy(env->dicts);
    esi_zpool_destroy(env->zpool);
    esi_free(env);
}

/* A decimal in 1..UINT32_MAX without sign, spaces or leading zeros: exactly
 * one text per number, so the authenticated header text means one thing. */
static bool parse_u32(const char *text, uint32_t *out)
{
    size_t n = strlen(text);
    if (n == 0 || n > 10 || text[0] == '0')
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* ---- seal ---------------------------------------------------------------- */

void es_sealed_free(es_sealed *s)
{
    if (s == NULL)
        return;
    es_buf_free(&s->buf_[0]);
    es_buf_free(&s->buf_[1]);
    s->data = NULL;
    s->len = 0;
    s->n_headers = 0;
}

static void add_header(es_sealed *out, const char *name, const char *value)
{
    if (value != NULL)
        out->headers[out->n_headers++] = (es_header){name, value};
}

static es_status seal_encrypt(es_envelope *env, const es_envelope_event *ev,
                              const esi_event_ad_fields *fields_in, const uint8_t **data,
                              size_t *len, es_sealed *out)
{
    if (env->o.keyring == NULL)
        return es_error(ES_ERR_NO_KEY, "the store encrypts and no master key was given");
    uint8_t key[ES_KEY_BYTES], kid[ES_KID_BYTES];
    es_status s =
        esi_keyring_data_key(env->o.keyring, ev->entity, ev->entity_len, NULL, key, kid);
    if (s != ES_OK)
        return s;
    sodium_bin2hex(out->kid_, sizeof out->kid_, kid, ES_KID_BYTES);
    esi_event_ad_fields f = *fields_in;
    f.subject = ev->subject;
    f.key = out->kid_;
    uint8_t ad[ES_AD_BYTES];
    esi_event_ad(&f, ad);
    es_buf *b = esi_next_buf(out->buf_, *data);
    s = es_buf_reserve(b, *len + ES_AEAD_OVERHEAD);
    if (s == ES_OK) {
        esi_aead_seal(key, ad, sizeof ad, *data, *len, b->data);
        b->len = *len + ES_AEAD_OVERHEAD;
        *data = b->data;
        *len = b->len;
    }
    sodium_memzero(key, sizeof key);
    return s;
}

/* The target must name an event: entity, types and subject present. */
static es_status check_event(const es_envelope_event *ev)
{
    if (ev == NULL || ev->subject == NULL || ev->entity == NULL || ev->entity_len == 0 ||
        ev->entity_type == NULL || ev->entity_type_len == 0 || ev->event_type == NULL ||
        ev->event_type_len == 0)
        return es_error(ES_ERR_INVALID, "the envelope needs the event's subject, entity and types");
    return ES_OK;
}

es_status es_envelope_seal(es_envelope *env, const es_envelope_event *ev, const char *event_id,
                           uint32_t schema, const uint8_t *plain, size_t len, es_sealed *out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_envelope_seal: NULL out");
    out->data = NULL;
    out->len = 0;
    out->n_headers = 0;
    if (env == NULL || event_id == NULL || (plain == NULL && len > 0))
        return es_error(ES_ERR_INVALID, "es_envelope_seal: NULL argument");
    es_status s = check_event(ev);
    if (s != ES_OK)
        return s;
    if (len > env->o.max_payload)
        return es_error(ES_ERR_TOO_LARGE, "payload of %zu bytes is over the %zu allowed", len,
                        env->o.max_payload);

    const uint8_t *data = plain;
    size_t n = len;
    esi_event_ad_fields f = {.event_id = event_id};
    if (env->o.compress && len >= env->o.compress_min) {
        bool done = false;
        es_buf *b = esi_next_buf(out->buf_, data);
        s = esi_zstd_compress(env->zpool, env->cdict, data, n, b, &done);
        if (s != ES_OK)
            return s;
        if (done) {
            data = b->data;
            n = b->len;
            f.compression = zstd_name;
            f.dict = env->cdict ? env->dict_text : NULL;
        }
    }
    if (schema != 0) {
        snprintf(out->schema_, sizeof out->schema_, "%u", (unsigned)schema);
        f.schema = out->schema_;
    }
    if (env->o.encrypt && (s = seal_encrypt(env, ev, &f, &data, &n, out)) != ES_OK)
        return s;

    add_header(out, ES_HDR_COMPRESSION, f.compression);
    if (f.dict != NULL) {
        /* dict_text is the envelope's; the sealed result must not depend on
         * the envelope outliving it. */
        memcpy(out->dict_, env->dict_text, sizeof out->dict_);
        add_header(out, ES_HDR_DICT, out->dict_);
    }
    add_header(out, ES_HDR_KEY, env->o.encrypt ? out->kid_ : NULL);
    add_header(out, ES_HDR_SCHEMA, f.schema);
    out->data = data;
    out->len = n;
    return ES_OK;
}

/* ---- open ---------------------------------------------------------------- */

void es_opened_free(es_opened *o)
{
    if (o == NULL)
        return;
    es_buf_free(&o->buf_[0]);
    es_buf_free(&o->buf_[1]);
    o->data = NULL;
    o->len = 0;
}

/* The values of our headers, by position in es_envelope_header_names. */
enum { H_COMPRESSION, H_DICT, H_KEY, H_SCHEMA };

static es_status find_headers(const es_header *h, size_t n, const char *v[ES_ENVELOPE_HEADER_COUNT])
{
    for (size_t k = 0; k < ES_ENVELOPE_HEADER_COUNT; k++)
        v[k] = NULL;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name == NULL || h[i].value == NULL)
            continue;
        for (size_t k = 0; k < ES_ENVELOPE_HEADER_COUNT; k++) {
            if (strcmp(h[i].name, es_envelope_header_names[k]) != 0)
                continue;
            if (v[k] != NULL)
                return es_error(ES_ERR_DECODE, "header %s appears twice", h[i].name);
            v[k] = h[i].value;
        }
    }
    return ES_OK;
}

static es_status open_decrypt(es_envelope *env, const es_envelope_event *ev, const char *event_id,
                              const char *v[], const uint8_t **data, size_t *len, es_opened *out)
{
    if (env->o.keyring == NULL)
        return es_error(ES_ERR_NO_KEY, "the event is encrypted and no master key was given");
    uint8_t want[ES_KID_BYTES], kid[ES_KID_BYTES], key[ES_KEY_BYTES];
    if (!esi_unhex(v[H_KEY], strlen(v[H_KEY]), want, sizeof want))
        return es_error(ES_ERR_CRYPTO, "header %s is not %d hex digits", ES_HDR_KEY, ES_KID_HEX);
    if (*len < ES_AEAD_OVERHEAD)
        return es_error(ES_ERR_CRYPTO,
                        "encrypted payload of %zu bytes is shorter than nonce and tag", *len);
    es_status s =
        esi_keyring_data_key(env->o.keyring, ev->entity, ev->entity_len, want, key, kid);
    if (s != ES_OK)
        return s;
    esi_event_ad_fields f = {ev->subject, event_id, v[H_KEY], v[H_COMPRESSION], v[H_DICT], v[H_SCHEMA]};
    uint8_t ad[ES_AD_BYTES];
    esi_event_ad(&f, ad);
    es_buf *b = esi_next_buf(out->buf_, *data);
    size_t plain_len = *len - ES_AEAD_OVERHEAD;
    s = es_buf_reserve(b, plain_len + 1); /* +1: a valid pointer for empty payloads */
    if (s == ES_OK)
        s = esi_aead_open(key, ad, sizeof ad, *data, *len, b->data);
    sodium_memzero(key, sizeof key);
    if (s != ES_OK)
        return s;
    b->len = plain_len;
    *data = b->data;
    *len = plain_len;
    return ES_OK;
}

static es_status open_decompress(es_envelope *env, const char *v[], const uint8_t **data,
                                 size_t *len, es_opened *out)
{
    if (strcmp(v[H_COMPRESSION], zstd_name) != 0)
        return es_error(ES_ERR_DECODE, "unknown %s '%.32s'", ES_HDR_COMPRESSION, v[H_COMPRESSION]);
    const ZSTD_DDict *ddict = NULL;
    if (v[H_DICT] != NULL) {
        uint32_t id;
        if (!parse_u32(v[H_DICT], &id))
            return es_error(ES_ERR_DECODE, "header %s '%.32s' is not a dictionary id", ES_HDR_DICT,
                            v[H_DICT]);
        es_status s = esi_dict_cache_ddict(env->dicts, id, &ddict);
        if (s != ES_OK)
            return s;
    }
    es_buf *b = esi_next_buf(out->buf_, *data);
    es_status s = esi_zstd_decompress(env->zpool, ddict, *data, *len, env->o.max_payload, b);
    if (s != ES_OK)
        return s;
    *data = b->data;
    *len = b->len;
    return ES_OK;
}

es_status es_envelope_open(es_envelope *env, const es_envelope_event *ev, const char *event_id,
                           const es_header *headers, size_t n_headers, const uint8_t *payload,
                           size_t len, es_opened *out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_envelope_open: NULL out");
    out->data = NULL;
    out->len = 0;
    out->schema = out->stored_schema = 1;
    if (env == NULL || (headers == NULL && n_headers > 0) || (payload == NULL && len > 0))
        return es_error(ES_ERR_INVALID, "es_envelope_open: NULL argument");
    if (event_id == NULL)
        event_id = "";
    const char *v[ES_ENVELOPE_HEADER_COUNT];
    es_status s = check_event(ev);
    if (s == ES_OK)
        s = find_headers(headers, n_headers, v);
    if (s != ES_OK)
        return s;

    const uint8_t *data = payload;
    size_t n = len;
    /* Decrypt before looking at the other headers: they are authenticated,
     * so tampering with any of them reads as ES_ERR_CRYPTO, not as a
     * confusing decode error. */
    if (v[H_KEY] != NULL)
        s = open_decrypt(env, ev, event_id, v, &data, &n, out);
    else if (env->o.encrypt && !env->o.accept_plaintext)
        s = es_error(ES_ERR_CRYPTO, "unencrypted event in a store that requires encryption");
    if (s == ES_OK && v[H_COMPRESSION] != NULL)
        s = open_decompress(env, v, &data, &n, out);
    else if (s == ES_OK && v[H_DICT] != NULL)
        s = es_error(ES_ERR_DECODE, "header %s without %s", ES_HDR_DICT, ES_HDR_COMPRESSION);
    if (s == ES_OK && v[H_SCHEMA] != NULL && !parse_u32(v[H_SCHEMA], &out->stored_schema))
        s = es_error(ES_ERR_DECODE, "header %s '%.32s' is not a version 1..%u", ES_HDR_SCHEMA,
                     v[H_SCHEMA], UINT32_MAX);
    uint32_t version = out->stored_schema;
    if (s == ES_OK)
        s = esi_upcast_run(env->o.upcasters, ev->entity_type, ev->entity_type_len, ev->event_type,
                          ev->event_type_len, &version, &data, &n, out->buf_, env->o.max_payload);
    if (s != ES_OK)
        return s;
    out->data = data;
    out->len = n;
    out->schema = version;
    return ES_OK;
}
