/* An ordered parallel decoder. Frames are copied into a bounded ring of
 * slots; worker threads, each with its own es_atp_decoder (the options'
 * filter and identity are shared: both must be safe to use from several
 * threads), decode, verify and map them into the slot's own arena; the
 * caller takes the decoded frames back strictly in the order it handed them
 * over. A frame still being decoded holds the ones behind it (order is the
 * contract: per-repository chain state must see frames in source order).
 *
 * One thread — the caller's — submits, takes and releases; only the decoding
 * happens elsewhere. With threads = 0 there is no thread at all: a frame is
 * decoded inside ingest_workers_submit, on the caller's thread.
 *
 * Frames depend on each other in one way the decoder sees: an #identity
 * (key rotation) changes the key later commits of its repository verify
 * with. A frame a worker refused for its signature or identity is decoded
 * again on the caller's thread when it becomes the oldest (every frame
 * before it decoded), so that it is refused only when it would be in order.
 *
 * Memory: `slots` frame copies and arenas. A slot keeps its buffers for the
 * next frame unless they grew past a small bound (SLOT_KEEP_BYTES in
 * workers.c), so what stays allocated between frames is bounded by
 * slots × that bound, whatever sizes the frames had. */
#ifndef ES_INGEST_WORKERS_H
#define ES_INGEST_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto.h>

typedef struct ingest_workers ingest_workers;

/* How a frame is decoded: es_atp_decode, or a stand-in for tests. */
typedef es_status (*ingest_decode_fn)(es_atp_decoder *d, const uint8_t *frame, size_t len,
                                      es_arena *arena, es_atp_batch *out);

typedef struct ingest_workers_options {
    es_atp_options decode; /* every worker's decoder (the filter and identity are shared) */
    size_t threads;        /* worker threads; 0: decode on the caller's thread */
    size_t slots;          /* frames held at most, submitted and not yet released (>= 1) */
    size_t arena_limit;    /* each slot's arena (0: the arena's default) */
    ingest_decode_fn decode_fn; /* NULL: es_atp_decode */
} ingest_workers_options;

void ingest_workers_options_init(ingest_workers_options *o);

/* One decoded frame, as es_atp_decode left it. Valid until
 * ingest_workers_release; `batch` points into the slot's frame copy and arena. */
typedef struct ingest_decoded {
    es_status status;   /* es_atp_decode's result */
    es_atp_batch batch; /* batch.error says why, when status is not ES_OK */
    char error[512];    /* the decoding thread's es_last_error() when status is not ES_OK */
    es_atp_stats delta; /* what this frame added to its decoder's counters */
    const uint8_t *frame; /* the frame as submitted (the slot's copy), frame_len bytes */
    size_t frame_len;
} ingest_decoded;

/* Starts the threads. The caller owns *out (ingest_workers_destroy). */
es_status ingest_workers_create(const ingest_workers_options *o, ingest_workers **out);
/* Stops the threads (a frame being decoded is finished, queued ones are
 * dropped) and joins them. Accepts NULL. */
void ingest_workers_destroy(ingest_workers *w);

/* Copies the frame into the next free slot and queues it. ES_ERR_AGAIN when
 * every slot is in use (take and release the oldest first), ES_ERR_NOMEM. */
es_status ingest_workers_submit(ingest_workers *w, const uint8_t *frame, size_t len);

/* The oldest frame submitted and not released, once decoded; waits up to
 * timeout_ms for it (0: no wait, < 0: until it is). NULL when none is held,
 * or it is not decoded yet. */
const ingest_decoded *ingest_workers_head(ingest_workers *w, int64_t timeout_ms);
/* Waits up to timeout_ms (0: no wait, < 0: no limit) until the `count`
 * oldest frames held (at most all) are decoded; whether they are. Waiting
 * for several at once saves wake-ups: a caller whose ring is full does
 * better to wait for half of it than for each frame. */
bool ingest_workers_wait(ingest_workers *w, size_t count, int64_t timeout_ms);
/* Decodes a frame now, on the caller's thread, with the caller's decoder
 * (the options the workers have), into `arena`: a frame decoded before and
 * kept aside (a live frame held while its repository is resynced) decoded
 * again when its turn comes. */
es_status ingest_workers_decode_here(ingest_workers *w, const uint8_t *frame, size_t len,
                                     es_arena *arena, es_atp_batch *out);

/* Frees the oldest slot for a new frame. */
void ingest_workers_release(ingest_workers *w);

/* Frames held (submitted, not released) and the bytes of their copies. */
size_t ingest_workers_held(const ingest_workers *w);
size_t ingest_workers_bytes(const ingest_workers *w);

/* Calls fn(ctx) on a worker thread each time the oldest frame held is
 * decoded (NULL: none), under the ring's lock: keep it short, thread-safe,
 * and free of calls into this ring. Once this returns, the old fn is never
 * called again. */
void ingest_workers_on_ready(ingest_workers *w, void (*fn)(void *ctx), void *ctx);

/* sum += d, field by field (counters of several decoders into one). */
void ingest_stats_add(es_atp_stats *sum, const es_atp_stats *d);

/* --verify-threads' default: the online CPUs, at least 1. */
size_t ingest_workers_default_threads(void);

#endif
