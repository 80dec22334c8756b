/* Connecting to NATS with the options the NATS CLI takes (servers, user and
 * password, token, credentials file, NKey, TLS, a connection name,
 * reconnects), without calling nats.c. The connection is a plain
 * natsConnection: es_store_create and es_store_open take it, and the caller
 * keeps owning it. */
#ifndef ES_CONNECT_H
#define ES_CONNECT_H

#include <stdint.h>

#include <nats/nats.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where es_connect goes when no server is given. */
#define ES_CONNECT_DEFAULT_URL "nats://127.0.0.1:4222"

/* What happened to a connection, for es_connect_options.on_change. */
typedef enum es_connection_change {
    ES_CONNECTION_LOST = 1, /* the server went away; reconnecting (max_reconnect) */
    ES_CONNECTION_RESTORED, /* connected again, to `url` */
} es_connection_change;

/* Called on a thread of the NATS library; `url` is the server connected to
 * (RESTORED) or NULL, valid during the call. Must not close the connection. */
typedef void (*es_connection_change_cb)(es_connection_change change, const char *url,
                                        void *closure);

/* Every string is borrowed for the es_connect call only; NULL leaves the
 * option out. */
typedef struct es_connect_options {
    /* A URL or comma-separated URLs ("nats://a:4222,nats://b:4222"), each
     * [nats://|tls://][user:password@]host[:port] (host a name, an IPv4
     * address or [IPv6]); NULL: ES_CONNECT_DEFAULT_URL. At most 32 URLs. */
    const char *servers;
    const char *name; /* the connection name the server shows; NULL: "es" */
    const char *user; /* with password (NULL: empty) */
    const char *password;
    const char *token;
    const char *creds_file; /* a user credentials file: JWT and NKey seed */
    /* NKey authentication: the user's public key ("U...", 56 characters)
     * and the file holding its seed, which signs the server's challenge.
     * Both or neither. */
    const char *nkey_public;
    const char *nkey_seed_file;
    /* TLS, on when any of these is set (or a URL is tls://): CA
     * certificates to verify the server, and a client certificate with its
     * key (both or neither). Files in PEM. */
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    int64_t timeout_ms;             /* to connect (default 5000) */
    int max_reconnect;              /* attempts after a loss (default 60; -1: forever) */
    int64_t reconnect_wait_ms;      /* between attempts (default 500) */
    int64_t reconnect_buffer_bytes; /* published while reconnecting (default 8 MiB) */
    /* Optional: told when the server goes away and when the connection is
     * back (not when es_connection_close closes it); `closure` must outlive
     * the connection. */
    es_connection_change_cb on_change;
    void *closure;
} es_connect_options;

/* Defaults: no server (the default URL), no authentication, no TLS, 5 s to
 * connect, 60 reconnect attempts half a second apart, an 8 MiB buffer. */
ES_API void es_connect_options_init(es_connect_options *opts);

/* Connects (opts NULL: the defaults). ES_ERR_CONNECTION, with a one-line
 * reason in es_last_error() ("no server is answering", "authorization
 * failed"), when no server of the list could be reached or it refused the
 * credentials; ES_ERR_INVALID for unusable options (a malformed URL:
 * "invalid URL '...': why", checked before anything is dialled; an
 * unreadable credentials or TLS file, half of a pair). The caller owns *out
 * (es_connection_close). Thread-safe. */
ES_API es_status es_connect(const es_connect_options *opts, natsConnection **out);

/* Closes the connection and frees it. Accepts NULL. Destroy every store made
 * over it first. */
ES_API void es_connection_close(natsConnection *nc);

/* Releases the NATS client library's process-wide state, waiting up to
 * timeout_ms for its threads to end: call once, at the very end of a
 * program, after every connection is closed (a thread still delivering a
 * message while the process exits would touch freed state). Optional for
 * programs that simply exit. timeout_ms <= 0: as long as it takes.
 * ES_ERR_TIMEOUT when the threads did not end in time; ES_ERR_INVALID when
 * called from one of them (a callback). */
ES_API es_status es_shutdown(int64_t timeout_ms);

/* The version of the NATS client library (nats.c) in use ("3.10.1"). */
ES_API const char *es_nats_client_version(void);

#ifdef __cplusplus
}
#endif
#endif
