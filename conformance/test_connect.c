/* es_connect against a server of the suite's own: es_connect_options.on_change
 * tells when the server goes away and when the connection is back (with the
 * URL), and nothing when the connection is closed on purpose; requests are
 * answered again after the reconnect (transport/inbox.h). Skipped without
 * --nats-server. */
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

typedef struct changes {
    atomic_int lost, restored, other;
    char url[128];
} changes;

static void on_change(es_connection_change change, const char *url, void *closure)
{
    changes *c = closure;
    if (change == ES_CONNECTION_LOST) {
        atomic_fetch_add(&c->lost, 1);
    } else if (change == ES_CONNECTION_RESTORED) {
        snprintf(c->url, sizeof c->url, "%s", url ? url : "");
        atomic_fetch_add(&c->restored, 1);
    } else {
        atomic_fetch_add(&c->other, 1);
    }
}

static bool wait_until(atomic_int *n, int at_least, int64_t timeout_ms)
{
    for (int64_t waited = 0; atomic_load(n) < at_least && waited < timeout_ms; waited += 20)
        conf_sleep_ms(20);
    return atomic_load(n) >= at_least;
}

static void reports_lost_and_restored(void **state)
{
    (void)state;
    conf_server *srv = conf_server_start();
    if (srv == NULL) {
        print_message("skipped: set ES_NATS_SERVER or --nats-server to run restart tests\n");
        skip();
    }
    changes c;
    memset(&c, 0, sizeof c);
    es_connect_options o;
    es_connect_options_init(&o);
    o.servers = conf_server_url(srv);
    o.max_reconnect = -1;
    o.reconnect_wait_ms = 100;
    o.on_change = on_change;
    o.closure = &c;
    natsConnection *nc = NULL;
    assert_int_equal(es_connect(&o, &nc), ES_OK);
    assert_int_equal(atomic_load(&c.lost) + atomic_load(&c.restored), 0);
    /* a request (a KV write) before: it makes the connection's request inbox */
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    es_store *st = NULL;
    assert_int_equal(es_store_create(nc, name, conf_store_config(), NULL, &st), ES_OK);
    es_checkpoints *cps = NULL;
    assert_int_equal(es_checkpoints_open(st, &cps), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "reader", 1, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);

    conf_server_kill(srv);
    assert_true(wait_until(&c.lost, 1, 10000));
    assert_int_equal(atomic_load(&c.restored), 0);
    conf_server_restart(srv);
    assert_true(wait_until(&c.restored, 1, 15000));
    assert_non_null(strstr(conf_server_url(srv), c.url)); /* the server, or a cluster's node */
    assert_int_equal(atomic_load(&c.lost), 1);

    /* nats.c made the inbox's subscriptions again: requests are answered
     * once JetStream has recovered its streams */
    es_status s = ES_ERR_TIMEOUT;
    for (int i = 0; i < 50 && s != ES_OK; i++)
        if ((s = es_checkpoint_set(cps, "reader", 2, NULL, ES_CHECKPOINT_ANY, NULL)) != ES_OK)
            conf_sleep_ms(200);
    assert_int_equal(s, ES_OK);
    es_checkpoint cp;
    assert_int_equal(es_checkpoint_get(cps, "reader", &cp), ES_OK);
    assert_int_equal(cp.position, 2);
    es_checkpoint_clear(&cp);
    es_checkpoints_destroy(cps);
    es_store_destroy(st);
    es_store_delete(nc, name, NULL);

    /* closing on purpose is not an outage */
    es_connection_close(nc);
    conf_sleep_ms(300);
    assert_int_equal(atomic_load(&c.lost), 1);
    assert_int_equal(atomic_load(&c.other), 0);
    conf_server_destroy(srv);
}

/* A connection that never came up calls nothing (and frees what it kept). */
static void nothing_when_no_server(void **state)
{
    (void)state;
    changes c;
    memset(&c, 0, sizeof c);
    es_connect_options o;
    es_connect_options_init(&o);
    o.servers = "nats://127.0.0.1:1";
    o.timeout_ms = 500;
    o.on_change = on_change;
    o.closure = &c;
    natsConnection *nc = NULL;
    assert_int_equal(es_connect(&o, &nc), ES_ERR_CONNECTION);
    assert_null(nc);
    conf_sleep_ms(100);
    assert_int_equal(atomic_load(&c.lost) + atomic_load(&c.restored), 0);
}

int conf_run_connect(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reports_lost_and_restored),
        cmocka_unit_test(nothing_when_no_server),
    };
    return cmocka_run_group_tests_name("connect", tests, NULL, NULL);
}
