/* atp-relay-standin: a stand-in for a relay's com.atproto.sync.subscribeRepos,
 * for the ingester's tests. It serves the frames of a capture over WebSocket
 * on loopback, from the first frame whose seq is beyond ?cursor=, and can
 * misbehave the way relays do: drop the connection every N frames, slip
 * garbage frames in, pace its output, end with an error frame.
 *
 *   atp-relay-standin --capture PATH [--port N] [--drop-every N]
 *                     [--garbage-every N] [--rate FRAMES_PER_S] [--error-at-end NAME]
 *                     [--tls-cert PEM --tls-key PEM]   (wss://)
 *                     [--info-on-resume NAME]  (an #info frame first when a cursor is given)
 *
 * Prints "listening on PORT" (then flushes) once it accepts connections; runs
 * until SIGINT/SIGTERM. Loopback only. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include <es/arena.h>
#include <es/atproto.h>
#include <es/buf.h>

#define TICK_MS 10

typedef struct frame {
    size_t start, len;
    bool has_seq;
    uint64_t seq;
} frame;

typedef struct standin {
    es_buf bytes; /* every frame back to back */
    frame *frames;
    size_t count;
    unsigned long drop_every, garbage_every, rate;
    const char *error_at_end;
    const char *info_on_resume;
    uint8_t *out; /* LWS_PRE + the largest frame */
    size_t out_cap;
    struct lws_context *ctx;
    lws_sorted_usec_list_t tick;
} standin;

typedef struct session {
    size_t next;        /* the next frame to send */
    unsigned long sent; /* frames sent on this connection */
    int64_t started_ms; /* for --rate */
    bool garbage_due;   /* a garbage frame goes before the next one */
    bool error_sent;
    bool info_due; /* an #info frame goes first */
} session;

static standin S;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int load(const char *path)
{
    es_atp_capture *c;
    es_atp_limits lim = {0};
    es_atp_limits_defaults(&lim);
    if (es_atp_capture_open(path, lim.max_frame_bytes, &c) != ES_OK)
        return -1;
    es_atp_decoder *dec;
    es_arena *arena;
    es_atp_options o = {0};
    es_atp_limits_defaults(&o.limits);
    es_atp_decoder_create(&o, &dec);
    es_arena_create(32 << 20, &arena);
    size_t cap = 0;
    const uint8_t *f;
    size_t len;
    es_status s;
    while ((s = es_atp_capture_next(c, &f, &len)) == ES_OK) {
        if (S.count == cap) {
            cap = cap ? cap * 2 : 1024;
            S.frames = realloc(S.frames, cap * sizeof *S.frames);
        }
        es_arena_reset(arena);
        es_atp_batch b;
        es_atp_decode(dec, f, len, arena, &b); /* only its seq matters here */
        S.frames[S.count] = (frame){S.bytes.len, len, b.has_seq, b.seq};
        S.count++;
        es_buf_append(&S.bytes, f, len);
        if (len + 64 > S.out_cap)
            S.out_cap = len + 64;
    }
    es_atp_capture_close(c);
    es_arena_destroy(arena);
    es_atp_decoder_destroy(dec);
    S.out = malloc(LWS_PRE + S.out_cap);
    return s == ES_ERR_NOT_FOUND ? 0 : -1;
}

static int send_bytes(struct lws *wsi, const void *data, size_t len)
{
    memcpy(S.out + LWS_PRE, data, len);
    return lws_write(wsi, S.out + LWS_PRE, len, LWS_WRITE_BINARY) < (int)len ? -1 : 0;
}

/* {op: -1} {error: NAME} */
static int send_error_frame(struct lws *wsi, const char *name)
{
    uint8_t buf[64] = {0xa1, 0x62, 'o', 'p', 0x20, 0xa1, 0x65, 'e', 'r', 'r', 'o', 'r'};
    size_t n = strlen(name) > 23 ? 23 : strlen(name);
    buf[12] = (uint8_t)(0x60 + n);
    memcpy(buf + 13, name, n);
    return send_bytes(wsi, buf, 13 + n);
}

/* A CBOR text string (short: under 24 bytes) at p; returns the end. */
static uint8_t *cbor_text(uint8_t *p, const char *s)
{
    size_t n = strlen(s) > 23 ? 23 : strlen(s);
    *p++ = (uint8_t)(0x60 + n);
    memcpy(p, s, n);
    return p + n;
}

/* {t: "#info", op: 1} {name: NAME, message: "..."} (DAG-CBOR: shorter keys first) */
static int send_info_frame(struct lws *wsi, const char *name)
{
    uint8_t buf[128], *p = buf;
    *p++ = 0xa2;
    p = cbor_text(p, "t");
    p = cbor_text(p, "#info");
    p = cbor_text(p, "op");
    *p++ = 0x01;
    *p++ = 0xa2;
    p = cbor_text(p, "name");
    p = cbor_text(p, name);
    p = cbor_text(p, "message");
    p = cbor_text(p, "from the stand-in");
    return send_bytes(wsi, buf, (size_t)(p - buf));
}

static void start_session(struct lws *wsi, session *ss)
{
    memset(ss, 0, sizeof *ss);
    char arg[64];
    uint64_t cursor = 0;
    const char *value = lws_get_urlarg_by_name(wsi, "cursor=", arg, sizeof arg);
    bool has_cursor = value != NULL; /* it points past the name, into arg */
    if (has_cursor)
        cursor = strtoull(value, NULL, 10);
    /* a relay replays what follows the cursor (seq > cursor) */
    while (has_cursor && ss->next < S.count &&
           (!S.frames[ss->next].has_seq || S.frames[ss->next].seq <= cursor))
        ss->next++;
    ss->started_ms = now_ms();
    ss->info_due = has_cursor && S.info_on_resume != NULL;
    fprintf(stderr, "standin: connection, cursor %s%" PRIu64 ", from frame %zu of %zu\n",
            has_cursor ? "" : "(none) ", cursor, ss->next, S.count);
}

static int writeable(struct lws *wsi, session *ss)
{
    if (S.drop_every && ss->sent >= S.drop_every)
        return -1; /* drop the connection, as relays sometimes do */
    if (S.rate && ss->sent >= (uint64_t)(now_ms() - ss->started_ms) * S.rate / 1000 + 1)
        return 0; /* ahead of the pace: the tick asks again */
    if (ss->next >= S.count) {
        if (S.error_at_end && !ss->error_sent) {
            ss->error_sent = true;
            send_error_frame(wsi, S.error_at_end);
            return -1;
        }
        return 0; /* nothing new: stay idle like a quiet relay */
    }
    int rc;
    if (ss->info_due) {
        ss->info_due = false;
        rc = send_info_frame(wsi, S.info_on_resume);
    } else if (ss->garbage_due) {
        static const uint8_t garbage[] = {0xff, 0x00, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
        rc = send_bytes(wsi, garbage, sizeof garbage);
        ss->garbage_due = false;
    } else {
        const frame *f = &S.frames[ss->next++];
        rc = send_bytes(wsi, S.bytes.data + f->start, f->len);
        ss->sent++;
        ss->garbage_due = S.garbage_every && ss->sent % S.garbage_every == 0;
    }
    if (rc != 0)
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    session *ss = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        start_session(wsi, ss);
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: return writeable(wsi, ss);
    case LWS_CALLBACK_RECEIVE: break; /* clients say nothing on this endpoint */
    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static struct lws_protocols protocols[] = {
    {"firehose", callback, sizeof(session), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    if (S.rate)
        lws_callback_on_writable_all_protocol(S.ctx, &protocols[0]);
    lws_sul_schedule(S.ctx, 0, &S.tick, on_tick, TICK_MS * LWS_US_PER_MS);
}

static unsigned long number(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || *s == '-' || *s == '\0') {
        fprintf(stderr, "standin: %s wants a number\n", what);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"capture", required_argument, NULL, 'c'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"drop-every", required_argument, NULL, 'd'},
                                         {"garbage-every", required_argument, NULL, 'g'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"error-at-end", required_argument, NULL, 'e'},
                                         {"tls-cert", required_argument, NULL, 't'},
                                         {"tls-key", required_argument, NULL, 'k'},
                                         {"info-on-resume", required_argument, NULL, 'i'},
                                         {NULL, 0, NULL, 0}};
    const char *capture = NULL, *cert = NULL, *key = NULL;
    unsigned long port = 0;
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (o) {
        case 'c': capture = optarg; break;
        case 'p': port = number(optarg, "--port"); break;
        case 'd': S.drop_every = number(optarg, "--drop-every"); break;
        case 'g': S.garbage_every = number(optarg, "--garbage-every"); break;
        case 'r': S.rate = number(optarg, "--rate"); break;
        case 'e': S.error_at_end = optarg; break;
        case 't': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'i': S.info_on_resume = optarg; break;
        default: return 2;
        }
    }
    if (capture == NULL || port > 65535) {
        fprintf(stderr, "usage: atp-relay-standin --capture PATH [--port N] [--drop-every N] "
                        "[--garbage-every N] [--rate N] [--error-at-end NAME]\n");
        return 2;
    }
    if (load(capture) != 0) {
        fprintf(stderr, "standin: cannot read %s\n", capture);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    if (cert != NULL && key != NULL) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cert;
        info.ssl_private_key_filepath = key;
    }
    S.ctx = lws_create_context(&info);
    if (S.ctx == NULL) {
        fprintf(stderr, "standin: cannot listen\n");
        return 1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(S.ctx, "default");
    printf("listening on %d\n", vh ? lws_get_vhost_listen_port(vh) : (int)port);
    fflush(stdout);
    lws_sul_schedule(S.ctx, 0, &S.tick, on_tick, TICK_MS * LWS_US_PER_MS);
    while (!stop && lws_service(S.ctx, 0) >= 0)
        ;
    lws_context_destroy(S.ctx);
    es_buf_free(&S.bytes);
    free(S.frames);
    free(S.out);
    return 0;
}
