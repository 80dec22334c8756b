/* KV buckets: see kv.h. */
#include "transport/kv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/kvkey.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/clock.h"
#include "transport/directget.h"
#include "transport/msg.h"
#include "transport/streams.h"

#define CREATE_ATTEMPTS 3

struct esi_kv {
    const esi_js *js;
    jsCtx *jsc;  /* nats.c's, for binding, creating and watching */
    kvStore *kv; /* NULL on a connection other than nats.c's */
    char bucket[ESI_KV_BUCKET_MAX];
    char stream[ESI_KV_BUCKET_MAX + 3]; /* KV_<bucket> */
};

const char *esi_kv_bucket(const esi_kv *kv)
{
    return kv->bucket;
}

/* A failed nats.c KV / JetStream call: what esi_nats_status says, plus what
 * KV calls add (NATS_NOT_FOUND, and server refusals with nats.c's own
 * error text). */
static es_status kv_error(natsStatus ns, const char *what)
{
    if (ns == NATS_NOT_FOUND)
        return es_error(ES_ERR_NOT_FOUND, "%s: not found", what);
    if (ns == NATS_ERR || ns == NATS_INVALID_ARG) {
        natsStatus last = NATS_OK;
        const char *detail = nats_GetLastError(&last);
        return es_error(ns == NATS_ERR ? ES_ERR_SERVER : ES_ERR_INVALID, "%s: %s", what,
                        detail && detail[0] ? detail : natsStatus_GetText(ns));
    }
    return esi_nats_status(ns, what);
}

/* nats.c's JetStream context with our domain or prefix. */
static es_status nats_js(const esi_js *js, jsCtx **out)
{
    *out = NULL;
    natsConnection *nc = esi_conn_nats_connection(esi_js_conn(js));
    if (nc == NULL)
        return es_error(ES_ERR_UNSUPPORTED, "KV buckets need a NATS connection");
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = esi_js_timeout_ms(js);
    if (esi_js_domain(js) != NULL)
        jo.Domain = esi_js_domain(js);
    else
        jo.Prefix = esi_js_prefix(js);
    return kv_error(natsConnection_JetStream(out, nc, &jo), "JetStream context");
}

static natsStatus create_bucket(kvStore **kv, jsCtx *js, const esi_kv_spec *spec)
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

/* A request about a bucket's stream: <prefix>.STREAM.<verb>.KV_<bucket>. */
static es_status bucket_stream_request(const esi_js *js, const char *verb, const char *bucket,
                                       json_t *body, json_t **reply)
{
    char subject[ESI_JS_PREFIX_MAX + ESI_KV_BUCKET_MAX + 32];
    es_status s =
        esi_js_api_subject(js, subject, sizeof subject, "STREAM.%s.KV_%s", verb, bucket);
    return s == ES_OK ? esi_js_request(js, subject, body, 0, reply) : s;
}

/* ES_ERR_PERMISSION when the server refuses this user the bucket's stream
 * info, else ES_OK (whatever else the answer says is nats.c's to find
 * again). Asked through the transport's own request path, which learns a
 * denial at once: nats.c's KV calls below, on its shared inbox, would only
 * wait out their timeout. One more request per bucket opened. */
static es_status refused_bucket(const esi_js *js, const char *bucket)
{
    json_t *reply = NULL;
    es_status s = bucket_stream_request(js, "INFO", bucket, NULL, &reply);
    json_decref(reply);
    return s == ES_ERR_PERMISSION ? s : ES_OK;
}

es_status esi_kv_open(const esi_js *js, const esi_kv_spec *spec, bool create, esi_kv **out)
{
    *out = NULL;
    if (spec == NULL || spec->bucket == NULL || strlen(spec->bucket) >= ESI_KV_BUCKET_MAX)
        return es_error(ES_ERR_INVALID, "a KV bucket name of 1..%d bytes is needed",
                        ESI_KV_BUCKET_MAX - 1);
    esi_kv *kv = esi_calloc(1, sizeof *kv);
    if (kv == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    kv->js = js;
    snprintf(kv->bucket, sizeof kv->bucket, "%s", spec->bucket);
    snprintf(kv->stream, sizeof kv->stream, "KV_%s", spec->bucket);
    es_status s = nats_js(js, &kv->jsc);
    if (s == ES_OK)
        s = refused_bucket(js, spec->bucket);
    natsStatus ns = NATS_OK;
    for (int i = 0; s == ES_OK && i < CREATE_ATTEMPTS; i++) {
        ns = js_KeyValue(&kv->kv, kv->jsc, spec->bucket);
        if (ns != NATS_NOT_FOUND || !create)
            break;
        ns = create_bucket(&kv->kv, kv->jsc, spec);
        if (ns == NATS_OK)
            break;
    }
    if (s == ES_OK && ns != NATS_OK) {
        char what[128];
        snprintf(what, sizeof what, "KV bucket %s", spec->bucket);
        s = kv_error(ns, what);
    }
    if (s != ES_OK) {
        esi_kv_close(kv);
        return s;
    }
    *out = kv;
    return ES_OK;
}

void esi_kv_close(esi_kv *kv)
{
    if (kv == NULL)
        return;
    kvStore_Destroy(kv->kv);
    jsCtx_Destroy(kv->jsc);
    esi_free(kv);
}

void esi_kv_entry_clear(esi_kv_entry *e)
{
    esi_msg_destroy(e->msg);
    memset(e, 0, sizeof *e);
}

static es_status check_key(const esi_kv *kv, const char *key)
{
    if (!es_kv_key_valid(key))
        return es_error(ES_ERR_INVALID, "'%.80s' is not a valid key for KV bucket %s",
                        key ? key : "(null)", kv->bucket);
    return ES_OK;
}

static bool is_marker(natsMsg *m)
{
    const char *op = esi_msg_header(m, "KV-Operation");
    return op != NULL && (strcmp(op, "DEL") == 0 || strcmp(op, "PURGE") == 0);
}

es_status esi_kv_last(esi_kv *kv, const char *key, esi_kv_entry *e)
{
    memset(e, 0, sizeof *e);
    es_status s = check_key(kv, key);
    if (s != ES_OK)
        return s;
    char subject[ES_KV_KEY_MAX + 256];
    s = esi_js_api_subject(kv->js, subject, sizeof subject, "DIRECT.GET.%s.$KV.%s.%s", kv->stream,
                           kv->bucket, key);
    natsMsg *m = NULL;
    if (s == ES_OK)
        s = esi_direct_get_one(kv->js, subject, &m);
    if (s != ES_OK)
        return s;
    const char *status = esi_msg_header(m, "Status");
    if (status != NULL) {
        bool missing = strcmp(status, "404") == 0;
        const char *desc = esi_msg_header(m, "Description");
        s = missing ? es_error(ES_ERR_NOT_FOUND, "%s: no key '%s'", kv->bucket, key)
                    : es_error(ES_ERR_SERVER, "%s: direct get answered %s %s", kv->bucket, status,
                               desc ? desc : "");
        esi_msg_destroy(m);
        return s;
    }
    const char *seq = esi_msg_header(m, "Nats-Sequence"),
               *ts = esi_msg_header(m, "Nats-Time-Stamp");
    e->msg = m;
    e->data = esi_msg_data(m);
    e->len = esi_msg_len(m);
    e->revision = seq ? strtoull(seq, NULL, 10) : 0;
    e->deleted = is_marker(m);
    if (ts == NULL || es_time_parse(ts, &e->stored_ns) != ES_OK)
        e->stored_ns = 0;
    if (e->revision == 0) {
        esi_kv_entry_clear(e);
        return es_error(ES_ERR_PROTOCOL, "%s: direct get answer without a sequence", kv->bucket);
    }
    return ES_OK;
}

es_status esi_kv_get(esi_kv *kv, const char *key, esi_kv_entry *e)
{
    es_status s = esi_kv_last(kv, key, e);
    if (s == ES_OK && e->deleted) {
        esi_kv_entry_clear(e);
        return es_error(ES_ERR_NOT_FOUND, "%s: key '%s' was deleted", kv->bucket, key);
    }
    return s;
}

typedef struct scan_call {
    size_t prefix_len; /* of "$KV.<bucket>." */
    esi_kv_scan_cb cb;
    void *closure;
} scan_call;

static es_status on_scanned(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                            void *closure)
{
    (void)seq;
    (void)stored_ns;
    scan_call *c = closure;
    if (is_marker(msg) || strlen(subject) <= c->prefix_len)
        return ES_OK;
    return c->cb(subject + c->prefix_len, esi_msg_data(msg), esi_msg_len(msg), c->closure);
}

es_status esi_kv_scan(esi_kv *kv, const char *pattern, uint64_t max, esi_kv_scan_cb cb,
                      void *closure)
{
    if (kv == NULL || pattern == NULL || cb == NULL || max == 0)
        return es_error(ES_ERR_INVALID, "esi_kv_scan: bucket, pattern, callback and max needed");
    char filter[ES_KV_KEY_MAX + ESI_KV_BUCKET_MAX + 8];
    int n = snprintf(filter, sizeof filter, "$KV.%s.%s", kv->bucket, pattern);
    if (n < 0 || (size_t)n >= sizeof filter)
        return es_error(ES_ERR_INVALID, "esi_kv_scan: pattern too long");
    scan_call c = {strlen(kv->bucket) + 5, cb, closure};
    esi_dg_request req = {.filter = filter,
                          .start_seq = 1,
                          .batch = max < 256 ? (int)max : 256,
                          .max_msgs = max};
    return esi_direct_get(kv->js, kv->stream, &req, on_scanned, &c, NULL);
}

typedef struct kv_write {
    const esi_conn *conn;
    natsMsg *msg;
    int64_t timeout_ms;
    natsMsg *reply;
} kv_write;

static es_status send_write(void *closure)
{
    kv_write *w = closure;
    return w->conn->ops->request_msg(w->conn->ctx, w->msg, w->timeout_ms, &w->reply);
}

/* One write to $KV.<bucket>.<key>: `header`/`value_of_header` (may be NULL)
 * say what kind, `expect` which last revision it requires. */
static es_status publish(esi_kv *kv, const char *key, const void *value, size_t len,
                         const char *header, const char *header_value, uint64_t expect,
                         uint64_t *rev)
{
    char subject[ES_KV_KEY_MAX + 80];
    snprintf(subject, sizeof subject, "$KV.%s.%s", kv->bucket, key);
    natsMsg *msg = NULL, *reply = NULL;
    es_status s = esi_msg_create(subject, NULL, value, len, &msg);
    if (s == ES_OK && header != NULL)
        s = esi_msg_header_set(msg, header, header_value);
    if (s == ES_OK && expect != ESI_KV_ANY) {
        char v[24];
        snprintf(v, sizeof v, "%" PRIu64, expect);
        s = esi_msg_header_set(msg, "Nats-Expected-Last-Subject-Sequence", v);
    }
    kv_write w = {esi_js_conn(kv->js), msg, esi_js_timeout_ms(kv->js), NULL};
    /* "No responders": the bucket's stream does not listen on this server
     * (yet: a bucket just made on a cluster, until its leader's interest
     * reaches this server). Nothing was written: asked again within the
     * timeout, as a direct get is. */
    if (s == ES_OK)
        s = esi_js_retry_for(w.timeout_ms, esi_js_no_responders, send_write, &w);
    reply = w.reply;
    esi_msg_destroy(msg);
    if (s != ES_OK)
        return s;
    json_error_t jerr;
    json_t *ack = json_loadb(esi_msg_data(reply), esi_msg_len(reply), 0, &jerr);
    esi_msg_destroy(reply);
    if (!json_is_object(ack))
        s = es_error(ES_ERR_PROTOCOL, "%s: the write's acknowledgement is not JSON", kv->bucket);
    else
        s = esi_js_check_error(ack, kv->bucket);
    if (s == ES_OK && rev != NULL)
        *rev = (uint64_t)json_integer_value(json_object_get(ack, "seq"));
    json_decref(ack);
    return s;
}

/* "Absent" includes a key whose last revision is a delete marker: expect
 * that marker's revision instead of 0. */
static es_status write_expecting(esi_kv *kv, const char *key, const void *value, size_t len,
                                 const char *operation, uint64_t expect, uint64_t *rev)
{
    es_status s = check_key(kv, key);
    if (s != ES_OK)
        return s;
    s = publish(kv, key, value, len, operation ? "KV-Operation" : NULL, operation, expect, rev);
    if (s != ES_ERR_CONFLICT || expect != 0)
        return s;
    esi_kv_entry e;
    s = esi_kv_last(kv, key, &e);
    bool deleted = s == ES_OK && e.deleted;
    uint64_t marker = e.revision;
    esi_kv_entry_clear(&e);
    if (!deleted)
        return es_error_code(ES_ERR_CONFLICT, 10071, "%s: key '%s' exists already", kv->bucket,
                             key);
    return publish(kv, key, value, len, operation ? "KV-Operation" : NULL, operation, marker, rev);
}

es_status esi_kv_put(esi_kv *kv, const char *key, const void *value, size_t len, uint64_t expect,
                     uint64_t *rev)
{
    if (kv == NULL || (value == NULL && len > 0) || len > INT32_MAX)
        return es_error(ES_ERR_INVALID, "esi_kv_put: bucket and value are required");
    return write_expecting(kv, key, value, len, NULL, expect, rev);
}

es_status esi_kv_delete(esi_kv *kv, const char *key, uint64_t expect)
{
    if (kv == NULL || expect == 0)
        return es_error(ES_ERR_INVALID, "esi_kv_delete: a bucket and an existing revision (or "
                                        "ESI_KV_ANY) are required");
    if (expect == ESI_KV_ANY) { /* deleting an absent key is worth telling the caller */
        esi_kv_entry e;
        es_status s = esi_kv_get(kv, key, &e);
        esi_kv_entry_clear(&e);
        if (s != ES_OK)
            return s;
    }
    return write_expecting(kv, key, NULL, 0, "DEL", expect, NULL);
}

es_status esi_kv_replace_all(esi_kv *kv, const char *key, const void *value, size_t len)
{
    es_status s = check_key(kv, key);
    if (s == ES_OK)
        s = publish(kv, key, value, len, "Nats-Rollup", "sub", ESI_KV_ANY, NULL);
    return s;
}

es_status esi_kv_delete_bucket(const esi_js *js, const char *bucket)
{
    jsCtx *jsc = NULL;
    es_status s = nats_js(js, &jsc);
    if (s == ES_OK)
        s = kv_error(js_DeleteKeyValue(jsc, bucket), bucket);
    jsCtx_Destroy(jsc);
    return s;
}

es_status esi_kv_set_replicas(const esi_js *js, const char *bucket, int replicas)
{
    if (replicas < 1 || replicas > 5)
        return es_error(ES_ERR_INVALID, "replicas must be 1..5, not %d", replicas);
    json_t *info = NULL, *updated = NULL;
    es_status s = bucket_stream_request(js, "INFO", bucket, NULL, &info);
    if (s != ES_OK)
        return s;
    json_t *config = json_object_get(info, "config");
    if (!json_is_object(config))
        s = es_error(ES_ERR_PROTOCOL, "stream info of KV bucket %s has no configuration", bucket);
    else if (json_integer_value(json_object_get(config, "num_replicas")) != replicas) {
        if (json_object_set_new(config, "num_replicas", json_integer(replicas)) != 0)
            s = es_error(ES_ERR_NOMEM, "out of memory");
        else
            s = bucket_stream_request(js, "UPDATE", bucket, config, &updated);
    }
    json_decref(updated);
    json_decref(info);
    return s;
}

es_status esi_kv_bucket_size(const esi_js *js, const char *bucket, uint64_t *values,
                             uint64_t *bytes)
{
    *values = *bytes = 0;
    json_t *info = NULL;
    es_status s = bucket_stream_request(js, "INFO", bucket, NULL, &info);
    if (s != ES_OK)
        return s;
    json_t *state = json_object_get(info, "state");
    *values = (uint64_t)json_integer_value(json_object_get(state, "messages"));
    *bytes = (uint64_t)json_integer_value(json_object_get(state, "bytes"));
    json_decref(info);
    return ES_OK;
}

/* ---- watching ------------------------------------------------------------ */

/* The most current values (with the updates a lagging replica brings while
 * it catches up) a watch gathers before handing them out. */
#define WATCH_HELD_MAX 1000000

/* nats.c's watch says every current value has been delivered once its
 * consumer has nothing pending. That consumer is placed on any replica of
 * the bucket, and one that has not applied the latest writes yet (a write
 * made just before the watch) has nothing pending too early: a key deleted
 * before the watch comes as a current value, its delete as a change. So
 * the watch first asks the bucket's leader for the last revision matching
 * it (`target`), gathers what comes, one revision per key, until both
 * nats.c's marker and that revision have come, and hands the current
 * values out then, oldest first. */
struct esi_kv_watcher {
    kvWatcher *w;
    kvEntry *current; /* the update handed out last */
    bool ignore_deletes;
    uint64_t target; /* the leader's last revision matching the watch at its start */
    uint64_t seen;   /* the highest revision received */
    bool marker;     /* nats.c's "every current value delivered" came */
    bool gathered;   /* the current values are complete, in held[] */
    bool told;       /* the caught-up update was handed out */
    kvEntry **held;
    size_t n_held, cap_held, next_held;
};

/* The leader's last revision matching `pattern`, retried through an
 * election. A user not granted the leader's message API watches as the
 * replicas answer (0: no revision to wait for), as reads do. */
static es_status watch_target(const esi_kv *kv, const char *pattern, uint64_t *target)
{
    *target = 0;
    char filter[ES_KV_KEY_MAX + ESI_KV_BUCKET_MAX + 8];
    int n = snprintf(filter, sizeof filter, "$KV.%s.%s", kv->bucket, pattern ? pattern : ">");
    if (n < 0 || (size_t)n >= sizeof filter)
        return es_error(ES_ERR_INVALID, "watching %s: pattern too long", kv->bucket);
    es_status s = esi_stream_last_seq_retried(kv->js, kv->stream, filter, target);
    if (s == ES_ERR_PERMISSION) {
        *target = 0;
        es_error_clear();
        return ES_OK;
    }
    return s;
}

es_status esi_kv_watch(esi_kv *kv, const char *pattern, bool ignore_deletes, esi_kv_watcher **out)
{
    *out = NULL;
    if (kv->kv == NULL)
        return es_error(ES_ERR_UNSUPPORTED, "watching %s needs a NATS connection", kv->bucket);
    esi_kv_watcher *w = esi_calloc(1, sizeof *w);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    w->ignore_deletes = ignore_deletes;
    es_status s = watch_target(kv, pattern, &w->target);
    if (s != ES_OK) {
        esi_free(w);
        return s;
    }
    kvWatchOptions o;
    kvWatchOptions_Init(&o);
    o.IgnoreDeletes = false; /* a delete among the gathered values supersedes its key's put */
    o.Timeout = esi_js_timeout_ms(kv->js);
    natsStatus ns =
        pattern ? kvStore_Watch(&w->w, kv->kv, pattern, &o) : kvStore_WatchAll(&w->w, kv->kv, &o);
    if (ns != NATS_OK) {
        esi_free(w);
        return es_error(ES_ERR_SERVER, "watching %s: %s (%s)", kv->bucket, natsStatus_GetText(ns),
                        nats_GetLastError(NULL));
    }
    *out = w;
    return ES_OK;
}

static bool entry_deleted(kvEntry *e)
{
    kvOperation op = kvEntry_Operation(e);
    return op == kvOp_Delete || op == kvOp_Purge;
}

/* The next entry from nats.c (NULL: its marker), waiting until `deadline`
 * (monotonic ms). */
static es_status next_entry(esi_kv_watcher *w, int64_t deadline, kvEntry **e)
{
    *e = NULL;
    int64_t left = deadline - esi_monotonic_ms();
    if (left <= 0)
        return ES_ERR_TIMEOUT;
    natsStatus ns = kvWatcher_Next(e, w->w, left);
    if (ns == NATS_TIMEOUT)
        return ES_ERR_TIMEOUT;
    if (ns == NATS_ILLEGAL_STATE || ns == NATS_INVALID_SUBSCRIPTION || ns == NATS_CONNECTION_CLOSED)
        return ES_ERR_STOPPED;
    if (ns != NATS_OK)
        return esi_nats_status(ns, "watching a KV bucket");
    return ES_OK;
}

static es_status hold(esi_kv_watcher *w, kvEntry *e)
{
    if (w->n_held == w->cap_held) {
        size_t cap = w->cap_held ? 2 * w->cap_held : 64;
        kvEntry **held =
            w->n_held < WATCH_HELD_MAX ? esi_realloc(w->held, cap * sizeof *held) : NULL;
        if (held == NULL) {
            kvEntry_Destroy(e);
            return w->n_held < WATCH_HELD_MAX
                       ? es_error(ES_ERR_NOMEM, "out of memory")
                       : es_error(ES_ERR_LIMIT, "a KV watch of over %d current values",
                                  WATCH_HELD_MAX);
        }
        w->held = held;
        w->cap_held = cap;
    }
    w->held[w->n_held++] = e;
    uint64_t rev = kvEntry_Revision(e);
    if (rev > w->seen)
        w->seen = rev;
    return ES_OK;
}

static int by_revision(const void *a, const void *b)
{
    uint64_t x = kvEntry_Revision(*(kvEntry *const *)a), y = kvEntry_Revision(*(kvEntry *const *)b);
    return x < y ? -1 : x > y;
}

static int by_key_then_revision(const void *a, const void *b)
{
    kvEntry *x = *(kvEntry *const *)a, *y = *(kvEntry *const *)b;
    int c = strcmp(kvEntry_Key(x), kvEntry_Key(y));
    if (c != 0)
        return c;
    return by_revision(a, b);
}

/* Keeps each key's latest revision (dropped when it is a delete and deletes
 * are ignored), oldest first. */
static void settle(esi_kv_watcher *w)
{
    if (w->n_held == 0)
        return; /* held is NULL then, which qsort may not be given */
    qsort(w->held, w->n_held, sizeof *w->held, by_key_then_revision);
    size_t kept = 0;
    for (size_t i = 0; i < w->n_held; i++) {
        kvEntry *e = w->held[i];
        bool superseded =
            i + 1 < w->n_held && strcmp(kvEntry_Key(e), kvEntry_Key(w->held[i + 1])) == 0;
        if (superseded || (w->ignore_deletes && entry_deleted(e)))
            kvEntry_Destroy(e);
        else
            w->held[kept++] = e;
    }
    w->n_held = kept;
    qsort(w->held, w->n_held, sizeof *w->held, by_revision);
    w->gathered = true;
}

/* Gathers the current values until nats.c's marker and the leader's
 * revision have both come. */
static es_status gather(esi_kv_watcher *w, int64_t deadline)
{
    while (!w->marker || w->seen < w->target) {
        kvEntry *e = NULL;
        es_status s = next_entry(w, deadline, &e);
        if (s != ES_OK)
            return s;
        if (e == NULL)
            w->marker = true;
        else if ((s = hold(w, e)) != ES_OK)
            return s;
    }
    settle(w);
    return ES_OK;
}

static void fill_update(kvEntry *e, esi_kv_update *u)
{
    u->key = kvEntry_Key(e);
    u->data = kvEntry_Value(e);
    u->len = (size_t)kvEntry_ValueLen(e);
    u->revision = kvEntry_Revision(e);
    u->deleted = entry_deleted(e);
}

es_status esi_kv_watch_next(esi_kv_watcher *w, int64_t timeout_ms, esi_kv_update *u)
{
    memset(u, 0, sizeof *u);
    kvEntry_Destroy(w->current);
    w->current = NULL;
    int64_t deadline = esi_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    es_status s = w->gathered ? ES_OK : gather(w, deadline);
    if (s != ES_OK)
        return s;
    if (w->next_held < w->n_held) {
        w->current = w->held[w->next_held];
        w->held[w->next_held++] = NULL;
    } else if (!w->told) {
        w->told = true;
        u->caught_up = true;
        return ES_OK;
    }
    while (w->current == NULL || (w->ignore_deletes && entry_deleted(w->current))) {
        kvEntry_Destroy(w->current);
        if ((s = next_entry(w, deadline, &w->current)) != ES_OK)
            return s;
    }
    fill_update(w->current, u);
    return ES_OK;
}

void esi_kv_watch_stop(esi_kv_watcher *w)
{
    if (w != NULL)
        kvWatcher_Stop(w->w);
}

void esi_kv_watch_destroy(esi_kv_watcher *w)
{
    if (w == NULL)
        return;
    kvEntry_Destroy(w->current);
    for (size_t i = w->next_held; i < w->n_held; i++)
        kvEntry_Destroy(w->held[i]);
    esi_free(w->held);
    kvWatcher_Destroy(w->w);
    esi_free(w);
}
