#define _POSIX_C_SOURCE 200809L
#include "relay.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include <es/buf.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"

#define SUBSCRIBE_PATH "/xrpc/com.atproto.sync.subscribeRepos"
#define TICK_US        (100 * LWS_US_PER_MS) /* the loop's heartbeat: signals, retries, stats */
#define RX_CHUNK       65536

bool relay_url_parse(const char *url, relay_url *out, const char **why)
{
    memset(out, 0, sizeof *out);
    const char *rest;
    if (strncmp(url, "wss://", 6) == 0) {
        out->tls = true;
        out->port = 443;
        rest = url + 6;
    } else if (strncmp(url, "ws://", 5) == 0) {
        out->port = 80;
        rest = url + 5;
    } else {
        *why = "the relay URL must start with ws:// or wss://";
        return false;
    }
    size_t host_len = strcspn(rest, ":/?#");
    if (host_len == 0 || host_len >= sizeof out->host) {
        *why = "the relay URL has no host (or one too long)";
        return false;
    }
    memcpy(out->host, rest, host_len);
    rest += host_len;
    if (*rest == ':') {
        char *end;
        long port = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || port < 1 || port > 65535) {
            *why = "the relay URL has a bad port";
            return false;
        }
        out->port = (int)port;
        rest = end;
    }
    size_t path_len = strcspn(rest, "?#");
    if (path_len >= sizeof out->path) {
        *why = "the relay URL's path is too long";
        return false;
    }
    if (path_len == 0 || (path_len == 1 && rest[0] == '/'))
        snprintf(out->path, sizeof out->path, "%s", SUBSCRIBE_PATH);
    else
        memcpy(out->path, rest, path_len);
    rest += path_len;
    if (*rest == '?') {
        size_t q = strcspn(rest + 1, "#");
        if (q >= sizeof out->query) {
            *why = "the relay URL's query is too long";
            return false;
        }
        memcpy(out->query, rest + 1, q);
    }
    return true;
}

void relay_url_request(const relay_url *u, bool has_cursor, uint64_t cursor, char *out, size_t size)
{
    int n = snprintf(out, size, "%s", u->path);
    const char *sep = "?";
    if (u->query[0]) {
        n += snprintf(out + n, size - (size_t)n, "?%s", u->query);
        sep = "&";
    }
    if (has_cursor && (size_t)n < size)
        snprintf(out + n, size - (size_t)n, "%scursor=%" PRIu64, sep, cursor);
}

/* ---- the client -------------------------------------------------------------- */

typedef struct relay {
    const ingest_config *cfg;
    ingester *g;
    relay_url url;
    struct lws_context *ctx;
    struct lws *wsi;
    lws_sorted_usec_list_t tick;
    size_t max_frame;
    es_buf rx;       /* the message being received */
    bool discarding; /* the message is over the size limit: drop it */
    es_buf pending;  /* a whole frame that found no room: the socket is paused */
    bool has_pending;
    atomic_bool paused; /* wake the loop on acknowledgements */
    bool has_cursor;    /* where to resume: the last frame taken */
    uint64_t cursor;
    bool took_frame;         /* since the last connection: resets the backoff */
    unsigned reconnects;     /* in a row, without a frame */
    int64_t reconnect_at_ms; /* 0: connected or connecting */
    uint64_t rng;
    int exit_code; /* -1: keep going */
    bool stopping;
} relay;

static void schedule_reconnect(relay *r, const char *why, const char *detail)
{
    r->wsi = NULL;
    if (r->stopping)
        return;
    /* A frame kept for lack of room was not taken: the next connection
     * resumes before it and it comes again, in order with what follows. */
    r->has_pending = false;
    r->pending.len = 0;
    if (r->took_frame)
        r->reconnects = 0;
    r->took_frame = false;
    int64_t delay = es_cli_backoff_ms(r->cfg->reconnect_min_ms, r->cfg->reconnect_max_ms,
                                      r->reconnects++, &r->rng);
    r->reconnect_at_ms = es_cli_monotonic_ms() + delay;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_WARN, why);
    ingest_log_str(&l, "relay", r->cfg->relay);
    if (detail != NULL)
        ingest_log_str(&l, "error", detail);
    ingest_log_i64(&l, "reconnect_in_ms", delay);
    ingest_log_end(&l);
}

static void connect_relay(relay *r)
{
    char path[2200];
    relay_url_request(&r->url, r->has_cursor, r->cursor, path, sizeof path);
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    static const lws_retry_bo_t keepalive = {
        .secs_since_valid_ping = 30,   /* ping a quiet connection ... */
        .secs_since_valid_hangup = 70, /* ... and drop it when nothing answers */
    };
    i.context = r->ctx;
    i.address = r->url.host;
    i.port = r->url.port;
    i.path = path;
    i.host = r->url.host;
    i.origin = r->url.host;
    i.ssl_connection = r->url.tls ? LCCSCF_USE_SSL : 0;
    i.protocol = NULL;
    i.local_protocol_name = "firehose";
    i.retry_and_idle_policy = &keepalive;
    i.userdata = r;
    i.pwsi = &r->wsi;
    r->reconnect_at_ms = 0;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, "connecting");
    ingest_log_str(&l, "host", r->url.host);
    ingest_log_i64(&l, "port", r->url.port);
    ingest_log_str(&l, "path", path);
    ingest_log_end(&l);
    if (lws_client_connect_via_info(&i) == NULL)
        schedule_reconnect(r, "cannot start a connection", NULL);
}

static void pause_rx(relay *r, bool pause)
{
    atomic_store(&r->paused, pause);
    if (r->wsi != NULL)
        lws_rx_flow_control(r->wsi, pause ? 0 : 1);
}

/* What ingester_take (or the decoding threads, through ingester_outcome)
 * reported. Returns -1 to close the connection. */
static int on_take_result(relay *r, ingest_take_result t)
{
    if (t == INGEST_FULL) {
        /* Messages kept coming after reading stopped, past the ingester's
         * slack: drop the connection; the next one resumes after the last
         * frame taken, so this one comes again. */
        ingest_log_msg(LOG_WARN, "frames arrived while reading was stopped: reconnecting", NULL);
        return -1;
    }
    if (t == INGEST_FAILED) {
        r->exit_code = ingester_denied(r->g) ? ES_EXIT_PERMISSION : ES_EXIT_SERVER;
        return -1;
    }
    if (t == INGEST_ERROR_FRAME) {
        /* FutureCursor: our cursor is beyond the relay's sequence (another
         * relay's cursor?) — retrying cannot help; an operator must choose. */
        if (strcmp(ingester_error_name(r->g), "FutureCursor") == 0)
            r->exit_code = INGEST_EXIT_ERROR_FRAME;
        return -1;
    }
    return 0;
}

/* One whole frame: to the ingester, or kept while it is full. Returns
 * -1 to close the connection. */
static int take_frame(relay *r, es_buf *frame)
{
    ingest_take_result t = ingester_take(r->g, frame->data, frame->len);
    if (t == INGEST_TAKEN)
        r->took_frame = true;
    return on_take_result(r, t);
}

static int on_message(relay *r)
{
    if (r->discarding) {
        r->discarding = false;
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "frame refused");
        ingest_log_str(&l, "kind", "limit");
        ingest_log_str(&l, "error", "a message over the frame size limit");
        ingest_log_end(&l);
        return 0;
    }
    if (r->has_pending) {
        /* Paused, and a message came anyway (already read): the frame kept
         * first goes first (the sink takes a few frames past its bounds for
         * this), and this one is kept in its place. */
        int rc = take_frame(r, &r->pending);
        es_buf swap = r->pending;
        r->pending = r->rx;
        r->rx = swap;
        r->rx.len = 0;
        return rc;
    }
    if (!ingester_room(r->g)) {
        /* backpressure: keep this frame, stop reading until there is room */
        es_buf swap = r->pending;
        r->pending = r->rx;
        r->rx = swap;
        r->rx.len = 0;
        r->has_pending = true;
        pause_rx(r, true);
        return 0;
    }
    int rc = take_frame(r, &r->rx);
    r->rx.len = 0;
    return rc;
}

static int on_receive(relay *r, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        r->rx.len = 0;
        r->discarding = false;
    }
    if (!r->discarding) {
        if (len > r->max_frame - r->rx.len) {
            r->discarding = true;
            r->rx.len = 0;
        } else if (es_buf_append(&r->rx, in, len) != ES_OK) {
            r->exit_code = ES_EXIT_SERVER;
            return -1;
        }
    }
    if (!lws_is_final_fragment(wsi))
        return 0;
    return on_message(r);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    relay *r = lws_context_user(lws_get_context(wsi));
    if (r == NULL)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ingest_log_msg(LOG_INFO, "connected", NULL);
        r->rx.len = 0;
        r->discarding = false;
        if (r->has_pending || !ingester_room(r->g))
            pause_rx(r, true);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (on_receive(r, wsi, in, len) != 0)
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (wsi == r->wsi || r->wsi == NULL)
            schedule_reconnect(r, "relay connection failed", in ? (const char *)in : NULL);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (wsi == r->wsi)
            schedule_reconnect(r, "relay connection closed", NULL);
        break;
    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    relay *r = lws_container_of(sul, relay, tick);
    lws_sul_schedule(r->ctx, 0, &r->tick, on_tick, TICK_US);
}

static void wake(void *ctx)
{
    relay *r = ctx;
    if (atomic_load(&r->paused))
        lws_cancel_service(r->ctx);
}

static void log_lws(int level, const char *line)
{
    char text[512];
    snprintf(text, sizeof text, "%s", line);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    ingest_log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "libwebsockets", text);
}

static const struct lws_protocols protocols[] = {
    {"firehose", callback, 0, RX_CHUNK, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* What the loop does between socket events. */
static void relay_step(relay *r)
{
    ingester_tick(r->g);
    /* an error frame (or a failure) met by frames decoded since the last take */
    if (on_take_result(r, ingester_outcome(r->g)) != 0 && r->wsi != NULL)
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    /* Reconnect after the last frame taken: the frames the sink holds are
     * kept until acknowledged, so they need not come again. The frames still
     * decoding are offered first (the cursor then covers them). */
    uint64_t last;
    if (ingester_last_seq(r->g, &last)) {
        r->cursor = last;
        r->has_cursor = true;
    }
    if (r->has_pending && ingester_room(r->g)) {
        r->has_pending = false;
        if (take_frame(r, &r->pending) != 0 && r->wsi != NULL) {
            lws_set_timeout(r->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        }
        r->pending.len = 0;
        if (!r->has_pending)
            pause_rx(r, false);
    }
    if (r->wsi == NULL && r->reconnect_at_ms != 0 && es_cli_monotonic_ms() >= r->reconnect_at_ms &&
        r->exit_code < 0 && ingester_decoding(r->g) == 0)
        connect_relay(r);
}

int ingest_relay(const ingest_config *cfg, volatile sig_atomic_t *stop)
{
    relay r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.exit_code = -1;
    r.rng = es_cli_backoff_seed();
    es_atp_limits lim = {0};
    es_atp_limits_defaults(&lim);
    r.max_frame = lim.max_frame_bytes;
    const char *why;
    if (!relay_url_parse(cfg->relay, &r.url, &why))
        return es_cli_usage("%s", why);
    int code = ingester_open(cfg, cfg->relay, stop, &r.g);
    if (code != ES_EXIT_OK)
        return code;
    r.has_cursor = ingester_resume_cursor(r.g, &r.cursor);

    lws_set_log_level(LLL_ERR | LLL_WARN, log_lws);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = cfg->relay_ca;
    info.user = &r;
    info.fd_limit_per_thread = 4;
    r.ctx = lws_create_context(&info);
    if (r.ctx == NULL) {
        es_cli_error("cannot create the WebSocket client (libwebsockets)");
        ingester_close(r.g);
        return ES_EXIT_SERVER;
    }
    ingester_on_wake(r.g, wake, &r);
    lws_sul_schedule(r.ctx, 0, &r.tick, on_tick, TICK_US);
    connect_relay(&r);
    while (!*stop && r.exit_code < 0) {
        lws_service(r.ctx, 0);
        relay_step(&r);
    }
    /* Stop reading: no more frames are taken, whatever the socket holds. */
    ingest_log_msg(LOG_INFO, "stopping: waiting for appends in flight", NULL);
    r.stopping = true;
    lws_sul_cancel(&r.tick);
    ingester_on_wake(r.g, NULL, NULL);
    lws_context_destroy(r.ctx);
    int drained = ingester_finish(r.g);
    ingester_close(r.g);
    es_buf_free(&r.rx);
    es_buf_free(&r.pending);
    return r.exit_code >= 0 ? r.exit_code : drained;
}
