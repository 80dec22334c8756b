/* es-atproto-serve: the store of es-atproto-ingest handed to applications.
 * GET /subscribe speaks Bluesky Jetstream's WebSocket protocol (a client
 * written for Jetstream connects unchanged); GET /health says whether NATS
 * and the store's stream answer. docs/atproto.md, "Serving". */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <es/atproto.h>
#include <es/connect.h>
#include <es/es.h>
#include <es/version.h>

#include "channel.h"
#include "compress.h"
#include "cli.h"
#include "dispatch.h"
#include "health.h"
#include "nsfilter.h"
#include "server.h"
#include "webhook.h"

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
            "                   requireHello, compress (zstd frames, as binary messages;\n"
            "                   also the header Socket-Encoding: zstd), and options_update\n"
            "                   messages\n"
            "  GET /health      {\"status\":\"ok\"} when NATS and the store's stream answer,\n"
            "                   else 503 with the reason\n"
            "  GET /channel     with --channel: WebSocket, Tap's delivery: every event once\n"
            "                   acknowledged ({\"type\":\"ack\",\"id\":N}), shared by the clients\n"
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
            "  --replay-window N       events a subscriber replaying from a cursor holds at\n"
            "                          once: the store is read N at a time as the client\n"
            "                          takes them (ES_REPLAY_WINDOW; 1 to 1024, default 256)\n"
            "  --health-interval DUR   how often NATS is asked (ES_HEALTH_INTERVAL; default 1s)\n"
            "  --record-max SIZE       memory to render one record (ES_RECORD_MAX; default 8M)\n"
            "  --admin-token TOKEN     the admin routes (POST /add-repos, /remove-repos,\n"
            "                          GET /repos/DID) need Authorization: Bearer TOKEN\n"
            "                          (ES_ADMIN_TOKEN; default: open)\n"
            "  --tls-cert FILE         serve HTTPS and WSS only, with this certificate chain\n"
            "                          (PEM) (ES_TLS_CERT; default: plain HTTP and WS)\n"
            "  --tls-key FILE          its private key (PEM) (ES_TLS_KEY); --tls-cert and\n"
            "                          --tls-key go together. (--tlscert, --tlskey and --tlsca\n"
            "                          below are the NATS connection's own.)\n"
            "  --channel MODE          serve GET /channel: acks (clients acknowledge each event)\n"
            "                          or fire-and-forget (done once written) (ES_CHANNEL)\n"
            "  --ack-timeout DUR       an event not acknowledged this long goes again, to any\n"
            "                          client (ES_ACK_TIMEOUT; default 60s)\n"
            "  --max-in-flight N       events sent and not acknowledged, at most\n"
            "                          (ES_MAX_IN_FLIGHT; 1..256, default 32)\n"
            "  --takeover-after DUR    events a dead instance held go to another (or to it,\n"
            "                          restarted) after this (ES_TAKEOVER_AFTER; default 30s)\n"
            "  --tap-consumer NAME     the durable consumer of Tap-style delivery; instances\n"
            "                          sharing it share its position (ES_TAP_CONSUMER;\n"
            "                          default tap)\n"
            "  --collections LIST      Tap-style delivery sends only the record events of these\n"
            "                          collections: NSIDs and prefixes (app.bsky.feed.*), as\n"
            "                          wantedCollections; identity events always go\n"
            "                          (ES_COLLECTIONS; Tap's --collection-filters;\n"
            "                          default: every collection)\n"
            "  --zstd-dictionary FILE  compress=true's frames use this zstd dictionary (e.g.\n"
            "                          Jetstream's; made with zstd --train), and name its ID\n"
            "                          (ES_ZSTD_DICTIONARY; default: frames without one)\n"
            "  --fanout MODE           live events: shared (one watch of the store for every\n"
            "                          subscriber) or per-subscriber (a watch each)\n"
            "                          (ES_FANOUT; default shared)\n"
            "  --write-interval DUR    subscribers are written at most this often; events\n"
            "                          within it go in one write (ES_WRITE_INTERVAL;\n"
            "                          default 0: at once)\n"
            "  --version, --help\n"
            "\n"
            "Tap-style delivery to a webhook (docs/serve.md, \"Webhooks\"):\n"
            "  --webhook-url URL       POST each event's Tap JSON there; a 2xx acknowledges it\n"
            "                          (ES_WEBHOOK_URL; default: no webhook)\n"
            "  --webhook-secret TEXT   sign requests: X-Es-Signature: t=<unix>,v1=<hex\n"
            "                          HMAC-SHA256 of \"<t>.<body>\"> (ES_WEBHOOK_SECRET)\n"
            "  --webhook-attempts N    requests per event before its dead letter\n"
            "                          (ES_WEBHOOK_ATTEMPTS; default 10)\n"
            "  --webhook-timeout DUR   one request (ES_WEBHOOK_TIMEOUT; default 10s)\n"
            "  --webhook-backoff DUR   the first retry's delay, doubled up to 60s, with jitter\n"
            "                          (ES_WEBHOOK_BACKOFF; default 1s)\n"
            "  --webhook-retry-after-max DUR  a 429 or 503 with Retry-After (seconds or an\n"
            "                          HTTP-date) waits that long, when longer than the\n"
            "                          backoff, up to this (ES_WEBHOOK_RETRY_AFTER_MAX;\n"
            "                          default 10m)\n"
            "  (with --max-in-flight, --takeover-after, --tap-consumer and --collections as\n"
            "  for /channel)\n"
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
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_CHANNEL,
    OPT_ACK_TIMEOUT,
    OPT_MAX_IN_FLIGHT,
    OPT_TAKEOVER_AFTER,
    OPT_TAP_CONSUMER,
    OPT_COLLECTIONS,
    OPT_WEBHOOK_URL,
    OPT_WEBHOOK_SECRET,
    OPT_WEBHOOK_ATTEMPTS,
    OPT_WEBHOOK_TIMEOUT,
    OPT_WEBHOOK_BACKOFF,
    OPT_WEBHOOK_RETRY_AFTER_MAX,
    OPT_FANOUT,
    OPT_ZSTD_DICTIONARY,
    OPT_WRITE_INTERVAL,
    OPT_REPLAY_WINDOW,
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
    {"tls-cert", 0, true, OPT_TLS_CERT},
    {"tls-key", 0, true, OPT_TLS_KEY},
    {"channel", 0, true, OPT_CHANNEL},
    {"ack-timeout", 0, true, OPT_ACK_TIMEOUT},
    {"max-in-flight", 0, true, OPT_MAX_IN_FLIGHT},
    {"takeover-after", 0, true, OPT_TAKEOVER_AFTER},
    {"tap-consumer", 0, true, OPT_TAP_CONSUMER},
    {"collections", 0, true, OPT_COLLECTIONS},
    {"webhook-url", 0, true, OPT_WEBHOOK_URL},
    {"webhook-secret", 0, true, OPT_WEBHOOK_SECRET},
    {"webhook-attempts", 0, true, OPT_WEBHOOK_ATTEMPTS},
    {"webhook-timeout", 0, true, OPT_WEBHOOK_TIMEOUT},
    {"webhook-backoff", 0, true, OPT_WEBHOOK_BACKOFF},
    {"webhook-retry-after-max", 0, true, OPT_WEBHOOK_RETRY_AFTER_MAX},
    {"fanout", 0, true, OPT_FANOUT},
    {"zstd-dictionary", 0, true, OPT_ZSTD_DICTIONARY},
    {"write-interval", 0, true, OPT_WRITE_INTERVAL},
    {"replay-window", 0, true, OPT_REPLAY_WINDOW},
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
    {"ES_TLS_CERT", OPT_TLS_CERT},
    {"ES_TLS_KEY", OPT_TLS_KEY},
    {"ES_CHANNEL", OPT_CHANNEL},
    {"ES_ACK_TIMEOUT", OPT_ACK_TIMEOUT},
    {"ES_MAX_IN_FLIGHT", OPT_MAX_IN_FLIGHT},
    {"ES_TAKEOVER_AFTER", OPT_TAKEOVER_AFTER},
    {"ES_TAP_CONSUMER", OPT_TAP_CONSUMER},
    {"ES_COLLECTIONS", OPT_COLLECTIONS},
    {"ES_WEBHOOK_URL", OPT_WEBHOOK_URL},
    {"ES_WEBHOOK_SECRET", OPT_WEBHOOK_SECRET},
    {"ES_WEBHOOK_ATTEMPTS", OPT_WEBHOOK_ATTEMPTS},
    {"ES_WEBHOOK_TIMEOUT", OPT_WEBHOOK_TIMEOUT},
    {"ES_WEBHOOK_BACKOFF", OPT_WEBHOOK_BACKOFF},
    {"ES_WEBHOOK_RETRY_AFTER_MAX", OPT_WEBHOOK_RETRY_AFTER_MAX},
    {"ES_FANOUT", OPT_FANOUT},
    {"ES_ZSTD_DICTIONARY", OPT_ZSTD_DICTIONARY},
    {"ES_WRITE_INTERVAL", OPT_WRITE_INTERVAL},
    {"ES_REPLAY_WINDOW", OPT_REPLAY_WINDOW},
    {NULL, 0},
};

typedef struct config {
    es_cli_conn conn;
    const char *store;
    char host[256];
    server_options server;
    int64_t health_interval_ms;
    bool channel;            /* --channel: Tap-style delivery to GET /channel */
    channel_config channel_cfg;
    dispatch_config tap;
    webhook_options hook; /* --webhook-url: Tap-style delivery to a webhook instead */
    sub_replay_stats replays; /* /metrics */
    const char *zstd_dictionary; /* --zstd-dictionary (NULL: none) */
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

/* --write-interval: 0 allowed, up to a second (a latency added to every event). */
static bool write_interval(const char *text, int64_t *us)
{
    int64_t ns;
    if (!es_cli_parse_duration(text, "--write-interval", &ns))
        return false;
    if (ns > 1000000000) {
        es_cli_usage("--write-interval must be at most 1s");
        return false;
    }
    *us = ns / 1000;
    return true;
}

/* A file the server reads at start (a certificate, a key). */
static bool readable(const char *path, const char *what, const char **out)
{
    if (access(path, R_OK) != 0) {
        es_cli_usage("%s: cannot read '%.200s': %s", what, path, strerror(errno));
        return false;
    }
    *out = path;
    return true;
}

/* --collections: checked here so that a typo is a usage error. */
static bool collections(const char *text, const char **out)
{
    es_atp_filter *f = NULL;
    es_status s = es_atp_filter_create(&f);
    if (s == ES_OK)
        s = es_atp_filter_add_collections(f, text);
    es_atp_filter_destroy(f);
    if (s != ES_OK) {
        es_cli_usage("--collections: %s", es_last_error());
        return false;
    }
    *out = text;
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
    case OPT_TLS_CERT: ok = readable(value, "--tls-cert", &c->server.tls_cert); break;
    case OPT_TLS_KEY: ok = readable(value, "--tls-key", &c->server.tls_key); break;
    case OPT_FANOUT:
        ok = strcmp(value, "shared") == 0 || strcmp(value, "per-subscriber") == 0;
        c->server.per_subscriber_watch = strcmp(value, "per-subscriber") == 0;
        if (!ok)
            es_cli_usage("--fanout is shared or per-subscriber");
        break;
    case OPT_LISTEN: ok = parse_listen(value, c); break;
    case OPT_BUFFER: ok = positive_size(value, "--subscriber-buffer", &c->server.sub.buffer_bytes); break;
    case OPT_WRITE_INTERVAL: ok = write_interval(value, &c->server.write_interval_us); break;
    case OPT_SLOW: ok = positive_ms(value, "--slow-timeout", &c->server.sub.slow_timeout_ms); break;
    case OPT_HEALTH_INTERVAL: ok = positive_ms(value, "--health-interval", &c->health_interval_ms); break;
    case OPT_RECORD_MAX: ok = positive_size(value, "--record-max", &c->server.sub.record_max); break;
    case OPT_WEBHOOK_URL: c->hook.url = value; break;
    case OPT_WEBHOOK_SECRET: c->hook.secret = value; break;
    case OPT_WEBHOOK_TIMEOUT: ok = positive_ms(value, "--webhook-timeout", &c->hook.timeout_ms); break;
    case OPT_WEBHOOK_BACKOFF: ok = positive_ms(value, "--webhook-backoff", &c->hook.backoff_first_ms); break;
    case OPT_WEBHOOK_RETRY_AFTER_MAX:
        ok = positive_ms(value, "--webhook-retry-after-max", &c->hook.retry_after_max_ms);
        break;
    case OPT_WEBHOOK_ATTEMPTS:
        ok = es_cli_parse_u64(value, "--webhook-attempts", &n) && n > 0 && n <= 1000;
        if (ok)
            c->hook.attempts = (unsigned)n;
        else
            es_cli_usage("--webhook-attempts must be 1 to 1000");
        break;
    case OPT_CHANNEL:
        c->channel = true;
        c->channel_cfg.fire_and_forget = strcmp(value, "fire-and-forget") == 0;
        if (strcmp(value, "acks") != 0 && !c->channel_cfg.fire_and_forget) {
            es_cli_usage("--channel is acks or fire-and-forget, not '%.40s'", value);
            ok = false;
        }
        break;
    case OPT_ACK_TIMEOUT: ok = positive_ms(value, "--ack-timeout", &c->channel_cfg.ack_timeout_ms); break;
    case OPT_TAKEOVER_AFTER: ok = positive_ms(value, "--takeover-after", &c->tap.takeover_ms); break;
    case OPT_TAP_CONSUMER: c->tap.consumer = value; break;
    case OPT_COLLECTIONS: ok = collections(value, &c->tap.collections); break;
    case OPT_ZSTD_DICTIONARY: c->zstd_dictionary = value; break;
    case OPT_MAX_IN_FLIGHT:
        ok = es_cli_parse_u64(value, "--max-in-flight", &n) && n > 0 && n <= DISPATCH_IN_FLIGHT_MAX;
        if (ok)
            c->tap.max_in_flight = c->channel_cfg.max_in_flight = (int)n;
        else
            es_cli_usage("--max-in-flight must be 1 to %d", DISPATCH_IN_FLIGHT_MAX);
        break;
    case OPT_REPLAY_WINDOW:
        ok = es_cli_parse_u64(value, "--replay-window", &n) && n > 0 && n <= ES_READER_BATCH_MAX;
        if (ok)
            c->server.sub.replay_window = (size_t)n;
        else
            es_cli_usage("--replay-window must be 1 to %d", ES_READER_BATCH_MAX);
        break;
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
    c->server.write_interval_us = 0; /* written at once (--write-interval) */
    c->server.sub.record_max = 8u << 20;
    c->server.sub.replay_window = SUB_REPLAY_WINDOW;
    c->server.sub.stats = &c->replays;
    c->health_interval_ms = 1000;
    channel_config_init(&c->channel_cfg);
    dispatch_config_init(&c->tap);
    webhook_options_init(&c->hook);
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
    if ((c->server.tls_cert == NULL) != (c->server.tls_key == NULL))
        return es_cli_usage("--tls-cert and --tls-key go together") + 1;
    c->server.host = c->host;
    if (c->channel && c->hook.url != NULL)
        return es_cli_usage("--channel and --webhook-url: Tap-style delivery has one target") + 1;
    /* read now: a bad dictionary stops the start, before any connection */
    if (compressor_create(c->zstd_dictionary, &c->server.sub.compress) != ES_OK)
        return es_cli_usage("%s", es_last_error()) + 1;
    return 0;
}

/* Tap-style delivery: the dispatcher and its one target, GET /channel's
 * clients or the webhook, started. */
static es_status start_tap(es_store *st, config *c)
{
    if (!c->channel && c->hook.url == NULL)
        return ES_OK;
    if (c->tap.takeover_ms < 1000)
        return es_error(ES_ERR_INVALID, "--takeover-after must be at least 1s");
    tap_target t = {NULL, NULL};
    es_status s = dispatch_create(st, &c->tap, &c->server.tap);
    if (s == ES_OK && c->channel) {
        s = channel_create(&c->channel_cfg, dispatch_done, c->server.tap, &c->server.channel);
        if (s == ES_OK)
            t = channel_target(c->server.channel);
    } else if (s == ES_OK) {
        c->hook.max_in_flight = (size_t)c->tap.max_in_flight;
        s = webhook_start(&c->hook, dispatch_done, c->server.tap, &c->server.webhook);
        if (s == ES_OK)
            t = webhook_target(c->server.webhook);
    }
    if (s == ES_OK)
        s = dispatch_start(c->server.tap, &t);
    return s;
}

/* The webhook stops calling the dispatcher back first (its answers come on
 * a thread of its own); the dispatcher stops sending before its target
 * goes. Events not done stay unacknowledged in the store. */
static void stop_tap(config *c)
{
    webhook_stop(c->server.webhook);
    dispatch_destroy(c->server.tap);
    channel_destroy(c->server.channel);
    webhook_destroy(c->server.webhook);
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
    if (s == ES_OK && ns_index_open(st, &c.server.sub.ns) != ES_OK) /* a user that may not create it */
        fprintf(stderr, "es-atproto-serve: no entity-type index (%s): wantedCollections are "
                        "filtered here, not by the NATS server\n", es_last_error());
    if (s == ES_OK && (s = start_tap(st, &c)) != ES_OK)
        r = es_cli_fail(s, c.channel ? "starting /channel" : "starting the webhook delivery");
    if (s == ES_OK) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);
        r = server_run(st, h, &c.server, &stop_requested) == 0 ? ES_EXIT_OK : ES_EXIT_USAGE;
    }
    ns_index_close(c.server.sub.ns);
    stop_tap(&c);
    health_destroy(h);
    es_store_destroy(st);
    es_cli_disconnect(nc);
    compressor_destroy(c.server.sub.compress);
    return r;
}
