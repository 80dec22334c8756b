/* The keyring of an encrypting store: one random data key per entity, each
 * wrapped (encrypted) by a master key the user supplies and kept as a small
 * record in a backend (an event store keeps them in its KV bucket
 * `ES_<store>_keys`). Shredding an entity erases its data key, so its events'
 * data is gone for good while their metadata still replays.
 * Formats and rules: docs/envelope.md. */
#ifndef ES_KEYRING_H
#define ES_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
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
} es_keyring_options;

/* Where wrapped data keys and shred marks live: records of at most
 * ES_KEYRING_RECORD_MAX bytes under names of ES_KEYRING_KV_KEY_MAX - 1
 * characters ("e." + 64 hex digits). The calls may come from many threads at
 * once. An event store's backend is its KV bucket; tests use one in memory. */
#define ES_KEYRING_RECORD_MAX 128
typedef struct es_keyring_backend {
    void *ctx;
    /* Copies the record stored under `name` into rec (cap bytes) and sets
     * *len. ES_ERR_NOT_FOUND when there is none. */
    es_status (*get)(void *ctx, const char *name, uint8_t *rec, size_t cap, size_t *len);
    /* Stores a record under a name that has none: ES_ERR_EXISTS when another
     * writer stored one first. */
    es_status (*create)(void *ctx, const char *name, const uint8_t *rec, size_t len);
    /* Replaces the record AND every earlier version of it in one atomic step:
     * after a shred nothing may remain from which the key could come back. */
    es_status (*replace)(void *ctx, const char *name, const uint8_t *rec, size_t len);
    /* Frees ctx when the keyring is destroyed; may be NULL. */
    void (*destroy)(void *ctx);
    /* Optional (NULL: the backend cannot list): calls each(name, rec, len,
     * closure) for up to `max` of its records, in any order, each valid
     * during the call; each's non-OK status stops the walk and is returned.
     * Lets es_keyring_check_master prove a key against the data keys of a
     * backend written before the key check existed. */
    es_status (*scan)(void *ctx, size_t max,
                      es_status (*each)(const char *name, const uint8_t *rec, size_t len,
                                        void *closure),
                      void *closure);
} es_keyring_backend;

/* Loads the master key and takes `backend` (copied; from here on its destroy
 * hook belongs to the keyring, even when this call fails). ES_ERR_NO_KEY when
 * no source is set or the named variable is unset; ES_ERR_INVALID for a
 * malformed key (the message never shows its bytes); ES_ERR_IO for an
 * unreadable file. The caller owns *out. Thread-safe once created: every call
 * below may run from many threads at once. */
ES_API es_status es_keyring_create(const es_keyring_backend *backend, const es_keyring_options *opt,
                            es_keyring **out);

/* Wipes every key held in memory and frees the keyring. Accepts NULL. */
ES_API void es_keyring_destroy(es_keyring *kr);

/* Crypto-shreds one entity: atomically replaces its wrapped data key, and
 * every earlier revision of it, by a shred mark (a KV purge that leaves a
 * mark, see docs/envelope.md). Afterwards reading its encrypted events gives
 * ES_ERR_SHREDDED, and encrypting new events for it is refused with
 * ES_ERR_SHREDDED: a shredded entity stays shredded. Idempotent; shredding an
 * entity that never had a key marks it too. `entity` is the event subject
 * without its last token, e.g. "$ES.bank.account.42". */
ES_API es_status es_keyring_shred(es_keyring *kr, const char *entity);

/* Checks the master key against the backend's key check record (see
 * docs/envelope.md, "The master key check"), so that a wrong key is refused
 * before it wraps anything: a key that differs from the one the records were
 * written with is ES_ERR_CRYPTO ("the master key does not match the one
 * this store was written with"), and nothing is written. When there is no
 * check record yet (a new backend, or one from before the check existed) it
 * first proves the key against a data key already there (when the backend
 * can scan; refused as above when it does not unwrap), then writes a record
 * made with this key, by `create`: of keyrings doing so at once with
 * different keys, exactly one succeeds, the others are refused. The record
 * is an AEAD seal of a constant under the master key, with a random nonce:
 * it reveals nothing of the key (not even whether two stores share one). A
 * store's handle calls this when it opens; a program with a backend of its
 * own calls it after es_keyring_create. Thread-safe. */
#define ES_KEYRING_CHECK_NAME "master-key-check"
ES_API es_status es_keyring_check_master(es_keyring *kr);

/* The record name under which `entity`'s data key lives (for tools and tests):
 * "e." + 64 lower-case hex digits, NUL-terminated, into `out`. */
#define ES_KEYRING_KV_KEY_MAX 67
ES_API void es_keyring_kv_key(const char *entity, size_t entity_len, char out[ES_KEYRING_KV_KEY_MAX]);

typedef struct es_keyring_stats {
    uint64_t cache_hits, cache_misses, cache_evictions, cache_expired;
    uint64_t kv_gets, keys_created;
    size_t cached, capacity;
} es_keyring_stats;

/* A snapshot of the counters (thread-safe). */
ES_API void es_keyring_stats_get(es_keyring *kr, es_keyring_stats *out);

#ifdef __cplusplus
}
#endif
#endif
