/* Events: what an append takes (es_event_spec, filled in by the caller) and
 * what a read hands to callbacks (es_event, a read-only view). */
#ifndef ES_EVENT_H
#define ES_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/envelope.h>
#include <es/status.h>
#include <es/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- writing ---------------------------------------------------------- */

/* One metadata entry, sent as the header Rita-Meta-<key>. Keys are names
 * ([A-Za-z0-9_-]+); values are single-line text (no CR or LF). */
typedef struct es_meta {
    const char *key;
    const char *value;
} es_meta;

/* Optimistic concurrency for one event: about its entity's events, or
 * those expect_filter matches. */
typedef enum es_expect {
    ES_EXPECT_ANY = 0, /* no check */
    ES_EXPECT_NEW,     /* the entity must have no events yet */
    ES_EXPECT_SEQ,     /* the entity's last event must be at stream sequence expect_seq */
    ES_EXPECT_EXISTS,  /* the entity must have at least one event (synchronous appends
                          only: es_append, es_append_batch) */
} es_expect;

struct es_filter; /* es/read.h */

/* An event to append. Only entity_type, entity_id and event_type are required;
 * everything is borrowed for the duration of the call. */
typedef struct es_event_spec {
    const char *tenant;      /* required iff the store uses tenancy */
    const char *entity_type; /* [A-Za-z0-9_-]+ */
    const char *entity_id;   /* any bytes (escaped into the subject) */
    size_t entity_id_len;    /* 0: entity_id is NUL-terminated */
    const char *event_type;  /* [A-Za-z0-9_-]+ */
    const char *event_id;    /* Nats-Msg-Id; NULL: a unique id is generated */
    const void *data;        /* the encoded payload (may be NULL when data_len is 0) */
    size_t data_len;
    const char *codec; /* Rita-Codec; NULL: "binary" */
    int64_t time_ns;   /* Rita-Time, Unix ns; 0: now */
    const es_meta *meta;
    size_t meta_count;
    es_expect expect;
    uint64_t expect_seq; /* for ES_EXPECT_SEQ */
    uint32_t schema;     /* Es-Schema version of data; 0: none (reads as 1) */
    /* What `expect` is about. NULL: the event's entity, every event type of
     * it. Else the events this filter matches (es/read.h; NULL fields match
     * anything, a NULL tenant every tenant): a consistency boundary wider
     * than one entity (every account, one tenant) or narrower (one event
     * type), as Rita's Expect{Pattern}. ES_EXPECT_NEW: none matches yet. */
    const struct es_filter *expect_filter;
} es_event_spec;

/* Zeroes the spec: no tenant, binary codec, time now, expect any. */
ES_API void es_event_spec_init(es_event_spec *spec);

/* ---- reading ---------------------------------------------------------- */

/* An event read back from the store. Handed to callbacks; it and every string
 * it returns are valid only during the callback. Each accessor is named
 * after the es_event_spec field it gives back (event_type ->
 * es_event_event_type), so that writing and reading say the same thing. */
typedef struct es_event es_event;

ES_API uint64_t es_event_seq(const es_event *ev);
ES_API const char *es_event_subject(const es_event *ev);
ES_API const char *es_event_tenant(const es_event *ev); /* NULL without tenancy */
ES_API const char *es_event_entity_type(const es_event *ev);
/* The entity id, unescaped; NUL-terminated, and *len (may be NULL) gets its
 * length, since an id may contain NUL bytes. */
ES_API const char *es_event_entity_id(const es_event *ev, size_t *len);
ES_API const char *es_event_event_type(const es_event *ev); /* the event type */
ES_API const char *es_event_event_id(const es_event *ev);   /* Nats-Msg-Id, or "" */
ES_API const char *es_event_codec(const es_event *ev); /* Rita-Codec, or "binary" */
ES_API const char *es_event_time(const es_event *ev);  /* Rita-Time text, or "" */
ES_API int64_t es_event_time_ns(const es_event *ev);   /* Rita-Time as Unix ns, or 0 */
ES_API int64_t es_event_stored_ns(const es_event *ev); /* when the server stored it */
/* The value of Rita-Meta-<key>, or NULL. */
ES_API const char *es_event_meta(const es_event *ev, const char *key);
/* Metadata entries in header order: i in [0, es_event_meta_count). */
ES_API size_t es_event_meta_count(const es_event *ev);
ES_API void es_event_meta_at(const es_event *ev, size_t i, const char **key, const char **value);
/* Any header, e.g. "Es-Schema", or NULL. */
ES_API const char *es_event_header(const es_event *ev, const char *name);
/* The payload: the codec's bytes, after the envelope is opened (decrypted,
 * decompressed, upcast) when the store uses one. ES_OK, or why it cannot be
 * read (ES_ERR_SHREDDED, ES_ERR_CRYPTO, ES_ERR_NO_KEY, ES_ERR_DECODE...):
 * metadata stays readable either way, and *data is then NULL. */
ES_API es_status es_event_data(const es_event *ev, const void **data, size_t *len);
/* es_event_data decoded by the codec its Rita-Codec header names (see
 * es/codec.h), into `arena`: ES_ERR_NO_CODEC for a codec nobody registered,
 * ES_ERR_DECODE for bytes that codec refuses, or es_event_data's status. */
ES_API es_status es_event_decode(const es_event *ev, es_arena *arena, es_value **out);
/* The schema version of es_event_data's bytes, after upcasting (1 when the
 * event has no Es-Schema). */
ES_API uint32_t es_event_schema(const es_event *ev);

/* ---- as stored --------------------------------------------------------- */

/* An event in the form a store keeps it, for backups and copies between
 * stores: what es_event_raw hands out and es_import_async (es/import.h)
 * takes. */
typedef struct es_raw_event {
    /* The subject within the store, without "$ES.<store>.":
     * "[<tenant>.]<type>.<id-token>.<event>" (the id escaped, es/subject.h). */
    const char *subject;
    /* Every header of the event, names possibly repeated: the values of one
     * name are adjacent and in order, the names in no particular order.
     * JetStream's control headers (Nats-* other than Nats-Msg-Id, the event
     * id) are not part of an event. */
    const es_header *headers;
    size_t header_count;
    /* The payload exactly as stored: still compressed or encrypted when the
     * store seals events (es_event_data opens it). */
    const void *payload;
    size_t payload_len;
} es_raw_event;

/* Fills *out with the event as stored. Everything it points to belongs to
 * the event: valid during the callback only. ES_ERR_INVALID for NULLs;
 * ES_ERR_PROTOCOL for a message that is not an event of the store. */
ES_API es_status es_event_raw(const es_event *ev, es_raw_event *out);

#ifdef __cplusplus
}
#endif
#endif
