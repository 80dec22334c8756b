/* Webhooks end to end, through a live server (NATS_URL): the real relay
 * capture ingested by es-atproto-ingest, then delivered by es-atproto-serve
 * --webhook-url to a receiver on loopback (atproto/tests/http_standin.h)
 * that is slow and fails ~30 % of requests; once the store has it all
 * acknowledged, a generated capture (es-atproto-gen: 20 repositories, chains
 * of events each) is appended, and the instance is killed (-9) while it is
 * delivering it, then restarted. Every event that has a Tap form arrives at
 * least once with the JSON es_atp_tap_encode gives it and a signature that
 * verifies; per repository, no request comes before the events it must
 * wait for were answered 2xx (Tap's rule: a live event is a barrier); the
 * restart asks again for nothing the store had acknowledged (no event at or
 * below the consumer's ack floor at the kill) and delivers the rest.
 *
 * Binaries from the environment (set by CMake): ES_INGEST_BIN, ES_SERVE_BIN,
 * ES_GEN_BIN; the corpus from ES_SHARED_DIR (the test skips when it is
 * absent). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nats/nats.h>

#include <es/atproto_tap.h>
#include <es/es.h>

#include "children.h"
#include "http_standin.h"
#include "webhook_receiver.h"

#define SECRET      "e2e-webhook-secret"
#define SEQ_MAX     4096 /* the corpus stores a few hundred events */
#define REQUEST_MAX 65536
#define CONSUMER    "tap" /* the dispatcher's durable consumer (dispatch_config's default) */

static const char *ingest_bin, *serve_bin, *gen_bin;
static char tmp[256];

/* ---- what the store holds ---------------------------------------------------- */

/* The events with a Tap form, by stream sequence. */
typedef struct expected {
    bool tap[SEQ_MAX];
    bool live[SEQ_MAX];
    char *did[SEQ_MAX];
    char *json[SEQ_MAX];
    size_t len[SEQ_MAX];
    uint64_t max_seq;  /* of the events with a Tap form */
    uint64_t last_seq; /* of every event */
    size_t count;
    es_arena *arena;
} expected;

static es_status collect(const es_event *ev, void *closure)
{
    expected *x = closure;
    es_atp_tap_event d;
    assert_int_equal(es_atp_tap_describe(ev, &d), ES_OK);
    x->last_seq = es_event_seq(ev);
    if (d.kind == ES_ATP_TAP_NONE)
        return ES_OK;
    assert_true(d.id < SEQ_MAX);
    es_buf json = ES_BUF_INIT;
    es_arena_reset(x->arena);
    assert_int_equal(es_atp_tap_encode(ev, &d, x->arena, &json), ES_OK);
    x->tap[d.id] = true;
    x->live[d.id] = d.live;
    x->did[d.id] = strndup(d.did, d.did_len);
    x->json[d.id] = strndup((const char *)json.data, json.len);
    x->len[d.id] = json.len;
    es_buf_free(&json);
    x->max_seq = d.id;
    x->count++;
    return ES_OK;
}

static void expected_read(es_store *st, expected *x)
{
    assert_int_equal(es_arena_create(64u << 20, &x->arena), ES_OK);
    assert_int_equal(es_evolve(st, NULL, NULL, collect, x, NULL), ES_OK);
    es_arena_destroy(x->arena);
    assert_true(x->count > 100);
}

static void expected_free(expected *x)
{
    for (size_t i = 0; i < SEQ_MAX; i++) {
        free(x->did[i]);
        free(x->json[i]);
    }
}

/* ---- the receiver ------------------------------------------------------------ */

/* One request as the receiver saw it: `at` when it arrived, `answered` when
 * the answer was decided (one clock of ticks for both). */
typedef struct request {
    uint64_t id;
    unsigned long at, answered;
    int status;
    int life; /* which serve instance was running: 0 before the kill, 1 after */
} request;

typedef struct receiver {
    pthread_mutex_t lock;
    size_t stall_at; /* in the first life, 503 to everything once this many are acked */
    int life;
    unsigned long ticks;
    request *log;
    size_t n;
    unsigned long first_ok[SEQ_MAX]; /* the tick of the first 2xx, 0: none yet */
    char *body[SEQ_MAX];             /* the first body of each id; the others must equal it */
    size_t len[SEQ_MAX];
    size_t acked;                    /* ids with a 2xx */
    unsigned bad, failed;
} receiver;

/* Under the lock: whether this body is the one event `id` came with first. */
static bool same_body(receiver *r, uint64_t id, const void *body, size_t len)
{
    if (r->body[id] == NULL) {
        r->body[id] = malloc(len + 1);
        memcpy(r->body[id], body, len);
        r->len[id] = len;
    }
    return r->len[id] == len && memcmp(r->body[id], body, len) == 0;
}

static int on_post(void *ctx, const char *head, const void *body, size_t len)
{
    receiver *r = ctx;
    uint64_t id = 0;
    unsigned attempt = 0;
    bool ok = wr_request_ids(head, &id, &attempt) && id < SEQ_MAX &&
              wr_signature_verifies(SECRET, head, body, len);
    pthread_mutex_lock(&r->lock);
    size_t i = r->n < REQUEST_MAX ? r->n++ : REQUEST_MAX - 1;
    r->log[i] = (request){id, ++r->ticks, 0, 0, r->life};
    bool stalled = r->life == 0 && r->acked >= r->stall_at;
    ok = ok && same_body(r, id, body, len);
    if (!ok)
        r->bad++;
    pthread_mutex_unlock(&r->lock);
    standin_sleep_ms(wr_delay_ms(id, attempt));
    int status = !ok || stalled ? 503 : wr_flaky_fails(id, attempt) ? 500 : 200;
    pthread_mutex_lock(&r->lock);
    r->log[i].answered = ++r->ticks;
    r->log[i].status = status;
    if (status == 200 && r->first_ok[id] == 0) {
        r->first_ok[id] = r->log[i].answered;
        r->acked++;
    } else if (status != 200) {
        r->failed++;
    }
    pthread_mutex_unlock(&r->lock);
    return status;
}

static size_t acked(receiver *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->acked;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Tap's rule, checked on every request: a request for event s of repo d
 * comes only after every earlier event s' of d was answered 2xx when s or
 * s' is live (historical events of a repo may go together). */
static void expect_repo_order(receiver *r, const expected *x)
{
    for (size_t i = 0; i < r->n; i++) {
        uint64_t s = r->log[i].id;
        if (!x->tap[s])
            fail_msg("a request for event %" PRIu64 ", which has no Tap form", s);
        for (uint64_t e = 1; e < s; e++) {
            if (!x->tap[e] || strcmp(x->did[e], x->did[s]) != 0 || !(x->live[s] || x->live[e]))
                continue;
            if (r->first_ok[e] == 0 || r->first_ok[e] > r->log[i].at)
                fail_msg("%s: event %" PRIu64 " (%s) was sent (tick %lu, %s instance) before "
                         "event %" PRIu64 " (%s) was done (tick %lu)",
                         x->did[s], s, x->live[s] ? "live" : "historical", r->log[i].at,
                         r->log[i].life ? "the restarted" : "the first", e,
                         x->live[e] ? "live" : "historical", r->first_ok[e]);
        }
    }
}

/* ---- processes ------------------------------------------------------------- */

static pid_t serve_start(const char *store, const char *hook, const char *log)
{
    char *argv[] = {(char *)serve_bin,
                    "--server",
                    getenv("NATS_URL"),
                    "--store",
                    (char *)store,
                    "--listen",
                    "127.0.0.1:0",
                    "--webhook-url",
                    (char *)hook,
                    "--webhook-secret",
                    SECRET,
                    "--webhook-attempts",
                    "30",
                    "--webhook-timeout",
                    "5s",
                    "--webhook-backoff",
                    "20ms",
                    "--max-in-flight",
                    "8",
                    "--takeover-after",
                    "2s",
                    NULL};
    int out;
    pid_t pid = children_spawn(argv, log, &out);
    assert_true(pid > 0);
    FILE *f = fdopen(out, "r");
    char line[128] = "";
    if (fgets(line, sizeof line, f) == NULL)
        children_show_log(log);
    fclose(f);
    assert_non_null(strstr(line, "listening on"));
    return pid;
}

/* The stream sequence below which the dispatcher's consumer has every
 * event acknowledged in the store (its ack floor), read from the server. */
static uint64_t ack_floor(natsConnection *nc, const char *store)
{
    jsCtx *js = NULL;
    jsConsumerInfo *ci = NULL;
    char stream[128];
    snprintf(stream, sizeof stream, "ES_%s", store);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    uint64_t floor = 0;
    if (js_GetConsumerInfo(&ci, js, stream, CONSUMER, NULL, NULL) == NATS_OK)
        floor = ci->AckFloor.Stream;
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    return floor;
}

/* ---- the test ---------------------------------------------------------------- */

/* A capture file ingested into `store`: verified with the DID documents
 * `docs`, or not (NULL). */
static void ingest(const char *store, const char *capture, const char *docs, const char *log)
{
    char *argv[] = {(char *)ingest_bin, "--server",    getenv("NATS_URL"),
                    "--store",          (char *)store, "--from-file",
                    (char *)capture,    "--exit-at-end", docs ? "--did-docs" : "--no-verify",
                    (char *)docs,       NULL};
    int code = children_exit_code(children_spawn(argv, log, NULL), 60000);
    if (code != 0)
        children_show_log(log);
    assert_int_equal(code, 0);
}

/* Waits until `cond` holds, 60 s at most (the caller checks it again). */
#define WAIT_UNTIL(cond)                                                                           \
    for (int wait_ = 0; wait_ < 6000 && !(cond); wait_++)                                          \
        children_sleep_ms(10);

static void the_corpus_reaches_a_flaky_webhook_through_a_kill(void **state)
{
    (void)state;
    const char *dir = getenv("ES_SHARED_DIR");
    char frames[1024], docs[1024], log[300], store[64], capture[300];
    snprintf(frames, sizeof frames, "%s/fixtures/firehose-corpus/frames.bin.zst", dir ? dir : "");
    snprintf(docs, sizeof docs, "%s/fixtures/firehose-corpus/did_docs.json.zst", dir ? dir : "");
    struct stat sb;
    if (dir == NULL || stat(frames, &sb) != 0) {
        printf("SKIP: the real relay capture is absent (ES_SHARED_DIR=%s)\n", dir ? dir : "unset");
        skip();
    }
    snprintf(store, sizeof store, "webhook_e2e_%ld", (long)getpid());
    snprintf(log, sizeof log, "%s/webhook.log", tmp);
    snprintf(capture, sizeof capture, "%s/more.capture", tmp);
    ingest(store, frames, docs, log);
    /* after the corpus's relay sequences, so the ingester's cursor keeps it */
    char *gen[] = {(char *)gen_bin, "--out", capture, "--frames", "200", "--repos", "20",
                   "--seed", "7", "--first-seq", "40000000000", NULL};
    assert_int_equal(children_exit_code(children_spawn(gen, log, NULL), 60000), 0);

    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, getenv("NATS_URL")), NATS_OK);
    es_store *st;
    assert_int_equal(es_store_open(nc, store, NULL, &st), ES_OK);
    expected *x = calloc(1, sizeof *x);
    expected_read(st, x);
    uint64_t corpus_last = x->last_seq;
    size_t corpus_count = x->count;
    assert_true(corpus_count > 100);

    receiver *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->stall_at = SIZE_MAX;
    r->log = calloc(REQUEST_MAX, sizeof *r->log);
    standin s;
    assert_int_equal(standin_start_workers(&s, 16, on_post, r), 0);
    char hook[64];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/hook", s.port);

    /* the first life: the corpus, all of it acknowledged in the store */
    pid_t srv = serve_start(store, hook, log);
    uint64_t floor = 0;
    WAIT_UNTIL((floor = ack_floor(nc, store)) >= corpus_last);
    if (floor < corpus_last) {
        children_show_log(log);
        fail_msg("the corpus was not acknowledged: %zu of %zu events acked by the receiver, "
                 "%zu requests, ack floor %" PRIu64 " of %" PRIu64,
                 acked(r), corpus_count, r->n, floor, corpus_last);
    }
    /* then the generated events: killed while delivering them, some acked
     * by the receiver (503 to everything after 40 of them), none acknowledged
     * in the store (they are one pull, acknowledged when all are done) */
    pthread_mutex_lock(&r->lock);
    size_t stall_at = r->stall_at = r->acked + 40;
    pthread_mutex_unlock(&r->lock);
    ingest(store, capture, NULL, log);
    WAIT_UNTIL(acked(r) >= stall_at);
    assert_true(acked(r) >= stall_at);
    children_sleep_ms(300);
    kill(srv, SIGKILL);
    assert_int_equal(children_exit_code(srv, 10000), 128 + SIGKILL);
    floor = ack_floor(nc, store);
    assert_true(floor >= corpus_last);
    size_t acked_before = acked(r);
    expected_free(x);
    memset(x, 0, sizeof *x);
    expected_read(st, x); /* everything now */
    assert_true(x->count > corpus_count + 80 && acked_before < x->count);

    /* the second life: the rest, and nothing the store acknowledged */
    pthread_mutex_lock(&r->lock);
    r->life = 1;
    pthread_mutex_unlock(&r->lock);
    srv = serve_start(store, hook, log);
    WAIT_UNTIL(acked(r) >= x->count);
    children_sleep_ms(500); /* anything more would show now */
    kill(srv, SIGTERM);
    int code = children_exit_code(srv, 20000);
    if (code != 0 || acked(r) < x->count)
        children_show_log(log);
    assert_int_equal(code, 0);
    standin_stop(&s);

    assert_int_equal(r->bad, 0); /* every signature verified, every repeat the same body */
    assert_true(r->n < REQUEST_MAX);
    for (uint64_t id = 1; id <= x->max_seq; id++) {
        if (!x->tap[id])
            continue;
        if (r->first_ok[id] == 0)
            fail_msg("event %" PRIu64 " never reached the receiver", id);
        if (r->len[id] != x->len[id] || memcmp(r->body[id], x->json[id], x->len[id]) != 0)
            fail_msg("event %" PRIu64 ": %.300s is not its Tap JSON %.300s", id, r->body[id],
                     x->json[id]);
    }
    size_t after = 0, again = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->log[i].life != 1)
            continue;
        after++;
        again += r->first_ok[r->log[i].id] < r->log[i].at; /* acked before, not in the store */
        if (r->log[i].id <= floor)
            fail_msg("event %" PRIu64 " was acknowledged in the store before the kill (floor %" PRIu64
                     ") and was sent again",
                     r->log[i].id, floor);
    }
    assert_true(after > 0);
    assert_true(r->failed > 0); /* failures happened, and were retried */
    expect_repo_order(r, x);
    printf("  %zu events (%zu of the corpus), %zu requests (%u failed); killed at ack floor %" PRIu64
           " with %zu acked by the receiver; %zu requests after the restart, %zu of them for "
           "events the receiver had acked\n",
           x->count, corpus_count, r->n, r->failed, floor, acked_before, after, again);

    for (size_t i = 0; i < SEQ_MAX; i++)
        free(r->body[i]);
    free(r->log);
    pthread_mutex_destroy(&r->lock);
    free(r);
    expected_free(x);
    free(x);
    es_store_destroy(st);
    es_store_delete(nc, store, NULL);
    natsConnection_Destroy(nc);
}

static int setup(void **state)
{
    (void)state;
    ingest_bin = getenv("ES_INGEST_BIN");
    serve_bin = getenv("ES_SERVE_BIN");
    gen_bin = getenv("ES_GEN_BIN");
    if (!ingest_bin || !serve_bin || !gen_bin || !getenv("NATS_URL")) {
        printf("needs ES_INGEST_BIN, ES_SERVE_BIN, ES_GEN_BIN and NATS_URL\n");
        return -1;
    }
    return children_tmpdir("es-webhook-e2e", tmp, sizeof tmp);
}

static int teardown(void **state)
{
    (void)state;
    return children_tmpdir_remove(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(the_corpus_reaches_a_flaky_webhook_through_a_kill,
                                  children_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
