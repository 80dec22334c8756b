/* The NATS operations the transport is built on (private to the library).
 *
 * Everything in transport/ talks to the server through this table, never to
 * nats.c directly (only src/conn_nats.c does): the real table wraps a
 * natsConnection; tests put a scripted server under the publisher and the
 * consumers instead (transport/tests/fake_conn.h) to drop, repeat, delay or
 * refuse answers without a server. Messages are nats.c's natsMsg either way
 * (natsMsg_Create needs no connection), read and built through msg.h.
 *
 * Statuses: ES_ERR_TIMEOUT when nothing came in time, ES_ERR_STOPPED when a
 * subscription has nothing more to give (drained, closed), the usual mapping
 * of nats.c's errors otherwise (esi_nats_status). */
#ifndef ES_TRANSPORT_CONN_H
#define ES_TRANSPORT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>

typedef struct esi_sub esi_sub;

/* Receives one message on a library-owned thread and takes ownership of it. */
typedef void (*esi_msg_handler)(natsMsg *m, void *closure);

typedef struct esi_conn_ops {
    /* Publishes `m` (which stays the caller's). */
    es_status (*publish)(void *ctx, natsMsg *m);
    es_status (*publish_data)(void *ctx, const char *subject, const char *reply, const void *data,
                              size_t len);
    /* A request and its one answer (*reply is the caller's). */
    es_status (*request)(void *ctx, const char *subject, const void *data, size_t len,
                         int64_t timeout_ms, natsMsg **reply);
    es_status (*request_msg)(void *ctx, natsMsg *m, int64_t timeout_ms, natsMsg **reply);
    /* A subscription delivering to `cb` on the connection's thread. */
    es_status (*subscribe)(void *ctx, const char *subject, esi_msg_handler cb, void *closure,
                           esi_sub **out);
    /* A subscription read with next_msg; up to max_msgs / max_bytes may wait
     * in it before the connection drops them (a slow consumer). */
    es_status (*subscribe_sync)(void *ctx, const char *subject, int max_msgs, int64_t max_bytes,
                                esi_sub **out);
    es_status (*next_msg)(esi_sub *sub, int64_t timeout_ms, natsMsg **out);
    /* Ends interest, keeping every message the server sent before it saw
     * that: an asynchronous subscription still delivers them to its handler
     * (drain waits up to timeout_ms for that, then frees the subscription); a
     * synchronous one hands them to next_msg, which then says ES_ERR_STOPPED
     * (the caller frees it with close). */
    es_status (*drain)(void *ctx, esi_sub *sub, int64_t timeout_ms);
    /* Ends interest and frees, once nothing can be delivered to the
     * subscription any more. Accepts NULL. */
    void (*close)(void *ctx, esi_sub *sub);
    /* Frees a synchronous subscription at once, without close's round trip:
     * only when every answer it was owed has been read. Accepts NULL. */
    void (*release)(void *ctx, esi_sub *sub);
    /* Waits until the server has seen everything published so far. */
    es_status (*flush)(void *ctx, int64_t timeout_ms);
    /* The largest message the server accepts. */
    int64_t (*max_payload)(void *ctx);
    /* Whether the server refused this connection a publish to `subject` (a
     * permissions violation, which comes back as an asynchronous error, so a
     * request to it just gets no answer); its text into `text`. May be NULL
     * (a table without permissions). */
    bool (*denied)(void *ctx, const char *subject, char *text, size_t size);
} esi_conn_ops;

typedef struct esi_conn {
    const esi_conn_ops *ops;
    void *ctx;
} esi_conn;

/* The real table over a connection the caller owns and keeps open. */
void esi_conn_nats(natsConnection *nc, esi_conn *out);
/* The connection behind a real table, NULL behind any other (for the KV
 * watches and listings that only nats.c's KV offers). */
natsConnection *esi_conn_nats_connection(const esi_conn *c);

/* Ends a synchronous subscription and frees it, once nothing can be
 * delivered to it any more (a PING/PONG after the UNSUB on a live
 * connection: nats.c before 3.6 can crash freeing a subscription it is
 * delivering to). Accepts NULL. */
void esi_nats_sub_close(natsConnection *nc, natsSubscription *s);

/* nats.c's library-wide state, for programs (tests) that use messages
 * without ever connecting: natsMsg_Destroy needs its garbage collector. */
void esi_nats_open(void);
void esi_nats_close(void);

/* The code es_last_error_code() gives with ES_ERR_UNSUPPORTED for a request
 * nobody answered ("no responders", NATS's 503 status): JetStream not
 * enabled, or, on a cluster, a stream whose replicas cannot answer yet. */
#define ESI_NO_RESPONDERS 503

/* Maps a nats.c status to ours, setting the last error text (and
 * ESI_NO_RESPONDERS as the error code for NATS_NO_RESPONDERS). */
es_status esi_nats_status(natsStatus s, const char *what);

/* `s` (a publish or request to `subject` that got no answer), or
 * ES_ERR_PERMISSION when the server refused the publish, with its text. */
es_status esi_conn_denied_or(const esi_conn *c, const char *subject, es_status s);

/* ES_ERR_PERMISSION with the server's text when a publish to `subject` was
 * refused since esi_conn_denials() said `since` (taken before the publish),
 * else ES_OK. Whoever waits for an answer asks this between slices of
 * ESI_DENIAL_POLL_MS, so a denial ends the wait at once, not at its timeout. */
es_status esi_conn_denial_since(const esi_conn *c, const char *subject, uint64_t since);
#define ESI_DENIAL_POLL_MS 20

/* nats.c's asynchronous error handler (natsOptions_SetErrorHandler), set on
 * every connection es_connect makes: it keeps the permissions violations,
 * so that a refused publish is known at once rather than at its timeout. */
void esi_nats_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                          void *closure);
/* How many permissions violations the handler has seen (any connection):
 * when it changes, whoever waits for answers asks `denied` again. */
uint64_t esi_conn_denials(void);

#endif
