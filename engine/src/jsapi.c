/* JSON requests to the JetStream API ($JS.API.*), for what nats.c 3.4 has no
 * call for (atomic streams, direct gets, API levels) and so that every
 * request maps errors the same way. */
#include "jsapi.h"

#include <string.h>

#include "base/internal.h"

es_status es_nats_status(natsStatus s, const char *what)
{
    switch (s) {
    case NATS_OK: return ES_OK;
    case NATS_TIMEOUT: return es_error(ES_ERR_TIMEOUT, "%s: no answer in time", what);
    case NATS_NO_MEMORY: return es_error(ES_ERR_NOMEM, "%s: out of memory", what);
    case NATS_NO_RESPONDERS:
        return es_error(ES_ERR_UNSUPPORTED, "%s: no responders (is JetStream enabled?)", what);
    case NATS_MAX_PAYLOAD:
        return es_error(ES_ERR_TOO_LARGE, "%s: message over the server's max payload", what);
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
    case NATS_DRAINING: return es_error(ES_ERR_CONNECTION, "%s: %s", what, natsStatus_GetText(s));
    default: return es_error(ES_ERR_CONNECTION, "%s: %s", what, natsStatus_GetText(s));
    }
}

es_status es_js_error_status(int code, int err_code)
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

es_status es_js_check_error(json_t *reply, const char *what)
{
    json_t *err = json_object_get(reply, "error");
    if (err == NULL)
        return ES_OK;
    int code = (int)json_integer_value(json_object_get(err, "code"));
    int err_code = (int)json_integer_value(json_object_get(err, "err_code"));
    const char *desc = json_string_value(json_object_get(err, "description"));
    return es_error_code(es_js_error_status(code, err_code), err_code, "%s: %s (err_code %d)", what,
                         desc ? desc : "unknown error", err_code);
}

es_status es_js_request(natsConnection *nc, const char *subject, json_t *body, int64_t timeout_ms,
                        json_t **reply)
{
    *reply = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body != NULL && text == NULL)
        return es_error(ES_ERR_NOMEM, "%s: cannot serialise request", subject);
    natsMsg *msg = NULL;
    natsStatus ns = natsConnection_Request(&msg, nc, subject, text ? text : "",
                                           text ? (int)strlen(text) : 0, timeout_ms);
    free(text);
    if (ns != NATS_OK)
        return es_nats_status(ns, subject);
    json_error_t jerr;
    json_t *j = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, &jerr);
    natsMsg_Destroy(msg);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return es_error(ES_ERR_PROTOCOL, "%s: reply is not a JSON object", subject);
    }
    es_status s = es_js_check_error(j, subject);
    if (s != ES_OK) {
        json_decref(j);
        return s;
    }
    *reply = j;
    return ES_OK;
}

es_status es_js_api_level(natsConnection *nc, int64_t timeout_ms, int *level)
{
    json_t *reply = NULL;
    es_status s = es_js_request(nc, "$JS.API.INFO", NULL, timeout_ms, &reply);
    if (s != ES_OK)
        return s;
    *level = (int)json_integer_value(json_object_get(json_object_get(reply, "api"), "level"));
    json_decref(reply);
    return ES_OK;
}

bool es_json_string_is(json_t *v, const char *s)
{
    const char *t = json_string_value(v);
    return t != NULL && strcmp(t, s) == 0;
}

const char *es_json_string_or(json_t *v, const char *fallback)
{
    const char *t = json_string_value(v);
    return t ? t : fallback;
}

void es_sub_close(natsConnection *nc, natsSubscription *sub)
{
    if (sub == NULL)
        return;
    if (natsSubscription_Unsubscribe(sub) == NATS_OK &&
        natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED)
        natsConnection_FlushTimeout(nc, 2000); /* disconnected: the reader delivers nothing */
    natsSubscription_Destroy(sub);
}
