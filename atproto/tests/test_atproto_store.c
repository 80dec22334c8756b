/* The hand-off to the core engine, against a live server (NATS_URL; skipped
 * without one): every batch the decoder maps is accepted as is by
 * es_append_batch, appending it again is a no-op (the event ids make the
 * ingest exactly-once), and what is read back re-verifies against its CID. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <es/es.h>
#include <es/atproto.h>
#include <es/cid.h>

#include "atproto_gen.h"
#include "fixtures.h"
#include "live.h"

typedef live_store ctx;

typedef struct frames {
    es_buf bytes;
    size_t ends[4096];
    size_t count;
} frames;

static frames all_frames; /* every frame appended, kept for the replay */
static size_t appended;   /* events the first pass stored */

static int setup(void **state)
{
    static ctx c;
    int made = live_store_create(&c, "atproto_t");
    *state = made == 1 ? &c : NULL;
    return made < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    es_buf_free(&all_frames.bytes);
    if (c != NULL)
        live_store_destroy(c);
    return 0;
}

static void add_frame(frames *f, const uint8_t *p, size_t len)
{
    assert_true(f->count < 4096);
    assert_int_equal(es_buf_append(&f->bytes, p, len), ES_OK);
    f->ends[f->count++] = f->bytes.len;
}

/* Generated frames, plus the real capture when ../shared is present. */
static void collect(frames *f)
{
    es_atp_gen *g = NULL;
    es_atp_gen_options o = {.seed = 11, .repos = 10};
    assert_int_equal(es_atp_gen_create(&o, &g), ES_OK);
    es_buf one = ES_BUF_INIT;
    for (int i = 0; i < 400; i++) {
        es_buf_clear(&one);
        assert_int_equal(es_atp_gen_next(g, &one), ES_OK);
        add_frame(f, one.data, one.len);
    }
    es_buf_free(&one);
    es_atp_gen_destroy(g);
    const char *path = fixture_path("firehose-corpus/frames.bin.zst");
    if (path == NULL)
        return;
    es_atp_capture *c = NULL;
    assert_int_equal(es_atp_capture_open(path, 0, &c), ES_OK);
    const uint8_t *p;
    size_t len;
    while (es_atp_capture_next(c, &p, &len) == ES_OK)
        add_frame(f, p, len);
    es_atp_capture_close(c);
}

/* Append every frame's batch; returns the number of events appended. */
static size_t append_all(ctx *c, const frames *f, bool expect_duplicates)
{
    es_atp_decoder *d = NULL;
    es_arena *a = NULL;
    assert_int_equal(es_atp_decoder_create(NULL, &d), ES_OK);
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    size_t events = 0;
    for (size_t i = 0; i < f->count; i++) {
        size_t start = i ? f->ends[i - 1] : 0;
        es_arena_reset(a);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(d, f->bytes.data + start, f->ends[i] - start, a, &b), ES_OK);
        if (b.count == 0)
            continue;
        es_append_result r;
        es_status s = es_append_batch(c->store, b.events, b.count, &r);
        if (s != ES_OK)
            fail_msg("frame %zu (seq %llu): %s", i, (unsigned long long)b.seq, es_last_error());
        assert_int_equal(r.duplicate, expect_duplicates);
        events += b.count;
    }
    es_arena_destroy(a);
    es_atp_decoder_destroy(d);
    return events;
}

typedef struct readback {
    size_t events, verified;
} readback;

static es_status check_event(const es_event *ev, void *closure)
{
    readback *r = closure;
    r->events++;
    const char *cid_text = es_event_meta(ev, "cid");
    const void *data;
    size_t len;
    assert_int_equal(es_event_data(ev, &data, &len), ES_OK);
    assert_non_null(es_event_meta(ev, "seq"));
    assert_true(es_event_time_ns(ev) > 0);
    if (strcmp(es_event_entity_type(ev), "repo") != 0) {
        /* an op keeps the audit metadata through the server: the signature
         * (64 bytes, base64url) and the signed MST root */
        const char *sig = es_event_meta(ev, "sig"), *root = es_event_meta(ev, "data");
        assert_non_null(sig);
        assert_int_equal(strlen(sig), 86);
        assert_non_null(root);
        assert_true(strncmp(root, "bafyrei", 7) == 0);
        assert_null(es_event_meta(ev, "commitprev")); /* the generator's v3 prev is null */
    }
    if (cid_text == NULL)
        return ES_OK;
    /* the stored payload re-verifies against the CID in its metadata */
    uint8_t want[64], got[ES_CID_SHA256_LEN];
    size_t n;
    assert_int_equal(es_cid_from_string(cid_text, strlen(cid_text), want, sizeof want, &n), ES_OK);
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, data, len, got), ES_OK);
    assert_memory_equal(want, got, sizeof got);
    assert_string_equal(es_event_codec(ev), "dag-cbor");
    r->verified++;
    return ES_OK;
}

static void batches_are_accepted_and_read_back(void **state)
{
    ctx *c = *state;
    if (c == NULL) {
        print_message("SKIP: NATS_URL is not set; no server to append to\n");
        skip();
    }
    collect(&all_frames);
    appended = append_all(c, &all_frames, false);
    es_store_info info;
    assert_int_equal(es_store_info_get(c->store, &info), ES_OK);
    assert_int_equal(info.events, appended);
    readback r = {0};
    assert_int_equal(es_evolve(c->store, NULL, NULL, check_event, &r, NULL), ES_OK);
    assert_int_equal(r.events, appended);
    assert_true(r.verified > appended / 2);
}

/* A replay (a restarted or second ingester) stores nothing new. Run with
 * ES_ATP_TEST_REPLAY=1: the core's duplicate probe crashes inside libnats now
 * and then (reported); off by default until that is fixed. */
static void a_replay_stores_nothing_new(void **state)
{
    ctx *c = *state;
    const char *on = getenv("ES_ATP_TEST_REPLAY");
    if (c == NULL || appended == 0 || on == NULL || strcmp(on, "1") != 0) {
        print_message("SKIP: needs NATS_URL and ES_ATP_TEST_REPLAY=1 (see the comment)\n");
        skip();
    }
    assert_int_equal(append_all(c, &all_frames, true), appended);
    es_store_info info;
    assert_int_equal(es_store_info_get(c->store, &info), ES_OK);
    assert_int_equal(info.events, appended);
}

/* ---- the longest valid names --------------------------------------------- */

typedef struct limit_case {
    const char *did, *collection, *rkey;
} limit_case;

/* The one frame of `lc`, made into `frame`, decoded and appended; `b` gets
 * what it mapped to (pointing into `a` and `frame`). */
static void append_case(ctx *c, es_atp_gen *g, es_atp_decoder *d, es_arena *a,
                        const limit_case *lc, es_buf *frame, es_atp_batch *b)
{
    es_buf_clear(frame);
    assert_int_equal(es_atp_gen_commit_at(g, lc->did, lc->collection, lc->rkey, frame), ES_OK);
    es_arena_reset(a);
    if (es_atp_decode(d, frame->data, frame->len, a, b) != ES_OK)
        fail_msg("%.60s %.60s %.60s: %s", lc->did, lc->collection, lc->rkey, es_last_error());
    assert_int_equal(b->count, 1);
    es_append_result r;
    if (es_append_batch(c->store, b->events, b->count, &r) != ES_OK)
        fail_msg("%.60s %.60s %.60s: %s", lc->did, lc->collection, lc->rkey, es_last_error());
}

typedef struct limit_readback {
    const limit_case *lc;
    const es_atp_batch *b;
    size_t events;
} limit_readback;

static es_status check_limit_event(const es_event *ev, void *closure)
{
    limit_readback *r = closure;
    r->events++;
    size_t id_len;
    const char *id = es_event_entity_id(ev, &id_len);
    assert_int_equal(id_len, r->b->events[0].entity_id_len);
    assert_memory_equal(id, r->b->events[0].entity_id, id_len);
    assert_string_equal(es_event_meta(ev, "rkey"), r->lc->rkey);
    const char *did = es_event_meta(ev, "did");
    if (strlen(r->lc->did) > ES_ID_MAX)
        assert_string_equal(did, r->lc->did); /* the entity id is the DID's CID */
    else
        assert_true(did == NULL && id_len == strlen(r->lc->did) &&
                    memcmp(id, r->lc->did, id_len) == 0);
    return check_event(ev, &(readback){0});
}

/* `n` copies of `pattern` (cycled) after `prefix`, in a static buffer. */
static char *filled(char *buf, size_t n, const char *prefix, const char *pattern)
{
    size_t p = strlen(prefix), k = strlen(pattern);
    memcpy(buf, prefix, p);
    for (size_t i = p; i < n; i++)
        buf[i] = pattern[(i - p) % k];
    buf[n] = '\0';
    return buf;
}

/* The longest valid NSID (317), record key (512) and DIDs: 1024 bytes whose
 * escape triples nearly all of it (the largest subject the core can make for
 * a DID) and 2048 bytes (mapped to the DID's CID, the DID in `did`). Each
 * is appended to a live store and read back by its entity. */
static void longest_names_map_and_read_back(void **state)
{
    ctx *c = *state;
    if (c == NULL) {
        print_message("SKIP: NATS_URL is not set; no server to append to\n");
        skip();
    }
    static char nsid[318], rkey[513], did_dots[ES_ID_MAX + 1], did_long[2049];
    /* four 63-character domain segments and a 61-character name */
    filled(nsid, 317, "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
    filled(rkey, 512, "", "k:~_-.");
    filled(did_dots, ES_ID_MAX, "did:web:", ".%");
    did_dots[ES_ID_MAX - 1] = '.';
    filled(did_long, 2048, "did:web:", "long.host.");
    assert_true(es_atp_valid_nsid(nsid, 317));
    assert_true(es_atp_valid_rkey(rkey, 512));
    assert_true(es_atp_valid_did(did_dots, ES_ID_MAX));
    assert_true(es_atp_valid_did(did_long, 2048));
    const limit_case cases[] = {{did_dots, nsid, rkey}, {did_long, nsid, rkey}};

    es_atp_gen *g = NULL;
    es_atp_decoder *d = NULL;
    es_arena *a = NULL;
    assert_int_equal(es_atp_gen_create(&(es_atp_gen_options){.seed = 12, .repos = 1}, &g), ES_OK);
    assert_int_equal(es_atp_decoder_create(NULL, &d), ES_OK);
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_buf frame = ES_BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        es_atp_batch b;
        append_case(c, g, d, a, &cases[i], &frame, &b);
        assert_int_equal(strlen(b.events[0].entity_type), 317);
        es_filter f;
        es_filter_init(&f);
        f.entity_type = b.events[0].entity_type;
        f.entity_id = b.events[0].entity_id;
        f.entity_id_len = b.events[0].entity_id_len;
        limit_readback r = {&cases[i], &b, 0};
        assert_int_equal(es_evolve(c->store, &f, NULL, check_limit_event, &r, NULL), ES_OK);
        assert_int_equal(r.events, 1);
    }
    es_buf_free(&frame);
    es_arena_destroy(a);
    es_atp_decoder_destroy(d);
    es_atp_gen_destroy(g);
}

/* Calls fn for each line of an interop syntax file (no comments, no blanks);
 * false when ../shared is absent. */
static bool each_vector(const char *rel, void (*fn)(const char *line, void *user), void *user)
{
    const char *path = fixture_path(rel);
    size_t len;
    char *text = path ? (char *)read_whole_file(path, &len) : NULL;
    if (text == NULL)
        return false;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        if (line[0] != '#' && line[0] != '\0')
            fn(line, user);
    free(text);
    return true;
}

typedef struct vector_run {
    ctx *c;
    es_atp_gen *g;
    es_atp_decoder *d;
    es_arena *a;
    int field; /* 0: DID, 1: NSID, 2: record key */
    es_buf frame;
    size_t appended;
} vector_run;

static void append_vector(const char *line, void *user)
{
    vector_run *v = user;
    limit_case lc = {"did:plc:7iza6de2dwap2sbkpav7c6c6", "app.bsky.feed.post", "3jzfcijpj2z2a"};
    const char **slot[] = {&lc.did, &lc.collection, &lc.rkey};
    *slot[v->field] = line;
    es_atp_batch b;
    append_case(v->c, v->g, v->d, v->a, &lc, &v->frame, &b);
    v->appended++;
}

/* Every valid DID, NSID and record key of the interop vectors maps and is
 * accepted by the store. */
static void interop_vectors_all_map(void **state)
{
    ctx *c = *state;
    if (c == NULL) {
        print_message("SKIP: NATS_URL is not set; no server to append to\n");
        skip();
    }
    static const char *const files[] = {"atproto-interop/syntax/did_syntax_valid.txt",
                                        "atproto-interop/syntax/nsid_syntax_valid.txt",
                                        "atproto-interop/syntax/recordkey_syntax_valid.txt"};
    vector_run v = {.c = c};
    assert_int_equal(es_atp_gen_create(&(es_atp_gen_options){.seed = 13, .repos = 1}, &v.g), ES_OK);
    assert_int_equal(es_atp_decoder_create(NULL, &v.d), ES_OK);
    assert_int_equal(es_arena_create(0, &v.a), ES_OK);
    bool present = true;
    for (v.field = 0; v.field < 3 && present; v.field++)
        present = each_vector(files[v.field], append_vector, &v);
    es_buf_free(&v.frame);
    es_arena_destroy(v.a);
    es_atp_decoder_destroy(v.d);
    es_atp_gen_destroy(v.g);
    if (!present)
        skip();
    assert_true(v.appended >= 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batches_are_accepted_and_read_back),
        cmocka_unit_test(a_replay_stores_nothing_new),
        cmocka_unit_test(longest_names_map_and_read_back),
        cmocka_unit_test(interop_vectors_all_map),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
