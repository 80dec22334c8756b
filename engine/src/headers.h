/* Header names of the wire format (private; docs/wire-format.md). */
#ifndef ES_HEADERS_H
#define ES_HEADERS_H

#include <nats/nats.h>

#include <es/envelope.h>
#include <es/event.h>

#include "wire.h"

#define ES_HDR_MSG_ID                       "Nats-Msg-Id"
#define ES_HDR_EXPECTED_STREAM              "Nats-Expected-Stream"
#define ES_HDR_EXPECTED_SUBJECT_SEQ         "Nats-Expected-Last-Subject-Sequence"
#define ES_HDR_EXPECTED_SUBJECT_SEQ_SUBJECT "Nats-Expected-Last-Subject-Sequence-Subject"
#define ES_HDR_BATCH_ID                     "Nats-Batch-Id"
#define ES_HDR_BATCH_SEQ                    "Nats-Batch-Sequence"
#define ES_HDR_BATCH_COMMIT                 "Nats-Batch-Commit"
#define ES_HDR_ENTITY                       "Rita-Entity"
#define ES_HDR_TYPE                         "Rita-Type"
#define ES_HDR_TIME                         "Rita-Time"
#define ES_HDR_CODEC                        "Rita-Codec"
#define ES_HDR_META_PREFIX                  "Rita-Meta-"

/* True for JetStream's control headers (Nats-* other than Nats-Msg-Id, any
 * case): they tell the server how to store a message (expectations,
 * batches, rollups, TTLs) and are not part of the event. */
bool esi_header_is_control(const char *name);

/* The subject filter an event's expectation is checked against (the
 * Nats-Expected-Last-Subject-Sequence-Subject header): its entity's events
 * (`subj`, built from `e`), or those its expect_filter matches. */
es_status esi_expect_subject(const es_store *st, const es_event_spec *e, const esi_subject *subj,
                             char out[ES_SUBJECT_MAX]);

/* Sets every header of one event on `m` (its subject was built from `e`):
 * its id, Rita headers, expectation, and the Es- headers of `sealed` (NULL
 * when the store has no envelope). */
es_status esi_headers_set(const es_store *st, const es_event_spec *e, const char *event_id,
                          const esi_subject *subj, const es_sealed *sealed, natsMsg *m);

#endif
