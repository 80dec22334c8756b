/* The in-flight window of the ingester: every frame taken from the source
 * gets an entry, in source order, until it and every frame before it are
 * settled. It is where the guarantees live:
 *
 *  - never loss: an entry keeps a copy of its frame until the store
 *    acknowledged its batch; a failed or unanswered append is sent again
 *    (same events, same ids: the store deduplicates) after a backoff;
 *  - per-repository order: a frame is not sent while an earlier frame of the
 *    same DID is unacknowledged, so a retry can never land after a later
 *    commit of the same repository, whatever fails;
 *  - the cursor: the highest seq such that it and every earlier frame are
 *    settled (acknowledgements complete out of order; the watermark only
 *    moves over a settled prefix);
 *  - bounded memory: at most `entries` frames, `max_bytes` bytes of frame
 *    copies (one larger frame is let in when nothing else is held),
 *    `max_units` appends and `max_batches` atomic batches in flight.
 *
 * One thread (the source's) calls everything except ingest_window_acked,
 * which the append callbacks call from the library's threads. */
#ifndef ES_INGEST_WINDOW_H
#define ES_INGEST_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto.h>
#include <es/status.h>

typedef struct ingest_window ingest_window;
typedef struct ingest_entry ingest_entry;

typedef struct ingest_window_limits {
    size_t entries;       /* frames held until settled (default 4096) */
    size_t max_units;     /* appends in flight (default 256) */
    size_t max_batches;   /* atomic batches (multi-event appends) in flight (default 32) */
    size_t max_bytes;     /* bytes of frame copies held for retries (default 8 MiB) */
    int64_t retry_min_ms; /* first retry delay (default 100), doubled per attempt ... */
    int64_t retry_max_ms; /* ... up to this (default 5000), with +-25% jitter */
} ingest_window_limits;

void ingest_window_limits_init(ingest_window_limits *l);

/* Sends one append: `events[0..n)` as one atomic batch. It must eventually
 * call ingest_window_acked(token, ...) exactly once when it returns ES_OK,
 * and never when it returns anything else (nothing was sent). */
typedef es_status (*ingest_send_fn)(void *ctx, const es_event_spec *events, size_t n,
                                    ingest_entry *token);

/* `decoder_opts` must be the options the source's decoder uses (frames kept
 * for a retry are decoded again with them). The caller owns *out. */
es_status ingest_window_create(const ingest_window_limits *limits,
                               const es_atp_options *decoder_opts, ingest_send_fn send,
                               void *send_ctx, ingest_window **out);
/* Accepts NULL. Call only when nothing is in flight (ingest_window_idle, or
 * after the store handle that calls back is destroyed). */
void ingest_window_destroy(ingest_window *w);

/* Called when an entry is settled, or fails (from the source's thread, during
 * ingest_window_pump or ingest_window_add), for logs and statistics. */
typedef struct ingest_outcome {
    const ingest_entry *entry;
    uint64_t seq; /* 0 when the frame had none */
    es_status status;
    const char *error; /* the store's text on failure */
    bool duplicate;    /* stored before (an idempotent re-append) */
    bool retrying;     /* a failure that will be retried */
    unsigned attempts;
    int64_t retry_in_ms;
} ingest_outcome;
typedef void (*ingest_outcome_fn)(void *ctx, const ingest_outcome *o);
void ingest_window_on_outcome(ingest_window *w, ingest_outcome_fn fn, void *ctx);

/* Called from ingest_window_acked (any thread) when the source's thread may
 * have work: lets an event loop wake up. */
void ingest_window_on_wake(ingest_window *w, void (*fn)(void *ctx), void *ctx);

/* Whether one more frame can be added now. */
bool ingest_window_room(const ingest_window *w);

/* Takes one decoded frame (decode_status: what es_atp_decode returned; a
 * refused frame, an #info or a filtered frame settles at once but still
 * counts for the cursor). Its events are sent at once when allowed, else
 * later by ingest_window_pump. Call only when ingest_window_room(). */
es_status ingest_window_add(ingest_window *w, es_status decode_status, const es_atp_batch *b,
                            const uint8_t *frame, size_t len);

/* Takes the acknowledgements that arrived, schedules retries, sends what may
 * be sent, moves the cursor. Never blocks on the network except inside the
 * send function. */
void ingest_window_pump(ingest_window *w);

/* Waits up to timeout_ms for an acknowledgement (or a wake-up). */
void ingest_window_wait(ingest_window *w, int64_t timeout_ms);

/* For the send callback: the outcome of one append (any thread). `error` is
 * copied. */
void ingest_window_acked(ingest_entry *token, es_status s, bool duplicate, const char *error);

/* Nothing held: every frame added is settled. */
bool ingest_window_idle(const ingest_window *w);

typedef struct ingest_window_stats {
    uint64_t frames;                  /* frames added */
    uint64_t settled;                 /* frames settled (retired in order) */
    uint64_t appends;                 /* appends acknowledged */
    uint64_t events;                  /* events acknowledged (stored or found stored) */
    uint64_t duplicates;              /* appends that found their events stored before */
    uint64_t retries;                 /* appends sent again */
    uint64_t failures[ES_ERR_IO + 1]; /* failed appends by status */
    uint64_t dropped;                 /* frames the store refused for good (invalid, too large) */
    bool has_cursor;
    uint64_t cursor;      /* the watermark */
    int64_t last_time_ns; /* event time of the newest settled frame */
    size_t held, inflight, batches_inflight, queued;
    size_t bytes_held;
} ingest_window_stats;

void ingest_window_get_stats(const ingest_window *w, ingest_window_stats *out);

#endif
