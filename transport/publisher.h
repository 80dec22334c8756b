/* The in-flight append machinery of a store (private): publishes a unit of
 * messages (one plain message, or an atomic batch) and delivers the server's
 * PubAck to a completion callback, with a bounded number of units in flight
 * (backpressure: esi_publisher_reserve waits while the window is full,
 * esi_publisher_try_reserve says ES_ERR_AGAIN at once). */
#ifndef ES_PUBLISHER_H
#define ES_PUBLISHER_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>

#include "transport/js.h"

typedef struct esi_publisher esi_publisher;

typedef struct esi_pub_result {
    uint64_t seq;        /* stream sequence of the last message of the unit */
    size_t count;        /* messages stored by the unit */
    bool duplicate;      /* a single message whose id was already stored */
    int err_code;        /* JetStream err_code when the server refused, else 0 */
    uint64_t actual_seq; /* on ES_ERR_CONFLICT: the entity's actual last sequence */
} esi_pub_result;

/* Called once per unit, on a nats.c thread (or the publisher's own, for a
 * timeout); the error text is in `text`. It must not block nor make requests:
 * the thread delivers every other acknowledgement too. Returns false to let
 * the publisher free `msgs`, or true to keep them for follow-up work (on
 * another thread: esi_publisher_defer), which ends with esi_publisher_finish;
 * until then the unit counts as in flight. */
typedef bool (*esi_pub_done)(es_status s, const esi_pub_result *r, const char *text, natsMsg **msgs,
                            size_t n, void *closure);

/* A reserved place in the window, with the reply subjects its messages carry. */
typedef struct esi_pub_ticket {
    uint64_t id;
    char reply[96];       /* on the single message, or the batch's commit */
    char first_reply[96]; /* on a batch's first message */
} esi_pub_ticket;

/* A publisher on the context's connection, answering within its timeout. */
es_status esi_publisher_create(const esi_js *js, int max_inflight, int max_batches_inflight,
                              esi_publisher **out);
/* Waits for units in flight (each bounded by the request timeout), then frees. */
void esi_publisher_destroy(esi_publisher *p);

/* Reserves a place for one unit (an atomic batch when `batch`), waiting
 * while max_inflight units, or max_batches_inflight batches, are in flight (ES_ERR_TIMEOUT after
 * the request timeout). `cb` will be called exactly once after esi_publisher_send;
 * esi_publisher_cancel releases the place without calling it (when building the messages failed). */
es_status esi_publisher_reserve(esi_publisher *p, bool batch, esi_pub_done cb, void *closure,
                                esi_pub_ticket *t);
/* The same without waiting: ES_ERR_AGAIN at once when the window is full. */
es_status esi_publisher_try_reserve(esi_publisher *p, bool batch, esi_pub_done cb, void *closure,
                                    esi_pub_ticket *t);
void esi_publisher_cancel(esi_publisher *p, const esi_pub_ticket *t);

/* Publishes msgs[0..n) (built with the ticket's reply subjects) and takes
 * ownership of them and of the array. The outcome always reaches the callback:
 * the PubAck, a send failure, or ES_ERR_TIMEOUT. */
void esi_publisher_send(esi_publisher *p, const esi_pub_ticket *t, natsMsg **msgs, size_t n);

/* Runs fn(arg) soon on the publisher's own thread, where it may make
 * requests of its own (follow-up work of a completion). */
void esi_publisher_defer(esi_publisher *p, void (*fn)(void *arg), void *arg);

/* Ends a unit whose completion kept its messages: frees them. */
void esi_publisher_finish(esi_publisher *p, natsMsg **msgs, size_t n);

/* Waits until nothing is in flight (ES_ERR_TIMEOUT after timeout_ms). */
es_status esi_publisher_flush(esi_publisher *p, int64_t timeout_ms);

/* For synchronous callers: pass esi_pub_waiter_done and the waiter as the
 * callback and closure, then esi_pub_waiter_wait(). */
typedef struct esi_pub_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
    es_status status;
    esi_pub_result result;
    char text[256];
} esi_pub_waiter;

void esi_pub_waiter_init(esi_pub_waiter *w);
bool esi_pub_waiter_done(es_status s, const esi_pub_result *r, const char *text, natsMsg **msgs,
                        size_t n, void *closure);
es_status esi_pub_waiter_wait(esi_pub_waiter *w);
void esi_pub_waiter_destroy(esi_pub_waiter *w);

/* Whether a unit's outcome (and this thread's last error) is "no
 * responders": no server had the stream's subjects, so nothing was stored
 * and sending it again is safe (ES_ERR_CONNECTION, err_code
 * ESI_NO_RESPONDERS). */
bool esi_pub_no_responders(es_status s);

/* Parses a PubAck (or a JetStream error reply) into a status and result; the
 * error text goes to `text`. Exposed for unit tests. */
es_status esi_puback_parse(const char *data, size_t len, esi_pub_result *r, char *text,
                          size_t text_size);

#endif
