/* JetStream API requests and error mapping (private). */
#ifndef ES_JSAPI_H
#define ES_JSAPI_H

#include <stdbool.h>

#include <jansson.h>
#include <nats/nats.h>

#include <es/status.h>

/* JetStream API level of servers that have atomic batch publish (2.12). */
#define ES_JS_API_LEVEL_ATOMIC 2

/* Sends `body` (NULL: empty) to `subject` and parses the JSON reply into
 * *reply (the caller decrefs it). An API error in the reply becomes a status
 * (see es_js_error_status) with the server's description in es_last_error(). */
es_status es_js_request(natsConnection *nc, const char *subject, json_t *body, int64_t timeout_ms,
                        json_t **reply);

/* ES_OK when `reply` has no "error" object, else its mapped status. */
es_status es_js_check_error(json_t *reply, const char *what);

/* The status for a JetStream error (HTTP-like code, err_code). */
es_status es_js_error_status(int code, int err_code);

/* Maps a nats.c status to ours, setting the last error text. */
es_status es_nats_status(natsStatus s, const char *what);

/* The server's JetStream API level ($JS.API.INFO). */
es_status es_js_api_level(natsConnection *nc, int64_t timeout_ms, int *level);

/* Closes a subscription that may still be receiving messages. nats.c before
 * 3.6 can crash when a subscription is freed while its reader thread is
 * delivering to it (nats.c issue #637; Debian bookworm ships 3.4.1), so the
 * interest is removed first and a PING/PONG round trip proves the reader has
 * passed every message the server sent before the UNSUB; only then is the
 * subscription freed. Accepts NULL. */
void es_sub_close(natsConnection *nc, natsSubscription *sub);

/* True when `v` is a JSON string equal to `s`. */
bool es_json_string_is(json_t *v, const char *s);
/* The string value of `v`, or `fallback` when it is not a string. */
const char *es_json_string_or(json_t *v, const char *fallback);

#endif
