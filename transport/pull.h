/* A pull consumer client (private), over raw JetStream requests: nats.c 3.4
 * can neither bind to multi-filter consumers nor speak priority groups.
 * One esi_pull is one inbox; a request for a batch stays open on the server
 * until filled or expired, and its messages are read as they arrive. */
#ifndef ES_PULL_H
#define ES_PULL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>

#include "transport/js.h"

#define ES_PULL_BATCH_MAX 256

typedef struct esi_pull esi_pull;

typedef struct esi_pull_options {
    const char *stream;
    const char *consumer;
    const char *group;    /* priority group (pinned client), or NULL */
    int64_t expires_ms;   /* life of one pull request */
    int64_t heartbeat_ms; /* server heartbeat while a request waits */
} esi_pull_options;

/* The strings are copied; `js` must outlive the pull. The caller owns *out. */
es_status esi_pull_create(const esi_js *js, const esi_pull_options *o, esi_pull **out);
/* Ends the pull: unsubscribes with a drain, so that every message the
 * server sent before it saw the unsubscribe is still received, and hands
 * each such message (status messages aside) to `cb`, which owns it. Waits
 * for the drain up to timeout_ms. No request is open afterwards: the server
 * drops requests whose inbox has no interest. */
es_status esi_pull_drain(esi_pull *p, void (*cb)(natsMsg *m, void *closure), void *closure,
                        int64_t timeout_ms);

/* Frees (unsubscribing first when not drained). Accepts NULL. */
void esi_pull_destroy(esi_pull *p);

typedef struct esi_pull_batch {
    natsMsg *msgs[ES_PULL_BATCH_MAX]; /* owned by the caller: natsMsg_Destroy each */
    int count;
    bool idle;     /* the last request ended with nothing for us (all caught up, or
                      the partition is pinned to another client) */
    bool lost_pin; /* the server pinned another client: the pin is forgotten */
    bool gone;     /* the consumer was deleted */
    bool refused;  /* the server turned the request down for now (409: too many waiting
                      requests, leadership change): ask again a little later */
} esi_pull_batch;

/* Up to `max` messages: opens a request when none is open, waits up to the
 * request's life for a first message (returning early, with nothing, when
 * *stop becomes true), then takes whatever else arrives within a few
 * milliseconds. ES_ERR_TIMEOUT when the server went silent (no heartbeat):
 * the request is abandoned and the next call opens another. */
es_status esi_pull_next(esi_pull *p, int max, const atomic_bool *stop, esi_pull_batch *b);

/* The pin id the server gave this client, or "" (ordered projections). */
const char *esi_pull_pin(const esi_pull *p);

/* Keeps this client's pin (esi_pull_pin) from timing out: the server
 * restarts a pin's timer only when its holder asks for more, and a holder
 * busy with a batch asks for nothing. So this is a request that can bring
 * nothing (one message of at most one byte, no wait), sent with a reply
 * subject nobody hears. Nothing to do without a pin. Not while esi_pull_next
 * runs on another thread (it may change the pin). */
es_status esi_pull_keep_pin(const esi_pull *p);

typedef enum esi_ack_kind {
    ES_ACK,      /* done */
    ES_NAK,      /* redeliver after delay_ms */
    ES_TERM,     /* never redeliver */
    ES_PROGRESS, /* still working: restart the ack timer */
} esi_ack_kind;

/* Acknowledges one message. `sync` waits for the server to confirm, which
 * also confirms every acknowledgement this connection sent before it. */
es_status esi_pull_ack(esi_pull *p, natsMsg *m, esi_ack_kind kind, int64_t delay_ms, bool sync);

/* The same, without waiting, for a delivery held apart from its pull (a
 * handler telling the server it is still at work): sent on `conn`. */
es_status esi_js_ack_msg(const esi_conn *conn, natsMsg *m, esi_ack_kind kind, int64_t delay_ms);

#endif
