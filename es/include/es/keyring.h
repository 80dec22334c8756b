/* The keyring of an encrypting store: one random data key per entity, kept in
 * the store's KV bucket `ES_<store>_keys`, each wrapped (encrypted) by a
 * master key the user supplies. Shredding an entity erases its data key, so
 * its events' data is gone for good while their metadata still replays.
 * Formats and rules: docs/envelope.md. */
#ifndef ES_KEYRING_H
#define ES_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Master key size (XChaCha20-Poly1305 key). */
#define ES_MASTER_KEY_BYTES 32

typedef struct es_keyring es_keyring;

/* Exactly one master key source must be set. The key is never logged nor
 * echoed in error messages.
 *  - master_key_file: a file holding 32 raw bytes, or 64 hex digits with an
 *    optional trailing newline;
 *  - master_key_env: the NAME of an environment variable holding 64 hex digits;
 *  - master_key: 32 bytes given directly (copied; the caller wipes its own). */
typedef struct es_keyring_options {
    const char *master_key_file;
    const char *master_key_env;
    const uint8_t *master_key;
    size_t cache_size;    /* unwrapped data keys kept in memory; 0: 1024 */
    int64_t cache_ttl_ms; /* how long a cached key or shred mark is trusted
                             before the bucket is asked again (bounds how long
                             another process may still use a shredded key);
                             0: 60000; negative: forever */
    int64_t timeout_ms;   /* KV calls; 0: 5000 */
    int replicas;         /* of the keys bucket when this call creates it; 0: 1 */
} es_keyring_options;

/* Loads the master key and binds to (creating when missing) the bucket
 * `ES_<store>_keys` on `nc`, which stays the caller's and must outlive the
 * keyring. ES_ERR_NO_KEY when no source is set or the named variable is unset;
 * ES_ERR_INVALID for a malformed key (the message never shows its bytes);
 * ES_ERR_IO for an unreadable file. The caller owns *out. Thread-safe once
 * created: every call below may run from many threads at once. */
es_status es_keyring_create(natsConnection *nc, const char *store, const es_keyring_options *opt,
                            es_keyring **out);

/* Wipes every key held in memory and frees the keyring. Accepts NULL. */
void es_keyring_destroy(es_keyring *kr);

/* Crypto-shreds one entity: atomically replaces its wrapped data key, and
 * every earlier revision of it, by a shred mark (a KV purge that leaves a
 * mark, see docs/envelope.md). Afterwards reading its encrypted events gives
 * ES_ERR_SHREDDED, and encrypting new events for it is refused with
 * ES_ERR_SHREDDED: a shredded entity stays shredded. Idempotent; shredding an
 * entity that never had a key marks it too. `entity` is the event subject
 * without its last token, e.g. "$ES.bank.account.42". */
es_status es_keyring_shred(es_keyring *kr, const char *entity);

/* The KV key under which `entity`'s data key lives (for tools and tests):
 * "e." + 64 lower-case hex digits, NUL-terminated, into `out`. */
#define ES_KEYRING_KV_KEY_MAX 67
void es_keyring_kv_key(const char *entity, size_t entity_len, char out[ES_KEYRING_KV_KEY_MAX]);

typedef struct es_keyring_stats {
    uint64_t cache_hits, cache_misses, cache_evictions, cache_expired;
    uint64_t kv_gets, keys_created;
    size_t cached, capacity;
} es_keyring_stats;

/* A snapshot of the counters (thread-safe). */
void es_keyring_stats_get(es_keyring *kr, es_keyring_stats *out);

#ifdef __cplusplus
}
#endif
#endif
