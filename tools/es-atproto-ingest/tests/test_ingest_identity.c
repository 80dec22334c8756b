/* End-to-end: key rotation as es-atproto-ingest meets it on a real server.
 * es-atproto-gen writes a signed capture in which some accounts get a new
 * key (an #identity, then commits under the new key), the DID documents
 * from before (--did-docs-out) and after (--rotated-docs-out). The ingester
 * starts with the documents from before and a PLC directory stand-in on
 * loopback:
 *
 *  - serving the documents from after, every frame is stored: the #identity
 *    drops the cached document, the next commit fetches the new one;
 *  - serving the documents from before (a directory that missed the
 *    rotation), the commits under the new keys are refused `signature` and
 *    nothing of theirs is stored — which is what makes the first case a
 *    proof that the keys really changed.
 *
 * Binaries from the environment (ES_INGEST_BIN, ES_GEN_BIN), the server at
 * NATS_URL; skipped without them. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sys/stat.h>

#include <es/atproto.h>
#include <es/es.h>

#include "http_standin.h"

static const char *ingest_bin, *gen_bin, *server;
static char tmp[64];

static void path_in_tmp(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmp, name);
}

/* Every document of a `{did: document}` file served as GET /<did>. */
static size_t serve_documents(standin *plc, const char *file)
{
    json_error_t err;
    json_t *docs = json_load_file(file, 0, &err);
    if (docs == NULL)
        fail_msg("%s: %s", file, err.text);
    const char *did;
    json_t *doc;
    size_t n = 0;
    json_object_foreach(docs, did, doc)
    {
        char route[512], *body = json_dumps(doc, JSON_COMPACT);
        assert_non_null(body);
        snprintf(route, sizeof route, "/%s", did);
        standin_route_set(plc, route, 200, body, 0);
        free(body);
        n++;
    }
    json_decref(docs);
    return n;
}

/* The events the capture maps to, counted by the decoder without verifying. */
static uint64_t events_of(const char *capture)
{
    es_atp_decoder *dec = NULL;
    es_arena *arena = NULL;
    es_atp_capture *cap = NULL;
    assert_int_equal(es_atp_decoder_create(NULL, &dec), ES_OK);
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    assert_int_equal(es_atp_capture_open(capture, 0, &cap), ES_OK);
    const uint8_t *frame;
    size_t len;
    uint64_t events = 0;
    while (es_atp_capture_next(cap, &frame, &len) == ES_OK) {
        es_arena_reset(arena);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(dec, frame, len, arena, &b), ES_OK);
        events += b.count;
    }
    es_atp_capture_close(cap);
    es_arena_destroy(arena);
    es_atp_decoder_destroy(dec);
    return events;
}

/* `capture` without its #identity frames, written plain ([u32 LE
 * length][frame] repeated) to `out`: each #identity drops its DID's
 * document (memory and KV), so a run that must resolve nothing needs a
 * capture without them. */
static void without_identity_frames(const char *capture, const char *out)
{
    es_atp_decoder *dec = NULL;
    es_arena *arena = NULL;
    es_atp_capture *cap = NULL;
    assert_int_equal(es_atp_decoder_create(NULL, &dec), ES_OK);
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    assert_int_equal(es_atp_capture_open(capture, 0, &cap), ES_OK);
    FILE *f = fopen(out, "wb");
    assert_non_null(f);
    const uint8_t *frame;
    size_t len;
    while (es_atp_capture_next(cap, &frame, &len) == ES_OK) {
        es_arena_reset(arena);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(dec, frame, len, arena, &b), ES_OK);
        if (b.kind == ES_ATP_KIND_IDENTITY)
            continue;
        uint8_t n[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                        (uint8_t)(len >> 24)};
        assert_int_equal(fwrite(n, 1, 4, f), 4);
        assert_int_equal(fwrite(frame, 1, len, f), len);
    }
    assert_int_equal(fclose(f), 0);
    es_atp_capture_close(cap);
    es_arena_destroy(arena);
    es_atp_decoder_destroy(dec);
}

static uint64_t stored_events(const char *store)
{
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = server;
    natsConnection *nc = NULL;
    assert_int_equal(es_connect(&co, &nc), ES_OK);
    es_store *st = NULL;
    assert_int_equal(es_store_open(nc, store, NULL, &st), ES_OK);
    es_store_info info;
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    es_store_destroy(st);
    es_store_delete(nc, store, NULL);
    es_connection_close(nc);
    return info.events;
}

/* Runs the ingester on `capture` into `store`, verifying with the documents
 * of `docs` and the PLC stand-in on `port`; its log in `log`. */
static int ingest(const char *capture, const char *docs, int port, const char *store,
                  const char *log)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "ES_ATPROTO_TEST_INSECURE_IDENTITY=1 '%s' --server '%s' --store '%s' --name rot "
             "--from-file '%s' --did-docs '%s' --plc http://127.0.0.1:%d --exit-at-end "
             "--stats-interval 0 >'%s' 2>&1",
             ingest_bin, server, store, capture, docs, port, log);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Runs the ingester as `name` on `capture` into `store` with no seeded
 * documents: every DID is resolved through the PLC stand-in on `port` (or
 * the store's KV bucket of DID documents). */
static int ingest_unseeded(const char *capture, int port, const char *store, const char *name,
                           const char *log)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "ES_ATPROTO_TEST_INSECURE_IDENTITY=1 '%s' --server '%s' --store '%s' --name '%s' "
             "--from-file '%s' --plc http://127.0.0.1:%d --exit-at-end --stats-interval 0 "
             ">'%s' 2>&1",
             ingest_bin, server, store, name, capture, port, log);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool log_has(const char *log, const char *text)
{
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static void rotation(void **state)
{
    (void)state;
    if (ingest_bin == NULL || gen_bin == NULL || server == NULL)
        skip();
    char capture[128], before[128], after[128], log[128], cmd[1024];
    path_in_tmp(capture, sizeof capture, "rot.zst");
    path_in_tmp(before, sizeof before, "before.json");
    path_in_tmp(after, sizeof after, "after.json");
    path_in_tmp(log, sizeof log, "ingest.log");
    snprintf(cmd, sizeof cmd,
             "'%s' --out '%s' --frames 1500 --repos 20 --seed 11 --rotate-keys 20 "
             "--did-docs-out '%s' --rotated-docs-out '%s' >/dev/null",
             gen_bin, capture, before, after);
    assert_int_equal(system(cmd), 0);
    uint64_t want = events_of(capture);

    /* A directory that knows the new keys: everything is stored. */
    standin plc;
    assert_int_equal(standin_start(&plc), 0);
    assert_int_equal(serve_documents(&plc, after), 20);
    char store[64];
    snprintf(store, sizeof store, "rot_ok_%ld", (long)getpid());
    int rc = ingest(capture, before, plc.port, store, log);
    if (rc != 0 || !log_has(log, "refused=0 errors=none"))
        fail_msg("ingest exited %d; see %s", rc, log);
    unsigned fetched = standin_requests(&plc);
    assert_true(fetched > 0); /* the rotated accounts were looked up again */
    assert_int_equal(stored_events(store), want);
    standin_stop(&plc);

    /* A directory that missed the rotation: the new keys' commits are refused. */
    standin stale;
    assert_int_equal(standin_start(&stale), 0);
    serve_documents(&stale, before);
    snprintf(store, sizeof store, "rot_stale_%ld", (long)getpid());
    rc = ingest(capture, before, stale.port, store, log);
    assert_int_equal(rc, 0);
    assert_true(log_has(log, "kind=signature"));
    uint64_t stored = stored_events(store);
    assert_true(stored < want);
    standin_stop(&stale);
    printf("  %llu events verified across key rotations (%u documents fetched); %llu stored "
           "when the directory missed them\n",
           (unsigned long long)want, fetched, (unsigned long long)stored);
}

/* The DID documents an ingester fetched are kept in the store's KV bucket:
 * the same capture ingested again by another ingester on the store (a
 * restart; another --name, so it reads every frame and verifies every
 * commit again) asks the PLC directory nothing. */
static void documents_kept_across_runs(void **state)
{
    (void)state;
    if (ingest_bin == NULL || gen_bin == NULL || server == NULL)
        skip();
    char generated[128], capture[128], docs[128], log[128], cmd[1024];
    path_in_tmp(generated, sizeof generated, "kv.zst");
    path_in_tmp(capture, sizeof capture, "kv.bin");
    path_in_tmp(docs, sizeof docs, "kv-docs.json");
    path_in_tmp(log, sizeof log, "kv.log");
    snprintf(cmd, sizeof cmd,
             "'%s' --out '%s' --frames 600 --repos 15 --seed 12 --did-docs-out '%s' >/dev/null",
             gen_bin, generated, docs);
    assert_int_equal(system(cmd), 0);
    without_identity_frames(generated, capture);
    uint64_t want = events_of(capture);
    standin plc;
    assert_int_equal(standin_start(&plc), 0);
    assert_int_equal(serve_documents(&plc, docs), 15);
    char store[64];
    snprintf(store, sizeof store, "idkv_%ld", (long)getpid());
    int rc = ingest_unseeded(capture, plc.port, store, "first", log);
    if (rc != 0 || !log_has(log, "refused=0 errors=none"))
        fail_msg("first ingest exited %d; see %s", rc, log);
    unsigned first = standin_requests(&plc);
    assert_int_equal(first, 15); /* one request per account */
    rc = ingest_unseeded(capture, plc.port, store, "second", log);
    if (rc != 0 || !log_has(log, "refused=0 errors=none"))
        fail_msg("second ingest exited %d; see %s", rc, log);
    /* none, and yet every commit verified (refused=0): the keys came from KV */
    assert_int_equal(standin_requests(&plc), first);
    assert_int_equal(stored_events(store), want);
    standin_stop(&plc);
    printf("  second run: 0 requests to the directory, every commit verified\n");
}

int main(void)
{
    ingest_bin = getenv("ES_INGEST_BIN");
    gen_bin = getenv("ES_GEN_BIN");
    server = getenv("NATS_URL");
    snprintf(tmp, sizeof tmp, "/tmp/es-ingest-rot-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(rotation),
                                       cmocka_unit_test(documents_kept_across_runs)};
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return failed;
}
