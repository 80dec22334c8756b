/* The transport's parsers, which need no server: PubAcks and JetStream
 * delivery (ack) subjects, and the context's API subjects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "transport/js.h"
#include "transport/publisher.h"

static void parses_pubacks(void **state)
{
    (void)state;
    esi_pub_result r;
    char text[256];
    const char *ok = "{\"stream\":\"ES_bank\",\"seq\":12}";
    assert_int_equal(esi_puback_parse(ok, strlen(ok), &r, text, sizeof text), ES_OK);
    assert_int_equal(r.seq, 12);
    assert_int_equal(r.count, 1);
    assert_false(r.duplicate);
    const char *dup = "{\"stream\":\"ES_bank\",\"seq\":7,\"duplicate\": true}";
    assert_int_equal(esi_puback_parse(dup, strlen(dup), &r, text, sizeof text), ES_OK);
    assert_true(r.duplicate);
    const char *batch = "{\"stream\":\"ES_bank\",\"seq\":30,\"batch\":\"x\",\"count\":3}";
    assert_int_equal(esi_puback_parse(batch, strlen(batch), &r, text, sizeof text), ES_OK);
    assert_int_equal(r.count, 3);
    const char *conflict =
        "{\"error\":{\"code\":400,\"err_code\":10071,\"description\":\"wrong last sequence: 3\"},"
        "\"stream\":\"ES_bank\",\"seq\":0}";
    assert_int_equal(esi_puback_parse(conflict, strlen(conflict), &r, text, sizeof text),
                     ES_ERR_CONFLICT);
    assert_int_equal(r.actual_seq, 3);
    assert_int_equal(r.err_code, 10071);
    assert_non_null(strstr(text, "wrong last sequence: 3"));
    const char *other = "{\"error\":{\"code\":503,\"err_code\":10077,\"description\":\"x\"}}";
    assert_int_equal(esi_puback_parse(other, strlen(other), &r, text, sizeof text), ES_ERR_SERVER);
    assert_int_equal(esi_puback_parse("nope", 4, &r, text, sizeof text), ES_ERR_PROTOCOL);
    assert_int_equal(esi_puback_parse("{}", 2, &r, text, sizeof text), ES_ERR_PROTOCOL);
}

static void parses_delivery_metadata(void **state)
{
    (void)state;
    esi_js_delivery d;
    assert_true(esi_js_delivery_parse("$JS.ACK.ES_x.likes.3.1042.77.1795498416038311076.12", &d));
    assert_int_equal(d.delivered, 3);
    assert_int_equal(d.stream_seq, 1042);
    assert_int_equal(d.consumer_seq, 77);
    assert_int_equal(d.stored_ns, 1795498416038311076LL);
    assert_int_equal(d.pending, 12);
    /* v2: domain and account hash, with and without the random token */
    assert_true(esi_js_delivery_parse("$JS.ACK.hub.ACCHASH.ES_x.likes.1.5.6.7.0", &d));
    assert_int_equal(d.stream_seq, 5);
    assert_true(esi_js_delivery_parse("$JS.ACK.hub.ACCHASH.ES_x.likes.1.5.6.7.0.tok", &d));
    assert_int_equal(d.consumer_seq, 6);
    const char *bad[] = {
        NULL,
        "",
        "$JS.ACK",
        "$JS.ACK.s.c.1.2.3.4",              /* too few */
        "$JS.ACK.s.c.1.2.3.4.5.6.7.8.9.10", /* too many */
        "$JS.ACK.s.c.x.2.3.4.5",
        "$JS.ACK.s.c.1.2.3.-4.5",
        "$JS.ACK.s.c.0.2.3.4.5", /* never delivered */
        "$JS.ACK.s.c.1.0.3.4.5", /* no stream sequence */
        "$JS.ACK.s.c.1.99999999999999999999.3.4.5",
        "$JS.ACK.s.c.1.2.3.9223372036854775808.5",
        "$JS.ACK.s.c.1..3.4.5",
        "_INBOX.s.c.1.2.3.4.5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(esi_js_delivery_parse(bad[i], &d));
        assert_int_equal(d.stream_seq, 0);
    }
}

static void api_subjects_follow_the_domain(void **state)
{
    (void)state;
    esi_conn conn;
    esi_conn_nats(NULL, &conn);
    esi_js *js = NULL;
    char subject[128];
    assert_int_equal(esi_js_create(&conn, NULL, &js), ES_OK);
    assert_int_equal(esi_js_api_subject(js, subject, sizeof subject, "STREAM.INFO.%s", "ES_x"),
                     ES_OK);
    assert_string_equal(subject, "$JS.API.STREAM.INFO.ES_x");
    assert_null(esi_js_domain(js));
    esi_js_destroy(js);

    esi_js_options o = {.domain = "hub"};
    assert_int_equal(esi_js_create(&conn, &o, &js), ES_OK);
    assert_int_equal(esi_js_api_subject(js, subject, sizeof subject, "INFO"), ES_OK);
    assert_string_equal(subject, "$JS.hub.API.INFO");
    assert_string_equal(esi_js_domain(js), "hub");
    /* Too long for the buffer: refused, not cut. */
    assert_int_equal(esi_js_api_subject(js, subject, 12, "STREAM.INFO.%s", "ES_x"), ES_ERR_LIMIT);
    esi_js_destroy(js);

    esi_js_options p = {.api_prefix = "JS.acme@hub.API"};
    assert_int_equal(esi_js_create(&conn, &p, &js), ES_OK);
    assert_int_equal(esi_js_api_subject(js, subject, sizeof subject, "INFO"), ES_OK);
    assert_string_equal(subject, "JS.acme@hub.API.INFO");
    esi_js_destroy(js);

    const char *bad_domains[] = {"a.b", "", "x*", "has space", ">"};
    for (size_t i = 0; i < sizeof bad_domains / sizeof *bad_domains; i++) {
        esi_js_options b = {.domain = bad_domains[i]};
        es_status s = esi_js_create(&conn, &b, &js);
        /* An empty domain means none. */
        if (bad_domains[i][0] == '\0') {
            assert_int_equal(s, ES_OK);
            esi_js_destroy(js);
        } else {
            assert_int_equal(s, ES_ERR_INVALID);
            assert_null(js);
        }
    }
    const char *bad_prefixes[] = {".x", "x.", "a..b", "$JS.*.API", "a b"};
    for (size_t i = 0; i < sizeof bad_prefixes / sizeof *bad_prefixes; i++) {
        esi_js_options b = {.api_prefix = bad_prefixes[i]};
        assert_int_equal(esi_js_create(&conn, &b, &js), ES_ERR_INVALID);
    }
    esi_js_options both = {.domain = "hub", .api_prefix = "X.API"};
    assert_int_equal(esi_js_create(&conn, &both, &js), ES_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_pubacks),
        cmocka_unit_test(parses_delivery_metadata),
        cmocka_unit_test(api_subjects_follow_the_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
