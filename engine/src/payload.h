/* Payload validation before an append (private). */
#ifndef ES_PAYLOAD_H
#define ES_PAYLOAD_H

#include <stddef.h>

#include <es/event.h>

typedef struct es_store es_store;

/* Refuses, before anything is sent, an event no reader could decode: a
 * codec name nobody registered (ES_ERR_NO_CODEC) or, unless the store
 * handle skips payload validation, data its codec does not decode
 * (ES_ERR_DECODE); the text names the event's index in the batch. */
es_status esi_payloads_check(const es_store *st, const es_event_spec *events, size_t n);

#endif
