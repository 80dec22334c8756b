/* Answers the transport takes as transient, over the scripted server: the
 * creation of an ordered consumer (consumer.c) retries what a cluster
 * answers while it elects a stream leader ("temporarily unavailable", no
 * responders) within the election budget, never a refusal (a bad filter);
 * a direct get (directget.c) asks again, within its request's timeout,
 * when no replica answers yet ("no responders"), and gives up at that
 * timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/clock.h"
#include "fake_conn.h"
#include "transport/consumer.h"
#include "transport/directget.h"
#include "transport/js.h"
#include "transport/msg.h"

typedef struct script {
    const char *answers[4]; /* the CONSUMER.CREATE answers in turn; NULL: no handler's answer */
    size_t creates;
} script;

static const char CREATED[] = "{\"type\":\"io.nats.jetstream.api.v1.consumer_create_response\","
                              "\"name\":\"c1\",\"num_pending\":7}";
static const char UNAVAILABLE[] = "{\"error\":{\"code\":503,\"err_code\":10008,"
                                  "\"description\":\"JetStream system temporarily unavailable\"}}";
static const char BAD_FILTER[] = "{\"error\":{\"code\":400,\"err_code\":10093,"
                                 "\"description\":\"consumer filter subject is not a valid "
                                 "subset of the interest subjects\"}}";
#define NO_RESPONDERS "503"

static void server(fake_conn *f, natsMsg *m, void *closure)
{
    script *sc = closure;
    const char *subject = esi_msg_subject(m);
    if (strstr(subject, ".CONSUMER.CREATE.") == NULL) {
        fake_conn_answer_text(f, m, "{}", 0); /* the delete at the end */
        return;
    }
    const char *a = sc->creates < 4 ? sc->answers[sc->creates] : CREATED;
    sc->creates++;
    if (strcmp(a, NO_RESPONDERS) == 0)
        fake_conn_answer_status(f, m, "503", NULL);
    else
        fake_conn_answer_text(f, m, a, 0);
}

static es_status create_with(script *sc, uint64_t *pending, int64_t *took_ms)
{
    fake_conn *f = fake_conn_create();
    fake_conn_set_handler(f, server, sc);
    esi_conn c;
    fake_conn_table(f, &c);
    esi_js *js = NULL;
    esi_js_options o = {.timeout_ms = 200};
    assert_int_equal(esi_js_create(&c, &o, &js), ES_OK);
    const char *filter = "$ES.s.>";
    esi_oc *oc = NULL;
    int64_t start = esi_monotonic_ms();
    es_status s = esi_oc_create(js, "ES_s", &filter, 1, 1, 1000, &oc, pending);
    *took_ms = esi_monotonic_ms() - start;
    esi_oc_destroy(oc);
    esi_js_destroy(js);
    fake_conn_destroy(f);
    return s;
}

static void an_election_s_answers_are_retried(void **state)
{
    (void)state;
    script sc = {.answers = {UNAVAILABLE, NO_RESPONDERS, UNAVAILABLE, CREATED}};
    uint64_t pending = 0;
    int64_t took = 0;
    assert_int_equal(create_with(&sc, &pending, &took), ES_OK);
    assert_int_equal(sc.creates, 4);
    assert_int_equal(pending, 7);
    assert_true(took >= 3 * ESI_JS_RETRY_FIRST_MS * 3 / 4); /* backed off between attempts */
}

static void a_refusal_is_not_retried(void **state)
{
    (void)state;
    script sc = {.answers = {BAD_FILTER, CREATED}};
    uint64_t pending = 0;
    int64_t took = 0;
    assert_int_equal(create_with(&sc, &pending, &took), ES_ERR_SERVER);
    assert_int_equal(es_last_error_code(), 10093);
    assert_int_equal(sc.creates, 1);
    assert_true(took < ESI_JS_RETRY_FIRST_MS);
}

/* ---- direct gets ------------------------------------------------------------ */

typedef struct replicas {
    unsigned silent; /* requests answered "no responders" before one is answered */
    unsigned asked;
} replicas;

/* A replica that is current answers with the message (sequence 5). */
static void direct_server(fake_conn *f, natsMsg *m, void *closure)
{
    replicas *r = closure;
    if (r->asked++ < r->silent) {
        fake_conn_answer_status(f, m, "503", NULL);
        return;
    }
    natsMsg *answer = NULL;
    assert_int_equal(esi_msg_create(esi_msg_reply(m), NULL, "v", 1, &answer), ES_OK);
    assert_int_equal(esi_msg_header_set(answer, "Nats-Subject", "$KV.b.k"), ES_OK);
    assert_int_equal(esi_msg_header_set(answer, "Nats-Sequence", "5"), ES_OK);
    fake_conn_deliver(f, answer);
}

typedef struct direct_fixture {
    fake_conn *f;
    esi_js *js;
} direct_fixture;

static direct_fixture direct_open(replicas *r, int64_t timeout_ms)
{
    direct_fixture d = {fake_conn_create(), NULL};
    fake_conn_set_handler(d.f, direct_server, r);
    esi_conn c;
    fake_conn_table(d.f, &c);
    esi_js_options o = {.timeout_ms = timeout_ms};
    assert_int_equal(esi_js_create(&c, &o, &d.js), ES_OK);
    return d;
}

static void direct_close(direct_fixture *d)
{
    esi_js_destroy(d->js);
    fake_conn_destroy(d->f);
}

/* Before, the first "no responders" was the answer: ES_ERR_UNSUPPORTED. */
static void a_direct_get_asks_again_until_a_replica_answers(void **state)
{
    (void)state;
    replicas r = {.silent = 2};
    direct_fixture d = direct_open(&r, 2000);
    natsMsg *m = NULL;
    assert_int_equal(esi_direct_get_one(d.js, "$JS.API.DIRECT.GET.KV_b.$KV.b.k", &m), ES_OK);
    assert_string_equal(esi_msg_header(m, "Nats-Sequence"), "5");
    esi_msg_destroy(m);
    assert_int_equal(r.asked, 3);

    r = (replicas){.silent = 2}; /* the batched form (an exchange on an inbox of its own) */
    uint64_t seq = 0;
    assert_int_equal(esi_direct_last_seq(d.js, "KV_b", "$KV.b.k", &seq), ES_OK);
    assert_int_equal(seq, 5);
    assert_int_equal(r.asked, 3);
    direct_close(&d);
}

static void a_direct_get_gives_up_at_its_timeout(void **state)
{
    (void)state;
    replicas r = {.silent = 1000};
    direct_fixture d = direct_open(&r, 500);
    natsMsg *m = NULL;
    int64_t start = esi_monotonic_ms();
    assert_int_equal(esi_direct_get_one(d.js, "$JS.API.DIRECT.GET.KV_b.$KV.b.k", &m),
                     ES_ERR_UNSUPPORTED);
    int64_t took = esi_monotonic_ms() - start;
    assert_null(m);
    assert_non_null(strstr(es_last_error(), "no responders"));
    assert_true(took <= 800);
    assert_true(r.asked >= 2 && r.asked < 10);
    direct_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_election_s_answers_are_retried),
        cmocka_unit_test(a_refusal_is_not_retried),
        cmocka_unit_test(a_direct_get_asks_again_until_a_replica_answers),
        cmocka_unit_test(a_direct_get_gives_up_at_its_timeout),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
