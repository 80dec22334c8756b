/* A JetStream context (private to the library): the connection table, the
 * API subject prefix (JetStream domains and imported APIs), the request
 * timeout, and JSON requests with one error mapping for every caller. */
#ifndef ES_TRANSPORT_JS_H
#define ES_TRANSPORT_JS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <es/status.h>

#include "transport/conn.h"

/* JetStream API level of servers that have atomic batch publish (2.12). */
#define ESI_JS_API_LEVEL_ATOMIC 2
/* Longest API prefix accepted ("$JS.<domain>.API" or one given whole). */
#define ESI_JS_PREFIX_MAX 96

typedef struct esi_js esi_js;

typedef struct esi_js_options {
    const char *domain;     /* a JetStream domain, or NULL */
    const char *api_prefix; /* the API subject prefix, or NULL for "$JS.API" /
                               "$JS.<domain>.API"; not with a domain */
    int64_t timeout_ms;     /* per request; <= 0: 5000 */
} esi_js_options;

/* A context over `conn` (copied; its connection must outlive the context).
 * ES_ERR_INVALID for a domain or prefix that is not a subject prefix. */
es_status esi_js_create(const esi_conn *conn, const esi_js_options *o, esi_js **out);
void esi_js_destroy(esi_js *js); /* accepts NULL */

const esi_conn *esi_js_conn(const esi_js *js);
int64_t esi_js_timeout_ms(const esi_js *js);
const char *esi_js_prefix(const esi_js *js);
const char *esi_js_domain(const esi_js *js); /* NULL without one */

/* "<prefix>.<formatted>" into out; ES_ERR_LIMIT when it does not fit. */
es_status esi_js_api_subject(const esi_js *js, char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends `body` (NULL: empty) to the API subject `subject` (as built by
 * esi_js_api_subject) and parses the JSON reply into *reply (the caller
 * decrefs it). timeout_ms <= 0: the context's. An API error in the reply
 * becomes a status (esi_js_error_status) with the server's description in
 * es_last_error(). */
es_status esi_js_request(const esi_js *js, const char *subject, json_t *body, int64_t timeout_ms,
                         json_t **reply);

/* ES_OK when `reply` has no "error" object, else its mapped status. */
es_status esi_js_check_error(json_t *reply, const char *what);
/* The status for a JetStream error (HTTP-like code, err_code). */
es_status esi_js_error_status(int code, int err_code);

/* How long a reader keeps retrying what an election or a server restart
 * refuses for a while (a consumer's creation or reset, the requests before
 * it) before it gives up; and the backoff between its attempts. */
#define ESI_JS_ELECTION_BUDGET_MS 30000
#define ESI_JS_RETRY_FIRST_MS     100
#define ESI_JS_RETRY_MAX_MS       2000

/* Whether `s`, just returned by a request (es_last_error_code() is read), is
 * an answer a cluster electing a leader or a server restarting gives for a
 * while: no answer in time, no responders, JetStream's "temporarily
 * unavailable" (10008). Never a refusal (a bad filter, a permission, a
 * missing stream) nor a closed connection. */
bool esi_js_transient(es_status s);

/* Whether `s` (just returned: es_last_error_code() is read) is "no
 * responders". */
bool esi_js_no_responders(es_status s);

/* Calls attempt(closure) until it succeeds, fails otherwise than as
 * transient(status) says, or has failed so for budget_ms, waiting a
 * jittered backoff between attempts (ESI_JS_RETRY_*). Its last status and
 * error text come back. */
es_status esi_js_retry_for(int64_t budget_ms, bool (*transient)(es_status s),
                           es_status (*attempt)(void *closure), void *closure);

/* esi_js_retry_for(ESI_JS_ELECTION_BUDGET_MS, esi_js_transient, ...): what
 * an election or a restart refuses for a while. */
es_status esi_js_retry(es_status (*attempt)(void *closure), void *closure);

/* The server's JetStream API level (<prefix>.INFO). */
es_status esi_js_api_level(const esi_js *js, int *level);

/* Closes a subscription (the table's close: see conn.h). Accepts NULL. */
void esi_js_sub_close(const esi_js *js, esi_sub *sub);

/* True when `v` is a JSON string equal to `s`. */
bool esi_json_string_is(json_t *v, const char *s);
/* The string value of `v`, or `fallback` when it is not a string. */
const char *esi_json_string_or(json_t *v, const char *fallback);

/* What a JetStream delivery's reply subject says about it. */
typedef struct esi_js_delivery {
    uint64_t delivered; /* times delivered, this one included */
    uint64_t stream_seq;
    uint64_t consumer_seq;
    int64_t stored_ns;
    uint64_t pending; /* messages of the consumer left after this one */
} esi_js_delivery;

/* Parses "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>"
 * (and the v2 form with domain and account hash). False for anything else. */
bool esi_js_delivery_parse(const char *reply, esi_js_delivery *d);

#endif
