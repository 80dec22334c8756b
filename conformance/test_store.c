/* Store lifecycle and configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"

static void create_is_idempotent_and_conflicts_are_clear(void **state)
{
    conf_ctx *c = *state;
    es_store *again = NULL;
    assert_int_equal(es_store_create(c->nc, c->name, conf_store_config(), NULL, &again), ES_OK);
    es_store_destroy(again);
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.max_events = 10;
    assert_int_equal(es_store_create(c->nc, c->name, &cfg, NULL, &again), ES_ERR_EXISTS);
    assert_null(again);
    assert_non_null(strstr(es_last_error(), "different configuration"));
}

static void stream_is_configured_as_the_wire_format_says(void **state)
{
    conf_ctx *c = *state;
    char subject[128], want[128];
    snprintf(subject, sizeof subject, "$JS.API.STREAM.INFO.ES_%s", c->name);
    natsMsg *m = NULL;
    assert_int_equal(natsConnection_RequestString(&m, c->nc, subject, "", 5000), NATS_OK);
    json_error_t err;
    json_t *info = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &err);
    natsMsg_Destroy(m);
    assert_non_null(info);
    json_t *cfg = json_object_get(info, "config");
    snprintf(want, sizeof want, "ES_%s", c->name);
    assert_string_equal(json_string_value(json_object_get(cfg, "name")), want);
    snprintf(want, sizeof want, "$ES.%s.>", c->name);
    assert_int_equal(json_array_size(json_object_get(cfg, "subjects")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "subjects"), 0)),
                        want);
    assert_string_equal(json_string_value(json_object_get(cfg, "storage")), "file");
    assert_true(json_is_true(json_object_get(cfg, "allow_direct")));
    assert_true(json_is_true(json_object_get(cfg, "allow_atomic")));
    assert_true(json_is_true(json_object_get(cfg, "deny_delete")));
    assert_false(json_is_true(json_object_get(cfg, "deny_purge"))); /* wire-format.md says why */
    assert_int_equal(json_integer_value(json_object_get(cfg, "duplicate_window")), 120000000000LL);
    assert_int_equal(json_integer_value(json_object_get(cfg, "num_replicas")), conf_replicas);
    assert_int_equal(json_integer_value(json_object_get(cfg, "max_age")), 0);
    assert_int_equal(json_integer_value(json_object_get(cfg, "max_msgs")), -1);
    assert_int_equal(json_integer_value(json_object_get(cfg, "max_bytes")), -1);
    json_decref(info);
    snprintf(want, sizeof want, "ES_%s", c->name);
    assert_string_equal(es_store_stream(c->st), want);
    assert_string_equal(es_store_name(c->st), c->name);
}

static void open_update_info_delete(void **state)
{
    conf_ctx *c = *state;
    es_store *st = NULL;
    assert_int_equal(es_store_open(c->nc, c->name, NULL, &st), ES_OK);
    es_store_info info;
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    assert_int_equal(info.events, 0);
    assert_int_equal(info.config.replicas, conf_replicas);
    assert_int_equal(info.config.duplicate_window_ns, 120000000000LL);
    assert_false(info.config.tenancy);

    es_event_spec e = conf_spec("account", "a1", "opened", "{}");
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    e.event_type = "deposited";
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    assert_int_equal(info.events, 2);
    assert_int_equal(info.first_seq, 1);
    assert_int_equal(info.last_seq, 2);
    assert_int_equal(info.subjects, 2);
    assert_true(info.last_time_ns >= info.first_time_ns && info.first_time_ns > 0);

    es_store_config cfg = info.config;
    cfg.max_age_ns = 3600LL * 1000000000;
    cfg.duplicate_window_ns = 60LL * 1000000000;
    assert_int_equal(es_store_update(st, &cfg), ES_OK);
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    assert_int_equal(info.config.max_age_ns, 3600LL * 1000000000);
    assert_int_equal(info.config.duplicate_window_ns, 60LL * 1000000000);
    assert_int_equal(info.events, 2);
    cfg.tenancy = true;
    assert_int_equal(es_store_update(st, &cfg), ES_ERR_INVALID);
    cfg.tenancy = false;
    cfg.replicas = 0;
    assert_int_equal(es_store_update(st, &cfg), ES_ERR_INVALID);
    es_store_destroy(st);
}

static void missing_stores_are_not_found(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    es_store *st = NULL;
    assert_int_equal(es_store_open(c->nc, name, NULL, &st), ES_ERR_NOT_FOUND);
    assert_null(st);
    assert_non_null(strstr(es_last_error(), "does not exist"));
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_ERR_NOT_FOUND);
    assert_int_equal(es_store_create(c->nc, name, conf_store_config(), NULL, &st), ES_OK);
    es_store_destroy(st);
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_OK);
    assert_int_equal(es_store_open(c->nc, name, NULL, &st), ES_ERR_NOT_FOUND);
}

static void bad_input_is_refused_and_touches_nothing(void **state)
{
    conf_ctx *c = *state;
    es_store *st = NULL;
    const char *bad[] = {
        "", "a.b", "a*", "a>", "has space", "abcdefghijklmnopqrstuvwxyz0123456", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(es_store_create(c->nc, bad[i], conf_store_config(), NULL, &st), ES_ERR_INVALID);
        assert_int_equal(es_store_open(c->nc, bad[i], NULL, &st), ES_ERR_INVALID);
        assert_int_equal(es_store_delete(c->nc, bad[i], NULL), ES_ERR_INVALID);
    }
    assert_int_equal(es_store_create(c->nc, NULL, conf_store_config(), NULL, &st), ES_ERR_INVALID);
    assert_int_equal(es_store_create(NULL, "x", conf_store_config(), NULL, &st), ES_ERR_INVALID);
    assert_int_equal(es_store_create(c->nc, "x", NULL, NULL, NULL), ES_ERR_INVALID);
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.duplicate_window_ns = 0;
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    assert_int_equal(es_store_create(c->nc, name, &cfg, NULL, &st), ES_ERR_INVALID);
    assert_int_equal(es_store_open(c->nc, name, NULL, &st), ES_ERR_NOT_FOUND);
    es_store_options opts;
    es_store_options_init(&opts);
    opts.max_inflight = 0;
    assert_int_equal(es_store_open(c->nc, c->name, &opts, &st), ES_ERR_INVALID);
    es_store_destroy(NULL);
}

static void a_foreign_stream_is_not_a_store(void **state)
{
    conf_ctx *c = *state;
    char name[ES_STORE_NAME_MAX + 1], subject[128], body[256];
    conf_unique_name(name);
    snprintf(subject, sizeof subject, "$JS.API.STREAM.CREATE.ES_%s", name);
    snprintf(body, sizeof body, "{\"name\":\"ES_%s\",\"subjects\":[\"other.%s.>\"]}", name, name);
    natsMsg *m = NULL;
    assert_int_equal(natsConnection_RequestString(&m, c->nc, subject, body, 5000), NATS_OK);
    natsMsg_Destroy(m);
    es_store *st = NULL;
    assert_int_equal(es_store_open(c->nc, name, NULL, &st), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "not an event store"));
    /* Deleting is for stores only: the foreign stream stays. */
    assert_int_equal(es_store_delete(c->nc, name, NULL), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "not an event store"));
    snprintf(subject, sizeof subject, "$JS.API.STREAM.INFO.ES_%s", name);
    assert_int_equal(natsConnection_RequestString(&m, c->nc, subject, "", 5000), NATS_OK);
    assert_null(strstr(natsMsg_GetData(m), "\"error\""));
    natsMsg_Destroy(m);
    snprintf(subject, sizeof subject, "$JS.API.STREAM.DELETE.ES_%s", name);
    assert_int_equal(natsConnection_RequestString(&m, c->nc, subject, "", 5000), NATS_OK);
    natsMsg_Destroy(m);
}

/* A JetStream API request on the store's stream; its JSON answer (caller frees). */
static json_t *stream_request(conf_ctx *c, const char *verb, const char *body)
{
    char subject[128];
    snprintf(subject, sizeof subject, "$JS.API.STREAM.%s.ES_%s", verb, c->name);
    natsMsg *m = NULL;
    assert_int_equal(natsConnection_RequestString(&m, c->nc, subject, body, 5000), NATS_OK);
    json_t *reply = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    natsMsg_Destroy(m);
    assert_non_null(reply);
    return reply;
}

/* deny_purge is left false (docs/wire-format.md): a purge is possible, and
 * it rewrites an entity's history — its events are gone and it counts as new
 * again. An operator who sets deny_purge on the stream still has a store
 * that opens, and purges are then refused. */
static void deny_purge_is_left_to_the_operator(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("account", "a1", "opened", "{}");
    e.expect = ES_EXPECT_NEW;
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_CONFLICT);

    char body[256];
    snprintf(body, sizeof body, "{\"filter\":\"$ES.%s.account.a1.>\"}", c->name);
    json_t *r = stream_request(c, "PURGE", body);
    assert_null(json_object_get(r, "error"));
    assert_int_equal(json_integer_value(json_object_get(r, "purged")), 1);
    json_decref(r);
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK); /* "new" again: history rewritten */

    json_t *info = stream_request(c, "INFO", "");
    json_t *cfg = json_object_get(info, "config");
    json_object_set_new(cfg, "deny_purge", json_true());
    char *update = json_dumps(cfg, JSON_COMPACT);
    r = stream_request(c, "UPDATE", update);
    free(update);
    json_decref(info);
    assert_null(json_object_get(r, "error"));
    json_decref(r);
    es_store *st = NULL;
    assert_int_equal(es_store_open(c->nc, c->name, NULL, &st), ES_OK);
    /* An update changes what es manages and keeps what the operator set:
     * the server refuses to turn deny_purge off again, so sending es's own
     * whole configuration would fail (err_code 10052). */
    es_store_info si;
    assert_int_equal(es_store_info_get(st, &si), ES_OK);
    es_store_config ec = si.config;
    ec.max_age_ns = 3600 * INT64_C(1000000000);
    ec.compress_threshold = 512;
    assert_int_equal(es_store_update(st, &ec), ES_OK);
    es_store_destroy(st);
    info = stream_request(c, "INFO", "");
    cfg = json_object_get(info, "config");
    assert_true(json_is_true(json_object_get(cfg, "deny_purge")));
    assert_int_equal(json_integer_value(json_object_get(cfg, "max_age")), 3600 * INT64_C(1000000000));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(cfg, "metadata"), "es_compress_threshold")),
        "512");
    json_decref(info);
    r = stream_request(c, "PURGE", body);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "error"), "err_code")),
                     10110); /* stream purge not permitted */
    json_decref(r);
}

/* S2 (the server's block compression) is chosen at creation: the stream's
 * configuration says "compression":"s2" and the store reports it; an
 * update cannot change it either way (nats-server would accept it and keep
 * writing uncompressed blocks), while other changes keep it. */
static void s2_is_set_at_creation_only(void **state)
{
    conf_ctx *c = *state;
    es_store *plain = c->st;
    es_store_info info;
    assert_int_equal(es_store_info_get(plain, &info), ES_OK);
    assert_int_equal(info.config.storage_compression, ES_STORAGE_COMPRESSION_NONE);
    es_store_config cfg = info.config;
    cfg.storage_compression = ES_STORAGE_COMPRESSION_S2;
    assert_int_equal(es_store_update(plain, &cfg), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "set at creation only"));

    es_store_destroy(c->st);
    c->st = NULL;
    assert_int_equal(es_store_delete(c->nc, c->name, NULL), ES_OK);
    cfg = *conf_store_config();
    cfg.storage_compression = ES_STORAGE_COMPRESSION_S2;
    es_store *st = NULL;
    assert_int_equal(es_store_create(c->nc, c->name, &cfg, NULL, &st), ES_OK);
    assert_int_equal(es_store_create(c->nc, c->name, &cfg, NULL, &c->st), ES_OK); /* idempotent */
    json_t *raw = stream_request(c, "INFO", "");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(raw, "config"), "compression")), "s2");
    json_decref(raw);
    es_event_spec e = conf_spec("account", "a1", "opened", "{}");
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    assert_int_equal(info.config.storage_compression, ES_STORAGE_COMPRESSION_S2);
    assert_int_equal(info.events, 1);

    cfg = info.config;
    cfg.storage_compression = ES_STORAGE_COMPRESSION_NONE;
    assert_int_equal(es_store_update(st, &cfg), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "is s2 and is set at creation only"));
    cfg.storage_compression = ES_STORAGE_COMPRESSION_S2;
    cfg.max_age_ns = 3600 * INT64_C(1000000000);
    assert_int_equal(es_store_update(st, &cfg), ES_OK);
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    assert_int_equal(info.config.storage_compression, ES_STORAGE_COMPRESSION_S2);
    assert_int_equal(info.config.max_age_ns, 3600 * INT64_C(1000000000));
    es_store_destroy(st);

    es_storage_compression sc;
    assert_int_equal(es_storage_compression_parse("s2", &sc), ES_OK);
    assert_int_equal(sc, ES_STORAGE_COMPRESSION_S2);
    assert_string_equal(es_storage_compression_name(sc), "s2");
    assert_int_equal(es_storage_compression_parse("zstd", &sc), ES_ERR_INVALID);
}

int conf_run_store(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_is_idempotent_and_conflicts_are_clear, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(stream_is_configured_as_the_wire_format_says, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(open_update_info_delete, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(missing_stores_are_not_found, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(bad_input_is_refused_and_touches_nothing, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_foreign_stream_is_not_a_store, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(deny_purge_is_left_to_the_operator, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(s2_is_set_at_creation_only, conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
