/* The answers of synchronous requests, one inbox per connection (private
 * to the transport; only src/conn_nats.c and src/connect.c use it).
 *
 * Each connection that makes a request gets, once and lazily, an inbox
 * `_INBOX.<random>` with two subscriptions: `.s<n>.*`, read by a request
 * alone on the connection itself, and the wildcard `.*`, shared by the
 * requests made while that one waits, whose answers nats.c's delivery
 * thread hands to the waiter the reply subject's last token names. A
 * request is then one PUB, where an inbox of its own cost a SUB and an
 * UNSUB too. docs/wire-format.md, "Requests and their answers", has why
 * two and the figures.
 *
 * Tokens carry a generation: an answer that comes after its waiter gave up
 * (a timeout racing a late reply) names a generation no longer waited for
 * and is dropped, never given to the waiter that took the slot next; the
 * solo subscription is made anew after a request left it unanswered.
 * Waiters are bounded (ESI_INBOX_WAITERS per connection on the wildcard;
 * beyond, a request waits for one to be free within its own timeout).
 * nats.c makes the subscriptions again after a reconnect; a request whose
 * publish or answer was lost meanwhile times out, as any would. */
#ifndef ES_TRANSPORT_INBOX_H
#define ES_TRANSPORT_INBOX_H

#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>

/* Requests waiting at once on one connection, at most. */
#define ESI_INBOX_WAITERS 1024
/* "_INBOX." + 22-character id + ".s" + up to 10 digits + "." + up to 20
 * digits, and the NUL. */
#define ESI_INBOX_REPLY_MAX 72

typedef struct esi_inbox esi_inbox;

/* One request's claim on its connection's inbox: the reply subject to
 * publish with, and what esi_inbox_wait and esi_inbox_end need. */
typedef struct esi_inbox_waiter {
    esi_inbox *inbox;
    uint64_t token;
    bool solo;     /* alone on the connection's solo subscription */
    bool answered; /* solo: its answer (or "no responders") came */
    char reply[ESI_INBOX_REPLY_MAX];
} esi_inbox_waiter;

/* Takes a waiter on `nc`'s inbox (subscribing the first time), waiting up
 * to timeout_ms for one to be free. ES_ERR_TIMEOUT when none was;
 * ES_ERR_CONNECTION and the like when the subscription cannot be made.
 * On ES_OK the caller ends it with esi_inbox_end. */
es_status esi_inbox_begin(natsConnection *nc, int64_t timeout_ms, esi_inbox_waiter *w);

/* Waits up to timeout_ms (a slice: the caller looks for a denial between
 * slices) for the waiter's answer: ES_OK with *reply (the caller's),
 * ES_ERR_UNSUPPORTED for "no responders" (no error text set),
 * ES_ERR_TIMEOUT, or a failure of the subscription. */
es_status esi_inbox_wait(esi_inbox_waiter *w, int64_t timeout_ms, natsMsg **reply);

/* Gives the waiter back: an answer that comes later is dropped. */
void esi_inbox_end(esi_inbox_waiter *w);

/* Ends `nc`'s inbox subscription, before the connection is closed
 * (es_connection_close). Connections closed otherwise have theirs ended
 * the next time any inbox is taken, or by esi_inbox_sweep. */
void esi_inbox_forget(natsConnection *nc);
/* Ends the inboxes of every closed connection (es_shutdown). */
void esi_inbox_sweep(void);

#endif
