/* libwebsockets on the server side: one protocol serves plain HTTP
 * (/health) and the WebSocket upgrade of /subscribe, the way Jetstream's
 * clients connect (no subprotocol). The subscribers' watch threads wake
 * the loop with lws_cancel_service; the loop then asks every connection to
 * write what its subscriber queued, at most once per write interval
 * (server_options.write_interval_us): with a thousand subscribers the cost
 * is per write (a system call, a TCP segment, a wake of the reader), so
 * events that arrive within the interval go out in one write each. */
#define _POSIX_C_SOURCE 200809L
#include "server.h"

#include "admin.h"
#include "compress.h"
#include "hub.h"
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include <es/buf.h>

#define TICK_US          (200 * LWS_US_PER_MS) /* how soon a signal is seen */
#define SUBSCRIBE_PATH   "/subscribe"
#define HEALTH_PATH      "/health"
#define METRICS_PATH     "/metrics"
#define CHANNEL_PATH     "/channel"
#define QUERY_ARG_MAX    4096
#define HTTP_HEADERS_MAX 32768 /* long query strings (wantedDids) fit */
#define WRITE_BATCH_MAX  65536 /* bytes of frames written to a subscriber at once */
#define FRAME_HEADER_MAX 10

typedef struct server {
    es_store *st;
    health *health;
    server_options o;
    struct lws_context *ctx;
    lws_sorted_usec_list_t tick;
    volatile sig_atomic_t *stop;
    size_t subscribers;
    admin *admin; /* the admin routes */
    hub *hub;     /* the shared live fan-out (NULL: --fanout per-subscriber) */
    _Atomic bool wake_pending; /* the loop was woken and has not looked yet */
    /* the loop's thread only: the pass over the connections (write_pass) */
    lws_sorted_usec_list_t pass;
    bool pass_scheduled;
    lws_usec_t last_pass_us;
    const struct lws_protocols *protocol; /* the one protocol (protocols[0]) */
    /* /metrics: counted on the loop's thread, which also serves them */
    uint64_t connections, refused, events_sent, bytes_sent, closed_slow, closed_policy;
    unsigned char wbuf[LWS_PRE + WRITE_BATCH_MAX]; /* frames for one write (on_writeable) */
    /* subscribers being freed off the loop (reap_later) */
    pthread_mutex_t reap_lock;
    pthread_cond_t reaped;
    size_t reaping;
} server;

typedef struct reap_job {
    server *srv;
    subscriber *sub;
} reap_job;

typedef struct session {
    subscriber *sub;
    channel_client *tap; /* a /channel client instead */
    es_buf rx; /* a client message arriving in fragments, or an admin request's body */
    bool admin_post;   /* an admin POST whose body is arriving */
    bool admin_over;   /* ... past ADMIN_BODY_MAX */
    bool closing;      /* the subscriber asked to close: counted once */
    char admin_path[32];
} session;

static server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* From any thread. One event of the fan-out wakes up to every subscriber:
 * one wake of the loop (a write to its pipe) until it has looked. */
static void wake(void *arg)
{
    server *srv = arg;
    if (!atomic_exchange(&srv->wake_pending, true))
        lws_cancel_service(srv->ctx);
}

static void reap_now(server *srv, subscriber *sub)
{
    subscriber_destroy(sub);
    pthread_mutex_lock(&srv->reap_lock);
    if (--srv->reaping == 0)
        pthread_cond_broadcast(&srv->reaped);
    pthread_mutex_unlock(&srv->reap_lock);
}

static void *reap(void *arg)
{
    reap_job j = *(reap_job *)arg;
    free(arg);
    reap_now(j.srv, j.sub);
    return NULL;
}

/* Frees a closed connection's subscriber on a thread of its own: stopping
 * its watch may wait on NATS (seconds while NATS is away), and the loop
 * must go on answering /health and the other subscribers meanwhile. */
static void reap_later(server *srv, subscriber *sub)
{
    subscriber_end(sub); /* no wake of the loop from now on */
    pthread_mutex_lock(&srv->reap_lock);
    srv->reaping++;
    pthread_mutex_unlock(&srv->reap_lock);
    reap_job *j = malloc(sizeof *j);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    bool started = false;
    if (j != NULL) {
        *j = (reap_job){srv, sub};
        started = pthread_create(&t, &attr, reap, j) == 0;
    }
    pthread_attr_destroy(&attr);
    if (!started) { /* no thread: here, then */
        free(j);
        reap_now(srv, sub);
    }
}

static int respond(struct lws *wsi, unsigned status, const char *body)
{
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - 1;
    size_t len = strlen(body);
    if (lws_add_http_common_headers(wsi, status, "application/json", len, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    memcpy(start, body, len);
    if (lws_write(wsi, start, len, LWS_WRITE_HTTP_FINAL) != (int)len)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Prometheus' text format (tools/common/metrics.h's writer). */
static int respond_metrics(struct lws *wsi)
{
    server *srv = server_of(wsi);
    char health_body[512];
    bool ok = health_report(srv->health, health_body, sizeof health_body);
    es_buf b = ES_BUF_INIT;
    es_prom_one(&b, "es_serve_up", "gauge", "1 when NATS and the store's stream answer (/health).",
                ok ? 1 : 0);
    es_prom_one(&b, "es_serve_subscribers", "gauge", "WebSocket subscribers connected now.",
                (double)srv->subscribers);
    es_prom_one(&b, "es_serve_fanout_subscribers", "gauge",
                "Subscribers served by the shared live fan-out (the others replay through a "
                "watch of their own).",
                srv->hub ? (double)hub_members(srv->hub) : 0);
    es_prom_one(&b, "es_serve_connections_total", "counter", "Subscribers accepted.",
                (double)srv->connections);
    es_prom_one(&b, "es_serve_refused_total", "counter",
                "Subscribers refused (--max-subscribers, a bad query, a failed start).",
                (double)srv->refused);
    es_prom_one(&b, "es_serve_events_sent_total", "counter", "Events sent to subscribers.",
                (double)srv->events_sent);
    es_prom_one(&b, "es_serve_bytes_sent_total", "counter", "Bytes of events sent.",
                (double)srv->bytes_sent);
    es_prom_family(&b, "es_serve_closed_total", "counter",
                   "Subscribers the server closed, by reason.");
    es_prom_sample(&b, "es_serve_closed_total", "reason", "too_slow", (double)srv->closed_slow);
    es_prom_sample(&b, "es_serve_closed_total", "reason", "policy", (double)srv->closed_policy);
    if (srv->o.sub.stats != NULL)
        subscriber_metrics(srv->o.sub.stats, &b);
    if (srv->o.sub.compress != NULL)
        compressor_metrics(srv->o.sub.compress, &b);
    if (srv->o.tap != NULL)
        dispatch_metrics(srv->o.tap, &b);
    if (srv->o.channel != NULL)
        channel_metrics(srv->o.channel, &b);
    if (srv->o.webhook != NULL)
        webhook_metrics(srv->o.webhook, &b);
    int r = -1;
    unsigned char head[LWS_PRE + 512], *start = head + LWS_PRE, *p = start,
                                       *end = head + sizeof head - 1;
    char *body = malloc(LWS_PRE + b.len + 1);
    if (body != NULL && b.len > 0) {
        memcpy(body + LWS_PRE, b.data, b.len);
        if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK,
                                        "text/plain; version=0.0.4; charset=utf-8", b.len, &p,
                                        end) == 0 &&
            lws_finalize_write_http_header(wsi, start, &p, end) == 0 &&
            lws_write(wsi, (unsigned char *)body + LWS_PRE, b.len, LWS_WRITE_HTTP_FINAL) ==
                (int)b.len)
            r = lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    free(body);
    es_buf_free(&b);
    return r;
}

/* An admin route: refused without the token; a GET answered now, a POST
 * once its body is in (on_admin_body). */
static int on_admin(struct lws *wsi, session *ss, const char *path, bool post)
{
    server *srv = server_of(wsi);
    char auth[512];
    int n = lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (!admin_authorized(srv->admin, n > 0 ? auth : NULL))
        return respond(wsi, HTTP_STATUS_UNAUTHORIZED,
                       "{\"error\":\"an admin route: Authorization: Bearer <token> required\"}");
    if (!post) {
        char out[900];
        unsigned status = admin_handle(srv->admin, path, NULL, 0, out, sizeof out);
        return respond(wsi, status, out);
    }
    snprintf(ss->admin_path, sizeof ss->admin_path, "%s", path);
    ss->admin_post = true;
    ss->admin_over = false;
    ss->rx.len = 0;
    return 0; /* the body comes in LWS_CALLBACK_HTTP_BODY */
}

static int on_admin_body(session *ss, const void *in, size_t len)
{
    if (!ss->admin_post)
        return 0;
    if (ss->rx.len + len > ADMIN_BODY_MAX || es_buf_append(&ss->rx, in, len) != ES_OK)
        ss->admin_over = true;
    return 0;
}

static int on_admin_done(struct lws *wsi, session *ss)
{
    if (!ss->admin_post)
        return 0;
    ss->admin_post = false;
    char out[900];
    unsigned status = HTTP_STATUS_REQ_ENTITY_TOO_LARGE;
    if (ss->admin_over)
        snprintf(out, sizeof out, "{\"error\":\"the body is over %zu bytes\"}", ADMIN_BODY_MAX);
    else
        status = admin_handle(server_of(wsi)->admin, ss->admin_path, (const char *)ss->rx.data,
                              ss->rx.len, out, sizeof out);
    es_buf_free(&ss->rx);
    return respond(wsi, status, out);
}

static int on_http(struct lws *wsi, session *ss, const char *path)
{
    bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    if (admin_route(path, post))
        return on_admin(wsi, ss, path, post);
    if (strcmp(path, METRICS_PATH) == 0)
        return respond_metrics(wsi);
    if (strcmp(path, HEALTH_PATH) == 0) {
        char body[512];
        bool ok = health_report(server_of(wsi)->health, body, sizeof body);
        return respond(wsi, ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE, body);
    }
    if (strcmp(path, SUBSCRIBE_PATH) == 0 ||
        (strcmp(path, CHANNEL_PATH) == 0 && server_of(wsi)->o.channel != NULL))
        return respond(wsi, HTTP_STATUS_BAD_REQUEST,
                       "{\"error\":\"a WebSocket: send an Upgrade request\"}");
    return respond(wsi, HTTP_STATUS_NOT_FOUND, "{\"error\":\"not found\"}");
}

static int close_with(struct lws *wsi, int code, const char *reason)
{
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
    return -1;
}

/* Is this upgrade for /channel (when served)? */
static bool channel_request(struct lws *wsi)
{
    char uri[256];
    return server_of(wsi)->o.channel != NULL &&
           lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 &&
           strcmp(uri, CHANNEL_PATH) == 0;
}

/* Only /subscribe and /channel upgrade, and no more subscribers than allowed. */
static int filter_connection(struct lws *wsi)
{
    char uri[256];
    if (channel_request(wsi))
        return 0;
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, SUBSCRIBE_PATH) != 0)
        return -1;
    server *srv = server_of(wsi);
    if (srv->subscribers >= srv->o.max_subscribers) {
        srv->refused++;
        return -1;
    }
    return 0;
}

/* Ends a subscriber whose connection is refused before it was ever
 * served (LWS_CALLBACK_CLOSED then finds nothing to free). */
static int refuse(struct lws *wsi, session *ss, int code, const char *reason)
{
    int r = close_with(wsi, code, reason);
    subscriber_destroy(ss->sub);
    ss->sub = NULL;
    server_of(wsi)->subscribers--;
    server_of(wsi)->refused++;
    return r;
}

static int on_established(struct lws *wsi, session *ss)
{
    server *srv = server_of(wsi);
    if (channel_request(wsi)) {
        if (channel_attach(srv->o.channel, &ss->tap) != ES_OK)
            return close_with(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        lws_callback_on_writable(wsi); /* events may be waiting already */
        return 0;
    }
    sub_config cfg = srv->o.sub;
    cfg.headroom = LWS_PRE;
    cfg.wake = wake;
    cfg.wake_arg = srv;
    cfg.hub = srv->hub;
    if (subscriber_create(srv->st, &cfg, &ss->sub) != ES_OK)
        return close_with(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    srv->subscribers++;
    srv->connections++;
    char arg[QUERY_ARG_MAX];
    /* Jetstream takes the header as compress=true's other form */
    if (lws_hdr_custom_copy(wsi, arg, sizeof arg, "socket-encoding:", 16) > 0 &&
        strstr(arg, "zstd") != NULL)
        subscriber_query(ss->sub, "compress", "true");
    for (int i = 0; lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
         i++) {
        char *eq = strchr(arg, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        if (subscriber_query(ss->sub, arg, eq + 1) != ES_OK)
            return refuse(wsi, ss, LWS_CLOSE_STATUS_POLICY_VIOLATION, es_last_error());
    }
    if (subscriber_start(ss->sub) != ES_OK)
        return refuse(wsi, ss, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, es_last_error());
    return 0;
}

/* A client message arriving in fragments, gathered in ss->rx: 1 when it is
 * whole, 0 when more is to come, -1 when the connection must close. */
static int gather(struct lws *wsi, session *ss, const void *in, size_t len)
{
    if (ss->rx.len + len > SUB_MESSAGE_MAX)
        return close_with(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
    if (es_buf_append(&ss->rx, in, len) != ES_OK)
        return close_with(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    return lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
}

static int on_receive(struct lws *wsi, session *ss, const void *in, size_t len)
{
    if (ss->sub == NULL)
        return -1;
    int whole = gather(wsi, ss, in, len);
    if (whole <= 0)
        return whole;
    es_status s = subscriber_message(ss->sub, (const char *)ss->rx.data, ss->rx.len);
    ss->rx.len = 0;
    return s == ES_OK ? 0 : close_with(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, es_last_error());
}

/* A WebSocket frame's header (server to client: unmasked) for a payload
 * of `len` bytes, text or binary (compress=true's zstd frames), at p: its
 * size. */
static size_t frame_header(unsigned char *p, size_t len, bool binary)
{
    p[0] = binary ? 0x82 : 0x81; /* FIN, binary or text */
    if (len < 126) {
        p[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        return 4;
    }
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Writes what the subscriber queued: as many whole messages as fit in the
 * server's write buffer, framed here and sent with ONE write (a send per
 * message would cost a system call each: with a thousand subscribers, the
 * most of the server's time), or one message larger than the buffer on
 * its own. One lws_write per writeable callback, as libwebsockets asks. */
static int on_writeable(struct lws *wsi, session *ss)
{
    if (ss->sub == NULL)
        return -1; /* refused (refuse): only its close is left to send */
    int code;
    char reason[124];
    server *srv = server_of(wsi);
    sub_msg *m = subscriber_next(ss->sub, SIZE_MAX, &code, reason, sizeof reason);
    if (m == NULL && code != 0) {
        if (ss->closing)
            return -1;
        ss->closing = true;
        if (strstr(reason, "ConsumerTooSlow") != NULL)
            srv->closed_slow++;
        else
            srv->closed_policy++;
        return close_with(wsi, code, reason);
    }
    if (m == NULL)
        return 0;
    bool binary = subscriber_binary(ss->sub);
    if (m->len + FRAME_HEADER_MAX > WRITE_BATCH_MAX) {
        int n =
            lws_write(wsi, m->data + LWS_PRE, m->len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        size_t len = m->len;
        sub_msg_release(m);
        if (n < (int)len)
            return -1;
        srv->events_sent++;
        srv->bytes_sent += len;
        lws_callback_on_writable(wsi); /* there may be more */
        return 0;
    }
    unsigned char *out = srv->wbuf + LWS_PRE;
    size_t used = 0;
    while (m != NULL) {
        used += frame_header(out + used, m->len, binary);
        memcpy(out + used, m->data + LWS_PRE, m->len);
        used += m->len;
        srv->events_sent++;
        srv->bytes_sent += m->len;
        sub_msg_release(m);
        size_t room = WRITE_BATCH_MAX - used;
        m = room > FRAME_HEADER_MAX
                ? subscriber_next(ss->sub, room - FRAME_HEADER_MAX, &code, reason, sizeof reason)
                : NULL;
    }
    /* frames already made: written as they are (libwebsockets keeps what
     * the socket does not take yet, and sends it before the next callback) */
    if (lws_write(wsi, out, used, LWS_WRITE_RAW) < (int)used)
        return -1;
    lws_callback_on_writable(wsi); /* there may be more */
    return 0;
}

/* A /channel client's connection: acks in, events out (channel.h). */
static int on_channel(struct lws *wsi, session *ss, enum lws_callback_reasons reason,
                      const void *in, size_t len)
{
    if (reason == LWS_CALLBACK_RECEIVE) {
        int whole = gather(wsi, ss, in, len);
        if (whole <= 0)
            return whole;
        es_status s = channel_client_message(ss->tap, (const char *)ss->rx.data, ss->rx.len);
        ss->rx.len = 0;
        return s == ES_OK ? 0 : close_with(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, es_last_error());
    }
    if (reason == LWS_CALLBACK_SERVER_WRITEABLE) {
        channel_msg *m = channel_client_next(ss->tap);
        if (m == NULL)
            return 0;
        int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
        bool whole = n >= (int)m->len;
        if (whole)
            channel_client_written(ss->tap, m->id);
        free(m);
        if (!whole)
            return -1;
        lws_callback_on_writable(wsi); /* there may be more */
        return 0;
    }
    /* LWS_CALLBACK_CLOSED */
    channel_detach(ss->tap);
    ss->tap = NULL;
    es_buf_free(&ss->rx);
    return 0;
}

/* On the loop: every connection writes what its subscriber queued. */
static void write_pass(lws_sorted_usec_list_t *sul)
{
    server *srv = lws_container_of(sul, server, pass);
    srv->pass_scheduled = false;
    srv->last_pass_us = lws_now_usecs();
    lws_callback_on_writable_all_protocol(srv->ctx, srv->protocol);
}

/* On the loop, once woken: the next pass, write_interval_us after the
 * last one (at once when that is past). Wakes until then join it. */
static void schedule_write_pass(server *srv)
{
    if (srv->pass_scheduled)
        return;
    lws_usec_t due = srv->last_pass_us + (lws_usec_t)srv->o.write_interval_us,
               now = lws_now_usecs();
    srv->pass_scheduled = true;
    if (due <= now) {
        write_pass(&srv->pass);
        return;
    }
    lws_sul_schedule(srv->ctx, 0, &srv->pass, write_pass, due - now);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    session *ss = user;
    if (ss != NULL && ss->tap != NULL &&
        (reason == LWS_CALLBACK_RECEIVE || reason == LWS_CALLBACK_SERVER_WRITEABLE ||
         reason == LWS_CALLBACK_CLOSED))
        return on_channel(wsi, ss, reason, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP: return on_http(wsi, ss, (const char *)in);
    case LWS_CALLBACK_HTTP_BODY: return on_admin_body(ss, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return on_admin_done(wsi, ss);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: return filter_connection(wsi);
    case LWS_CALLBACK_ESTABLISHED: return on_established(wsi, ss);
    case LWS_CALLBACK_RECEIVE: return on_receive(wsi, ss, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE: return on_writeable(wsi, ss);
    case LWS_CALLBACK_CLOSED:
        if (ss->sub != NULL) {
            reap_later(server_of(wsi), ss->sub);
            ss->sub = NULL;
            server_of(wsi)->subscribers--;
        }
        es_buf_free(&ss->rx);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* cleared first: a wake from now on wakes the loop again */
        atomic_store(&server_of(wsi)->wake_pending, false);
        schedule_write_pass(server_of(wsi));
        return 0;
    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"jetstream", callback, sizeof(session), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_tick(lws_sorted_usec_list_t *sul)
{
    server *srv = lws_container_of(sul, server, tick);
    if (*srv->stop)
        lws_cancel_service(srv->ctx);
    else
        lws_sul_schedule(srv->ctx, 0, &srv->tick, on_tick, TICK_US);
}

/* Waits for the subscribers still being freed (they use the store). */
static void server_end(server *srv)
{
    pthread_mutex_lock(&srv->reap_lock);
    while (srv->reaping > 0)
        pthread_cond_wait(&srv->reaped, &srv->reap_lock);
    pthread_mutex_unlock(&srv->reap_lock);
    pthread_cond_destroy(&srv->reaped);
    pthread_mutex_destroy(&srv->reap_lock);
}

int server_run(es_store *st, health *h, const server_options *o, volatile sig_atomic_t *stop)
{
    server srv = {.st = st, .health = h, .o = *o, .stop = stop, .protocol = &protocols[0]};
    if (admin_open(st, o->admin_token, &srv.admin) != ES_OK) {
        fprintf(stderr, "es-atproto-serve: %s\n", es_last_error());
        return 1;
    }
    if (!o->per_subscriber_watch) {
        hub_config hc = {.record_max = o->sub.record_max, .headroom = LWS_PRE};
        if (hub_create(st, &hc, &srv.hub) != ES_OK) {
            fprintf(stderr, "es-atproto-serve: cannot start the live fan-out: %s\n",
                    es_last_error());
            admin_close(srv.admin);
            return 1;
        }
    }
    pthread_mutex_init(&srv.reap_lock, NULL);
    pthread_cond_init(&srv.reaped, NULL);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = o->port;
    info.iface = o->host;
    info.protocols = protocols;
    info.user = &srv;
    info.max_http_header_data = HTTP_HEADERS_MAX;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (o->tls_cert != NULL) { /* every connection TLS: https://, wss:// */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = o->tls_cert;
        info.ssl_private_key_filepath = o->tls_key;
    }
    srv.ctx = lws_create_context(&info);
    if (srv.ctx == NULL) {
        fprintf(stderr, "es-atproto-serve: cannot listen on %s:%d\n", o->host, o->port);
        server_end(&srv);
        hub_destroy(srv.hub);
        admin_close(srv.admin);
        return 1;
    }
    if (o->channel != NULL) {
        channel_set_loop(o->channel, LWS_PRE, wake, &srv);
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(srv.ctx, "default");
    printf("listening on %s:%d%s\n", o->host, vh ? lws_get_vhost_listen_port(vh) : o->port,
           o->tls_cert ? " (TLS)" : "");
    fflush(stdout);
    lws_sul_schedule(srv.ctx, 0, &srv.tick, on_tick, TICK_US);
    while (!*stop && lws_service(srv.ctx, 0) >= 0)
        ;
    lws_sul_cancel(&srv.tick);
    lws_sul_cancel(&srv.pass);
    if (o->channel != NULL)
        channel_set_loop(o->channel, LWS_PRE, NULL, NULL); /* the loop goes: nothing wakes it any more */
    lws_context_destroy(srv.ctx); /* closes every connection: their subscribers end */
    server_end(&srv); /* every subscriber has left the hub */
    hub_destroy(srv.hub);
    admin_close(srv.admin);
    return 0;
}
