/* --collections end to end (NATS_URL): the real relay capture ingested by
 * es-atproto-ingest, then delivered by es-atproto-serve with --collections
 * app.bsky.feed.* to a /channel client (ws_client.h) and, on another
 * consumer, to a webhook receiver (http_standin.h). Each gets exactly the
 * corpus's record events of app.bsky.feed.* collections plus every identity
 * event (Tap sends identity events whatever the filters), and nothing else;
 * /metrics counts the record events left out.
 *
 * Binaries from the environment (set by CMake): ES_INGEST_BIN, ES_SERVE_BIN;
 * the corpus from ES_SHARED_DIR (the test skips when it is absent). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
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
#include <jansson.h>
#include <nats/nats.h>

#include <es/atproto_tap.h>
#include <es/es.h>

#include "children.h"
#include "http_standin.h"
#include "webhook_receiver.h"
#include "ws_client.h"

#define SEQ_MAX     4096 /* the corpus stores a few hundred events */
#define WAIT_MS     30000
#define COLLECTIONS "app.bsky.feed.*"
#define PREFIX      "app_bsky_feed_" /* its entity types */

static const char *ingest_bin, *serve_bin;
static char tmp[256], store[64], log_path[300];

/* What the corpus should give under COLLECTIONS, by stream sequence. */
typedef struct expected {
    bool want[SEQ_MAX];
    size_t wanted, identities, left_out; /* left_out: record events of other collections */
} expected;

static es_status collect(const es_event *ev, void *closure)
{
    expected *x = closure;
    es_atp_tap_event d;
    assert_int_equal(es_atp_tap_describe(ev, &d), ES_OK);
    if (d.kind == ES_ATP_TAP_NONE)
        return ES_OK;
    assert_true(d.id < SEQ_MAX);
    bool feed = strncmp(es_event_entity_type(ev), PREFIX, strlen(PREFIX)) == 0;
    if (d.kind == ES_ATP_TAP_IDENTITY || feed) {
        x->want[d.id] = true;
        x->wanted++;
        x->identities += d.kind == ES_ATP_TAP_IDENTITY;
    } else {
        x->left_out++;
    }
    return ES_OK;
}

/* Every id in got[] is wanted and every wanted one is in got[]. */
static void expect_exactly(const expected *x, const int *got, const char *who)
{
    for (uint64_t id = 1; id < SEQ_MAX; id++) {
        if (got[id] > 0 && !x->want[id])
            fail_msg("%s got event %" PRIu64 ", which --collections " COLLECTIONS " leaves out", who,
                     id);
        if (got[id] == 0 && x->want[id])
            fail_msg("%s never got event %" PRIu64, who, id);
    }
}

/* es-atproto-serve with `extra` options (NULL-terminated), on a free port. */
static pid_t serve(const char *const *extra, int *port)
{
    char *argv[32] = {(char *)serve_bin, "--server", getenv("NATS_URL"), "--store", store,
                      "--listen", "127.0.0.1:0", "--collections", COLLECTIONS};
    size_t n = 9;
    for (size_t i = 0; extra[i] != NULL && n < 31; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    pid_t pid = children_spawn_listening(argv, log_path, port);
    assert_true(pid > 0);
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int code = children_exit_code(pid, 20000);
    if (code != 0)
        children_show_log(log_path);
    assert_int_equal(code, 0);
}

/* Until /metrics shows es_serve_tap_filtered_total at `want`. */
static void expect_filtered_metric(int port, size_t want)
{
    static char body[16384];
    char line[96];
    snprintf(line, sizeof line, "\nes_serve_tap_filtered_total %zu\n", want);
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        if (http_get(port, "/metrics", body, sizeof body) == 200 && strstr(body, line) != NULL)
            return;
        children_sleep_ms(50);
    }
    fail_msg("/metrics never showed%s", line);
}

/* ---- the test's store -------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    ingest_bin = getenv("ES_INGEST_BIN");
    serve_bin = getenv("ES_SERVE_BIN");
    if (!ingest_bin || !serve_bin || !getenv("NATS_URL")) {
        printf("needs ES_INGEST_BIN, ES_SERVE_BIN and NATS_URL\n");
        return -1;
    }
    snprintf(store, sizeof store, "tapcoll_%ld", (long)getpid());
    if (children_tmpdir("es-tap-collections", tmp, sizeof tmp) != 0)
        return -1;
    snprintf(log_path, sizeof log_path, "%s/serve.log", tmp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    natsConnection *nc;
    if (natsConnection_ConnectTo(&nc, getenv("NATS_URL")) == NATS_OK) {
        es_store_delete(nc, store, NULL);
        natsConnection_Destroy(nc);
    }
    return children_tmpdir_remove(tmp);
}

/* The corpus ingested (once), and what it should give; false when absent. */
static bool corpus(expected *x)
{
    static bool ingested;
    const char *dir = getenv("ES_SHARED_DIR");
    char frames[1024], docs[1024];
    snprintf(frames, sizeof frames, "%s/fixtures/firehose-corpus/frames.bin.zst", dir ? dir : "");
    snprintf(docs, sizeof docs, "%s/fixtures/firehose-corpus/did_docs.json.zst", dir ? dir : "");
    struct stat sb;
    if (dir == NULL || stat(frames, &sb) != 0) {
        printf("SKIP: the real relay capture is absent (ES_SHARED_DIR=%s)\n", dir ? dir : "unset");
        return false;
    }
    if (!ingested) {
        char *argv[] = {(char *)ingest_bin, "--server", getenv("NATS_URL"), "--store", store,
                        "--from-file", frames, "--exit-at-end", "--did-docs", docs, NULL};
        int code = children_exit_code(children_spawn(argv, log_path, NULL), 60000);
        if (code != 0)
            children_show_log(log_path);
        assert_int_equal(code, 0);
        ingested = true;
    }
    natsConnection *nc;
    es_store *st;
    assert_int_equal(natsConnection_ConnectTo(&nc, getenv("NATS_URL")), NATS_OK);
    assert_int_equal(es_store_open(nc, store, NULL, &st), ES_OK);
    memset(x, 0, sizeof *x);
    assert_int_equal(es_evolve(st, NULL, NULL, collect, x, NULL), ES_OK);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
    /* the corpus has all three kinds, or the test proves nothing */
    assert_true(x->wanted > x->identities && x->identities > 0 && x->left_out > 0);
    return true;
}

/* What the ingested corpus should give (the caller frees it); skips the
 * test when the corpus is absent. */
static expected *corpus_or_skip(void)
{
    expected *x = calloc(1, sizeof *x);
    assert_non_null(x);
    if (!corpus(x)) {
        free(x);
        skip();
    }
    return x;
}

/* ---- the tests --------------------------------------------------------------- */

static void a_channel_client_gets_the_namespace_and_identities(void **state)
{
    (void)state;
    expected *x = corpus_or_skip();
    static const char *const extra[] = {"--channel", "acks", "--tap-consumer", "coll_channel", NULL};
    int port;
    pid_t srv = serve(extra, &port);
    ws_client w;
    assert_int_equal(ws_open(&w, port, "/channel", 0), 101);
    int *got = calloc(SEQ_MAX, sizeof *got);
    size_t distinct = 0;
    /* until every wanted one came and then nothing for a second */
    for (int quiet = 0; quiet < (distinct >= x->wanted ? 1000 : WAIT_MS); quiet += 100) {
        char *m = NULL;
        int r = ws_read(&w, 100, &m);
        assert_true(r != 0); /* the server keeps the channel open */
        if (r < 0)
            continue;
        json_t *j = json_loads(m, 0, NULL);
        free(m);
        assert_non_null(j);
        uint64_t id = (uint64_t)json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        assert_true(id > 0 && id < SEQ_MAX);
        distinct += got[id]++ == 0;
        char ack[64];
        snprintf(ack, sizeof ack, "{\"type\":\"ack\",\"id\":%" PRIu64 "}", id);
        assert_int_equal(ws_send_text(&w, ack), 0);
        quiet = -100;
    }
    expect_exactly(x, got, "the /channel client");
    expect_filtered_metric(port, x->left_out);
    ws_close(&w);
    stop(srv);
    print_message("%zu events (%zu identity), %zu record events left out\n", x->wanted,
                  x->identities, x->left_out);
    free(got);
    free(x);
}

typedef struct receiver {
    pthread_mutex_t lock;
    int got[SEQ_MAX];
    size_t distinct;
} receiver;

static int on_post(void *ctx, const char *head, const void *body, size_t len)
{
    receiver *r = ctx;
    uint64_t id = 0;
    unsigned attempt = 0;
    (void)body;
    (void)len;
    if (!wr_request_ids(head, &id, &attempt) || id >= SEQ_MAX)
        return 400;
    pthread_mutex_lock(&r->lock);
    r->distinct += r->got[id]++ == 0;
    pthread_mutex_unlock(&r->lock);
    return 200;
}

static void a_webhook_gets_the_namespace_and_identities(void **state)
{
    (void)state;
    expected *x = corpus_or_skip();
    receiver *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    static standin s; /* its threads outlive a failed assertion */
    assert_int_equal(standin_start_workers(&s, 4, on_post, r), 0);
    char hook[64];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/hook", s.port);
    const char *const extra[] = {"--webhook-url", hook, "--tap-consumer", "coll_webhook", NULL};
    int port;
    pid_t srv = serve(extra, &port);
    size_t distinct = 0;
    for (int waited = 0; waited < WAIT_MS && distinct < x->wanted; waited += 50) {
        children_sleep_ms(50);
        pthread_mutex_lock(&r->lock);
        distinct = r->distinct;
        pthread_mutex_unlock(&r->lock);
    }
    children_sleep_ms(300);
    pthread_mutex_lock(&r->lock);
    int *got = calloc(SEQ_MAX, sizeof *got);
    memcpy(got, r->got, sizeof r->got);
    pthread_mutex_unlock(&r->lock);
    expect_exactly(x, got, "the webhook receiver");
    expect_filtered_metric(port, x->left_out); /* every event read: nothing more comes */
    stop(srv);
    standin_stop(&s);
    free(got);
    pthread_mutex_destroy(&r->lock);
    free(r);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(a_channel_client_gets_the_namespace_and_identities,
                                  children_teardown),
        cmocka_unit_test_teardown(a_webhook_gets_the_namespace_and_identities, children_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
