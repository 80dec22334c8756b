/* A store behind a JetStream domain: every request of the handle goes to
 * $JS.<domain>.API (es_store_options.js_domain), or to an API prefix given
 * whole (js_api_prefix). Needs a server of the suite's own (--nats-server),
 * configured with the domain; skipped without one. */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DOMAIN "hub"

typedef struct domain_ctx {
    conf_server *server;
    natsConnection *nc;
} domain_ctx;

static int setup(void **state)
{
    domain_ctx *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->server = conf_server_start_in(DOMAIN);
    if (d->server != NULL)
        d->nc = conf_connect(conf_server_url(d->server));
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    domain_ctx *d = *state;
    if (d->nc != NULL)
        natsConnection_Destroy(d->nc);
    conf_server_destroy(d->server);
    free(d);
    return 0;
}

static void require_server(const domain_ctx *d)
{
    if (d->server == NULL) {
        printf("SKIP: no nats-server of the suite's own (pass --nats-server or set "
               "ES_NATS_SERVER)\n");
        skip();
    }
}

static es_status count(const es_event *ev, void *closure)
{
    (void)ev;
    ++*(size_t *)closure;
    return ES_OK;
}

/* Appends, loads, replays, a checkpoint, a snapshot and an encrypted event's
 * key: each path (API requests, publishes, ordered and pull consumers,
 * direct gets, KV) through the store's options. */
static void use_store(natsConnection *nc, const es_store_options *opts, const char *key_file)
{
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.encrypt = key_file != NULL;
    es_store *st = NULL;
    assert_int_equal(es_store_create(nc, name, &cfg, opts, &st), ES_OK);

    es_event_spec e[3];
    for (int i = 0; i < 3; i++)
        e[i] = conf_spec("account", "a1", "deposited", "{\"amount\":1}");
    e[0].expect = ES_EXPECT_NEW;
    es_append_result r;
    assert_int_equal(es_append_batch(st, e, 3, &r), ES_OK);
    assert_int_equal(r.count, 3);

    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    f.entity_id = "a1";
    size_t loaded = 0, replayed = 0;
    assert_int_equal(es_load(st, &f, NULL, count, &loaded, NULL), ES_OK);
    assert_int_equal(es_evolve(st, &f, NULL, count, &replayed, NULL), ES_OK);
    assert_int_equal(loaded, 3);
    assert_int_equal(replayed, 3);

    es_checkpoints *cps = NULL;
    es_checkpoint cp;
    assert_int_equal(es_checkpoints_open(st, &cps), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "reader", 3, NULL, ES_CHECKPOINT_NEW, NULL), ES_OK);
    assert_int_equal(es_checkpoint_get(cps, "reader", &cp), ES_OK);
    assert_int_equal(cp.position, 3);
    es_checkpoint_clear(&cp);
    es_checkpoints_destroy(cps);

    es_snapshots *sn = NULL;
    es_snapshot snap;
    assert_int_equal(es_snapshots_open(st, &sn), ES_OK);
    assert_int_equal(es_snapshot_save(sn, &f, 3, 1, "{\"balance\":3}", 13), ES_OK);
    assert_int_equal(es_snapshot_get(sn, &f, &snap), ES_OK);
    assert_int_equal(snap.seq, 3);
    es_snapshot_clear(&snap);
    es_snapshots_destroy(sn);
    es_store_destroy(st);

    if (key_file != NULL) { /* read back through a handle with the key */
        es_store_options ko = *opts;
        ko.master_key_file = key_file;
        assert_int_equal(es_store_open(nc, name, &ko, &st), ES_OK);
        loaded = 0;
        assert_int_equal(es_load(st, &f, NULL, count, &loaded, NULL), ES_OK);
        assert_int_equal(loaded, 3);
        es_store_destroy(st);
    }
    assert_int_equal(es_store_delete(nc, name, opts), ES_OK);
    assert_int_equal(es_store_open(nc, name, opts, &st), ES_ERR_NOT_FOUND);
}

static void a_store_through_its_domain(void **state)
{
    domain_ctx *d = *state;
    require_server(d);
    es_store_options o;
    es_store_options_init(&o);
    o.js_domain = DOMAIN;
    use_store(d->nc, &o, NULL);
}

static void a_store_through_an_api_prefix(void **state)
{
    domain_ctx *d = *state;
    require_server(d);
    es_store_options o;
    es_store_options_init(&o);
    o.js_api_prefix = "$JS." DOMAIN ".API";
    use_store(d->nc, &o, NULL);
}

static void an_encrypted_store_through_its_domain(void **state)
{
    domain_ctx *d = *state;
    require_server(d);
    char key[] = "/tmp/es-conformance-key-XXXXXX";
    int fd = mkstemp(key);
    assert_true(fd >= 0);
    static const char hex[] = "000102030405060708090a0b0c0d0e0f"
                              "101112131415161718191a1b1c1d1e1f";
    assert_int_equal(write(fd, hex, sizeof hex - 1), (ssize_t)(sizeof hex - 1));
    close(fd);
    es_store_options o;
    es_store_options_init(&o);
    o.js_domain = DOMAIN;
    o.master_key_file = key;
    use_store(d->nc, &o, key);
    unlink(key);
}

/* A domain the server does not have: refused at once, nothing created. */
static void another_domain_is_not_reached(void **state)
{
    domain_ctx *d = *state;
    require_server(d);
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    es_store_options o;
    es_store_options_init(&o);
    o.js_domain = "elsewhere";
    es_store *st = NULL;
    assert_int_equal(es_store_create(d->nc, name, NULL, &o, &st), ES_ERR_UNSUPPORTED);
    assert_null(st);
    assert_non_null(strstr(es_last_error(), "$JS.elsewhere.API"));
    assert_int_equal(es_store_open(d->nc, name, NULL, &st), ES_ERR_NOT_FOUND);
    /* Bad options are refused before any request. */
    o.js_domain = "two.tokens";
    assert_int_equal(es_store_create(d->nc, name, NULL, &o, &st), ES_ERR_INVALID);
    o.js_domain = DOMAIN;
    o.js_api_prefix = "$JS." DOMAIN ".API";
    assert_int_equal(es_store_create(d->nc, name, NULL, &o, &st), ES_ERR_INVALID);
}

int conf_run_domain(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_store_through_its_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(a_store_through_an_api_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(an_encrypted_store_through_its_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(another_domain_is_not_reached, setup, teardown),
    };
    return cmocka_run_group_tests_name("domain", tests, NULL, NULL);
}
