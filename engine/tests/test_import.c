/* es_import_check and the header rules, which need no server: what an
 * imported event may carry, and what would change how the server stores it
 * or leave its entity. (Imports themselves are tested live by the
 * conformance suite.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/es.h>

#include "headers.h"

static es_raw_event event(const char *subject, const es_header *headers, size_t n)
{
    es_raw_event ev = {.subject = subject, .headers = headers, .header_count = n};
    return ev;
}

static void accepts_events_as_stored(void **state)
{
    (void)state;
    const es_header h[] = {{"Nats-Msg-Id", "id-1"},
                           {"Rita-Type", "Opened"},
                           {"X-Multi", "one"},
                           {"X-Multi", "two"},
                           {"Rita-Meta-who", "\xff\xfe latin"},
                           {"Es-Empty", ""}};
    es_raw_event ev = event("account.acc%2E1.Opened", h, sizeof h / sizeof *h);
    ev.payload = "\x00\x01";
    ev.payload_len = 2;
    assert_int_equal(es_import_check(&ev, false), ES_OK);
    ev = event("acme.account.a1.Opened", NULL, 0);
    assert_int_equal(es_import_check(&ev, true), ES_OK);
}

static void refuses_what_would_leave_the_entity(void **state)
{
    (void)state;
    const char *subjects[] = {
        NULL,     "",      "a.b",     "a.b.c.d", "a..c",    "a.b.",    ".a.b",
        "a.b*.c", "a.>.c", "a.%2e.c", "a b.c.d", "a.b.c d", "a.%zz.c",
    };
    for (size_t i = 0; i < sizeof subjects / sizeof *subjects; i++) {
        es_raw_event ev = event(subjects[i], NULL, 0);
        if (es_import_check(&ev, false) != ES_ERR_INVALID)
            fail_msg("accepted subject %s", subjects[i] ? subjects[i] : "(null)");
    }
    es_raw_event three = event("a.b.c", NULL, 0);
    assert_int_equal(es_import_check(&three, true), ES_ERR_INVALID); /* a tenant is missing */
    assert_non_null(strstr(es_last_error(), "shape"));
    assert_int_equal(es_import_check(NULL, false), ES_ERR_INVALID);
}

static void refuses_control_and_malformed_headers(void **state)
{
    (void)state;
    const es_header bad[][1] = {
        {{"Nats-Rollup", "all"}},
        {{"nats-ttl", "1s"}},
        {{"Nats-Expected-Stream", "ES_x"}},
        {{"NATS-Batch-Id", "b"}},
        {{"Bad:Name", "x"}},
        {{"Bad Name", "x"}},
        {{"", "x"}},
        {{NULL, "x"}},
        {{"X", "a\r\nNats-Rollup: all"}},
        {{"X", "line\n"}},
        {{"X", NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        es_raw_event ev = event("a.b.c", bad[i], 1);
        if (es_import_check(&ev, false) != ES_ERR_INVALID)
            fail_msg("accepted header %zu", i);
    }
    es_raw_event rollup = event("a.b.c", bad[0], 1);
    es_import_check(&rollup, false);
    assert_non_null(strstr(es_last_error(), "control header"));
    /* a count without its array */
    es_raw_event missing = event("a.b.c", NULL, 2);
    assert_int_equal(es_import_check(&missing, false), ES_ERR_INVALID);
    es_raw_event no_payload = event("a.b.c", NULL, 0);
    no_payload.payload_len = 3;
    assert_int_equal(es_import_check(&no_payload, false), ES_ERR_INVALID);
}

static void control_headers_are_jetstreams(void **state)
{
    (void)state;
    assert_true(esi_header_is_control("Nats-Expected-Last-Subject-Sequence"));
    assert_true(esi_header_is_control("nats-batch-commit"));
    assert_false(esi_header_is_control("Nats-Msg-Id"));
    assert_false(esi_header_is_control("nats-msg-id"));
    assert_false(esi_header_is_control("Rita-Type"));
    assert_false(esi_header_is_control("Natsy"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_events_as_stored),
        cmocka_unit_test(refuses_what_would_leave_the_entity),
        cmocka_unit_test(refuses_control_and_malformed_headers),
        cmocka_unit_test(control_headers_are_jetstreams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
