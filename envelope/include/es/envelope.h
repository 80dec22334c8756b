/* The event envelope: what wraps a codec's bytes on the wire.
 *
 *   write: encode (a codec) → es_envelope_seal:  compress → encrypt → publish
 *   read:  fetch → es_envelope_open: decrypt → decompress → upcast → decode
 *
 * It works on plain bytes and header values and never sees nats.c messages:
 * the caller sets the headers es_envelope_seal returns on the message it
 * publishes, and hands es_envelope_open the values of the headers named in
 * es_envelope_header_names that it finds on a message it reads. The header
 * formats, the ciphertext layout and the buckets are specified in
 * docs/envelope.md. */
#ifndef ES_ENVELOPE_H
#define ES_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/buf.h>
#include <es/keyring.h>
#include <es/status.h>
#include <es/upcast.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The extension headers (exact, case-sensitive names). */
#define ES_HDR_COMPRESSION       "Es-Compression" /* "zstd" */
#define ES_HDR_DICT              "Es-Dict"        /* zstd dictionary id, decimal */
#define ES_HDR_KEY               "Es-Key"         /* data key id, 32 lower-case hex digits */
#define ES_HDR_SCHEMA            "Es-Schema"      /* schema version, decimal, >= 1 */
#define ES_ENVELOPE_HEADER_COUNT 4
/* The four names above, for a read path that looks each one up. */
ES_API extern const char *const es_envelope_header_names[ES_ENVELOPE_HEADER_COUNT];

/* One header: name and NUL-terminated value. */
typedef struct es_header {
    const char *name;
    const char *value;
} es_header;

/* Where zstd dictionaries come from, by id (an event store keeps them in its
 * KV bucket `ES_<store>_dicts`). get appends the dictionary stored under `id`
 * to `out`, or returns ES_ERR_NOT_FOUND; it is called at most once per id
 * and envelope, never from two threads at once. */
typedef struct es_dict_source {
    void *ctx;
    es_status (*get)(void *ctx, uint32_t id, es_buf *out);
} es_dict_source;

/* The event a payload belongs to, as the store's subject layout says: the
 * envelope binds the payload to `subject`, finds the data key by `entity`,
 * and picks upcasters by entity and event type. None of the strings need a
 * NUL at `..._len`; `subject` does. */
typedef struct es_envelope_event {
    const char *subject; /* the full subject the event is published on */
    const char *entity;  /* its entity (es/keyring.h: the data key's owner) */
    size_t entity_len;
    const char *entity_type;
    size_t entity_type_len;
    const char *event_type;
    size_t event_type_len;
} es_envelope_event;

#define ES_ENVELOPE_DEFAULT_COMPRESS_MIN 1024
#define ES_ENVELOPE_DEFAULT_MAX_PAYLOAD  ((size_t)8 << 20)

/* A store's envelope settings. Zero-initialise, then set what you need. */
typedef struct es_envelope_options {
    /* Compression (writes only: reads always decompress what is marked). */
    bool compress;          /* zstd-compress payloads of at least compress_min bytes */
    size_t compress_min;    /* 0: ES_ENVELOPE_DEFAULT_COMPRESS_MIN */
    int compress_level;     /* 1..19; 0: zstd's default (3) */
    uint32_t compress_dict; /* 0: none; else the id of a dictionary of
                               `dicts`, used on writes */
    const es_dict_source *dicts; /* copied; NULL: no dictionaries (an event
                               compressed with one reads ES_ERR_NOT_FOUND) */
    /* The largest plaintext: writes above it are ES_ERR_TOO_LARGE, reads that
     * would decompress or upcast beyond it are ES_ERR_LIMIT. Also what bounds
     * the memory a hostile compressed payload can claim.
     * 0: ES_ENVELOPE_DEFAULT_MAX_PAYLOAD. */
    size_t max_payload;

    /* Encryption. */
    bool encrypt;          /* the store encrypts: every write is encrypted */
    es_keyring *keyring;   /* borrowed, outlives the envelope; NULL: no
                              master key (encrypted data reads ES_ERR_NO_KEY) */
    bool accept_plaintext; /* encrypting store only: read unencrypted events
                              (written before encryption was turned on)
                              instead of refusing them with ES_ERR_CRYPTO */

    /* Upcasting on read; borrowed, outlives the envelope; NULL: none. */
    const es_upcasters *upcasters;
} es_envelope_options;

typedef struct es_envelope es_envelope;

/* An envelope with these settings; with compress_dict set, that dictionary
 * is loaded now (ES_ERR_NOT_FOUND when absent). The caller owns *out.
 * Thread-safe once created: seal and open may run on many threads at once. */
ES_API es_status es_envelope_create(const es_envelope_options *opt, es_envelope **out);

/* Accepts NULL. Does not touch the borrowed keyring and upcasters. */
ES_API void es_envelope_destroy(es_envelope *env);

/* What to publish. Zero-initialise (ES_SEALED_INIT) once, reuse across
 * calls (its buffers are kept), free with es_sealed_free. Do not copy it:
 * its pointers point into itself. */
typedef struct es_sealed {
    const uint8_t *data; /* the payload: points into the caller's plaintext
                            (nothing to do) or into this struct */
    size_t len;
    es_header headers[ES_ENVELOPE_HEADER_COUNT]; /* Es- headers to set; names
                             are static, values point into this struct */
    size_t n_headers;
    /* private */
    es_buf buf_[2];
    char kid_[33], dict_[11], schema_[11];
} es_sealed;
#define ES_SEALED_INIT                                                                             \
    {                                                                                              \
        0                                                                                          \
    }
ES_API void es_sealed_free(es_sealed *s);

/* Seals one event's encoded bytes for `ev` and `event_id` (its Nats-Msg-Id,
 * fixed before sealing; to retry a publish, resend the same sealed bytes). `schema`: 0 writes no
 * Es-Schema (the event reads as version 1), else Es-Schema: schema.
 * Errors: ES_ERR_TOO_LARGE (len > max_payload), ES_ERR_NO_KEY (the store
 * encrypts, no keyring), ES_ERR_SHREDDED (the entity was shredded: nothing
 * may be written for it any more), KV errors while creating the entity's key.
 * On error *out holds no headers and no data. */
ES_API es_status es_envelope_seal(es_envelope *env, const es_envelope_event *ev, const char *event_id,
                           uint32_t schema, const uint8_t *plain, size_t len, es_sealed *out);

/* What a read gives back; same life cycle as es_sealed (ES_OPENED_INIT,
 * reuse, es_opened_free, never copy). */
typedef struct es_opened {
    const uint8_t *data; /* plaintext: points into the payload given or into this struct */
    size_t len;
    uint32_t schema;        /* version of `data`, after upcasting */
    uint32_t stored_schema; /* version on the wire (1 without Es-Schema) */
    /* private */
    es_buf buf_[2];
} es_opened;
#define ES_OPENED_INIT                                                                             \
    {                                                                                              \
        0                                                                                          \
    }
ES_API void es_opened_free(es_opened *o);

/* Opens one event `ev` read with id `event_id` (its Nats-Msg-Id;
 * NULL reads as ""), given the Es- headers found on it (any order, others
 * ignored; pass what es_envelope_header_names finds) and its payload.
 * Errors: ES_ERR_SHREDDED (the entity's key was erased), ES_ERR_CRYPTO
 * (tampered, moved to another subject, entity or id, wrong master key, or
 * an unencrypted event in a store that requires encryption), ES_ERR_NO_KEY
 * (encrypted and no keyring), ES_ERR_DECODE (malformed headers or
 * compressed data), ES_ERR_LIMIT (would exceed max_payload or the upcast
 * chain bound), ES_ERR_NOT_FOUND (the dictionary named by Es-Dict is not in
 * the store), KV errors, or an upcaster's status. */
ES_API es_status es_envelope_open(es_envelope *env, const es_envelope_event *ev, const char *event_id,
                           const es_header *headers, size_t n_headers, const uint8_t *payload,
                           size_t len, es_opened *out);

/* ---- zstd dictionaries --------------------------------------------------- */

/* Trains a zstd dictionary of at most `max_size` bytes (0: 64 KiB) from
 * `n_samples` samples laid end to end in `samples` with their sizes in
 * `sample_sizes` (zstd wants many: hundreds of typical events). The
 * dictionary is appended to `dict`; *dict_id gets its id. ES_ERR_INVALID when
 * zstd cannot train from what it was given. */
ES_API es_status es_dict_train(const uint8_t *samples, const size_t *sample_sizes, size_t n_samples,
                        size_t max_size, es_buf *dict, uint32_t *dict_id);

/* The id of the zstd dictionary `dict` (what an Es-Dict header names).
 * ES_ERR_INVALID when it is not a dictionary es accepts (8 bytes..512 KiB,
 * with an id). */
ES_API es_status es_dict_id(const uint8_t *dict, size_t len, uint32_t *dict_id);

#ifdef __cplusplus
}
#endif
#endif
