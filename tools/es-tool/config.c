/* A store's configuration as JSON and as text (config.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "estool.h"

json_t *tool_config_json(const es_store_config *c)
{
    return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:b, s:s}", "storage",
                     c->memory_storage ? "memory" : "file", "replicas", c->replicas, "max_age_ns",
                     (json_int_t)c->max_age_ns, "max_bytes", (json_int_t)c->max_bytes, "max_events",
                     (json_int_t)c->max_events, "max_event_size", (json_int_t)c->max_event_size,
                     "duplicate_window_ns", (json_int_t)c->duplicate_window_ns, "tenancy",
                     c->tenancy, "compress_threshold", (json_int_t)c->compress_threshold, "encrypt",
                     c->encrypt, "storage_compression",
                     es_storage_compression_name(c->storage_compression));
}

static const char *const config_keys[] = {
    "storage",
    "replicas",
    "max_age_ns",
    "max_bytes",
    "max_events",
    "max_event_size",
    "duplicate_window_ns",
    "tenancy",
    "compress_threshold",
    "encrypt",
    "storage_compression",
};
#define CONFIG_KEYS (sizeof config_keys / sizeof config_keys[0])

/* The non-negative integer `key` of o, at most `max`. */
static es_status int_field(const es_value *o, const char *key, int64_t max, int64_t *out)
{
    const es_value *v = es_value_get(o, key);
    if (v == NULL || v->kind != ES_VALUE_INT || v->u.i < 0 || v->u.i > max)
        return es_error(ES_ERR_DECODE, "config: \"%s\" must be an integer from 0 to %" PRId64, key,
                        max);
    *out = v->u.i;
    return ES_OK;
}

static es_status bool_field(const es_value *o, const char *key, bool *out)
{
    const es_value *v = es_value_get(o, key);
    if (v == NULL || v->kind != ES_VALUE_BOOL)
        return es_error(ES_ERR_DECODE, "config: \"%s\" must be true or false", key);
    *out = v->u.b;
    return ES_OK;
}

es_status tool_config_from_value(const es_value *o, es_store_config *out)
{
    if (o == NULL || o->kind != ES_VALUE_MAP)
        return es_error(ES_ERR_DECODE, "\"config\" must be an object");
    for (size_t i = 0; i < o->u.map.count; i++) {
        bool known = false;
        for (size_t k = 0; k < CONFIG_KEYS && !known; k++)
            known = strcmp(o->u.map.entries[i].key, config_keys[k]) == 0;
        if (!known)
            return es_error(ES_ERR_DECODE, "config: unknown field \"%.40s\"",
                            o->u.map.entries[i].key);
    }
    es_store_config c;
    es_store_config_init(&c);
    const es_value *storage = es_value_get(o, "storage");
    if (!es_value_is_string(storage, "file") && !es_value_is_string(storage, "memory"))
        return es_error(ES_ERR_DECODE, "config: \"storage\" must be \"file\" or \"memory\"");
    c.memory_storage = es_value_is_string(storage, "memory");
    int64_t replicas = 0, size = 0, threshold = 0;
    es_status s = int_field(o, "replicas", 5, &replicas);
    if (s == ES_OK)
        s = int_field(o, "max_age_ns", INT64_MAX, &c.max_age_ns);
    if (s == ES_OK)
        s = int_field(o, "max_bytes", INT64_MAX, &c.max_bytes);
    if (s == ES_OK)
        s = int_field(o, "max_events", INT64_MAX, &c.max_events);
    if (s == ES_OK)
        s = int_field(o, "max_event_size", INT32_MAX, &size);
    if (s == ES_OK)
        s = int_field(o, "duplicate_window_ns", INT64_MAX, &c.duplicate_window_ns);
    if (s == ES_OK)
        s = int_field(o, "compress_threshold", INT64_MAX, &threshold);
    if (s == ES_OK)
        s = bool_field(o, "tenancy", &c.tenancy);
    if (s == ES_OK)
        s = bool_field(o, "encrypt", &c.encrypt);
    const es_value *sc = es_value_get(o, "storage_compression"); /* absent: none */
    if (s == ES_OK && sc != NULL && !es_value_is_string(sc, "none") &&
        !es_value_is_string(sc, "s2"))
        s = es_error(ES_ERR_DECODE, "config: \"storage_compression\" must be \"none\" or \"s2\"");
    if (es_value_is_string(sc, "s2"))
        c.storage_compression = ES_STORAGE_COMPRESSION_S2;
    if (s != ES_OK)
        return s;
    if (replicas < 1 || c.duplicate_window_ns < 1)
        return es_error(ES_ERR_DECODE, "config: \"replicas\" and \"duplicate_window_ns\" must be "
                                       "at least 1");
    c.replicas = (int)replicas;
    c.max_event_size = (int32_t)size;
    c.compress_threshold = (size_t)threshold;
    *out = c;
    return ES_OK;
}

const char *tool_config_label(tool_config_field f)
{
    static const char *const labels[CONFIG_FIELDS] = {
        "replicas",       "max age",          "max bytes",   "max events",
        "max event size", "duplicate window", "compression", "storage compression",
    };
    return f < CONFIG_FIELDS ? labels[f] : "";
}

const char *tool_config_key(tool_config_field f)
{
    static const char *const keys[CONFIG_FIELDS] = {
        "replicas",       "max_age_ns",          "max_bytes",          "max_events",
        "max_event_size", "duplicate_window_ns", "compress_threshold", "storage_compression",
    };
    return f < CONFIG_FIELDS ? keys[f] : "";
}

static void limit_text(int64_t v, bool size, char out[48])
{
    char t[32];
    if (v <= 0)
        snprintf(t, sizeof t, "unlimited");
    else if (size)
        tool_size_text((uint64_t)v, t);
    else
        snprintf(t, sizeof t, "%" PRId64, v);
    snprintf(out, 48, "%s", t);
}

void tool_config_text(const es_store_config *c, tool_config_field f, char out[48])
{
    char t[32];
    switch (f) {
    case CONFIG_REPLICAS: snprintf(out, 48, "%d", c->replicas); return;
    case CONFIG_MAX_AGE: tool_duration_text(c->max_age_ns, t); break;
    case CONFIG_MAX_BYTES: limit_text(c->max_bytes, true, out); return;
    case CONFIG_MAX_EVENTS: limit_text(c->max_events, false, out); return;
    case CONFIG_MAX_EVENT_SIZE: limit_text(c->max_event_size, true, out); return;
    case CONFIG_DUPLICATE_WINDOW: tool_duration_text(c->duplicate_window_ns, t); break;
    case CONFIG_COMPRESSION:
        if (c->compress_threshold == 0) {
            snprintf(out, 48, "off");
            return;
        }
        tool_size_text(c->compress_threshold, t);
        snprintf(out, 48, "zstd from %s", t);
        return;
    case CONFIG_STORAGE_COMPRESSION:
        snprintf(out, 48, "%s", es_storage_compression_name(c->storage_compression));
        return;
    default: snprintf(t, sizeof t, "?"); break;
    }
    snprintf(out, 48, "%s", t);
}

bool tool_config_same(const es_store_config *a, const es_store_config *b, tool_config_field f)
{
    switch (f) {
    case CONFIG_REPLICAS: return a->replicas == b->replicas;
    case CONFIG_MAX_AGE: return a->max_age_ns == b->max_age_ns;
    case CONFIG_MAX_BYTES: return a->max_bytes == b->max_bytes;
    case CONFIG_MAX_EVENTS: return a->max_events == b->max_events;
    case CONFIG_MAX_EVENT_SIZE: return a->max_event_size == b->max_event_size;
    case CONFIG_DUPLICATE_WINDOW: return a->duplicate_window_ns == b->duplicate_window_ns;
    case CONFIG_COMPRESSION: return a->compress_threshold == b->compress_threshold;
    case CONFIG_STORAGE_COMPRESSION: return a->storage_compression == b->storage_compression;
    default: return true;
    }
}
