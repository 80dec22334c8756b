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

/* The most filters one read, watch or projection takes. JetStream sets no
 * count of its own on a consumer's filter subjects (only its API request's
 * size, the server's max payload, bounds the list). */
#define ES_FILTERS_MAX 16

/* Bounds: events with after_seq < seq <= up_to_seq (0: no upper bound). */
/* Bounds of a read (NULL options: the whole history). */
typedef struct es_read_options {
    uint64_t after_seq; /* only events stored after this sequence (0: from the start) */
    uint64_t up_to_seq; /* ... and up to this one, inclusive (0: to the end) */
} es_read_options;

/* Defaults: no bounds. */
ES_API void es_read_options_init(es_read_options *opts);

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

/* es_evolve and es_load over several filters (filter_count 0..ES_FILTERS_MAX;
 * 0: every event): the events matching any of them, in stream order, each
 * once even when filters overlap (a filter within another is dropped before
 * the server sees the list). Several filters make one multi-filter consumer
 * (nats-server >= 2.10). es_load_filters needs an entity type and id in
 * every filter; loading several entities takes one round trip per 256
 * events when the filters come down to one subject, else it reads through
 * a multi-filter consumer, as es_evolve does (a direct get takes one
 * subject). ES_ERR_INVALID names the first filter at fault. `filters` is
 * borrowed for the call. */
ES_API es_status es_evolve_filters(es_store *store, const es_filter *filters, size_t filter_count,
                                   const es_read_options *opts, es_event_cb cb, void *closure,
                                   uint64_t *last_seq);
ES_API es_status es_load_filters(es_store *store, const es_filter *filters, size_t filter_count,
                                 const es_read_options *opts, es_event_cb cb, void *closure,
                                 uint64_t *last_seq);

/* The subject filter for `filter` in `store` ("$ES.bank.account.acc-1.*").
 * Exposed for tools that talk to JetStream directly. */
ES_API es_status es_filter_subject(const es_store *store, const es_filter *filter, char *out,
                            size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
