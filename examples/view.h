/* What the view examples (like-indexer, record-kv) share: the command line
 * every tool has (--server, --store), a connection that rides out server
 * restarts, the view's KV bucket, and running a projection until it has
 * caught up or a signal arrives. Uses the public API only. */
#ifndef ES_EXAMPLE_VIEW_H
#define ES_EXAMPLE_VIEW_H

#include <stdbool.h>

#include <es/cbor.h>
#include <es/es.h>
#include <es/json.h>

typedef struct view_args {
    const char *server;       /* --server, or $NATS_URL, or nats://127.0.0.1:4222 */
    const char *store;        /* --store (default "atproto", the ingester's) */
    const char *bucket;       /* --bucket (default "<store>_<view>") */
    const char *name;         /* --name: the projection (default the tool's name) */
    int partitions;           /* --partitions (default 1) */
    int instance, instances;  /* --instance I --instances M */
    bool exit_when_caught_up; /* --exit-when-caught-up */
    const char *command;      /* first non-option argument, or NULL */
    const char *operand;      /* the one after it, or NULL */
} view_args;

/* Parses argv; on a bad or --help argument prints `usage` and exits. */
void view_parse_args(int argc, char **argv, const char *tool, const char *usage, view_args *a);

typedef struct view {
    natsConnection *nc;
    jsCtx *js;
    es_store *store;
    kvStore *kv;
    char bucket[128];
} view;

/* Connects, opens the store and the view's bucket "<store>_<suffix>" (or
 * --bucket), creating the bucket when `create`. Exits with a message on
 * failure. */
void view_open(const view_args *a, const char *suffix, bool create, view *v);
void view_close(view *v);

/* Creates the projection (ordered, the given filters) when missing and runs
 * `h` over it until caught up (--exit-when-caught-up) or until SIGINT or
 * SIGTERM. Returns the process exit status. */
int view_run(const view_args *a, view *v, const es_filter *filters, size_t nfilters,
             const es_projection_handler *h);

/* Every current (not deleted) entry of keys matching `pattern`, to `cb`;
 * stops at the first status other than ES_OK and returns it. */
es_status view_scan(view *v, const char *pattern, es_status (*cb)(kvEntry *e, void *closure),
                    void *closure);

/* Maps a failed nats.c call to a status a projection handler returns:
 * connection trouble is retryable. */
es_status view_nats_status(natsStatus s);

#endif
