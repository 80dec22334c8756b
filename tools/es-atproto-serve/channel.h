/* GET /channel, Tap's WebSocket delivery: a tap_target (tap.h) whose events
 * go to whichever connected client is ready. Each event is one text message
 * (its Tap JSON); the client answers {"type":"ack","id":N} once it has
 * processed it. An event not acknowledged within ack_timeout_ms is sent
 * again, to any connected client; a client that leaves hands its
 * unacknowledged events back at once. With several clients connected each
 * holds at most its share of max_in_flight unacknowledged events, so they
 * share the work. In fire-and-forget mode (Tap's --disable-acks) an event is
 * done once written to a client, and acks are ignored. The channel never
 * gives up on an event (Tap's neither): no dead letters from here.
 *
 * Threads: `send` (the dispatcher's thread), the connection calls (the
 * server's loop) and the channel's own timer thread meet under one lock;
 * `done` is called outside it. */
#ifndef SERVE_CHANNEL_H
#define SERVE_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/es.h>

#include "tap.h"

typedef struct channel_config {
    int64_t ack_timeout_ms; /* unacknowledged this long: sent again (default 60000, Tap's) */
    bool fire_and_forget;   /* done once written; acks ignored */
    int max_in_flight;      /* the dispatcher's bound: the clients' shares of it */
} channel_config;

void channel_config_init(channel_config *cfg);

typedef struct channel channel;
typedef struct channel_client channel_client;

/* `done(done_arg, ...)` ends each event sent (dispatch_done, the dispatch).
 * The caller owns *out (channel_destroy). */
es_status channel_create(const channel_config *cfg, tap_done_fn done, void *done_arg,
                         channel **out);

/* The channel as the dispatcher's target. */
tap_target channel_target(channel *c);

/* The server's loop: the bytes to keep free before each message (LWS_PRE),
 * and who to wake (from any thread) when a client may have something to
 * write. A NULL wake stops the wakes (the loop is going away). */
void channel_set_loop(channel *c, size_t headroom, void (*wake)(void *arg), void *arg);

/* A WebSocket client connected. The caller owns *out (channel_detach). */
es_status channel_attach(channel *c, channel_client **out);

/* One whole message from the client: an ack ends its event (whoever held
 * it); other types are ignored, as Tap does. ES_ERR_INVALID for a message
 * that is not a JSON object with a "type". */
es_status channel_client_message(channel_client *cl, const char *text, size_t len);

/* One event to write to this client. */
typedef struct channel_msg {
    uint64_t id;
    size_t len;
    unsigned char data[]; /* headroom, then len bytes of JSON */
} channel_msg;

/* The next event for this client (the caller frees it with free()), or
 * NULL: none waiting, or the client holds its share. */
channel_msg *channel_client_next(channel_client *cl);

/* The client's connection took event `id` (fire-and-forget: it is done). */
void channel_client_written(channel_client *cl, uint64_t id);

/* The client left: the events it held go to the others at once. Frees it.
 * Accepts NULL. */
void channel_detach(channel_client *cl);

typedef struct channel_stats {
    size_t clients;       /* connected now */
    size_t waiting, held; /* events not written yet; written and not acknowledged */
    uint64_t written;     /* messages written to clients */
    uint64_t redelivered; /* events sent again (ack timeout, a client gone) */
    uint64_t acks;        /* acks that ended an event */
    uint64_t stale_acks;  /* acks for events not held (late, repeated, unknown) */
} channel_stats;

void channel_stats_get(channel *c, channel_stats *out);

/* The channel's families in Prometheus' text (tools/common/metrics.h). */
void channel_metrics(channel *c, es_buf *b);

/* Stops the timer and frees the events left (never done: they stay
 * unacknowledged in the store). After dispatch_destroy and with no client
 * attached. Accepts NULL. */
void channel_destroy(channel *c);

#endif
