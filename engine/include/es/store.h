/* es_store: an event store is one JetStream stream, ES_<NAME>, over the
 * subjects $ES.<NAME>.> (see docs/wire-format.md). A store handle is made
 * from a natsConnection the caller owns and keeps open for the handle's life;
 * the library never closes it. A handle is safe to use from many threads. */
#ifndef ES_STORE_H
#define ES_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/export.h>
#include <es/keyring.h>
#include <es/names.h>
#include <es/status.h>
#include <es/upcast.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_store es_store;

/* Store configuration. Durations are nanoseconds; limits of 0 mean unlimited. */
/* The server's own compression of a file store's blocks (JetStream's stream
 * "compression"), beneath and independent of the envelope's zstd of
 * payloads: S2 roughly halves a stored ATProto event, headers included
 * (docs/operations.md, "Sizing"). Set at creation only. */
typedef enum es_storage_compression {
    ES_STORAGE_COMPRESSION_NONE = 0,
    ES_STORAGE_COMPRESSION_S2,
} es_storage_compression;

/* "none" or "s2" (the server's names). */
ES_API const char *es_storage_compression_name(es_storage_compression c);
/* The compression called `name` ("none", "s2"): ES_ERR_INVALID otherwise. */
ES_API es_status es_storage_compression_parse(const char *name, es_storage_compression *out);

typedef struct es_store_config {
    int replicas;                /* JetStream replicas, 1..5 (default 1); the store's KV
                                    buckets (checkpoints, keys, ...) get as many */
    int64_t max_age_ns;          /* drop events older than this (default 0: keep forever) */
    int64_t max_bytes;           /* 0: unlimited */
    int64_t max_events;          /* 0: unlimited */
    int32_t max_event_size;      /* largest event in bytes, headers included; 0: server's limit */
    int64_t duplicate_window_ns; /* idempotency window for event ids (default 2 minutes) */
    bool tenancy;        /* subjects carry a tenant: $ES.<store>.<tenant>.<type>.<id>.<event> */
    bool memory_storage; /* memory instead of file storage (tests, caches) */
    /* The envelope (docs/envelope.md). Off by default, so that any Rita
     * reader can read every event. */
    size_t compress_threshold; /* zstd-compress payloads of at least this many bytes; 0: off */
    uint32_t compress_dict;    /* a dictionary id in the store (es_dict_put); 0: none */
    bool encrypt;              /* encrypt every event with its entity's key */
    /* The server's compression of the stream's blocks (default none). Only
     * at creation: es_store_update refuses to change it, since nats-server
     * accepts the change but keeps writing uncompressed blocks. */
    es_storage_compression storage_compression;
} es_store_config;

/* Defaults: R1, file storage, unlimited, duplicate window 2 minutes, no
 * tenancy, no compression, no encryption. */
ES_API void es_store_config_init(es_store_config *cfg);

/* Options of a handle (not stored on the server). */
typedef struct es_store_options {
    int64_t timeout_ms; /* per request to the server (default 5000) */
    /* The master key of an encrypting store (see es/keyring.h: a file of 32
     * raw bytes or 64 hex digits, or the NAME of an environment variable of
     * 64 hex digits). Without one, an encrypting store can still be opened:
     * metadata reads, data reads ES_ERR_NO_KEY and appends are refused. */
    const char *master_key_file;
    const char *master_key_env;
    bool accept_plaintext;         /* encrypting store: read events written before it encrypted */
    const es_upcasters *upcasters; /* applied on read (borrowed); NULL: none */
    int max_inflight;              /* asynchronous appends in flight at once (default 256) */
    int max_batches_inflight;      /* of which atomic batches (default 32; nats-server allows
                                      50 per stream and 1000 per server by default) */
    /* Where the JetStream API is (docs/wire-format.md): a JetStream domain
     * ("$JS.<domain>.API"), or the API prefix itself (an account importing
     * another's JetStream). At most one; NULL for both: "$JS.API". */
    const char *js_domain;
    const char *js_api_prefix;
    /* Appends check that each payload decodes under its codec (ES_ERR_DECODE
     * otherwise; docs/api.md "Appending"). true skips that decoding for
     * callers that built or checked their payloads already (measured in
     * docs/performance.md); the codec name is checked either way. */
    bool skip_payload_validation;
    /* The user's NATS permissions confine it to some subjects (a tenant's
     * user: docs/api.md, "NATS permissions for a tenant's user"). Reads then
     * use only API subjects that carry their filter, which such permissions
     * can grant: es_load, expectations resolved by the library and the
     * lookup of a duplicate batch's sequences go through an ordered consumer
     * (<api>.CONSUMER.CREATE.<stream>.<name>.<filter>) instead of batched
     * direct gets, whose filter is in the body; es_store_entities is
     * ES_ERR_UNSUPPORTED. Slower for a single entity (a consumer's
     * creation and deletion instead of one request). Default false. */
    bool confined;
} es_store_options;

ES_API void es_store_options_init(es_store_options *opts);

/* Creates the store, or opens it when it exists with the same configuration.
 * ES_ERR_EXISTS when it exists with a different one; ES_ERR_UNSUPPORTED when
 * the server is older than 2.12 (no atomic batches). `cfg` and `opts` may be
 * NULL for defaults. The caller owns *out (es_store_destroy). */
ES_API es_status es_store_create(natsConnection *nc, const char *name, const es_store_config *cfg,
                                 const es_store_options *opts, es_store **out);

/* Opens an existing store; ES_ERR_NOT_FOUND when there is none. */
ES_API es_status es_store_open(natsConnection *nc, const char *name, const es_store_options *opts,
                               es_store **out);

/* Changes the configuration of an existing store (replicas, limits, duplicate
 * window, compression); a new replica count is given to the store's KV
 * buckets too. Tenancy, storage type and storage compression cannot change:
 * ES_ERR_INVALID. What the stream has that es_store_config does not say (an
 * operator's deny_purge, description, placement, metadata) is kept. */
ES_API es_status es_store_update(es_store *store, const es_store_config *cfg);

/* Crypto-shreds one entity of an encrypting store: its data key is erased,
 * so its events keep their metadata but their data reads ES_ERR_SHREDDED,
 * and nothing more can be appended to it. `tenant` only with tenancy;
 * id_len 0: id is NUL-terminated. ES_ERR_INVALID when the store does not
 * encrypt; ES_ERR_NO_KEY without a master key. */
ES_API es_status es_store_shred(es_store *store, const char *tenant, const char *entity_type,
                                const char *entity_id, size_t id_len);

/* Deletes the store's stream and its KV buckets, with every event in them.
 * ES_ERR_NOT_FOUND when there is no such store; ES_ERR_INVALID when the
 * stream ES_<name> exists but is not an event store (it is left alone).
 * `opts` (may be NULL) gives the timeout and where the JetStream API is. */
ES_API es_status es_store_delete(natsConnection *nc, const char *name,
                                 const es_store_options *opts);

/* What the server reports about a store. */
typedef struct es_store_info {
    es_store_config config;
    uint64_t events; /* messages in the stream */
    uint64_t bytes;
    uint64_t first_seq;
    uint64_t last_seq;
    int64_t first_time_ns; /* Unix nanoseconds, 0 when empty */
    int64_t last_time_ns;
    uint64_t subjects; /* distinct subjects, i.e. (entity, event type) pairs */
    int64_t created_ns;
} es_store_info;

ES_API es_status es_store_info_get(es_store *store, es_store_info *info);

/* The largest payload one event of the store may carry, in bytes: the
 * server's max payload or the store's max_event_size, whichever is smaller
 * (headers come on top). Appends and imports refuse larger ones with
 * ES_ERR_TOO_LARGE before sending. 0 for a NULL store. */
ES_API size_t es_store_max_payload(const es_store *store);

/* The store's name, its stream name ("ES_<name>") and whether it uses tenancy.
 * The strings belong to the handle. */
ES_API const char *es_store_name(const es_store *store);
ES_API const char *es_store_stream(const es_store *store);
ES_API bool es_store_tenancy(const es_store *store);
ES_API natsConnection *es_store_connection(const es_store *store);

/* Waits for in-flight asynchronous appends, then frees the handle. Accepts NULL.
 * The connection stays open: it is the caller's. */
ES_API void es_store_destroy(es_store *store);

#ifdef __cplusplus
}
#endif
#endif
