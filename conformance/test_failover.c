/* Failover on a 3-node cluster of the suite's own (runs with --replicas
 * above 1 and --nats-server; skipped otherwise): readers that run through
 * the loss of a stream's leader end with every event exactly once, and
 * readers started while the stream has no leader wait for one. */
#include "harness.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define EVENTS      20000
#define OUTAGE_MS   10000 /* longer than a reset's first attempts: they fail */
#define WATCH_WAIT  60000

/* The cluster lives in the test's state, so that the teardown stops it even
 * when an assertion ends the test half way. */
static int cluster_setup(void **state)
{
    *state = conf_replicas > 1 ? conf_server_start() : NULL;
    return 0;
}

static int cluster_teardown(void **state)
{
    conf_server_destroy(*state);
    return 0;
}

static conf_server *cluster_or_skip(void **state)
{
    conf_server *srv = *state;
    if (srv == NULL) {
        print_message("skipped: failover tests run with --replicas 3 and --nats-server\n");
        skip();
    }
    return srv;
}

static es_store *filled_store(natsConnection *nc, const char *name, size_t n)
{
    es_store *st = NULL;
    assert_int_equal(es_store_create(nc, name, conf_store_config(), NULL, &st), ES_OK);
    conf_wait_store_ready(nc, st);
    conf_append_many(st, "account", "a1", "changed", n);
    return st;
}

/* Every sequence 1..n once, in order, with the payload conf_append_many gave it. */
static void assert_exactly_once(const conf_seen *seen, size_t n)
{
    assert_int_equal(seen->count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(seen->seqs[i], i + 1);
        char want[24];
        snprintf(want, sizeof want, "%zu", i);
        assert_string_equal(seen->data[i], want);
    }
}

/* ---- a replay through an election that takes its time ------------------- */

typedef struct outage {
    conf_server *srv;
    const char *stream;
    natsConnection *nc;
    int down[2]; /* the stream's leader and one more: no quorum until they return */
    bool started;
    pthread_t restarter;
    conf_seen seen;
} outage;

static void *restart_later(void *arg)
{
    outage *o = arg;
    conf_sleep_ms(OUTAGE_MS);
    conf_server_start_node(o->srv, o->down[0]);
    conf_server_start_node(o->srv, o->down[1]);
    return NULL;
}

/* Collects; at the 100th event takes the stream's leader and a second node
 * down, to come back OUTAGE_MS later: the replay's consumer is lost and its
 * resets fail until a leader is elected again. */
static es_status collect_then_fail(const es_event *ev, void *closure)
{
    outage *o = closure;
    if (o->seen.count == 100 && !o->started) {
        int leader = conf_server_stream_leader(o->nc, o->stream);
        assert_true(leader >= 0);
        o->down[0] = leader;
        o->down[1] = (leader + 1) % conf_server_nodes(o->srv);
        conf_server_kill_node(o->srv, o->down[0]);
        conf_server_kill_node(o->srv, o->down[1]);
        assert_int_equal(pthread_create(&o->restarter, NULL, restart_later, o), 0);
        o->started = true;
    }
    return conf_collect(ev, &o->seen);
}

static void a_replay_rides_out_a_leader_election(void **state)
{
    conf_server *srv = cluster_or_skip(state);
    natsConnection *nc = conf_connect(conf_server_url(srv));
    es_store *st = filled_store(nc, "failover_replay", EVENTS);
    outage o = {.srv = srv, .stream = es_store_stream(st), .nc = nc};
    es_filter f;
    es_filter_init(&f);
    es_status s = es_evolve(st, &f, NULL, collect_then_fail, &o, NULL);
    if (s != ES_OK)
        print_message("es_evolve: %s\n", es_last_error());
    assert_true(o.started);
    assert_int_equal(pthread_join(o.restarter, NULL), 0);
    assert_int_equal(s, ES_OK);
    assert_exactly_once(&o.seen, EVENTS);
    conf_seen_free(&o.seen);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
}

/* ---- a watch and a durable projection through a leader kill ------------- */

static es_status count_event(const es_event *ev, void *closure)
{
    (void)ev;
    atomic_fetch_add((_Atomic size_t *)closure, 1);
    return ES_OK;
}

static void appends_retried(es_store *st, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        char data[24], id[32];
        snprintf(data, sizeof data, "%zu", i);
        snprintf(id, sizeof id, "failover-%zu", i);
        es_event_spec e = conf_spec("account", "a1", "changed", data);
        e.event_id = id; /* a retry after an unknown outcome is stored once */
        es_status s = ES_ERR_CONNECTION;
        for (int attempt = 0; attempt < 300 && s != ES_OK; attempt++)
            if ((s = es_append(st, &e, NULL)) != ES_OK)
                conf_sleep_ms(100);
        assert_int_equal(s, ES_OK);
    }
}

static bool wait_count(conf_locked_seen *ls, size_t n, int64_t ms)
{
    for (int64_t waited = 0; conf_locked_count(ls) < n && waited < ms; waited += 50)
        conf_sleep_ms(50);
    return conf_locked_count(ls) >= n;
}

static void a_watch_and_a_projection_ride_out_a_leader_kill(void **state)
{
    enum { BEFORE = 1000, AFTER = 200 };
    conf_server *srv = cluster_or_skip(state);
    natsConnection *nc = conf_connect(conf_server_url(srv));
    es_store *st = filled_store(nc, "failover_live", BEFORE);

    conf_locked_seen w = {0};
    pthread_mutex_init(&w.mu, NULL);
    es_watch_options wo;
    es_watch_options_init(&wo);
    wo.on_event = conf_collect_locked;
    wo.closure = &w;
    wo.heartbeat_ms = 500;
    es_watch *wt = NULL;
    assert_int_equal(es_watch_start(st, &wo, &wt), ES_OK);

    es_projection_config pc;
    es_projection_config_init(&pc);
    pc.ack_wait_ms = 2000;
    assert_int_equal(es_projection_create(st, "failover", &pc), ES_OK);
    _Atomic size_t handled = 0;
    es_projection_handler h = {.on_event = count_event, .closure = (void *)&handled};
    es_projection_run_options ro;
    es_projection_run_options_init(&ro);
    es_projection *p = NULL;
    assert_int_equal(es_projection_start(st, "failover", &h, &ro, &p), ES_OK);
    assert_true(wait_count(&w, BEFORE, WATCH_WAIT));
    assert_int_equal(es_projection_wait_caught_up(p, WATCH_WAIT), ES_OK);

    int leader = conf_server_stream_leader(nc, es_store_stream(st));
    assert_true(leader >= 0);
    conf_server_kill_node(srv, leader);
    appends_retried(st, BEFORE, BEFORE + AFTER / 2); /* while the cluster elects */
    conf_server_start_node(srv, leader);
    appends_retried(st, BEFORE + AFTER / 2, BEFORE + AFTER);

    assert_true(wait_count(&w, BEFORE + AFTER, WATCH_WAIT));
    es_status s = ES_ERR_TIMEOUT;
    for (int attempt = 0; attempt < 6 && s != ES_OK; attempt++)
        s = es_projection_wait_caught_up(p, WATCH_WAIT / 6);
    assert_int_equal(s, ES_OK);
    conf_sleep_ms(500); /* nothing more may come */
    es_watch_destroy(wt);
    assert_int_equal(es_projection_stop(p), ES_OK);
    es_projection_destroy(p);
    assert_exactly_once(&w.seen, BEFORE + AFTER);
    /* a durable consumer delivers at least once: an ack may die with its node */
    assert_true(atomic_load(&handled) >= BEFORE + AFTER);
    assert_int_equal(conf_stream_msgs(nc, es_store_stream(st)), BEFORE + AFTER);
    conf_seen_free(&w.seen);
    pthread_mutex_destroy(&w.mu);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
}

/* ---- reads started while the stream has no leader ------------------------ */

enum { NO_LEADER_EVENTS = 300, NO_LEADER_MS = 4000 };

typedef struct leaderless {
    es_store *st;
    es_status evolved, watching, projecting;
    char evolve_error[256], watch_error[256], projection_error[256];
    conf_seen replayed;
    conf_locked_seen watched;
    es_watch *watch;
    es_projection *projection;
    _Atomic size_t handled;
} leaderless;

static void *replay_from_start(void *arg)
{
    leaderless *l = arg;
    es_filter f;
    es_filter_init(&f);
    l->evolved = es_evolve(l->st, &f, NULL, conf_collect, &l->replayed, NULL);
    snprintf(l->evolve_error, sizeof l->evolve_error, "%s", es_last_error());
    return NULL;
}

static void *watch_from_start(void *arg)
{
    leaderless *l = arg;
    es_watch_options wo;
    es_watch_options_init(&wo);
    wo.on_event = conf_collect_locked;
    wo.closure = &l->watched;
    wo.heartbeat_ms = 500;
    l->watching = es_watch_start(l->st, &wo, &l->watch);
    snprintf(l->watch_error, sizeof l->watch_error, "%s", es_last_error());
    return NULL;
}

static void *project_from_start(void *arg)
{
    leaderless *l = arg;
    static es_projection_handler h = {.on_event = count_event};
    h.closure = (void *)&l->handled;
    es_projection_run_options ro;
    es_projection_run_options_init(&ro);
    l->projecting = es_projection_start(l->st, "leaderless", &h, &ro, &l->projection);
    snprintf(l->projection_error, sizeof l->projection_error, "%s", es_last_error());
    return NULL;
}

/* A replay, a watch and a projection run all started while the stream's
 * leader and a second node are down (no quorum: creating their consumers,
 * and the requests before that, get no answer, "no responders" or
 * "temporarily unavailable") wait for the nodes to come back within the
 * reset budget and end with every event. Before, each failed at its first
 * attempt. */
static void reads_started_without_a_leader_wait_for_one(void **state)
{
    conf_server *srv = cluster_or_skip(state);
    natsConnection *nc = conf_connect(conf_server_url(srv));
    es_store *st = filled_store(nc, "failover_leaderless", NO_LEADER_EVENTS);
    es_projection_config pc;
    es_projection_config_init(&pc);
    assert_int_equal(es_projection_create(st, "leaderless", &pc), ES_OK);
    leaderless l = {.st = st};
    pthread_mutex_init(&l.watched.mu, NULL);

    int leader = conf_server_stream_leader(nc, es_store_stream(st));
    assert_true(leader >= 0);
    int other = (leader + 1) % conf_server_nodes(srv);
    conf_server_kill_node(srv, leader);
    conf_server_kill_node(srv, other);
    pthread_t t[3];
    assert_int_equal(pthread_create(&t[0], NULL, replay_from_start, &l), 0);
    assert_int_equal(pthread_create(&t[1], NULL, watch_from_start, &l), 0);
    assert_int_equal(pthread_create(&t[2], NULL, project_from_start, &l), 0);
    conf_sleep_ms(NO_LEADER_MS);
    conf_server_start_node(srv, leader);
    conf_server_start_node(srv, other);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    if (l.evolved != ES_OK)
        print_message("es_evolve: %s\n", l.evolve_error);
    if (l.watching != ES_OK)
        print_message("es_watch_start: %s\n", l.watch_error);
    if (l.projecting != ES_OK)
        print_message("es_projection_start: %s\n", l.projection_error);
    assert_int_equal(l.evolved, ES_OK);
    assert_int_equal(l.watching, ES_OK);
    assert_int_equal(l.projecting, ES_OK);
    assert_exactly_once(&l.replayed, NO_LEADER_EVENTS);
    assert_true(wait_count(&l.watched, NO_LEADER_EVENTS, WATCH_WAIT));
    assert_int_equal(es_projection_wait_caught_up(l.projection, WATCH_WAIT), ES_OK);
    es_watch_destroy(l.watch);
    assert_exactly_once(&l.watched.seen, NO_LEADER_EVENTS);
    assert_true(atomic_load(&l.handled) >= NO_LEADER_EVENTS);
    assert_int_equal(es_projection_stop(l.projection), ES_OK);
    es_projection_destroy(l.projection);
    conf_seen_free(&l.replayed);
    conf_seen_free(&l.watched.seen);
    pthread_mutex_destroy(&l.watched.mu);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
}

int conf_run_failover(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_replay_rides_out_a_leader_election, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(a_watch_and_a_projection_ride_out_a_leader_kill,
                                        cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(reads_started_without_a_leader_wait_for_one, cluster_setup,
                                        cluster_teardown),
    };
    return cmocka_run_group_tests_name("failover", tests, NULL, NULL);
}
