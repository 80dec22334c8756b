/* A scripted NATS server in memory, under transport/conn.h's table, for the
 * tests of the transport and of the components above it: no server, no
 * sockets, and every race made to happen on purpose.
 *
 * What is published goes, on the publisher's thread, to a handler the test
 * sets (the "server"): it may answer at once, later (from the fake's timer
 * thread), twice, or never. Messages are routed to the subscriptions whose
 * subject matches (tokens, with "*" for one and a final ">" for the rest).
 * Asynchronous subscriptions deliver on a thread of their own, one message
 * at a time, as nats.c does; synchronous ones queue for next_msg. Drain,
 * close and release keep conn.h's promises: once they return, no handler
 * of the subscription is running nor will run.
 *
 * A request is a publish with a fresh inbox as its reply subject, answered
 * by the same handler; without a handler every message with a reply gets a
 * "503 No Responders" answer, as from a server where nobody listens.
 *
 * The fake records every message published (copies, with headers) for the
 * test to inspect. Everything here is thread-safe. Programs using it open
 * nats.c's library state first (fake_nats_setup). */
#ifndef ES_TEST_FAKE_CONN_H
#define ES_TEST_FAKE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/conn.h"

typedef struct fake_conn fake_conn;

/* The "server": sees every published message (`m` is the publisher's, valid
 * during the call) on the publisher's thread. It may block (to hold a
 * publisher at a chosen point) but must not publish through the table. */
typedef void (*fake_handler)(fake_conn *f, natsMsg *m, void *closure);

/* A test group's setup and teardown (cmocka's signature): nats.c's
 * library-wide state, which its messages need. */
int fake_nats_setup(void **state);
int fake_nats_teardown(void **state);

fake_conn *fake_conn_create(void);
/* Stops the timer thread (answers still waiting for their time are
 * dropped), closes what the test left subscribed and frees. Accepts NULL. */
void fake_conn_destroy(fake_conn *f);

/* The table over the fake (for esi_js_create). */
void fake_conn_table(fake_conn *f, esi_conn *out);
/* A JetStream context over the fake whose requests wait timeout_ms; NULL
 * when esi_js_create fails. The caller esi_js_destroys it. */
struct esi_js *fake_conn_js(fake_conn *f, int64_t timeout_ms);

/* Sets (or, with NULL, removes) the handler. */
void fake_conn_set_handler(fake_conn *f, fake_handler h, void *closure);
/* The largest payload the fake "server" accepts (default 1 MiB). */
void fake_conn_set_max_payload(fake_conn *f, int64_t bytes);
/* The next `times` publishes fail with `s` before reaching the handler. */
void fake_conn_fail_publish(fake_conn *f, es_status s, unsigned times);

/* ---- what the server sends ----------------------------------------------- */

/* Routes `m` (taken) to every matching subscription now. */
void fake_conn_deliver(fake_conn *f, natsMsg *m);
/* Routes `m` (taken) after `delay_ms`, from the fake's timer thread. */
void fake_conn_deliver_after(fake_conn *f, int64_t delay_ms, natsMsg *m);
/* Answers `req` (on its reply subject; nothing when it has none) with
 * `data` of `len` bytes, now or after delay_ms (<= 0: now). */
void fake_conn_answer(fake_conn *f, natsMsg *req, const void *data, size_t len, int64_t delay_ms);
/* ... with a NUL-terminated text (a JSON document, usually). */
void fake_conn_answer_text(fake_conn *f, natsMsg *req, const char *text, int64_t delay_ms);
/* ... with a header-only status message ("Status: <code>", and a
 * Description when `desc` is not NULL), like "503" or "204 EOB". */
void fake_conn_answer_status(fake_conn *f, natsMsg *req, const char *code, const char *desc);

/* Waits (up to timeout_ms) until every message routed so far to an
 * asynchronous subscription has been handed to its handler and the handler
 * has returned. False on timeout. */
bool fake_conn_wait_idle(fake_conn *f, int64_t timeout_ms);

/* ---- what the test observes ---------------------------------------------- */

typedef struct fake_conn_stats {
    size_t published;     /* messages published so far (requests included) */
    size_t subscriptions; /* open now (not yet drained, closed or released) */
    uint64_t handled;     /* handler calls of asynchronous subscriptions that returned */
    uint64_t dropped;     /* refused by a full synchronous subscription (slow consumer) */
} fake_conn_stats;

fake_conn_stats fake_conn_stats_now(fake_conn *f);
/* A copy of the i-th published message (the caller destroys it), or NULL. */
natsMsg *fake_conn_published_msg(fake_conn *f, size_t i);

/* ---- helpers ------------------------------------------------------------- */

/* A copy of `m`: subject, reply, data and headers. */
es_status fake_msg_copy(natsMsg *m, natsMsg **out);
/* ... with another subject and reply (NULL: none). */
es_status fake_msg_copy_as(natsMsg *m, const char *subject, const char *reply, natsMsg **out);
/* Whether `subject` matches `pattern` (tokens; "*" one token, a last ">"
 * one or more). */
bool fake_subject_matches(const char *pattern, const char *subject);

#endif
