/* One /subscribe connection: its Jetstream options (wantedCollections,
 * wantedDids, cursor, maxMessageSizeBytes, requireHello, options_update)
 * and a bounded queue of JSON messages for the connection's thread to
 * write. Live events come from the server's shared fan-out (hub.h): a
 * subscriber without a cursor joins it at once; one with a cursor first
 * replays through a watch of its own from the cursor's sequence, then
 * joins the hub where its replay is (no gap, no repeat) and drops the
 * watch. Without a hub (sub_config.hub NULL) the watch goes on into the
 * live tail, one ordered consumer per subscriber.
 *
 * Threads: the connection's thread (libwebsockets) calls everything here;
 * the watch's and the hub's threads only queue, and call `wake` when there
 * is something to write or the subscriber must be closed. */
#ifndef SERVE_SUBSCRIBER_H
#define SERVE_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/es.h>

/* Jetstream's caps (its v1 README). */
#define SUB_COLLECTIONS_MAX 100
#define SUB_DIDS_MAX        10000
#define SUB_MESSAGE_MAX     10000000 /* a subscriber's message, in bytes */

typedef struct hub hub;
typedef struct compressor compressor;

/* What the replays of a server hold, for /metrics (subscriber_metrics);
 * updated from the replays' threads. */
typedef struct sub_replay_stats {
    _Atomic size_t replaying;   /* subscribers replaying now */
    _Atomic size_t peak_events; /* the most events one replay held at once */
    _Atomic size_t peak_bytes;  /* the most bytes of JSON one replay queued at once */
} sub_replay_stats;

/* Events a replay holds at once by default (--replay-window). */
#define SUB_REPLAY_WINDOW 256

typedef struct sub_config {
    size_t buffer_bytes;     /* queued JSON per subscriber, at most */
    int64_t slow_timeout_ms; /* how long a full queue may wait for the client */
    size_t record_max;       /* memory to decode one record */
    size_t headroom;         /* bytes kept free before each message (LWS_PRE) */
    struct ns_index *ns;     /* wantedCollections server-side (nsfilter.h); NULL: in process */
    void (*wake)(void *arg); /* from any thread: the connection has work */
    void *wake_arg;
    hub *hub; /* the shared live fan-out; NULL: a watch of its own for live too */
    /* With a hub, a replay pulls the store (es_reader) and holds at most
     * this many events: those queued plus those of its read in hand. */
    size_t replay_window;
    sub_replay_stats *stats; /* NULL: not counted */
    compressor *compress; /* compress=true's frames (compress.h); NULL: compress is ignored */
} sub_config;

typedef struct subscriber subscriber;

/* One message: `len` bytes of JSON at data + headroom, shared by every
 * subscriber it goes to (the hub encodes an event once): each holder keeps
 * a reference. */
typedef struct sub_msg {
    _Atomic unsigned refs;
    _Atomic(struct sub_msg *) zstd; /* its compressed form, once asked for (compress.h) */
    size_t len;
    unsigned char data[];
} sub_msg;

/* A message of one reference (NULL without memory). */
sub_msg *sub_msg_create(size_t headroom, const void *json, size_t len);
void sub_msg_ref(sub_msg *m);
/* Drops a reference; the last frees (with its compressed form). Accepts NULL. */
void sub_msg_release(sub_msg *m);

/* The replays' figures in Prometheus' text format, appended to `b`. */
void subscriber_metrics(sub_replay_stats *stats, es_buf *b);

/* The caller owns *out (subscriber_destroy). */
es_status subscriber_create(es_store *st, const sub_config *cfg, subscriber **out);

/* One query parameter of the upgrade request (URL-decoded). ES_ERR_INVALID
 * (es_last_error says why) for a bad value: close the connection with it. */
es_status subscriber_query(subscriber *s, const char *name, const char *value);

/* compress=true (or Socket-Encoding: zstd) was asked for and is served:
 * every message is a zstd frame, to be sent as a binary message. */
bool subscriber_binary(const subscriber *s);

/* After the query: starts delivering, unless requireHello asked to wait for
 * the first options_update. */
es_status subscriber_start(subscriber *s);

/* One whole message from the client. An options_update replaces the
 * filter (and ends the wait of requireHello); other types are ignored, as
 * Jetstream does. ES_ERR_INVALID for a malformed one (close with it). */
es_status subscriber_message(subscriber *s, const char *text, size_t len);

/* The next message to write (the caller releases it: sub_msg_release), or
 * NULL, also when the next one is longer than max_len bytes (it stays
 * first). *close_code is non-zero (a WebSocket close status, with
 * `reason`) when nothing is left to write and the connection must end: the
 * client is too slow, or the store's reading ended. */
sub_msg *subscriber_next(subscriber *s, size_t max_len, int *close_code, char *reason,
                         size_t reason_size);

/* The connection is gone: from now on `wake` is not called, and a watch
 * waiting for room stops. Does not wait for anything. */
void subscriber_end(subscriber *s);

/* Ends (subscriber_end), stops the watch, leaves the hub and frees.
 * Accepts NULL. It waits for the watch's thread, which may be talking to
 * NATS (up to the store's timeout while NATS is away): the server calls it
 * off its loop. */
void subscriber_destroy(subscriber *s);

#endif
