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

/* ---- a reader: the events after a sequence, a batch at a time --------------
 *
 * es_evolve reads through an ordered push consumer, which JetStream feeds as
 * far ahead of the reader as its flow-control window (megabytes): fine for
 * one read, too much for many slow ones at once. A reader pulls instead: each
 * es_reader_next asks for at most `max_events` events, by batched direct
 * gets (a confined user, by a consumer created per batch), so what it holds
 * is bounded by the caller, and between calls it holds nothing but its
 * position. Several filters are read one subject at a time and merged in
 * stream order, each event once: a call holds at most max_events events per
 * filter subject while it runs. Not thread-safe, except es_reader_add_filters
 * and es_reader_position. */
typedef struct es_reader es_reader;

/* The most events one es_reader_next hands over. */
#define ES_READER_BATCH_MAX 1024

typedef struct es_reader_options {
    uint64_t after_seq;       /* read the events stored after this sequence (0: from the start) */
    const es_filter *filters; /* 0..ES_FILTERS_MAX filters (0: every event); read, not kept */
    size_t filter_count;
} es_reader_options;

/* Defaults: every event, from the start. */
ES_API void es_reader_options_init(es_reader_options *opts);

/* A reader of `store` (which must outlive it); no request is made yet. The
 * caller owns *out (es_reader_destroy). ES_ERR_INVALID for a bad filter. */
ES_API es_status es_reader_open(es_store *store, const es_reader_options *opts, es_reader **out);

/* Hands cb the next matching events after the reader's position, in stream
 * order, at most max_events (1..ES_READER_BATCH_MAX) and none after
 * up_to_seq (0: no bound), and sets *count (may be NULL) to how many it
 * handed. The position then moves past them; when nothing matching is left
 * at or below up_to_seq it moves to up_to_seq itself (es_reader_position
 * >= up_to_seq: caught up). On a replicated store a read asks the leader
 * which events exist at or below up_to_seq, so a replica behind it never
 * makes a reader skip one. cb's contract is es_evolve's: a status other
 * than ES_OK stops the call, which returns it, and the refused event is
 * handed again first by the next call. */
ES_API es_status es_reader_next(es_reader *r, uint64_t up_to_seq, size_t max_events,
                                es_event_cb cb, void *closure, size_t *count);

/* Every matching event at or below this sequence has been handed (and
 * accepted): where to resume, where a live feed takes over. Thread-safe. */
ES_API uint64_t es_reader_position(const es_reader *r);

/* Widens the reader: it also reads the events `filters` match. Those
 * already behind its position and after `after_seq` are handed first by
 * the next es_reader_next — late, out of stream order, each once (an event
 * the reader's filters already matched is not handed again) — then the
 * reader goes on from its position with the wider set (es_watch_add_filters'
 * contract). Thread-safe: applied at the start of the next es_reader_next.
 * ES_ERR_LIMIT (nothing changes) past ES_FILTERS_MAX filter subjects. */
ES_API es_status es_reader_add_filters(es_reader *r, const es_filter *filters, size_t n,
                                       uint64_t after_seq);

/* Accepts NULL. */
ES_API void es_reader_destroy(es_reader *r);

/* The subject filter for `filter` in `store` ("$ES.bank.account.acc-1.*").
 * Exposed for tools that talk to JetStream directly. */
ES_API es_status es_filter_subject(const es_store *store, const es_filter *filter, char *out,
                            size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
