/* The envelope's keys and dictionaries in a store's KV buckets: see
 * envelope_kv.h. */
#include "envelope_kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/dict.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "store_impl.h"
#include "transport/kv.h"
#include "wire.h"

#define DICT_MAX ((int32_t)512 << 10)

/* ---- keyring backend ----------------------------------------------------- */

static es_status keys_get(void *ctx, const char *name, uint8_t *rec, size_t cap, size_t *len)
{
    esi_kv_entry e;
    es_status s = esi_kv_get(ctx, name, &e);
    if (s != ES_OK)
        return s;
    memcpy(rec, e.data, e.len < cap ? e.len : cap);
    *len = e.len;
    esi_kv_entry_clear(&e);
    return ES_OK;
}

static es_status keys_create(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    es_status s = esi_kv_put(ctx, name, rec, len, 0, NULL);
    if (s == ES_ERR_CONFLICT)
        return es_error(ES_ERR_EXISTS, "data key %s: another writer created it first", name);
    return s;
}

/* A purge that leaves the new record: every earlier revision goes in the
 * same step. */
static es_status keys_replace(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    return esi_kv_replace_all(ctx, name, rec, len);
}

typedef struct keys_scan_call {
    es_status (*each)(const char *name, const uint8_t *rec, size_t len, void *closure);
    void *closure;
} keys_scan_call;

static es_status keys_scanned(const char *key, const void *data, size_t len, void *closure)
{
    keys_scan_call *c = closure;
    return c->each(key, data, len, c->closure);
}

/* The records in the order they were written: the bucket keeps one
 * revision per name, so each is a current record. */
static es_status keys_scan(void *ctx, size_t max,
                           es_status (*each)(const char *name, const uint8_t *rec, size_t len,
                                             void *closure),
                           void *closure)
{
    keys_scan_call c = {each, closure};
    return esi_kv_scan(ctx, ">", max, keys_scanned, &c);
}

static void keys_destroy(void *ctx)
{
    esi_kv_close(ctx);
}

es_status esi_keyring_open_kv(const esi_kv_place *at, const es_keyring_options *opt,
                             es_keyring **out)
{
    if (out != NULL)
        *out = NULL;
    if (at == NULL || at->js == NULL || opt == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "esi_keyring_open_kv: NULL argument");
    char bucket[ESI_KV_BUCKET_MAX];
    es_status s = esi_bucket_name(at->store, ES_BUCKET_KEYS, bucket);
    esi_kv *kv = NULL;
    if (s == ES_OK) {
        esi_kv_spec spec = {.bucket = bucket,
                            .replicas = at->replicas,
                            .memory_storage = at->memory_storage,
                            .max_value_size = 256,
                            .description = "es: wrapped per-entity data keys"};
        s = esi_kv_open(at->js, &spec, true, &kv);
    }
    if (s != ES_OK)
        return s;
    es_keyring_backend b = {.ctx = kv,
                            .get = keys_get,
                            .create = keys_create,
                            .replace = keys_replace,
                            .destroy = keys_destroy,
                            .scan = keys_scan};
    s = es_keyring_create(&b, opt, out); /* owns kv from here, even on failure */
    /* Before anything is wrapped with it: a wrong master key is refused
     * here, not discovered by the readers of what it wrote. */
    if (s == ES_OK)
        s = es_keyring_check_master(*out);
    if (s != ES_OK) {
        es_keyring_destroy(*out);
        *out = NULL;
    }
    return s;
}

/* ---- dictionaries -------------------------------------------------------- */

typedef struct dict_kv {
    const esi_js *js;
    char store[ES_STORE_NAME_MAX + 1];
    esi_kv *kv; /* bound on first use */
} dict_kv;

static es_status dict_spec(const char *store, char bucket[ESI_KV_BUCKET_MAX], esi_kv_spec *spec)
{
    es_status s = esi_bucket_name(store, ES_BUCKET_DICTS, bucket);
    *spec = (esi_kv_spec){.bucket = bucket,
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
    if (d->kv == NULL) {
        char bucket[ESI_KV_BUCKET_MAX];
        esi_kv_spec spec;
        es_status s = dict_spec(d->store, bucket, &spec);
        if (s == ES_OK)
            s = esi_kv_open(d->js, &spec, false, &d->kv);
        if (s != ES_OK)
            return s == ES_ERR_NOT_FOUND
                       ? es_error(s, "zstd dictionary %u: the store has no dictionaries",
                                  (unsigned)id)
                       : s;
    }
    char key[16];
    dict_key(id, key);
    esi_kv_entry e;
    es_status s = esi_kv_get(d->kv, key, &e);
    if (s == ES_ERR_NOT_FOUND)
        return es_error(ES_ERR_NOT_FOUND, "zstd dictionary %u is not in the store", (unsigned)id);
    if (s == ES_OK)
        s = es_buf_append(out, e.data, e.len);
    esi_kv_entry_clear(&e);
    return s;
}

es_status esi_dict_source_kv_create(const esi_kv_place *at, es_dict_source *out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "esi_dict_source_kv_create: NULL argument");
    memset(out, 0, sizeof *out); /* destroyable whatever happens next */
    if (at == NULL || at->js == NULL)
        return es_error(ES_ERR_INVALID, "esi_dict_source_kv_create: NULL argument");
    if (!es_valid_store_name(at->store))
        return es_error(ES_ERR_INVALID, "invalid store name");
    dict_kv *d = esi_calloc(1, sizeof *d);
    if (d == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    d->js = at->js;
    snprintf(d->store, sizeof d->store, "%s", at->store);
    *out = (es_dict_source){.ctx = d, .get = dict_get};
    return ES_OK;
}

void esi_dict_source_kv_destroy(es_dict_source *src)
{
    if (src == NULL || src->ctx == NULL)
        return;
    dict_kv *d = src->ctx;
    esi_kv_close(d->kv);
    esi_free(d);
    src->ctx = NULL;
}

/* Dictionaries are immutable: the same bytes again are fine, others under
 * a used id are not. */
static es_status put_dict(esi_kv *kv, uint32_t id, const uint8_t *dict, size_t len)
{
    char key[16];
    dict_key(id, key);
    es_status s = esi_kv_put(kv, key, dict, len, 0, NULL);
    if (s != ES_ERR_CONFLICT)
        return s;
    esi_kv_entry e;
    s = esi_kv_get(kv, key, &e);
    if (s == ES_OK && (e.len != len || memcmp(e.data, dict, len) != 0))
        s = es_error(ES_ERR_EXISTS, "another dictionary is stored under id %u", (unsigned)id);
    esi_kv_entry_clear(&e);
    return s;
}

es_status es_dict_put(natsConnection *nc, const char *store, const uint8_t *dict, size_t len,
                      uint32_t *dict_id)
{
    uint32_t id = 0;
    if (nc == NULL)
        return es_error(ES_ERR_INVALID, "es_dict_put: NULL connection");
    es_status s = es_dict_id(dict, len, &id);
    char bucket[ESI_KV_BUCKET_MAX];
    esi_kv_spec spec;
    if (s == ES_OK)
        s = dict_spec(store, bucket, &spec);
    esi_js *js = NULL;
    esi_kv *kv = NULL;
    if (s == ES_OK)
        s = esi_store_js(nc, NULL, &js);
    es_store_config store_cfg;
    es_status found = s == ES_OK ? esi_store_read_config(js, store, &store_cfg) : s;
    if (found == ES_OK) { /* the bucket is the store's: its replicas and storage */
        spec.replicas = store_cfg.replicas;
        spec.memory_storage = store_cfg.memory_storage;
    } else if (found != ES_ERR_NOT_FOUND)
        s = found; /* with no store (yet), one file-stored replica */
    if (s == ES_OK)
        s = esi_kv_open(js, &spec, true, &kv);
    if (s == ES_OK)
        s = put_dict(kv, id, dict, len);
    esi_kv_close(kv);
    esi_js_destroy(js);
    if (s == ES_OK && dict_id != NULL)
        *dict_id = id;
    return s;
}
