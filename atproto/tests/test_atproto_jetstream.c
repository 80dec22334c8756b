/* es_atp_jetstream_describe / _encode (es/atproto_jetstream.h) on events
 * stored in a live server (NATS_URL): each branch of the mapping read
 * backwards — a record op, a delete, an invalid record kept as bytes, a
 * long DID carried in metadata, repo events, events of other writers, a
 * repo event whose payload is not a map, and the arena's bound. The real
 * corpus against Jetstream's own output is tools/es-atproto-serve's e2e
 * test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include <es/atproto_jetstream.h>
#include <es/cbor.h>
#include <es/json.h>

#include "live.h"
#include "stored_events.h"

#define DID  "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
#define CID1 "bafyreiftot7eltsc3f6g4qktykmbv6jcmdmhcx5osscan6jpdxkpqcmcza"
#define LIKE                                                                                       \
    "{\"$type\":\"app.bsky.feed.like\",\"createdAt\":\"2026-07-04T14:38:08.999Z\","                \
    "\"subject\":{\"cid\":\"" CID1 "\",\"uri\":\"at://" DID "/app.bsky.feed.post/3mpsjbtci2c2o\"}," \
    "\"via\":{\"$link\":\"" CID1 "\"},\"sig\":{\"$bytes\":\"AQID\"}}"

static int setup(void **state)
{
    static live_store ls;
    *state = NULL;
    int made = live_store_create(&ls, "jetstream_t");
    if (made <= 0)
        return made;
    *state = &ls;
    return 0;
}

static int teardown(void **state)
{
    if (*state != NULL)
        live_store_destroy(*state);
    return 0;
}

/* What one stored event renders as. */
typedef struct rendered {
    es_arena *arena;
    es_atp_jetstream_event d;
    es_status encoded;
    json_t *json;
    int64_t stored_us;
} rendered;

static es_status render(const es_event *ev, void *closure)
{
    rendered *r = closure;
    assert_int_equal(es_atp_jetstream_describe(ev, &r->d), ES_OK);
    r->stored_us = es_event_stored_ns(ev) / 1000;
    if (r->d.kind == ES_ATP_JS_NONE) {
        es_buf b = ES_BUF_INIT;
        r->encoded = es_atp_jetstream_encode(ev, &r->d, r->arena, &b);
        es_buf_free(&b);
        return ES_OK;
    }
    es_buf b = ES_BUF_INIT;
    r->encoded = es_atp_jetstream_encode(ev, &r->d, r->arena, &b);
    if (r->encoded == ES_OK) {
        r->json = json_loadb((const char *)b.data, b.len, 0, NULL);
        assert_non_null(r->json);
    }
    es_buf_free(&b);
    return ES_OK;
}

/* Appends `e` and renders it back (arena limit `limit`, 0: none). */
static rendered append_and_render(es_store *st, es_event_spec *e, size_t limit)
{
    es_append_result res;
    assert_int_equal(es_append(st, e, &res), ES_OK);
    rendered r = {0};
    assert_int_equal(es_arena_create(limit, &r.arena), ES_OK);
    es_read_options o;
    es_read_options_init(&o);
    o.after_seq = res.first_seq - 1;
    o.up_to_seq = res.first_seq;
    assert_int_equal(es_evolve(st, NULL, &o, render, &r, NULL), ES_OK);
    es_arena_destroy(r.arena);
    r.arena = NULL;
    return r;
}

/* got equals the JSON text want, time_us aside (checked against the
 * stored time). */
static void expect_json(rendered *r, const char *want)
{
    assert_int_equal(r->encoded, ES_OK);
    assert_int_equal(json_integer_value(json_object_get(r->json, "time_us")), r->stored_us);
    assert_true(r->stored_us == r->d.time_us && r->stored_us > 0);
    json_object_del(r->json, "time_us");
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    if (!json_equal(r->json, w)) {
        char *t = json_dumps(r->json, JSON_SORT_KEYS);
        fail_msg("rendered %s\nwanted %s", t, want);
    }
    json_decref(w);
    json_decref(r->json);
}

static void record_ops(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    es_buf like = ES_BUF_INIT;
    dag_cbor(LIKE, &like);

    es_meta meta[] = {{"rkey", "3mptbyplj5d2a"}, {"rev", "3mptbypluud2a"}, {"cid", CID1}};
    es_event_spec create = spec("app_bsky_feed_like", DID, "create", &like, meta, 3);
    rendered r = append_and_render(st, &create, 0);
    assert_int_equal(r.d.kind, ES_ATP_JS_COMMIT);
    assert_string_equal(r.d.collection, "app.bsky.feed.like");
    assert_int_equal(r.d.did_len, strlen(DID));
    expect_json(&r, "{\"did\":\"" DID "\",\"kind\":\"commit\",\"commit\":{\"rev\":\"3mptbypluud2a\","
                    "\"operation\":\"create\",\"collection\":\"app.bsky.feed.like\","
                    "\"rkey\":\"3mptbyplj5d2a\",\"record\":" LIKE ",\"cid\":\"" CID1 "\"}}");

    /* a delete: no record, no cid */
    es_event_spec e = spec("app_bsky_feed_like", DID, "delete", NULL, meta, 2);
    r = append_and_render(st, &e, 0);
    expect_json(&r, "{\"did\":\"" DID "\",\"kind\":\"commit\",\"commit\":{\"rev\":\"3mptbypluud2a\","
                    "\"operation\":\"delete\",\"collection\":\"app.bsky.feed.like\","
                    "\"rkey\":\"3mptbyplj5d2a\"}}");

    /* an invalid record kept as bytes: its cid, no record */
    es_meta invalid[] = {{"rkey", "3mptbyplj5d2b"}, {"rev", "3mptbypluud2b"}, {"cid", CID1},
                         {"invalid", "not DAG-CBOR"}};
    e = spec("app_bsky_feed_post", DID, "update", NULL, invalid, 4);
    e.data = "\xa1\x61"; /* codec binary */
    e.data_len = 2;
    r = append_and_render(st, &e, 0);
    expect_json(&r, "{\"did\":\"" DID "\",\"kind\":\"commit\",\"commit\":{\"rev\":\"3mptbypluud2b\","
                    "\"operation\":\"update\",\"collection\":\"app.bsky.feed.post\","
                    "\"rkey\":\"3mptbyplj5d2b\",\"cid\":\"" CID1 "\"}}");

    /* a DID over 1,024 bytes: the entity id is its CID, the DID in metadata */
    char long_did[1100] = "did:web:";
    memset(long_did + 8, 'a', 1060);
    long_did[1068] = '\0';
    es_meta with_did[] = {{"rkey", "3mptbyplj5d2a"}, {"rev", "3mptbypluud2a"}, {"did", long_did}};
    e = spec("app_bsky_feed_like", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
             "delete", NULL, with_did, 3);
    r = append_and_render(st, &e, 0);
    assert_int_equal(r.d.did_len, 1068);
    assert_string_equal(json_string_value(json_object_get(r.json, "did")), long_did);
    json_decref(r.json);

    /* the arena bounds one record's memory */
    r = append_and_render(st, &create, 64);
    assert_int_equal(r.encoded, ES_ERR_LIMIT);
    es_buf_free(&like);
}

static void repo_and_other_events(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    const char *body = "{\"did\":\"" DID "\",\"seq\":31527015470,\"time\":\"2026-07-04T14:38:07.877Z\","
                       "\"handle\":\"alice.example.com\"}";
    es_buf cbor = ES_BUF_INIT;
    dag_cbor(body, &cbor);
    es_meta seq[] = {{"seq", "31527015470"}};
    es_event_spec e = spec("repo", DID, "identity", &cbor, seq, 1);
    rendered r = append_and_render(st, &e, 0);
    assert_int_equal(r.d.kind, ES_ATP_JS_IDENTITY);
    assert_string_equal(r.d.collection, "");
    char want[512];
    snprintf(want, sizeof want, "{\"did\":\"" DID "\",\"kind\":\"identity\",\"identity\":%s}", body);
    expect_json(&r, want);

    e.event_type = "account";
    r = append_and_render(st, &e, 0);
    assert_int_equal(r.d.kind, ES_ATP_JS_ACCOUNT);
    json_decref(r.json);

    /* no Jetstream form: #sync, an event of another writer, an op without rkey */
    const char *none[][2] = {{"repo", "sync"}, {"account", "deposited"}, {"app_bsky_feed_like", "create"}};
    for (size_t i = 0; i < 3; i++) {
        e = spec(none[i][0], DID, none[i][1], NULL, NULL, 0);
        r = append_and_render(st, &e, 0);
        assert_int_equal(r.d.kind, ES_ATP_JS_NONE);
        assert_int_equal(r.encoded, ES_ERR_INVALID);
    }

    /* a repo event whose payload is not a DAG-CBOR map */
    es_buf array = ES_BUF_INIT;
    dag_cbor("[1,2]", &array);
    e = spec("repo", DID, "account", &array, NULL, 0);
    r = append_and_render(st, &e, 0);
    assert_int_equal(r.encoded, ES_ERR_DECODE);
    es_buf_free(&array);
    es_buf_free(&cbor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(record_ops),
        cmocka_unit_test(repo_and_other_events),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
