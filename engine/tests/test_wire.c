/* Wire details that need no server: headers of an event, event ids,
 * Rita-Time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/es.h>

#include "base/newid.h"
#include "base/clock.h"
#include "headers.h"
#include "store_impl.h"
#include "transport/msg.h"
#include "wire.h"

static es_store fake_store(bool tenancy)
{
    es_store st;
    memset(&st, 0, sizeof st);
    strcpy(st.name, "bank");
    strcpy(st.stream, "ES_bank");
    es_store_config_init(&st.config);
    st.config.tenancy = tenancy;
    return st;
}

static const char *hdr(natsMsg *m, const char *k)
{
    return esi_msg_header(m, k);
}

static void builds_headers_as_specified(void **state)
{
    (void)state;
    es_store st = fake_store(false);
    es_meta meta[] = {{"user", "alice"}, {"reason", "salary"}};
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = "account";
    e.entity_id = "did:web:example.com";
    e.event_type = "deposited";
    e.event_id = "evt-1";
    e.codec = "json";
    e.time_ns = 1700000000123456789LL;
    e.meta = meta;
    e.meta_count = 2;
    e.expect = ES_EXPECT_SEQ;
    e.expect_seq = 41;
    esi_subject subj;
    assert_int_equal(esi_subject_for(&st, &e, &subj), ES_OK);
    assert_string_equal(subj.full, "$ES.bank.account.did:web:example%2Ecom.deposited");
    assert_string_equal(subj.entity, "$ES.bank.account.did:web:example%2Ecom.*");
    natsMsg *m = NULL;
    assert_int_equal(esi_msg_create(subj.full, NULL, "{}", 2, &m), ES_OK);
    assert_int_equal(esi_headers_set(&st, &e, e.event_id, &subj, NULL, m), ES_OK);
    assert_string_equal(hdr(m, "Nats-Msg-Id"), "evt-1");
    assert_string_equal(hdr(m, "Rita-Entity"), "account.did:web:example%2Ecom");
    assert_string_equal(hdr(m, "Rita-Type"), "deposited");
    assert_string_equal(hdr(m, "Rita-Time"), "2023-11-14T22:13:20.123456789Z");
    assert_string_equal(hdr(m, "Rita-Codec"), "json");
    assert_string_equal(hdr(m, "Rita-Meta-user"), "alice");
    assert_string_equal(hdr(m, "Rita-Meta-reason"), "salary");
    assert_string_equal(hdr(m, "Nats-Expected-Last-Subject-Sequence"), "41");
    assert_string_equal(hdr(m, "Nats-Expected-Last-Subject-Sequence-Subject"),
                        "$ES.bank.account.did:web:example%2Ecom.*");
    assert_string_equal(hdr(m, "Nats-Expected-Stream"), "ES_bank");
    esi_msg_destroy(m);
}

static void defaults_and_tenancy(void **state)
{
    (void)state;
    es_store st = fake_store(true);
    es_event_spec e;
    es_event_spec_init(&e);
    e.tenant = "acme";
    e.entity_type = "account";
    e.entity_id = "a1";
    e.event_type = "opened";
    e.expect = ES_EXPECT_NEW;
    esi_subject subj;
    assert_int_equal(esi_subject_for(&st, &e, &subj), ES_OK);
    assert_string_equal(subj.full, "$ES.bank.acme.account.a1.opened");
    assert_string_equal(subj.entity, "$ES.bank.acme.account.a1.*");
    natsMsg *m = NULL;
    assert_int_equal(esi_msg_create(subj.full, NULL, NULL, 0, &m), ES_OK);
    int64_t before = esi_now_ns();
    e.schema = 3;
    assert_int_equal(esi_headers_set(&st, &e, "id-x", &subj, NULL, m), ES_OK);
    assert_string_equal(hdr(m, "Rita-Codec"), "binary");
    assert_string_equal(hdr(m, "Rita-Entity"), "account.a1");
    assert_string_equal(hdr(m, "Nats-Expected-Last-Subject-Sequence"), "0");
    assert_string_equal(hdr(m, "Es-Schema"), "3");
    assert_null(hdr(m, "Rita-Meta-x"));
    int64_t t = 0;
    assert_int_equal(es_time_parse(hdr(m, "Rita-Time"), &t), ES_OK);
    assert_true(t >= before && t <= esi_now_ns());
    esi_msg_destroy(m);
}

static void generated_ids_are_unique(void **state)
{
    (void)state;
    enum { N = 20000 };
    static char ids[N][ES_NEW_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        esi_new_id(ids[i]);
        assert_int_equal(strlen(ids[i]), ES_NEW_ID_LEN);
        assert_null(strpbrk(ids[i], " .*>\r\n"));
    }
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i], ids[i - 1]);
    assert_memory_equal(ids[0], ids[N - 1], 12); /* one process, one prefix */
}

static void times_round_trip(void **state)
{
    (void)state;
    char buf[ES_TIME_MAX];
    int64_t vals[] = {0, 1, 999999999, 1000000000, 1700000000123456789LL, 253402300799999999LL};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        int64_t back = -1;
        es_time_format(vals[i], buf);
        assert_int_equal(es_time_parse(buf, &back), ES_OK);
        assert_int_equal(back, vals[i]);
    }
    int64_t t;
    assert_int_equal(es_time_parse("2024-02-29T12:00:00Z", &t), ES_OK);
    assert_int_equal(t, 1709208000LL * 1000000000);
    assert_int_equal(es_time_parse("2024-02-29T13:30:00.5+01:30", &t), ES_OK);
    assert_int_equal(t, 1709208000LL * 1000000000 + 500000000);
    assert_int_equal(es_time_parse("2024-02-29T12:00:00.123456789123Z", &t), ES_OK);
    assert_int_equal(t % 1000000000, 123456789);
    const char *bad[] = {"",
                         "2024-02-29",
                         "2024-02-29T12:00:00",
                         "2024-13-01T00:00:00Z",
                         "2024-02-29T12:00:00.Z",
                         "2024-02-29T12:00:00Zjunk",
                         "2024-02-29 12:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(es_time_parse(bad[i], &t), ES_ERR_INVALID);
}

int main(void)
{
    esi_nats_open(); /* messages need the library's garbage collector */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builds_headers_as_specified),
        cmocka_unit_test(defaults_and_tenancy),
        cmocka_unit_test(generated_ids_are_unique),
        cmocka_unit_test(times_round_trip),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    esi_nats_close();
    return failed;
}
