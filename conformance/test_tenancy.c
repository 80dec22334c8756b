/* Tenancy: tenants never see each other's events. */
#include <string.h>

#include "harness.h"

static void tenants_are_isolated(void **state)
{
    conf_ctx *c = *state;
    assert_true(es_store_tenancy(c->st));
    es_event_spec e = conf_spec("account", "a1", "opened", "t1");
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID); /* no tenant */
    e.tenant = "t1";
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    es_event_spec e2 = conf_spec("account", "a1", "opened", "t2");
    e2.tenant = "t2";
    e2.expect = ES_EXPECT_NEW; /* same type and id, other tenant: a new entity */
    assert_int_equal(es_append(c->st, &e2, NULL), ES_OK);
    e2.tenant = "bad.tenant";
    assert_int_equal(es_append(c->st, &e2, NULL), ES_ERR_INVALID);

    es_filter f;
    es_filter_init(&f);
    f.tenant = "t1";
    f.entity_type = "account";
    f.entity_id = "a1";
    conf_seen seen = {0};
    assert_int_equal(es_load(c->st, &f, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 1);
    assert_string_equal(seen.data[0], "t1");
    conf_seen_free(&seen);
    f.tenant = "t2";
    assert_int_equal(es_evolve(c->st, &f, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 1);
    assert_string_equal(seen.data[0], "t2");
    conf_seen_free(&seen);
    f.tenant = NULL; /* every tenant */
    assert_int_equal(es_evolve(c->st, &f, NULL, conf_collect, &seen, NULL), ES_OK);
    assert_int_equal(seen.count, 2);
    conf_seen_free(&seen);
}

static es_status check_tenant(const es_event *ev, void *closure)
{
    (void)closure;
    return strcmp(es_event_tenant(ev), "t9") == 0 &&
                   strcmp(es_event_entity_type(ev), "account") == 0
               ? ES_OK
               : ES_ERR_DECODE;
}

static void events_know_their_tenant(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("account", "a.1", "opened", "x");
    e.tenant = "t9";
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    assert_int_equal(es_evolve(c->st, NULL, NULL, check_tenant, NULL, NULL), ES_OK);
}

static void a_plain_store_refuses_tenants(void **state)
{
    conf_ctx *c = *state;
    es_filter f;
    es_filter_init(&f);
    f.tenant = "t1";
    conf_seen seen = {0};
    assert_int_equal(es_evolve(c->st, &f, NULL, conf_collect, &seen, NULL), ES_ERR_INVALID);
    es_event_spec e = conf_spec("account", "a1", "opened", "x");
    e.tenant = "t1";
    assert_int_equal(es_append(c->st, &e, NULL), ES_ERR_INVALID);
}

int conf_run_tenancy(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tenants_are_isolated, conf_setup_tenancy, conf_teardown),
        cmocka_unit_test_setup_teardown(events_know_their_tenant, conf_setup_tenancy,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_plain_store_refuses_tenants, conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("tenancy", tests, NULL, NULL);
}
