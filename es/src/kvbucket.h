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
