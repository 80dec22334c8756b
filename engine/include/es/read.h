/* Reading events back: evolve (replay everything matching a filter, in stream
 * order, then return) and load (one entity, fast). */
#ifndef ES_READ_H
#define ES_READ_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/event.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which events: each field NULL means "any". entity_id is raw bytes
 * (escaped into the subject filter by the library). */
typedef struct es_filter {
    const char *tenant; /* only with tenancy; NULL: every tenant */
    const char *entity_type;
    const char *entity_id;
    size_t entity_id_len; /* 0: entity_id is NUL-terminated */
    const char *event_type;
} es_filter;

ES_API void es_filter_init(es_filter *f);

/* Bounds: events with after_seq < seq <= up_to_seq (0: no upper bound). */
typedef struct es_read_options {
    uint64_t after_seq;
    uint64_t up_to_seq;
} es_read_options;

/* Called for each event in order. Return ES_OK to go on; anything else stops
 * the read, which then returns that status. */
typedef es_status (*es_event_cb)(const es_event *ev, void *closure);

/* Replays every event matching `filter` (NULL: all) within the bounds, in
 * stream order, through an ordered consumer, and returns once it has caught
 * up with what was stored when it started (by the consumer's pending count,
 * never by a timeout). Thread-safe; cb runs on the calling thread.
 *
 * *last_seq (may be NULL) gets the sequence of the last event cb ACCEPTED
 * (returned ES_OK for), 0 if none: an event cb refused is not counted. That
 * is the position to resume from: reading again with after_seq = *last_seq
 * hands the refused event over first, whatever status stopped the read, so
 * nothing is skipped (and what was accepted is not handed over twice). After
 * a read that ran to its end it is the last matching event. */
ES_API es_status es_evolve(es_store *store, const es_filter *filter, const es_read_options *opts,
                    es_event_cb cb, void *closure, uint64_t *last_seq);

/* Loads one entity (filter must name entity_type and entity_id; event_type
 * may narrow it) with batched direct gets: one round trip for entities of up
 * to 256 events, no consumer. Same contract as es_evolve, *last_seq
 * included (the last event cb accepted). */
ES_API es_status es_load(es_store *store, const es_filter *filter, const es_read_options *opts,
                  es_event_cb cb, void *closure, uint64_t *last_seq);

/* The subject filter for `filter` in `store` ("$ES.bank.account.acc-1.*").
 * Exposed for tools that talk to JetStream directly. */
ES_API es_status es_filter_subject(const es_store *store, const es_filter *filter, char *out,
                            size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
