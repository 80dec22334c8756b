/* Per-entity data keys, wrapped by the master key and kept in a backend;
 * crypto-shredding. Record formats: docs/envelope.md. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope_internal.h"

#define REC_KEY      0x01 /* version byte of a wrapped data key */
#define REC_SHREDDED 0x02 /* version byte of a shred mark */
#define REC_CHECK    0x03 /* version byte of the master key check */
#define WRAPPED_LEN  (ES_NONCE_BYTES + ES_KEY_BYTES + ES_TAG_BYTES)
#define REC_KEY_LEN  (1 + ES_KID_BYTES + WRAPPED_LEN)
#define REC_MARK_LEN (1 + 8)
/* The constant the check record seals (16 bytes, no NUL). */
#define CHECK_PLAIN     "es-master-key-ok"
#define CHECK_PLAIN_LEN (sizeof CHECK_PLAIN - 1)
#define REC_CHECK_LEN   (1 + ES_NONCE_BYTES + CHECK_PLAIN_LEN + ES_TAG_BYTES)
#define ID_BYTES     32

struct es_keyring {
    es_keyring_backend backend;
    uint8_t *master;      /* ES_MASTER_KEY_BYTES of sodium_malloc'd memory */
    pthread_mutex_t lock; /* guards cache and counters */
    esi_keycache *cache;
    uint64_t kv_gets, keys_created;
};

/* ---- master key ---------------------------------------------------------- */

static bool is_space(char c)
{
    return c == '\n' || c == '\r' || c == ' ' || c == '\t';
}

/* 64 hex digits, trailing whitespace allowed. Never echoes the input. */
static es_status master_from_hex(const char *text, size_t len, const char *where, uint8_t *master)
{
    while (len > 0 && is_space(text[len - 1]))
        len--;
    if (!esi_unhex(text, len, master, ES_MASTER_KEY_BYTES))
        return es_error(ES_ERR_INVALID, "master key in %s is not 64 hex digits (nor 32 raw bytes)",
                        where);
    return ES_OK;
}

static es_status master_from_file(const char *path, uint8_t *master)
{
    /* Room for 64 hex digits, a CRLF and a byte more to notice longer files;
     * in secure memory because it holds the key. */
    enum { CAP = 2 * ES_MASTER_KEY_BYTES + 3 };
    char *text = sodium_malloc(CAP);
    if (text == NULL)
        return es_error(ES_ERR_NOMEM, "out of secure memory reading the master key");
    es_status s = ES_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s = es_error(ES_ERR_IO, "cannot open master key file %s: %s", path, strerror(errno));
        goto out;
    }
    size_t n = 0;
    while (n < CAP) {
        ssize_t r = read(fd, text + n, CAP - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            s = es_error(ES_ERR_IO, "cannot read master key file %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (s != ES_OK)
        goto out;
    if (n == ES_MASTER_KEY_BYTES)
        memcpy(master, text, ES_MASTER_KEY_BYTES);
    else if (n == CAP)
        s = es_error(ES_ERR_INVALID, "master key file %s is longer than a key", path);
    else
        s = master_from_hex(text, n, path, master);
out:
    sodium_free(text); /* wipes */
    return s;
}

static es_status load_master(const es_keyring_options *o, uint8_t *master)
{
    int sources =
        (o->master_key_file != NULL) + (o->master_key_env != NULL) + (o->master_key != NULL);
    if (sources == 0)
        return es_error(ES_ERR_NO_KEY, "no master key given (file, environment variable or bytes)");
    if (sources > 1)
        return es_error(ES_ERR_INVALID, "give the master key from one source only");
    if (o->master_key != NULL) {
        memcpy(master, o->master_key, ES_MASTER_KEY_BYTES);
        return ES_OK;
    }
    if (o->master_key_file != NULL)
        return master_from_file(o->master_key_file, master);
    const char *v = getenv(o->master_key_env);
    if (v == NULL || v[0] == '\0')
        return es_error(ES_ERR_NO_KEY, "environment variable %s (master key) is not set",
                        o->master_key_env);
    char where[96];
    snprintf(where, sizeof where, "environment variable %s", o->master_key_env);
    return master_from_hex(v, strlen(v), where, master);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void backend_release(const es_keyring_backend *b)
{
    if (b != NULL && b->destroy != NULL)
        b->destroy(b->ctx);
}

es_status es_keyring_create(const es_keyring_backend *backend, const es_keyring_options *opt,
                            es_keyring **out)
{
    if (out == NULL || opt == NULL || backend == NULL || backend->get == NULL ||
        backend->create == NULL || backend->replace == NULL) {
        backend_release(backend);
        return es_error(ES_ERR_INVALID, "es_keyring_create: NULL argument or backend call");
    }
    *out = NULL;
    if (sodium_init() < 0) {
        backend_release(backend);
        return es_error(ES_ERR_CRYPTO, "libsodium failed to initialise");
    }
    es_keyring *kr = esi_calloc(1, sizeof *kr);
    if (kr == NULL) {
        backend_release(backend);
        return es_error(ES_ERR_NOMEM, "out of memory creating a keyring");
    }
    kr->backend = *backend;
    pthread_mutex_init(&kr->lock, NULL);
    kr->master = sodium_malloc(ES_MASTER_KEY_BYTES);
    es_status s = kr->master ? load_master(opt, kr->master)
                             : es_error(ES_ERR_NOMEM, "out of secure memory for the master key");
    if (s == ES_OK)
        s = esi_keycache_create(opt->cache_size ? opt->cache_size : 1024,
                               opt->cache_ttl_ms ? opt->cache_ttl_ms : 60000, &kr->cache);
    if (s != ES_OK) {
        es_keyring_destroy(kr);
        return s;
    }
    *out = kr;
    return ES_OK;
}

void es_keyring_destroy(es_keyring *kr)
{
    if (kr == NULL)
        return;
    backend_release(&kr->backend);
    esi_keycache_destroy(kr->cache);
    sodium_free(kr->master); /* wipes; accepts NULL */
    pthread_mutex_destroy(&kr->lock);
    esi_free(kr);
}

/* ---- entity ids and records ---------------------------------------------- */

static void entity_id(const char *entity, size_t len, uint8_t id[ID_BYTES])
{
    static const char domain[] = "es-entity-v1"; /* with its NUL */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, ID_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain);
    crypto_generichash_update(&st, (const uint8_t *)entity, len);
    crypto_generichash_final(&st, id, ID_BYTES);
}

static void kv_key_of_id(const uint8_t id[ID_BYTES], char out[ES_KEYRING_KV_KEY_MAX])
{
    out[0] = 'e';
    out[1] = '.';
    sodium_bin2hex(out + 2, ES_KEYRING_KV_KEY_MAX - 2, id, ID_BYTES);
}

void es_keyring_kv_key(const char *entity, size_t entity_len, char out[ES_KEYRING_KV_KEY_MAX])
{
    uint8_t id[ID_BYTES];
    entity_id(entity, entity_len, id);
    kv_key_of_id(id, out);
}

/* The wrap's associated data ties a wrapped key to its KV key and key id, so
 * a record copied under another entity does not unwrap. */
static size_t wrap_ad(const char *kv_key, const uint8_t kid[ES_KID_BYTES], uint8_t *ad)
{
    static const char domain[] = "es-data-key-v1"; /* with its NUL */
    size_t n = 0, klen = strlen(kv_key);
    memcpy(ad, domain, sizeof domain);
    n += sizeof domain;
    memcpy(ad + n, kv_key, klen);
    n += klen;
    memcpy(ad + n, kid, ES_KID_BYTES);
    return n + ES_KID_BYTES;
}
#define WRAP_AD_MAX (sizeof "es-data-key-v1" + ES_KEYRING_KV_KEY_MAX + ES_KID_BYTES)

static void wrap_key(const es_keyring *kr, const char *kv_key, const uint8_t *key,
                     const uint8_t kid[ES_KID_BYTES], uint8_t rec[REC_KEY_LEN])
{
    uint8_t ad[WRAP_AD_MAX];
    size_t ad_len = wrap_ad(kv_key, kid, ad);
    rec[0] = REC_KEY;
    memcpy(rec + 1, kid, ES_KID_BYTES);
    esi_aead_seal(kr->master, ad, ad_len, key, ES_KEY_BYTES, rec + 1 + ES_KID_BYTES);
}

/* A key record into (key, kid); key is secret: the caller wipes it. */
static es_status unwrap_key(const es_keyring *kr, const char *kv_key, const uint8_t *rec,
                            size_t len, uint8_t key[ES_KEY_BYTES], uint8_t kid[ES_KID_BYTES])
{
    if (len != REC_KEY_LEN)
        return es_error(ES_ERR_CRYPTO, "data key record %s has %zu bytes, not %u", kv_key, len,
                        (unsigned)REC_KEY_LEN);
    memcpy(kid, rec + 1, ES_KID_BYTES);
    uint8_t ad[WRAP_AD_MAX];
    size_t ad_len = wrap_ad(kv_key, kid, ad);
    if (esi_aead_open(kr->master, ad, ad_len, rec + 1 + ES_KID_BYTES, WRAPPED_LEN, key) != ES_OK)
        return es_error(ES_ERR_CRYPTO,
                        "cannot unwrap data key %s: wrong master key, or the record was altered",
                        kv_key);
    return ES_OK;
}

/* ---- data keys ----------------------------------------------------------- */

typedef enum fetched { FETCH_KEY, FETCH_SHREDDED, FETCH_NONE } fetched;

/* Reads the entity's record from the backend (and caches what it finds). */
static es_status fetch(es_keyring *kr, const uint8_t id[ID_BYTES], const char *kv_key,
                       fetched *what, uint8_t key[ES_KEY_BYTES], uint8_t kid[ES_KID_BYTES])
{
    pthread_mutex_lock(&kr->lock);
    kr->kv_gets++;
    pthread_mutex_unlock(&kr->lock);
    uint8_t rec[ES_KEYRING_RECORD_MAX];
    size_t len = 0;
    es_status s = kr->backend.get(kr->backend.ctx, kv_key, rec, sizeof rec, &len);
    if (s == ES_ERR_NOT_FOUND) {
        *what = FETCH_NONE;
        return ES_OK;
    }
    if (s != ES_OK)
        return s;
    if (len > sizeof rec)
        return es_error(ES_ERR_CRYPTO, "data key record %s has %zu bytes", kv_key, len);
    if (len >= 1 && rec[0] == REC_SHREDDED) {
        *what = FETCH_SHREDDED;
    } else if (len >= 1 && rec[0] == REC_KEY) {
        s = unwrap_key(kr, kv_key, rec, len, key, kid);
        *what = FETCH_KEY;
    } else {
        s = es_error(ES_ERR_CRYPTO, "data key record %s is not a key nor a shred mark", kv_key);
    }
    if (s == ES_OK) {
        pthread_mutex_lock(&kr->lock);
        esi_keycache_put(kr->cache, id, *what == FETCH_KEY ? ES_KEYCACHE_KEY : ES_KEYCACHE_SHREDDED,
                        *what == FETCH_KEY ? key : NULL, *what == FETCH_KEY ? kid : NULL);
        pthread_mutex_unlock(&kr->lock);
    }
    return s;
}

/* Makes a key for an entity that has none. Fails when another writer
 * created one first (the backend refuses an existing record). */
static es_status create_key(es_keyring *kr, const uint8_t id[ID_BYTES], const char *kv_key,
                            uint8_t key[ES_KEY_BYTES], uint8_t kid[ES_KID_BYTES])
{
    crypto_aead_xchacha20poly1305_ietf_keygen(key);
    randombytes_buf(kid, ES_KID_BYTES);
    uint8_t rec[REC_KEY_LEN];
    wrap_key(kr, kv_key, key, kid, rec);
    es_status s = kr->backend.create(kr->backend.ctx, kv_key, rec, sizeof rec);
    if (s != ES_OK) {
        sodium_memzero(key, ES_KEY_BYTES);
        return s;
    }
    pthread_mutex_lock(&kr->lock);
    kr->keys_created++;
    esi_keycache_put(kr->cache, id, ES_KEYCACHE_KEY, key, kid);
    pthread_mutex_unlock(&kr->lock);
    return ES_OK;
}

/* Never names the entity: its id may be the very personal data that was
 * erased. The KV key is a hash. */
static es_status shredded_error(const char *kv_key)
{
    return es_error(ES_ERR_SHREDDED, "the entity's data was crypto-shredded (key %s)", kv_key);
}

es_status esi_keyring_data_key(es_keyring *kr, const char *entity, size_t entity_len,
                              const uint8_t *want_kid, uint8_t key[ES_KEY_BYTES],
                              uint8_t kid[ES_KID_BYTES])
{
    uint8_t id[ID_BYTES];
    entity_id(entity, entity_len, id);
    char kv_key[ES_KEYRING_KV_KEY_MAX];
    kv_key_of_id(id, kv_key);
    esi_keycache_state state;
    pthread_mutex_lock(&kr->lock);
    bool hit = esi_keycache_get(kr->cache, id, &state, key, kid);
    pthread_mutex_unlock(&kr->lock);
    if (hit && state == ES_KEYCACHE_SHREDDED)
        return shredded_error(kv_key);
    /* A cached key with another id may be stale: then ask the backend. */
    if (hit && (want_kid == NULL || sodium_memcmp(kid, want_kid, ES_KID_BYTES) == 0))
        return ES_OK;

    for (int round = 0;; round++) {
        fetched what = FETCH_NONE;
        es_status s = fetch(kr, id, kv_key, &what, key, kid);
        if (s != ES_OK)
            return s;
        if (what == FETCH_SHREDDED)
            return shredded_error(kv_key);
        if (what == FETCH_KEY) {
            if (want_kid == NULL || sodium_memcmp(kid, want_kid, ES_KID_BYTES) == 0)
                return ES_OK;
            sodium_memzero(key, ES_KEY_BYTES);
            return es_error(
                ES_ERR_CRYPTO,
                "the event's data key is not the entity's key %s (replaced outside es?)", kv_key);
        }
        if (want_kid != NULL)
            return es_error(ES_ERR_CRYPTO,
                            "the entity has no data key %s (nor a shred mark): the event was "
                            "moved from another entity, or keys were removed outside es",
                            kv_key);
        s = create_key(kr, id, kv_key, key, kid);
        /* A failed creation is most likely a lost race with another writer:
         * one more round reads the winner's key. */
        if (s == ES_OK || round == 1)
            return s;
    }
}

/* ---- the master key check ------------------------------------------------ */

/* Its own associated data: a check record is no wrapped key, nor the
 * reverse, whatever bytes are copied where. */
static const char check_ad[] = "es-master-check-v1"; /* with its NUL */

static es_status mismatch(void)
{
    return es_error(ES_ERR_CRYPTO, "the master key does not match the one this store was "
                                   "written with");
}

static es_status verify_check(const es_keyring *kr, const uint8_t *rec, size_t len)
{
    if (len != REC_CHECK_LEN || rec[0] != REC_CHECK)
        return es_error(ES_ERR_CRYPTO, "the master key check record %s has %zu bytes or an "
                                       "unknown version: altered outside es?",
                        ES_KEYRING_CHECK_NAME, len);
    uint8_t plain[CHECK_PLAIN_LEN];
    if (esi_aead_open(kr->master, (const uint8_t *)check_ad, sizeof check_ad, rec + 1,
                      len - 1, plain) != ES_OK ||
        memcmp(plain, CHECK_PLAIN, CHECK_PLAIN_LEN) != 0)
        return mismatch();
    return ES_OK;
}

/* ES_ERR_NOT_FOUND when there is no record. */
static es_status read_check(es_keyring *kr, uint8_t rec[ES_KEYRING_RECORD_MAX], size_t *len)
{
    es_status s = kr->backend.get(kr->backend.ctx, ES_KEYRING_CHECK_NAME, rec,
                                  ES_KEYRING_RECORD_MAX, len);
    if (s == ES_OK && *len > ES_KEYRING_RECORD_MAX)
        return es_error(ES_ERR_CRYPTO, "the master key check record has %zu bytes", *len);
    return s;
}

/* Proving a key against the data keys of a backend from before the check:
 * the first data key record found decides. */
#define PROOF_SCAN_MAX 256

typedef struct proof {
    const es_keyring *kr;
    bool decided, matches;
} proof;

static es_status prove_with(const char *name, const uint8_t *rec, size_t len, void *closure)
{
    proof *p = closure;
    if (len < 1 || rec[0] != REC_KEY || strncmp(name, "e.", 2) != 0 ||
        strlen(name) != ES_KEYRING_KV_KEY_MAX - 1)
        return ES_OK; /* a shred mark, or no record of ours: look further */
    uint8_t key[ES_KEY_BYTES], kid[ES_KID_BYTES];
    p->matches = unwrap_key(p->kr, name, rec, len, key, kid) == ES_OK;
    sodium_memzero(key, sizeof key);
    p->decided = true;
    return ES_ERR_STOPPED;
}

/* ES_OK when the key unwraps the first data key found, or there is none to
 * try (a new backend, or one that cannot scan). */
static es_status prove_against_data_keys(es_keyring *kr)
{
    if (kr->backend.scan == NULL)
        return ES_OK;
    proof p = {kr, false, false};
    es_status s = kr->backend.scan(kr->backend.ctx, PROOF_SCAN_MAX, prove_with, &p);
    if (p.decided)
        return p.matches ? ES_OK : mismatch();
    return s;
}

es_status es_keyring_check_master(es_keyring *kr)
{
    if (kr == NULL)
        return es_error(ES_ERR_INVALID, "es_keyring_check_master: keyring is NULL");
    uint8_t rec[ES_KEYRING_RECORD_MAX];
    size_t len = 0;
    es_status s = read_check(kr, rec, &len);
    if (s == ES_OK)
        return verify_check(kr, rec, len);
    if (s != ES_ERR_NOT_FOUND)
        return s;
    s = prove_against_data_keys(kr);
    if (s != ES_OK)
        return s;
    uint8_t mine[REC_CHECK_LEN];
    mine[0] = REC_CHECK;
    esi_aead_seal(kr->master, (const uint8_t *)check_ad, sizeof check_ad,
                  (const uint8_t *)CHECK_PLAIN, CHECK_PLAIN_LEN, mine + 1);
    s = kr->backend.create(kr->backend.ctx, ES_KEYRING_CHECK_NAME, mine, sizeof mine);
    if (s != ES_ERR_EXISTS)
        return s;
    /* Another keyring wrote its check first: ours stands only if it is the
     * same key. */
    s = read_check(kr, rec, &len);
    return s == ES_OK ? verify_check(kr, rec, len) : s;
}

/* ---- shredding ----------------------------------------------------------- */

es_status es_keyring_shred(es_keyring *kr, const char *entity)
{
    if (kr == NULL || entity == NULL || entity[0] == '\0')
        return es_error(ES_ERR_INVALID, "es_keyring_shred: NULL keyring or empty entity");
    size_t len = strlen(entity);
    uint8_t id[ID_BYTES];
    entity_id(entity, len, id);
    char kv_key[ES_KEYRING_KV_KEY_MAX];
    kv_key_of_id(id, kv_key);

    uint64_t ms = (uint64_t)(esi_now_ns() / 1000000);
    uint8_t mark[REC_MARK_LEN] = {REC_SHREDDED};
    for (int i = 0; i < 8; i++)
        mark[1 + i] = (uint8_t)(ms >> (56 - 8 * i));

    /* One atomic replacement: a delete followed by a write would leave a
     * window where a crash loses the mark (and a writer could create a fresh
     * key). */
    es_status s = kr->backend.replace(kr->backend.ctx, kv_key, mark, sizeof mark);
    if (s != ES_OK)
        return s;
    pthread_mutex_lock(&kr->lock);
    esi_keycache_put(kr->cache, id, ES_KEYCACHE_SHREDDED, NULL, NULL);
    pthread_mutex_unlock(&kr->lock);
    return ES_OK;
}

void es_keyring_stats_get(es_keyring *kr, es_keyring_stats *out)
{
    memset(out, 0, sizeof *out);
    if (kr == NULL)
        return;
    esi_keycache_stats cs;
    pthread_mutex_lock(&kr->lock);
    esi_keycache_stats_get(kr->cache, &cs);
    out->kv_gets = kr->kv_gets;
    out->keys_created = kr->keys_created;
    pthread_mutex_unlock(&kr->lock);
    out->cache_hits = cs.hits;
    out->cache_misses = cs.misses;
    out->cache_evictions = cs.evictions;
    out->cache_expired = cs.expired;
    out->cached = cs.size;
    out->capacity = cs.capacity;
}
