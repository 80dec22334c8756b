/* es-atproto-serve end to end, through a live server (NATS_URL; for the
 * health test a server of its own, $ES_NATS_SERVER): the real relay capture
 * ingested, then served over Jetstream's protocol and compared with
 * Jetstream's own output for the same frames (expected_v1.jsonl); filters;
 * a cursor handover while the ingester runs; a slow replay held to its
 * window; a replay through a nats-server restart; /health following NATS;
 * a slow subscriber closed; compress=true's zstd frames, with and without
 * a dictionary. The client is ws_client.h, not libwebsockets.
 *
 * Binaries from the environment (set by CMake): ES_INGEST_BIN, ES_SERVE_BIN,
 * ES_GEN_BIN; the corpus from ES_SHARED_DIR (tests skip when it is absent). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zdict.h>
#include <zstd.h>

#include <es/atproto_jetstream.h>
#include <es/atproto_tracked.h>
#include <es/es.h>

#include "children.h"
#include "test_part.h"
#include "ws_client.h"

#define CORPUS_EVENTS 152
#define QUIET_MS      600 /* nothing more within this: the stream has ended */

static const char *ingest_bin, *serve_bin, *gen_bin;
static char tmp[256];

/* ---- processes ------------------------------------------------------------ */

#define spawn      children_spawn
#define exit_code  children_exit_code
#define show_log   children_show_log
#define sleep_ms   children_sleep_ms

static void expect_exit(pid_t pid, long timeout_ms, int want, const char *log)
{
    int code = exit_code(pid, timeout_ms);
    if (code != want)
        show_log(log);
    assert_int_equal(code, want);
}

static void stop(pid_t pid, const char *log)
{
    kill(pid, SIGTERM);
    expect_exit(pid, 20000, 0, log);
}

/* es-atproto-serve on a free port of the loopback; *port gets it. */
static pid_t serve_start(const char *url, const char *store, const char *log,
                         const char *const *extra, int *port)
{
    char *argv[16] = {(char *)serve_bin, "--server", (char *)url, "--store", (char *)store,
                      "--listen", "127.0.0.1:0"};
    size_t n = 7;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(n < 15);
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    int out;
    pid_t pid = spawn(argv, log, &out);
    assert_true(pid > 0);
    FILE *f = fdopen(out, "r");
    char line[128] = "";
    if (fgets(line, sizeof line, f) == NULL)
        show_log(log);
    fclose(f);
    assert_int_equal(sscanf(line, "listening on 127.0.0.1:%d", port), 1);
    return pid;
}

/* es-atproto-ingest of a capture into `store` (--did-docs, or --no-verify). */
static pid_t ingest_start(const char *url, const char *store, const char *capture,
                          const char *did_docs, const char *log)
{
    char *argv[] = {(char *)ingest_bin, "--server", (char *)url, "--store", (char *)store,
                    "--from-file", (char *)capture, "--exit-at-end",
                    did_docs ? "--did-docs" : "--no-verify", (char *)did_docs, NULL};
    return spawn(argv, log, NULL);
}

/* ---- the corpus --------------------------------------------------------------- */

typedef struct corpus {
    char frames[4096], expected[4096], docs[4096];
} corpus;

/* false (the test skips) when ../shared is absent */
static bool corpus_paths(corpus *c)
{
    const char *dir = getenv("ES_SHARED_DIR");
    snprintf(c->frames, sizeof c->frames, "%s/fixtures/firehose-corpus/frames.bin.zst",
             dir ? dir : "");
    snprintf(c->expected, sizeof c->expected, "%s/fixtures/firehose-corpus/expected_v1.jsonl",
             dir ? dir : "");
    snprintf(c->docs, sizeof c->docs, "%s/fixtures/firehose-corpus/did_docs.json.zst",
             dir ? dir : "");
    struct stat sb;
    if (dir == NULL || stat(c->frames, &sb) != 0 || stat(c->expected, &sb) != 0) {
        printf("SKIP: the real relay capture is absent (ES_SHARED_DIR=%s)\n",
               dir ? dir : "unset");
        return false;
    }
    return true;
}

/* Jetstream's lines for the corpus, in its order. */
static json_t *expected_lines(const corpus *c)
{
    json_t *all = json_array();
    FILE *f = fopen(c->expected, "r");
    assert_non_null(f);
    char line[1 << 16];
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        json_array_append_new(all, j);
    }
    fclose(f);
    assert_int_equal(json_array_size(all), CORPUS_EVENTS);
    return all;
}

/* The corpus ingested (verified) into a store of its own and served. */
typedef struct served {
    char store[64], log[300];
    int port;
    pid_t pid;
    json_t *lines; /* Jetstream's, in its order */
} served;

static bool corpus_served(const char *what, served *sv)
{
    corpus c;
    if (!corpus_paths(&c))
        return false;
    snprintf(sv->store, sizeof sv->store, "serve_%s_%ld", what, (long)getpid());
    snprintf(sv->log, sizeof sv->log, "%s/%s.log", tmp, what);
    const char *url = getenv("NATS_URL");
    expect_exit(ingest_start(url, sv->store, c.frames, c.docs, sv->log), 60000, 0, sv->log);
    sv->pid = serve_start(url, sv->store, sv->log, NULL, &sv->port);
    sv->lines = expected_lines(&c);
    return true;
}

static void store_drop(const char *store);

static void served_end(served *sv)
{
    json_decref(sv->lines);
    stop(sv->pid, sv->log);
    store_drop(sv->store);
}

static void store_drop(const char *store)
{
    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, getenv("NATS_URL")), NATS_OK);
    es_store_delete(nc, store, NULL);
    natsConnection_Destroy(nc);
}

/* ---- receiving ---------------------------------------------------------------- */

static void subscribe(ws_client *w, int port, const char *query)
{
    char target[4096];
    snprintf(target, sizeof target, "/subscribe%s%s", query[0] ? "?" : "", query);
    assert_int_equal(ws_open(w, port, target, 0), 101);
}

/* Reads `want` events (fails on a close or a silence of 20 s), then checks
 * that nothing more comes within QUIET_MS. The events, parsed. */
static json_t *receive_exactly(ws_client *w, size_t want)
{
    json_t *got = json_array();
    while (json_array_size(got) < want) {
        char *m = NULL;
        int r = ws_read(w, 20000, &m);
        if (r != 1)
            fail_msg("after %zu of %zu events: %s (close %d %s)", json_array_size(got), want,
                     r == 0 ? "closed" : "silence", w->close_code, w->close_reason);
        json_t *j = json_loads(m, 0, NULL);
        assert_non_null(j);
        json_array_append_new(got, j);
        free(m);
    }
    char *extra = NULL;
    if (ws_read(w, QUIET_MS, &extra) == 1)
        fail_msg("an event beyond the %zu expected: %.200s", want, extra);
    return got;
}

static void expect_silence(ws_client *w)
{
    char *m = NULL;
    if (ws_read(w, QUIET_MS, &m) == 1)
        fail_msg("an event was not expected: %.200s", m);
}

/* The event without time_us (Jetstream's is its own receive time). */
static json_t *timeless(json_t *e)
{
    json_t *c = json_deep_copy(e);
    json_object_del(c, "time_us");
    return c;
}

/* `got` holds exactly the events of `want` (JSON trees equal but for
 * time_us), each once, and each repository's events in Jetstream's order. */
static void expect_same_events(json_t *got, json_t *want)
{
    size_t n = json_array_size(want);
    assert_int_equal(json_array_size(got), n);
    size_t *where = calloc(n, sizeof *where); /* got[i] is want[where[i]] */
    int *seen = calloc(n, sizeof *seen);
    for (size_t i = 0; i < n; i++) {
        json_t *g = timeless(json_array_get(got, i));
        int found = 0;
        for (size_t k = 0; k < n; k++) {
            json_t *w = timeless(json_array_get(want, k));
            if (json_equal(g, w)) {
                found++;
                where[i] = k;
            }
            json_decref(w);
        }
        if (found != 1) {
            char *t = json_dumps(g, JSON_SORT_KEYS);
            fail_msg("event %zu matches %d of Jetstream's lines: %.600s", i, found, t);
        }
        seen[where[i]]++;
        json_decref(g);
    }
    for (size_t k = 0; k < n; k++)
        assert_int_equal(seen[k], 1);
    /* per repository, the order of Jetstream's lines */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            const char *a = json_string_value(json_object_get(json_array_get(got, i), "did"));
            const char *b = json_string_value(json_object_get(json_array_get(got, j), "did"));
            if (strcmp(a, b) == 0 && where[i] > where[j])
                fail_msg("%s: events %zu and %zu are not in Jetstream's order", a, i, j);
        }
    free(where);
    free(seen);
}

/* Jetstream's lines that a filter keeps: `keep(line)`. */
static json_t *lines_where(json_t *lines, bool (*keep)(json_t *line, const void *arg),
                           const void *arg)
{
    json_t *out = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        if (keep(l, arg))
            json_array_append(out, l);
    }
    return out;
}

static bool not_commit(json_t *l)
{
    return strcmp(json_string_value(json_object_get(l, "kind")), "commit") != 0;
}

/* commits under the prefix `arg`, and every identity and account event */
static bool in_namespace(json_t *l, const void *arg)
{
    if (not_commit(l))
        return true;
    const char *c = json_string_value(json_object_get(json_object_get(l, "commit"), "collection"));
    return strncmp(c, arg, strlen(arg)) == 0;
}

static bool of_dids(json_t *l, const void *arg)
{
    const char *const *dids = arg;
    const char *did = json_string_value(json_object_get(l, "did"));
    for (size_t i = 0; dids[i] != NULL; i++)
        if (strcmp(did, dids[i]) == 0)
            return true;
    return false;
}

/* ---- tests ---------------------------------------------------------------------- */

/* A cursor older than every event replays them all: exactly Jetstream's
 * lines, same fields and records; no cursor (or one after every event)
 * means live only. */
static void replays_the_corpus_as_jetstream_does(void **state)
{
    (void)state;
    served sv;
    if (!corpus_served("real", &sv))
        skip();
    int port = sv.port;
    json_t *want = sv.lines;

    ws_client w;
    subscribe(&w, port, "cursor=1");
    json_t *got = receive_exactly(&w, CORPUS_EVENTS);
    ws_close(&w);
    expect_same_events(got, want);
    /* time_us: the stored time, increasing in stream order */
    int64_t last = 0;
    size_t i;
    json_t *e;
    json_array_foreach(got, i, e)
    {
        int64_t t = json_integer_value(json_object_get(e, "time_us"));
        assert_true(t >= last);
        last = t;
    }
    printf("  %d events, each equal to its line of expected_v1.jsonl\n", CORPUS_EVENTS);

    subscribe(&w, port, ""); /* live only: the store is still */
    expect_silence(&w);
    ws_close(&w);
    char q[64];
    snprintf(q, sizeof q, "cursor=%lld", (long long)last + 1);
    subscribe(&w, port, q); /* after every event */
    expect_silence(&w);
    ws_close(&w);
    snprintf(q, sizeof q, "cursor=%lld", (long long)last);
    subscribe(&w, port, q); /* at the last: Jetstream's cursor is inclusive */
    json_t *one = receive_exactly(&w, 1);
    ws_close(&w);
    assert_true(json_equal(json_array_get(one, 0), json_array_get(got, CORPUS_EVENTS - 1)));

    json_decref(one);
    json_decref(got);
    served_end(&sv);
}

/* wantedCollections (a prefix), wantedDids, requireHello and options_update,
 * maxMessageSizeBytes, and a malformed option. */
static void filters_as_jetstream_does(void **state)
{
    (void)state;
    served sv;
    if (!corpus_served("filters", &sv))
        skip();
    int port = sv.port;
    json_t *lines = sv.lines;
    ws_client w;

    json_t *feed = lines_where(lines, in_namespace, "app.bsky.feed.");
    /* the '*' percent-encoded, as Go's url.Values sends it */
    subscribe(&w, port, "cursor=1&wantedCollections=app.bsky.feed.%2A");
    json_t *got = receive_exactly(&w, json_array_size(feed));
    ws_close(&w);
    expect_same_events(got, feed);
    printf("  app.bsky.feed.*: %zu events (with the identity and account ones)\n",
           json_array_size(feed));
    json_decref(got);
    json_decref(feed);

    const char *two[] = {"did:plc:u4lmvw4wwzaql3z5kcf3r7h4", "did:plc:hqvhxrowqbemo5e4wjnj6zao",
                         NULL};
    json_t *theirs = lines_where(lines, of_dids, two);
    subscribe(&w, port,
              "cursor=1&wantedDids=did%3Aplc%3Au4lmvw4wwzaql3z5kcf3r7h4"
              "&wantedDids=did:plc:hqvhxrowqbemo5e4wjnj6zao");
    got = receive_exactly(&w, json_array_size(theirs));
    ws_close(&w);
    expect_same_events(got, theirs);
    json_decref(got);
    json_decref(theirs);

    /* requireHello: nothing until the first options_update, which sets the filter */
    json_t *graph = lines_where(lines, in_namespace, "app.bsky.graph.");
    subscribe(&w, port, "cursor=1&requireHello=true");
    expect_silence(&w);
    assert_int_equal(ws_send_text(&w, "{\"type\":\"options_update\",\"payload\":"
                                      "{\"wantedCollections\":[\"app.bsky.graph.*\"]}}"),
                     0);
    got = receive_exactly(&w, json_array_size(graph));
    ws_close(&w);
    expect_same_events(got, graph);
    json_decref(got);
    json_decref(graph);

    /* maxMessageSizeBytes: larger events are left out */
    subscribe(&w, port, "cursor=1");
    size_t small = 0;
    for (int i = 0; i < CORPUS_EVENTS; i++) {
        char *m = NULL;
        assert_int_equal(ws_read(&w, 20000, &m), 1);
        small += strlen(m) <= 600;
        free(m);
    }
    ws_close(&w);
    assert_true(small > 0 && small < CORPUS_EVENTS);
    subscribe(&w, port, "cursor=1&maxMessageSizeBytes=600");
    got = receive_exactly(&w, small);
    ws_close(&w);
    json_decref(got);

    /* a malformed collection closes the connection with the reason */
    subscribe(&w, port, "cursor=1&wantedCollections=app.bsky.fe*");
    char *m = NULL;
    assert_int_equal(ws_read(&w, 5000, &m), 0);
    assert_int_equal(w.close_code, 1008);
    assert_non_null(strstr(w.close_reason, "invalid collection"));
    ws_close(&w);

    served_end(&sv);
}

/* ---- cursor handover -------------------------------------------------------------- */

/* One event's identity: kind, DID and, for a commit, collection, rkey and
 * rev; for identity and account events, the relay seq. */
static void key_of_json(json_t *e, char *out, size_t size)
{
    const char *kind = json_string_value(json_object_get(e, "kind"));
    json_t *body = json_object_get(e, kind);
    if (strcmp(kind, "commit") == 0)
        snprintf(out, size, "commit %s %s/%s %s", json_string_value(json_object_get(e, "did")),
                 json_string_value(json_object_get(body, "collection")),
                 json_string_value(json_object_get(body, "rkey")),
                 json_string_value(json_object_get(body, "rev")));
    else
        snprintf(out, size, "%s %s %lld", kind, json_string_value(json_object_get(e, "did")),
                 (long long)json_integer_value(json_object_get(body, "seq")));
}

static es_status key_of_event(const es_event *ev, void *closure)
{
    json_t *keys = closure;
    es_atp_jetstream_event d;
    assert_int_equal(es_atp_jetstream_describe(ev, &d), ES_OK);
    if (d.kind == ES_ATP_JS_NONE)
        return ES_OK;
    char key[1024];
    if (d.kind == ES_ATP_JS_COMMIT)
        snprintf(key, sizeof key, "commit %.*s %s/%s %s", (int)d.did_len, d.did, d.collection,
                 es_event_meta(ev, "rkey"), es_event_meta(ev, "rev"));
    else
        snprintf(key, sizeof key, "%s %.*s %s", d.kind == ES_ATP_JS_IDENTITY ? "identity" : "account",
                 (int)d.did_len, d.did, es_event_meta(ev, "seq"));
    json_object_set_new(keys, key, json_integer(0));
    return ES_OK;
}

/* An ingester running in the background: its exit code once it ended. */
typedef struct source {
    pid_t pid;
    int code; /* -1 while it runs */
} source;

static source source_start(const char *url, const char *store, const char *capture,
                           const char *log)
{
    return (source){ingest_start(url, store, capture, NULL, log), -1};
}

static bool source_ended(source *src)
{
    if (src->code < 0 && src->pid != 0)
        src->code = exit_code(src->pid, 0);
    return src->pid == 0 || src->code >= 0;
}

/* Reads `max` events, or (max 0) until QUIET_MS of silence after `src`
 * ended, counting them per key in `keys`; the events at time_us `skip_at`
 * seen before are the inclusive cursor's repeats (counted in *skipped).
 * Returns the last time_us. */
static int64_t read_into(ws_client *w, json_t *keys, size_t max, source *src, int64_t skip_at,
                         size_t *skipped)
{
    int64_t last = 0;
    for (size_t n = 0; max == 0 || n < max;) {
        char *m = NULL;
        bool ended = source_ended(src);
        int r = ws_read(w, QUIET_MS, &m);
        if (r == 0)
            fail_msg("closed: %d %s", w->close_code, w->close_reason);
        if (r < 0) {
            if (max == 0 && ended)
                break;
            continue;
        }
        json_t *e = json_loads(m, 0, NULL);
        free(m);
        assert_non_null(e);
        int64_t t = json_integer_value(json_object_get(e, "time_us"));
        assert_true(t >= last); /* one stream, in order: replay, then live */
        last = t;
        char key[1024];
        key_of_json(e, key, sizeof key);
        json_t *count = json_object_get(keys, key);
        long long c = count ? json_integer_value(count) : 0;
        if (t == skip_at && c == 1)
            (*skipped)++; /* the cursor's own event, again */
        else
            json_object_set_new(keys, key, json_integer(c + 1));
        json_decref(e);
        n++;
    }
    return last;
}

/* A generated capture of `frames` frames. */
static void generate_frames(const char *capture, const char *seed, const char *first_seq,
                            const char *frames, const char *log)
{
    char *gen[] = {(char *)gen_bin,   "--out", (char *)capture, "--frames",   (char *)frames,
                   "--repos",         "300",   "--seed",        (char *)seed, "--first-seq",
                   (char *)first_seq, NULL};
    expect_exit(spawn(gen, log, NULL), 60000, 0, log);
}

static void generate(const char *capture, const char *seed, const char *first_seq, const char *log)
{
    generate_frames(capture, seed, first_seq, "3000", log);
}

/* A gauge or counter of /metrics (-1 when absent). */
static double metric(int port, const char *name)
{
    static char body[16384];
    if (http_get(port, "/metrics", body, sizeof body) != 200)
        return -1;
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *at = strstr(body, pat);
    return at ? strtod(at + strlen(pat), NULL) : -1;
}

/* Waits up to 10 s for a metric to read `want`; what it read last. */
static double metric_reaches(int port, const char *name, double want)
{
    double v = -1;
    for (int i = 0; i < 100 && (v = metric(port, name)) != want; i++)
        sleep_ms(100);
    return v;
}

/* The consumers on the store's stream now (each watch is one). */
static int stream_consumers(const char *url, const char *store)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    char stream[96];
    snprintf(stream, sizeof stream, "ES_%s", store); /* docs/wire-format.md */
    int n = -1;
    if (natsConnection_ConnectTo(&nc, url) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK)
        n = (int)si->State.Consumers;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

/* Every event stored in `store` was received exactly once (`keys`: each
 * received key's count; `skipped`: the cursor's repeats set aside), and
 * nothing else; more than `at_least` of them. */
static void expect_each_stored_once(const char *url, const char *store, json_t *keys,
                                    size_t skipped, size_t at_least)
{
    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    es_store *st;
    assert_int_equal(es_store_open(nc, store, NULL, &st), ES_OK);
    json_t *stored = json_object();
    assert_int_equal(es_evolve(st, NULL, NULL, key_of_event, stored, NULL), ES_OK);
    size_t wrong = 0;
    const char *key;
    json_t *v;
    json_object_foreach(stored, key, v)
    {
        json_t *c = json_object_get(keys, key);
        if ((c == NULL || json_integer_value(c) != 1) && wrong++ < 5)
            printf("  %s received %lld times\n", key, c ? (long long)json_integer_value(c) : 0);
    }
    json_object_foreach(keys, key, v)
    {
        if (json_object_get(stored, key) == NULL && wrong++ < 5)
            printf("  %s received but not stored\n", key);
    }
    printf("  %zu events stored, %zu received once each; %zu repeated at a cursor\n",
           json_object_size(stored), json_object_size(keys), skipped);
    assert_int_equal(wrong, 0);
    assert_true(json_object_size(stored) > at_least);
    json_decref(stored);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
}

/* A subscriber dropped twice and back each time with its last time_us —
 * once in the replay, once while an ingester appends — then left in the
 * live phase while another ingester appends: every stored event exactly
 * once, the only repeats being the events at the cursor's own time
 * (Jetstream's cursor is inclusive). */
static void a_reconnect_with_the_cursor_loses_and_repeats_nothing(void **state)
{
    (void)state;
    const char *url = getenv("NATS_URL");
    char cap[3][300], log[300], store[64];
    snprintf(log, sizeof log, "%s/handover.log", tmp);
    snprintf(store, sizeof store, "serve_handover_%ld", (long)getpid());
    const char *seeds[] = {"41", "42", "43"}, *firsts[] = {"1", "3001", "6001"};
    for (int i = 0; i < 3; i++) {
        snprintf(cap[i], sizeof cap[i], "%s/handover-%d.capture", tmp, i);
        generate(cap[i], seeds[i], firsts[i], log);
    }
    source src = source_start(url, store, cap[0], log), none = {0, 0};
    expect_exit(src.pid, 60000, 0, log);
    int port;
    pid_t srv = serve_start(url, store, log, NULL, &port);

    json_t *keys = json_object();
    size_t skipped = 0;
    ws_client w;
    char q[64];
    subscribe(&w, port, "cursor=1");
    int64_t cursor = read_into(&w, keys, 1500, &none, -1, &skipped);
    ws_close(&w); /* dropped in the replay */

    snprintf(q, sizeof q, "cursor=%lld", (long long)cursor);
    subscribe(&w, port, q);
    src = source_start(url, store, cap[1], log); /* appends while the replay goes on */
    int64_t at = cursor;
    cursor = read_into(&w, keys, 3000, &none, at, &skipped);
    ws_close(&w); /* dropped again, the ingester still running or just done */

    snprintf(q, sizeof q, "cursor=%lld", (long long)cursor);
    subscribe(&w, port, q);
    at = cursor;
    read_into(&w, keys, 0, &src, at, &skipped); /* to the end of the second capture */
    assert_int_equal(src.code, 0);
    source live = source_start(url, store, cap[2], log); /* the subscriber is live now */
    read_into(&w, keys, 0, &live, at, &skipped);
    assert_int_equal(live.code, 0);
    /* its replay (direct gets, no consumer) handed over to the shared
     * fan-out, whose consumer is the only one on the stream */
    assert_int_equal(metric_reaches(port, "es_serve_fanout_subscribers", 1), 1);
    assert_int_equal(stream_consumers(url, store), 1);
    ws_close(&w);

    expect_each_stored_once(url, store, keys, skipped, 4500);
    json_decref(keys);
    stop(srv, log);
    store_drop(store);
}

/* Serve's resident memory, in KiB (/proc/PID/status). */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

#define SLOW_WINDOW "16"

/* Under AddressSanitizer freed memory stays in its quarantine: serve's RSS
 * then grows with what it freed, and says nothing of what it holds. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEANS_HELD 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_MEANS_HELD 0
#endif
#endif
#ifndef RSS_MEANS_HELD
#define RSS_MEANS_HELD 1
#endif

static long now_ms(void);

/* A replaying subscriber that reads nothing for two seconds: serve holds
 * at most --replay-window events for it (the replay's peak gauge), and its
 * memory does not take in the store, which a push consumer would have sent
 * ahead; once the client reads, it gets every stored event exactly once,
 * then the live ones after its handover to the shared fan-out. */
static void a_slow_replay_holds_at_most_its_window(void **state)
{
    (void)state;
    const char *url = getenv("NATS_URL");
    char cap[2][300], log[300], store[64];
    long t0 = now_ms();
    snprintf(log, sizeof log, "%s/window.log", tmp);
    snprintf(store, sizeof store, "serve_window_%ld", (long)getpid());
    snprintf(cap[0], sizeof cap[0], "%s/window-0.capture", tmp);
    snprintf(cap[1], sizeof cap[1], "%s/window-1.capture", tmp);
    /* a store of several MiB, more than the loopback's buffers take in */
    char *gen[] = {(char *)gen_bin, "--out", cap[0], "--frames", "6000", "--repos", "300",
                   "--seed", "61", NULL};
    expect_exit(spawn(gen, log, NULL), 60000, 0, log);
    char *gen_live[] = {(char *)gen_bin, "--out", cap[1], "--frames", "300", "--repos", "30",
                        "--seed", "62", "--first-seq", "6001", NULL};
    expect_exit(spawn(gen_live, log, NULL), 60000, 0, log);
    expect_exit(ingest_start(url, store, cap[0], NULL, log), 60000, 0, log);
    int port;
    pid_t srv = serve_start(url, store, log,
                            (const char *[]){"--replay-window", SLOW_WINDOW, "--slow-timeout",
                                             "30s", NULL},
                            &port);
    long before = rss_kib(srv);
    ws_client w;
    printf("  %ld ms: serving\n", now_ms() - t0);
    assert_int_equal(ws_open(&w, port, "/subscribe?cursor=1", 4096), 101);
    sleep_ms(2000); /* reads nothing */
    long held = rss_kib(srv) - before;
    double peak = metric(port, "es_serve_replay_held_peak_events");
    printf("  a replay not read for 2 s: serve grew %ld KiB; at most %.0f events held\n", held,
           peak);
    assert_int_equal(metric(port, "es_serve_replays"), 1);
    assert_true(peak > 0 && peak <= atoi(SLOW_WINDOW));
    if (RSS_MEANS_HELD) /* a store of several MiB is not taken in (a watch: 5.7 MiB) */
        assert_true(held < 4096);

    json_t *keys = json_object();
    size_t skipped = 0;
    source none = {0, 0}, live = {0, 0};
    read_into(&w, keys, 0, &none, -1, &skipped); /* the replay, to its end */
    printf("  %ld ms: replayed %zu events\n", now_ms() - t0, json_object_size(keys));
    assert_int_equal(metric_reaches(port, "es_serve_fanout_subscribers", 1), 1);
    assert_int_equal(metric(port, "es_serve_replays"), 0);
    live = source_start(url, store, cap[1], log);
    read_into(&w, keys, 0, &live, -1, &skipped);
    assert_int_equal(live.code, 0);
    ws_close(&w);
    assert_true(metric(port, "es_serve_replay_held_peak_events") <= atoi(SLOW_WINDOW));
    expect_each_stored_once(url, store, keys, skipped, 1000);
    json_decref(keys);
    stop(srv, log);
    store_drop(store);
}

/* ---- the shared live fan-out --------------------------------------------------------- */

/* What a subscriber asking for `collection` (NULL: all) should get of the
 * events in `after` but not in `before`: every one once. */
static void expect_keys(json_t *got, json_t *before, json_t *after, const char *collection)
{
    size_t want = 0, wrong = 0;
    const char *key;
    json_t *v;
    json_object_foreach(after, key, v)
    {
        if (json_object_get(before, key) != NULL)
            continue;
        /* identity and account events pass any collection filter */
        if (collection && strncmp(key, "commit ", 7) == 0 && strstr(key, collection) == NULL)
            continue;
        want++;
        json_t *c = json_object_get(got, key);
        if ((c == NULL || json_integer_value(c) != 1) && wrong++ < 5)
            printf("  %s received %lld times\n", key, c ? (long long)json_integer_value(c) : 0);
    }
    printf("  %zu events expected, %zu received\n", want, json_object_size(got));
    assert_int_equal(wrong, 0);
    assert_int_equal(json_object_size(got), want);
    assert_true(want > 0);
}

/* Live subscribers (no cursor) are served by the shared fan-out: one
 * consumer on the stream however many are connected, and each receives
 * every event appended after it connected exactly once, in order; a
 * filtered one only its collection's commits (and identity and account
 * events, as Jetstream). */
static void live_subscribers_share_one_consumer(void **state)
{
    (void)state;
    enum { ALL = 6 };
    const char *url = getenv("NATS_URL");
    char cap[2][300], log[300], store[64];
    snprintf(log, sizeof log, "%s/share.log", tmp);
    snprintf(store, sizeof store, "serve_share_%ld", (long)getpid());
    snprintf(cap[0], sizeof cap[0], "%s/share-0.capture", tmp);
    snprintf(cap[1], sizeof cap[1], "%s/share-1.capture", tmp);
    generate(cap[0], "51", "1", log);
    generate(cap[1], "52", "3001", log);
    expect_exit(ingest_start(url, store, cap[0], NULL, log), 60000, 0, log);
    int port;
    pid_t srv = serve_start(url, store, log, NULL, &port);
    ws_client w[ALL + 1];
    for (int i = 0; i < ALL; i++)
        subscribe(&w[i], port, "");
    subscribe(&w[ALL], port, "wantedCollections=app.bsky.feed.like");
    assert_int_equal(metric_reaches(port, "es_serve_fanout_subscribers", ALL + 1), ALL + 1);
    assert_int_equal(stream_consumers(url, store), 1); /* the hub's, for all of them */

    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    es_store *st;
    assert_int_equal(es_store_open(nc, store, NULL, &st), ES_OK);
    json_t *before = json_object(), *after = json_object();
    assert_int_equal(es_evolve(st, NULL, NULL, key_of_event, before, NULL), ES_OK);
    source src = source_start(url, store, cap[1], log);
    for (int i = 0; i <= ALL; i++) {
        json_t *got = json_object();
        size_t skipped = 0;
        read_into(&w[i], got, 0, &src, -1, &skipped);
        assert_int_equal(src.code, 0);
        if (i == 0)
            assert_int_equal(es_evolve(st, NULL, NULL, key_of_event, after, NULL), ES_OK);
        expect_keys(got, before, after, i == ALL ? " app.bsky.feed.like/" : NULL);
        json_decref(got);
        ws_close(&w[i]);
    }
    assert_int_equal(metric_reaches(port, "es_serve_fanout_subscribers", 0), 0);
    json_decref(before);
    json_decref(after);
    stop(srv, log);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
    store_drop(store);
}

/* ---- compress=true ---------------------------------------------------------------- */

/* `want` text messages, as sent (strings of JSON text). */
static json_t *read_texts(ws_client *w, size_t want)
{
    json_t *texts = json_array();
    while (json_array_size(texts) < want) {
        char *m = NULL;
        size_t len;
        bool binary;
        if (ws_read_message(w, 20000, &m, &len, &binary) != 1)
            fail_msg("after %zu of %zu messages: closed or silent (%d %s)", json_array_size(texts),
                     want, w->close_code, w->close_reason);
        assert_false(binary);
        json_array_append_new(texts, json_stringn(m, len));
        free(m);
    }
    return texts;
}

/* Text messages until QUIET_MS of silence after `src` ended. */
static json_t *read_texts_until_quiet(ws_client *w, source *src)
{
    json_t *texts = json_array();
    for (;;) {
        char *m = NULL;
        size_t len;
        bool binary;
        bool ended = source_ended(src);
        int r = ws_read_message(w, QUIET_MS, &m, &len, &binary);
        if (r == 0)
            fail_msg("closed: %d %s", w->close_code, w->close_reason);
        if (r < 0 && ended)
            return texts;
        if (r == 1) {
            assert_false(binary);
            json_array_append_new(texts, json_stringn(m, len));
            free(m);
        }
    }
}

typedef struct frame_sizes {
    size_t json, zstd;
} frame_sizes;

/* The next messages are binary, one zstd frame each, naming `dict_id` (0:
 * none), that decompress (with `dict` when there is one, and not without
 * it) to exactly `texts`, in order; with `then_nothing`, nothing follows
 * within QUIET_MS. Adds their sizes. */
static void expect_frames_of(ws_client *w, json_t *texts, const ZSTD_DDict *dict, unsigned dict_id,
                             bool then_nothing, frame_sizes *sizes)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    size_t i;
    json_t *t;
    json_array_foreach(texts, i, t)
    {
        char *m = NULL;
        size_t len;
        bool binary;
        if (ws_read_message(w, 20000, &m, &len, &binary) != 1)
            fail_msg("frame %zu of %zu: closed or silent (%d %s)", i, json_array_size(texts),
                     w->close_code, w->close_reason);
        assert_true(binary);
        assert_int_equal(ZSTD_getDictID_fromFrame(m, len), dict_id);
        unsigned long long size = ZSTD_getFrameContentSize(m, len);
        assert_int_equal(size, json_string_length(t));
        char *out = malloc(size + 1);
        if (dict != NULL) /* the dictionary is needed */
            assert_true(ZSTD_isError(ZSTD_decompressDCtx(dctx, out, size + 1, m, len)));
        size_t n = dict ? ZSTD_decompress_usingDDict(dctx, out, size + 1, m, len, dict)
                        : ZSTD_decompressDCtx(dctx, out, size + 1, m, len);
        assert_false(ZSTD_isError(n));
        assert_int_equal(n, json_string_length(t));
        assert_memory_equal(out, json_string_value(t), n);
        sizes->json += n;
        sizes->zstd += len;
        free(out);
        free(m);
    }
    char *extra = NULL;
    size_t len;
    bool binary;
    if (then_nothing && ws_read_message(w, QUIET_MS, &extra, &len, &binary) == 1)
        fail_msg("a message beyond the %zu expected", json_array_size(texts));
    ZSTD_freeDCtx(dctx);
}

/* A zstd dictionary trained on the corpus' events, written to `path`:
 * its ID. */
static unsigned train_dictionary(json_t *lines, const char *path, ZSTD_DDict **ddict)
{
    es_buf samples = ES_BUF_INIT;
    size_t sizes[CORPUS_EVENTS];
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        char *text = json_dumps(l, JSON_COMPACT);
        sizes[i] = strlen(text);
        assert_int_equal(es_buf_append(&samples, text, sizes[i]), ES_OK);
        free(text);
    }
    static char dict[16384];
    size_t n = ZDICT_trainFromBuffer(dict, sizeof dict, samples.data, sizes, (unsigned)i);
    es_buf_free(&samples);
    if (ZDICT_isError(n))
        fail_msg("ZDICT_trainFromBuffer: %s", ZDICT_getErrorName(n));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(dict, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    *ddict = ZSTD_createDDict(dict, n);
    assert_non_null(*ddict);
    return ZSTD_getDictID_fromDict(dict, n);
}

/* compress=true: each event is one zstd frame in a binary message, that
 * decompresses to exactly the JSON an uncompressed subscriber gets, in a
 * replay and live; one server without a dictionary (frames without an
 * ID), one with --zstd-dictionary (frames naming its ID, asked for by
 * Jetstream's header Socket-Encoding: zstd). The live subscribers'
 * frames are made once per event, however many ask. */
static void compress_true_sends_zstd_frames_of_the_same_json(void **state)
{
    (void)state;
    served sv;
    if (!corpus_served("zstd", &sv))
        skip();
    const char *url = getenv("NATS_URL");
    char dict_path[300], cap[300];
    snprintf(dict_path, sizeof dict_path, "%s/corpus.zdict", tmp);
    snprintf(cap, sizeof cap, "%s/zstd-live.capture", tmp);
    ZSTD_DDict *dict;
    unsigned dict_id = train_dictionary(sv.lines, dict_path, &dict);
    assert_true(dict_id != 0);
    int port = sv.port, dport;
    const char *with_dict[] = {"--zstd-dictionary", dict_path, NULL};
    pid_t dsrv = serve_start(url, sv.store, sv.log, with_dict, &dport);

    /* the replay */
    ws_client w;
    subscribe(&w, port, "cursor=1");
    json_t *texts = read_texts(&w, CORPUS_EVENTS);
    ws_close(&w);
    frame_sizes plain = {0}, trained = {0};
    subscribe(&w, port, "cursor=1&compress=true");
    expect_frames_of(&w, texts, NULL, 0, true, &plain);
    ws_close(&w);
    assert_int_equal(ws_open_with(&w, dport, "/subscribe?cursor=1", 0, "Socket-Encoding: zstd\r\n"),
                     101);
    expect_frames_of(&w, texts, dict, dict_id, true, &trained);
    ws_close(&w);
    printf("  %d events replayed: %zu bytes of JSON, %zu as zstd frames, %zu with a dictionary "
           "trained on them\n",
           CORPUS_EVENTS, plain.json, plain.zstd, trained.zstd);
    json_decref(texts);

    /* live, through the shared fan-out: two compressing subscribers here,
     * one on the server with the dictionary */
    ws_client live, z[2], dz;
    subscribe(&live, port, "");
    subscribe(&z[0], port, "compress=true");
    subscribe(&z[1], port, "compress=true");
    subscribe(&dz, dport, "compress=true");
    assert_int_equal(metric_reaches(port, "es_serve_fanout_subscribers", 3), 3);
    assert_int_equal(metric_reaches(dport, "es_serve_fanout_subscribers", 1), 1);
    double made = metric(port, "es_serve_zstd_frames_total");
    assert_int_equal(made, CORPUS_EVENTS);                    /* the replay's */
    generate_frames(cap, "61", "40000000001", "300", sv.log); /* after the corpus' relay seqs */
    source src = source_start(url, sv.store, cap, sv.log);
    texts = read_texts_until_quiet(&live, &src);
    assert_int_equal(src.code, 0);
    assert_true(json_array_size(texts) > 0);
    frame_sizes ignored = {0}; /* the plain one saw the end: the same stream for all */
    expect_frames_of(&z[0], texts, NULL, 0, false, &ignored);
    expect_frames_of(&z[1], texts, NULL, 0, false, &ignored);
    expect_frames_of(&dz, texts, dict, dict_id, false, &ignored);
    /* once per event for both subscribers */
    assert_int_equal(metric(port, "es_serve_zstd_frames_total") - made, json_array_size(texts));
    printf("  %zu live events: the same JSON in every frame, compressed once each\n",
           json_array_size(texts));
    ws_close(&live);
    ws_close(&z[0]);
    ws_close(&z[1]);
    ws_close(&dz);
    json_decref(texts);
    ZSTD_freeDDict(dict);
    stop(dsrv, sv.log);
    served_end(&sv);
}

/* A --zstd-dictionary that is not a zstd dictionary with an ID stops the
 * start with the reason, before any connection. */
static void a_bad_zstd_dictionary_stops_the_start(void **state)
{
    (void)state;
    char log[300], garbage[300], raw[300], damaged[300];
    snprintf(garbage, sizeof garbage, "%s/garbage.zdict", tmp);
    snprintf(raw, sizeof raw, "%s/empty.zdict", tmp);
    snprintf(damaged, sizeof damaged, "%s/damaged.zdict", tmp);
    FILE *f = fopen(garbage, "wb");
    assert_non_null(f);
    fputs("{\"did\":\"did:plc:not-a-dictionary\"}", f); /* raw content: no ID */
    fclose(f);
    fclose(fopen(raw, "wb"));
    /* the magic number and an ID, then no valid entropy tables */
    unsigned char head[64] = {0x37, 0xa4, 0x30, 0xec, 0x01, 0x02, 0x03, 0x04};
    memset(head + 8, 0xff, sizeof head - 8);
    f = fopen(damaged, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    const char *files[] = {"/nonexistent/dictionary", garbage, raw, damaged};
    const char *why[] = {"cannot read", "not a zstd dictionary", "not a zstd dictionary",
                         "damaged"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(log, sizeof log, "%s/bad-dict-%zu.log", tmp, i); /* logs are appended to */
        char *argv[] = {(char *)serve_bin, "--server",          "nats://127.0.0.1:1", "--listen",
                        "127.0.0.1:0",     "--zstd-dictionary", (char *)files[i],     NULL};
        expect_exit(spawn(argv, log, NULL), 10000, 1, log);
        char text[1024] = "";
        f = fopen(log, "r");
        assert_non_null(f);
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        if (strstr(text, "--zstd-dictionary") == NULL || strstr(text, why[i]) == NULL)
            fail_msg("%s: expected '%s' in: %s", files[i], why[i], text);
    }
}

/* ---- health ------------------------------------------------------------------------- */

static int health_of(int port, char *body, size_t size)
{
    return http_get(port, "/health", body, size);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls /health until it answers `want` (within timeout_ms); how long that
 * took, in milliseconds. */
static long health_becomes(int port, int want, long timeout_ms, char *body, size_t size)
{
    int got = -1;
    long t0 = now_ms();
    while (now_ms() - t0 <= timeout_ms) {
        if ((got = health_of(port, body, size)) == want)
            return now_ms() - t0;
        sleep_ms(200);
    }
    fail_msg("/health answered %d, not %d, for %ld ms: %s", got, want, timeout_ms, body);
    return -1;
}

static pid_t nats_start(const char *bin, int port, const char *dir, const char *log)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    char *argv[] = {(char *)bin, "-a", "127.0.0.1", "-p", p, "-js", "-sd", (char *)dir, NULL};
    pid_t pid = spawn(argv, log, NULL);
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    natsConnection *nc = NULL;
    for (int i = 0; i < 250 && natsConnection_ConnectTo(&nc, url) != NATS_OK; i++)
        sleep_ms(20);
    assert_non_null(nc);
    natsConnection_Destroy(nc);
    return pid;
}

/* /health is OK with NATS and the stream answering, 503 with the reason
 * while nats-server is stopped, OK again once it is back. */
static void health_follows_nats(void **state)
{
    (void)state;
    const char *bin = getenv("ES_NATS_SERVER");
    if (bin == NULL || *bin == '\0') {
        printf("SKIP: ES_NATS_SERVER is not set\n");
        skip();
    }
    char dir[300], log[300], nlog[300], url[64];
    snprintf(dir, sizeof dir, "%s/js-health", tmp);
    snprintf(log, sizeof log, "%s/health.log", tmp);
    snprintf(nlog, sizeof nlog, "%s/nats-health.log", tmp);
    int nport = children_free_port();
    assert_true(nport > 0);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", nport);
    pid_t nats = nats_start(bin, nport, dir, nlog);
    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    es_store *st;
    assert_int_equal(es_store_create(nc, "health", NULL, NULL, &st), ES_OK);
    es_store_destroy(st);
    natsConnection_Destroy(nc);

    int port;
    setenv("ES_HEALTH_INTERVAL", "200ms", 1); /* options from the environment too */
    pid_t srv = serve_start(url, "health", log, (const char *[]){"--max-subscribers", "1", NULL},
                            &port);
    unsetenv("ES_HEALTH_INTERVAL");
    char body[512] = "";
    assert_int_equal(health_of(port, body, sizeof body), 200);
    assert_string_equal(body, "{\"status\":\"ok\"}");
    assert_int_equal(http_get(port, "/nope", body, sizeof body), 404);
    assert_int_equal(http_get(port, "/subscribe", body, sizeof body), 400); /* not an upgrade */
    ws_client one, two;
    assert_int_equal(ws_open(&one, port, "/subscribe", 0), 101);
    assert_true(ws_open(&two, port, "/subscribe", 0) != 101); /* --max-subscribers 1 */
    ws_close(&two);
    /* /metrics: Prometheus' text, what happened so far */
    static char metrics[8192];
    assert_int_equal(http_get(port, "/metrics", metrics, sizeof metrics), 200);
    assert_non_null(strstr(metrics, "# TYPE es_serve_subscribers gauge\nes_serve_subscribers 1\n"));
    assert_non_null(strstr(metrics, "\nes_serve_connections_total 1\n"));
    assert_non_null(strstr(metrics, "\nes_serve_refused_total 1\n"));
    assert_non_null(strstr(metrics, "\nes_serve_up 1\n"));
    assert_non_null(strstr(metrics, "es_serve_closed_total{reason=\"too_slow\"} 0\n"));
    ws_close(&one); /* its watch is torn down while NATS goes away, below */

    kill(nats, SIGTERM);
    assert_int_equal(exit_code(nats, 20000), 0);
    /* three intervals of 200 ms, plus a poll: the loop never waits on NATS */
    long took = health_becomes(port, 503, 15000, body, sizeof body);
    printf("  nats-server stopped: 503 after %ld ms %s\n", took, body);
    assert_true(took < 2500);
    assert_non_null(strstr(body, "\"reason\""));

    nats = nats_start(bin, nport, dir, nlog);
    health_becomes(port, 200, 30000, body, sizeof body);
    assert_string_equal(body, "{\"status\":\"ok\"}");
    printf("  nats-server back: 200 %s\n", body);

    stop(srv, log);
    kill(nats, SIGTERM);
    exit_code(nats, 20000);
}

/* How many events of `store` have a Jetstream form. */
static size_t stored_count(const char *url, const char *store)
{
    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    es_store *st;
    assert_int_equal(es_store_open(nc, store, NULL, &st), ES_OK);
    json_t *stored = json_object();
    assert_int_equal(es_evolve(st, NULL, NULL, key_of_event, stored, NULL), ES_OK);
    size_t n = json_object_size(stored);
    json_decref(stored);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
    return n;
}

/* A replay while nats-server restarts: its reads fail for a while and are
 * tried again (not the end of the subscriber), and the client then gets
 * every stored event exactly once. */
static void a_replay_rides_out_a_nats_restart(void **state)
{
    (void)state;
    const char *bin = getenv("ES_NATS_SERVER");
    if (bin == NULL || *bin == '\0') {
        printf("SKIP: ES_NATS_SERVER is not set\n");
        skip();
    }
    char dir[300], log[300], nlog[300], cap[300], url[64];
    snprintf(dir, sizeof dir, "%s/js-outage", tmp);
    snprintf(log, sizeof log, "%s/outage.log", tmp);
    snprintf(nlog, sizeof nlog, "%s/nats-outage.log", tmp);
    snprintf(cap, sizeof cap, "%s/outage.capture", tmp);
    int nport = children_free_port();
    assert_true(nport > 0);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", nport);
    pid_t nats = nats_start(bin, nport, dir, nlog);
    generate(cap, "71", "1", log);
    expect_exit(ingest_start(url, "outage", cap, NULL, log), 60000, 0, log);
    size_t want = stored_count(url, "outage");
    int port;
    pid_t srv = serve_start(url, "outage", log,
                            (const char *[]){"--replay-window", "16", "--slow-timeout", "60s",
                                             NULL},
                            &port);
    ws_client w;
    subscribe(&w, port, "cursor=1");
    json_t *keys = json_object();
    size_t skipped = 0;
    source none = {0, 0};
    read_into(&w, keys, 300, &none, -1, &skipped); /* in the replay */
    kill(nats, SIGKILL);
    exit_code(nats, 20000);
    sleep_ms(1500);
    nats = nats_start(bin, nport, dir, nlog);
    /* the rest, once NATS is back and serve has reconnected (seconds) */
    for (int i = 0; i < 50 && json_object_size(keys) < want; i++)
        read_into(&w, keys, 0, &none, -1, &skipped);
    assert_int_equal(w.close_code, 0);
    ws_close(&w);
    expect_each_stored_once(url, "outage", keys, skipped, 1000);
    json_decref(keys);
    stop(srv, log);
    kill(nats, SIGTERM);
    exit_code(nats, 20000);
}

/* A client that stops reading is closed (1008, ConsumerTooSlow) once its
 * bounded buffer has stayed full for --slow-timeout. */
static void a_slow_subscriber_is_closed(void **state)
{
    (void)state;
    const char *url = getenv("NATS_URL");
    char capture[300], log[300], store[64];
    snprintf(capture, sizeof capture, "%s/slow.capture", tmp);
    snprintf(log, sizeof log, "%s/slow.log", tmp);
    snprintf(store, sizeof store, "serve_slow_%ld", (long)getpid());
    /* more JSON than the loopback's socket buffers hold (4 MiB for the
     * sender at most here): the server's own bounded buffer must fill */
    char *gen[] = {(char *)gen_bin, "--out", capture, "--frames", "12000", "--repos", "300",
                   "--seed", "43", NULL};
    expect_exit(spawn(gen, log, NULL), 60000, 0, log);
    expect_exit(ingest_start(url, store, capture, NULL, log), 60000, 0, log);
    int port;
    pid_t srv = serve_start(url, store, log,
                            (const char *[]){"--subscriber-buffer", "16K", "--slow-timeout",
                                             "500ms", NULL},
                            &port);
    ws_client w;
    assert_int_equal(ws_open(&w, port, "/subscribe?cursor=1", 4096), 101);
    sleep_ms(3000); /* reads nothing */
    size_t n = 0, bytes = 0;
    char *m = NULL;
    int r;
    while ((r = ws_read(&w, 5000, &m)) == 1) {
        bytes += strlen(m);
        free(m);
        n++;
    }
    printf("  closed after %zu events (%zu bytes): %d %s\n", n, bytes, w.close_code,
           w.close_reason);
    assert_int_equal(r, 0);
    assert_int_equal(w.close_code, 1008);
    assert_non_null(strstr(w.close_reason, "ConsumerTooSlow"));
    ws_close(&w);
    char body[512];
    assert_int_equal(health_of(port, body, sizeof body), 200); /* the server goes on */

    /* live, on the shared fan-out, which waits for nobody: the slow one is
     * closed while another subscriber gets every event (a larger buffer
     * and timeout, so that a reader parsing JSON keeps up with an ingester
     * at full speed on a loaded machine) */
    stop(srv, log);
    srv = serve_start(url, store, log,
                      (const char *[]){"--subscriber-buffer", "256K", "--slow-timeout", "2s", NULL},
                      &port);
    ws_client slow, reader;
    assert_int_equal(ws_open(&slow, port, "/subscribe", 4096), 101);
    subscribe(&reader, port, "");
    assert_int_equal(metric_reaches(port, "es_serve_fanout_subscribers", 2), 2);
    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    es_store *st;
    assert_int_equal(es_store_open(nc, store, NULL, &st), ES_OK);
    json_t *before = json_object(), *after = json_object(), *got = json_object();
    assert_int_equal(es_evolve(st, NULL, NULL, key_of_event, before, NULL), ES_OK);
    snprintf(capture, sizeof capture, "%s/slow-live.capture", tmp);
    char *gen_live[] = {(char *)gen_bin, "--out", capture, "--frames", "12000", "--repos", "300",
                        "--seed", "44", "--first-seq", "20001", NULL};
    expect_exit(spawn(gen_live, log, NULL), 60000, 0, log);
    source src = source_start(url, store, capture, log);
    size_t skipped = 0;
    read_into(&reader, got, 0, &src, -1, &skipped);
    assert_int_equal(src.code, 0);
    assert_int_equal(es_evolve(st, NULL, NULL, key_of_event, after, NULL), ES_OK);
    expect_keys(got, before, after, NULL);
    while ((r = ws_read(&slow, 5000, &m)) == 1)
        free(m);
    printf("  live: closed %d %s\n", slow.close_code, slow.close_reason);
    assert_int_equal(r, 0);
    assert_int_equal(slow.close_code, 1008);
    assert_non_null(strstr(slow.close_reason, "ConsumerTooSlow"));
    assert_int_equal(metric(port, "es_serve_closed_total{reason=\"too_slow\"}"), 1);
    ws_close(&slow);
    ws_close(&reader);
    json_decref(before);
    json_decref(after);
    json_decref(got);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
    stop(srv, log);
    store_drop(store);
}

/* ---- setup ------------------------------------------------------------------------ */

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
    snprintf(tmp, sizeof tmp, "/tmp/es-serve-e2e-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return getenv("ES_E2E_KEEP") != NULL || system(cmd) == 0 ? 0 : -1;
}

/* `method` `path` with an Authorization header (auth NULL: none) and a
 * body (NULL: none): the status; the body in out[size]. */
static int http_request(int port, const char *method, const char *path, const char *auth,
                        const char *body, char *out, size_t size)
{
    int fd = ws_tcp_connect(port, 0);
    assert_true(fd >= 0);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, auth ? "Authorization: " : "", auth ? auth : "",
                     auth ? "\r\n" : "", body ? strlen(body) : 0, body ? body : "");
    assert_int_equal(ws_send_all(fd, req, (size_t)n), 0);
    ws_client w = {.fd = fd};
    while (ws_fill(&w, 5000) == 1)
        ;
    int status = -1;
    out[0] = '\0';
    char *end = memmem(w.buf, w.len, "\r\n\r\n", 4);
    if (end != NULL && sscanf((const char *)w.buf, "HTTP/1.1 %d", &status) == 1) {
        size_t bl = w.len - (size_t)(end + 4 - (char *)w.buf);
        bl = bl < size ? bl : size - 1;
        memcpy(out, end + 4, bl);
        out[bl] = '\0';
    }
    ws_close(&w);
    return status;
}

/* POST /add-repos, /remove-repos and GET /repos/DID edit and read the
 * tracked set es-atproto-ingest follows, behind --admin-token. */
static void admin_routes_edit_the_tracked_set(void **state)
{
    (void)state;
    const char *url = getenv("NATS_URL");
    char log[300], store[64], out[1024];
    snprintf(log, sizeof log, "%s/admin.log", tmp);
    snprintf(store, sizeof store, "serve_admin_%ld", (long)getpid());
    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    es_store *st;
    assert_int_equal(es_store_create(nc, store, NULL, NULL, &st), ES_OK);
    int port;
    pid_t srv = serve_start(url, store, log, (const char *[]){"--admin-token", "s3", NULL}, &port);
    const char *a = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", *b = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";
    char body[256];
    snprintf(body, sizeof body, "{\"dids\":[\"%s\",\"%s\"]}", a, b);
    assert_int_equal(http_request(port, "POST", "/add-repos", NULL, body, out, sizeof out), 401);
    assert_int_equal(
        http_request(port, "POST", "/add-repos", "Bearer wrong", body, out, sizeof out), 401);
    assert_int_equal(http_request(port, "POST", "/add-repos", "Bearer s3", body, out, sizeof out),
                     200);
    assert_string_equal(out, "{\"added\":2,\"unchanged\":0}");
    char path[128];
    snprintf(path, sizeof path, "/repos/%s", a);
    assert_int_equal(http_request(port, "GET", path, "Bearer s3", NULL, out, sizeof out), 200);
    assert_non_null(strstr(out, "\"tracked\":true"));
    assert_int_equal(http_request(port, "GET", path, NULL, NULL, out, sizeof out), 401);
    snprintf(body, sizeof body, "{\"dids\":[\"%s\",\"did:plc:cccccccccccccccccccccccc\"]}", a);
    assert_int_equal(
        http_request(port, "POST", "/remove-repos", "Bearer s3", body, out, sizeof out), 200);
    assert_string_equal(out, "{\"removed\":1,\"unchanged\":1}");
    assert_int_equal(http_request(port, "GET", path, "Bearer s3", NULL, out, sizeof out), 404);
    assert_int_equal(http_request(port, "POST", "/add-repos", "Bearer s3", "{\"dids\":[\"nope\"]}",
                                  out, sizeof out),
                     400);
    assert_int_equal(
        http_request(port, "POST", "/add-repos", "Bearer s3", "not json", out, sizeof out), 400);
    /* what the ingester would see */
    es_atp_tracked *t;
    assert_int_equal(es_atp_tracked_open(st, &t), ES_OK);
    bool yes;
    assert_int_equal(es_atp_tracked_contains(t, b, strlen(b), &yes, NULL), ES_OK);
    assert_true(yes);
    assert_int_equal(es_atp_tracked_contains(t, a, strlen(a), &yes, NULL), ES_OK);
    assert_false(yes);
    es_atp_tracked_destroy(t);
    kill(srv, SIGTERM);
    assert_int_equal(exit_code(srv, 20000), 0);
    es_store_destroy(st);
    es_store_delete(nc, store, NULL);
    natsConnection_Destroy(nc);
}

int main(void)
{
    struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(replays_the_corpus_as_jetstream_does, children_teardown),
        cmocka_unit_test_teardown(filters_as_jetstream_does, children_teardown),
        cmocka_unit_test_teardown(a_reconnect_with_the_cursor_loses_and_repeats_nothing,
                                  children_teardown),
        cmocka_unit_test_teardown(a_slow_replay_holds_at_most_its_window, children_teardown),
        cmocka_unit_test_teardown(a_replay_rides_out_a_nats_restart, children_teardown),
        cmocka_unit_test_teardown(live_subscribers_share_one_consumer, children_teardown),
        cmocka_unit_test_teardown(health_follows_nats, children_teardown),
        cmocka_unit_test_teardown(a_slow_subscriber_is_closed, children_teardown),
        cmocka_unit_test_teardown(admin_routes_edit_the_tracked_set, children_teardown),
        /* in the lighter part of ES_TEST_PART=1/2 and 2/2 (even indexes: part 1) */
        cmocka_unit_test_teardown(a_bad_zstd_dictionary_stops_the_start, children_teardown),
        cmocka_unit_test_teardown(compress_true_sends_zstd_frames_of_the_same_json,
                                  children_teardown),
    };
    size_t n = test_part(tests, sizeof tests / sizeof tests[0]); /* ES_TEST_PART */
    return _cmocka_run_group_tests("test_serve_e2e", tests, n, setup, teardown);
}
