/* A JetStream stand-in on a fake_conn (fake_conn.h): one stream and what the
 * publisher and the engine's appends ask of it. It stores what is published
 * on the stream's subjects and acknowledges it as nats-server does:
 *
 *   - a single message (a reply, no Nats-Batch-Id) gets a PubAck
 *     {"stream":..,"seq":N}, or {"duplicate":true} with the original
 *     sequence when its Nats-Msg-Id was stored before;
 *   - an atomic batch (Nats-Batch-Id, Nats-Batch-Sequence 1..n, the last
 *     with Nats-Batch-Commit) gets an empty answer on its first message's
 *     reply and {"seq":last,"batch":id,"count":n} on its commit's, or
 *     err_code 10201 when one of its ids was stored before;
 *   - Nats-Expected-Last-Subject-Sequence (scoped by its -Subject companion)
 *     is checked before ids, against the stream as it was before the unit:
 *     err_code 10071 "wrong last sequence: N";
 *   - $JS.API.STREAM.INFO.<stream>, $JS.API.INFO and batched
 *     $JS.API.DIRECT.GET.<stream> requests (next_by_subj, seq or start_time,
 *     batch; messages with Nats-Subject/-Sequence/-Time-Stamp, then a
 *     "204 EOB" with Nats-Num-Pending, or a 404) are answered.
 *
 * The test scripts how the next units (a single message, or a whole batch)
 * are answered by pushing steps; a unit with no step left is acknowledged.
 * Thread-safe. Nothing here knows the engine's subject layout. */
#ifndef ES_TEST_FAKE_JS_H
#define ES_TEST_FAKE_JS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_conn.h"

typedef enum fake_do {
    FAKE_ACK,       /* store the unit, acknowledge it (what a unit gets by default) */
    FAKE_ANSWER,    /* store nothing, answer `json` instead (an error, a conflict...) */
    FAKE_NO_ANSWER, /* store the unit, lose its acknowledgement (a dropped answer) */
    FAKE_LOST,      /* lose the unit itself: nothing stored, nothing answered */
    FAKE_TWICE,     /* store, acknowledge now and again after delay_ms (a duplicated answer) */
    FAKE_LATER,     /* store, acknowledge after delay_ms, from the fake's timer thread */
    /* A batch refused at its start (too many batches in flight, ...): `json`
     * (NULL: a 503 "too many inflight batches" error) answers its first
     * message; nothing is stored and its commit is never answered. A single
     * message gets the same answer. */
    FAKE_REFUSE_START,
} fake_do;

typedef struct fake_step {
    fake_do what;
    const char *json; /* FAKE_ANSWER, FAKE_REFUSE_START (copied) */
    int64_t delay_ms; /* FAKE_TWICE, FAKE_LATER */
    /* The answer is handled by the publisher before it is done sending the
     * unit: FAKE_ACK and FAKE_ANSWER wait for it in the publish of the unit's
     * last message, FAKE_REFUSE_START in that of the batch's second one. */
    bool early;
} fake_step;

typedef struct fake_js fake_js;

/* A stream named `stream` over the subjects `subjects` (one pattern, e.g.
 * "orders.>"), installed as f's handler. */
fake_js *fake_js_create(fake_conn *f, const char *stream, const char *subjects);
/* Removes the handler and frees the stored messages. Accepts NULL. */
void fake_js_destroy(fake_js *js);

/* Appends a step to the script. */
void fake_js_push(fake_js *js, fake_step step);
/* The step with `what` alone, pushed `times` times. */
void fake_js_push_n(fake_js *js, fake_do what, unsigned times);

/* The next `times` API requests (info, direct gets) get no answer. */
void fake_js_lose_requests(fake_js *js, unsigned times);

typedef struct fake_js_stats {
    uint64_t units;     /* seen: single messages with a reply, and batches */
    uint64_t stored;    /* messages stored, also the last sequence (nothing is deleted) */
    size_t script_left; /* steps not yet used */
} fake_js_stats;

fake_js_stats fake_js_stats_now(fake_js *js);
/* Stored message with sequence `seq` (a copy the caller destroys) or NULL. */
natsMsg *fake_js_stored_msg(fake_js *js, uint64_t seq);

/* A PubAck's JSON, for FAKE_ANSWER: an error with `code`, `err_code` and
 * `description`, into out (at most size bytes). */
void fake_js_error_json(char *out, size_t size, int code, int err_code, const char *description);

#endif
