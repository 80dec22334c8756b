/* One /subscribe connection: its Jetstream options (wantedCollections,
 * wantedDids, cursor, maxMessageSizeBytes, requireHello, options_update),
 * a watch of the store from the cursor's sequence (history handing over to
 * live in one ordered consumer: no gap, no repeat), and a bounded queue of
 * JSON messages between the watch's thread and the connection's.
 *
 * Threads: the connection's thread (libwebsockets) calls everything here;
 * the watch's thread only queues, and calls `wake` when there is something
 * to write or the subscriber must be closed. */
#ifndef SERVE_SUBSCRIBER_H
#define SERVE_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/es.h>

/* Jetstream's caps (its v1 README). */
#define SUB_COLLECTIONS_MAX 100
#define SUB_DIDS_MAX        10000
#define SUB_MESSAGE_MAX     10000000 /* a subscriber's message, in bytes */

typedef struct sub_config {
    size_t buffer_bytes;     /* queued JSON per subscriber, at most */
    int64_t slow_timeout_ms; /* how long a full queue may wait for the client */
    size_t record_max;       /* memory to decode one record */
    size_t headroom;         /* bytes kept free before each message (LWS_PRE) */
    struct ns_index *ns;     /* wantedCollections server-side (nsfilter.h); NULL: in process */
    void (*wake)(void *arg); /* from any thread: the connection has work */
    void *wake_arg;
} sub_config;

typedef struct subscriber subscriber;

/* One queued message: `len` bytes of JSON at data + headroom. */
typedef struct sub_msg {
    struct sub_msg *next;
    size_t len;
    unsigned char data[];
} sub_msg;

/* The caller owns *out (subscriber_destroy). */
es_status subscriber_create(es_store *st, const sub_config *cfg, subscriber **out);

/* One query parameter of the upgrade request (URL-decoded). ES_ERR_INVALID
 * (es_last_error says why) for a bad value: close the connection with it. */
es_status subscriber_query(subscriber *s, const char *name, const char *value);

/* After the query: starts delivering, unless requireHello asked to wait for
 * the first options_update. */
es_status subscriber_start(subscriber *s);

/* One whole message from the client. An options_update replaces the
 * filter (and ends the wait of requireHello); other types are ignored, as
 * Jetstream does. ES_ERR_INVALID for a malformed one (close with it). */
es_status subscriber_message(subscriber *s, const char *text, size_t len);

/* The next message to write (the caller frees it with free()), or NULL.
 * *close_code is non-zero (a WebSocket close status, with `reason`) when the
 * connection must end: the client is too slow, or the watch ended. */
sub_msg *subscriber_next(subscriber *s, int *close_code, char *reason, size_t reason_size);

/* The connection is gone: from now on `wake` is not called, and a watch
 * waiting for room stops. Does not wait for anything. */
void subscriber_end(subscriber *s);

/* Ends (subscriber_end), stops the watch and frees. Accepts NULL. It waits
 * for the watch's thread, which may be talking to NATS (up to the store's
 * timeout while NATS is away): the server calls it off its loop. */
void subscriber_destroy(subscriber *s);

#endif
