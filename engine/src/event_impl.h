/* The read-side event (private): a view over one stored NATS message, parsed
 * lazily so callbacks pay only for what they look at. */
#ifndef ES_EVENT_IMPL_H
#define ES_EVENT_IMPL_H

#include <nats/nats.h>

#include <es/envelope.h>
#include <es/event.h>

#include "transport/pull.h"
#include "wire.h"

struct es_event {
    const es_store *st;
    natsMsg *msg;        /* borrowed */
    const char *subject; /* the stored subject (in msg) */
    uint64_t seq;
    int64_t stored_ns;
    const esi_pull *pull; /* borrowed: the projection's pull that delivered it, or NULL */
    /* lazily filled: */
    bool split_done;
    es_status split_status;
    esi_subject_parts parts;
    char split[ES_SUBJECT_MAX];
    bool id_done;
    char id[ES_ID_MAX + 1];
    size_t id_len;
    bool keys_done;
    const char **keys; /* header keys (owned, freed by esi_event_clear) */
    int nkeys;
    size_t nmeta;
    bool data_done; /* the envelope was opened (stores with one) */
    es_status data_status;
    es_opened opened; /* its buffers are kept across events */
    es_buf raw;       /* es_event_raw's headers (es_header), kept across events */
};

/* Points `ev` at `msg` (subject, seq and store time given by the caller,
 * who found them in the delivery or direct-get headers). */
void esi_event_wrap(es_event *ev, const es_store *st, natsMsg *msg, const char *subject,
                    uint64_t seq, int64_t stored_ns);
/* The parts of the event's subject, or NULL when it is not an event subject
 * of the store. */
const esi_subject_parts *esi_event_parts(const es_event *ev);
/* False when the subject is not an event subject of the store (a foreign
 * message published under $ES.<store>.>): readers skip those. */
bool esi_event_well_formed(const es_event *ev);
/* Forgets the message (keeping buffers for the next); `ev` can be wrapped again. */
void esi_event_clear(es_event *ev);
/* Frees everything; call once when done with `ev`. */
void esi_event_release(es_event *ev);

#endif
