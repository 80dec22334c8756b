/* Status codes and error reporting shared by every es_ call. */
#ifndef ES_STATUS_H
#define ES_STATUS_H

#include <es/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every public call returns one of these. ES_OK is 0, so `if (s != ES_OK)`
 * and `if (s)` both read naturally. Values are stable: new ones are appended. */
typedef enum es_status {
    ES_OK = 0,
    ES_ERR_INVALID,     /* a bad argument: NULL, empty or invalid name, bad option */
    ES_ERR_NOMEM,       /* an allocation failed */
    ES_ERR_NOT_FOUND,   /* the store, entity, key or message does not exist */
    ES_ERR_EXISTS,      /* the store exists with a different configuration */
    ES_ERR_CONFLICT,    /* optimistic concurrency: the entity moved on */
    ES_ERR_TOO_LARGE,   /* batch over the limit, payload over the stream's max */
    ES_ERR_SERVER,      /* the server refused; es_last_error() has its text and code */
    ES_ERR_TIMEOUT,     /* no answer in time */
    ES_ERR_CONNECTION,  /* the connection is closed or not usable */
    ES_ERR_UNSUPPORTED, /* the server or a feature is too old or not enabled */
    ES_ERR_PROTOCOL,    /* an answer that does not parse as the protocol says */
    ES_ERR_DECODE,      /* malformed input data (codec, CAR, frame, ...) */
    ES_ERR_ENCODE,      /* a value a codec cannot represent */
    ES_ERR_NO_CODEC,    /* no codec is registered under that name */
    ES_ERR_CRYPTO,      /* decryption or authentication failed */
    ES_ERR_SHREDDED,    /* the entity's key was erased: data is gone by design */
    ES_ERR_NO_KEY,      /* the store encrypts and no master key was given */
    ES_ERR_DUPLICATE,   /* part of a batch was stored before under the same ids */
    ES_ERR_STOPPED,     /* the operation was stopped or the handle closed */
    ES_ERR_ABORTED,     /* a user callback asked to stop */
    ES_ERR_LIMIT,       /* an input exceeds a configured bound (depth, size, count) */
    ES_ERR_IO,          /* a file or system call failed */
    ES_ERR_TOO_DEEP,    /* input nested deeper than the configured bound */
    ES_ERR_AGAIN,       /* no room now (a full window): try again later */
    ES_ERR_PERMISSION,  /* the server refused the user's publish: a permissions violation */
} es_status;

/* A short, constant, English description of a status ("conflict"). Never NULL. */
ES_API const char *es_status_text(es_status s);

/* The detailed text of the last error raised on the calling thread, including
 * the server's own description and error code when the server refused
 * ("wrong last sequence: 3 (err_code 10071)"). Thread-local; valid until the
 * next es_ call on this thread. Never NULL (empty when there was no error). */
ES_API const char *es_last_error(void);

/* The JetStream err_code of the last ES_ERR_SERVER / ES_ERR_CONFLICT on this
 * thread, or 0. */
ES_API int es_last_error_code(void);

/* Sets the calling thread's last error (printf-style text) and returns `s`,
 * so that code wrapping es_ calls reports through es_last_error() too:
 *     return es_error(s, "loading order %s: %s", id, es_last_error());
 * Formatting es_last_error() into itself is safe. */
ES_API es_status es_error(es_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, keeping a JetStream err_code for es_last_error_code(). */
ES_API es_status es_error_code(es_status s, int err_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Forgets the calling thread's last error. */
ES_API void es_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
