/* The HTTP and WebSocket side (libwebsockets): GET /health, and
 * GET /subscribe upgraded to a WebSocket of Jetstream's protocol. */
#ifndef SERVE_SERVER_H
#define SERVE_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <es/es.h>

#include "channel.h"
#include "dispatch.h"
#include "health.h"
#include "subscriber.h"
#include "webhook.h"

typedef struct server_options {
    const char *host; /* the interface to listen on */
    int port;         /* 0: any free port */
    size_t max_subscribers;
    const char *admin_token; /* --admin-token: the admin routes need it (NULL: open) */
    const char *tls_cert;    /* --tls-cert, --tls-key: HTTPS and WSS only (NULL: plain) */
    const char *tls_key;
    bool per_subscriber_watch; /* --fanout per-subscriber: no shared hub (hub.h) */
    int64_t write_interval_us; /* --write-interval: queued events wait this long at most to
                                  join others in one write (0: written at once) */
    sub_config sub; /* per subscriber (wake and headroom are set by the server) */
    channel *channel; /* GET /channel, Tap-style (NULL: not served) */
    dispatch *tap;    /* its dispatcher, for /metrics */
    webhook *webhook; /* Tap-style delivery's webhook target, for /metrics (NULL: none) */
} server_options;

/* Serves until *stop is set (a signal). Prints "listening on HOST:PORT"
 * on stdout once it listens. Returns 0, or 1 when it cannot listen. */
int server_run(es_store *st, health *h, const server_options *o, volatile sig_atomic_t *stop);

#endif
