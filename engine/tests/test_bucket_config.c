/* The KV buckets a store creates are the store's: every kind (checkpoints,
 * repos, identity, tracked, snapshots, keys, dictionaries) gets the store's
 * replica count and storage type, read back from the server (a memory store
 * made the keys and dictionaries buckets file-stored, the dictionaries one
 * also ignored the replica count); es_store_update keeps them in step. One
 * server allows R1 only (NATS_URL; skips without); the request for R3 is
 * proven in transport/tests/test_kv_replicas.c, and on a real 3-node cluster
 * when ES_TEST_CLUSTER_URL names one (tools/nats-local cluster start NAME
 * prints it; skips without): an R3 store's buckets are R3, and an R1 store's
 * buckets become R3 with es_store_update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include <es/checkpoint.h>
#include <es/dict.h>
#include <es/entity_types.h>
#include <es/snapshot.h>
#include <es/store.h>

#include "store_impl.h"
#include "transport/conn.h"
#include "transport/js.h"
#include "transport/kv.h"
#include "wire.h"
#include "nats_fixture.h"

#define MASTER_ENV "ES_TEST_BUCKET_CONFIG_MASTER"

/* The bucket's stream config as the server has it (caller decrefs). */
static json_t *bucket_config(const esi_js *js, const char *store, esi_bucket_kind kind)
{
    char bucket[ESI_KV_BUCKET_MAX], subject[256];
    assert_int_equal(esi_bucket_name(store, kind, bucket), ES_OK);
    assert_int_equal(esi_js_api_subject(js, subject, sizeof subject, "STREAM.INFO.KV_%s", bucket),
                     ES_OK);
    json_t *info = NULL;
    es_status s = esi_js_request(js, subject, NULL, 0, &info);
    if (s != ES_OK)
        fail_msg("bucket %s: %s", bucket, es_last_error());
    json_t *c = json_incref(json_object_get(info, "config"));
    json_decref(info);
    return c;
}

static void train(es_buf *dict)
{
    enum { N = 400 };
    size_t sizes[N];
    es_buf samples = ES_BUF_INIT;
    for (int i = 0; i < N; i++) {
        char ev[128];
        int k = snprintf(ev, sizeof ev, "{\"type\":\"liked\",\"subject\":\"post-%05d\",\"n\":%d}",
                         i * 7919 % 100000, i % 9);
        sizes[i] = (size_t)k;
        assert_int_equal(es_buf_append(&samples, ev, (size_t)k), ES_OK);
    }
    uint32_t id = 0;
    assert_int_equal(es_dict_train(samples.data, sizes, N, 4 << 10, dict, &id), ES_OK);
    es_buf_free(&samples);
}

/* Every bucket of the store has `replicas` and the storage type asked. */
static void check_buckets(const esi_js *js, const char *name, int replicas, const char *storage)
{
    for (int kind = 0; kind < ES_BUCKET_KINDS; kind++) {
        json_t *c = bucket_config(js, name, (esi_bucket_kind)kind);
        const char *bucket = json_string_value(json_object_get(c, "name"));
        assert_non_null(bucket);
        const char *has = json_string_value(json_object_get(c, "storage"));
        if (has == NULL || strcmp(has, storage) != 0)
            fail_msg("%s is stored on %s, the store on %s", bucket, has ? has : "?", storage);
        int n = (int)json_integer_value(json_object_get(c, "num_replicas"));
        if (n != replicas)
            fail_msg("%s has %d replicas, the store %d", bucket, n, replicas);
        json_decref(c);
    }
}

/* Opens every kind of bucket the store creates. */
static void create_every_bucket(natsConnection *nc, es_store *st, const char *name)
{
    static const es_checkpoint_bucket sets[] = {ES_CHECKPOINTS_DEFAULT, ES_CHECKPOINTS_REPOS,
                                                ES_CHECKPOINTS_IDENTITY, ES_CHECKPOINTS_TRACKED,
                                                ES_CHECKPOINTS_DEAD_LETTERS};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        es_checkpoints *cps = NULL;
        assert_int_equal(es_checkpoints_open_bucket(st, sets[i], &cps), ES_OK);
        es_checkpoints_destroy(cps);
    }
    es_entity_types *types = NULL;
    assert_int_equal(es_entity_types_open(st, &types), ES_OK);
    es_entity_types_destroy(types);
    es_snapshots *sn = NULL;
    assert_int_equal(es_snapshots_open(st, &sn), ES_OK);
    es_snapshots_destroy(sn);
    es_buf dict = ES_BUF_INIT;
    train(&dict);
    assert_int_equal(es_dict_put(nc, name, dict.data, dict.len, NULL), ES_OK);
    es_buf_free(&dict);
}

/* A store of `replicas` (in memory or on file), encrypting so that the keys
 * bucket is made when it opens, then every other bucket made. */
static es_store *store_with_buckets(natsConnection *nc, const char *name, int replicas,
                                    bool memory)
{
    setenv(MASTER_ENV, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.replicas = replicas;
    cfg.memory_storage = memory;
    cfg.encrypt = true;
    es_store_options opts;
    es_store_options_init(&opts);
    opts.master_key_env = MASTER_ENV;
    opts.timeout_ms = 15000; /* a cluster places replicas */
    es_store *st = NULL;
    es_status s = es_store_create(nc, name, &cfg, &opts, &st);
    if (s != ES_OK)
        fail_msg("creating an R%d store: %s", replicas, es_last_error());
    create_every_bucket(nc, st, name);
    return st;
}

static void buckets_follow_the_store(void **state)
{
    (void)state;
    natsConnection *nc = fixture_connect();
    REQUIRE_NATS(nc);
    char name[33];
    fixture_store_name(name);
    es_store *st = store_with_buckets(nc, name, 1, true);
    esi_js *js = NULL;
    assert_int_equal(esi_store_js(nc, NULL, &js), ES_OK);
    check_buckets(js, name, 1, "memory");
    /* an update that keeps the replica count touches no bucket and works */
    es_store_config same = st->config;
    same.max_age_ns = 3600LL * 1000000000LL;
    assert_int_equal(es_store_update(st, &same), ES_OK);
    /* the request es_store_update makes of each bucket, on one server */
    assert_int_equal(esi_store_set_bucket_replicas(js, name, 1), ES_OK);
    assert_int_equal(esi_store_set_bucket_replicas(js, "absent_store", 1), ES_OK);
    es_store_destroy(st);
    assert_int_equal(es_store_delete(nc, name, NULL), ES_OK);
    esi_js_destroy(js);
    unsetenv(MASTER_ENV);
    fixture_disconnect(nc);
}

static void buckets_follow_the_store_on_a_cluster(void **state)
{
    (void)state;
    const char *url = getenv("ES_TEST_CLUSTER_URL");
    if (url == NULL || url[0] == '\0') {
        printf("SKIP: ES_TEST_CLUSTER_URL is not set (tools/nats-local cluster start NAME)\n");
        skip();
    }
    natsConnection *nc = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    esi_js_options jo = {.timeout_ms = 15000};
    esi_conn conn;
    esi_conn_nats(nc, &conn);
    esi_js *js = NULL;
    assert_int_equal(esi_js_create(&conn, &jo, &js), ES_OK);
    char r3[33], r1[33];
    fixture_store_name(r3);
    fixture_store_name(r1);
    /* created R3: every bucket R3 */
    es_store *st = store_with_buckets(nc, r3, 3, false);
    check_buckets(js, r3, 3, "file");
    es_store_destroy(st);
    /* created R1, then updated to R3: the buckets follow */
    st = store_with_buckets(nc, r1, 1, false);
    check_buckets(js, r1, 1, "file");
    es_store_config cfg = st->config;
    cfg.replicas = 3;
    es_status s = es_store_update(st, &cfg);
    if (s != ES_OK)
        fail_msg("es_store_update to R3: %s", es_last_error());
    check_buckets(js, r1, 3, "file");
    es_store_destroy(st);
    es_store_options opts;
    es_store_options_init(&opts);
    opts.timeout_ms = 15000;
    assert_int_equal(es_store_delete(nc, r3, &opts), ES_OK);
    assert_int_equal(es_store_delete(nc, r1, &opts), ES_OK);
    esi_js_destroy(js);
    unsetenv(MASTER_ENV);
    natsConnection_Destroy(nc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_follow_the_store),
        cmocka_unit_test(buckets_follow_the_store_on_a_cluster),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close(); /* nats.c's threads, for valgrind */
    return failed;
}
