/* The envelope's keys and dictionaries in a store's KV buckets: see
 * envelope_kv.h. */
#include "envelope_kv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/dict.h>

#include "base/internal.h"
#include "kvbucket.h"

#define KEYS_SUFFIX  "keys"
#define DICTS_SUFFIX "dicts"
#define DICT_MAX     ((int32_t)512 << 10)

typedef struct kv_handle {
    jsCtx *js;
    kvStore *kv;
    char bucket[ES_BUCKET_NAME_MAX];
} kv_handle;

static void kv_handle_close(kv_handle *h)
{
    kvStore_Destroy(h->kv);
    jsCtx_Destroy(h->js);
    h->kv = NULL;
    h->js = NULL;
}

/* ---- keyring backend ----------------------------------------------------- */

static es_status keys_get(void *ctx, const char *name, uint8_t *rec, size_t cap, size_t *len)
{
    kv_handle *h = ctx;
    kvEntry *e = NULL;
    natsStatus ns = kvStore_Get(&e, h->kv, name);
    if (ns != NATS_OK)
        return es_kv_error(ns, "reading a data key");
    size_t n = (size_t)kvEntry_ValueLen(e);
    memcpy(rec, kvEntry_Value(e), n < cap ? n : cap);
    *len = n;
    kvEntry_Destroy(e);
    return ES_OK;
}

static es_status keys_create(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    kv_handle *h = ctx;
    natsStatus ns = kvStore_Create(NULL, h->kv, name, rec, (int)len);
    if (ns == NATS_OK)
        return ES_OK;
    /* The server refuses a key that exists ("wrong last sequence"); with
     * nats.c 3.4 that is NATS_ERR, the same as other refusals, so ask. */
    kvEntry *e = NULL;
    if (kvStore_Get(&e, h->kv, name) == NATS_OK) {
        kvEntry_Destroy(e);
        return es_error(ES_ERR_EXISTS, "data key %s: another writer created it first", name);
    }
    return es_kv_error(ns, "creating a data key");
}

/* Published with `Nats-Rollup: sub`, which is how KV purge works: the server
 * removes every earlier revision of the key in the same step that stores
 * this one. */
static es_status keys_replace(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    kv_handle *h = ctx;
    char subject[sizeof "$KV.." + ES_BUCKET_NAME_MAX + ES_KEYRING_KV_KEY_MAX];
    snprintf(subject, sizeof subject, "$KV.%s.%s", h->bucket, name);
    natsMsg *msg = NULL;
    natsStatus ns = natsMsg_Create(&msg, subject, NULL, (const char *)rec, (int)len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Nats-Rollup", "sub");
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    if (ns == NATS_OK)
        ns = js_PublishMsg(&ack, h->js, msg, NULL, &jerr);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return ns == NATS_OK ? ES_OK : es_kv_error(ns, "writing a shred mark");
}

static void keys_destroy(void *ctx)
{
    kv_handle *h = ctx;
    kv_handle_close(h);
    free(h);
}

es_status es_keyring_open_kv(const es_kv_place *at, const es_keyring_options *opt,
                             es_keyring **out)
{
    kv_handle *h = calloc(1, sizeof *h);
    if (h == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory opening a keyring");
    es_status s = es_bucket_name(at->store, KEYS_SUFFIX, h->bucket);
    if (s == ES_OK) {
        es_kv_spec spec = {.bucket = h->bucket,
                           .timeout_ms = at->timeout_ms > 0 ? at->timeout_ms : 5000,
                           .replicas = at->replicas > 0 ? at->replicas : 1,
                           .max_value_size = 256,
                           .description = "es: wrapped per-entity data keys"};
        s = es_kv_open(at->nc, &spec, true, &h->js, &h->kv);
    }
    if (s != ES_OK) {
        free(h);
        return s;
    }
    es_keyring_backend b = {.ctx = h,
                            .get = keys_get,
                            .create = keys_create,
                            .replace = keys_replace,
                            .destroy = keys_destroy};
    return es_keyring_create(&b, opt, out); /* owns h from here, even on failure */
}

/* ---- dictionaries -------------------------------------------------------- */

typedef struct dict_kv {
    natsConnection *nc;
    char store[ES_STORE_NAME_MAX + 1];
    int64_t timeout_ms;
    kv_handle h; /* bound on first use */
} dict_kv;

static es_status dict_spec(const char *store, int64_t timeout_ms, int replicas, char *bucket,
                           es_kv_spec *spec)
{
    es_status s = es_bucket_name(store, DICTS_SUFFIX, bucket);
    *spec = (es_kv_spec){.bucket = bucket,
                         .timeout_ms = timeout_ms > 0 ? timeout_ms : 5000,
                         .replicas = replicas > 0 ? replicas : 1,
                         .max_value_size = DICT_MAX,
                         .description = "es: zstd dictionaries by id"};
    return s;
}

static void dict_key(uint32_t id, char out[16])
{
    snprintf(out, 16, "%u", (unsigned)id);
}

/* The envelope's dictionary cache calls this under its lock: never twice at once. */
static es_status dict_get(void *ctx, uint32_t id, es_buf *out)
{
    dict_kv *d = ctx;
    if (d->h.kv == NULL) {
        es_kv_spec spec;
        es_status s = dict_spec(d->store, d->timeout_ms, 1, d->h.bucket, &spec);
        if (s == ES_OK)
            s = es_kv_open(d->nc, &spec, false, &d->h.js, &d->h.kv);
        if (s != ES_OK)
            return s == ES_ERR_NOT_FOUND
                       ? es_error(s, "zstd dictionary %u: the store has no dictionaries",
                                  (unsigned)id)
                       : s;
    }
    char key[16];
    dict_key(id, key);
    kvEntry *e = NULL;
    natsStatus ns = kvStore_Get(&e, d->h.kv, key);
    if (ns == NATS_NOT_FOUND)
        return es_error(ES_ERR_NOT_FOUND, "zstd dictionary %u is not in the store", (unsigned)id);
    if (ns != NATS_OK)
        return es_kv_error(ns, "reading a zstd dictionary");
    es_status s = es_buf_append(out, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
    kvEntry_Destroy(e);
    return s;
}

es_status es_dict_source_kv_create(const es_kv_place *at, es_dict_source *out)
{
    memset(out, 0, sizeof *out);
    if (!es_valid_store_name(at->store))
        return es_error(ES_ERR_INVALID, "invalid store name");
    dict_kv *d = calloc(1, sizeof *d);
    if (d == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    d->nc = at->nc;
    snprintf(d->store, sizeof d->store, "%s", at->store);
    d->timeout_ms = at->timeout_ms;
    *out = (es_dict_source){.ctx = d, .get = dict_get};
    return ES_OK;
}

void es_dict_source_kv_destroy(es_dict_source *src)
{
    if (src == NULL || src->ctx == NULL)
        return;
    dict_kv *d = src->ctx;
    kv_handle_close(&d->h);
    free(d);
    src->ctx = NULL;
}

es_status es_dict_put(natsConnection *nc, const char *store, const uint8_t *dict, size_t len,
                      uint32_t *dict_id)
{
    uint32_t id = 0;
    es_status s = es_dict_id(dict, len, &id);
    char bucket[ES_BUCKET_NAME_MAX];
    es_kv_spec spec;
    if (s == ES_OK)
        s = dict_spec(store, 0, 1, bucket, &spec);
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    if (s == ES_OK)
        s = es_kv_open(nc, &spec, true, &js, &kv);
    if (s != ES_OK)
        return s;
    char key[16];
    dict_key(id, key);
    natsStatus ns = kvStore_Create(NULL, kv, key, dict, (int)len);
    if (ns != NATS_OK) {
        /* Already there: fine if it is the same dictionary. */
        kvEntry *e = NULL;
        ns = kvStore_Get(&e, kv, key);
        if (ns != NATS_OK)
            s = es_kv_error(ns, "storing a dictionary");
        else if ((size_t)kvEntry_ValueLen(e) != len || memcmp(kvEntry_Value(e), dict, len) != 0)
            s = es_error(ES_ERR_EXISTS, "another dictionary is stored under id %u", (unsigned)id);
        kvEntry_Destroy(e);
    }
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    if (s == ES_OK && dict_id != NULL)
        *dict_id = id;
    return s;
}

es_status es_envelope_kv_delete(natsConnection *nc, const char *store)
{
    static const char *const suffixes[] = {KEYS_SUFFIX, DICTS_SUFFIX};
    if (nc == NULL)
        return es_error(ES_ERR_INVALID, "deleting envelope buckets: NULL connection");
    char bucket[ES_BUCKET_NAME_MAX];
    es_status s = es_bucket_name(store, KEYS_SUFFIX, bucket);
    if (s != ES_OK)
        return s;
    jsCtx *js = NULL;
    natsStatus ns = natsConnection_JetStream(&js, nc, NULL);
    if (ns != NATS_OK)
        return es_kv_error(ns, "JetStream context");
    for (size_t i = 0; i < ES_ARRAY_LEN(suffixes) && s == ES_OK; i++) {
        es_bucket_name(store, suffixes[i], bucket);
        ns = js_DeleteKeyValue(js, bucket);
        if (ns != NATS_OK && ns != NATS_NOT_FOUND)
            s = es_kv_error(ns, "deleting an envelope bucket");
    }
    jsCtx_Destroy(js);
    return s;
}
