/* Out of memory in the transport, over the scripted server (fake_conn,
 * fake_js) and the counting allocator (base/tests/failalloc.h): a JetStream
 * context, the publisher with units acknowledged, refused and followed up,
 * batched direct gets. Each run reports ES_ERR_NOMEM, leaks nothing and
 * does not crash. What nats.c (messages, headers) and jansson (API
 * requests, PubAcks that are not the plain success shape) allocate is not
 * the library's: it never fails here, and PubAck parsing is shown to need
 * no allocation of the library's at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/tests/failalloc.h"
#include "transport/directget.h"
#include "transport/js.h"
#include "transport/msg.h"
#include "transport/publisher.h"
#include "transport/tests/fake_conn.h"
#include "transport/tests/fake_js.h"

/* A fresh server for each run: runs are alike. Its memory is libc's. */
typedef struct server {
    fake_conn *f;
    fake_js *fj;
    esi_js *js;
} server;

static es_status server_open(server *sv, int64_t timeout_ms)
{
    sv->f = fake_conn_create();
    sv->fj = fake_js_create(sv->f, "ES_t", "t.>");
    esi_conn conn;
    fake_conn_table(sv->f, &conn);
    esi_js_options o = {.timeout_ms = timeout_ms, .domain = "hub"};
    return esi_js_create(&conn, &o, &sv->js);
}

static void server_close(server *sv)
{
    esi_js_destroy(sv->js);
    fake_js_destroy(sv->fj);
    fake_conn_destroy(sv->f);
}

/* ---- PubAcks and the context ------------------------------------------------- */

static es_status puback_op(void *ctx)
{
    (void)ctx;
    static const char *acks[] = {
        "{\"stream\":\"ES_t\",\"seq\":12}",
        "{\"stream\":\"ES_t\",\"seq\":30,\"batch\":\"x\",\"count\":3}",
        "{\"error\":{\"code\":400,\"err_code\":10071,\"description\":\"wrong last sequence: 3\"}}",
    };
    static const es_status want[] = {ES_OK, ES_OK, ES_ERR_CONFLICT};
    for (size_t i = 0; i < 3; i++) {
        esi_pub_result r;
        char text[128];
        if (esi_puback_parse(acks[i], strlen(acks[i]), &r, text, sizeof text) != want[i])
            return ES_ERR_PROTOCOL;
    }
    return ES_OK;
}

static void pubacks_need_no_allocation(void **state)
{
    (void)state;
    failalloc_expect_nomem(puback_op, NULL, 0);
}

static es_status context_op(void *ctx)
{
    (void)ctx;
    server sv = {0};
    es_status s = server_open(&sv, 1000);
    char subject[128];
    if (s == ES_OK)
        s = esi_js_api_subject(sv.js, subject, sizeof subject, "STREAM.INFO.%s", "ES_t");
    if (s == ES_OK && strcmp(subject, "$JS.hub.API.STREAM.INFO.ES_t") != 0)
        s = ES_ERR_PROTOCOL;
    server_close(&sv);
    return s;
}

static void context_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(context_op, NULL, 1);
}

/* ---- the publisher ------------------------------------------------------------ */

typedef struct outcomes {
    int calls;
    es_status last;
    esi_publisher *p;
    natsMsg **kept;
    size_t kept_n;
} outcomes;

static void finish_kept(void *arg)
{
    outcomes *o = arg;
    esi_publisher_finish(o->p, o->kept, o->kept_n);
}

/* Keeps the messages of a refused unit and finishes it on the publisher's
 * thread (esi_publisher_defer allocates its queue entry). */
static bool record(es_status s, const esi_pub_result *r, const char *text, natsMsg **msgs, size_t n,
                   void *closure)
{
    (void)r;
    (void)text;
    outcomes *o = closure;
    o->calls++;
    o->last = s;
    if (s == ES_OK)
        return false;
    o->kept = msgs;
    o->kept_n = n;
    esi_publisher_defer(o->p, finish_kept, o);
    return true;
}

static es_status send_unit(esi_publisher *p, outcomes *o, size_t n)
{
    esi_pub_ticket t;
    es_status s = esi_publisher_reserve(p, n > 1, record, o, &t);
    if (s != ES_OK)
        return s;
    natsMsg **msgs = esi_calloc(n, sizeof *msgs);
    if (msgs == NULL) {
        esi_publisher_cancel(p, &t);
        return ES_ERR_NOMEM;
    }
    for (size_t i = 0; i < n && s == ES_OK; i++) {
        const char *reply = i + 1 == n ? t.reply : i == 0 ? t.first_reply : NULL;
        s = esi_msg_create("t.a", reply, "{}", 2, &msgs[i]);
        if (s == ES_OK && n > 1)
            s = esi_msg_header_set(msgs[i], "Nats-Batch-Id", "b");
        if (s == ES_OK && n > 1)
            s = esi_msg_header_set(msgs[i], "Nats-Batch-Sequence", i == 0 ? "1" : "2");
    }
    if (s == ES_OK && n > 1)
        s = esi_msg_header_set(msgs[n - 1], "Nats-Batch-Commit", "1");
    esi_publisher_send(p, &t, msgs, n); /* takes them, whatever happened */
    return s;
}

static es_status publisher_op(void *ctx)
{
    (void)ctx;
    server sv = {0};
    outcomes o = {0};
    es_status s = server_open(&sv, 2000);
    if (s == ES_OK)
        s = esi_publisher_create(sv.js, 4, 2, &o.p);
    if (s == ES_OK)
        s = send_unit(o.p, &o, 1);
    if (s == ES_OK) {
        fake_js_push(sv.fj, (fake_step){.what = FAKE_REFUSE_START, .early = true});
        s = send_unit(o.p, &o, 2);
    }
    if (s == ES_OK)
        s = esi_publisher_flush(o.p, 2000);
    if (s == ES_OK && (o.calls != 2 || o.last != ES_ERR_SERVER))
        s = ES_ERR_PROTOCOL;
    esi_publisher_destroy(o.p);
    server_close(&sv);
    return s;
}

static void publisher_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(publisher_op, NULL, 4);
}

/* ---- direct gets --------------------------------------------------------------- */

static es_status count_msg(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                           void *closure)
{
    (void)msg;
    (void)subject;
    (void)seq;
    (void)stored_ns;
    (*(int *)closure)++;
    return ES_OK;
}

static es_status direct_get_op(void *ctx)
{
    (void)ctx;
    server sv = {0};
    es_status s = server_open(&sv, 1000);
    esi_conn conn;
    fake_conn_table(sv.f, &conn);
    for (int i = 0; i < 5 && s == ES_OK; i++)
        s = conn.ops->publish_data(conn.ctx, "t.a", NULL, "x", 1);
    esi_dg_request req = {.filter = "t.>", .start_seq = 1, .batch = 2};
    int n = 0;
    uint64_t last = 0;
    esi_js *plain = NULL;
    if (s == ES_OK) /* the fake answers the default API prefix */
        s = esi_js_create(&conn, NULL, &plain);
    if (s == ES_OK)
        s = esi_direct_get(plain, "ES_t", &req, count_msg, &n, &last);
    if (s == ES_OK && (n != 5 || last != 5))
        s = ES_ERR_PROTOCOL;
    esi_js_destroy(plain);
    server_close(&sv);
    return s;
}

static void direct_get_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(direct_get_op, NULL, 1);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pubacks_need_no_allocation),
        cmocka_unit_test(context_out_of_memory),
        cmocka_unit_test(publisher_out_of_memory),
        cmocka_unit_test(direct_get_out_of_memory),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
