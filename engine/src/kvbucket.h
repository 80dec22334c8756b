/* KV buckets of a store (private): ES_<store>_<suffix>, created on first use
 * with the store's replicas and storage. Reads and compare-and-set writes go
 * through raw JetStream requests so that a stale revision maps to
 * ES_ERR_CONFLICT exactly as an append's OCC failure does; nats.c's kvStore
 * handle is kept for watches and key listings. */
#ifndef ES_KVBUCKET_H
#define ES_KVBUCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>
#include <es/store.h>

/* ---- any bucket of a store, by name --------------------------------------- */

/* Maps a failed nats.c KV / JetStream call to a status: es_nats_status, plus
 * what KV calls add (NATS_NOT_FOUND, and server refusals with nats.c's own
 * error text). */
es_status es_kv_error(natsStatus ns, const char *what);

/* The KV bucket "ES_<store>_<suffix>"; ES_ERR_INVALID for a bad store name.
 * Every bucket of a store is named here (es_store_delete removes them). */
#define ES_BUCKET_NAME_MAX 64
es_status es_bucket_name(const char *store, const char *suffix, char out[ES_BUCKET_NAME_MAX]);

typedef struct es_kv_spec {
    const char *bucket;
    int64_t timeout_ms; /* JetStream API wait */
    int replicas;
    int history; /* revisions kept per key; 0: 1 */
    bool memory_storage;
    int32_t max_value_size; /* 0: the server's limit */
    const char *description;
} es_kv_spec;

/* Binds to a KV bucket, creating it when missing and `create` is set (two
 * processes may race to create it: the loser binds). Binding comes first:
 * creating with a config that differs from an existing bucket's would be
 * refused. On success the caller owns *js and *kv. */
es_status es_kv_open(natsConnection *nc, const es_kv_spec *spec, bool create, jsCtx **js,
                     kvStore **kv);

/* ---- a store's own buckets, with raw CAS requests ------------------------ */

typedef struct es_kvb es_kvb;

/* Write whatever the current revision is. */
#define ES_KVB_ANY UINT64_MAX

typedef struct es_kvb_config {
    int history;            /* revisions kept per key, 1..64 */
    int32_t max_value_size; /* 0: the server's limit */
} es_kvb_config;

/* Opens ES_<store>_<suffix>, creating it when missing. The store must outlive
 * the handle. */
es_status es_kvb_open(es_store *st, const char *suffix, const es_kvb_config *cfg, es_kvb **out);
void es_kvb_close(es_kvb *kv);

const char *es_kvb_bucket(const es_kvb *kv);
kvStore *es_kvb_store(es_kvb *kv); /* nats.c's handle: watches, keys */
int64_t es_kvb_timeout_ms(const es_kvb *kv);

/* The latest revision of a key. msg is owned here: es_kvb_entry_clear it. */
typedef struct es_kvb_entry {
    natsMsg *msg;
    const void *data;
    size_t len;
    uint64_t revision;
    int64_t stored_ns;
    bool deleted; /* a delete or purge marker */
} es_kvb_entry;

/* ES_ERR_NOT_FOUND when the key was never written (or was purged); a delete
 * marker is returned with deleted set. */
es_status es_kvb_last(es_kvb *kv, const char *key, es_kvb_entry *e);
/* The same, but a deleted key is ES_ERR_NOT_FOUND too. */
es_status es_kvb_get(es_kvb *kv, const char *key, es_kvb_entry *e);
void es_kvb_entry_clear(es_kvb_entry *e);

/* Writes `value` when the key's latest revision is `expect`: ES_KVB_ANY for
 * no check, 0 for "absent" (never written or deleted), else a revision.
 * ES_ERR_CONFLICT otherwise. *rev (may be NULL) gets the new revision. */
es_status es_kvb_put(es_kvb *kv, const char *key, const void *value, size_t len, uint64_t expect,
                     uint64_t *rev);

/* Deletes (leaves a delete marker) when the key's latest revision is
 * `expect` (ES_KVB_ANY: whatever it is). Deleting an absent key is
 * ES_ERR_NOT_FOUND. */
es_status es_kvb_delete(es_kvb *kv, const char *key, uint64_t expect);

#endif
