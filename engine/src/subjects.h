/* Building and parsing event subjects (private). */
#ifndef ES_SUBJECTS_H
#define ES_SUBJECTS_H

#include <stddef.h>

#include <es/envelope.h>
#include <es/event.h>
#include <es/subject.h>

typedef struct es_store es_store;

/* "$ES." store "." tenant "." type "." id-token "." event, with room to spare. */
#define ES_SUBJECT_MAX (4 + 32 + 1 + 3 * ES_NAME_MAX + 3 + ES_ID_TOKEN_MAX + 16)

typedef struct es_subject {
    char full[ES_SUBJECT_MAX];   /* the event's subject */
    char entity[ES_SUBJECT_MAX]; /* every event of its entity: ...<type>.<id-token>.* */
    const char *type_and_id;     /* points into full: "<type>.<id-token>.<event>" */
    size_t type_and_id_len;      /* ... up to the id token's end (Rita-Entity) */
    es_envelope_event env;       /* the envelope's view of it, pointing into full */
} es_subject;

/* The subject of an (already validated) event of `st`. */
es_status es_subject_for(const es_store *st, const es_event_spec *e, es_subject *out);

/* The entity id's own rules (1..ES_ID_MAX bytes): any such id escapes into
 * ES_ID_TOKEN_MAX bytes, so checking needs no escaping. */
es_status es_id_check(const void *id, size_t len);

/* Every check an append makes on one event (names, tenant, id, sizes,
 * metadata, expectation); `index` is its place in the batch, for messages. */
es_status es_event_spec_check(const es_store *st, const es_event_spec *e, size_t index);

/* Parts of a stored event's subject, pointing into a copy the caller owns. */
typedef struct es_subject_parts {
    const char *tenant; /* NULL without tenancy */
    const char *type;
    const char *id_token;
    const char *event;
} es_subject_parts;

/* Splits a copy of `subject` (modified in place: dots become NULs) of a store
 * with or without tenancy. ES_ERR_PROTOCOL when it does not have the shape. */
es_status es_subject_split(char *copy, size_t prefix_len, bool tenancy, es_subject_parts *out);

/* The envelope's view of a stored event: `subject` itself, and the parts
 * es_subject_split made of `copy`, a copy of it (offsets agree). */
void es_subject_envelope_event(const char *subject, const char *copy, const es_subject_parts *p,
                               es_envelope_event *out);

#endif
