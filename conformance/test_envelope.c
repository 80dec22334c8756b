/* Codecs and the envelope through a live store: compression, encryption,
 * crypto-shredding, upcasting, decoding by the codec a header names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <es/cbor.h>
#include <es/json.h>

#include "harness.h"

static const char *raw_header(natsMsg *m, const char *k)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, k, &v) == NATS_OK ? v : NULL;
}

static const char *find_bytes(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

static char key_file[64], wrong_key_file[64];

static void write_key(char *path, const char *hex)
{
    snprintf(path, 64, "/tmp/es-conf-key-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, hex, 64), 64);
    close(fd);
}

static int keys_setup(void **state)
{
    (void)state;
    write_key(key_file, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    write_key(wrong_key_file, "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    return 0;
}

static int keys_teardown(void **state)
{
    (void)state;
    unlink(key_file);
    unlink(wrong_key_file);
    return 0;
}

/* A second store of the test's own with the given envelope settings. */
static es_store *envelope_store(conf_ctx *c, char *name, size_t threshold, bool encrypt,
                                const char *key)
{
    conf_unique_name(name);
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.compress_threshold = threshold;
    cfg.encrypt = encrypt;
    es_store_options o;
    es_store_options_init(&o);
    o.master_key_file = key;
    es_store *st = NULL;
    es_status s = es_store_create(c->nc, name, &cfg, &o, &st);
    if (s != ES_OK)
        fail_msg("creating %s: %s", name, es_last_error());
    return st;
}

static es_store *reopen(conf_ctx *c, const char *name, const char *key)
{
    es_store_options o;
    es_store_options_init(&o);
    o.master_key_file = key;
    es_store *st = NULL;
    assert_int_equal(es_store_open(c->nc, name, &o, &st), ES_OK);
    return st;
}

static void compression_is_transparent_above_the_threshold(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1];
    es_store *st = envelope_store(c, name, 1024, false, NULL);
    static char big[8192], small[1023];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = "the quick brown fox "[i % 20];
    memset(small, 's', sizeof small);
    es_event_spec e = conf_spec("doc", "d1", "written", NULL);
    e.data = small;
    e.data_len = sizeof small;
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    e.data = big;
    e.data_len = sizeof big;
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    natsMsg *m1 = conf_raw_get(c->nc, es_store_stream(st), 1);
    natsMsg *m2 = conf_raw_get(c->nc, es_store_stream(st), 2);
    assert_null(raw_header(m1, "Es-Compression"));
    assert_int_equal(natsMsg_GetDataLength(m1), sizeof small);
    assert_string_equal(raw_header(m2, "Es-Compression"), "zstd");
    assert_true(natsMsg_GetDataLength(m2) < 1000);
    natsMsg_Destroy(m1);
    natsMsg_Destroy(m2);
    /* Another handle learns the setting from the store itself. */
    es_store *other = reopen(c, name, NULL);
    es_store_info info;
    assert_int_equal(es_store_info_get(other, &info), ES_OK);
    assert_int_equal(info.config.compress_threshold, 1024);
    conf_seen seen = {0};
    assert_int_equal(es_evolve(other, NULL, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 2);
    assert_int_equal(strlen(seen.data[0]), sizeof small);
    assert_memory_equal(seen.data[1], big, sizeof big);
    conf_seen_free(&seen);
    es_store_destroy(other);
    es_store_destroy(st);
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_OK);
}

typedef struct outcome {
    es_status status;
    size_t count;
    char type[32];
} outcome;

static es_status record_outcome(const es_event *ev, void *closure)
{
    outcome *o = closure;
    const void *d;
    size_t len;
    o->status = es_event_data(ev, &d, &len);
    snprintf(o->type, sizeof o->type, "%s", es_event_event_type(ev)); /* metadata stays readable */
    o->count++;
    return ES_OK;
}

static outcome read_entity(es_store *st, const char *id)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "person";
    f.entity_id = id;
    outcome o = {ES_OK, 0, ""};
    assert_int_equal(es_load(st, &f, NULL, record_outcome, &o, NULL), ES_OK);
    return o;
}

static void encryption_round_trip_and_refusals(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1];
    es_store *st = envelope_store(c, name, 0, true, key_file);
    es_event_spec e = conf_spec("person", "p1", "registered", "{\"email\":\"a@example.com\"}");
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    natsMsg *m = conf_raw_get(c->nc, es_store_stream(st), 1);
    assert_non_null(raw_header(m, "Es-Key"));
    assert_null(find_bytes(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "example.com"));
    conf_seen seen = {0};
    assert_int_equal(es_evolve(st, NULL, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_string_equal(seen.data[0], "{\"email\":\"a@example.com\"}");
    conf_seen_free(&seen);

    /* A wrong master key is refused at open (a_wrong_master_key_is_refused_
     * at_open); without a key the metadata reads. */
    es_store *keyless = reopen(c, name, NULL);
    outcome o = read_entity(keyless, "p1");
    assert_int_equal(o.status, ES_ERR_NO_KEY);
    assert_string_equal(o.type, "registered");
    assert_int_equal(es_append(keyless, &e, NULL), ES_ERR_NO_KEY);
    es_store_destroy(keyless);

    /* The ciphertext copied onto another entity's subject does not open. */
    char subject[128];
    snprintf(subject, sizeof subject, "$ES.%s.person.p2.registered", name);
    natsMsg *moved = NULL;
    assert_int_equal(
        natsMsg_Create(&moved, subject, NULL, natsMsg_GetData(m), natsMsg_GetDataLength(m)),
        NATS_OK);
    natsMsgHeader_Set(moved, "Es-Key", raw_header(m, "Es-Key"));
    natsMsgHeader_Set(moved, "Nats-Msg-Id", raw_header(m, "Nats-Msg-Id"));
    natsMsg *reply = NULL;
    /* another id, or the dedupe window would drop it */
    natsMsgHeader_Set(moved, "Nats-Msg-Id", "moved-copy");
    assert_int_equal(natsConnection_RequestMsg(&reply, c->nc, moved, 5000), NATS_OK);
    natsMsg_Destroy(reply);
    natsMsg_Destroy(moved);
    natsMsg_Destroy(m);
    o = read_entity(st, "p2");
    assert_int_equal(o.count, 1);
    assert_int_equal(o.status, ES_ERR_CRYPTO);
    es_store_destroy(st);
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_OK);
}

/* Values in the store's keys bucket: data keys, shred marks, the key check. */
static es_status keys_values(const es_bucket_info *b, void *closure)
{
    if (strcmp(b->kind, "keys") == 0)
        *(uint64_t *)closure = b->values;
    return ES_OK;
}

static uint64_t key_records(es_store *st)
{
    uint64_t n = 0;
    assert_int_equal(es_store_buckets(st, keys_values, &n), ES_OK);
    return n;
}

#define KEY_MISMATCH "the master key does not match the one this store was written with"

static es_status open_with_key(conf_ctx *c, const char *name, const char *key, es_store **st)
{
    es_store_options o;
    es_store_options_init(&o);
    o.master_key_file = key;
    return es_store_open(c->nc, name, &o, st);
}

/* Issue 11: a wrong master key used to be found out only by the readers of
 * what it wrote (a new entity got a data key wrapped by it). Now both open
 * and create refuse it before anything is written. */
static void a_wrong_master_key_is_refused_at_open(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1];
    es_store *st = envelope_store(c, name, 0, true, key_file);
    es_event_spec e = conf_spec("person", "p1", "registered", "{}");
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    uint64_t records = key_records(st), events = conf_stream_msgs(c->nc, es_store_stream(st));
    assert_int_equal(records, 2); /* the key check and p1's data key */

    es_store *wrong = NULL;
    assert_int_equal(open_with_key(c, name, wrong_key_file, &wrong), ES_ERR_CRYPTO);
    assert_null(wrong);
    assert_string_equal(es_last_error(), KEY_MISMATCH);
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.encrypt = true;
    es_store_options o;
    es_store_options_init(&o);
    o.master_key_file = wrong_key_file;
    assert_int_equal(es_store_create(c->nc, name, &cfg, &o, &wrong), ES_ERR_CRYPTO);
    assert_null(wrong);
    assert_int_equal(key_records(st), records); /* nothing written */
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(st)), events);

    /* The right key opens, and a new entity is written and read back. */
    es_store *right = NULL;
    assert_int_equal(open_with_key(c, name, key_file, &right), ES_OK);
    es_event_spec e2 = conf_spec("person", "p2", "registered", "{\"n\":2}");
    assert_int_equal(es_append(right, &e2, NULL), ES_OK);
    outcome r = read_entity(st, "p2");
    assert_int_equal(r.count, 1);
    assert_int_equal(r.status, ES_OK);
    assert_int_equal(key_records(st), records + 1);
    es_store_destroy(right);
    es_store_destroy(st);
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_OK);
}

/* The check record as nats.c's own KV sees it: its first byte (0: none). */
static int check_record(conf_ctx *c, const char *name, bool purge)
{
    char bucket[64];
    snprintf(bucket, sizeof bucket, "ES_%s_keys", name);
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    assert_int_equal(natsConnection_JetStream(&js, c->nc, NULL), NATS_OK);
    assert_int_equal(js_KeyValue(&kv, js, bucket), NATS_OK);
    int first = 0;
    kvEntry *e = NULL;
    if (kvStore_Get(&e, kv, "master-key-check") == NATS_OK) {
        assert_int_equal(kvEntry_ValueLen(e), 57);
        first = ((const uint8_t *)kvEntry_Value(e))[0];
        kvEntry_Destroy(e);
    }
    if (purge)
        assert_int_equal(kvStore_Purge(kv, "master-key-check", NULL), NATS_OK);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    return first;
}

/* A store written before the check existed has none: the first open with a
 * key proves it against a data key already there, then writes the check,
 * and from then on the check holds. */
static void a_store_from_before_the_check_gets_one(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1];
    es_store *st = envelope_store(c, name, 0, true, key_file);
    es_event_spec e = conf_spec("person", "p1", "registered", "{}");
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    es_store_destroy(st);
    assert_int_equal(check_record(c, name, true), 0x03); /* made "old": check purged */
    assert_int_equal(check_record(c, name, false), 0);

    es_store *wrong = NULL; /* refused by p1's data key: it claims nothing */
    assert_int_equal(open_with_key(c, name, wrong_key_file, &wrong), ES_ERR_CRYPTO);
    assert_string_equal(es_last_error(), KEY_MISMATCH);
    assert_null(wrong);
    assert_int_equal(check_record(c, name, false), 0);

    assert_int_equal(open_with_key(c, name, key_file, &st), ES_OK);
    assert_int_equal(check_record(c, name, false), 0x03);
    outcome o = read_entity(st, "p1");
    assert_int_equal(o.status, ES_OK);
    es_store_destroy(st);
    assert_int_equal(open_with_key(c, name, wrong_key_file, &wrong), ES_ERR_CRYPTO);
    assert_null(wrong);
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_OK);
}

static void shredding_erases_data_not_history(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1];
    es_store *st = envelope_store(c, name, 64, true, key_file);
    for (int i = 0; i < 3; i++) {
        es_event_spec e = conf_spec("person", "gone", "changed",
                                    "personal data, personal data, personal data, personal data");
        assert_int_equal(es_append(st, &e, NULL), ES_OK);
        es_event_spec k = conf_spec("person", "kept", "changed", "other data");
        assert_int_equal(es_append(st, &k, NULL), ES_OK);
    }
    assert_int_equal(es_store_shred(st, NULL, "person", "gone", 0), ES_OK);
    outcome o = read_entity(st, "gone");
    assert_int_equal(o.count, 3);
    assert_int_equal(o.status, ES_ERR_SHREDDED);
    assert_string_equal(o.type, "changed");
    o = read_entity(st, "kept");
    assert_int_equal(o.status, ES_OK);
    es_event_spec e = conf_spec("person", "gone", "changed", "more");
    assert_int_equal(es_append(st, &e, NULL), ES_ERR_SHREDDED);
    /* A fresh handle (another process) sees the same. */
    es_store *other = reopen(c, name, key_file);
    o = read_entity(other, "gone");
    assert_int_equal(o.status, ES_ERR_SHREDDED);
    assert_int_equal(es_store_shred(other, NULL, "person", "gone", 0), ES_OK); /* idempotent */
    es_store_destroy(other);
    es_store_destroy(st);
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_OK);
    assert_int_equal(es_store_shred(c->st, NULL, "person", "x", 0),
                     ES_ERR_INVALID); /* no encryption */
}

static es_status v1_to_v2(void *ctx, const uint8_t *in, size_t len, es_buf *out)
{
    (void)ctx;
    es_status s = es_buf_append(out, in, len);
    return s == ES_OK ? es_buf_append_str(out, "+v2") : s;
}

static void upcasters_apply_on_read(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("doc", "d1", "written", "old");
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    e.data = "new";
    e.schema = 2;
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    es_upcasters *up = NULL;
    assert_int_equal(es_upcasters_create(0, &up), ES_OK);
    assert_int_equal(es_upcasters_add(up, "doc", "written", 1, v1_to_v2, NULL), ES_OK);
    es_store_options o;
    es_store_options_init(&o);
    o.upcasters = up;
    es_store *st = NULL;
    assert_int_equal(es_store_open(c->nc, c->name, &o, &st), ES_OK);
    conf_seen seen = {0};
    assert_int_equal(es_evolve(st, NULL, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_string_equal(seen.data[0], "old+v2");
    assert_string_equal(seen.data[1], "new");
    conf_seen_free(&seen);
    es_store_destroy(st);
    es_upcasters_destroy(up);
}

typedef struct decoded {
    es_arena *arena;
    es_buf json;
    size_t n;
} decoded;

static es_status to_json(const es_event *ev, void *closure)
{
    decoded *d = closure;
    es_value *v = NULL;
    es_status s = es_event_decode(ev, d->arena, &v);
    if (s != ES_OK)
        return s;
    if (d->n++)
        es_buf_append_byte(&d->json, '|');
    return es_json_encode(v, NULL, &d->json);
}

static void imported(const es_import_result *r, void *closure)
{
    *(es_status *)closure = r->status;
}

/* Stores doc/d2 "not json" with the given codec name as it is. */
static void import_as_is(es_store *st, const char *event_id, const char *codec)
{
    es_header h[] = {{"Nats-Msg-Id", event_id},
                     {"Rita-Entity", "doc.d2"},
                     {"Rita-Type", "written"},
                     {"Rita-Time", "2024-01-01T00:00:00.000000000Z"},
                     {"Rita-Codec", codec}};
    es_raw_event raw = {"doc.d2.written", h, 5, "not json", 8};
    es_status stored = ES_ERR_TIMEOUT;
    assert_int_equal(es_import_async(st, &raw, imported, &stored), ES_OK);
    assert_int_equal(es_append_flush(st, 5000), ES_OK);
    assert_int_equal(stored, ES_OK);
}

static void events_decode_by_their_codec(void **state)
{
    conf_ctx *c = *state;
    const char *json = "{\"a\":1,\"b\":[true,null,\"x\"]}";
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_value *v = NULL;
    assert_int_equal(es_json_decode(json, strlen(json), NULL, arena, &v), ES_OK);
    const char *codecs[] = {"json", "msgpack", "cbor", "dag-cbor"};
    for (size_t i = 0; i < 4; i++) {
        es_buf b = ES_BUF_INIT;
        assert_int_equal(es_codec_encode(codecs[i], v, &b), ES_OK);
        es_event_spec e = conf_spec("doc", "d1", "written", NULL);
        e.data = b.data;
        e.data_len = b.len;
        e.codec = codecs[i];
        assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
        es_buf_free(&b);
    }
    decoded d = {arena, ES_BUF_INIT, 0};
    assert_int_equal(es_evolve(c->st, NULL, NULL, to_json, &d, NULL), ES_OK);
    es_buf_append_byte(&d.json, '\0');
    assert_string_equal((const char *)d.json.data,
                        "{\"a\":1,\"b\":[true,null,\"x\"]}|{\"a\":1,\"b\":[true,null,\"x\"]}|"
                        "{\"a\":1,\"b\":[true,null,\"x\"]}|{\"a\":1,\"b\":[true,null,\"x\"]}");
    es_buf_free(&d.json);
    /* Appends refuse what no reader can decode; an import stores events as
     * they were, so a store can still hold such events (written before
     * appends checked, or by another client): readers say why. */
    es_event_spec bad = conf_spec("doc", "d2", "written", "not json");
    bad.codec = "json";
    assert_int_equal(es_append(c->st, &bad, NULL), ES_ERR_DECODE);
    import_as_is(c->st, "written-1", "json");
    bad.codec = "no-such-codec";
    assert_int_equal(es_append(c->st, &bad, NULL), ES_ERR_NO_CODEC);
    import_as_is(c->st, "written-2", "no-such-codec");
    es_filter f;
    es_filter_init(&f);
    f.entity_id = "d2";
    d = (decoded){arena, ES_BUF_INIT, 0};
    es_read_options o = {.after_seq = 4, .up_to_seq = 5};
    assert_int_equal(es_evolve(c->st, &f, &o, to_json, &d, NULL), ES_ERR_DECODE);
    o = (es_read_options){.after_seq = 5, .up_to_seq = 0};
    assert_int_equal(es_evolve(c->st, &f, &o, to_json, &d, NULL), ES_ERR_NO_CODEC);
    es_buf_free(&d.json);
    es_arena_destroy(arena);
}

int conf_run_envelope(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(compression_is_transparent_above_the_threshold, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(encryption_round_trip_and_refusals, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_wrong_master_key_is_refused_at_open, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_store_from_before_the_check_gets_one, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(shredding_erases_data_not_history, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(upcasters_apply_on_read, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(events_decode_by_their_codec, conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("envelope", tests, keys_setup, keys_teardown);
}
