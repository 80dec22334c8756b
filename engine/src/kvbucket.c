/* KV buckets of a store: see kvbucket.h. */
#include "kvbucket.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/kvkey.h>
#include <es/subject.h>

#include "base/internal.h"
#include "jsapi.h"
#include "store_impl.h"
#include "base/timefmt.h"

#define CREATE_ATTEMPTS 3

struct es_kvb {
    es_store *st;
    jsCtx *js;
    kvStore *kv;
    char bucket[ES_BUCKET_NAME_MAX];
    char stream[ES_BUCKET_NAME_MAX + 3]; /* KV_<bucket> */
};

const char *es_kvb_bucket(const es_kvb *kv)
{
    return kv->bucket;
}
kvStore *es_kvb_store(es_kvb *kv)
{
    return kv->kv;
}
int64_t es_kvb_timeout_ms(const es_kvb *kv)
{
    return kv->st->opts.timeout_ms;
}

es_status es_kv_error(natsStatus ns, const char *what)
{
    if (ns == NATS_NOT_FOUND)
        return es_error(ES_ERR_NOT_FOUND, "%s: not found", what);
    if (ns == NATS_ERR || ns == NATS_INVALID_ARG) {
        /* A JetStream refusal: nats.c keeps the server's description. */
        natsStatus last = NATS_OK;
        const char *detail = nats_GetLastError(&last);
        return es_error(ns == NATS_ERR ? ES_ERR_SERVER : ES_ERR_INVALID, "%s: %s", what,
                        detail && detail[0] ? detail : natsStatus_GetText(ns));
    }
    return es_nats_status(ns, what);
}

es_status es_bucket_name(const char *store, const char *suffix, char out[ES_BUCKET_NAME_MAX])
{
    if (!es_valid_store_name(store))
        return es_error(ES_ERR_INVALID, "store name '%.40s' is not [A-Za-z0-9_-]{1,32}",
                        store ? store : "(null)");
    snprintf(out, ES_BUCKET_NAME_MAX, "ES_%s_%s", store, suffix);
    return ES_OK;
}

static natsStatus create_bucket(kvStore **kv, jsCtx *js, const es_kv_spec *spec)
{
    kvConfig c;
    kvConfig_Init(&c);
    c.Bucket = spec->bucket;
    c.Description = spec->description;
    c.History = (uint8_t)(spec->history > 0 ? spec->history : 1);
    c.MaxValueSize = spec->max_value_size > 0 ? spec->max_value_size : -1;
    c.StorageType = spec->memory_storage ? js_MemoryStorage : js_FileStorage;
    c.Replicas = spec->replicas > 0 ? spec->replicas : 1;
    return js_CreateKeyValue(kv, js, &c);
}

es_status es_kv_open(natsConnection *nc, const es_kv_spec *spec, bool create, jsCtx **js,
                     kvStore **kv)
{
    *js = NULL;
    *kv = NULL;
    if (nc == NULL)
        return es_error(ES_ERR_INVALID, "no NATS connection to reach bucket %s", spec->bucket);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = spec->timeout_ms;
    natsStatus ns = natsConnection_JetStream(js, nc, &jo);
    if (ns != NATS_OK)
        return es_kv_error(ns, "JetStream context");
    for (int i = 0; i < CREATE_ATTEMPTS; i++) {
        ns = js_KeyValue(kv, *js, spec->bucket);
        if (ns != NATS_NOT_FOUND || !create)
            break;
        ns = create_bucket(kv, *js, spec);
        if (ns == NATS_OK)
            break;
    }
    if (ns != NATS_OK) {
        char what[128];
        snprintf(what, sizeof what, "KV bucket %s", spec->bucket);
        es_status s = es_kv_error(ns, what);
        jsCtx_Destroy(*js);
        *js = NULL;
        *kv = NULL;
        return s;
    }
    return ES_OK;
}

es_status es_kvb_open(es_store *st, const char *suffix, const es_kvb_config *cfg, es_kvb **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "out is NULL");
    *out = NULL;
    if (st == NULL || suffix == NULL || cfg == NULL || cfg->history < 1 || cfg->history > 64)
        return es_error(ES_ERR_INVALID, "KV bucket: store, suffix and a history of 1..64 needed");
    es_kvb *kv = calloc(1, sizeof *kv);
    if (kv == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    kv->st = st;
    es_status s = es_bucket_name(st->name, suffix, kv->bucket);
    snprintf(kv->stream, sizeof kv->stream, "KV_%s", kv->bucket);
    es_kv_spec spec = {.bucket = kv->bucket,
                       .timeout_ms = st->opts.timeout_ms,
                       .replicas = st->config.replicas,
                       .history = cfg->history,
                       .memory_storage = st->config.memory_storage,
                       .max_value_size = cfg->max_value_size};
    if (s == ES_OK)
        s = es_kv_open(st->nc, &spec, true, &kv->js, &kv->kv);
    if (s != ES_OK) {
        es_kvb_close(kv);
        return s;
    }
    *out = kv;
    return ES_OK;
}

void es_kvb_close(es_kvb *kv)
{
    if (kv == NULL)
        return;
    kvStore_Destroy(kv->kv);
    jsCtx_Destroy(kv->js);
    free(kv);
}

void es_kvb_entry_clear(es_kvb_entry *e)
{
    natsMsg_Destroy(e->msg);
    memset(e, 0, sizeof *e);
}

static es_status check_key(const es_kvb *kv, const char *key)
{
    if (!es_kv_key_valid(key))
        return es_error(ES_ERR_INVALID, "'%.80s' is not a valid key for KV bucket %s",
                        key ? key : "(null)", kv->bucket);
    return ES_OK;
}

static const char *header(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : NULL;
}

static bool is_marker(natsMsg *m)
{
    const char *op = header(m, "KV-Operation");
    return op != NULL && (strcmp(op, "DEL") == 0 || strcmp(op, "PURGE") == 0);
}

es_status es_kvb_last(es_kvb *kv, const char *key, es_kvb_entry *e)
{
    memset(e, 0, sizeof *e);
    es_status s = check_key(kv, key);
    if (s != ES_OK)
        return s;
    char subject[ES_KV_KEY_MAX + 160];
    snprintf(subject, sizeof subject, "$JS.API.DIRECT.GET.%s.$KV.%s.%s", kv->stream, kv->bucket,
             key);
    natsMsg *m = NULL;
    s = es_nats_status(
        natsConnection_Request(&m, kv->st->nc, subject, NULL, 0, kv->st->opts.timeout_ms),
        kv->bucket);
    if (s != ES_OK)
        return s;
    const char *status = header(m, "Status");
    if (status != NULL) {
        bool missing = strcmp(status, "404") == 0;
        const char *desc = header(m, "Description");
        s = missing ? es_error(ES_ERR_NOT_FOUND, "%s: no key '%s'", kv->bucket, key)
                    : es_error(ES_ERR_SERVER, "%s: direct get answered %s %s", kv->bucket, status,
                               desc ? desc : "");
        natsMsg_Destroy(m);
        return s;
    }
    const char *seq = header(m, "Nats-Sequence"), *ts = header(m, "Nats-Time-Stamp");
    e->msg = m;
    e->data = natsMsg_GetData(m);
    e->len = (size_t)natsMsg_GetDataLength(m);
    e->revision = seq ? strtoull(seq, NULL, 10) : 0;
    e->deleted = is_marker(m);
    if (ts == NULL || es_time_parse(ts, &e->stored_ns) != ES_OK)
        e->stored_ns = 0;
    if (e->revision == 0) {
        es_kvb_entry_clear(e);
        return es_error(ES_ERR_PROTOCOL, "%s: direct get answer without a sequence", kv->bucket);
    }
    return ES_OK;
}

es_status es_kvb_get(es_kvb *kv, const char *key, es_kvb_entry *e)
{
    es_status s = es_kvb_last(kv, key, e);
    if (s == ES_OK && e->deleted) {
        es_kvb_entry_clear(e);
        return es_error(ES_ERR_NOT_FOUND, "%s: key '%s' was deleted", kv->bucket, key);
    }
    return s;
}

/* One write to $KV.<bucket>.<key>, expecting the key's last revision. */
static es_status publish(es_kvb *kv, const char *key, const void *value, size_t len,
                         const char *operation, uint64_t expect, uint64_t *rev)
{
    char subject[ES_KV_KEY_MAX + 80];
    snprintf(subject, sizeof subject, "$KV.%s.%s", kv->bucket, key);
    natsMsg *msg = NULL, *reply = NULL;
    es_status s = es_nats_status(natsMsg_Create(&msg, subject, NULL, value, (int)len), "KV write");
    if (s == ES_OK && operation != NULL)
        s = es_nats_status(natsMsgHeader_Set(msg, "KV-Operation", operation), "KV write");
    if (s == ES_OK && expect != ES_KVB_ANY) {
        char v[24];
        snprintf(v, sizeof v, "%" PRIu64, expect);
        s = es_nats_status(natsMsgHeader_Set(msg, "Nats-Expected-Last-Subject-Sequence", v),
                           "KV write");
    }
    if (s == ES_OK)
        s = es_nats_status(
            natsConnection_RequestMsg(&reply, kv->st->nc, msg, kv->st->opts.timeout_ms),
            kv->bucket);
    natsMsg_Destroy(msg);
    if (s != ES_OK)
        return s;
    json_error_t jerr;
    json_t *ack =
        json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &jerr);
    natsMsg_Destroy(reply);
    if (!json_is_object(ack))
        s = es_error(ES_ERR_PROTOCOL, "%s: the write's acknowledgement is not JSON", kv->bucket);
    else
        s = es_js_check_error(ack, kv->bucket);
    if (s == ES_OK && rev != NULL)
        *rev = (uint64_t)json_integer_value(json_object_get(ack, "seq"));
    json_decref(ack);
    return s;
}

/* "Absent" includes a key whose last revision is a delete marker: expect
 * that marker's revision instead of 0. */
static es_status write_expecting(es_kvb *kv, const char *key, const void *value, size_t len,
                                 const char *operation, uint64_t expect, uint64_t *rev)
{
    es_status s = check_key(kv, key);
    if (s != ES_OK)
        return s;
    s = publish(kv, key, value, len, operation, expect, rev);
    if (s != ES_ERR_CONFLICT || expect != 0)
        return s;
    es_kvb_entry e;
    s = es_kvb_last(kv, key, &e);
    bool deleted = s == ES_OK && e.deleted;
    uint64_t marker = e.revision;
    es_kvb_entry_clear(&e);
    if (!deleted)
        return es_error_code(ES_ERR_CONFLICT, 10071, "%s: key '%s' exists already", kv->bucket,
                             key);
    return publish(kv, key, value, len, operation, marker, rev);
}

es_status es_kvb_put(es_kvb *kv, const char *key, const void *value, size_t len, uint64_t expect,
                     uint64_t *rev)
{
    if (kv == NULL || (value == NULL && len > 0) || len > INT32_MAX)
        return es_error(ES_ERR_INVALID, "es_kvb_put: bucket and value are required");
    return write_expecting(kv, key, value, len, NULL, expect, rev);
}

es_status es_kvb_delete(es_kvb *kv, const char *key, uint64_t expect)
{
    if (kv == NULL || expect == 0)
        return es_error(ES_ERR_INVALID, "es_kvb_delete: a bucket and an existing revision (or "
                                        "ES_KVB_ANY) are required");
    if (expect == ES_KVB_ANY) { /* deleting an absent key is worth telling the caller */
        es_kvb_entry e;
        es_status s = es_kvb_get(kv, key, &e);
        es_kvb_entry_clear(&e);
        if (s != ES_OK)
            return s;
    }
    return write_expecting(kv, key, NULL, 0, "DEL", expect, NULL);
}
