/* es_atp_tap_describe / _encode (es/atproto_tap.h) on stored events (a live
 * server, NATS_URL): the real firehose corpus stored as the ingester stores
 * it, each event's Tap JSON checked field by field against the same
 * event's Jetstream JSON (whose equality with Jetstream's own output the
 * serve e2e test proves); a backfill's event (live=false); identity and
 * account bodies in Tap's names; events without a Tap form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include <es/atproto.h>
#include <es/atproto_jetstream.h>
#include <es/atproto_tap.h>
#include <es/cbor.h>
#include <es/json.h>

#include "fixtures.h"
#include "live.h"
#include "stored_events.h"

#define DID "did:plc:ewvi7nxzyoun6zhxrhs64oiz"

static int setup(void **state)
{
    static live_store ls;
    return live_group_setup(state, &ls, "tap_t");
}

/* One stored event in both renderings (NULL where it has none). */
typedef struct both {
    es_atp_tap_event d;
    json_t *tap, *js;
    es_status encoded;
} both;

typedef struct reading {
    es_arena *arena;
    both *out;
    size_t n, cap;
} reading;

static json_t *parse(const es_buf *b)
{
    json_t *j = json_loadb((const char *)b->data, b->len, 0, NULL);
    assert_non_null(j);
    return j;
}

static es_status render(const es_event *ev, void *closure)
{
    reading *r = closure;
    assert_true(r->n < r->cap);
    both *o = &r->out[r->n++];
    memset(o, 0, sizeof *o);
    assert_int_equal(es_atp_tap_describe(ev, &o->d), ES_OK);
    es_buf b = ES_BUF_INIT;
    es_arena_reset(r->arena);
    o->encoded = es_atp_tap_encode(ev, &o->d, r->arena, &b);
    if (o->encoded == ES_OK)
        o->tap = parse(&b);
    es_atp_jetstream_event jd;
    assert_int_equal(es_atp_jetstream_describe(ev, &jd), ES_OK);
    b.len = 0;
    es_arena_reset(r->arena);
    if (jd.kind != ES_ATP_JS_NONE) {
        assert_int_equal(es_atp_jetstream_encode(ev, &jd, r->arena, &b), ES_OK);
        o->js = parse(&b);
    }
    es_buf_free(&b);
    return ES_OK;
}

/* Every event after `after_seq`, rendered both ways. */
static size_t read_back(es_store *st, uint64_t after_seq, both *out, size_t cap)
{
    reading r = {.out = out, .cap = cap};
    assert_int_equal(es_arena_create(0, &r.arena), ES_OK);
    es_read_options o;
    es_read_options_init(&o);
    o.after_seq = after_seq;
    assert_int_equal(es_evolve(st, NULL, &o, render, &r, NULL), ES_OK);
    es_arena_destroy(r.arena);
    return r.n;
}

static void both_free(both *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(b[i].tap);
        json_decref(b[i].js);
    }
}

static void same(json_t *a, const char *ka, json_t *b, const char *kb)
{
    json_t *x = json_object_get(a, ka), *y = json_object_get(b, kb);
    if (!json_equal(x, y) && !(x == NULL && y == NULL))
        fail_msg("%s differs from Jetstream's %s", ka, kb);
}

/* A record event: Tap's fields equal Jetstream's commit fields. */
static void check_record(const both *b, uint64_t seq)
{
    assert_int_equal(b->d.kind, ES_ATP_TAP_RECORD);
    assert_true(b->d.live);
    assert_int_equal(json_integer_value(json_object_get(b->tap, "id")), seq);
    assert_string_equal(json_string_value(json_object_get(b->tap, "type")), "record");
    json_t *r = json_object_get(b->tap, "record"), *c = json_object_get(b->js, "commit");
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "live")));
    same(r, "did", b->js, "did");
    same(r, "rev", c, "rev");
    same(r, "collection", c, "collection");
    same(r, "rkey", c, "rkey");
    same(r, "action", c, "operation");
    same(r, "record", c, "record");
    same(r, "cid", c, "cid");
    assert_int_equal(json_object_size(r), json_object_size(c) + 2); /* + live and did, nothing else */
    assert_int_equal(json_object_size(b->tap), 3);
}

static void the_corpus_renders_as_tap(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    es_atp_capture *frames = corpus_frames_open();
    if (frames == NULL)
        skip();
    es_atp_decoder *dec = NULL;
    es_arena *arena = NULL;
    assert_int_equal(es_atp_decoder_create(NULL, &dec), ES_OK);
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_store_info si;
    assert_int_equal(es_store_info_get(st, &si), ES_OK);
    const uint8_t *frame;
    size_t len, stored = 0;
    while (es_atp_capture_next(frames, &frame, &len) == ES_OK) {
        es_arena_reset(arena);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(dec, frame, len, arena, &b), ES_OK);
        es_append_result r;
        if (b.count > 0 && es_append_batch(st, b.events, b.count, &r) != ES_OK)
            fail_msg("frame seq %llu: %s", (unsigned long long)b.seq, es_last_error());
        stored += b.count;
    }
    es_atp_capture_close(frames);
    es_arena_destroy(arena);
    es_atp_decoder_destroy(dec);

    static both out[4096];
    assert_true(stored > 100 && stored < 4096);
    size_t n = read_back(st, si.last_seq, out, 4096);
    assert_int_equal(n, stored);
    size_t records = 0, identities = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = si.last_seq + 1 + i;
        if (out[i].js == NULL) { /* #sync: neither form */
            assert_int_equal(out[i].d.kind, ES_ATP_TAP_NONE);
            assert_int_equal(out[i].encoded, ES_ERR_INVALID);
            continue;
        }
        assert_int_equal(out[i].encoded, ES_OK);
        const char *kind = json_string_value(json_object_get(out[i].js, "kind"));
        if (strcmp(kind, "commit") == 0) {
            check_record(&out[i], seq);
            records++;
            continue;
        }
        assert_int_equal(out[i].d.kind, ES_ATP_TAP_IDENTITY);
        assert_false(out[i].d.live);
        assert_string_equal(json_string_value(json_object_get(out[i].tap, "type")), "identity");
        json_t *id = json_object_get(out[i].tap, "identity"),
               *body = json_object_get(out[i].js, kind);
        same(id, "did", out[i].js, "did");
        if (strcmp(kind, "identity") == 0)
            same(id, "handle", body, "handle");
        else
            assert_true(json_equal(json_object_get(id, "is_active"), json_object_get(body, "active")));
        identities++;
    }
    print_message("%zu events: %zu records, %zu identity events\n", n, records, identities);
    assert_true(records > 100 && identities > 0);
    both_free(out, n);
}

static uint64_t append(es_store *st, const char *type, const char *event, const es_buf *cbor,
                       const es_meta *meta, size_t meta_count)
{
    es_event_spec e = spec(type, DID, event, cbor, meta, meta_count);
    es_append_result r;
    assert_int_equal(es_append(st, &e, &r), ES_OK);
    return r.first_seq;
}

static json_t *want(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void expect(const both *b, const char *text)
{
    json_t *w = want(text);
    if (!json_equal(b->tap, w)) {
        char *got = json_dumps(b->tap, JSON_SORT_KEYS);
        fail_msg("rendered %s\nwanted %s", got, text);
    }
    json_decref(w);
}

static void backfill_identity_and_others(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    es_store_info si;
    assert_int_equal(es_store_info_get(st, &si), ES_OK);
    es_buf rec = ES_BUF_INIT, ident = ES_BUF_INIT, acct = ES_BUF_INIT, down = ES_BUF_INIT;
    dag_cbor("{\"$type\":\"app.bsky.actor.profile\",\"displayName\":\"A\"}", &rec);
    dag_cbor("{\"did\":\"" DID "\",\"seq\":7,\"time\":\"2026-07-04T14:38:07.877Z\","
             "\"handle\":\"alice.example.com\"}", &ident);
    dag_cbor("{\"did\":\"" DID "\",\"seq\":8,\"time\":\"2026-07-04T14:38:07.877Z\",\"active\":true}",
             &acct);
    dag_cbor("{\"did\":\"" DID "\",\"seq\":9,\"time\":\"2026-07-04T14:38:07.877Z\","
             "\"active\":false,\"status\":\"takendown\"}", &down);
    es_meta backfill[] = {{"rkey", "self"}, {"rev", "3mptbypluud2a"}, {"cid", "bafyreib"},
                          {"live", "false"}};
    uint64_t s1 = append(st, "app_bsky_actor_profile", "create", &rec, backfill, 4);
    append(st, "repo", "identity", &ident, NULL, 0);
    append(st, "repo", "account", &acct, NULL, 0);
    append(st, "repo", "account", &down, NULL, 0);
    append(st, "repo", "sync", &acct, NULL, 0);        /* no Tap form */
    append(st, "account", "deposited", NULL, NULL, 0); /* not the adapter's */
    es_buf_free(&rec);
    es_buf_free(&ident);
    es_buf_free(&acct);
    es_buf_free(&down);

    both out[8];
    size_t n = read_back(st, si.last_seq, out, 8);
    assert_int_equal(n, 6);
    assert_false(out[0].d.live);
    assert_int_equal(out[0].d.id, s1);
    char text[512];
    snprintf(text, sizeof text,
             "{\"id\":%llu,\"type\":\"record\",\"record\":{\"live\":false,\"did\":\"" DID "\","
             "\"rev\":\"3mptbypluud2a\",\"collection\":\"app.bsky.actor.profile\",\"rkey\":\"self\","
             "\"action\":\"create\",\"cid\":\"bafyreib\",\"record\":{\"$type\":"
             "\"app.bsky.actor.profile\",\"displayName\":\"A\"}}}",
             (unsigned long long)s1);
    expect(&out[0], text);
    snprintf(text, sizeof text,
             "{\"id\":%llu,\"type\":\"identity\",\"identity\":{\"did\":\"" DID "\","
             "\"handle\":\"alice.example.com\"}}", (unsigned long long)s1 + 1);
    expect(&out[1], text);
    snprintf(text, sizeof text,
             "{\"id\":%llu,\"type\":\"identity\",\"identity\":{\"did\":\"" DID "\","
             "\"is_active\":true,\"status\":\"active\"}}", (unsigned long long)s1 + 2);
    expect(&out[2], text);
    snprintf(text, sizeof text,
             "{\"id\":%llu,\"type\":\"identity\",\"identity\":{\"did\":\"" DID "\","
             "\"is_active\":false,\"status\":\"takendown\"}}", (unsigned long long)s1 + 3);
    expect(&out[3], text);
    for (size_t i = 4; i < 6; i++) {
        assert_int_equal(out[i].d.kind, ES_ATP_TAP_NONE);
        assert_int_equal(out[i].encoded, ES_ERR_INVALID);
    }
    both_free(out, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_corpus_renders_as_tap),
        cmocka_unit_test(backfill_identity_and_others),
    };
    return cmocka_run_group_tests(tests, setup, live_group_teardown);
}
