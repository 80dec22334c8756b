/* HTTP GET for the adapter (private): the one owner of libcurl in
 * libes-atproto. The DID resolver (resolver.c) fetches documents with it, the
 * XRPC client (xrpc.c) repositories and listings. Everything a server sends
 * is hostile: the body is bounded while it arrives (an announced
 * Content-Length is never trusted, only used to refuse early), redirects are
 * not followed, HTTPS is verified, and with `public_only` no loopback,
 * private or link-local address is ever connected to (SSRF: a relay or a
 * DID document chooses the hosts). One call is one easy handle: calls on
 * different threads are independent. */
#ifndef ES_ATP_HTTP_H
#define ES_ATP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/status.h>

/* The XRPC error body's fields are kept up to these lengths (truncated). */
#define ESI_HTTP_ERROR_MAX   64
#define ESI_HTTP_MESSAGE_MAX 256
/* Retry-After values beyond this are clamped: a hostile server must not
 * park a caller for years. */
#define ESI_HTTP_RETRY_AFTER_MAX_MS ((int64_t)24 * 3600 * 1000)

/* Receives each chunk of a 2xx body as it arrives. A status other than
 * ES_OK stops the transfer, and esi_http_get returns it (with the sink's
 * error text). */
typedef es_status (*esi_http_sink_fn)(void *ctx, const uint8_t *data, size_t len);

typedef struct esi_http_request {
    const char *url;            /* http:// only with allow_insecure */
    const char *what;           /* names the request in error texts ("did:plc:x") */
    int64_t timeout_ms;         /* the whole transfer; > 0 */
    int64_t connect_timeout_ms; /* 0: bounded by timeout_ms only */
    uint64_t max_bytes;         /* the body's bound (> 0): ES_ERR_LIMIT past it */
    bool allow_insecure;        /* tests: plain http */
    bool public_only;           /* connect to public addresses only */
    /* Streaming: every chunk of a 2xx body goes to sink. NULL: the body is
     * buffered in the response (grown as it arrives, never past max_bytes). */
    esi_http_sink_fn sink;
    void *sink_ctx;
} esi_http_request;

typedef struct esi_http_response {
    long status;            /* the HTTP status, 0 when no answer came */
    int64_t retry_after_ms; /* a 429 or 503's Retry-After (seconds or HTTP date), -1: none */
    uint64_t bytes;         /* bytes of the 2xx body received */
    /* Buffered mode: the 2xx body (es_malloc'd, NUL-terminated after len
     * bytes; NULL when empty). Freed by esi_http_response_clear. */
    char *body;
    size_t len;
    /* A non-2xx answer's XRPC error body {"error": ..., "message": ...},
     * each "" when absent or not a string (the body is not kept). */
    char error[ESI_HTTP_ERROR_MAX + 1];
    char message[ESI_HTTP_MESSAGE_MAX + 1];
} esi_http_response;

/* Performs the GET. ES_OK when an answer came whole, whatever its status
 * (resp->status says which; a non-2xx body never reaches the sink).
 * Otherwise: ES_ERR_LIMIT (the body passed max_bytes), ES_ERR_TIMEOUT,
 * ES_ERR_CONNECTION (no connection, a refused private address, a body cut
 * short of its Content-Length, a TLS failure), ES_ERR_INVALID (a bad
 * request), ES_ERR_NOMEM, ES_ERR_UNSUPPORTED (libcurl does not initialise),
 * or the sink's status. `resp` is filled as far as the transfer went; the
 * caller clears it (esi_http_response_clear) in every case. */
es_status esi_http_get(const esi_http_request *req, esi_http_response *resp);
void esi_http_response_clear(esi_http_response *resp);

/* libcurl's global initialisation, once per process (pthread_once):
 * ES_ERR_UNSUPPORTED when it fails. esi_http_get calls it; handles that
 * will fetch call it at creation to fail early. */
es_status esi_http_init(void);

/* The XRPC error body's "error" and "message" (parsed with jansson; text
 * that is not such an object leaves both ""). */
void esi_http_parse_error(const char *body, size_t len, esi_http_response *resp);

/* Whether url[len] may be the base of requests: https:// (or http://
 * with allow_http), a host, no userinfo, query or fragment, no space,
 * control or non-ASCII byte. ES_ERR_INVALID saying why otherwise. */
es_status esi_http_check_base(const char *url, size_t len, bool allow_http);

/* Percent-encodes `s` (RFC 3986: unreserved characters stay) into out[cap],
 * NUL-terminated. ES_ERR_LIMIT when it does not fit. */
es_status esi_http_encode(const char *s, size_t len, char *out, size_t cap);

#endif
