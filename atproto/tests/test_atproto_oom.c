/* Out of memory in the ATProto adapter: every allocation fails in turn
 * (base/tests/failalloc.h) while decoding real firehose frames, parsing and
 * walking a repository CAR, reading a capture, building filters and loading
 * DID documents into a resolver's cache. Each
 * run reports ES_ERR_NOMEM, leaks nothing and does not crash. The fixtures
 * come from ../shared (skipped without them). zstd's own allocations (the
 * capture reader's stream) are not the library's: they never fail here. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include <es/atproto.h>
#include <es/car.h>

#include "../src/atp_sig.h"
#include "../src/identity.h"
#include "base/tests/failalloc.h"
#include "fixtures.h"

/* ---- frames ------------------------------------------------------------------ */

typedef struct frame_case {
    const uint8_t *frame;
    size_t len;
    es_atp_identity *identity; /* verifying, or NULL */
    /* what a decode without failures gives */
    es_atp_kind kind;
    uint64_t seq;
    size_t count;
    char last_id[300];
} frame_case;

static es_status decode_frame(const frame_case *fc, es_atp_batch *b, es_atp_decoder **d,
                              es_arena **a)
{
    es_atp_options o = {.verify_all_blocks = true, .identity = fc->identity};
    es_status s = es_atp_decoder_create(&o, d);
    if (s == ES_OK)
        s = es_arena_create(0, a);
    if (s == ES_OK)
        s = es_atp_decode(*d, fc->frame, fc->len, *a, b);
    return s;
}

static es_status frame_op(void *ctx)
{
    frame_case *fc = ctx;
    es_atp_decoder *d = NULL;
    es_arena *a = NULL;
    es_atp_batch b;
    memset(&b, 0, sizeof b);
    es_status s = decode_frame(fc, &b, &d, &a);
    /* memory ran out: the frame itself is not refused, nor counted as such */
    const es_atp_stats *st = es_atp_decoder_stats(d);
    for (int e = 0; st != NULL && e < ES_ATP_ERR_COUNT; e++)
        if (s == ES_ERR_NOMEM && (b.error != ES_ATP_ERR_NONE || st->errors[e] != 0))
            s = ES_ERR_PROTOCOL;
    if (s == ES_OK && (b.kind != fc->kind || b.seq != fc->seq || b.count != fc->count ||
                       (b.count > 0 && strcmp(b.events[b.count - 1].event_id, fc->last_id) != 0)))
        s = ES_ERR_PROTOCOL;
    es_arena_destroy(a);
    es_atp_decoder_destroy(d);
    return s;
}

/* Every frame of the corpus, each allocation failing in turn; `identity`
 * NULL decodes, else also verifies (signature, inversion). */
static void sweep_corpus(es_atp_identity *identity)
{
    es_atp_capture *c = corpus_frames_open();
    if (c == NULL)
        skip();
    const uint8_t *frame;
    size_t len, swept = 0;
    static uint8_t copy[1 << 20];
    while (es_atp_capture_next(c, &frame, &len) == ES_OK) { /* every frame of the corpus */
        frame_case fc = {.frame = copy, .len = len, .identity = identity};
        assert_true(len <= sizeof copy);
        memcpy(copy, frame, len);
        es_atp_decoder *d = NULL;
        es_arena *a = NULL;
        es_atp_batch b;
        assert_int_equal(decode_frame(&fc, &b, &d, &a), ES_OK);
        fc.kind = b.kind;
        fc.seq = b.seq;
        fc.count = b.count;
        if (b.count > 0)
            snprintf(fc.last_id, sizeof fc.last_id, "%s", b.events[b.count - 1].event_id);
        es_arena_destroy(a);
        es_atp_decoder_destroy(d);
        failalloc_expect_nomem(frame_op, &fc, 1);
        swept++;
    }
    es_atp_capture_close(c);
    print_message("%zu frames swept%s\n", swept, identity ? ", verified" : "");
    assert_true(swept > 0);
}

static void frames_out_of_memory(void **state)
{
    (void)state;
    sweep_corpus(NULL);
}

/* Verification out of memory is not a refusal either: never `signature` or
 * `identity` for want of memory (the documents are seeded before the sweep). */
static void verified_frames_out_of_memory(void **state)
{
    (void)state;
    const char *docs = fixture_path("firehose-corpus/did_docs.json.zst");
    if (docs == NULL)
        skip();
    es_atp_identity_options o;
    es_atp_identity_options_init(&o);
    o.plc_url = "http://127.0.0.1:1"; /* never reached: every document is seeded */
    o.allow_insecure = true;
    es_atp_identity *id = NULL;
    assert_int_equal(es_atp_identity_create(&o, &id), ES_OK);
    assert_int_equal(es_atp_identity_seed_file(id, docs, NULL), ES_OK);
    sweep_corpus(id);
    es_atp_identity_stats st;
    es_atp_identity_stats_get(id, &st);
    assert_int_equal(st.fetches, 0);
    es_atp_identity_destroy(id);
}

/* ---- a repository CAR and its MST ---------------------------------------------------- */

typedef struct repo_case {
    const uint8_t *car;
    size_t len;
    size_t records; /* in the tree */
} repo_case;

static int count_record(const es_atp_record *rec, void *user)
{
    (void)rec;
    (*(size_t *)user)++;
    return 0;
}

static es_status repo_op(void *ctx)
{
    repo_case *rc = ctx;
    es_arena *a = NULL;
    es_car car;
    es_atp_commit_info info;
    size_t records = 0;
    es_status s = es_arena_create(0, &a);
    if (s == ES_OK)
        s = es_car_parse(rc->car, rc->len, NULL, a, &car);
    if (s == ES_OK)
        s = es_atp_walk_repo(&car, a, &info, count_record, &records);
    if (s == ES_OK && (records != rc->records || strncmp(info.did, "did:", 4) != 0))
        s = ES_ERR_PROTOCOL;
    es_arena_destroy(a);
    return s;
}

static void repo_car_out_of_memory(void **state)
{
    (void)state;
    const char *path = fixture_path("firehose-corpus/repo.car");
    if (path == NULL)
        skip();
    repo_case rc = {0};
    uint8_t *car = read_whole_file(path, &rc.len);
    assert_non_null(car);
    rc.car = car;
    es_arena *a = NULL;
    es_car parsed;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    assert_int_equal(es_car_parse(rc.car, rc.len, NULL, a, &parsed), ES_OK);
    assert_int_equal(es_atp_walk_repo(&parsed, a, NULL, count_record, &rc.records), ES_OK);
    es_arena_destroy(a);
    assert_true(rc.records > 0);
    failalloc_expect_nomem(repo_op, &rc, 1);
    free(car);
}

/* ---- a capture file ------------------------------------------------------------------- */

static es_status capture_op(void *ctx)
{
    const char *path = ctx;
    es_atp_capture *c = NULL;
    es_status s = es_atp_capture_open(path, 0, &c);
    const uint8_t *frame;
    size_t len, total = 0;
    for (int i = 0; i < 5 && s == ES_OK; i++) {
        s = es_atp_capture_next(c, &frame, &len);
        total += len;
    }
    es_atp_capture_close(c);
    return s == ES_OK && total == 0 ? ES_ERR_PROTOCOL : s;
}

static void capture_out_of_memory(void **state)
{
    (void)state;
    const char *path = fixture_path("firehose-corpus/frames.bin.zst");
    if (path == NULL)
        skip();
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    failalloc_expect_nomem(capture_op, copy, 1);
}

/* ---- filters ----------------------------------------------------------------------- */

static es_status filter_op(void *ctx)
{
    (void)ctx;
    es_atp_filter *f = NULL;
    es_status s = es_atp_filter_create(&f);
    if (s == ES_OK)
        s = es_atp_filter_add_collections(f, "app.bsky.feed.*,app.bsky.graph.follow");
    for (int i = 0; i < 40 && s == ES_OK; i++) {
        char did[64];
        snprintf(did, sizeof did, "did:plc:abcdefghij%06d, did:web:host%d.example", i, i);
        s = es_atp_filter_add_dids(f, did);
    }
    if (s == ES_OK && (!es_atp_filter_keeps_collection(f, "app.bsky.feed.like", 18) ||
                       es_atp_filter_keeps_collection(f, "app.bsky.actor.profile", 22) ||
                       !es_atp_filter_keeps_did(f, "did:web:host7.example", 21) ||
                       es_atp_filter_keeps_did(f, "did:web:host77.example", 22)))
        s = ES_ERR_PROTOCOL;
    es_atp_filter_destroy(f);
    return s;
}

static void filters_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(filter_op, NULL, 1);
}

/* ---- identity --------------------------------------------------------------------- */

static es_status seed_into(void *ctx, esi_atp_did_doc *doc)
{
    return esi_atp_resolver_seed(ctx, doc);
}

#define OOM_KEY "zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj" /* a K-256 Multikey */

/* A --did-docs file seeded into a resolver, then resolved from its cache,
 * and its signing key parsed: out of memory there is not "no usable key"
 * (jansson's own allocations are not the library's: they never fail here). */
static es_status identity_op(void *ctx)
{
    esi_atp_resolver *r = NULL;
    esi_atp_did_doc *d = NULL;
    es_status s = esi_atp_resolver_create(NULL, &r);
    if (s == ES_OK)
        s = esi_atp_did_docs_load(ctx, seed_into, r, NULL);
    if (s == ES_OK)
        s = esi_atp_resolve(r, "did:plc:bbbb", &d);
    if (s == ES_OK && (strcmp(d->handle, "b.test") != 0 || strcmp(d->signing_key, OOM_KEY) != 0 ||
                       strcmp(d->pds, "https://pds.test") != 0))
        s = ES_ERR_PROTOCOL;
    struct esi_atp_key *key = NULL;
    if (s == ES_OK)
        s = esi_atp_resolve_key(r, "did:plc:bbbb", &key);
    if (s == ES_OK && esi_atp_key_curve(key) != ESI_ATP_K256)
        s = ES_ERR_PROTOCOL;
    esi_atp_key_destroy(key);
    esi_atp_did_doc_destroy(d);
    esi_atp_resolver_destroy(r);
    return s;
}

static void identity_out_of_memory(void **state)
{
    (void)state;
    char path[] = "/tmp/es-oom-did-docs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    const char *dids[] = {"did:plc:aaaa", "did:plc:bbbb", "did:web:c.test"};
    fputs("{", f);
    for (int i = 0; i < 3; i++)
        fprintf(
            f,
            "%s\"%s\":{\"id\":\"%s\",\"alsoKnownAs\":[\"at://%c.test\"],"
            "\"verificationMethod\":[{\"id\":\"#atproto\",\"type\":\"Multikey\","
            "\"publicKeyMultibase\":\"" OOM_KEY "\"}],\"service\":[{\"id\":\"#atproto_pds\","
            "\"type\":\"AtprotoPersonalDataServer\",\"serviceEndpoint\":\"https://pds.test\"}]}",
            i ? "," : "", dids[i], dids[i], 'a' + i);
    fputs("}", f);
    fclose(f);
    failalloc_expect_nomem(identity_op, path, 1);
    unlink(path);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_out_of_memory),   cmocka_unit_test(repo_car_out_of_memory),
        cmocka_unit_test(capture_out_of_memory),  cmocka_unit_test(filters_out_of_memory),
        cmocka_unit_test(identity_out_of_memory), cmocka_unit_test(verified_frames_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
