/* The ordered consumer (esi_oc) over the scripted server, where the server's
 * count of messages to come is wrong: nats-server keeps it as a running
 * tally that races with appends on a lagging replica. Seen on a 3-node
 * cluster under stutter: a delivery of the stream's last message said 2
 * pending, then only idle heartbeats naming it came, and a replay waited
 * for the 2 until its 30 s bound ("evolve: no delivery for 30000 ms with 1
 * pending"). The consumer must notice the idle server, recount (a reset,
 * whose creation counts afresh) and report that nothing is to come. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "base/clock.h"
#include "transport/consumer.h"
#include "transport/js.h"
#include "transport/msg.h"
#include "transport/scan.h"
#include "transport/tests/fake_conn.h"

#define STREAM "ES_s"
#define WAIT_MS 8000 /* a wait the test must not sit out */

/* The JetStream API as the consumer uses it: creations counted and
 * answered with the scripted num_pending, deletions acknowledged. */
typedef struct server {
    int creations;
    uint64_t pending_at[4];   /* num_pending answered to creation i */
    uint64_t start_seq_at[4]; /* opt_start_seq asked by creation i */
    char inbox[128];          /* the last creation's deliver_subject */
    bool push;                /* the first creation is followed by the miscount (below) */
} server;

static void deliver(fake_conn *f, const server *sv, uint64_t sseq, uint64_t cseq,
                    uint64_t pending);
static void heartbeat(fake_conn *f, const server *sv, uint64_t last_cseq, bool stalled);

static void answer(fake_conn *f, natsMsg *m, void *closure)
{
    server *sv = closure;
    const char *subject = esi_msg_subject(m);
    if (strncmp(subject, "$JS.API.CONSUMER.DELETE.", 24) == 0) {
        fake_conn_answer_text(f, m, "{\"success\":true}", 0);
        return;
    }
    if (strncmp(subject, "$JS.API.CONSUMER.CREATE.", 24) != 0 || sv->creations >= 4)
        return;
    json_t *req = json_loadb(esi_msg_data(m), esi_msg_len(m), 0, NULL);
    json_t *config = json_object_get(req, "config");
    snprintf(sv->inbox, sizeof sv->inbox, "%s",
             json_string_value(json_object_get(config, "deliver_subject")));
    int i = sv->creations++;
    sv->start_seq_at[i] = (uint64_t)json_integer_value(json_object_get(config, "opt_start_seq"));
    json_decref(req);
    char text[256];
    snprintf(text, sizeof text, "{\"name\":\"c%d\",\"num_pending\":%llu}", i,
             (unsigned long long)sv->pending_at[i]);
    fake_conn_answer_text(f, m, text, 0);
    if (sv->push && i == 0) { /* after the answer: the stream's last, miscounted, then idle */
        deliver(f, sv, 5, 1, 2);
        heartbeat(f, sv, 1, false);
        heartbeat(f, sv, 1, false);
    }
}

/* A delivery of stream sequence `sseq` as consumer sequence `cseq`, with
 * the server's count of what is still to come. */
static void deliver(fake_conn *f, const server *sv, uint64_t sseq, uint64_t cseq,
                    uint64_t pending)
{
    char reply[256];
    snprintf(reply, sizeof reply, "$JS.ACK." STREAM ".c0.1.%llu.%llu.1700000000000000000.%llu",
             (unsigned long long)sseq, (unsigned long long)cseq, (unsigned long long)pending);
    natsMsg *m = NULL;
    assert_int_equal(esi_msg_create(sv->inbox, reply, "x", 1, &m), ES_OK);
    fake_conn_deliver(f, m);
}

/* An idle heartbeat naming consumer sequence `last_cseq`, optionally
 * marked as held back by flow control. */
static void heartbeat(fake_conn *f, const server *sv, uint64_t last_cseq, bool stalled)
{
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)last_cseq);
    natsMsg *m = NULL;
    assert_int_equal(esi_msg_create(sv->inbox, NULL, NULL, 0, &m), ES_OK);
    assert_int_equal(esi_msg_header_set(m, "Status", "100"), ES_OK);
    assert_int_equal(esi_msg_header_set(m, "Description", "Idle Heartbeat"), ES_OK);
    assert_int_equal(esi_msg_header_set(m, "Nats-Last-Consumer", v), ES_OK);
    if (stalled)
        assert_int_equal(esi_msg_header_set(m, "Nats-Consumer-Stalled", "_INBOX.fc"), ES_OK);
    fake_conn_deliver(f, m);
}

typedef struct fixture {
    fake_conn *f;
    esi_js *js;
    esi_oc *oc;
    server sv;
} fixture;

/* The scripted server, which counts 1 pending at the first creation and
 * `recount` at the second. */
static void open_server(fixture *x, uint64_t recount)
{
    memset(x, 0, sizeof *x);
    x->sv.pending_at[0] = 1;
    x->sv.pending_at[1] = recount;
    x->f = fake_conn_create();
    fake_conn_set_handler(x->f, answer, &x->sv);
    assert_non_null(x->js = fake_conn_js(x->f, 2000));
}

/* ... and a consumer on it from stream sequence 5. */
static void open_fixture(fixture *x, uint64_t recount)
{
    open_server(x, recount);
    const char *filters[1] = {"$ES.s.note.>"};
    uint64_t pending = 0;
    assert_int_equal(esi_oc_create(x->js, STREAM, filters, 1, 5, 2000, &x->oc, &pending), ES_OK);
    assert_int_equal(pending, 1);
    assert_int_equal(esi_oc_pending(x->oc), 1);
}

static void close_fixture(fixture *x)
{
    esi_oc_destroy(x->oc);
    esi_js_destroy(x->js);
    fake_conn_destroy(x->f);
}

/* The stream's last message, delivered with a count of 2 still to come. */
static void deliver_the_last_with_a_wrong_count(fixture *x)
{
    deliver(x->f, &x->sv, 5, 1, 2);
    esi_oc_msg m;
    assert_int_equal(esi_oc_next(x->oc, WAIT_MS, &m), ES_OK);
    assert_int_equal(m.seq, 5);
    assert_int_equal(m.pending, 2);
    esi_msg_destroy(m.msg);
    assert_int_equal(esi_oc_pending(x->oc), 2);
}

static void an_idle_server_with_messages_counted_is_recounted(void **state)
{
    (void)state;
    fixture x;
    open_fixture(&x, 0);
    deliver_the_last_with_a_wrong_count(&x);
    heartbeat(x.f, &x.sv, 1, false);
    heartbeat(x.f, &x.sv, 1, false);
    int64_t t0 = esi_monotonic_ms();
    esi_oc_msg m;
    assert_int_equal(esi_oc_next(x.oc, WAIT_MS, &m), ES_ERR_TIMEOUT);
    int64_t took = esi_monotonic_ms() - t0;
    if (took >= WAIT_MS / 2)
        fail_msg("esi_oc_next sat out %lld ms of its wait instead of recounting",
                 (long long)took);
    assert_int_equal(esi_oc_pending(x.oc), 0);
    assert_int_equal(esi_oc_resets(x.oc), 1);
    assert_int_equal(x.sv.creations, 2);
    assert_int_equal(x.sv.start_seq_at[1], 6); /* after the last delivery: nothing again */
    close_fixture(&x);
}

/* A recount that still finds messages keeps the reader waiting for them,
 * from the new consumer. */
static void a_recount_that_finds_messages_delivers_them(void **state)
{
    (void)state;
    fixture x;
    open_fixture(&x, 1);
    deliver_the_last_with_a_wrong_count(&x);
    heartbeat(x.f, &x.sv, 1, false);
    heartbeat(x.f, &x.sv, 1, false);
    esi_oc_msg m;
    assert_int_equal(esi_oc_next(x.oc, 300, &m), ES_ERR_TIMEOUT);
    assert_int_equal(esi_oc_resets(x.oc), 1);
    assert_int_equal(esi_oc_pending(x.oc), 1);
    deliver(x.f, &x.sv, 6, 1, 0);
    assert_int_equal(esi_oc_next(x.oc, WAIT_MS, &m), ES_OK);
    assert_int_equal(m.seq, 6);
    esi_msg_destroy(m.msg);
    assert_int_equal(esi_oc_pending(x.oc), 0);
    close_fixture(&x);
}

/* One idle heartbeat is not enough (it may cross a delivery), nor are
 * heartbeats of a consumer held back by flow control: no reset. */
static void flow_control_and_a_single_heartbeat_are_not_stalls(void **state)
{
    (void)state;
    fixture x;
    open_fixture(&x, 0);
    deliver_the_last_with_a_wrong_count(&x);
    heartbeat(x.f, &x.sv, 1, true);
    heartbeat(x.f, &x.sv, 1, true);
    heartbeat(x.f, &x.sv, 1, false);
    esi_oc_msg m;
    assert_int_equal(esi_oc_next(x.oc, 300, &m), ES_ERR_TIMEOUT);
    assert_int_equal(esi_oc_resets(x.oc), 0);
    assert_int_equal(esi_oc_pending(x.oc), 2);
    assert_int_equal(x.sv.creations, 1);
    close_fixture(&x);
}

static es_status count_one(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                           void *closure)
{
    (void)msg, (void)subject, (void)stored_ns;
    assert_int_equal(seq, 5);
    ++*(int *)closure;
    return ES_OK;
}

/* A confined read (scan.h: by an ordered consumer) ends with the recount,
 * successfully, instead of "read: no delivery for 10000 ms". */
static void a_confined_read_ends_with_the_recount(void **state)
{
    (void)state;
    fixture x;
    open_server(&x, 0);
    x.sv.push = true;
    esi_dg_request req = {.filter = "$ES.s.note.n1.*", .start_seq = 5};
    int delivered = 0;
    uint64_t last = 0;
    int64_t t0 = esi_monotonic_ms();
    es_status s = esi_subject_scan(x.js, STREAM, &req, true, count_one, &delivered, &last);
    int64_t took = esi_monotonic_ms() - t0;
    if (s != ES_OK)
        fail_msg("the confined read failed after %lld ms: %s", (long long)took, es_last_error());
    /* at the second idle heartbeat, not after three missed ones (6 s) */
    if (took >= 3000)
        fail_msg("the confined read took %lld ms to end", (long long)took);
    assert_int_equal(delivered, 1);
    assert_int_equal(last, 5);
    assert_int_equal(x.sv.creations, 2);
    assert_int_equal(x.sv.start_seq_at[1], 6);
    close_fixture(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_idle_server_with_messages_counted_is_recounted),
        cmocka_unit_test(a_recount_that_finds_messages_delivers_them),
        cmocka_unit_test(flow_control_and_a_single_heartbeat_are_not_stalls),
        cmocka_unit_test(a_confined_read_ends_with_the_recount),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
