/* JSON requests to the JetStream API (<prefix>.*), for what nats.c 3.4 has no
 * call for (atomic streams, direct gets, API levels) and so that every
 * request maps errors the same way. */
#include "transport/js.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/internal.h"
#include "transport/msg.h"

#define DEFAULT_TIMEOUT_MS 5000

struct esi_js {
    esi_conn conn;
    int64_t timeout_ms;
    char prefix[ESI_JS_PREFIX_MAX + 1];
    char domain[ESI_JS_PREFIX_MAX + 1];
};

/* A run of subject tokens: no wildcards, spaces or empty tokens. */
static bool valid_prefix(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > ESI_JS_PREFIX_MAX || p[0] == '.' || p[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c == '*' || c == '>' || c >= 0x7F || (c == '.' && p[i + 1] == '.'))
            return false;
    }
    return true;
}

static es_status set_prefix(esi_js *js, const esi_js_options *o)
{
    const char *domain = o ? o->domain : NULL, *prefix = o ? o->api_prefix : NULL;
    if (domain != NULL && domain[0] != '\0' && prefix != NULL && prefix[0] != '\0')
        return es_error(ES_ERR_INVALID, "give a JetStream domain or an API prefix, not both");
    if (domain != NULL && domain[0] != '\0') {
        if (!valid_prefix(domain) || strchr(domain, '.') != NULL ||
            strlen(domain) + sizeof "$JS..API" > sizeof js->prefix)
            return es_error(ES_ERR_INVALID, "JetStream domain '%.64s' is not one subject token",
                            domain);
        snprintf(js->domain, sizeof js->domain, "%s", domain);
        snprintf(js->prefix, sizeof js->prefix, "$JS.%s.API", domain);
        return ES_OK;
    }
    if (prefix != NULL && prefix[0] != '\0') {
        if (!valid_prefix(prefix))
            return es_error(ES_ERR_INVALID, "JetStream API prefix '%.64s' is not a subject prefix",
                            prefix);
        snprintf(js->prefix, sizeof js->prefix, "%s", prefix);
        return ES_OK;
    }
    snprintf(js->prefix, sizeof js->prefix, "$JS.API");
    return ES_OK;
}

es_status esi_js_create(const esi_conn *conn, const esi_js_options *o, esi_js **out)
{
    *out = NULL;
    if (conn == NULL || conn->ops == NULL)
        return es_error(ES_ERR_INVALID, "no connection");
    esi_js *js = esi_calloc(1, sizeof *js);
    if (js == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    js->conn = *conn;
    js->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    es_status s = set_prefix(js, o);
    if (s != ES_OK) {
        esi_free(js);
        return s;
    }
    *out = js;
    return ES_OK;
}

void esi_js_destroy(esi_js *js)
{
    esi_free(js);
}

const esi_conn *esi_js_conn(const esi_js *js)
{
    return &js->conn;
}

int64_t esi_js_timeout_ms(const esi_js *js)
{
    return js->timeout_ms;
}

const char *esi_js_prefix(const esi_js *js)
{
    return js->prefix;
}

const char *esi_js_domain(const esi_js *js)
{
    return js->domain[0] ? js->domain : NULL;
}

es_status esi_js_api_subject(const esi_js *js, char *out, size_t size, const char *fmt, ...)
{
    int n = snprintf(out, size, "%s.", js->prefix);
    if (n < 0 || (size_t)n >= size)
        return es_error(ES_ERR_LIMIT, "JetStream API subject too long");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(out + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= size - (size_t)n)
        return es_error(ES_ERR_LIMIT, "JetStream API subject too long");
    return ES_OK;
}

es_status esi_js_error_status(int code, int err_code)
{
    switch (err_code) {
    case 10059: /* stream not found */
    case 10014: /* consumer not found */
    case 10037: /* no message found */ return ES_ERR_NOT_FOUND;
    case 10058: /* stream name already in use with a different configuration */
        return ES_ERR_EXISTS;
    case 10071: /* wrong last sequence */
    case 10164: /* wrong last sequence, subject-scoped */ return ES_ERR_CONFLICT;
    case 10054: /* message size exceeds maximum allowed */ return ES_ERR_TOO_LARGE;
    default: break;
    }
    return code == 404 ? ES_ERR_NOT_FOUND : ES_ERR_SERVER;
}

es_status esi_js_check_error(json_t *reply, const char *what)
{
    json_t *err = json_object_get(reply, "error");
    if (err == NULL)
        return ES_OK;
    int code = (int)json_integer_value(json_object_get(err, "code"));
    int err_code = (int)json_integer_value(json_object_get(err, "err_code"));
    const char *desc = json_string_value(json_object_get(err, "description"));
    return es_error_code(esi_js_error_status(code, err_code), err_code, "%s: %s (err_code %d)",
                         what, desc ? desc : "unknown error", err_code);
}

es_status esi_js_request(const esi_js *js, const char *subject, json_t *body, int64_t timeout_ms,
                         json_t **reply)
{
    *reply = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body != NULL && text == NULL)
        return es_error(ES_ERR_NOMEM, "%s: cannot serialise request", subject);
    natsMsg *msg = NULL;
    es_status s = js->conn.ops->request(js->conn.ctx, subject, text ? text : "",
                                        text ? strlen(text) : 0,
                                        timeout_ms > 0 ? timeout_ms : js->timeout_ms, &msg);
    esi_free_foreign(text); /* jansson's */
    if (s != ES_OK)
        return s;
    json_error_t jerr;
    json_t *j = json_loadb(esi_msg_data(msg), esi_msg_len(msg), 0, &jerr);
    esi_msg_destroy(msg);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return es_error(ES_ERR_PROTOCOL, "%s: reply is not a JSON object", subject);
    }
    s = esi_js_check_error(j, subject);
    if (s != ES_OK) {
        json_decref(j);
        return s;
    }
    *reply = j;
    return ES_OK;
}

bool esi_js_transient(es_status s)
{
    int code = es_last_error_code();
    return s == ES_ERR_TIMEOUT || esi_js_no_responders(s) ||
           (s == ES_ERR_SERVER && code == 10008); /* JetStream system temporarily unavailable */
}

bool esi_js_no_responders(es_status s)
{
    return s == ES_ERR_UNSUPPORTED && es_last_error_code() == ESI_NO_RESPONDERS;
}

es_status esi_js_retry(es_status (*attempt)(void *closure), void *closure)
{
    return esi_js_retry_for(ESI_JS_ELECTION_BUDGET_MS, esi_js_transient, attempt, closure);
}

es_status esi_js_retry_for(int64_t budget_ms, bool (*transient)(es_status s),
                           es_status (*attempt)(void *closure), void *closure)
{
    esi_backoff b;
    esi_backoff_init(&b, ESI_JS_RETRY_FIRST_MS, ESI_JS_RETRY_MAX_MS);
    int64_t started = esi_monotonic_ms();
    for (unsigned n = 1;; n++) {
        es_status s = attempt(closure);
        if (s == ES_OK || !transient(s))
            return s;
        int64_t pause = esi_backoff_next(&b, n);
        int64_t failing = esi_monotonic_ms() - started;
        if (failing >= budget_ms)
            return es_error_code(s, es_last_error_code(), "%s (still failing after %lld ms)",
                                 es_last_error(), (long long)failing);
        /* the last pause is cut to what is left: one more attempt at the
         * budget's end, not a give-up a long backoff before it */
        esi_sleep_ms(pause < budget_ms - failing ? pause : budget_ms - failing);
    }
}

es_status esi_js_api_level(const esi_js *js, int *level)
{
    char subject[ESI_JS_PREFIX_MAX + 16];
    json_t *reply = NULL;
    es_status s = esi_js_api_subject(js, subject, sizeof subject, "INFO");
    if (s == ES_OK)
        s = esi_js_request(js, subject, NULL, 0, &reply);
    if (s != ES_OK)
        return s;
    *level = (int)json_integer_value(json_object_get(json_object_get(reply, "api"), "level"));
    json_decref(reply);
    return ES_OK;
}

void esi_js_sub_close(const esi_js *js, esi_sub *sub)
{
    if (sub != NULL)
        js->conn.ops->close(js->conn.ctx, sub);
}

bool esi_json_string_is(json_t *v, const char *s)
{
    const char *t = json_string_value(v);
    return t != NULL && strcmp(t, s) == 0;
}

const char *esi_json_string_or(json_t *v, const char *fallback)
{
    const char *t = json_string_value(v);
    return t ? t : fallback;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool esi_js_delivery_parse(const char *reply, esi_js_delivery *d)
{
    memset(d, 0, sizeof *d);
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
        return false;
    const char *tok[13];
    size_t len[13];
    int n = 0;
    for (const char *p = reply;;) {
        if (n == 13)
            return false;
        const char *dot = strchr(p, '.');
        tok[n] = p;
        len[n++] = dot ? (size_t)(dot - p) : strlen(p);
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    /* v1: $JS.ACK.<stream>.<consumer>.<5 numbers>; v2 adds domain and
     * account hash before the stream and may end with a random token. */
    int base = n == 9 ? 4 : (n == 11 || n == 12) ? 6 : -1;
    uint64_t ts = 0;
    if (base < 0 || !parse_u64(tok[base], len[base], &d->delivered) ||
        !parse_u64(tok[base + 1], len[base + 1], &d->stream_seq) ||
        !parse_u64(tok[base + 2], len[base + 2], &d->consumer_seq) ||
        !parse_u64(tok[base + 3], len[base + 3], &ts) ||
        !parse_u64(tok[base + 4], len[base + 4], &d->pending) || d->delivered == 0 ||
        d->stream_seq == 0 || ts > INT64_MAX) {
        memset(d, 0, sizeof *d);
        return false;
    }
    d->stored_ns = (int64_t)ts;
    return true;
}
