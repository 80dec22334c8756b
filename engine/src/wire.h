/* The wire layout of a store (private): the ONE owner of its stream name,
 * its subjects ("$ES.<store>.[<tenant>.]<type>.<id-token>.<event>") and its
 * KV bucket names ("ES_<store>_<kind>"). docs/wire-format.md is the
 * contract; nothing else in the library builds or parses these. */
#ifndef ES_WIRE_H
#define ES_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <es/envelope.h>
#include <es/event.h>
#include <es/names.h>
#include <es/subject.h>

#include "transport/kv.h"

typedef struct es_store es_store;

/* ---- the stream ------------------------------------------------------------ */

/* "ES_<store>", with its NUL. */
#define ES_STREAM_NAME_MAX (3 + ES_STORE_NAME_MAX + 1)
void esi_wire_stream_name(const char *store, char out[ES_STREAM_NAME_MAX]);

/* What a store's stream holds: "$ES.<store>.>", with its NUL. */
#define ES_STORE_SUBJECTS_MAX (4 + ES_STORE_NAME_MAX + 3)
void esi_wire_store_subjects(const char *store, char out[ES_STORE_SUBJECTS_MAX]);

/* Writes "$ES.<store>" (no NUL) at p and returns the end. */
char *esi_wire_put_store_prefix(char *p, const char *store);

/* What every store's stream holds some of: "$ES.>". */
const char *esi_wire_all_stores_subjects(void);

/* The store whose stream is `stream` ("ES_<store>" with a valid store
 * name) into `out`; false for any other stream name. */
bool esi_wire_store_of_stream(const char *stream, char out[ES_STORE_NAME_MAX + 1]);

/* ---- buckets ---------------------------------------------------------------- */

typedef enum esi_bucket_kind {
    ES_BUCKET_KEYS,        /* the envelope's wrapped data keys */
    ES_BUCKET_DICTS,       /* the envelope's zstd dictionaries */
    ES_BUCKET_CHECKPOINTS, /* es/checkpoint.h */
    ES_BUCKET_SNAPSHOTS,   /* es/snapshot.h */
    ES_BUCKET_REPOS,       /* es_checkpoints_open_bucket(ES_CHECKPOINTS_REPOS): per-repository state */
    ES_BUCKET_IDENTITY,    /* es_checkpoints_open_bucket(ES_CHECKPOINTS_IDENTITY): cached identities */
    ES_BUCKET_TRACKED,     /* es_checkpoints_open_bucket(ES_CHECKPOINTS_TRACKED): tracked sources */
    ES_BUCKET_TYPES,       /* es/entity_types.h: the entity types that have events */
    ES_BUCKET_DEAD_LETTERS, /* es_checkpoints_open_bucket(ES_CHECKPOINTS_DEAD_LETTERS): given up */
} esi_bucket_kind;
#define ES_BUCKET_KINDS 9 /* every kind above: what es_store_delete removes */

/* What a kind of bucket keeps, its name's suffix ("keys"). */
const char *esi_bucket_kind_name(esi_bucket_kind kind);

/* "ES_<store>_<kind>"; ES_ERR_INVALID for a bad store name. */
es_status esi_bucket_name(const char *store, esi_bucket_kind kind, char out[ESI_KV_BUCKET_MAX]);

/* ---- event subjects --------------------------------------------------------- */

/* "$ES." store "." tenant "." type "." id-token "." event, with room to spare:
 * at most 3,685 bytes, which leaves a publish's reply inbox and sizes room in
 * nats-server's default 4096-byte control line. */
#define ES_SUBJECT_MAX                                                                             \
    (4 + ES_STORE_NAME_MAX + 1 + 2 * ES_NAME_MAX + ES_ENTITY_TYPE_MAX + 3 + ES_ID_TOKEN_MAX + 16)

typedef struct esi_subject {
    char full[ES_SUBJECT_MAX];   /* the event's subject */
    char entity[ES_SUBJECT_MAX]; /* every event of its entity: ...<type>.<id-token>.* */
    const char *type_and_id;     /* points into full: "<type>.<id-token>.<event>" */
    size_t type_and_id_len;      /* ... up to the id token's end (Rita-Entity) */
    es_envelope_event env;       /* the envelope's view of it, pointing into full */
} esi_subject;

/* The subject of an (already validated) event of `st`. */
es_status esi_subject_for(const es_store *st, const es_event_spec *e, esi_subject *out);

/* The entity id's own rules (1..ES_ID_MAX bytes): any such id escapes into
 * ES_ID_TOKEN_MAX bytes, so checking needs no escaping. */
es_status esi_id_check(const void *id, size_t len);

/* Every check an append makes on one event (names, tenant, id, sizes,
 * metadata, expectation); `index` is its place in the batch, for messages. */
es_status esi_event_spec_check(const es_store *st, const es_event_spec *e, size_t index);

/* Parts of a stored event's subject, pointing into a copy the caller owns. */
typedef struct esi_subject_parts {
    const char *tenant; /* NULL without tenancy */
    const char *type;
    const char *id_token;
    const char *event;
} esi_subject_parts;

/* Splits a copy of an event subject of `store` (modified in place: dots
 * become NULs), with or without tenancy. ES_ERR_PROTOCOL when it is not an
 * event subject of that store. */
es_status esi_subject_split(char *copy, const char *store, bool tenancy, esi_subject_parts *out);

/* The same for a subject within the store, without its "$ES.<store>."
 * prefix: "[<tenant>.]<type>.<id-token>.<event>". */
es_status esi_subject_split_local(char *copy, bool tenancy, esi_subject_parts *out);

/* The length of the store's prefix "$ES.<store>." that esi_subject_split
 * expects: what a subject within the store follows. */
size_t esi_wire_store_prefix_len(const char *store);

/* Checks split parts as an event's must be (names, an escaped id), saying
 * which part is wrong (ES_ERR_INVALID); `id` (ES_ID_MAX + 1 bytes, may be
 * NULL) gets the unescaped id and *id_len (may be NULL) its length. */
es_status esi_subject_parts_check(const esi_subject_parts *p, char *id, size_t *id_len);

/* The envelope's view of a stored event: `subject` itself, and the parts
 * esi_subject_split made of `copy`, a copy of it (offsets agree). */
void esi_subject_envelope_event(const char *subject, const char *copy, const esi_subject_parts *p,
                                es_envelope_event *out);

#endif
