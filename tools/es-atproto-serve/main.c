/* es-atproto-serve: the store of es-atproto-ingest handed to applications.
 * GET /subscribe speaks Bluesky Jetstream's WebSocket protocol (a client
 * written for Jetstream connects unchanged); GET /health says whether NATS
 * and the store's stream answer. docs/atproto.md, "Serving". */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/connect.h>
#include <es/es.h>
#include <es/version.h>

#include "cli.h"
#include "health.h"
#include "server.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: es-atproto-serve [--store NAME] [--listen HOST:PORT] [options]\n"
            "\n"
            "Serves an ATProto store (written by es-atproto-ingest) to applications:\n"
            "  GET /subscribe   WebSocket, Bluesky Jetstream's protocol: wantedCollections\n"
            "                   (NSIDs and app.bsky.feed.*-style prefixes), wantedDids,\n"
            "                   cursor (Unix microseconds; none: live only), maxMessageSizeBytes,\n"
            "                   requireHello, and options_update messages\n"
            "  GET /health      {\"status\":\"ok\"} when NATS and the store's stream answer,\n"
            "                   else 503 with the reason\n"
            "\n"
            "Options (each also from the environment variable named):\n"
            "  --store NAME            the event store (ES_STORE; default atproto)\n"
            "  --listen HOST:PORT      where to listen (ES_LISTEN; default 127.0.0.1:6008;\n"
            "                          port 0: any free one, printed at start)\n"
            "  --subscriber-buffer SIZE  JSON queued per subscriber, at most\n"
            "                          (ES_SUBSCRIBER_BUFFER; default 4M)\n"
            "  --slow-timeout DUR      a subscriber whose buffer stays full this long is\n"
            "                          closed (1008 ConsumerTooSlow) (ES_SLOW_TIMEOUT;\n"
            "                          default 10s)\n"
            "  --max-subscribers N     connections beyond are refused (ES_MAX_SUBSCRIBERS;\n"
            "                          default 1000)\n"
            "  --health-interval DUR   how often NATS is asked (ES_HEALTH_INTERVAL; default 1s)\n"
            "  --record-max SIZE       memory to render one record (ES_RECORD_MAX; default 8M)\n"
            "  --admin-token TOKEN     the admin routes (POST /add-repos, /remove-repos,\n"
            "                          GET /repos/DID) need Authorization: Bearer TOKEN\n"
            "                          (ES_ADMIN_TOKEN; default: open)\n"
            "  --fanout MODE           live events: shared (one watch of the store for every\n"
            "                          subscriber) or per-subscriber (a watch each)\n"
            "                          (ES_FANOUT; default shared)\n"
            "  --version, --help\n"
            "\n"
            "Connection (--server is also ES_SERVER):\n%s",
            es_cli_conn_help);
}

enum {
    OPT_STORE = 1,
    OPT_LISTEN,
    OPT_BUFFER,
    OPT_SLOW,
    OPT_MAX_SUBSCRIBERS,
    OPT_HEALTH_INTERVAL,
    OPT_RECORD_MAX,
    OPT_ADMIN_TOKEN,
    OPT_FANOUT,
    OPT_HELP,
    OPT_VERSION,
};

static const es_cli_option options[] = {
    {"store", 0, true, OPT_STORE},
    {"listen", 0, true, OPT_LISTEN},
    {"subscriber-buffer", 0, true, OPT_BUFFER},
    {"slow-timeout", 0, true, OPT_SLOW},
    {"max-subscribers", 0, true, OPT_MAX_SUBSCRIBERS},
    {"health-interval", 0, true, OPT_HEALTH_INTERVAL},
    {"record-max", 0, true, OPT_RECORD_MAX},
    {"admin-token", 0, true, OPT_ADMIN_TOKEN},
    {"fanout", 0, true, OPT_FANOUT},
    {"help", 'h', false, OPT_HELP},
    {"version", 0, false, OPT_VERSION},
    {NULL, 0, false, 0},
};

static const es_cli_env environment[] = {
    {"ES_SERVER", ES_CLI_OPT_SERVER},
    {"ES_STORE", OPT_STORE},
    {"ES_LISTEN", OPT_LISTEN},
    {"ES_SUBSCRIBER_BUFFER", OPT_BUFFER},
    {"ES_SLOW_TIMEOUT", OPT_SLOW},
    {"ES_MAX_SUBSCRIBERS", OPT_MAX_SUBSCRIBERS},
    {"ES_HEALTH_INTERVAL", OPT_HEALTH_INTERVAL},
    {"ES_RECORD_MAX", OPT_RECORD_MAX},
    {"ES_ADMIN_TOKEN", OPT_ADMIN_TOKEN},
    {"ES_FANOUT", OPT_FANOUT},
    {NULL, 0},
};

typedef struct config {
    es_cli_conn conn;
    const char *store;
    char host[256];
    server_options server;
    int64_t health_interval_ms;
} config;

static bool parse_listen(const char *text, config *c)
{
    const char *colon = strrchr(text, ':');
    uint64_t port;
    if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof c->host) {
        es_cli_usage("--listen must be HOST:PORT, not '%.60s'", text);
        return false;
    }
    if (!es_cli_parse_u64(colon + 1, "the port of --listen", &port))
        return false;
    if (port > 65535) {
        es_cli_usage("the port of --listen must be at most 65535");
        return false;
    }
    memcpy(c->host, text, (size_t)(colon - text));
    c->host[colon - text] = '\0';
    c->server.port = (int)port;
    return true;
}

static bool positive_size(const char *text, const char *what, size_t *out)
{
    int64_t v;
    if (!es_cli_parse_size(text, what, &v))
        return false;
    if (v <= 0) {
        es_cli_usage("%s must be more than 0", what);
        return false;
    }
    *out = (size_t)v;
    return true;
}

static bool positive_ms(const char *text, const char *what, int64_t *ms)
{
    int64_t ns;
    if (!es_cli_parse_duration(text, what, &ns))
        return false;
    if (ns < 1000000) {
        es_cli_usage("%s must be at least 1ms", what);
        return false;
    }
    *ms = ns / 1000000;
    return true;
}

/* One option, from the command line or the environment. */
static int set_option(int id, const char *value, void *closure)
{
    config *c = closure;
    uint64_t n;
    bool ok = true;
    switch (id) {
    case OPT_STORE: c->store = value; break;
    case OPT_ADMIN_TOKEN: c->server.admin_token = value; break;
    case OPT_FANOUT:
        ok = strcmp(value, "shared") == 0 || strcmp(value, "per-subscriber") == 0;
        c->server.per_subscriber_watch = strcmp(value, "per-subscriber") == 0;
        if (!ok)
            es_cli_usage("--fanout is shared or per-subscriber");
        break;
    case OPT_LISTEN: ok = parse_listen(value, c); break;
    case OPT_BUFFER: ok = positive_size(value, "--subscriber-buffer", &c->server.sub.buffer_bytes); break;
    case OPT_SLOW: ok = positive_ms(value, "--slow-timeout", &c->server.sub.slow_timeout_ms); break;
    case OPT_HEALTH_INTERVAL: ok = positive_ms(value, "--health-interval", &c->health_interval_ms); break;
    case OPT_RECORD_MAX: ok = positive_size(value, "--record-max", &c->server.sub.record_max); break;
    case OPT_MAX_SUBSCRIBERS:
        ok = es_cli_parse_u64(value, "--max-subscribers", &n) && n > 0 && n <= 1000000;
        if (ok)
            c->server.max_subscribers = (size_t)n;
        else
            es_cli_usage("--max-subscribers must be 1 to 1000000");
        break;
    default: {
        int r = es_cli_conn_set(&c->conn, id, value);
        return r == 0 ? ES_CLI_ERROR : r;
    }
    }
    return ok ? 1 : ES_CLI_ERROR;
}

/* 0 to serve, an exit code (+1) otherwise. */
static int parse(int argc, char **argv, config *c)
{
    es_cli_conn_init(&c->conn, "es-atproto-serve");
    c->conn.max_reconnect = -1; /* a service: keep trying while NATS is away */
    c->conn.report_outages = true;
    c->store = "atproto";
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->server.port = 6008; /* Jetstream's */
    c->server.max_subscribers = 1000;
    c->server.sub.buffer_bytes = 4u << 20;
    c->server.sub.slow_timeout_ms = 10000;
    c->server.sub.record_max = 8u << 20;
    c->health_interval_ms = 1000;
    if (es_cli_env_apply(environment, set_option, c) == ES_CLI_ERROR)
        return ES_EXIT_USAGE + 1;
    es_cli_parser p;
    es_cli_parser_init(&p, argc - 1, argv + 1, options);
    for (int id; (id = es_cli_next(&p)) != ES_CLI_END;) {
        if (id == ES_CLI_ERROR)
            return ES_EXIT_USAGE + 1;
        if (id == ES_CLI_ARG)
            return es_cli_usage("unexpected argument '%.60s'", p.value) + 1;
        if (id == OPT_HELP) {
            usage(stdout);
            return ES_EXIT_OK + 1;
        }
        if (id == OPT_VERSION) {
            printf("es-atproto-serve %s (nats.c %s)\n", es_version(), es_nats_client_version());
            return ES_EXIT_OK + 1;
        }
        if (set_option(id, p.value, c) == ES_CLI_ERROR)
            return ES_EXIT_USAGE + 1;
    }
    c->server.host = c->host;
    return 0;
}

int main(int argc, char **argv)
{
    es_cli_set_prog("es-atproto-serve");
    config c;
    memset(&c, 0, sizeof c);
    int r = parse(argc, argv, &c);
    if (r != 0)
        return r - 1;
    natsConnection *nc = NULL;
    es_store *st = NULL;
    health *h = NULL;
    es_store_options o;
    es_cli_store_options(&c.conn, &o);
    es_status s = es_cli_connect(&c.conn, &nc);
    if (s != ES_OK)
        r = es_cli_fail(s, "connecting");
    else if ((s = es_store_open(nc, c.store, &o, &st)) != ES_OK)
        r = es_cli_fail(s, "opening the store");
    else if ((s = health_start(st, c.health_interval_ms, &h)) != ES_OK)
        r = es_cli_fail(s, "starting");
    if (s == ES_OK) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);
        r = server_run(st, h, &c.server, &stop_requested) == 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    }
    health_destroy(h);
    es_store_destroy(st);
    es_cli_disconnect(nc);
    return r;
}
