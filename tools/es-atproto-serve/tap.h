/* Tap-style delivery: the seam between the dispatcher and its targets.
 *
 * The dispatcher reads the store (a durable JetStream consumer: the server
 * keeps what is acknowledged, so a killed instance resumes where it was),
 * turns each event into Tap's JSON and hands it to ONE target: the /channel
 * WebSocket clients (channel.c) or a webhook (webhook.c, --webhook-url).
 * It owns Tap's per-repo rule — a live event is a barrier: every earlier
 * event of its repo is done before it is sent, and it is done before any
 * later one is sent; historical events of a repo may be in flight together —
 * and the bound on events in flight. A target owns getting one event
 * acknowledged: a client's ack (redelivered to a client after a timeout) or
 * a 2xx (retried with backoff), until it gives up (dead letter).
 *
 * Threads: `send` is called from the dispatcher's thread; `done` may be
 * called from any thread, also from inside `send`. */
#ifndef SERVE_TAP_H
#define SERVE_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/es.h>

/* One event as a target sees it. Borrowed: valid during `send` only. */
typedef struct tap_event {
    uint64_t id;              /* Tap's event id: the event's stream sequence */
    const char *did;          /* its repository */
    bool live;                /* live (a barrier) or historical (backfill, resync) */
    const unsigned char *json; /* the event in Tap's JSON, `len` bytes, no NUL */
    size_t len;
} tap_event;

typedef enum tap_outcome {
    TAP_ACKED = 0,   /* a client acknowledged it, or the webhook answered 2xx */
    TAP_DEAD_LETTER, /* the target gave up on it (its attempt limit) */
} tap_outcome;

/* The end of one sent event, reported exactly once per successful `send`.
 * `arg` is the one the target was created with (the dispatcher's). */
typedef void (*tap_done_fn)(void *arg, uint64_t id, tap_outcome outcome, const char *why);

typedef struct tap_target {
    /* Takes a copy of *ev and delivers it without blocking; ES_OK promises
     * one `done` for ev->id later. ES_ERR_STOPPED once the target closes
     * (the event stays unacknowledged in the store: delivered again later). */
    es_status (*send)(void *self, const tap_event *ev);
    void *self;
} tap_target;

#endif
