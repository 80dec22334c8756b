/* The webhook target of Tap-style delivery (tap.h): each event's JSON is
 * POSTed to one URL (--webhook-url) and is done when the receiver answers
 * 2xx (TAP_ACKED). Any other answer, a timeout or a failed connection is
 * retried after an exponential backoff with jitter, up to a number of
 * attempts; then the event is dead-lettered (TAP_DEAD_LETTER, with the last
 * reason). A 429 or 503 with Retry-After (seconds or an HTTP-date) waits
 * that long instead when it is longer than the backoff, up to
 * retry_after_max_ms. Requests run on a thread of their own through libcurl's multi
 * interface, at most `max_in_flight` at once; the events waiting for a turn
 * or a retry are the ones the dispatcher has not seen done, so its in-flight
 * bound caps the memory held here.
 *
 * Every request carries
 *   Content-Type: application/json
 *   X-Es-Event-Id: <the event's id>
 *   X-Es-Attempt: <1 for the first request of the event, 2 for its retry...>
 *   X-Es-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
 * the HMAC keyed with the shared secret over "<t>.<body>", so a receiver can
 * refuse a body that was altered and a request replayed long after it was
 * signed (docs/atproto.md, "Webhooks"). Without a secret, no signature. */
#ifndef SERVE_WEBHOOK_H
#define SERVE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/es.h>

#include "tap.h"

#define WEBHOOK_SIGNATURE_HEADER "X-Es-Signature"
#define WEBHOOK_EVENT_ID_HEADER  "X-Es-Event-Id"
#define WEBHOOK_ATTEMPT_HEADER   "X-Es-Attempt"
/* "t=<20 digits>,v1=<64 hex digits>" and its NUL */
#define WEBHOOK_SIGNATURE_MAX 96
/* The reason handed with a dead letter, at most this long (NUL included). */
#define WEBHOOK_REASON_MAX 256

typedef struct webhook_options {
    const char *url;          /* http:// or https://; copied */
    const char *secret;       /* the HMAC key; NULL or "": requests are not signed; copied */
    unsigned attempts;        /* requests per event before its dead letter (>= 1) */
    int64_t timeout_ms;       /* one request, connection included (> 0) */
    size_t max_in_flight;     /* requests at once (>= 1) */
    int64_t backoff_first_ms; /* the delay before the first retry (> 0) ... */
    int64_t backoff_max_ms;   /* ... doubled at each retry up to this, with jitter */
    int64_t retry_after_max_ms; /* a receiver's Retry-After is honoured up to this (> 0) */
} webhook_options;

/* The defaults: 10 attempts, 10 s timeout, 32 in flight, backoff from 1 s to
 * 60 s, Retry-After up to 10 min; no URL, no secret. */
void webhook_options_init(webhook_options *o);

typedef struct webhook webhook;

/* Checks the options (ES_ERR_INVALID saying which is wrong), initialises
 * libcurl and starts the thread. `done(done_arg, ...)` is called on that
 * thread, once per event accepted by send, never with a lock of the webhook
 * held. *out is the caller's, freed by webhook_stop. */
es_status webhook_start(const webhook_options *o, tap_done_fn done, void *done_arg, webhook **out);

/* The target to hand to the dispatcher: its send copies the event and
 * returns at once (ES_OK), or ES_ERR_STOPPED after webhook_stop began,
 * ES_ERR_NOMEM. Borrowed: valid until webhook_destroy. */
tap_target webhook_target(webhook *w);

/* Appends the webhook's families in Prometheus' text format (metrics.h's
 * writer): requests by outcome, a latency histogram, retries, dead letters,
 * requests in flight and events held. Any thread. */
void webhook_metrics(webhook *w, es_buf *b);

/* The most requests that were in flight at once since the start (tests). */
size_t webhook_max_in_flight_seen(webhook *w);

/* Stops the thread: requests in flight are abandoned, and from its return
 * no `done` is called any more and send answers ES_ERR_STOPPED. Events not
 * yet done stay unacknowledged in the store and are delivered again later.
 * Call it before destroying the dispatcher (whose `done` it calls), then
 * webhook_destroy after it. Idempotent. */
void webhook_stop(webhook *w);

/* Stops (if not yet) and frees. Accepts NULL. */
void webhook_destroy(webhook *w);

/* The wait a Retry-After header's value asks for, at Unix time now_s: its
 * delay in seconds (digits only) or its HTTP-date (RFC 9110, as libcurl's
 * curl_getdate reads it; one in the past: 0), in milliseconds, at most
 * max_ms. -1 for a value that is neither (empty, negative, fractional,
 * garbage): it is ignored. */
int64_t webhook_retry_after_ms(const char *value, int64_t now_s, int64_t max_ms);

/* The X-Es-Signature value for `body` signed at Unix time `t` with
 * secret[secret_len], into out[WEBHOOK_SIGNATURE_MAX]:
 * "t=<t>,v1=<lowercase hex of HMAC-SHA256(secret, "<t>." || body)>".
 * ES_ERR_UNSUPPORTED if OpenSSL fails. */
es_status webhook_sign(const void *secret, size_t secret_len, int64_t t, const unsigned char *body,
                       size_t len, char out[WEBHOOK_SIGNATURE_MAX]);

#endif
