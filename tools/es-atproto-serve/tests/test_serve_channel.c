/* GET /channel (Tap-style delivery) end to end: es-atproto-serve --channel
 * against a live server (NATS_URL), its clients the suite's own WebSocket
 * client (ws_client.h). A client that drops events or leaves them
 * unacknowledged gets them again; two clients share the events; per-repo
 * order holds under Tap's barrier rule with interleaved historical and live
 * events of one repo; a serve instance killed with SIGKILL and started again
 * resumes without delivering again what was acknowledged; fire-and-forget;
 * two instances sharing one consumer keep a repo's order when one's client
 * holds an event longer than the ack and takeover timeouts, or when the
 * instance holding it is killed.
 * Events are appended through the public API as the ingester stores them
 * (tap_events.h). ES_SERVE_BIN from CMake. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <es/es.h>
#include <es/time.h>

#include "children.h"
#include "tap_events.h"
#include "ws_client.h"

#define IDS_MAX 1024
#define WAIT_MS 20000

static const char *serve_bin;

/* A store of the test's own, on NATS_URL. */
typedef struct store {
    natsConnection *nc;
    es_store *st;
    char name[48], log[96];
} store;

static void store_open(store *s, const char *what)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(natsConnection_ConnectTo(&s->nc, getenv("NATS_URL")), NATS_OK);
    snprintf(s->name, sizeof s->name, "chan_%s_%ld", what, (long)getpid());
    snprintf(s->log, sizeof s->log, "/tmp/es-serve-channel-%s-%ld.log", what, (long)getpid());
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.memory_storage = true;
    assert_int_equal(es_store_create(s->nc, s->name, &cfg, NULL, &s->st), ES_OK);
}

static void store_close(store *s)
{
    es_store_destroy(s->st);
    es_store_delete(s->nc, s->name, NULL);
    natsConnection_Destroy(s->nc);
    unlink(s->log);
}

/* es-atproto-serve --channel MODE on a free port (*port), with `extra`
 * options (NULL-terminated). */
static pid_t serve(const store *s, const char *mode, const char *const *extra, int *port)
{
    char *argv[24] = {(char *)serve_bin, "--server", getenv("NATS_URL"), "--store",
                      (char *)s->name, "--listen", "127.0.0.1:0", "--channel", (char *)mode};
    size_t n = 9;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    int out;
    pid_t pid = children_spawn(argv, s->log, &out);
    assert_true(pid > 0);
    FILE *f = fdopen(out, "r");
    char line[128] = "";
    if (fgets(line, sizeof line, f) == NULL)
        children_show_log(s->log);
    fclose(f);
    assert_int_equal(sscanf(line, "listening on 127.0.0.1:%d", port), 1);
    return pid;
}

static void stop(pid_t pid, const store *s)
{
    kill(pid, SIGTERM);
    int code = children_exit_code(pid, 20000);
    if (code != 0)
        children_show_log(s->log);
    assert_int_equal(code, 0);
}

/* ---- a client --------------------------------------------------------------- */

typedef struct client {
    ws_client w;
    int got[IDS_MAX]; /* receptions by id */
    bool acked[IDS_MAX];
    size_t received;
} client;

static void connect_to(client *c, int port)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(ws_open(&c->w, port, "/channel", 0), 101);
}

/* One event within timeout_ms: 1 (*out parsed, *id its id), or 0. */
static int next_event(client *c, int timeout_ms, json_t **out, uint64_t *id)
{
    char *m = NULL;
    int r = ws_read(&c->w, timeout_ms, &m);
    if (r == 0)
        fail_msg("the server closed /channel: %d %s", c->w.close_code, c->w.close_reason);
    if (r < 0)
        return 0;
    json_t *j = json_loads(m, 0, NULL);
    free(m);
    assert_non_null(j);
    *id = (uint64_t)json_integer_value(json_object_get(j, "id"));
    assert_true(*id > 0 && *id < IDS_MAX);
    c->got[*id]++;
    c->received++;
    *out = j;
    return 1;
}

static void ack(client *c, uint64_t id)
{
    char text[64];
    snprintf(text, sizeof text, "{\"type\":\"ack\",\"id\":%llu}", (unsigned long long)id);
    assert_int_equal(ws_send_text(&c->w, text), 0);
    c->acked[id] = true;
}

static size_t count_acked(const client *c)
{
    size_t n = 0;
    for (size_t i = 0; i < IDS_MAX; i++)
        n += c->acked[i];
    return n;
}

/* Receives and acknowledges until `want` distinct events are acknowledged;
 * the first reception of `skip` (0: none) goes unacknowledged. */
static void ack_until(client *c, size_t want, uint64_t skip)
{
    for (int64_t waited = 0; count_acked(c) < want;) {
        json_t *j;
        uint64_t id;
        if (!next_event(c, 100, &j, &id)) {
            waited += 100;
            if (waited > WAIT_MS)
                fail_msg("%zu of %zu events acknowledged", count_acked(c), want);
            continue;
        }
        json_decref(j);
        if (id != skip || c->got[id] > 1)
            ack(c, id);
    }
}

/* Nothing more within ms. */
static void expect_quiet(client *c, int ms)
{
    json_t *j;
    uint64_t id;
    if (next_event(c, ms, &j, &id)) {
        json_decref(j);
        fail_msg("event %llu came once more", (unsigned long long)id);
    }
}

/* Until /metrics shows `line`. */
static void wait_metric(int port, const char *line)
{
    static char body[16384];
    for (int64_t waited = 0; waited < WAIT_MS; waited += 50) {
        if (http_get(port, "/metrics", body, sizeof body) == 200 && strstr(body, line) != NULL)
            return;
        children_sleep_ms(50);
    }
    fail_msg("/metrics never showed %s", line);
}

/* n historical events of one repo, stored at once (one atomic batch). */
static void append_historical(store *s, int n, int from)
{
    assert_int_equal(tap_append_ops(s->st, tap_dids[2], from, n, false), ES_OK);
}

/* ---- the tests ---------------------------------------------------------------- */

/* A client that reads some events and leaves without acknowledging: another
 * gets them at once. One that leaves one unacknowledged gets it again after
 * --ack-timeout. */
static void unacknowledged_events_come_again(void **state)
{
    (void)state;
    store s;
    store_open(&s, "again");
    append_historical(&s, 10, 0);
    const char *extra[] = {"--ack-timeout", "1s", NULL};
    int port;
    pid_t pid = serve(&s, "acks", extra, &port);

    client a, b;
    connect_to(&a, port);
    /* up to three: a pull may bring fewer, and its next waits for their acks */
    for (int i = 0; i < 3; i++) {
        json_t *j;
        uint64_t id;
        if (!next_event(&a, i == 0 ? 5000 : 1000, &j, &id))
            break;
        assert_string_equal(json_string_value(json_object_get(j, "type")), "record");
        assert_false(json_is_true(json_object_get(json_object_get(j, "record"), "live")));
        json_decref(j);
    }
    ws_close(&a.w); /* gone without an ack */

    connect_to(&b, port);
    int64_t t0 = es_monotonic_ms();
    ack_until(&b, 10, 2); /* ids 1..10; the first copy of 2 left unacknowledged */
    assert_true(es_monotonic_ms() - t0 >= 900); /* 2 came again after the ack timeout */
    for (uint64_t id = 1; id <= 10; id++) {
        assert_true(b.acked[id]);
        assert_int_equal(b.got[id], id == 2 ? 2 : 1);
        assert_true(a.got[id] <= 1);
    }
    assert_true(a.received >= 1 && a.got[1] == 1); /* what a dropped, b got */
    expect_quiet(&b, 1300); /* what is acknowledged never comes again */
    char body[8192];
    assert_int_equal(http_get(port, "/metrics", body, sizeof body), 200);
    assert_non_null(strstr(body, "es_serve_tap_deliveries_total{outcome=\"acked\"} 10"));
    assert_non_null(strstr(body, "es_serve_channel_clients 1"));
    ws_close(&b.w);
    stop(pid, &s);
    store_close(&s);
}

/* Two clients connected before the events: each gets some, together all,
 * none twice. */
static void two_clients_share_the_events(void **state)
{
    (void)state;
    store s;
    store_open(&s, "share");
    const char *extra[] = {"--max-in-flight", "4", NULL};
    int port;
    pid_t pid = serve(&s, "acks", extra, &port);
    client c[2];
    connect_to(&c[0], port);
    connect_to(&c[1], port);
    wait_metric(port, "es_serve_channel_clients 2"); /* both attached */
    append_historical(&s, 40, 0); /* at once: a pull takes more than a share */
    /* No ack until both have some, or until nothing comes for a while (a
     * pull of one or two events holds the next ones back): a client holds
     * at most its share (2 of 4), so the other gets the rest meanwhile. */
    int64_t quiet = 0;
    uint64_t pending[2][64];
    size_t npending[2] = {0, 0};
    for (int64_t waited = 0; count_acked(&c[0]) + count_acked(&c[1]) < 40; waited += 20) {
        assert_true(waited < WAIT_MS);
        for (int k = 0; k < 2; k++) {
            json_t *j;
            uint64_t id;
            while (npending[k] < 64 && next_event(&c[k], 10, &j, &id)) {
                json_decref(j);
                pending[k][npending[k]++] = id;
            }
        }
        size_t before = npending[0] + npending[1];
        quiet = before == 0 ? 0 : quiet + 20;
        bool both = c[0].received > 0 && c[1].received > 0;
        for (int k = 0; k < 2 && (both || quiet >= 300); k++) {
            for (size_t i = 0; i < npending[k]; i++)
                ack(&c[k], pending[k][i]);
            npending[k] = 0;
        }
    }
    print_message("client 1: %zu, client 2: %zu\n", c[0].received, c[1].received);
    assert_true(c[0].received > 0 && c[1].received > 0);
    for (uint64_t id = 1; id <= 40; id++)
        assert_int_equal(c[0].got[id] + c[1].got[id], 1);
    ws_close(&c[0].w);
    ws_close(&c[1].w);
    stop(pid, &s);
    store_close(&s);
}

/* Tap's rule seen by a client that holds its acks back: no event of a repo
 * arrives while a live one of it is unacknowledged, and a live one arrives
 * only when everything before it in its repo is acknowledged. */
static void per_repo_order_under_the_barrier_rule(void **state)
{
    (void)state;
    store s;
    store_open(&s, "order");
    size_t n = tap_append_mix(s.st, 3); /* 63: repo 0 H H L H H L H, 1 live, 2 historical */
    assert_int_equal(n, 63);
    const char *extra[] = {"--max-in-flight", "8", NULL};
    int port;
    pid_t pid = serve(&s, "acks", extra, &port);
    client c;
    connect_to(&c, port);
    uint64_t held[IDS_MAX];
    int held_repo[IDS_MAX];
    bool held_live[IDS_MAX];
    size_t nheld = 0, most = 0;
    uint64_t last[TAP_REPOS] = {0};
    unsigned seed = 3;
    for (int64_t waited = 0; count_acked(&c) < n;) {
        json_t *j;
        uint64_t id;
        if (next_event(&c, 30, &j, &id)) {
            json_t *r = json_object_get(j, "record");
            bool live = json_is_true(json_object_get(r, "live"));
            int repo = tap_repo_of(json_string_value(json_object_get(r, "did")));
            json_decref(j);
            assert_true(repo >= 0);
            for (size_t i = 0; i < nheld; i++)
                if (held_repo[i] == repo && (live || held_live[i]))
                    fail_msg("%s event %llu came while %s event %llu of its repo is unacknowledged",
                             live ? "live" : "historical", (unsigned long long)id,
                             held_live[i] ? "live" : "historical", (unsigned long long)held[i]);
            assert_true(id > last[repo]); /* in stream order within the repo */
            last[repo] = id;
            held[nheld] = id, held_repo[nheld] = repo, held_live[nheld] = live;
            most = ++nheld > most ? nheld : most;
            continue;
        }
        waited += 30;
        assert_true(waited < WAIT_MS);
        if (nheld > 0) { /* nothing more comes: acknowledge one, any */
            size_t i = (size_t)rand_r(&seed) % nheld;
            ack(&c, held[i]);
            held[i] = held[--nheld], held_repo[i] = held_repo[nheld], held_live[i] = held_live[nheld];
        }
    }
    print_message("%zu events, at most %zu unacknowledged at once\n", n, most);
    assert_true(most >= 2 && most <= 8); /* historical ones went together, within the bound */
    ws_close(&c.w);
    stop(pid, &s);
    store_close(&s);
}

/* kill -9 of the instance after some events were acknowledged; started
 * again, it delivers the others (at least once) and none of those. */
static void a_killed_instance_resumes(void **state)
{
    (void)state;
    store s;
    store_open(&s, "kill");
    append_historical(&s, 20, 0);
    const char *extra[] = {"--takeover-after", "1s", "--max-in-flight", "4", NULL};
    int port;
    pid_t pid = serve(&s, "acks", extra, &port);
    client a;
    connect_to(&a, port);
    ack_until(&a, 8, 0);
    children_sleep_ms(300); /* the acks reach the server */
    kill(pid, SIGKILL);
    assert_int_equal(children_exit_code(pid, 10000), 128 + SIGKILL);
    ws_close(&a.w);

    pid = serve(&s, "acks", extra, &port);
    client b;
    connect_to(&b, port);
    ack_until(&b, 12, 0);
    expect_quiet(&b, 600);
    for (uint64_t id = 1; id <= 20; id++) {
        if (a.acked[id])
            assert_int_equal(b.got[id], 0); /* acknowledged before the kill: never again */
        else
            assert_true(b.acked[id]); /* the rest, at least once */
    }
    ws_close(&b.w);
    stop(pid, &s);
    store_close(&s);
}

/* Any event of either client within ms: 1 (*who 0 for a, 1 for b), or 0. */
static int next_of_two(client *a, client *b, int ms, uint64_t *id, int *who)
{
    json_t *j;
    for (int waited = 0; waited < ms; waited += 20) {
        for (*who = 0; *who < 2; ++*who)
            if (next_event(*who ? b : a, 10, &j, id)) {
                json_decref(j);
                return 1;
            }
    }
    return 0;
}

/* Two instances on one consumer, a client each. The pinned instance's
 * client holds live event L1 of a repo unacknowledged for 3 s, longer than
 * --ack-timeout (1 s: it comes again to that client) and the pin's timeout
 * (1.5 s: the other instance takes the consumer over meanwhile), while the
 * repo's live event L2 is stored. Tap's rule across the two: L2 reaches no
 * client before L1 is acknowledged; then it comes, once acknowledged. */
static void two_instances_keep_a_repos_order(void **state)
{
    (void)state;
    store s;
    store_open(&s, "two");
    const char *extra[] = {"--ack-timeout", "1s", "--takeover-after", "1s", NULL};
    int pa, pb;
    pid_t ia = serve(&s, "acks", extra, &pa);
    client a, b;
    connect_to(&a, pa);
    assert_int_equal(tap_append_op(s.st, tap_dids[0], 0, true), ES_OK);
    json_t *j;
    uint64_t l1, id;
    assert_int_equal(next_event(&a, WAIT_MS, &j, &l1), 1); /* a's instance holds the pin */
    json_decref(j);
    pid_t ib = serve(&s, "acks", extra, &pb);
    connect_to(&b, pb);
    assert_int_equal(tap_append_op(s.st, tap_dids[0], 1, true), ES_OK); /* L2 */
    int who;
    for (int64_t until = es_monotonic_ms() + 3000; es_monotonic_ms() < until;) {
        if (!next_of_two(&a, &b, 100, &id, &who))
            continue;
        if (id != l1)
            fail_msg("live event %llu of the repo reached client %c while live event %llu is "
                     "unacknowledged",
                     (unsigned long long)id, who ? 'b' : 'a', (unsigned long long)l1);
        assert_int_equal(who, 0); /* L1 again, to the client of its instance */
    }
    assert_true(a.got[l1] >= 2); /* the ack timeout did run out */
    ack(&a, l1);
    do /* L2, from whichever instance holds the consumer now */
        assert_int_equal(next_of_two(&a, &b, WAIT_MS, &id, &who), 1);
    while (id == l1);
    assert_int_equal(id, l1 + 1);
    ack(who ? &b : &a, id);
    print_message("L1 sent %d times to a; L2 came through %c\n", a.got[l1], who ? 'b' : 'a');
    ws_close(&a.w);
    ws_close(&b.w);
    stop(ia, &s);
    stop(ib, &s);
    store_close(&s);
}

/* The same two instances, and the pinned one killed (-9) while its client
 * holds L1: the other instance's client gets L1 (once its ack wait runs
 * out) before L2. */
static void a_dead_holders_event_comes_first(void **state)
{
    (void)state;
    store s;
    store_open(&s, "dead");
    const char *extra[] = {"--ack-timeout", "1s", "--takeover-after", "1s", NULL};
    int pa, pb;
    pid_t ia = serve(&s, "acks", extra, &pa);
    client a, b;
    connect_to(&a, pa);
    assert_int_equal(tap_append_op(s.st, tap_dids[0], 0, true), ES_OK);
    json_t *j;
    uint64_t l1, id;
    assert_int_equal(next_event(&a, WAIT_MS, &j, &l1), 1);
    json_decref(j);
    pid_t ib = serve(&s, "acks", extra, &pb);
    connect_to(&b, pb);
    assert_int_equal(tap_append_op(s.st, tap_dids[0], 1, true), ES_OK); /* L2 */
    children_sleep_ms(500);
    kill(ia, SIGKILL);
    assert_int_equal(children_exit_code(ia, 10000), 128 + SIGKILL);
    ws_close(&a.w);
    assert_int_equal(next_event(&b, WAIT_MS, &j, &id), 1);
    json_decref(j);
    if (id != l1)
        fail_msg("live event %llu reached the other instance's client before live event %llu, "
                 "which the killed instance held",
                 (unsigned long long)id, (unsigned long long)l1);
    ack(&b, l1);
    do
        assert_int_equal(next_event(&b, WAIT_MS, &j, &id), 1), json_decref(j);
    while (id == l1);
    assert_int_equal(id, l1 + 1);
    ack(&b, id);
    ws_close(&b.w);
    stop(ib, &s);
    store_close(&s);
}

/* fire-and-forget: an event is done once written; acks are not needed. */
static void fire_and_forget(void **state)
{
    (void)state;
    store s;
    store_open(&s, "ff");
    append_historical(&s, 10, 0);
    int port;
    pid_t pid = serve(&s, "fire-and-forget", NULL, &port);
    client a;
    connect_to(&a, port);
    for (uint64_t want = 1; want <= 10; want++) {
        json_t *j;
        uint64_t id;
        assert_int_equal(next_event(&a, 5000, &j, &id), 1);
        json_decref(j);
    }
    ws_close(&a.w);
    client b;
    connect_to(&b, port);
    expect_quiet(&b, 800); /* nothing comes again */
    for (uint64_t id = 1; id <= 10; id++)
        assert_int_equal(a.got[id], 1);
    ws_close(&b.w);
    stop(pid, &s);
    store_close(&s);
}

static int setup(void **state)
{
    (void)state;
    serve_bin = getenv("ES_SERVE_BIN");
    if (serve_bin == NULL || getenv("NATS_URL") == NULL) {
        printf("needs ES_SERVE_BIN and NATS_URL\n");
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(unacknowledged_events_come_again, children_teardown),
        cmocka_unit_test_teardown(two_clients_share_the_events, children_teardown),
        cmocka_unit_test_teardown(per_repo_order_under_the_barrier_rule, children_teardown),
        cmocka_unit_test_teardown(a_killed_instance_resumes, children_teardown),
        cmocka_unit_test_teardown(fire_and_forget, children_teardown),
        cmocka_unit_test_teardown(two_instances_keep_a_repos_order, children_teardown),
        cmocka_unit_test_teardown(a_dead_holders_event_comes_first, children_teardown),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
