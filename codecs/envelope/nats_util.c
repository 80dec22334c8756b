/* Small NATS helpers of the envelope: KV status mapping, bucket names,
 * binding to (or creating) a KV bucket. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <es/subject.h>

#include "envelope_internal.h"
#include "jsapi.h"

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
    /* Bind first: creating with a config that differs from an existing
     * bucket's (replicas, say) would be refused by the server. */
    ns = js_KeyValue(kv, *js, spec->bucket);
    if (ns == NATS_NOT_FOUND && create) {
        kvConfig cfg;
        kvConfig_Init(&cfg);
        cfg.Bucket = spec->bucket;
        cfg.Description = spec->description;
        cfg.History = 1;
        cfg.MaxValueSize = spec->max_value_size;
        cfg.StorageType = js_FileStorage;
        cfg.Replicas = spec->replicas;
        ns = js_CreateKeyValue(kv, *js, &cfg);
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
