/* es-atproto-ingest end to end, through a live server (NATS_URL) and, for the
 * outage test, a server of its own ($ES_NATS_SERVER): the real relay capture
 * against Jetstream's output; a relay stand-in that drops connections and
 * slips garbage in; kill -9 of the ingester mid-stream; a server restart
 * mid-stream. Each ends with the store holding every op of the source
 * exactly once (event ids compared one by one).
 *
 * The binaries come from the environment (set by CMake): ES_INGEST_BIN,
 * ES_STANDIN_BIN, ES_GEN_BIN. */
#define _POSIX_C_SOURCE 200809L
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/cbor.h>
#include <es/es.h>
#include <es/json.h>

#include "children.h" /* tools/common/tests: child processes */
#include "forge.h"    /* atproto/tests: forgeries of real frames */
#include "test_part.h"  /* tools/common/tests: ES_TEST_PART */

#define WAIT_STORED_S 90

static const char *ingest_bin, *standin_bin, *gen_bin, *verify_bin;
static char tmp[256];

/* ---- processes (tools/common/tests/children.h) ---------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* children_spawn, which must succeed. */
static pid_t spawn(char *const argv[], const char *log, int *out_pipe)
{
    pid_t pid = children_spawn(argv, log, out_pipe);
    assert_true(pid > 0);
    return pid;
}

/* The exit code, or -1 when it did not end within timeout_s (then killed). */
static int wait_exit(pid_t pid, double timeout_s)
{
    int code = children_exit_code(pid, (long)(timeout_s * 1000));
    if (code == -1) {
        kill(pid, SIGKILL);
        children_exit_code(pid, 10000);
    }
    return code;
}

static int free_port(void)
{
    int port = children_free_port();
    assert_true(port > 0);
    return port;
}

#define STANDIN_ARGS_MAX 8

/* The relay stand-in serving `capture` with the options `args` (NULL-ended);
 * *port gets its port. */
static pid_t start_standin(const char *capture, const char *log, int *port, const char *const *args)
{
    char *argv[4 + STANDIN_ARGS_MAX] = {(char *)standin_bin, "--capture", (char *)capture};
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(i < STANDIN_ARGS_MAX);
        argv[3 + i] = (char *)args[i];
    }
    int out;
    pid_t pid = spawn(argv, log, &out);
    char line[64] = "";
    FILE *f = fdopen(out, "r");
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_int_equal(sscanf(line, "listening on %d", port), 1);
    return pid;
}

static void generate(const char *path, const char *frames, const char *seed, const char *multi)
{
    char *argv[] = {(char *)gen_bin, "--out",      (char *)path,  "--frames",
                    (char *)frames,  "--repos",    "300",         "--seed",
                    (char *)seed,    "--multi-op", (char *)multi, NULL};
    char log[300];
    snprintf(log, sizeof log, "%s/gen.log", tmp);
    assert_int_equal(wait_exit(spawn(argv, log, NULL), 60), 0);
}

/* ---- ids ------------------------------------------------------------------- */

typedef struct ids {
    char **v;
    size_t n, cap;
} ids;

static void ids_add(ids *s, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        assert_non_null(s->v);
    }
    s->v[s->n++] = strdup(id);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ids_free(ids *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Every event id the frames of the capture up to seq `up_to` map to (no
 * filter); returns their highest seq. */
static uint64_t expected_ids_up_to(const char *capture, uint64_t up_to, ids *out)
{
    uint64_t last = 0;
    es_atp_limits lim = {0};
    es_atp_limits_defaults(&lim);
    es_atp_capture *c;
    assert_int_equal(es_atp_capture_open(capture, lim.max_frame_bytes, &c), ES_OK);
    es_atp_options o = {0};
    es_atp_limits_defaults(&o.limits);
    es_atp_decoder *dec;
    es_arena *a;
    assert_int_equal(es_atp_decoder_create(&o, &dec), ES_OK);
    assert_int_equal(es_arena_create(32 << 20, &a), ES_OK);
    const uint8_t *f;
    size_t len;
    es_status cs;
    while ((cs = es_atp_capture_next(c, &f, &len)) == ES_OK) {
        es_arena_reset(a);
        es_atp_batch b;
        if (es_atp_decode(dec, f, len, a, &b) != ES_OK || (b.has_seq && b.seq > up_to))
            continue;
        if (b.has_seq && b.seq > last)
            last = b.seq;
        for (size_t i = 0; i < b.count; i++)
            ids_add(out, b.events[i].event_id);
    }
    es_arena_destroy(a);
    es_atp_decoder_destroy(dec);
    if (cs != ES_ERR_NOT_FOUND)
        fail_msg("reading %s: %s", capture, es_last_error());
    es_atp_capture_close(c);
    return last;
}

/* Every event id the capture maps to (no filter); returns its highest seq. */
static uint64_t expected_ids(const char *capture, ids *out)
{
    return expected_ids_up_to(capture, UINT64_MAX, out);
}

static es_status collect_id(const es_event *ev, void *closure)
{
    ids_add(closure, es_event_event_id(ev));
    return ES_OK;
}

/* The store holds each expected id exactly once, and nothing else. */
static void assert_exactly_once(es_store *st, ids *want)
{
    ids have = {0};
    assert_int_equal(es_evolve(st, NULL, NULL, collect_id, &have, NULL), ES_OK);
    qsort(want->v, want->n, sizeof *want->v, cmp_str);
    qsort(have.v, have.n, sizeof *have.v, cmp_str);
    if (have.n != want->n)
        printf("  stored %zu events, expected %zu\n", have.n, want->n);
    for (size_t i = 1; i < have.n; i++)
        if (strcmp(have.v[i - 1], have.v[i]) == 0)
            fail_msg("stored twice: %s", have.v[i]);
    size_t i = 0, j = 0;
    while (i < want->n && j < have.n) {
        int c = strcmp(want->v[i], have.v[j]);
        if (c < 0)
            fail_msg("lost: %s", want->v[i]);
        if (c > 0)
            fail_msg("unexpected: %s", have.v[j]);
        i++;
        j++;
    }
    if (i < want->n)
        fail_msg("lost: %s (and %zu more)", want->v[i], want->n - i - 1);
    if (j < have.n)
        fail_msg("unexpected: %s", have.v[j]);
    printf("  %zu events, each exactly once\n", have.n);
    ids_free(&have);
}

/* ---- the store ---------------------------------------------------------------- */

static natsConnection *connect_to(const char *url)
{
    natsConnection *nc = NULL;
    for (int i = 0; i < 100 && nc == NULL; i++)
        if (natsConnection_ConnectTo(&nc, url) != NATS_OK) {
            nc = NULL;
            children_sleep_ms(100);
        }
    assert_non_null(nc);
    return nc;
}

static void store_name(char *out, size_t size, const char *what)
{
    snprintf(out, size, "e2e_%s_%d", what, (int)getpid());
}

/* Waits until the store exists and holds `want` events; returns the handle. */
static es_store *wait_stored(natsConnection *nc, const char *name, uint64_t want, double timeout_s)
{
    double give_up = now_s() + timeout_s;
    es_store *st = NULL;
    while (st == NULL && now_s() < give_up)
        if (es_store_open(nc, name, NULL, &st) != ES_OK) {
            st = NULL;
            children_sleep_ms(100);
        }
    assert_non_null(st);
    es_store_info info = {0};
    while (now_s() < give_up) {
        if (es_store_info_get(st, &info) == ES_OK && info.events >= want)
            break;
        children_sleep_ms(50);
    }
    assert_true(info.events >= want);
    return st;
}

static void check_cursor(es_store *st, const char *name, uint64_t want)
{
    es_checkpoints *cps;
    assert_int_equal(es_checkpoints_open(st, &cps), ES_OK);
    es_checkpoint cp;
    assert_int_equal(es_checkpoint_get(cps, name, &cp), ES_OK);
    assert_int_equal(cp.position, want);
    es_checkpoint_clear(&cp);
    es_checkpoints_destroy(cps);
}

/* `did_docs` NULL: --no-verify. The tests of generated captures are about
 * delivery (reconnections, restarts, kill -9, two ingesters), so they skip
 * verification; the real capture and the forged one are verified against
 * their DID documents here, and generated (signed) captures against theirs
 * in test-ingest.sh. */
#define EXTRA_MAX 8

/* With more options `extra` (NULL-ended, may be NULL). */
static pid_t start_with(const char *server, const char *store, const char *source_opt,
                        const char *source, const char *log, bool exit_at_end, const char *name,
                        const char *did_docs, const char *const *extra)
{
    const char *fixed[] = {ingest_bin, "--server",        server, "--store",          store,
                           source_opt, source,            "--name", name,               "--reconnect-max",
                           "300ms",    "--stats-interval", "2s"};
    char *argv[sizeof fixed / sizeof *fixed + 4 + EXTRA_MAX];
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        argv[n++] = (char *)fixed[i];
    if (did_docs != NULL) {
        argv[n++] = "--did-docs";
        argv[n++] = (char *)did_docs;
    } else {
        argv[n++] = "--no-verify";
    }
    if (exit_at_end)
        argv[n++] = "--exit-at-end";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(i < EXTRA_MAX);
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    return spawn(argv, log, NULL);
}

static pid_t start_verifying(const char *server, const char *store, const char *source_opt,
                             const char *source, const char *log, bool exit_at_end,
                             const char *name, const char *did_docs)
{
    return start_with(server, store, source_opt, source, log, exit_at_end, name, did_docs, NULL);
}

static pid_t start_named(const char *server, const char *store, const char *source_opt,
                         const char *source, const char *log, bool exit_at_end, const char *name)
{
    return start_verifying(server, store, source_opt, source, log, exit_at_end, name, NULL);
}

static pid_t start_ingester(const char *server, const char *store, const char *source_opt,
                            const char *source, const char *log, bool exit_at_end)
{
    return start_named(server, store, source_opt, source, log, exit_at_end, "e2e");
}

/* `pid` exits with `want` within timeout_s; its log is shown when not. */
static void expect_exit(pid_t pid, double timeout_s, int want, const char *log)
{
    int code = wait_exit(pid, timeout_s);
    if (code != want)
        children_show_log(log);
    assert_int_equal(code, want);
}

static void stop_ingester(pid_t pid, const char *log)
{
    kill(pid, SIGTERM);
    expect_exit(pid, 60, 0, log);
}

/* Waits (10 s at most) until store `name` holds the events of `capture`, each
 * exactly once; returns the store. *last_seq (may be NULL): the capture's
 * highest seq. */
static es_store *stored_once(natsConnection *nc, const char *name, const char *capture,
                             uint64_t *last_seq)
{
    ids want = {0};
    uint64_t last = expected_ids(capture, &want);
    es_store *st = wait_stored(nc, name, want.n, 10);
    assert_exactly_once(st, &want);
    ids_free(&want);
    if (last_seq != NULL)
        *last_seq = last;
    return st;
}

/* The end of a test: its store is deleted from the server. */
static void store_drop(natsConnection *nc, es_store *st, const char *name)
{
    es_store_destroy(st);
    es_store_delete(nc, name, NULL);
    natsConnection_Destroy(nc);
}

/* A test's generated capture served by a relay stand-in, and the store its
 * ingesters fill; files (under tmp) and store named after `what`. */
typedef struct relayed {
    char capture[300], name[64], url[64];
    int port;
    ids want;          /* every event id of the capture */
    uint64_t last_seq; /* its highest seq: an ingester's cursor at the end */
    pid_t standin;
    natsConnection *nc;
    es_store *st; /* NULL until relayed_wait */
} relayed;

static void relayed_start(relayed *r, const char *what, const char *frames, const char *seed,
                          const char *multi, const char *const *standin_args)
{
    memset(r, 0, sizeof *r);
    char slog[300];
    snprintf(r->capture, sizeof r->capture, "%s/%s.zst", tmp, what);
    snprintf(slog, sizeof slog, "%s/%s-standin.log", tmp, what);
    store_name(r->name, sizeof r->name, what);
    generate(r->capture, frames, seed, multi);
    r->last_seq = expected_ids(r->capture, &r->want);
    r->standin = start_standin(r->capture, slog, &r->port, standin_args);
    snprintf(r->url, sizeof r->url, "ws://127.0.0.1:%d", r->port);
}

/* Waits until the store holds `at` events (connecting to `server` first). */
static void relayed_wait(relayed *r, const char *server, uint64_t at)
{
    if (r->nc == NULL)
        r->nc = connect_to(server);
    es_store_destroy(r->st);
    r->st = wait_stored(r->nc, r->name, at, WAIT_STORED_S);
}

/* The stand-in stops cleanly; the store holds every id of the capture
 * exactly once; each ingester named in `cursors` (NULL-ended, may be NULL)
 * has its cursor at the capture's last seq. */
static void relayed_check(relayed *r, const char *const *cursors)
{
    kill(r->standin, SIGTERM);
    assert_int_equal(wait_exit(r->standin, 10), 0);
    assert_exactly_once(r->st, &r->want);
    for (size_t i = 0; cursors != NULL && cursors[i] != NULL; i++)
        check_cursor(r->st, cursors[i], r->last_seq);
}

static void relayed_drop(relayed *r)
{
    ids_free(&r->want);
    store_drop(r->nc, r->st, r->name);
}

/* Waits until each ingester named in `names` (NULL-ended) has its cursor at
 * `seq`: it took everything. */
static void wait_cursors(es_store *st, const char *const *names, uint64_t seq)
{
    es_checkpoints *cps;
    assert_int_equal(es_checkpoints_open(st, &cps), ES_OK);
    double give_up = now_s() + WAIT_STORED_S;
    for (bool done = false; !done && now_s() < give_up;) {
        done = true;
        for (size_t k = 0; names[k] != NULL; k++) {
            es_checkpoint cp;
            bool there = false;
            if (es_checkpoint_get(cps, names[k], &cp) == ES_OK) {
                there = cp.position == seq;
                es_checkpoint_clear(&cp);
            }
            done = done && there;
        }
        if (!done)
            children_sleep_ms(100);
    }
    es_checkpoints_destroy(cps);
}

static bool log_contains(const char *log, const char *text);

/* ---- the real capture against Jetstream ------------------------------------------ */

typedef struct stored {
    json_t *events; /* array of {did, collection, rkey, operation, cid, record} */
} stored;

static json_t *record_json(const es_event *ev)
{
    const void *data;
    size_t len;
    if (es_event_data(ev, &data, &len) != ES_OK || len == 0)
        return NULL;
    es_arena *a;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_value *v;
    size_t used;
    assert_int_equal(es_cbor_decode(data, len, NULL, a, &v, &used), ES_OK);
    es_buf text = ES_BUF_INIT;
    assert_int_equal(es_json_encode(v, NULL, &text), ES_OK);
    json_t *j = json_loadb((const char *)text.data, text.len, 0, NULL);
    assert_non_null(j);
    es_buf_free(&text);
    es_arena_destroy(a);
    return j;
}

static es_status keep_commit_event(const es_event *ev, void *closure)
{
    stored *s = closure;
    const char *type = es_event_entity_type(ev);
    if (strcmp(type, "repo") == 0)
        return ES_OK;
    char collection[256];
    snprintf(collection, sizeof collection, "%s", type);
    for (char *c = collection; *c; c++)
        *c = *c == '_' ? '.' : *c;
    size_t did_len;
    const char *did = es_event_entity_id(ev, &did_len);
    json_t *e = json_object();
    json_object_set_new(e, "did", json_stringn(did, did_len));
    json_object_set_new(e, "collection", json_string(collection));
    json_object_set_new(e, "operation", json_string(es_event_event_type(ev)));
    json_object_set_new(e, "rkey", json_string(es_event_meta(ev, "rkey")));
    json_object_set_new(e, "rev", json_string(es_event_meta(ev, "rev")));
    const char *cid = es_event_meta(ev, "cid");
    if (cid)
        json_object_set_new(e, "cid", json_string(cid));
    /* the audit metadata: every real commit is signed and carries prevData */
    const char *sig = es_event_meta(ev, "sig");
    assert_true(sig != NULL && strlen(sig) == 86);
    assert_non_null(es_event_meta(ev, "data"));
    assert_non_null(es_event_meta(ev, "prevdata"));
    json_t *rec = record_json(ev);
    if (rec)
        json_object_set_new(e, "record", rec);
    json_array_append_new(s->events, e);
    return ES_OK;
}

/* What the ingester stored re-verifies offline (es-atproto-verify): every
 * commit's audit metadata rebuilds the signed commit, whose CID and
 * signature check against the DID documents. */
static void audit_offline(const char *url, const char *store, const char *docs, const char *log)
{
    if (verify_bin == NULL) {
        printf("  (es-atproto-verify not given: ES_VERIFY_BIN unset)\n");
        return;
    }
    char *argv[] = {(char *)verify_bin, "--server", (char *)url,  "--store", (char *)store,
                    "--did-docs",       (char *)docs, "--quiet", NULL};
    expect_exit(spawn(argv, log, NULL), 60, 0, log);
    if (!log_contains(log, "148 commits checked in 148 repositories"))
        children_show_log(log);
    assert_true(log_contains(log, "148 commits checked in 148 repositories"));
}

static void real_capture_through_the_server(void **state)
{
    (void)state;
    const char *dir = getenv("ES_SHARED_DIR");
    char frames[4096], expected[4096];
    snprintf(frames, sizeof frames, "%s/fixtures/firehose-corpus/frames.bin.zst", dir ? dir : "");
    snprintf(expected, sizeof expected, "%s/fixtures/firehose-corpus/expected_v1.jsonl",
             dir ? dir : "");
    struct stat sb;
    if (dir == NULL || stat(frames, &sb) != 0 || stat(expected, &sb) != 0) {
        printf("SKIP: the real relay capture is absent (ES_SHARED_DIR=%s)\n", dir ? dir : "unset");
        skip();
    }
    const char *url = getenv("NATS_URL");
    char name[64], log[300], docs[4096];
    snprintf(docs, sizeof docs, "%s/fixtures/firehose-corpus/did_docs.json.zst", dir);
    store_name(name, sizeof name, "real");
    snprintf(log, sizeof log, "%s/real.log", tmp);
    expect_exit(start_verifying(url, name, "--from-file", frames, log, true, "e2e", docs), 60, 0,
                log);
    /* verified, every frame: nothing refused, no document fetched */
    if (!log_contains(log, "refused=0 errors=none") || log_contains(log, "frame refused"))
        children_show_log(log);
    assert_true(log_contains(log, "refused=0 errors=none"));
    assert_false(log_contains(log, "frame refused"));

    natsConnection *nc = connect_to(url);
    uint64_t last_seq;
    es_store *st = stored_once(nc, name, frames, &last_seq);

    stored s = {json_array()};
    assert_int_equal(es_evolve(st, NULL, NULL, keep_commit_event, &s, NULL), ES_OK);
    FILE *f = fopen(expected, "r");
    assert_non_null(f);
    char line[1 << 16];
    size_t lines = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        if (strcmp(json_string_value(json_object_get(j, "kind")), "commit") != 0) {
            json_decref(j);
            continue;
        }
        json_t *c = json_object_get(j, "commit");
        json_t *want_fields = json_object();
        json_object_set(want_fields, "did", json_object_get(j, "did"));
        const char *keys[] = {"collection", "operation", "rkey", "rev", "cid"};
        for (size_t k = 0; k < 5; k++)
            if (json_object_get(c, keys[k]))
                json_object_set(want_fields, keys[k], json_object_get(c, keys[k]));
        int found = 0;
        size_t i;
        json_t *e;
        json_array_foreach(s.events, i, e)
        {
            json_t *fields = json_deep_copy(e);
            json_object_del(fields, "record");
            if (json_equal(fields, want_fields)) {
                found++;
                json_t *rec = json_object_get(c, "record");
                if (rec != NULL && !json_equal(rec, json_object_get(e, "record"))) {
                    char *a = json_dumps(json_object_get(e, "record"), JSON_SORT_KEYS);
                    fail_msg("record differs for line %zu: stored %s", lines + 1, a);
                }
            }
            json_decref(fields);
        }
        if (found != 1)
            fail_msg("line %zu of expected_v1.jsonl matches %d stored events", lines + 1, found);
        json_decref(want_fields);
        json_decref(j);
        lines++;
    }
    fclose(f);
    printf("  %zu Jetstream commit lines, each matched by exactly one stored event\n", lines);
    assert_true(lines > 100);
    json_decref(s.events);
    check_cursor(st, "e2e", last_seq);
    audit_offline(url, name, docs, log);
    store_drop(nc, st, name);
}

/* ---- a misbehaving relay ---------------------------------------------------------- */

/* Runs the ingester against a stand-in serving a generated capture until the
 * store holds all of it; `disturb` acts mid-stream (after `at` events). */
typedef void (*disturb_fn)(void *ctx, pid_t *ingester, const char *log);

static void relay_run(const char *what, const char *frames, const char *seed, const char *server,
                      const char *const *standin_args, uint64_t at, disturb_fn disturb, void *ctx)
{
    char log[300];
    snprintf(log, sizeof log, "%s/%s.log", tmp, what);
    relayed r;
    relayed_start(&r, what, frames, seed, "7", standin_args);
    pid_t ing = start_ingester(server, r.name, "--relay", r.url, log, false);
    if (disturb != NULL) {
        relayed_wait(&r, server, at);
        /* the connection does not outlive a disturbed server */
        es_store_destroy(r.st);
        r.st = NULL;
        natsConnection_Destroy(r.nc);
        r.nc = NULL;
        disturb(ctx, &ing, log);
    }
    relayed_wait(&r, server, r.want.n);
    children_sleep_ms(300); /* anything beyond would be a duplicate: give it a chance to show */
    stop_ingester(ing, log);
    relayed_check(&r, (const char *[]){"e2e", NULL});
    relayed_drop(&r);
}

static void relay_drops_connections_and_sends_garbage(void **state)
{
    (void)state;
    const char *args[] = {"--drop-every",   "400", "--garbage-every", "150", "--info-on-resume",
                          "OutdatedCursor", NULL};
    relay_run("drops", "3000", "21", getenv("NATS_URL"), args, 0, NULL, NULL);
    /* the relay's #info is logged */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "grep -q 'warn #info name=OutdatedCursor' %s/drops.log", tmp);
    assert_int_equal(system(cmd), 0);
}

static void ingester_killed_mid_stream(void **state)
{
    (void)state;
    char log[300];
    snprintf(log, sizeof log, "%s/kill.log", tmp);
    relayed r;
    relayed_start(&r, "kill", "10000", "22", "7", (const char *[]){"--rate", "3000", NULL});
    const char *server = getenv("NATS_URL");
    pid_t ing = start_ingester(server, r.name, "--relay", r.url, log, false);
    relayed_wait(&r, server, r.want.n / 3);
    kill(ing, SIGKILL);
    assert_int_equal(wait_exit(ing, 10), 128 + SIGKILL);
    printf("  ingester killed (-9) mid-stream, restarting it\n");
    ing = start_ingester(server, r.name, "--relay", r.url, log, false);
    relayed_wait(&r, server, r.want.n);
    children_sleep_ms(300);
    stop_ingester(ing, log);
    relayed_check(&r, (const char *[]){"e2e", NULL});
    relayed_drop(&r);
}

static void states_match_capture(es_store *st, const char *capture); /* chain state, below */

/* High availability: two ingesters on the same relay and store, each with
 * its own cursor; every op is stored once. */
static void two_ingesters_side_by_side(void **state)
{
    (void)state;
    char log_a[300], log_b[300];
    snprintf(log_a, sizeof log_a, "%s/ha-a.log", tmp);
    snprintf(log_b, sizeof log_b, "%s/ha-b.log", tmp);
    relayed r; /* many multi-op commits: batches collide too */
    relayed_start(&r, "ha", "4000", "25", "100",
                  (const char *[]){"--rate", "4000", "--drop-every", "1500", NULL});
    const char *server = getenv("NATS_URL");
    pid_t a = start_named(server, r.name, "--relay", r.url, log_a, false, "e2e-a");
    pid_t b = start_named(server, r.name, "--relay", r.url, log_b, false, "e2e-b");
    relayed_wait(&r, server, r.want.n);
    /* both must have taken everything before they stop: their cursors say */
    const char *const both[] = {"e2e-a", "e2e-b", NULL};
    wait_cursors(r.st, both, r.last_seq);
    stop_ingester(a, log_a);
    stop_ingester(b, log_b);
    relayed_check(&r, both);
    states_match_capture(r.st, r.capture);
    relayed_drop(&r);
}

/* wss://: the relay's certificate is verified — refused when no trusted CA
 * signed it, accepted with --relay-ca. */
static void wss_verifies_the_relay_certificate(void **state)
{
    (void)state;
    char cert[300], key[300], cmd[1200];
    snprintf(cert, sizeof cert, "%s/relay-cert.pem", tmp);
    snprintf(key, sizeof key, "%s/relay-key.pem", tmp);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=DNS:127.0.0.1,IP:127.0.0.1 "
             ">%s/openssl.log 2>&1",
             key, cert, tmp);
    if (system(cmd) != 0) {
        printf("SKIP: no openssl command to make a test certificate\n");
        skip();
    }
    char log[300];
    snprintf(log, sizeof log, "%s/tls.log", tmp);
    relayed r;
    relayed_start(&r, "tls", "300", "26", "7",
                  (const char *[]){"--tls-cert", cert, "--tls-key", key, NULL});
    snprintf(r.url, sizeof r.url, "wss://127.0.0.1:%d", r.port);
    const char *server = getenv("NATS_URL");

    /* not trusted: connections fail, nothing is stored */
    pid_t ing = start_ingester(server, r.name, "--relay", r.url, log, false);
    r.nc = connect_to(server);
    r.st = wait_stored(r.nc, r.name, 0, 30);
    children_sleep_ms(2000);
    es_store_info info;
    assert_int_equal(es_store_info_get(r.st, &info), ES_OK);
    assert_int_equal(info.events, 0);
    stop_ingester(ing, log);
    snprintf(cmd, sizeof cmd, "grep -q 'relay connection failed' %s", log);
    assert_int_equal(system(cmd), 0);

    /* trusted with --relay-ca */
    ing = start_with(server, r.name, "--relay", r.url, log, false, "e2e", NULL,
                     (const char *[]){"--relay-ca", cert, NULL});
    relayed_wait(&r, server, r.want.n);
    children_sleep_ms(300);
    stop_ingester(ing, log);
    relayed_check(&r, (const char *[]){"e2e", NULL});
    relayed_drop(&r);
}

/* FutureCursor: the relay says the cursor is ahead of it; retrying cannot
 * help, so the ingester stores what it took and exits 5. */
static void future_cursor_ends_the_process(void **state)
{
    (void)state;
    char log[300];
    snprintf(log, sizeof log, "%s/future.log", tmp);
    relayed r;
    relayed_start(&r, "future", "500", "24", "7",
                  (const char *[]){"--error-at-end", "FutureCursor", NULL});
    const char *server = getenv("NATS_URL");
    expect_exit(start_ingester(server, r.name, "--relay", r.url, log, false), 60, 5, log);
    relayed_wait(&r, server, r.want.n);
    relayed_check(&r, (const char *[]){"e2e", NULL});
    relayed_drop(&r);
}

/* ---- a server restart -------------------------------------------------------------- */

typedef struct own_server {
    const char *bin;
    const char *domain; /* a JetStream domain, or NULL */
    const char *extra;  /* more configuration (users, permissions), or NULL */
    char dir[300], log[300], url[64], conf[300];
    int port;
    pid_t pid;
} own_server;

static void server_start(own_server *s)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    char *argv[] = {(char *)s->bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", s->dir, NULL};
    if (s->domain != NULL || s->extra != NULL) { /* they need a configuration file */
        FILE *f = fopen(s->conf, "w");
        assert_non_null(f);
        fprintf(f, "jetstream { store_dir: \"%s\"", s->dir);
        if (s->domain != NULL)
            fprintf(f, ", domain: %s", s->domain);
        fprintf(f, " }\n%s\n", s->extra ? s->extra : "");
        fclose(f);
        argv[5] = "-c";
        argv[6] = s->conf;
        argv[7] = NULL;
    }
    s->pid = spawn(argv, s->log, NULL);
    natsConnection_Destroy(connect_to(s->url)); /* up */
}

/* The test's own server, not started yet: a free port and a store directory
 * named after `what`. Skips the test when ES_NATS_SERVER is not set. */
static void own_server_prepare(own_server *s, const char *what)
{
    *s = (own_server){.bin = getenv("ES_NATS_SERVER")};
    if (s->bin == NULL || *s->bin == '\0') {
        printf("SKIP: ES_NATS_SERVER is not set (tools/test sets it)\n");
        skip();
    }
    s->port = free_port();
    snprintf(s->dir, sizeof s->dir, "%s/js-%s", tmp, what);
    snprintf(s->log, sizeof s->log, "%s/nats-server-%s.log", tmp, what);
    snprintf(s->conf, sizeof s->conf, "%s/nats-server-%s.conf", tmp, what);
    snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
}

static void restart_server(void *ctx, pid_t *ingester, const char *log)
{
    (void)ingester;
    (void)log;
    own_server *s = ctx;
    kill(s->pid, SIGKILL);
    wait_exit(s->pid, 10);
    printf("  nats-server killed mid-stream; restarting it in 1.5 s\n");
    children_sleep_ms(1500);
    server_start(s);
}

static void server_restarts_mid_stream(void **state)
{
    (void)state;
    own_server s;
    own_server_prepare(&s, "outage");
    server_start(&s);
    relay_run("outage", "8000", "23", s.url, (const char *[]){"--rate", "2500", NULL}, 2000,
              restart_server, &s);
    kill(s.pid, SIGTERM);
    wait_exit(s.pid, 20);
}

/* A user the server does not let publish to the store's subjects: the
 * ingester stops at the first refusal, exit 7, instead of retrying until its
 * drain timeout; the cursor is not moved. */
static void a_permission_denial_stops_the_ingester(void **state)
{
    (void)state;
    own_server s;
    own_server_prepare(&s, "denied");
    s.extra = "authorization { users: [\n"
              "  {user: admin, password: admin}\n"
              "  {user: reader, password: reader, permissions: {\n"
              "    publish: {allow: [\"$JS.API.>\"]}, subscribe: {allow: [\"_INBOX.>\"]}}}\n"
              "]}";
    snprintf(s.url, sizeof s.url, "nats://admin:admin@127.0.0.1:%d", s.port);
    server_start(&s);
    char capture[300], log[300], reader[96];
    snprintf(capture, sizeof capture, "%s/denied.zst", tmp);
    snprintf(log, sizeof log, "%s/denied.log", tmp);
    snprintf(reader, sizeof reader, "nats://reader:reader@127.0.0.1:%d", s.port);
    generate(capture, "300", "41", "7");
    char *argv[] = {(char *)ingest_bin, "--server", reader, "--store", "denied", "--from-file",
                    capture, "--exit-at-end", "--no-verify", "--drain-timeout", "30s", NULL};
    double t0 = now_s();
    expect_exit(spawn(argv, log, NULL), 60, 7, log);
    double took = now_s() - t0;
    /* every refused request ends at once (the entity-type index's first
     * write, a KV write, took its 5 s timeout before): no request timeout,
     * let alone the drain timeout */
    printf("  a denied ingester stopped in %.1f s\n", took);
    if (took > 4)
        fail_msg("a denied ingester took %.1f s to stop", took);
    /* the first write refused: the entity-type index's or an append */
    assert_true(log_contains(log, "not permitted: stopping"));
    assert_true(log_contains(log, "Permissions Violation for Publish to"));
    assert_false(log_contains(log, "append failed, retrying"));
    assert_false(log_contains(log, "cursor saved"));
    kill(s.pid, SIGTERM);
    wait_exit(s.pid, 20);
}

/* ---- start-up ----------------------------------------------------------------------- */

static bool log_contains(const char *log, const char *text)
{
    FILE *f = fopen(log, "r");
    char line[4096];
    bool found = false;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, text) != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

/* Started before its server (a host booting, a container ordering): the
 * ingester waits for NATS within --nats-wait, logging each attempt, then
 * stores the whole capture. */
static void nats_down_at_start_then_up(void **state)
{
    (void)state;
    own_server s;
    own_server_prepare(&s, "late");
    char capture[300], log[300], name[64];
    snprintf(capture, sizeof capture, "%s/late.bin.zst", tmp);
    snprintf(log, sizeof log, "%s/late.log", tmp);
    store_name(name, sizeof name, "late");
    generate(capture, "500", "31", "7");
    char *argv[] = {(char *)ingest_bin,
                    "--server",
                    s.url,
                    "--store",
                    name,
                    "--from-file",
                    capture,
                    "--exit-at-end",
                    "--nats-wait",
                    "60s",
                    "--reconnect-max",
                    "500ms",
                    "--no-verify", /* delivery, not verification: see start_verifying */
                    NULL};
    pid_t ing = spawn(argv, log, NULL);
    children_sleep_ms(2000);                                   /* a few attempts fail meanwhile */
    assert_int_equal(waitpid(ing, NULL, WNOHANG), 0); /* still waiting */
    server_start(&s);
    expect_exit(ing, 60, 0, log);
    assert_true(log_contains(log, "NATS unreachable, retrying"));
    assert_true(log_contains(log, "connected to NATS"));

    natsConnection *nc = connect_to(s.url);
    es_store_destroy(stored_once(nc, name, capture, NULL));
    natsConnection_Destroy(nc);
    kill(s.pid, SIGTERM);
    wait_exit(s.pid, 20);
}

/* --js-domain reaches the store: a wrong domain finds no JetStream (exit 4,
 * nothing stored), the server's own domain stores the capture, read back
 * through that domain. */
static void a_jetstream_domain_is_used(void **state)
{
    (void)state;
    own_server s;
    own_server_prepare(&s, "domain");
    s.domain = "hub";
    server_start(&s);
    char capture[300], log[300], name[64];
    snprintf(capture, sizeof capture, "%s/domain.bin.zst", tmp);
    snprintf(log, sizeof log, "%s/domain.log", tmp);
    store_name(name, sizeof name, "domain");
    generate(capture, "300", "37", "5");
    for (int right = 0; right <= 1; right++) {
        char *argv[] = {(char *)ingest_bin, "--server",    s.url,
                        "--store",          name,          "--from-file",
                        capture,            "--exit-at-end", "--js-domain",
                        right ? "hub" : "elsewhere", "--timeout", "1s", "--no-verify", NULL};
        expect_exit(spawn(argv, log, NULL), 60, right ? 0 : 4, log);
    }
    natsConnection *nc = connect_to(s.url);
    es_store_options o;
    es_store_options_init(&o);
    o.js_domain = "hub";
    es_store *st = NULL;
    assert_int_equal(es_store_open(nc, name, &o, &st), ES_OK);
    es_store_destroy(st);
    es_store_destroy(stored_once(nc, name, capture, NULL));
    natsConnection_Destroy(nc);
    kill(s.pid, SIGTERM);
    wait_exit(s.pid, 20);
}

/* A file that is not a capture is refused before a store is created for it:
 * nothing is left behind on the server. */
static void junk_capture_creates_no_store(void **state)
{
    (void)state;
    const char *url = getenv("NATS_URL");
    char junk[300], log[300], name[64];
    snprintf(log, sizeof log, "%s/junk.log", tmp);
    /* a plausible length, then bytes that are no frame header */
    static const struct {
        const char *bytes;
        size_t len;
    } contents[] = {{"\x05\x00\x00\x00hello", 9}, {"not a capture at all\n", 21}};
    natsConnection *nc = connect_to(url);
    for (size_t i = 0; i < sizeof contents / sizeof *contents; i++) {
        snprintf(junk, sizeof junk, "%s/junk%zu.bin", tmp, i);
        FILE *f = fopen(junk, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(contents[i].bytes, 1, contents[i].len, f), contents[i].len);
        fclose(f);
        store_name(name, sizeof name, i == 0 ? "junk0" : "junk1");
        char *argv[] = {(char *)ingest_bin, "--server", (char *)url,     "--store", name,
                        "--from-file",      junk,       "--exit-at-end", NULL};
        expect_exit(spawn(argv, log, NULL), 30, 1, log);
        es_store *st = NULL;
        assert_int_equal(es_store_open(nc, name, NULL, &st), ES_ERR_NOT_FOUND);
    }
    assert_true(log_contains(log, "is not a firehose capture"));
    assert_false(log_contains(log, "store created"));
    natsConnection_Destroy(nc);
}

/* A run that stores nothing (one #info frame) says the cursor is unchanged,
 * not "cursor saved cursor=0"; a run that stores says saved, with its seq. */
static void nothing_stored_leaves_the_cursor_unchanged(void **state)
{
    (void)state;
    const char *url = getenv("NATS_URL");
    char info[300], log[300], name[64];
    snprintf(log, sizeof log, "%s/unchanged.log", tmp);
    snprintf(info, sizeof info, "%s/info.bin", tmp);
    static const char frame[] = "\x22\x00\x00\x00\xa2\x61t\x65#info\x62op\x01"
                                "\xa1\x64name\x6eOutdatedCursor";
    FILE *f = fopen(info, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(frame, 1, sizeof frame - 1, f), sizeof frame - 1);
    fclose(f);
    store_name(name, sizeof name, "unchanged");
    char *argv[] = {(char *)ingest_bin, "--server", (char *)url,     "--store", name,
                    "--from-file",      info,       "--exit-at-end", NULL};
    expect_exit(spawn(argv, log, NULL), 30, 0, log);
    if (!log_contains(log, "info cursor unchanged name=atproto-ingest reason=")) {
        children_show_log(log);
        fail_msg("no 'cursor unchanged' line");
    }
    assert_false(log_contains(log, "cursor saved"));
    natsConnection *nc = connect_to(url);
    es_store *st = NULL;
    assert_int_equal(es_store_open(nc, name, NULL, &st), ES_OK);
    store_drop(nc, st, name); /* and the connection */
}

/* ---- per-repository chain state (chain.c) ----------------------------------------- */

/* Runs the ingester over a capture to its end; it must exit 0. */
static void ingest_file_with(const char *server, const char *store, const char *capture,
                             const char *name, const char *log, const char *const *extra)
{
    expect_exit(start_with(server, store, "--from-file", capture, log, true, name, NULL, extra), 60,
                0, log);
}

/* The real corpus when ../shared has it, else a generated capture. */
static void replay_capture(char *out, size_t size)
{
    const char *dir = getenv("ES_SHARED_DIR");
    struct stat sb;
    snprintf(out, size, "%s/fixtures/firehose-corpus/frames.bin.zst", dir ? dir : "");
    if (dir != NULL && stat(out, &sb) == 0)
        return;
    snprintf(out, size, "%s/window.zst", tmp);
    generate(out, "800", "31", "7");
}

/* The replay: a store whose duplicate window is 1 s gets the same
 * capture again from another ingester (another --name, --from-start) after
 * the window: the chain state, not the window, keeps each op once (before
 * it, every op was stored twice). */
static void a_replay_after_the_duplicate_window_stores_nothing_twice(void **state)
{
    (void)state;
    char capture[4096], log1[300], log2[300], name[64];
    replay_capture(capture, sizeof capture);
    snprintf(log1, sizeof log1, "%s/window-1.log", tmp);
    snprintf(log2, sizeof log2, "%s/window-2.log", tmp);
    store_name(name, sizeof name, "window");
    const char *server = getenv("NATS_URL");
    ingest_file_with(server, name, capture, "first", log1,
                     (const char *[]){"--duplicate-window", "1s", NULL});
    natsConnection *nc = connect_to(server);
    ids want = {0};
    expected_ids(capture, &want);
    es_store *st = wait_stored(nc, name, want.n, 10);
    es_store_info info;
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    assert_int_equal(info.config.duplicate_window_ns, 1000000000LL);
    children_sleep_ms(1500); /* past the window: the store no longer knows the ids */
    /* few states in memory: the others are read again from KV */
    ingest_file_with(server, name, capture, "second", log2,
                     (const char *[]){"--from-start", "--max-repos-cached", "10", NULL});
    assert_exactly_once(st, &want);
    assert_true(log_contains(log2, "appends=0 events=0"));
    assert_true(log_contains(log2, "repos_cached=10 "));
    ids_free(&want);
    store_drop(nc, st, name);
}

/* A capture's frames, decoded enough to pick some out. */
typedef struct cframe {
    uint8_t *bytes;
    size_t len;
    es_atp_kind kind;
    char did[64];
    bool active;
    bool stored; /* the test's expectation: its events end up stored */
} cframe;

#define CFRAMES_MAX 4096

static size_t load_frames(const char *path, cframe *out)
{
    es_atp_capture *c;
    assert_int_equal(es_atp_capture_open(path, 0, &c), ES_OK);
    es_atp_decoder *dec;
    es_arena *a;
    assert_int_equal(es_atp_decoder_create(NULL, &dec), ES_OK);
    assert_int_equal(es_arena_create(32 << 20, &a), ES_OK);
    const uint8_t *f;
    size_t len, n = 0;
    while (es_atp_capture_next(c, &f, &len) == ES_OK) {
        assert_true(n < CFRAMES_MAX);
        es_arena_reset(a);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(dec, f, len, a, &b), ES_OK);
        cframe *cf = &out[n++];
        memset(cf, 0, sizeof *cf);
        cf->bytes = malloc(len);
        memcpy(cf->bytes, f, len);
        cf->len = len;
        cf->kind = b.kind;
        cf->active = b.active;
        cf->stored = true;
        if (b.did)
            snprintf(cf->did, sizeof cf->did, "%.*s", (int)b.did_len, b.did);
    }
    es_atp_decoder_destroy(dec);
    es_arena_destroy(a);
    es_atp_capture_close(c);
    return n;
}

/* Writes the frames not dropped (NULL bytes), then `extra` (may be NULL);
 * adds the ids of the frames expected stored to `want`. */
static void write_frames(const char *path, cframe *f, size_t n, const cframe *extra, ids *want)
{
    es_atp_capture_writer *w;
    assert_int_equal(es_atp_capture_create(path, 0, &w), ES_OK);
    es_atp_decoder *dec;
    es_arena *a;
    assert_int_equal(es_atp_decoder_create(NULL, &dec), ES_OK);
    assert_int_equal(es_arena_create(32 << 20, &a), ES_OK);
    for (size_t i = 0; i < n; i++) {
        if (f[i].bytes == NULL)
            continue;
        assert_int_equal(es_atp_capture_write(w, f[i].bytes, f[i].len), ES_OK);
        es_arena_reset(a);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(dec, f[i].bytes, f[i].len, a, &b), ES_OK);
        for (size_t k = 0; f[i].stored && k < b.count; k++)
            ids_add(want, b.events[k].event_id);
    }
    if (extra != NULL)
        assert_int_equal(es_atp_capture_write(w, extra->bytes, extra->len), ES_OK);
    assert_int_equal(es_atp_capture_finish(w), ES_OK);
    es_atp_decoder_destroy(dec);
    es_arena_destroy(a);
}

static bool is_commit_of(const cframe *f, const char *did)
{
    return f->bytes != NULL && f->kind == ES_ATP_KIND_COMMIT && strcmp(f->did, did) == 0;
}

static size_t nth_commit_of(const cframe *f, size_t n, const char *did, size_t nth)
{
    for (size_t i = 0; i < n; i++)
        if (is_commit_of(&f[i], did) && nth-- == 0)
            return i;
    return n;
}

static void expect_repo(es_store *st, const char *did, const char *status, bool desynced,
                        const char *reason)
{
    es_atp_repos *repos;
    assert_int_equal(es_atp_repos_open(st, &repos), ES_OK);
    es_atp_repo_state rs;
    assert_int_equal(es_atp_repos_get(repos, did, strlen(did), &rs), ES_OK);
    assert_string_equal(rs.status, status);
    assert_int_equal(rs.desynced, desynced);
    if (reason)
        assert_string_equal(rs.reason, reason);
    /* where its last stored frame came from, and where it is in the stream */
    assert_true(rs.seq > 0);
    assert_true(rs.position > 0);
    es_read_options ro;
    es_read_options_init(&ro);
    ro.after_seq = rs.position - 1;
    ro.up_to_seq = rs.position;
    ids one = {0};
    assert_int_equal(es_evolve(st, NULL, &ro, collect_id, &one, NULL), ES_OK);
    assert_int_equal(one.n, 1);
    assert_non_null(strstr(one.v[0], did)); /* the event at `position` is the repository's */
    ids_free(&one);
    es_atp_repos_destroy(repos);
}

/* Crafted from a generated capture: repo X loses a commit (the next one is
 * refused, chain_break, and X's later commits are skipped as desynced);
 * repo Z is deactivated and never comes back (its later commits are
 * skipped, inactive); repo Y's first commit comes again at the end
 * (skipped, old_rev). Nothing else changes: every other event is stored
 * once, and the repository states in KV say what happened. */
static void chain_breaks_old_revs_and_inactive_accounts(void **state)
{
    (void)state;
    char gen[300], crafted[300], log[300], name[64], want_text[64];
    snprintf(gen, sizeof gen, "%s/chain-gen.zst", tmp);
    snprintf(crafted, sizeof crafted, "%s/chain.bin", tmp);
    snprintf(log, sizeof log, "%s/chain.log", tmp);
    store_name(name, sizeof name, "chain");
    generate(gen, "1500", "41", "7");
    static cframe f[CFRAMES_MAX];
    size_t n = load_frames(gen, f);
    /* Z: the first repository deactivated with commits after */
    const char *z = NULL;
    size_t z_at = n;
    for (size_t i = 0; i < n && z == NULL; i++)
        if (f[i].kind == ES_ATP_KIND_ACCOUNT && !f[i].active &&
            nth_commit_of(f + i, n - i, f[i].did, 1) < n - i) {
            z = f[i].did;
            z_at = i;
        }
    assert_non_null(z);
    size_t inactive = 0;
    for (size_t i = z_at + 1; i < n; i++) {
        if (f[i].kind == ES_ATP_KIND_ACCOUNT && strcmp(f[i].did, z) == 0) {
            free(f[i].bytes); /* it never comes back */
            f[i].bytes = NULL;
        }
        if (is_commit_of(&f[i], z)) {
            f[i].stored = false;
            inactive++;
        }
    }
    /* X: another repository with at least three commits; its second goes */
    const char *x = NULL;
    for (size_t i = 0; i < n && x == NULL; i++)
        if (f[i].kind == ES_ATP_KIND_COMMIT && strcmp(f[i].did, z) != 0 &&
            nth_commit_of(f, n, f[i].did, 2) < n)
            x = f[i].did;
    assert_non_null(x);
    size_t gone = nth_commit_of(f, n, x, 1), desynced = 0;
    free(f[gone].bytes);
    f[gone].bytes = NULL;
    for (size_t i = gone + 1; i < n; i++)
        if (is_commit_of(&f[i], x)) {
            f[i].stored = false;
            desynced++;
        }
    desynced--; /* the first after the gap is the break */
    /* Y: a third repository's first commit, again at the end */
    const cframe *y = NULL;
    for (size_t i = 0; i < n && y == NULL; i++)
        if (f[i].kind == ES_ATP_KIND_COMMIT && strcmp(f[i].did, z) != 0 && strcmp(f[i].did, x) != 0)
            y = &f[i];
    assert_non_null(y);
    ids want = {0};
    write_frames(crafted, f, n, y, &want);
    printf("  X %s loses a commit (%zu later skipped), Z %s inactive (%zu skipped), Y %s again\n",
           x, desynced, z, inactive, y->did);

    const char *server = getenv("NATS_URL");
    ingest_file_with(server, name, crafted, "chain", log, NULL);
    natsConnection *nc = connect_to(server);
    es_store *st = wait_stored(nc, name, want.n, 10);
    assert_exactly_once(st, &want);
    assert_true(log_contains(log, "commit refused: chain break"));
    snprintf(want_text, sizeof want_text, "skipped_old_rev=1 ");
    assert_true(log_contains(log, want_text));
    snprintf(want_text, sizeof want_text, "skipped_inactive=%zu ", inactive);
    assert_true(log_contains(log, want_text));
    snprintf(want_text, sizeof want_text, "skipped_desynced=%zu ", desynced);
    assert_true(log_contains(log, want_text));
    assert_true(log_contains(log, "chain_break=1 repos_desynced=1 "));
    expect_repo(st, x, "active", true, "chain_break");
    expect_repo(st, z, "deactivated", false, NULL);
    expect_repo(st, y->did, "active", false, NULL);
    ids_free(&want);
    for (size_t i = 0; i < n; i++)
        free(f[i].bytes);
    store_drop(nc, st, name);
}

/* Stored, then killed before the state is written: the test hook
 * ES_INGEST_TEST_EXIT_AFTER_ACKS makes the ingester _exit(99) right after
 * that many units are acknowledged, before any later state, recovery point
 * or cursor write. Restarted past the 1 s duplicate window, from its stale
 * cursor: the scan from the recovery point folds in what the dead process
 * stored, so nothing is lost and nothing is stored twice. */
static void a_crash_before_the_state_is_written_loses_and_repeats_nothing(void **state)
{
    (void)state;
    char log1[300], log2[300];
    snprintf(log1, sizeof log1, "%s/crash-1.log", tmp);
    snprintf(log2, sizeof log2, "%s/crash-2.log", tmp);
    relayed r;
    relayed_start(&r, "crash", "5000", "43", "7", (const char *[]){"--rate", "1000", NULL});
    const char *server = getenv("NATS_URL");
    /* ~3 s in: states and a recovery point were written, more is stored after */
    setenv("ES_INGEST_TEST_EXIT_AFTER_ACKS", "3000", 1);
    pid_t ing = start_with(server, r.name, "--relay", r.url, log1, false, "e2e", NULL,
                           (const char *[]){"--duplicate-window", "1s", NULL});
    unsetenv("ES_INGEST_TEST_EXIT_AFTER_ACKS");
    expect_exit(ing, WAIT_STORED_S, 99, log1);
    children_sleep_ms(1500); /* past the window */
    ing = start_ingester(server, r.name, "--relay", r.url, log2, false);
    relayed_wait(&r, server, r.want.n);
    children_sleep_ms(1500); /* anything beyond would be a duplicate: give it a chance to show */
    stop_ingester(ing, log2);
    relayed_check(&r, NULL);
    /* the restart scanned from a recovery point the first run wrote */
    assert_true(log_contains(log2, "recovery scan point=e2e.repos after_seq="));
    assert_false(log_contains(log2, "recovery scan point=e2e.repos after_seq=0 "));
    assert_true(log_contains(log2, "skipped_old_rev="));
    relayed_drop(&r);
}

/* The last rev of each repository in a capture (commits and #sync). */
typedef struct revs {
    char did[400][64];
    char rev[400][16];
    size_t n, matched;
} revs;

static void last_revs(const char *capture, revs *out)
{
    static cframe f[CFRAMES_MAX];
    size_t n = load_frames(capture, f);
    es_atp_decoder *dec;
    es_arena *a;
    assert_int_equal(es_atp_decoder_create(NULL, &dec), ES_OK);
    assert_int_equal(es_arena_create(32 << 20, &a), ES_OK);
    for (size_t i = 0; i < n; i++) {
        es_arena_reset(a);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(dec, f[i].bytes, f[i].len, a, &b), ES_OK);
        free(f[i].bytes);
        if (b.rev == NULL || (b.kind != ES_ATP_KIND_COMMIT && b.kind != ES_ATP_KIND_SYNC))
            continue;
        size_t k = 0;
        while (k < out->n && strcmp(out->did[k], f[i].did) != 0)
            k++;
        if (k == out->n) {
            assert_true(out->n < 400);
            snprintf(out->did[out->n++], sizeof out->did[0], "%s", f[i].did);
        }
        snprintf(out->rev[k], sizeof out->rev[0], "%s", b.rev);
    }
    es_atp_decoder_destroy(dec);
    es_arena_destroy(a);
}

static es_status match_rev(const char *did, size_t len, const es_atp_repo_state *st, void *closure)
{
    revs *r = closure;
    for (size_t k = 0; k < r->n; k++)
        if (strlen(r->did[k]) == len && memcmp(r->did[k], did, len) == 0) {
            if (strcmp(r->rev[k], st->rev) != 0)
                fail_msg("%s: state rev %s, the capture's last %s", r->did[k], st->rev, r->rev[k]);
            r->matched++;
        }
    return ES_OK;
}

/* Every repository's state in KV is at the capture's last rev: none went
 * backwards when two writers raced (compare-and-set, merged forward). */
static void states_match_capture(es_store *st, const char *capture)
{
    static revs r;
    memset(&r, 0, sizeof r);
    last_revs(capture, &r);
    es_atp_repos *repos;
    assert_int_equal(es_atp_repos_open(st, &repos), ES_OK);
    size_t skipped = 0;
    assert_int_equal(es_atp_repos_list(repos, match_rev, &r, &skipped), ES_OK);
    es_atp_repos_destroy(repos);
    assert_int_equal(skipped, 0);
    assert_int_equal(r.matched, r.n);
    printf("  %zu repository states at the capture's last rev\n", r.n);
}

/* Two ingesters side by side on one relay, one killed (-9) mid-stream and
 * never restarted: the other stores everything, each op exactly once, and
 * the states both wrote (compare-and-set, merged) agree with the stream. */
static void side_by_side_one_killed(void **state)
{
    (void)state;
    char log_a[300], log_b[300];
    snprintf(log_a, sizeof log_a, "%s/ha9-a.log", tmp);
    snprintf(log_b, sizeof log_b, "%s/ha9-b.log", tmp);
    relayed r;
    relayed_start(&r, "ha9", "4000", "45", "100", (const char *[]){"--rate", "2000", NULL});
    const char *server = getenv("NATS_URL");
    pid_t a = start_named(server, r.name, "--relay", r.url, log_a, false, "e2e-a");
    pid_t b = start_named(server, r.name, "--relay", r.url, log_b, false, "e2e-b");
    relayed_wait(&r, server, r.want.n / 3);
    kill(a, SIGKILL);
    assert_int_equal(wait_exit(a, 10), 128 + SIGKILL);
    relayed_wait(&r, server, r.want.n);
    const char *const survivor[] = {"e2e-b", NULL};
    wait_cursors(r.st, survivor, r.last_seq);
    stop_ingester(b, log_b);
    relayed_check(&r, survivor);
    states_match_capture(r.st, r.capture);
    relayed_drop(&r);
}

static bool real_corpus(char *frames, char *docs, size_t size)
{
    const char *dir = getenv("ES_SHARED_DIR");
    snprintf(frames, size, "%s/fixtures/firehose-corpus/frames.bin.zst", dir ? dir : "");
    snprintf(docs, size, "%s/fixtures/firehose-corpus/did_docs.json.zst", dir ? dir : "");
    struct stat sb;
    if (dir != NULL && stat(frames, &sb) == 0 && stat(docs, &sb) == 0)
        return true;
    printf("SKIP: the real relay capture is absent (ES_SHARED_DIR=%s)\n", dir ? dir : "unset");
    return false;
}

/* The frames of a capture, copied (the caller frees each `bytes`). */
static size_t load_samples(const char *path, sample *out, size_t max)
{
    size_t n = 0;
    es_atp_capture *c;
    assert_int_equal(es_atp_capture_open(path, 0, &c), ES_OK);
    const uint8_t *f;
    size_t len;
    while (n < max && es_atp_capture_next(c, &f, &len) == ES_OK) {
        out[n].bytes = malloc(len);
        assert_non_null(out[n].bytes);
        memcpy(out[n].bytes, f, len);
        out[n++].len = len;
    }
    es_atp_capture_close(c);
    return n;
}

/* A capture of frames forged from the real ones (atproto/tests/forge.h), each
 * hash-consistent: verified against the corpus's DID documents, nothing is
 * stored, every refusal is logged with its DID and seq, and the final report
 * counts each reason. */
static void forged_frames_store_nothing(void **state)
{
    (void)state;
    char frames[4096], docs[4096];
    if (!real_corpus(frames, docs, sizeof frames))
        skip();
    sample real[160];
    size_t n = load_samples(frames, real, 160);
    char capture[300], log[300], name[64], plc[64];
    snprintf(capture, sizeof capture, "%s/forged.bin", tmp);
    es_atp_capture_writer *w;
    assert_int_equal(es_atp_capture_create(capture, 0, &w), ES_OK);
    size_t count = sizeof forgeries / sizeof forgeries[0];
    uint64_t by_reason[ES_ATP_ERR_COUNT] = {0};
    for (size_t i = 0; i < count; i++) {
        sample forged = forgeries[i].make(real, n);
        assert_int_equal(es_atp_capture_write(w, forged.bytes, forged.len), ES_OK);
        by_reason[forgeries[i].refused_as]++;
        free(forged.bytes);
    }
    assert_int_equal(es_atp_capture_finish(w), ES_OK);
    for (size_t i = 0; i < n; i++)
        free(real[i].bytes);
    /* no network: a signature that fails is re-resolved from a closed port */
    setenv("ES_ATPROTO_TEST_INSECURE_IDENTITY", "1", 1);
    snprintf(plc, sizeof plc, "http://127.0.0.1:%d", free_port());
    snprintf(log, sizeof log, "%s/forged.log", tmp);
    store_name(name, sizeof name, "forged");
    const char *url = getenv("NATS_URL");
    char *argv[] = {(char *)ingest_bin, "--server", (char *)url, "--store", name, "--from-file",
                    capture, "--exit-at-end", "--did-docs", docs, "--plc", plc, NULL};
    pid_t ing = spawn(argv, log, NULL);
    unsetenv("ES_ATPROTO_TEST_INSECURE_IDENTITY");
    expect_exit(ing, 60, 0, log);
    char want[64];
    snprintf(want, sizeof want, "refused=%zu ", count);
    if (!log_contains(log, want))
        children_show_log(log);
    assert_true(log_contains(log, want));
    for (int k = 1; k < ES_ATP_ERR_COUNT; k++) {
        if (by_reason[k] == 0)
            continue;
        snprintf(want, sizeof want, "%s:%llu", es_atp_error_name((es_atp_error)k),
                 (unsigned long long)by_reason[k]);
        if (!log_contains(log, want))
            fail_msg("the final report does not count %s", want);
    }
    assert_true(log_contains(log, "warn frame refused seq="));
    assert_true(log_contains(log, " did=did:plc:"));
    /* each forged repository is desynchronized: a hole in its chain */
    assert_true(log_contains(log, "warn repository desynchronized did=did:plc:"));
    assert_true(log_contains(log, "reason=signature"));
    natsConnection *nc = connect_to(url);
    es_store *st = wait_stored(nc, name, 0, 10);
    es_store_info info = {0};
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    assert_int_equal(info.events, 0);
    printf("  %zu forged frames, each refused; nothing stored\n", count);
    store_drop(nc, st, name);
}

/* ---- decoding threads (--verify-threads) ------------------------------------------ */

/* Every stored event as "entity type, entity id, event type, event id" (the
 * subject without the store's name, and the id), sorted. */
static es_status collect_subject_id(const es_event *ev, void *closure)
{
    char key[4096];
    snprintf(key, sizeof key, "%s %s %s %s", es_event_entity_type(ev),
             es_event_entity_id(ev, NULL), es_event_event_type(ev), es_event_event_id(ev));
    ids_add(closure, key);
    return ES_OK;
}

static void stored_keys(es_store *st, ids *out)
{
    assert_int_equal(es_evolve(st, NULL, NULL, collect_subject_id, out, NULL), ES_OK);
    qsort(out->v, out->n, sizeof *out->v, cmp_str);
}

/* Two stores hold the same events: same subjects, same event ids. */
static void assert_same_events(es_store *a, es_store *b)
{
    ids ka = {0}, kb = {0};
    stored_keys(a, &ka);
    stored_keys(b, &kb);
    assert_int_equal(ka.n, kb.n);
    for (size_t i = 0; i < ka.n; i++)
        if (strcmp(ka.v[i], kb.v[i]) != 0)
            fail_msg("the stores differ: %s / %s", ka.v[i], kb.v[i]);
    ids_free(&ka);
    ids_free(&kb);
}

/* The value of `key` on the log's "done" line ("refused=3" -> "3"). */
static void done_value(const char *log, const char *key, char *out, size_t size)
{
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[8192], pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    out[0] = '\0';
    while (fgets(line, sizeof line, f))
        if (strstr(line, " info done ") != NULL) {
            const char *p = strstr(line, pat);
            if (p == NULL)
                continue;
            p += strlen(pat);
            size_t n = strcspn(p, " \n");
            snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
        }
    fclose(f);
    if (out[0] == '\0')
        fail_msg("no %s= on the done line of %s", key, log);
}

/* The done lines of two runs agree on what was refused, stored and skipped. */
static void assert_same_report(const char *log_a, const char *log_b)
{
    const char *keys[] = {"frames",          "commits",          "refused",
                          "errors",          "events",           "skipped_by_cursor",
                          "skipped_old_rev", "skipped_inactive", "skipped_desynced",
                          "chain_break",     "repos_desynced",   "cursor"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char a[512], b[512];
        done_value(log_a, keys[i], a, sizeof a);
        done_value(log_b, keys[i], b, sizeof b);
        if (strcmp(a, b) != 0)
            fail_msg("%s: %s with no decoding thread, %s with several", keys[i], a, b);
    }
}

/* The repository states of two stores agree for `did`. */
static void assert_same_repo(es_store *a, es_store *b, const char *did)
{
    es_atp_repos *ra, *rb;
    assert_int_equal(es_atp_repos_open(a, &ra), ES_OK);
    assert_int_equal(es_atp_repos_open(b, &rb), ES_OK);
    es_atp_repo_state sa, sb;
    es_status s1 = es_atp_repos_get(ra, did, strlen(did), &sa);
    es_status s2 = es_atp_repos_get(rb, did, strlen(did), &sb);
    assert_int_equal(s1, s2);
    if (s1 == ES_OK) {
        assert_string_equal(sa.rev, sb.rev);
        assert_int_equal(sa.data_len, sb.data_len);
        assert_memory_equal(sa.data, sb.data, sa.data_len);
        assert_string_equal(sa.status, sb.status);
        assert_int_equal(sa.desynced, sb.desynced);
        assert_string_equal(sa.reason, sb.reason);
        assert_int_equal(sa.desync_seq, sb.desync_seq);
        assert_int_equal(sa.seq, sb.seq);
    }
    es_atp_repos_destroy(ra);
    es_atp_repos_destroy(rb);
}

/* The real capture, verified, through two decoding threads: exactly the 152
 * events stored with none (the same subjects and ids), the cursor at the
 * last seq in both. */
static void real_capture_on_decoding_threads(void **state)
{
    (void)state;
    char frames[4096], docs[4096];
    if (!real_corpus(frames, docs, sizeof frames))
        skip();
    const char *url = getenv("NATS_URL");
    const char *threads[2] = {"0", "2"};
    char names[2][64], logs[2][300];
    natsConnection *nc = connect_to(url);
    es_store *st[2];
    for (int i = 0; i < 2; i++) {
        char what[32];
        snprintf(what, sizeof what, "threads%s", threads[i]);
        store_name(names[i], sizeof names[i], what);
        snprintf(logs[i], sizeof logs[i], "%s/%s.log", tmp, what);
        const char *extra[] = {"--verify-threads", threads[i], NULL};
        expect_exit(start_with(url, names[i], "--from-file", frames, logs[i], true, "e2e", docs,
                               extra),
                    60, 0, logs[i]);
        assert_true(log_contains(logs[i], "refused=0 errors=none"));
        uint64_t last_seq;
        st[i] = stored_once(nc, names[i], frames, &last_seq);
        es_store_info info = {0};
        assert_int_equal(es_store_info_get(st[i], &info), ES_OK);
        assert_int_equal(info.events, 152);
        check_cursor(st[i], "e2e", last_seq);
    }
    assert_same_events(st[0], st[1]);
    assert_same_report(logs[0], logs[1]);
    printf("  152 events, the same with 0 and 2 decoding threads\n");
    es_store_destroy(st[1]);
    es_store_delete(nc, names[1], NULL);
    store_drop(nc, st[0], names[0]);
}

/* The real capture with every forgery of forge.h put just before the real
 * frame it was made from (same seq): refused frames among valid ones, whose
 * refusals desynchronize repositories whose later frames then follow. With
 * three decoding threads the run must be the one a single thread makes: the
 * same refusals by reason, chain counters, stored events, repository states
 * and cursor. */
static void refused_and_valid_frames_in_order(void **state)
{
    (void)state;
    char frames[4096], docs[4096];
    if (!real_corpus(frames, docs, sizeof frames))
        skip();
    static sample real[160];
    size_t n = load_samples(frames, real, 160);
    /* each frame's seq and DID, read without verification */
    es_atp_decoder *dec;
    es_arena *a;
    assert_int_equal(es_atp_decoder_create(NULL, &dec), ES_OK);
    assert_int_equal(es_arena_create(32 << 20, &a), ES_OK);
    static uint64_t real_seq[160];
    static char dids[160][64];
    for (size_t i = 0; i < n; i++) {
        es_arena_reset(a);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(dec, real[i].bytes, real[i].len, a, &b), ES_OK);
        real_seq[i] = b.seq;
        snprintf(dids[i], sizeof dids[i], "%.*s", (int)b.did_len, b.did ? b.did : "");
    }
    size_t count = sizeof forgeries / sizeof forgeries[0];
    sample forged[sizeof forgeries / sizeof forgeries[0]];
    uint64_t forged_seq[sizeof forgeries / sizeof forgeries[0]];
    for (size_t k = 0; k < count; k++) {
        forged[k] = forgeries[k].make(real, n);
        es_arena_reset(a);
        es_atp_batch b;
        es_atp_decode(dec, forged[k].bytes, forged[k].len, a, &b); /* refused or not: its seq */
        assert_true(b.has_seq);
        forged_seq[k] = b.seq;
    }
    es_arena_destroy(a);
    es_atp_decoder_destroy(dec);
    char capture[300];
    snprintf(capture, sizeof capture, "%s/mixed.bin", tmp);
    es_atp_capture_writer *w;
    assert_int_equal(es_atp_capture_create(capture, 0, &w), ES_OK);
    size_t placed = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < count; k++)
            if (forged_seq[k] == real_seq[i]) {
                assert_int_equal(es_atp_capture_write(w, forged[k].bytes, forged[k].len), ES_OK);
                placed++;
            }
        assert_int_equal(es_atp_capture_write(w, real[i].bytes, real[i].len), ES_OK);
    }
    assert_int_equal(es_atp_capture_finish(w), ES_OK);
    assert_int_equal(placed, count);
    for (size_t k = 0; k < count; k++)
        free(forged[k].bytes);
    for (size_t i = 0; i < n; i++)
        free(real[i].bytes);

    const char *url = getenv("NATS_URL");
    char plc[64];
    snprintf(plc, sizeof plc, "http://127.0.0.1:%d", free_port()); /* re-resolution fails */
    const char *threads[2] = {"0", "3"};
    char names[2][64], logs[2][300];
    natsConnection *nc = connect_to(url);
    es_store *st[2];
    setenv("ES_ATPROTO_TEST_INSECURE_IDENTITY", "1", 1);
    for (int i = 0; i < 2; i++) {
        char what[32];
        snprintf(what, sizeof what, "mixed%s", threads[i]);
        store_name(names[i], sizeof names[i], what);
        snprintf(logs[i], sizeof logs[i], "%s/%s.log", tmp, what);
        const char *extra[] = {"--verify-threads", threads[i], "--plc", plc, NULL};
        expect_exit(start_with(url, names[i], "--from-file", capture, logs[i], true, "e2e", docs,
                               extra),
                    60, 0, logs[i]);
        st[i] = wait_stored(nc, names[i], 1, 10);
    }
    unsetenv("ES_ATPROTO_TEST_INSECURE_IDENTITY");
    char want[64], refused[64];
    snprintf(want, sizeof want, "%zu", count);
    done_value(logs[0], "refused", refused, sizeof refused);
    assert_string_equal(refused, want); /* every forgery refused, nothing else */
    done_value(logs[0], "repos_desynced", refused, sizeof refused);
    assert_string_not_equal(refused, "0");
    assert_same_report(logs[0], logs[1]);
    /* everything settled: the stores are complete before they are compared */
    char events[64];
    done_value(logs[0], "events", events, sizeof events);
    for (int i = 0; i < 2; i++)
        es_store_destroy(wait_stored(nc, names[i], strtoull(events, NULL, 10), 10));
    assert_same_events(st[0], st[1]);
    for (size_t i = 0; i < n; i++)
        if (dids[i][0])
            assert_same_repo(st[0], st[1], dids[i]);
    check_cursor(st[0], "e2e", real_seq[n - 1]);
    check_cursor(st[1], "e2e", real_seq[n - 1]);
    printf("  %zu forged frames among %zu real ones: the same run with 0 and 3 threads\n", count,
           n);
    es_store_destroy(st[1]);
    es_store_delete(nc, names[1], NULL);
    store_drop(nc, st[0], names[0]);
}

/* SIGTERM in the middle of a verified file on two decoding threads: the
 * frames in the ring are finished and offered (or dropped before the
 * cursor), so the saved cursor covers exactly what is stored — every event
 * of the frames up to it, nothing after; a restart stores the rest, each
 * event once. */
static void sigterm_drains_the_decoding_threads(void **state)
{
    (void)state;
    char capture[300], docs[300], log[300], name[64];
    snprintf(capture, sizeof capture, "%s/drain.zst", tmp);
    snprintf(docs, sizeof docs, "%s/drain-docs.json", tmp);
    snprintf(log, sizeof log, "%s/drain.log", tmp);
    char *gen[] = {(char *)gen_bin, "--out", capture, "--frames", "20000", "--repos", "2000",
                   "--seed", "47", "--multi-op", "10", "--did-docs-out", docs, NULL};
    assert_int_equal(wait_exit(spawn(gen, log, NULL), 60), 0);
    store_name(name, sizeof name, "drain");
    const char *url = getenv("NATS_URL");
    const char *extra[] = {"--verify-threads", "2", "--offline", NULL};
    pid_t ing = start_with(url, name, "--from-file", capture, log, true, "e2e", docs, extra);
    natsConnection *nc = connect_to(url);
    es_store_destroy(wait_stored(nc, name, 1000, 60));
    stop_ingester(ing, log);
    es_store *st = wait_stored(nc, name, 0, 10);
    es_checkpoints *cps;
    assert_int_equal(es_checkpoints_open(st, &cps), ES_OK);
    es_checkpoint cp;
    assert_int_equal(es_checkpoint_get(cps, "e2e", &cp), ES_OK);
    uint64_t cursor = cp.position;
    es_checkpoint_clear(&cp);
    es_checkpoints_destroy(cps);
    ids upto = {0};
    uint64_t last = expected_ids_up_to(capture, cursor, &upto);
    assert_int_equal(last, cursor);
    if (upto.n >= 20000)
        printf("  (the run ended before the signal: nothing was in flight)\n");
    printf("  stopped at cursor %llu: ", (unsigned long long)cursor);
    assert_exactly_once(st, &upto);
    ids_free(&upto);
    es_store_destroy(st);
    /* the rest, by a restart from the cursor */
    ing = start_with(url, name, "--from-file", capture, log, true, "e2e", docs, extra);
    expect_exit(ing, 120, 0, log);
    es_store *all = stored_once(nc, name, capture, NULL);
    assert_true(log_contains(log, "resuming name=e2e"));
    store_drop(nc, all, name);
}

static int setup(void **state)
{
    (void)state;
    ingest_bin = getenv("ES_INGEST_BIN");
    standin_bin = getenv("ES_STANDIN_BIN");
    gen_bin = getenv("ES_GEN_BIN");
    verify_bin = getenv("ES_VERIFY_BIN"); /* es-atproto-verify: optional */
    if (!ingest_bin || !standin_bin || !gen_bin || !getenv("NATS_URL")) {
        printf("needs ES_INGEST_BIN, ES_STANDIN_BIN, ES_GEN_BIN and NATS_URL\n");
        return -1;
    }
    snprintf(tmp, sizeof tmp, "/tmp/es-ingest-e2e-XXXXXX");
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
    if (getenv("ES_E2E_KEEP") != NULL) {
        printf("kept %s\n", tmp);
        return 0;
    }
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(real_capture_through_the_server, children_teardown),
        cmocka_unit_test_teardown(forged_frames_store_nothing, children_teardown),
        cmocka_unit_test_teardown(relay_drops_connections_and_sends_garbage, children_teardown),
        cmocka_unit_test_teardown(ingester_killed_mid_stream, children_teardown),
        cmocka_unit_test_teardown(two_ingesters_side_by_side, children_teardown),
        cmocka_unit_test_teardown(future_cursor_ends_the_process, children_teardown),
        cmocka_unit_test_teardown(wss_verifies_the_relay_certificate, children_teardown),
        cmocka_unit_test_teardown(server_restarts_mid_stream, children_teardown),
        cmocka_unit_test_teardown(nats_down_at_start_then_up, children_teardown),
        cmocka_unit_test_teardown(junk_capture_creates_no_store, children_teardown),
        cmocka_unit_test_teardown(a_jetstream_domain_is_used, children_teardown),
        cmocka_unit_test_teardown(a_replay_after_the_duplicate_window_stores_nothing_twice,
                                  children_teardown),
        cmocka_unit_test_teardown(chain_breaks_old_revs_and_inactive_accounts, children_teardown),
        cmocka_unit_test_teardown(a_crash_before_the_state_is_written_loses_and_repeats_nothing,
                                  children_teardown),
        cmocka_unit_test_teardown(side_by_side_one_killed, children_teardown),
        cmocka_unit_test_teardown(real_capture_on_decoding_threads, children_teardown),
        cmocka_unit_test_teardown(refused_and_valid_frames_in_order, children_teardown),
        cmocka_unit_test_teardown(sigterm_drains_the_decoding_threads, children_teardown),
        cmocka_unit_test_teardown(nothing_stored_leaves_the_cursor_unchanged, children_teardown),
        cmocka_unit_test_teardown(a_permission_denial_stops_the_ingester, children_teardown),
    };
    /* ES_E2E_ONLY=pattern (cmocka's wildcards) runs the matching tests only. */
    if (getenv("ES_E2E_ONLY") != NULL)
        cmocka_set_test_filter(getenv("ES_E2E_ONLY"));
    size_t n = test_part(tests, sizeof tests / sizeof tests[0]); /* ES_TEST_PART */
    return _cmocka_run_group_tests("test_ingest_e2e", tests, n, setup, teardown);
}
