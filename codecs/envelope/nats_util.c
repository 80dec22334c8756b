/* Small NATS helpers of the envelope: status mapping, bucket names, binding
 * to (or creating) a KV bucket. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "envelope_internal.h"

es_status es_nats_error(natsStatus ns, const char *what)
{
    es_status s;
    switch (ns) {
    case NATS_NOT_FOUND: s = ES_ERR_NOT_FOUND; break;
    case NATS_TIMEOUT: s = ES_ERR_TIMEOUT; break;
    case NATS_NO_MEMORY: s = ES_ERR_NOMEM; break;
    case NATS_INVALID_ARG: s = ES_ERR_INVALID; break;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION: s = ES_ERR_CONNECTION; break;
    case NATS_NO_SERVER_SUPPORT: s = ES_ERR_UNSUPPORTED; break;
    default: s = ES_ERR_SERVER; break;
    }
    natsStatus last = NATS_OK;
    const char *detail = nats_GetLastError(&last);
    if (detail == NULL || detail[0] == '\0')
        detail = natsStatus_GetText(ns);
    return es_error(s, "%s: %s", what, detail);
}

bool es_store_name_valid(const char *store)
{
    if (store == NULL)
        return false;
    size_t n = 0;
    for (; store[n] != '\0'; n++) {
        char c = store[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok || n >= 32)
            return false;
    }
    return n > 0;
}

es_status es_bucket_name(const char *store, const char *suffix, char out[ES_BUCKET_NAME_MAX])
{
    if (!es_store_name_valid(store))
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
        return es_nats_error(ns, "JetStream context");
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
        es_status s = es_nats_error(ns, what);
        jsCtx_Destroy(*js);
        *js = NULL;
        *kv = NULL;
        return s;
    }
    return ES_OK;
}

int64_t es_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
