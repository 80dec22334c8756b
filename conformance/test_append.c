/* Single appends: the exact wire form, subject safety, idempotency, refusals. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *raw_header(natsMsg *m, const char *k)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, k, &v) == NATS_OK ? v : NULL;
}

static void headers_are_exactly_as_specified(void **state)
{
    conf_ctx *c = *state;
    es_meta meta[] = {{"user", "alice"}, {"source", "teller-7"}};
    es_event_spec e = conf_spec("account", "did:web:example.com", "deposited", "{\"amount\":5}");
    e.event_id = "evt-0001";
    e.codec = "json";
    e.time_ns = 1700000000123456789LL;
    e.meta = meta;
    e.meta_count = 2;
    es_append_result r;
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.last_seq, 1);
    assert_false(r.duplicate);

    natsMsg *m = conf_raw_get(c->nc, es_store_stream(c->st), 1);
    char subject[128];
    snprintf(subject, sizeof subject, "$ES.%s.account.did:web:example%%2Ecom.deposited", c->name);
    assert_string_equal(natsMsg_GetSubject(m), subject);
    assert_int_equal(natsMsg_GetDataLength(m), 12);
    assert_memory_equal(natsMsg_GetData(m), "{\"amount\":5}", 12);
    assert_string_equal(raw_header(m, "Nats-Msg-Id"), "evt-0001");
    assert_string_equal(raw_header(m, "Rita-Entity"), "account.did:web:example%2Ecom");
    assert_string_equal(raw_header(m, "Rita-Type"), "deposited");
    assert_string_equal(raw_header(m, "Rita-Time"), "2023-11-14T22:13:20.123456789Z");
    assert_string_equal(raw_header(m, "Rita-Codec"), "json");
    assert_string_equal(raw_header(m, "Rita-Meta-user"), "alice");
    assert_string_equal(raw_header(m, "Rita-Meta-source"), "teller-7");
    natsMsg_Destroy(m);
}

static void read_back_matches(void **state)
{
    conf_ctx *c = *state;
    es_meta meta[] = {{"k1", "v1"}, {"k2", "v2"}};
    es_event_spec e = conf_spec("account", "acc 1", "opened", "hello");
    e.meta = meta;
    e.meta_count = 2;
    e.time_ns = 1700000000000000001LL;
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    f.entity_id = "acc 1";
    conf_seen seen = {0};
    uint64_t last = 0;
    assert_int_equal(es_load(c->st, &f, NULL, conf_collect, &seen, &last), ES_OK);
    assert_int_equal(seen.count, 1);
    assert_int_equal(last, 1);
    assert_string_equal(seen.ids[0], "acc 1");
    assert_string_equal(seen.events[0], "opened");
    assert_string_equal(seen.data[0], "hello");
    conf_seen_free(&seen);
}

/* Ids built to break out of their subject token. Each must land on exactly
 * one entity of its own and be read back byte for byte. */
static void hostile_ids_stay_inside_their_entity(void **state)
{
    conf_ctx *c = *state;
    static const struct {
        const char *id;
        size_t len;
    } ids[] = {
        {"a.b", 0},
        {"*", 0},
        {">", 0},
        {"a.>", 0},
        {"x.*.y", 0},
        {"%2E", 0},
        {"%", 0},
        {"line\r\nPUB $ES.x 1\r\n", 0},
        {" ", 0},
        {"tab\tid", 0},
        {"nul\0inside", 10},
        {"\xff\xfe", 0},
        {"did:plc:abc/../..", 0},
        {"..", 0},
    };
    size_t n = sizeof ids / sizeof *ids;
    for (size_t i = 0; i < n; i++) {
        es_event_spec e = conf_spec("thing", ids[i].id, "made", "x");
        e.entity_id_len = ids[i].len;
        assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    }
    for (size_t i = 0; i < n; i++) {
        es_filter f;
        es_filter_init(&f);
        f.entity_type = "thing";
        f.entity_id = ids[i].id;
        f.entity_id_len = ids[i].len;
        conf_seen seen = {0};
        assert_int_equal(es_evolve(c->st, &f, NULL, conf_collect, &seen, NULL), ES_OK);
        assert_int_equal(seen.count, 1);
        assert_int_equal(seen.seqs[0], i + 1);
        size_t len = ids[i].len ? ids[i].len : strlen(ids[i].id);
        assert_memory_equal(seen.ids[0], ids[i].id, len);
        conf_seen_free(&seen);
        /* Its subject has exactly the five tokens of an event. */
        natsMsg *m = conf_raw_get(c->nc, es_store_stream(c->st), i + 1);
        int dots = 0;
        for (const char *p = natsMsg_GetSubject(m); *p; p++)
            dots += *p == '.';
        assert_int_equal(dots, 4);
        natsMsg_Destroy(m);
    }
    es_filter all;
    es_filter_init(&all);
    conf_seen seen = {0};
    assert_int_equal(es_evolve(c->st, &all, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, n);
    conf_seen_free(&seen);
}

/* The longest subject the library can write: a 32-character store name, a
 * 128-character tenant, a 317-character entity type (the longest valid
 * ATProto NSID), an id of 1024 dots (each escaped to %2E) and a 128-character
 * event type: 3,685 bytes. Single and atomic-batch appends (which publish
 * with a reply inbox) fit nats-server's 4096-byte control line, and both
 * read paths (direct get, consumer with the entity's filter) read it back. */
static void the_longest_subject_fits_the_control_line(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    for (size_t i = strlen(name); i < ES_STORE_NAME_MAX; i++)
        name[i] = 'x';
    name[ES_STORE_NAME_MAX] = '\0';
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.tenancy = true;
    cfg.memory_storage = true;
    es_store *st = NULL;
    assert_int_equal(es_store_create(c->nc, name, &cfg, NULL, &st), ES_OK);
    static char tenant[ES_NAME_MAX + 1], type[ES_ENTITY_TYPE_MAX + 2], id[ES_ID_MAX + 1],
        event[ES_NAME_MAX + 1];
    memset(tenant, 'T', ES_NAME_MAX);
    memset(type, 't', ES_ENTITY_TYPE_MAX);
    memset(id, '.', ES_ID_MAX);
    memset(event, 'e', ES_NAME_MAX);
    es_event_spec e = conf_spec(type, id, event, "x");
    e.tenant = tenant;
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    es_event_spec batch[2] = {e, e};
    assert_int_equal(es_append_batch(st, batch, 2, NULL), ES_OK);
    natsMsg *m = conf_raw_get(c->nc, es_store_stream(st), 1);
    assert_int_equal(strlen(natsMsg_GetSubject(m)), 3685);
    natsMsg_Destroy(m);
    es_filter f;
    es_filter_init(&f);
    f.tenant = tenant;
    f.entity_type = type;
    f.entity_id = id;
    conf_seen seen = {0};
    assert_int_equal(es_load(st, &f, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 3);
    assert_memory_equal(seen.ids[2], id, ES_ID_MAX);
    conf_seen_free(&seen);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(es_evolve(st, &f, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 3);
    conf_seen_free(&seen);
    type[ES_ENTITY_TYPE_MAX] = 't'; /* one over */
    assert_int_equal(es_append(st, &e, NULL), ES_ERR_INVALID);
    es_store_destroy(st);
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_OK);
}

static void single_append_is_idempotent(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("account", "a1", "opened", "1");
    e.event_id = "open-a1";
    es_append_result r;
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_int_equal(r.last_seq, 1);
    es_event_spec other = conf_spec("account", "a2", "opened", "2");
    assert_int_equal(es_append(c->st, &other, NULL), ES_OK);
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_true(r.duplicate);
    assert_int_equal(r.last_seq, 1);
    /* With an expectation too: the retry of a stored append is not a conflict. */
    e.event_id = "open-a3";
    e.entity_id = "a3";
    e.expect = ES_EXPECT_NEW;
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_int_equal(r.last_seq, 3);
    assert_int_equal(es_append(c->st, &e, &r), ES_OK);
    assert_true(r.duplicate);
    assert_int_equal(r.last_seq, 3);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 3);
}

typedef struct remake {
    conf_ctx *c;
    es_store *st;
    es_status s;
} remake;

static void *remake_store_later(void *arg)
{
    remake *m = arg;
    conf_sleep_ms(300);
    m->s = es_store_create(m->c->nc, m->c->name, conf_store_config(), NULL, &m->st);
    return NULL;
}

/* "No responders": no stream has the store's subjects (on a cluster, a
 * store just made, until its leader's interest reaches the server of this
 * connection). Nothing was stored, so an append is sent again within its
 * request timeout: it succeeds once the stream is there, and a store that
 * stays gone fails after the timeout, saying why. */
static void an_append_waits_out_no_responders(void **state)
{
    conf_ctx *c = *state;
    es_store_options o;
    es_store_options_init(&o);
    o.timeout_ms = 1500;
    es_store *st = NULL;
    assert_int_equal(es_store_open(c->nc, c->name, &o, &st), ES_OK);
    assert_int_equal(es_store_delete(c->nc, c->name, NULL), ES_OK);
    es_event_spec e = conf_spec("account", "a1", "opened", "1");
    int64_t t0 = es_monotonic_ms();
    assert_int_equal(es_append(st, &e, NULL), ES_ERR_CONNECTION);
    assert_non_null(strstr(es_last_error(), "no responders"));
    assert_true(es_monotonic_ms() - t0 >= 1000); /* asked again, not given up at once */

    remake m = {.c = c};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, remake_store_later, &m), 0);
    es_append_result r;
    es_status s = es_append(st, &e, &r);
    pthread_join(t, NULL);
    assert_int_equal(m.s, ES_OK);
    assert_int_equal(s, ES_OK);
    assert_int_equal(r.last_seq, 1);
    es_store_destroy(m.st);
    es_store_destroy(st);
}

/* Unacknowledged appends on a real server: stored in the order sent, an id
 * stored before dropped silently; the acknowledged append after them lands
 * after them (the server handled them first); an expectation refused. */
static void unacked_appends_are_stored_before_a_later_ack(void **state)
{
    conf_ctx *c = *state;
    es_event_spec ev[200];
    char ids[200][16], data[200][8];
    for (int i = 0; i < 200; i++) {
        snprintf(ids[i], sizeof ids[i], "u-%d", i);
        snprintf(data[i], sizeof data[i], "%d", i);
        ev[i] = conf_spec("account", i % 2 ? "a1" : "a2", "noted", data[i]);
        ev[i].event_id = ids[i];
    }
    assert_int_equal(es_append_unacked(c->st, ev, 200), ES_OK);
    assert_int_equal(es_append_unacked(c->st, ev + 10, 5), ES_OK); /* stored before: dropped */
    es_event_spec last = conf_spec("account", "a1", "closed", "1");
    es_append_result r;
    assert_int_equal(es_append(c->st, &last, &r), ES_OK);
    assert_int_equal(r.last_seq, 201);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 201);
    for (uint64_t seq = 1; seq <= 200; seq += 37) {
        natsMsg *m = conf_raw_get(c->nc, es_store_stream(c->st), seq);
        assert_non_null(m);
        assert_string_equal(raw_header(m, "Nats-Msg-Id"), ids[seq - 1]);
        natsMsg_Destroy(m);
    }
    ev[0].expect = ES_EXPECT_NEW; /* nobody would hear it fail */
    assert_int_equal(es_append_unacked(c->st, ev, 1), ES_ERR_INVALID);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 201);
}

static void bad_events_are_refused_before_sending(void **state)
{
    conf_ctx *c = *state;
    es_event_spec good = conf_spec("account", "a1", "opened", "x");
    es_event_spec e;
    e = good;
    e.entity_type = NULL;
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.entity_type = "a.b";
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.event_type = "";
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.event_type = "x>";
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.entity_id = "";
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.entity_id = NULL;
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.tenant = "t1";
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.event_id = "has space";
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.codec = "no.dots"; /* a codec nobody registered */
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_NO_CODEC);
    e = good;
    e.data = NULL;
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    e = good;
    e.expect = ES_EXPECT_SEQ;
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    es_meta bad_meta[] = {{"ok", "line\nbreak"}};
    e = good;
    e.meta = bad_meta;
    e.meta_count = 1;
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    es_meta bad_key[] = {{"a b", "v"}};
    e = good;
    e.meta = bad_key;
    e.meta_count = 1;
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    static char huge_id[ES_ID_MAX + 2];
    memset(huge_id, 'i', ES_ID_MAX + 1);
    e = good;
    e.entity_id = huge_id;
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
    assert_int_equal(es_append(NULL, &good, NULL), ES_ERR_INVALID);
    assert_int_equal(es_append(c->st, NULL, NULL), ES_ERR_INVALID);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);
}

static void oversized_payloads_are_refused(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.max_event_size = 2048;
    es_store *small = NULL;
    assert_int_equal(es_store_create(c->nc, name, &cfg, NULL, &small), ES_OK);
    char *big = malloc(4096);
    memset(big, 'z', 4096);
    es_event_spec e = conf_spec("blob", "b1", "put", NULL);
    e.data = big;
    e.data_len = 4096;
    assert_int_equal(es_append(small, &e, NULL), ES_ERR_TOO_LARGE);
    /* exactly the limit of data: its headers make it larger, refused by
     * the library (not by the server) */
    e.data_len = 2048;
    assert_int_equal(es_append(small, &e, NULL), ES_ERR_TOO_LARGE);
    assert_non_null(strstr(es_last_error(), "with its headers (2048 of data); the limit is 2048"));
    e.data_len = 512;
    assert_int_equal(es_append(small, &e, NULL), ES_OK);
    es_store_destroy(small);
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_OK);

    /* Beyond the server's max payload (1 MiB by default). */
    size_t over = (size_t)natsConnection_GetMaxPayload(c->nc) + 1;
    big = realloc(big, over);
    memset(big, 'z', over);
    e.data = big;
    e.data_len = over;
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_TOO_LARGE);
    e.data_len = over - 1; /* exactly the max payload, and headers */
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_TOO_LARGE);
    assert_non_null(strstr(es_last_error(), "with its headers"));
    free(big);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);
}

/* ---- payloads are checked against their codec --------------------------- */

static bool last_error_has(const char *part)
{
    return strstr(es_last_error(), part) != NULL;
}

static es_event_spec coded(const char *id, const char *codec, const void *data, size_t len)
{
    es_event_spec e = conf_spec("doc", id, "written", NULL);
    e.codec = codec;
    e.data = data;
    e.data_len = len;
    return e;
}

static int async_calls;

static void count_call(es_status s, const es_append_result *r, void *closure)
{
    (void)s;
    (void)r;
    (void)closure;
    async_calls++;
}

static void payloads_that_do_not_decode_are_refused(void **state)
{
    conf_ctx *c = *state;
    const uint8_t cbor_float[] = {0xf9, 0x3c, 0x00}; /* 1.0 as a half float */
    const uint8_t msgpack_cut[] = {0x92, 0x01};      /* an array of 2 holding 1 */
    es_event_spec e = coded("d1", "yaml", "a: 1", 4);
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_NO_CODEC);
    e = coded("d1", "json", "a: 1", 4);
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_DECODE);
    assert_true(last_error_has("event 0: its data is not valid json"));
    e = coded("d1", "json", "", 0); /* nothing is not a JSON document */
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_DECODE);
    e = coded("d1", "dag-cbor", cbor_float, sizeof cbor_float); /* DAG-CBOR has no floats */
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_DECODE);

    /* In a batch, the text names the event; nothing of the batch is sent. */
    es_event_spec b[3] = {coded("d1", "json", "{\"a\":1}", 7),
                          coded("d2", "cbor", cbor_float, sizeof cbor_float),
                          coded("d3", "msgpack", msgpack_cut, sizeof msgpack_cut)};
    assert_int_equal(es_append_batch(c->st, b, 3, NULL), ES_ERR_DECODE);
    assert_true(last_error_has("event 2: its data is not valid msgpack"));
    async_calls = 0;
    assert_int_equal(es_append_batch_async(c->st, b, 3, count_call, NULL), ES_ERR_DECODE);
    assert_int_equal(es_append_batch_try_async(c->st, b, 3, count_call, NULL), ES_ERR_DECODE);
    assert_int_equal(es_append_flush(c->st, 5000), ES_OK);
    assert_int_equal(async_calls, 0);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 0);

    /* What decodes is stored: the first two, and binary takes any bytes. */
    es_event_spec ok[3] = {b[0], b[1], coded("d4", NULL, "a: 1", 4)};
    assert_int_equal(es_append_batch(c->st, ok, 3, NULL), ES_OK);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 3);
}

static void payload_validation_can_be_skipped_but_not_the_codec_name(void **state)
{
    conf_ctx *c = *state;
    es_store_options o;
    es_store_options_init(&o);
    o.skip_payload_validation = true;
    es_store *fast = NULL;
    assert_int_equal(es_store_open(c->nc, c->name, &o, &fast), ES_OK);
    es_event_spec e = coded("d1", "json", "a: 1", 4);
    assert_int_equal(es_append(fast, &e, NULL), ES_OK); /* the caller's word is taken */
    e.codec = "yaml";
    assert_int_equal(es_append(fast, &e, NULL), ES_ERR_NO_CODEC);
    es_store_destroy(fast);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), 1);
}

int conf_run_append(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(headers_are_exactly_as_specified, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(read_back_matches, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(hostile_ids_stay_inside_their_entity, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(the_longest_subject_fits_the_control_line, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(single_append_is_idempotent, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(an_append_waits_out_no_responders, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(unacked_appends_are_stored_before_a_later_ack, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(bad_events_are_refused_before_sending, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(oversized_payloads_are_refused, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(payloads_that_do_not_decode_are_refused, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(payload_validation_can_be_skipped_but_not_the_codec_name,
                                        conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("append", tests, NULL, NULL);
}
