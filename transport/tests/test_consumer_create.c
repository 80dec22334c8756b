/* The creation of an ordered consumer (consumer.c) over the scripted server:
 * the answers a cluster gives while it elects a stream leader ("temporarily
 * unavailable", no responders) are retried within the election budget; a
 * refusal (a bad filter) is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/clock.h"
#include "fake_conn.h"
#include "transport/consumer.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_election_s_answers_are_retried),
        cmocka_unit_test(a_refusal_is_not_retried),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
