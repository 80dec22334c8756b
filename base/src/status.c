#include "base/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];
static _Thread_local int last_error_code;

const char *es_status_text(es_status s)
{
    switch (s) {
    case ES_OK: return "ok";
    case ES_ERR_INVALID: return "invalid argument";
    case ES_ERR_NOMEM: return "out of memory";
    case ES_ERR_NOT_FOUND: return "not found";
    case ES_ERR_EXISTS: return "already exists with a different configuration";
    case ES_ERR_CONFLICT: return "conflict: wrong last sequence";
    case ES_ERR_TOO_LARGE: return "too large";
    case ES_ERR_SERVER: return "server error";
    case ES_ERR_TIMEOUT: return "timeout";
    case ES_ERR_CONNECTION: return "connection error";
    case ES_ERR_UNSUPPORTED: return "not supported";
    case ES_ERR_PROTOCOL: return "protocol error";
    case ES_ERR_DECODE: return "malformed data";
    case ES_ERR_ENCODE: return "value cannot be encoded";
    case ES_ERR_NO_CODEC: return "unknown codec";
    case ES_ERR_CRYPTO: return "decryption failed";
    case ES_ERR_SHREDDED: return "data shredded";
    case ES_ERR_NO_KEY: return "no master key";
    case ES_ERR_DUPLICATE: return "partially duplicate batch";
    case ES_ERR_STOPPED: return "stopped";
    case ES_ERR_ABORTED: return "aborted by callback";
    case ES_ERR_LIMIT: return "limit exceeded";
    case ES_ERR_IO: return "i/o error";
    case ES_ERR_TOO_DEEP: return "nested too deeply";
    case ES_ERR_AGAIN: return "no room now, try again";
    case ES_ERR_PERMISSION: return "not permitted";
    }
    return "unknown status";
}

const char *es_last_error(void)
{
    return last_error;
}

int es_last_error_code(void)
{
    return last_error_code;
}

void es_error_clear(void)
{
    last_error[0] = '\0';
    last_error_code = 0;
}

/* Formats into a scratch buffer first: callers often wrap the previous error
 * ("...: %s", es_last_error()), and formatting a buffer into itself is
 * undefined behaviour. */
static void set_last(int err_code, const char *fmt, va_list ap) ES_PRINTF(2, 0);
static void set_last(int err_code, const char *fmt, va_list ap)
{
    char text[sizeof last_error];
    vsnprintf(text, sizeof text, fmt, ap);
    memcpy(last_error, text, sizeof text);
    last_error_code = err_code;
}

es_status es_error_code(es_status s, int err_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_last(err_code, fmt, ap);
    va_end(ap);
    return s;
}

es_status es_error(es_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_last(0, fmt, ap);
    va_end(ap);
    return s;
}
