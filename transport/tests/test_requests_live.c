/* Synchronous requests on a real server ($NATS_URL; skipped without): every
 * request of a connection is answered on its one wildcard inbox
 * (transport/inbox.h), each answer reaching the request it answers, with
 * many threads asking at once and with a late answer racing the next
 * request. An echo service on a second connection answers with the
 * request's body after the delay the body names ("<ms>:<text>"), and
 * records the reply subjects it was given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "transport/conn.h"
#include "transport/inbox.h"

#define THREADS 16
#define PER_THREAD 200

typedef struct echo {
    natsConnection *nc; /* the service's own */
    natsSubscription *sub;
    natsSubscription *silent; /* <subject>.silent: never answers */
    char subject[64];
    pthread_mutex_t mu;
    char prefix[ESI_INBOX_REPLY_MAX]; /* the first reply subject's _INBOX.<id> */
    int other_prefixes;               /* replies to any other inbox */
    int answered;
} echo;

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)sub;
    echo *e = closure;
    const char *reply = natsMsg_GetReply(m);
    const char *dot = strchr(reply, '.'); /* "_INBOX.<id>.": the connection's */
    dot = dot ? strchr(dot + 1, '.') : NULL;
    int len = dot ? (int)(dot - reply) : (int)strlen(reply);
    pthread_mutex_lock(&e->mu);
    if (e->prefix[0] == '\0')
        snprintf(e->prefix, sizeof e->prefix, "%.*s", len, reply);
    else if (strncmp(e->prefix, reply, (size_t)len) != 0 || e->prefix[len] != '\0')
        e->other_prefixes++;
    e->answered++;
    pthread_mutex_unlock(&e->mu);
    esi_sleep_ms(atol(natsMsg_GetData(m)));
    natsConnection_Publish(nc, reply, natsMsg_GetData(m), natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

static natsConnection *connect_or_skip(void)
{
    const char *url = getenv("NATS_URL");
    if (url == NULL || url[0] == '\0') {
        printf("SKIP: NATS_URL is not set (tools/nats-local start NAME)\n");
        skip();
    }
    natsConnection *nc = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    return nc;
}

static int setup(void **state)
{
    echo *e = calloc(1, sizeof *e);
    pthread_mutex_init(&e->mu, NULL);
    snprintf(e->subject, sizeof e->subject, "es_test.requests.%ld", (long)getpid());
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    echo *e = *state;
    natsSubscription_Destroy(e->sub);
    natsSubscription_Destroy(e->silent);
    if (e->nc != NULL)
        natsConnection_Destroy(e->nc);
    pthread_mutex_destroy(&e->mu);
    free(e);
    return 0;
}

static void on_silent(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc, (void)sub, (void)closure;
    natsMsg_Destroy(m);
}

static void echo_start(echo *e)
{
    e->nc = connect_or_skip();
    assert_int_equal(natsConnection_Subscribe(&e->sub, e->nc, e->subject, on_request, e), NATS_OK);
    char silent[80];
    snprintf(silent, sizeof silent, "%s.silent", e->subject);
    assert_int_equal(natsConnection_Subscribe(&e->silent, e->nc, silent, on_silent, NULL), NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(e->nc, 2000), NATS_OK);
}

typedef struct asker {
    pthread_t thread;
    const echo *e;
    esi_conn conn;
    int id;
    int wrong; /* answers that were not this request's */
    int failed;
} asker;

static void *ask(void *arg)
{
    asker *a = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "0:thread %d request %d", a->id, i);
        natsMsg *reply = NULL;
        es_status s = a->conn.ops->request(a->conn.ctx, a->e->subject, body, (size_t)n, 5000, &reply);
        if (s != ES_OK)
            a->failed++;
        else if (natsMsg_GetDataLength(reply) != n || memcmp(natsMsg_GetData(reply), body, (size_t)n) != 0)
            a->wrong++;
        natsMsg_Destroy(reply);
    }
    return NULL;
}

/* 16 threads × 200 requests on one connection: each gets its own answer,
 * and every request named the connection's inbox, _INBOX.<id>.<token> or
 * _INBOX.<id>.s<n>.<token>, where each request had one of its own before. */
static void many_threads_get_their_own_answers(void **state)
{
    echo *e = *state;
    echo_start(e);
    natsConnection *nc = connect_or_skip();
    asker askers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        askers[t] = (asker){.e = e, .id = t};
        esi_conn_nats(nc, &askers[t].conn);
        assert_int_equal(pthread_create(&askers[t].thread, NULL, ask, &askers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(askers[t].thread, NULL);
        assert_int_equal(askers[t].failed, 0);
        assert_int_equal(askers[t].wrong, 0);
    }
    assert_int_equal(e->answered, THREADS * PER_THREAD);
    assert_int_equal(e->other_prefixes, 0);
    assert_non_null(strstr(e->prefix, "_INBOX."));
    natsConnection_Destroy(nc);
}

typedef struct holder {
    esi_conn conn;
    char subject[80];
    es_status s;
} holder;

/* A request to the silent subject: it holds the solo subscription 1.5 s. */
static void *hold_solo(void *arg)
{
    holder *h = arg;
    natsMsg *reply = NULL;
    h->s = h->conn.ops->request(h->conn.ctx, h->subject, "x", 1, 1500, &reply);
    natsMsg_Destroy(reply);
    return NULL;
}

/* A request that timed out gets its answer late, while the next request
 * waits on the same waiter slot of the shared inbox (the solo subscription
 * is held by another request meanwhile): the late answer is dropped, and
 * the next request gets its own. */
static void a_late_answer_goes_to_nobody(void **state)
{
    echo *e = *state;
    echo_start(e);
    natsConnection *nc = connect_or_skip();
    esi_conn c;
    esi_conn_nats(nc, &c);
    holder h = {.conn = c};
    snprintf(h.subject, sizeof h.subject, "%s.silent", e->subject);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_solo, &h), 0);
    esi_sleep_ms(100);
    natsMsg *reply = NULL;
    const char *slow = "400:the first, answered late";
    assert_int_equal(c.ops->request(c.ctx, e->subject, slow, strlen(slow), 100, &reply),
                     ES_ERR_TIMEOUT);
    assert_null(reply);
    /* answered once the first's answer (at 400 ms) has come */
    const char *next = "100:the second";
    int64_t t0 = esi_monotonic_ms();
    assert_int_equal(c.ops->request(c.ctx, e->subject, next, strlen(next), 3000, &reply), ES_OK);
    assert_true(esi_monotonic_ms() - t0 >= 300); /* the late answer came while it waited */
    assert_int_equal(natsMsg_GetDataLength(reply), (int)strlen(next));
    assert_memory_equal(natsMsg_GetData(reply), next, strlen(next));
    natsMsg_Destroy(reply);
    pthread_join(t, NULL);
    assert_int_equal(h.s, ES_ERR_TIMEOUT);
    /* the solo subscription, left unanswered, is made again: it still works */
    const char *after = "0:after";
    assert_int_equal(c.ops->request(c.ctx, e->subject, after, strlen(after), 3000, &reply), ES_OK);
    assert_memory_equal(natsMsg_GetData(reply), after, strlen(after));
    natsMsg_Destroy(reply);
    natsConnection_Destroy(nc);
}

/* No responder: "no responders" at once, through the shared inbox too. */
static void no_responders_is_told_at_once(void **state)
{
    (void)state;
    natsConnection *nc = connect_or_skip();
    esi_conn c;
    esi_conn_nats(nc, &c);
    natsMsg *reply = NULL;
    int64_t t0 = esi_monotonic_ms();
    assert_int_equal(c.ops->request(c.ctx, "es_test.nobody.here", "x", 1, 3000, &reply),
                     ES_ERR_UNSUPPORTED);
    assert_null(reply);
    assert_true(esi_monotonic_ms() - t0 < 1000);
    natsConnection_Destroy(nc);
}

typedef struct slow_ask {
    const echo *e;
    esi_conn conn;
    es_status s;
    natsMsg *reply;
} slow_ask;

static void *ask_slowly(void *arg)
{
    slow_ask *a = arg;
    const char *body = "500:slow";
    a->s = a->conn.ops->request(a->conn.ctx, a->e->subject, body, strlen(body), 3000, &a->reply);
    return NULL;
}

/* "No responders" comes back as a status message on the inbox: it reaches
 * the request it answers while another request of the connection waits
 * (nats.c's synchronous read would drop it without saying whose). */
static void no_responders_reaches_its_request_among_others(void **state)
{
    echo *e = *state;
    echo_start(e);
    natsConnection *nc = connect_or_skip();
    slow_ask a = {.e = e};
    esi_conn_nats(nc, &a.conn);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, ask_slowly, &a), 0);
    esi_sleep_ms(100); /* the slow request waits */
    natsMsg *reply = NULL;
    int64_t t0 = esi_monotonic_ms();
    assert_int_equal(a.conn.ops->request(a.conn.ctx, "es_test.nobody.here", "x", 1, 3000, &reply),
                     ES_ERR_UNSUPPORTED);
    assert_true(esi_monotonic_ms() - t0 < 300);
    pthread_join(t, NULL);
    assert_int_equal(a.s, ES_OK);
    assert_memory_equal(natsMsg_GetData(a.reply), "500:slow", 8);
    natsMsg_Destroy(a.reply);
    natsConnection_Destroy(nc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(many_threads_get_their_own_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(a_late_answer_goes_to_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(no_responders_is_told_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(no_responders_reaches_its_request_among_others, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    esi_inbox_sweep();        /* the inboxes of the connections closed above */
    nats_CloseAndWait(5000); /* their delivery threads end, freeing them */
    return failed;
}
