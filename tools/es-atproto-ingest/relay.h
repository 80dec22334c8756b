/* The relay source: a WebSocket client (libwebsockets) of
 * com.atproto.sync.subscribeRepos that feeds the ingester frame by frame,
 * stops reading the socket while the ingester is full (the relay
 * then sees a slow consumer: TCP backpressure), and reconnects with
 * exponential backoff and jitter from the last frame it took. */
#ifndef ES_INGEST_RELAY_H
#define ES_INGEST_RELAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

/* A relay URL taken apart. The path gets /xrpc/com.atproto.sync.subscribeRepos
 * when it has none; the query (without a leading '?') is kept. */
typedef struct relay_url {
    bool tls;
    char host[256];
    int port;
    char path[1024];
    char query[1024];
} relay_url;

/* false (with a message in *why) for anything but ws:// or wss:// URLs. */
bool relay_url_parse(const char *url, relay_url *out, const char **why);

/* The request path with ?cursor=N (when has_cursor). */
void relay_url_request(const relay_url *u, bool has_cursor, uint64_t cursor, char *out,
                       size_t size);

/* Runs until a signal (or a fatal error frame); returns an exit code. */
int ingest_relay(const ingest_config *cfg, volatile sig_atomic_t *stop);

#endif
