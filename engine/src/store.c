/* Store lifecycle: one JetStream stream per store, configured as the wire
 * format fixes it (docs/wire-format.md). */
#include "store_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/clock.h"
#include "envelope_kv.h"
#include "transport/js.h"
#include "transport/kv.h"
#include "transport/publisher.h"
#include "wire.h"

#define DEFAULT_DUPLICATE_WINDOW_NS (120LL * 1000000000LL)
/* Store settings live in the stream's metadata, so every client of the store
 * reads the same ones. */
#define TENANCY_KEY  "es_tenancy"
#define COMPRESS_KEY "es_compress_threshold"
#define DICT_KEY     "es_compress_dict"
#define ENCRYPT_KEY  "es_encrypt"

void es_store_config_init(es_store_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->replicas = 1;
    cfg->duplicate_window_ns = DEFAULT_DUPLICATE_WINDOW_NS;
}

void es_store_options_init(es_store_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->timeout_ms = 5000;
    opts->max_inflight = 256;
    opts->max_batches_inflight = 32;
}

static es_status check_config(const es_store_config *cfg)
{
    if (cfg->replicas < 1 || cfg->replicas > 5)
        return es_error(ES_ERR_INVALID, "replicas must be 1..5, not %d", cfg->replicas);
    if (cfg->max_age_ns < 0 || cfg->max_bytes < 0 || cfg->max_events < 0 || cfg->max_event_size < 0)
        return es_error(ES_ERR_INVALID, "store limits must not be negative");
    if (cfg->duplicate_window_ns <= 0)
        return es_error(ES_ERR_INVALID, "the duplicate window must be positive");
    if (cfg->max_age_ns > 0 && cfg->duplicate_window_ns > cfg->max_age_ns)
        return es_error(ES_ERR_INVALID, "the duplicate window cannot exceed max age");
    if (cfg->storage_compression != ES_STORAGE_COMPRESSION_NONE &&
        cfg->storage_compression != ES_STORAGE_COMPRESSION_S2)
        return es_error(ES_ERR_INVALID, "storage compression is none or s2");
    return ES_OK;
}

const char *es_storage_compression_name(es_storage_compression c)
{
    return c == ES_STORAGE_COMPRESSION_S2 ? "s2" : "none";
}

es_status es_storage_compression_parse(const char *name, es_storage_compression *out)
{
    if (name != NULL && strcmp(name, "none") == 0)
        *out = ES_STORAGE_COMPRESSION_NONE;
    else if (name != NULL && strcmp(name, "s2") == 0)
        *out = ES_STORAGE_COMPRESSION_S2;
    else
        return es_error(ES_ERR_INVALID, "storage compression is none or s2, not '%.32s'",
                        name ? name : "(null)");
    return ES_OK;
}

static es_status check_name(const char *name)
{
    if (!es_valid_store_name(name))
        return es_error(ES_ERR_INVALID, "invalid store name '%.64s': use [A-Za-z0-9_-]{1,32}",
                        name ? name : "(null)");
    return ES_OK;
}

static json_t *limit_or_unlimited(int64_t v)
{
    return json_integer(v > 0 ? v : -1);
}

static json_t *stream_config_json(const char *name, const es_store_config *cfg)
{
    char stream[ES_STREAM_NAME_MAX], subject[ES_STORE_SUBJECTS_MAX];
    esi_wire_stream_name(name, stream);
    esi_wire_store_subjects(name, subject);
    json_t *meta = json_object();
    char num[24];
    if (cfg->tenancy)
        json_object_set_new(meta, TENANCY_KEY, json_string("true"));
    if (cfg->encrypt)
        json_object_set_new(meta, ENCRYPT_KEY, json_string("true"));
    if (cfg->compress_threshold > 0) {
        snprintf(num, sizeof num, "%zu", cfg->compress_threshold);
        json_object_set_new(meta, COMPRESS_KEY, json_string(num));
    }
    if (cfg->compress_dict > 0) {
        snprintf(num, sizeof num, "%u", (unsigned)cfg->compress_dict);
        json_object_set_new(meta, DICT_KEY, json_string(num));
    }
    json_t *config = json_pack(
        "{s:s, s:[s], s:s, s:s, s:s, s:i, s:I, s:o, s:o, s:o, s:I, s:b, s:b, s:b, s:o}", "name",
        stream, "subjects", subject, "retention", "limits", "storage",
        cfg->memory_storage ? "memory" : "file", "discard", "old", "num_replicas", cfg->replicas,
        "max_age", (json_int_t)cfg->max_age_ns, "max_bytes", limit_or_unlimited(cfg->max_bytes),
        "max_msgs", limit_or_unlimited(cfg->max_events), "max_msg_size",
        json_integer(cfg->max_event_size > 0 ? cfg->max_event_size : -1), "duplicate_window",
        (json_int_t)cfg->duplicate_window_ns, "allow_direct", 1, "allow_atomic", 1, "deny_delete",
        1, "metadata", meta);
    /* Only when set, so that a plain store's configuration stays as before. */
    if (config != NULL && cfg->storage_compression == ES_STORAGE_COMPRESSION_S2)
        json_object_set_new(config, "compression", json_string("s2"));
    return config;
}

static int64_t positive_or_zero(json_t *v)
{
    json_int_t i = json_integer_value(v);
    return i > 0 ? i : 0;
}

static void config_from_json(json_t *c, es_store_config *cfg)
{
    es_store_config_init(cfg);
    cfg->replicas = (int)json_integer_value(json_object_get(c, "num_replicas"));
    if (cfg->replicas < 1)
        cfg->replicas = 1;
    cfg->max_age_ns = positive_or_zero(json_object_get(c, "max_age"));
    cfg->max_bytes = positive_or_zero(json_object_get(c, "max_bytes"));
    cfg->max_events = positive_or_zero(json_object_get(c, "max_msgs"));
    cfg->max_event_size = (int32_t)positive_or_zero(json_object_get(c, "max_msg_size"));
    cfg->duplicate_window_ns = positive_or_zero(json_object_get(c, "duplicate_window"));
    const char *storage = json_string_value(json_object_get(c, "storage"));
    cfg->memory_storage = storage && strcmp(storage, "memory") == 0;
    if (esi_json_string_is(json_object_get(c, "compression"), "s2"))
        cfg->storage_compression = ES_STORAGE_COMPRESSION_S2;
    json_t *meta = json_object_get(c, "metadata");
    cfg->tenancy = esi_json_string_is(json_object_get(meta, TENANCY_KEY), "true");
    cfg->encrypt = esi_json_string_is(json_object_get(meta, ENCRYPT_KEY), "true");
    cfg->compress_threshold =
        (size_t)strtoull(esi_json_string_or(json_object_get(meta, COMPRESS_KEY), "0"), NULL, 10);
    cfg->compress_dict =
        (uint32_t)strtoul(esi_json_string_or(json_object_get(meta, DICT_KEY), "0"), NULL, 10);
}

es_status esi_store_check_stream(json_t *c, const char *name)
{
    char subject[ES_STORE_SUBJECTS_MAX];
    esi_wire_store_subjects(name, subject);
    json_t *subjects = json_object_get(c, "subjects");
    if (json_array_size(subjects) != 1 ||
        !esi_json_string_is(json_array_get(subjects, 0), subject) ||
        !json_is_true(json_object_get(c, "allow_atomic")) ||
        !json_is_true(json_object_get(c, "allow_direct")))
        return es_error(ES_ERR_INVALID,
                        "stream ES_%s exists but is not an event store (subjects, allow_atomic "
                        "or allow_direct differ)",
                        name);
    return ES_OK;
}

/* The envelope of a store that compresses, encrypts or upcasts; stores that
 * do none of it have none, and their events travel untouched. */
static es_status open_envelope(es_store *st)
{
    const es_store_config *c = &st->config;
    if (c->compress_threshold == 0 && !c->encrypt && st->opts.upcasters == NULL)
        return ES_OK;
    esi_kv_place at = {.js = st->js,
                       .store = st->name,
                       .replicas = c->replicas,
                       .memory_storage = c->memory_storage};
    es_status s = ES_OK;
    if (c->encrypt && (st->opts.master_key_file || st->opts.master_key_env)) {
        es_keyring_options ko = {.master_key_file = st->opts.master_key_file,
                                 .master_key_env =
                                     st->opts.master_key_file ? NULL : st->opts.master_key_env};
        s = esi_keyring_open_kv(&at, &ko, &st->keyring);
    }
    if (s == ES_OK)
        s = esi_dict_source_kv_create(&at, &st->dicts);
    es_envelope_options eo = {.compress = c->compress_threshold > 0,
                              .compress_min = c->compress_threshold,
                              .compress_dict = c->compress_dict,
                              .dicts = &st->dicts,
                              .encrypt = c->encrypt,
                              .keyring = st->keyring,
                              .accept_plaintext = st->opts.accept_plaintext,
                              .upcasters = st->opts.upcasters};
    if (s == ES_OK)
        s = es_envelope_create(&eo, &st->env);
    return s;
}

static es_status check_options(const es_store_options *o)
{
    if (o->timeout_ms <= 0 || o->max_inflight <= 0 || o->max_batches_inflight <= 0)
        return es_error(ES_ERR_INVALID, "store options: timeout, max_inflight and "
                                        "max_batches_inflight must be positive");
    return ES_OK;
}

/* Takes `js` (freed on failure too). */
static es_status new_handle(natsConnection *nc, esi_js *js, const char *name, json_t *stream_info,
                            const es_store_options *opts, es_store **out)
{
    json_t *c = json_object_get(stream_info, "config");
    es_status s = esi_store_check_stream(c, name);
    es_store *st = s == ES_OK ? esi_calloc(1, sizeof *st) : NULL;
    if (s == ES_OK && st == NULL)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    if (s != ES_OK) {
        esi_js_destroy(js);
        return s;
    }
    st->nc = nc;
    st->js = js;
    snprintf(st->name, sizeof st->name, "%s", name);
    esi_wire_stream_name(name, st->stream);
    config_from_json(c, &st->config);
    if (opts)
        st->opts = *opts;
    else
        es_store_options_init(&st->opts);
    s = check_options(&st->opts);
    if (s == ES_OK)
        s = esi_publisher_create(st->js, st->opts.max_inflight, st->opts.max_batches_inflight,
                                 &st->pub);
    if (s == ES_OK)
        s = open_envelope(st);
    if (s != ES_OK) {
        es_store_destroy(st);
        return s;
    }
    *out = st;
    return ES_OK;
}

/* The end of create and open: a handle from the stream's info (`reply`,
 * released here) when `s` is ES_OK. Takes `js` either way. */
static es_status finish_open(natsConnection *nc, esi_js *js, const char *name, es_status s,
                             json_t *reply, const es_store_options *opts, es_store **out)
{
    if (s == ES_OK)
        s = new_handle(nc, js, name, reply, opts, out);
    else
        esi_js_destroy(js);
    json_decref(reply);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

es_status esi_store_js(natsConnection *nc, const es_store_options *opts, esi_js **out)
{
    esi_conn conn;
    esi_conn_nats(nc, &conn);
    esi_js_options jo = {.domain = opts ? opts->js_domain : NULL,
                         .api_prefix = opts ? opts->js_api_prefix : NULL,
                         .timeout_ms = opts ? opts->timeout_ms : 0};
    return esi_js_create(&conn, &jo, out);
}

/* The arguments every entry point checks, and a context for its requests. */
static es_status begin(natsConnection *nc, const char *name, const es_store_options *opts,
                       esi_js **js)
{
    *js = NULL;
    if (nc == NULL)
        return es_error(ES_ERR_INVALID, "connection is NULL");
    es_status s = check_name(name);
    if (s == ES_OK)
        s = esi_store_js(nc, opts, js);
    return s;
}

static es_status check_server(const esi_js *js)
{
    int level = 0;
    es_status s = esi_js_api_level(js, &level);
    if (s != ES_OK)
        return s;
    if (level < ESI_JS_API_LEVEL_ATOMIC)
        return es_error(ES_ERR_UNSUPPORTED,
                        "the server's JetStream API level is %d: atomic batches need "
                        "nats-server 2.12 or newer (level %d)",
                        level, ESI_JS_API_LEVEL_ATOMIC);
    return ES_OK;
}

/* A request about the store's stream: <prefix>.STREAM.<verb>.ES_<name>. */
static es_status stream_request(const esi_js *js, const char *verb, const char *name, json_t *body,
                                json_t **reply)
{
    char stream[ES_STREAM_NAME_MAX], subject[ESI_JS_PREFIX_MAX + ES_STREAM_NAME_MAX + 32];
    esi_wire_stream_name(name, stream);
    es_status s = esi_js_api_subject(js, subject, sizeof subject, "STREAM.%s.%s", verb, stream);
    return s == ES_OK ? esi_js_request(js, subject, body, 0, reply) : s;
}

es_status es_store_create(natsConnection *nc, const char *name, const es_store_config *cfg,
                          const es_store_options *opts, es_store **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "out is NULL");
    *out = NULL;
    es_store_config defaults;
    if (cfg == NULL) {
        es_store_config_init(&defaults);
        cfg = &defaults;
    }
    esi_js *js = NULL;
    es_status s = begin(nc, name, opts, &js);
    if (s == ES_OK)
        s = check_config(cfg);
    if (s == ES_OK)
        s = check_server(js);
    json_t *req = s == ES_OK ? stream_config_json(name, cfg) : NULL, *reply = NULL;
    if (s == ES_OK)
        s = stream_request(js, "CREATE", name, req, &reply);
    json_decref(req);
    if (s == ES_ERR_EXISTS)
        s = es_error_code(s, es_last_error_code(),
                          "store '%s' exists with a different configuration "
                          "(use es_store_open or es_store_update)",
                          name);
    return finish_open(nc, js, name, s, reply, opts, out);
}

static es_status stream_info(const esi_js *js, const char *name, json_t **reply)
{
    es_status s = stream_request(js, "INFO", name, NULL, reply);
    if (s == ES_ERR_NOT_FOUND)
        return es_error_code(s, es_last_error_code(), "store '%s' does not exist", name);
    return s;
}

/* Opens the store `name` through `js` (taken, freed on failure too). */
static es_status open_with(natsConnection *nc, esi_js *js, const char *name,
                           const es_store_options *opts, es_store **out)
{
    json_t *reply = NULL;
    es_status s = stream_info(js, name, &reply);
    return finish_open(nc, js, name, s, reply, opts, out);
}

es_status es_store_open(natsConnection *nc, const char *name, const es_store_options *opts,
                        es_store **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "out is NULL");
    *out = NULL;
    esi_js *js = NULL;
    es_status s = begin(nc, name, opts, &js);
    if (s != ES_OK) {
        esi_js_destroy(js);
        return s;
    }
    return open_with(nc, js, name, opts, out);
}

es_status esi_store_open_js(esi_js *js, const char *name, const es_store_options *opts,
                            es_store **out)
{
    *out = NULL;
    es_status s = check_name(name);
    if (s != ES_OK) {
        esi_js_destroy(js);
        return s;
    }
    return open_with(NULL, js, name, opts, out);
}

/* The stream's configuration as the server has it, with what `cfg` says
 * laid over it. An update replaces the whole configuration, and what an
 * operator set that es does not manage (deny_purge, a description,
 * placement, sources, metadata of their own) must survive it: the server
 * even refuses to turn deny_purge off again. The metadata keys es owns are
 * dropped first, so that a setting turned off (compression) goes away. */
static es_status config_for_update(const es_store *store, const es_store_config *cfg,
                                   json_t **out)
{
    json_t *info = NULL;
    es_status s = stream_info(store->js, store->name, &info);
    if (s != ES_OK)
        return s;
    json_t *current = json_incref(json_object_get(info, "config"));
    json_decref(info);
    json_t *ours = stream_config_json(store->name, cfg);
    if (!json_is_object(current) || ours == NULL) {
        json_decref(current);
        json_decref(ours);
        return es_error(ours ? ES_ERR_PROTOCOL : ES_ERR_NOMEM,
                        ours ? "stream info of '%s' has no configuration" : "out of memory",
                        store->name);
    }
    json_t *meta = json_object_get(current, "metadata");
    if (json_is_object(meta)) {
        static const char *const owned[] = {TENANCY_KEY, ENCRYPT_KEY, COMPRESS_KEY, DICT_KEY};
        for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
            json_object_del(meta, owned[i]);
        json_object_update(meta, json_object_get(ours, "metadata"));
        json_object_del(ours, "metadata");
    }
    int rc = json_object_update(current, ours);
    json_decref(ours);
    if (rc != 0) {
        json_decref(current);
        return es_error(ES_ERR_NOMEM, "out of memory");
    }
    *out = current;
    return ES_OK;
}

es_status es_store_update(es_store *store, const es_store_config *cfg)
{
    if (store == NULL || cfg == NULL)
        return es_error(ES_ERR_INVALID, "es_store_update: store and config are required");
    es_status s = esi_store_whole(store, "es_store_update");
    if (s == ES_OK)
        s = check_config(cfg);
    if (s != ES_OK)
        return s;
    if (cfg->tenancy != store->config.tenancy ||
        cfg->memory_storage != store->config.memory_storage)
        return es_error(ES_ERR_INVALID, "tenancy and storage type of store '%s' cannot change",
                        store->name);
    if (cfg->storage_compression != store->config.storage_compression)
        return es_error(ES_ERR_INVALID,
                        "storage compression of store '%s' is %s and is set at creation only "
                        "(the server would accept %s but keep writing uncompressed blocks): "
                        "create a store with it and copy the events over",
                        store->name, es_storage_compression_name(store->config.storage_compression),
                        es_storage_compression_name(cfg->storage_compression));
    json_t *req = NULL, *reply = NULL;
    s = config_for_update(store, cfg, &req);
    if (s != ES_OK)
        return s;
    s = stream_request(store->js, "UPDATE", store->name, req, &reply);
    json_decref(req);
    if (s != ES_OK)
        return s;
    int replicas_before = store->config.replicas;
    config_from_json(json_object_get(reply, "config"), &store->config);
    json_decref(reply);
    /* The buckets hold the store's state (cursors, checkpoints, keys): they
     * must survive what the stream survives. */
    if (store->config.replicas != replicas_before)
        s = esi_store_set_bucket_replicas(store->js, store->name, store->config.replicas);
    return s;
}

es_status esi_store_read_config(const esi_js *js, const char *name, es_store_config *cfg)
{
    json_t *reply = NULL;
    es_status s = stream_info(js, name, &reply);
    if (s == ES_OK)
        config_from_json(json_object_get(reply, "config"), cfg);
    json_decref(reply);
    return s;
}

es_status esi_store_set_bucket_replicas(const esi_js *js, const char *name, int replicas)
{
    for (int kind = 0; kind < ES_BUCKET_KINDS; kind++) {
        char bucket[ESI_KV_BUCKET_MAX];
        es_status s = esi_bucket_name(name, (esi_bucket_kind)kind, bucket);
        if (s == ES_OK)
            s = esi_kv_set_replicas(js, bucket, replicas);
        if (s != ES_OK && s != ES_ERR_NOT_FOUND)
            return s;
    }
    return ES_OK;
}

es_status esi_store_api(const es_store *st, json_t *body, json_t **reply, const char *fmt, ...)
{
    *reply = NULL;
    char api[512], subject[ESI_JS_PREFIX_MAX + sizeof api];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(api, sizeof api, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof api)
        return es_error(ES_ERR_LIMIT, "JetStream API subject too long");
    es_status s = esi_js_api_subject(st->js, subject, sizeof subject, "%s", api);
    return s == ES_OK ? esi_js_request(st->js, subject, body, 0, reply) : s;
}

es_status esi_store_kv_open(es_store *st, esi_bucket_kind kind, int history, int32_t max_value_size,
                            esi_kv **out)
{
    *out = NULL;
    if (history < 1 || history > 64)
        return es_error(ES_ERR_INVALID, "a KV history of 1..64, not %d", history);
    char bucket[ESI_KV_BUCKET_MAX];
    es_status s = esi_bucket_name(st->name, kind, bucket);
    esi_kv_spec spec = {.bucket = bucket,
                        .replicas = st->config.replicas,
                        .history = history,
                        .memory_storage = st->config.memory_storage,
                        .max_value_size = max_value_size};
    return s == ES_OK ? esi_kv_open(st->js, &spec, true, out) : s;
}

es_status esi_store_delete_buckets(const esi_js *js, const char *name)
{
    for (int kind = 0; kind < ES_BUCKET_KINDS; kind++) {
        char bucket[ESI_KV_BUCKET_MAX];
        es_status s = esi_bucket_name(name, (esi_bucket_kind)kind, bucket);
        if (s == ES_OK)
            s = esi_kv_delete_bucket(js, bucket);
        if (s != ES_OK && s != ES_ERR_NOT_FOUND)
            return s;
    }
    return ES_OK;
}

es_status es_store_delete(natsConnection *nc, const char *name, const es_store_options *opts)
{
    esi_js *js = NULL;
    json_t *info = NULL, *reply = NULL;
    es_status s = begin(nc, name, opts, &js);
    if (s == ES_OK)
        s = stream_info(js, name, &info);
    /* Only a stream that is an event store: deleting is for good. */
    if (s == ES_OK)
        s = esi_store_check_stream(json_object_get(info, "config"), name);
    if (s == ES_OK)
        s = stream_request(js, "DELETE", name, NULL, &reply);
    if (s == ES_OK)
        s = esi_store_delete_buckets(js, name);
    json_decref(info);
    json_decref(reply);
    esi_js_destroy(js);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

static int64_t time_of(json_t *v)
{
    int64_t ns = 0;
    const char *s = json_string_value(v);
    if (s == NULL || strncmp(s, "0001-01-01", 10) == 0 || es_time_parse(s, &ns) != ES_OK)
        return 0;
    return ns;
}

void esi_store_info_from_json(json_t *stream_info, es_store_info *info)
{
    memset(info, 0, sizeof *info);
    config_from_json(json_object_get(stream_info, "config"), &info->config);
    json_t *st = json_object_get(stream_info, "state");
    info->events = (uint64_t)json_integer_value(json_object_get(st, "messages"));
    info->bytes = (uint64_t)json_integer_value(json_object_get(st, "bytes"));
    info->first_seq = (uint64_t)json_integer_value(json_object_get(st, "first_seq"));
    info->last_seq = (uint64_t)json_integer_value(json_object_get(st, "last_seq"));
    info->subjects = (uint64_t)json_integer_value(json_object_get(st, "num_subjects"));
    info->first_time_ns = info->events ? time_of(json_object_get(st, "first_ts")) : 0;
    info->last_time_ns = info->events ? time_of(json_object_get(st, "last_ts")) : 0;
    info->created_ns = time_of(json_object_get(stream_info, "created"));
}

es_status es_store_info_get(es_store *store, es_store_info *info)
{
    if (store == NULL || info == NULL)
        return es_error(ES_ERR_INVALID, "es_store_info_get: store and info are required");
    json_t *reply = NULL;
    es_status s = stream_info(store->js, store->name, &reply);
    if (s != ES_OK)
        return s;
    esi_store_info_from_json(reply, info);
    json_decref(reply);
    return ES_OK;
}

size_t esi_store_max_payload(const es_store *st)
{
    const esi_conn *conn = esi_js_conn(st->js);
    int64_t server = conn->ops->max_payload(conn->ctx);
    size_t limit = server > 0 ? (size_t)server : SIZE_MAX;
    if (st->config.max_event_size > 0 && (size_t)st->config.max_event_size < limit)
        limit = (size_t)st->config.max_event_size;
    return limit;
}

size_t es_store_max_payload(const es_store *store)
{
    return store ? esi_store_max_payload(store) : 0;
}

const char *es_store_name(const es_store *store)
{
    return store ? store->name : NULL;
}
const char *es_store_stream(const es_store *store)
{
    return store ? store->stream : NULL;
}
bool es_store_tenancy(const es_store *store)
{
    return store && store->config.tenancy;
}
natsConnection *es_store_connection(const es_store *store)
{
    return store ? store->nc : NULL;
}

es_status es_store_shred(es_store *st, const char *tenant, const char *type, const char *id,
                         size_t id_len)
{
    if (st == NULL)
        return es_error(ES_ERR_INVALID, "es_store_shred: store is NULL");
    if (!st->config.encrypt)
        return es_error(ES_ERR_INVALID, "store '%s' does not encrypt: there is no key to shred",
                        st->name);
    if (st->keyring == NULL)
        return es_error(ES_ERR_NO_KEY, "shredding in store '%s' needs its master key", st->name);
    es_event_spec e;
    es_event_spec_init(&e);
    e.tenant = tenant;
    e.entity_type = type;
    e.entity_id = id;
    e.entity_id_len = id_len;
    e.event_type = "shred";
    es_status s = esi_event_spec_check(st, &e, 0);
    esi_subject subj;
    if (s == ES_OK)
        s = esi_subject_for(st, &e, &subj);
    if (s != ES_OK)
        return s;
    subj.entity[strlen(subj.entity) - 2] = '\0'; /* the entity, without ".*" */
    return es_keyring_shred(st->keyring, subj.entity);
}

void es_store_destroy(es_store *store)
{
    if (store == NULL)
        return;
    if (store->root != NULL) { /* a tenant handle: the view alone */
        esi_free(store);
        return;
    }
    esi_publisher_destroy(store->pub);
    es_envelope_destroy(store->env);
    esi_dict_source_kv_destroy(&store->dicts);
    es_keyring_destroy(store->keyring);
    esi_js_destroy(store->js);
    esi_free(store);
}
