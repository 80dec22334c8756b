/* KV buckets (private to the library). Reads and compare-and-set writes go
 * through raw JetStream requests, so that a stale revision maps to
 * ES_ERR_CONFLICT exactly as an append's OCC failure does; watches use
 * nats.c's KV (ordered consumers with the KV semantics), on the real
 * connection only. Bucket names are the caller's: the engine owns them. */
#ifndef ES_TRANSPORT_KV_H
#define ES_TRANSPORT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>

#include "transport/js.h"

#define ESI_KV_BUCKET_MAX 64

typedef struct esi_kv esi_kv;

/* Write whatever the current revision is. */
#define ESI_KV_ANY UINT64_MAX

typedef struct esi_kv_spec {
    const char *bucket;
    int replicas; /* of a bucket created here; 0: 1 */
    int history;  /* revisions kept per key; 0: 1 */
    bool memory_storage;
    int32_t max_value_size; /* 0: the server's limit */
    const char *description;
} esi_kv_spec;

/* Binds to a bucket, creating it when missing and `create` is set (two
 * processes may race to create it: the loser binds). Binding comes first:
 * creating with a config that differs from an existing bucket's would be
 * refused. ES_ERR_NOT_FOUND when it is missing and not created. `js` must
 * outlive the handle; the caller owns *out. */
es_status esi_kv_open(const esi_js *js, const esi_kv_spec *spec, bool create, esi_kv **out);
void esi_kv_close(esi_kv *kv); /* accepts NULL */

const char *esi_kv_bucket(const esi_kv *kv);

/* The latest revision of a key. msg is owned here: esi_kv_entry_clear it. */
typedef struct esi_kv_entry {
    natsMsg *msg;
    const void *data;
    size_t len;
    uint64_t revision;
    int64_t stored_ns;
    bool deleted; /* a delete or purge marker */
} esi_kv_entry;

/* ES_ERR_NOT_FOUND when the key was never written (or was purged); a delete
 * marker is returned with deleted set. */
es_status esi_kv_last(esi_kv *kv, const char *key, esi_kv_entry *e);
/* The same, but a deleted key is ES_ERR_NOT_FOUND too. */
es_status esi_kv_get(esi_kv *kv, const char *key, esi_kv_entry *e);
void esi_kv_entry_clear(esi_kv_entry *e);

/* Calls cb(key, data, len, closure) for the messages stored under keys
 * matching `pattern` (KV wildcards: "e.>"), oldest first, reading at most
 * `max` of them by batched direct gets; delete markers are read but not
 * handed over (in a bucket keeping history, older revisions are). data is
 * valid during the call; cb's non-OK status stops the scan and is
 * returned. */
typedef es_status (*esi_kv_scan_cb)(const char *key, const void *data, size_t len, void *closure);
es_status esi_kv_scan(esi_kv *kv, const char *pattern, uint64_t max, esi_kv_scan_cb cb,
                      void *closure);

/* Writes `value` when the key's latest revision is `expect`: ESI_KV_ANY for
 * no check, 0 for "absent" (never written or deleted), else a revision.
 * ES_ERR_CONFLICT otherwise. *rev (may be NULL) gets the new revision. */
es_status esi_kv_put(esi_kv *kv, const char *key, const void *value, size_t len, uint64_t expect,
                     uint64_t *rev);

/* Writes `value` and erases every earlier revision of the key in the same
 * step (a KV purge with a value: `Nats-Rollup: sub`). */
es_status esi_kv_replace_all(esi_kv *kv, const char *key, const void *value, size_t len);

/* Deletes (leaves a delete marker) when the key's latest revision is
 * `expect` (ESI_KV_ANY: whatever it is). Deleting an absent key is
 * ES_ERR_NOT_FOUND. */
es_status esi_kv_delete(esi_kv *kv, const char *key, uint64_t expect);

/* Deletes a bucket; ES_ERR_NOT_FOUND when there is none. */
es_status esi_kv_delete_bucket(const esi_js *js, const char *bucket);

/* Gives an existing bucket `replicas` copies (its stream KV_<bucket>
 * updated with the rest of its configuration kept), so that a store's
 * buckets follow the store when its replica count changes; nothing is sent
 * when the bucket already has that count. ES_ERR_NOT_FOUND when there is no
 * such bucket. */
es_status esi_kv_set_replicas(const esi_js *js, const char *bucket, int replicas);

/* How much a bucket holds: *values, the messages of its stream (values,
 * their history and delete markers), and their *bytes. ES_ERR_NOT_FOUND
 * when there is no such bucket. */
es_status esi_kv_bucket_size(const esi_js *js, const char *bucket, uint64_t *values,
                             uint64_t *bytes);

/* ---- watching ------------------------------------------------------------ */

typedef struct esi_kv_watcher esi_kv_watcher;

typedef struct esi_kv_update {
    const char *key;
    const void *data;
    size_t len;
    uint64_t revision;
    bool deleted;   /* a delete or purge marker */
    bool caught_up; /* no update: every current value has been delivered */
} esi_kv_update;

/* Current values, then live updates, of the keys matching `pattern` (NULL:
 * all), skipping delete markers when `ignore_deletes`. ES_ERR_UNSUPPORTED
 * on a connection other than nats.c's. The current values are those as of
 * the call, on a replicated bucket too: the bucket's leader is asked for
 * the last revision matching the pattern (retried through an election; a
 * user denied that request watches as the replicas answer), and the first
 * esi_kv_watch_next calls gather the watch's deliveries, one revision per
 * key, until that revision has come (its consumer may sit on a replica
 * behind), then hand them out oldest first, then `caught_up`. The last
 * revision can only be superseded by a later one, never lost, unless the
 * bucket's limits remove it: a bucket with a TTL or size limit could then
 * keep the current values from completing (es's buckets have none). */
es_status esi_kv_watch(esi_kv *kv, const char *pattern, bool ignore_deletes, esi_kv_watcher **out);
/* The next update, waiting up to timeout_ms (ES_ERR_TIMEOUT when none);
 * ES_ERR_STOPPED once stopped. The update is valid until the next call. */
es_status esi_kv_watch_next(esi_kv_watcher *w, int64_t timeout_ms, esi_kv_update *u);
/* Makes a waiting esi_kv_watch_next return ES_ERR_STOPPED (any thread). */
void esi_kv_watch_stop(esi_kv_watcher *w);
void esi_kv_watch_destroy(esi_kv_watcher *w); /* accepts NULL */

#endif
