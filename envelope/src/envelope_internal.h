/* Private declarations shared by the envelope's modules (compression,
 * dictionaries, keyring, event encryption, upcasting). Not installed. */
#ifndef ES_ENVELOPE_INTERNAL_H
#define ES_ENVELOPE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>
#include <zstd.h>

#include <es/buf.h>
#include <es/envelope.h>
#include <es/keyring.h>
#include <es/upcast.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/clock.h" /* esi_monotonic_ms, esi_now_ns */

/* ---- zstd (compress.c) --------------------------------------------------- */

/* A small pool of zstd contexts: a context is single-threaded, creating one
 * per event costs more than compressing a small event, so callers borrow. */
typedef struct esi_zpool esi_zpool;
es_status esi_zpool_create(int level, esi_zpool **out);
void esi_zpool_destroy(esi_zpool *p);

/* Compresses `len` bytes into `out` (cleared first) as one zstd frame with
 * its content size and a checksum. *done is false (and `out` unspecified)
 * when the frame would not be smaller than the input. */
es_status esi_zstd_compress(esi_zpool *p, const ZSTD_CDict *cdict, const uint8_t *src, size_t len,
                           es_buf *out, bool *done);

/* Decompresses into `out` (cleared first). Never produces, nor allocates for,
 * more than `max` bytes: ES_ERR_LIMIT beyond; ES_ERR_DECODE for data that is
 * not a complete, valid zstd frame sequence. */
es_status esi_zstd_decompress(esi_zpool *p, const ZSTD_DDict *ddict, const uint8_t *src, size_t len,
                             size_t max, es_buf *out);

/* ---- dictionaries (dict.c) ----------------------------------------------- */

/* Dictionaries loaded from a source (NULL: none), by id, kept for the life of
 * the cache (a store holds few). Thread-safe. */
typedef struct esi_dict_cache esi_dict_cache;
es_status esi_dict_cache_create(const es_dict_source *source, int level, esi_dict_cache **out);
void esi_dict_cache_destroy(esi_dict_cache *c);
/* The dictionary for decompression / compression; owned by the cache. */
es_status esi_dict_cache_ddict(esi_dict_cache *c, uint32_t id, const ZSTD_DDict **out);
es_status esi_dict_cache_cdict(esi_dict_cache *c, uint32_t id, const ZSTD_CDict **out);

/* ---- AEAD (aead.c) ------------------------------------------------------- */

#define ES_KEY_BYTES   crypto_aead_xchacha20poly1305_ietf_KEYBYTES  /* 32 */
#define ES_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define ES_TAG_BYTES   crypto_aead_xchacha20poly1305_ietf_ABYTES    /* 16 */
#define ES_KID_BYTES   16
#define ES_KID_HEX     (2 * ES_KID_BYTES)
#define ES_AD_BYTES    32

#define ES_AEAD_OVERHEAD (ES_NONCE_BYTES + ES_TAG_BYTES)

/* Writes nonce || ciphertext || tag (len + ES_AEAD_OVERHEAD bytes) to `out`,
 * with a fresh random nonce. */
void esi_aead_seal(const uint8_t key[ES_KEY_BYTES], const uint8_t *ad, size_t ad_len,
                  const uint8_t *in, size_t len, uint8_t *out);
/* Inverse of esi_aead_seal: writes len - ES_AEAD_OVERHEAD bytes to `out`, or
 * fails with ES_ERR_CRYPTO when anything was altered. */
es_status esi_aead_open(const uint8_t key[ES_KEY_BYTES], const uint8_t *ad, size_t ad_len,
                       const uint8_t *in, size_t len, uint8_t *out);

/* The associated data of an event: BLAKE2b-256 over length-prefixed fields
 * (docs/envelope.md). NULL fields count as empty. */
typedef struct esi_event_ad_fields {
    const char *subject, *event_id, *key, *compression, *dict, *schema;
} esi_event_ad_fields;
void esi_event_ad(const esi_event_ad_fields *f, uint8_t ad[ES_AD_BYTES]);

/* Exactly 2n hex digits (either case) into n bytes; false otherwise.
 * (Hex out is libsodium's sodium_bin2hex.) */
bool esi_unhex(const char *in, size_t in_len, uint8_t *out, size_t n);

/* ---- keyring (keyring.c) ------------------------------------------------- */

/* The entity's data key, copied into `key` (the caller wipes it), and its id.
 * `want_kid` NULL (write): create the key when the entity has none.
 * `want_kid` set (read): the key must exist and carry that id.
 * ES_ERR_SHREDDED when the entity was shredded. */
es_status esi_keyring_data_key(es_keyring *kr, const char *entity, size_t entity_len,
                              const uint8_t *want_kid, uint8_t key[ES_KEY_BYTES],
                              uint8_t kid[ES_KID_BYTES]);

/* ---- key cache (keycache.c) ---------------------------------------------- */

/* A bounded LRU of entity → (data key | shredded), key bytes kept in one
 * sodium_malloc'd slab. Not thread-safe: the keyring locks around it. */
typedef enum esi_keycache_state { ES_KEYCACHE_KEY, ES_KEYCACHE_SHREDDED } esi_keycache_state;
typedef struct esi_keycache esi_keycache;
typedef struct esi_keycache_stats {
    uint64_t hits, misses, evictions, expired;
    size_t size, capacity;
} esi_keycache_stats;
es_status esi_keycache_create(size_t capacity, int64_t ttl_ms, esi_keycache **out);
void esi_keycache_destroy(esi_keycache *c);
/* true when `id` is cached and fresh; copies the state, key and kid out. */
bool esi_keycache_get(esi_keycache *c, const uint8_t id[32], esi_keycache_state *state,
                     uint8_t key[ES_KEY_BYTES], uint8_t kid[ES_KID_BYTES]);
/* Inserts or replaces; evicts the least recently used entry when full.
 * `key`/`kid` may be NULL for ES_KEYCACHE_SHREDDED. */
void esi_keycache_put(esi_keycache *c, const uint8_t id[32], esi_keycache_state state,
                     const uint8_t *key, const uint8_t *kid);
void esi_keycache_stats_get(const esi_keycache *c, esi_keycache_stats *out);

/* ---- upcasting (upcast.c) ------------------------------------------------ */

/* Runs the chain for (type, event) from *version on `*data`, ping-ponging
 * between the two buffers; *data and *len end up giving the final bytes
 * (unchanged when no upcaster matched) and *version at their version. */
es_status esi_upcast_run(const es_upcasters *r, const char *type, size_t type_len, const char *event,
                        size_t event_len, uint32_t *version, const uint8_t **data, size_t *len,
                        es_buf bufs[2], size_t max_len);

/* The buffer of `bufs` that does not hold `cur`, cleared: where the next
 * stage of a pipeline writes when the current bytes may live in the other. */
es_buf *esi_next_buf(es_buf bufs[2], const uint8_t *cur);

#endif
