/* Tenant handles (es_store_tenant): every call through one is confined to
 * its tenant; and a NATS user whose permissions are a tenant's (docs/api.md,
 * "Tenants") reads and writes that tenant and is refused any other, through
 * a tenant handle and through plain calls alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static void append_to(es_store *st, const char *tenant, const char *id, const char *data)
{
    es_event_spec e = conf_spec("account", id, "opened", data);
    e.tenant = tenant;
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
}

static es_filter accounts(const char *tenant)
{
    es_filter f;
    es_filter_init(&f);
    f.tenant = tenant;
    f.entity_type = "account";
    return f;
}

/* The payloads `st` reads with `f`, joined with ','. */
static char *read_all(es_store *st, const es_filter *f)
{
    conf_seen seen = {0};
    assert_int_equal(es_evolve(st, f, NULL, conf_collect, &seen, NULL), ES_OK);
    char *out = calloc(1, 1024);
    for (size_t i = 0; i < seen.count; i++) {
        strcat(out, i ? "," : "");
        strcat(out, seen.data[i]);
    }
    conf_seen_free(&seen);
    return out;
}

static void assert_reads(es_store *st, const es_filter *f, const char *want)
{
    char *got = read_all(st, f);
    assert_string_equal(got, want);
    free(got);
}

/* Watches `st` with `f` until caught up, into *seen, and stops: the
 * status of the start. */
static es_status watch_history(es_store *st, es_filter f, conf_seen *seen)
{
    es_watch_options wo;
    es_watch_options_init(&wo);
    wo.filter = f;
    wo.on_event = conf_collect;
    wo.closure = seen;
    es_watch *w = NULL;
    es_status s = es_watch_start(st, &wo, &w);
    if (s != ES_OK)
        assert_null(w);
    es_watch_destroy(w);
    return s;
}

/* Counts the subjects it is shown, failing on any not of tenant acme. */
static es_status count_acme(const es_subject_count *sc, void *closure)
{
    if (sc->tenant == NULL || strcmp(sc->tenant, "acme") != 0)
        return ES_ERR_INVALID;
    (*(size_t *)closure)++;
    return ES_OK;
}

static void a_tenant_handle_is_confined_to_its_tenant(void **state)
{
    conf_ctx *c = *state;
    append_to(c->st, "globex", "g1", "globex-1");
    es_store *acme = NULL;
    assert_int_equal(es_store_tenant(c->st, "acme", &acme), ES_OK);
    assert_string_equal(es_store_tenant_name(acme), "acme");
    assert_null(es_store_tenant_name(c->st));
    assert_string_equal(es_store_name(acme), es_store_name(c->st));

    /* Appends fill the tenant in; the handle's own is accepted too. */
    append_to(acme, NULL, "a1", "acme-1");
    append_to(acme, "acme", "a1", "acme-2");
    es_filter only_acme = accounts("acme");
    assert_reads(c->st, &only_acme, "acme-1,acme-2");
    /* Reads see the tenant alone, whatever the filter leaves open. */
    assert_reads(acme, NULL, "acme-1,acme-2");
    es_filter any = accounts(NULL);
    assert_reads(acme, &any, "acme-1,acme-2");
    es_filter entity = accounts(NULL);
    entity.entity_id = "a1";
    conf_seen seen = {0};
    assert_int_equal(es_load(acme, &entity, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 2);
    conf_seen_free(&seen);
    size_t subjects = 0;
    assert_int_equal(es_store_subject_counts(acme, NULL, count_acme, &subjects, NULL), ES_OK);
    assert_int_equal(subjects, 1); /* account.a1.opened of acme; globex's is not shown */

    /* Another tenant is refused before anything is sent. */
    uint64_t msgs = conf_stream_msgs(c->nc, es_store_stream(c->st));
    es_event_spec e = conf_spec("account", "g1", "opened", "intruder");
    e.tenant = "globex";
    assert_int_equal(es_append(acme, &e, NULL), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "confined to tenant 'acme'"));
    assert_int_equal(es_append_batch(acme, &e, 1, NULL), ES_ERR_INVALID);
    es_filter globex = accounts("globex");
    assert_int_equal(es_evolve(acme, &globex, NULL, conf_collect, &seen, NULL), ES_ERR_INVALID);
    globex.entity_id = "g1";
    assert_int_equal(es_load(acme, &globex, NULL, conf_collect, &seen, NULL), ES_ERR_INVALID);
    assert_int_equal(watch_history(acme, accounts("globex"), &seen), ES_ERR_INVALID);
    const char *payload = "x";
    es_raw_event raw = {.subject = "globex.account.g1.opened", .payload = payload, .payload_len = 1};
    assert_int_equal(es_import_async(acme, &raw, NULL, NULL), ES_ERR_INVALID);
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.tenancy = true;
    assert_int_equal(es_store_update(acme, &cfg), ES_ERR_INVALID);
    assert_int_equal(seen.count, 0);
    assert_int_equal(conf_stream_msgs(c->nc, es_store_stream(c->st)), msgs);

    /* A watch through the handle sees its tenant's events only. */
    assert_int_equal(watch_history(acme, accounts(NULL), &seen), ES_OK);
    assert_int_equal(seen.count, 2);
    conf_seen_free(&seen);

    /* Re-scoping replaces the tenant; destroying a view leaves the store. */
    es_store *globex_h = NULL;
    assert_int_equal(es_store_tenant(acme, "globex", &globex_h), ES_OK);
    assert_string_equal(es_store_tenant_name(globex_h), "globex");
    es_store_destroy(acme);
    assert_reads(globex_h, NULL, "globex-1");
    es_store_destroy(globex_h);
    assert_reads(c->st, &any, "globex-1,acme-1,acme-2");
}

static void only_stores_with_tenancy_have_tenants(void **state)
{
    conf_ctx *c = *state;
    es_store *t = NULL;
    assert_int_equal(es_store_tenant(c->st, "acme", &t), ES_ERR_INVALID);
    assert_null(t);
    assert_int_equal(es_store_tenant(NULL, "acme", &t), ES_ERR_INVALID);
    es_store_destroy(NULL);
}

static void tenant_names_are_names(void **state)
{
    conf_ctx *c = *state;
    es_store *t = NULL;
    assert_int_equal(es_store_tenant(c->st, "a.b", &t), ES_ERR_INVALID);
    assert_int_equal(es_store_tenant(c->st, "*", &t), ES_ERR_INVALID);
    assert_int_equal(es_store_tenant(c->st, "", &t), ES_ERR_INVALID);
    assert_int_equal(es_store_tenant(c->st, NULL, &t), ES_ERR_INVALID);
    assert_null(t);
}

/* ---- a NATS user confined to one tenant -------------------------------- */

/* The permissions docs/api.md ("Tenants") lists for tenant T of store S. */
static void write_user(char *out, size_t size, const char *store, const char *tenant)
{
    snprintf(out, size,
             "{user: %s, password: %s, permissions: {\n"
             "  publish: {allow: [\"$ES.%s.%s.>\", \"$JS.API.STREAM.INFO.ES_%s\",\n"
             "    \"$JS.API.CONSUMER.CREATE.ES_%s.*.$ES.%s.%s.>\",\n"
             "    \"$JS.API.CONSUMER.DELETE.ES_%s.*\", \"$JS.FC.ES_%s.>\"]}\n"
             "  subscribe: {allow: [\"_INBOX.>\"]}}}\n",
             tenant, tenant, store, tenant, store, store, store, tenant, store, store);
}

/* 20 MiB of events appended in atomic batches, then read back: more than a
 * push consumer sends (16 MiB) before it asks for flow control. */
#define BIG_ROUNDS 20

static void big_read(es_store *t)
{
    static char data[1024];
    memset(data, 'x', sizeof data);
    es_event_spec *batch = calloc(1000, sizeof *batch);
    for (int round = 0; round < BIG_ROUNDS; round++) {
        for (int i = 0; i < 1000; i++) {
            batch[i] = conf_spec("log", "l1", "line", NULL);
            batch[i].data = data;
            batch[i].data_len = sizeof data;
        }
        assert_int_equal(es_append_batch(t, batch, 1000, NULL), ES_OK);
    }
    free(batch);
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "log";
    uint64_t last = 0;
    conf_seen seen = {0};
    assert_int_equal(es_evolve(t, &f, NULL, conf_collect, &seen, &last), ES_OK);
    assert_int_equal(seen.count, BIG_ROUNDS * 1000);
    conf_seen_free(&seen);
}

static es_status no_entity(const es_entity_info *e, void *closure)
{
    (void)e, (void)closure;
    fail_msg("a confined user listed an entity");
    return ES_OK;
}

static natsConnection *connect_as(const conf_server *srv, const char *user)
{
    char url[192];
    snprintf(url, sizeof url, "nats://%s:%s@%s", user, user, conf_server_url(srv) + 7);
    return conf_connect(url);
}

/* A user who may look (JetStream's info requests) but not write. */
#define LOOKER                                                                                     \
    "  {user: looker, password: looker, permissions: {\n"                                          \
    "    publish: {allow: [\"$JS.API.INFO\", \"$JS.API.STREAM.INFO.>\"]}\n"                        \
    "    subscribe: {allow: [\"_INBOX.>\"]}}}\n"

/* A server of the suite's own with an administrator, the users of tenants
 * acme and globex of one store, and a looker; torn down even when a test
 * fails. */
typedef struct users_server {
    char store[ES_STORE_NAME_MAX + 1];
    conf_server *srv; /* NULL without --nats-server */
} users_server;

static int users_setup(void **state)
{
    users_server *u = calloc(1, sizeof *u);
    char acme[1024], globex[1024], config[3072];
    conf_unique_name(u->store);
    write_user(acme, sizeof acme, u->store, "acme");
    write_user(globex, sizeof globex, u->store, "globex");
    snprintf(config, sizeof config,
             "accounts { APP { jetstream: enabled, users: [\n"
             "  {user: admin, password: admin}\n%s%s%s] } }\n",
             acme, globex, LOOKER);
    u->srv = conf_server_start_config(config, "admin", "admin");
    *state = u;
    return 0;
}

static int users_teardown(void **state)
{
    users_server *u = *state;
    conf_server_destroy(u->srv);
    free(u);
    return 0;
}

static int64_t ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The admin's store with its checkpoints bucket made, on the suite's own
 * single server (whatever --replicas says): a confined user only opens it. */
typedef struct admin_store {
    natsConnection *nc;
    es_store *st;
    es_checkpoints *made;
} admin_store;

static admin_store admin_store_open(const users_server *u)
{
    admin_store a = {connect_as(u->srv, "admin"), NULL, NULL};
    es_store_config cfg;
    es_store_config_init(&cfg);
    assert_int_equal(es_store_create(a.nc, u->store, &cfg, NULL, &a.st), ES_OK);
    assert_int_equal(es_checkpoints_open(a.st, &a.made), ES_OK);
    return a;
}

static void admin_store_close(const users_server *u, admin_store *a)
{
    es_checkpoints_destroy(a->made);
    es_store_destroy(a->st);
    es_store_delete(a->nc, u->store, NULL);
    natsConnection_Destroy(a->nc);
}

/* A request whose publish the server refuses gets no answer, only an
 * asynchronous error: a denied KV write and a denied JetStream API request
 * end at once with ES_ERR_PERMISSION naming the subject, not at their
 * timeout (before, both took the store's whole request timeout). */
static void a_denied_request_fails_at_once(void **state)
{
    users_server *u = *state;
    if (u->srv == NULL)
        skip(); /* needs a server of the suite's own (--nats-server) */
    admin_store a = admin_store_open(u);

    natsConnection *nc = connect_as(u->srv, "looker");
    es_store_options o;
    es_store_options_init(&o);
    o.timeout_ms = 3000;
    es_store *st = NULL;
    assert_int_equal(es_store_open(nc, u->store, &o, &st), ES_OK);
    es_checkpoints *cps = NULL;
    assert_int_equal(es_checkpoints_open(st, &cps), ES_OK);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(es_checkpoint_set(cps, "reader", 7, NULL, ES_CHECKPOINT_ANY, NULL),
                     ES_ERR_PERMISSION);
    int64_t kv_ms = ms_since(&t0);
    assert_non_null(strstr(es_last_error(), "Permissions Violation for Publish to \"$KV."));

    es_projection_config pc;
    es_projection_config_init(&pc);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(es_projection_create(st, "denied", &pc), ES_ERR_PERMISSION);
    int64_t api_ms = ms_since(&t0);
    assert_non_null(strstr(es_last_error(), "Permissions Violation for Publish to \"$JS.API."));
    print_message("denied KV write: %lld ms, denied API request: %lld ms\n", (long long)kv_ms,
                  (long long)api_ms);
    assert_true(kv_ms < 1000);
    assert_true(api_ms < 1000);

    es_checkpoints_destroy(cps);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
    admin_store_close(u, &a);
}

/* Opening a KV bucket (checkpoints) asks for its stream's info, which a
 * tenant's user is not granted: refused at once with ES_ERR_PERMISSION
 * naming the subject, through a connection of es_connect's and through
 * one made with nats.c alone (no error handler of es's), not at the
 * store's timeout (before, both waited the whole 3 s and said "timeout"). */
static void opening_a_refused_bucket_fails_at_once(void **state)
{
    users_server *u = *state;
    if (u->srv == NULL)
        skip(); /* needs a server of the suite's own (--nats-server) */
    admin_store a = admin_store_open(u);

    char url[192];
    snprintf(url, sizeof url, "nats://acme:acme@%s", conf_server_url(u->srv) + 7);
    natsConnection *plain = NULL;
    assert_int_equal(natsConnection_ConnectTo(&plain, url), NATS_OK);
    natsConnection *conns[2] = {connect_as(u->srv, "acme"), plain};
    for (int i = 0; i < 2; i++) {
        es_store_options o;
        es_store_options_init(&o);
        o.timeout_ms = 3000;
        es_store *st = NULL;
        assert_int_equal(es_store_open(conns[i], u->store, &o, &st), ES_OK);
        es_checkpoints *cps = NULL;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(es_checkpoints_open(st, &cps), ES_ERR_PERMISSION);
        int64_t ms = ms_since(&t0);
        print_message("refused bucket opening (%s): %lld ms\n",
                      i ? "nats.c's connection" : "es_connect's", (long long)ms);
        assert_null(cps);
        assert_non_null(strstr(es_last_error(),
                               "Permissions Violation for Publish to \"$JS.API.STREAM.INFO.KV_"));
        assert_true(ms < 1000);
        es_store_destroy(st);
        natsConnection_Destroy(conns[i]);
    }
    admin_store_close(u, &a);
}

static void a_tenant_user_is_refused_other_tenants(void **state)
{
    users_server *u = *state;
    if (u->srv == NULL)
        skip(); /* needs a server of the suite's own (--nats-server) */
    const char *store = u->store;
    conf_server *srv = u->srv;
    natsConnection *admin_nc = connect_as(srv, "admin");
    es_store_config cfg;
    es_store_config_init(&cfg); /* the suite's own single server */
    cfg.tenancy = true;
    es_store *admin = NULL;
    assert_int_equal(es_store_create(admin_nc, store, &cfg, NULL, &admin), ES_OK);
    append_to(admin, "globex", "g1", "globex-1");

    /* acme's user: its own tenant, through a tenant handle. */
    natsConnection *nc = connect_as(srv, "acme");
    es_store_options o;
    es_store_options_init(&o);
    /* The default timeout: denials are learned at once (a_denied_request_...),
     * and big_read's 1 MiB batches took over 1 s to commit under CI's load. */
    es_store *st = NULL, *t = NULL;
    assert_int_equal(es_store_open(nc, store, &o, &st), ES_OK);
    assert_int_equal(es_store_tenant(st, "acme", &t), ES_OK);
    append_to(t, NULL, "a1", "acme-1");
    assert_reads(t, NULL, "acme-1");
    es_filter one = accounts(NULL);
    one.entity_id = "a1";
    assert_reads(t, &one, "acme-1");
    /* ... and through plain calls naming it. */
    append_to(st, "acme", "a2", "acme-2");
    es_filter own = accounts("acme");
    assert_reads(st, &own, "acme-1,acme-2");
    /* A watch, and a read long enough for flow control ($JS.FC). */
    conf_seen watched = {0};
    es_filter every;
    es_filter_init(&every);
    assert_int_equal(watch_history(t, every, &watched), ES_OK);
    assert_int_equal(watched.count, 2);
    conf_seen_free(&watched);
    big_read(t);

    /* Another tenant: the server refuses the publish, the consumer, and a
     * consumer over every tenant. */
    es_event_spec e = conf_spec("account", "g1", "opened", "intruder");
    e.tenant = "globex";
    assert_int_equal(es_append(st, &e, NULL), ES_ERR_PERMISSION);
    assert_non_null(strstr(es_last_error(), "Permissions Violation"));
    conf_seen seen = {0};
    es_filter theirs = accounts("globex");
    assert_int_equal(es_evolve(st, &theirs, NULL, conf_collect, &seen, NULL), ES_ERR_PERMISSION);
    es_filter everyone = accounts(NULL);
    assert_int_equal(es_evolve(st, &everyone, NULL, conf_collect, &seen, NULL),
                     ES_ERR_PERMISSION);
    /* Direct gets carry their subject in the request body, beyond any
     * permission: a tenant's user is not given them (docs/api.md). */
    theirs.entity_id = "g1";
    assert_int_equal(es_load(st, &theirs, NULL, conf_collect, &seen, NULL), ES_ERR_PERMISSION);
    assert_int_equal(watch_history(st, accounts("globex"), &seen), ES_ERR_PERMISSION);
    assert_int_equal(seen.count, 0);
    /* Through the tenant handle, the other tenant never reaches the server. */
    assert_int_equal(es_append(t, &e, NULL), ES_ERR_INVALID);

    /* Opened `confined`, the same user loads its own entities (through a
     * consumer whose filter is in the API subject), still not another's,
     * and an atomic batch sent again is found stored, with its sequences. */
    es_store_options co = o;
    co.confined = true;
    es_store *cst = NULL, *ct = NULL;
    assert_int_equal(es_store_open(nc, store, &co, &cst), ES_OK);
    assert_int_equal(es_store_tenant(cst, "acme", &ct), ES_OK);
    conf_seen loaded = {0};
    es_filter a1 = accounts(NULL);
    a1.entity_id = "a1";
    assert_int_equal(es_load(ct, &a1, NULL, conf_collect, &loaded, NULL), ES_OK);
    assert_int_equal(loaded.count, 1);
    assert_string_equal(loaded.data[0], "acme-1");
    conf_seen_free(&loaded);
    assert_int_equal(es_load(cst, &theirs, NULL, conf_collect, &loaded, NULL), ES_ERR_PERMISSION);
    assert_int_equal(loaded.count, 0);
    es_event_spec twice[2] = {conf_spec("account", "a3", "opened", "acme-3"),
                              conf_spec("account", "a3", "funded", "acme-3b")};
    twice[0].event_id = "a3-opened";
    twice[1].event_id = "a3-funded";
    es_append_result first, again;
    assert_int_equal(es_append_batch(ct, twice, 2, &first), ES_OK);
    assert_int_equal(es_append_batch(ct, twice, 2, &again), ES_OK);
    assert_true(again.duplicate);
    assert_int_equal(again.first_seq, first.first_seq);
    assert_int_equal(again.last_seq, first.last_seq);
    assert_int_equal(es_store_entities(cst, NULL, no_entity, NULL), ES_ERR_UNSUPPORTED);
    es_store_destroy(ct);
    es_store_destroy(cst);

    /* What the administrator sees: nothing of acme's in globex. */
    es_filter g = accounts("globex");
    assert_reads(admin, &g, "globex-1");
    es_filter a = accounts("acme");
    assert_reads(admin, &a, "acme-1,acme-2,acme-3,acme-3b");

    es_store_destroy(t);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
    es_store_destroy(admin);
    es_store_delete(admin_nc, store, NULL);
    natsConnection_Destroy(admin_nc);
}

int conf_run_tenant(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_tenant_handle_is_confined_to_its_tenant,
                                        conf_setup_tenancy, conf_teardown),
        cmocka_unit_test_setup_teardown(only_stores_with_tenancy_have_tenants, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(tenant_names_are_names, conf_setup_tenancy,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_tenant_user_is_refused_other_tenants, users_setup,
                                        users_teardown),
        cmocka_unit_test_setup_teardown(a_denied_request_fails_at_once, users_setup,
                                        users_teardown),
        cmocka_unit_test_setup_teardown(opening_a_refused_bucket_fails_at_once, users_setup,
                                        users_teardown),
    };
    return cmocka_run_group_tests_name("tenant", tests, NULL, NULL);
}
