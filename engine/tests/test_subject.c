/* The entity-id escape and name validation: the subject-safety contract. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <es/subject.h>

#include "wire.h"

static void escapes_as_specified(void **state)
{
    (void)state;
    char out[ES_ID_TOKEN_MAX];
    size_t n;
    assert_int_equal(es_id_escape("did:web:example.com", 19, out, sizeof out, &n), ES_OK);
    assert_string_equal(out, "did:web:example%2Ecom");
    assert_int_equal(n, strlen(out));
    assert_int_equal(es_id_escape("a b%c*d>e\x7f\x01", 11, out, sizeof out, NULL), ES_OK);
    assert_string_equal(out, "a%20b%25c%2Ad%3Ee%7F%01");
    assert_int_equal(es_id_escape("\xc3\xa9t\xc3\xa9", 5, out, sizeof out, NULL), ES_OK);
    assert_string_equal(out, "%C3%A9t%C3%A9");
    assert_int_equal(es_id_escape("plain-id_09:/@+", 15, out, sizeof out, NULL), ES_OK);
    assert_string_equal(out, "plain-id_09:/@+");
}

static void every_byte_round_trips(void **state)
{
    (void)state;
    char id[256], token[ES_ID_TOKEN_MAX], back[ES_ID_MAX + 1];
    for (int i = 0; i < 256; i++)
        id[i] = (char)i;
    size_t n, m;
    assert_int_equal(es_id_escape(id, 256, token, sizeof token, &n), ES_OK);
    /* A token never holds a subject separator, wildcard or whitespace. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)token[i];
        assert_true(c > 0x20 && c < 0x7F && c != '.' && c != '*' && c != '>');
    }
    assert_int_equal(es_id_unescape(token, n, back, sizeof back, &m), ES_OK);
    assert_int_equal(m, 256);
    assert_memory_equal(back, id, 256);
}

static void random_ids_round_trip(void **state)
{
    (void)state;
    srand(42);
    for (int round = 0; round < 2000; round++) {
        char id[64], token[ES_ID_TOKEN_MAX], back[ES_ID_MAX + 1];
        size_t len = (size_t)(rand() % 63) + 1, n, m;
        for (size_t i = 0; i < len; i++)
            id[i] = (char)(rand() % 256);
        assert_int_equal(es_id_escape(id, len, token, sizeof token, &n), ES_OK);
        assert_null(memchr(token, '.', n));
        assert_int_equal(es_id_unescape(token, n, back, sizeof back, &m), ES_OK);
        assert_int_equal(m, len);
        assert_memory_equal(back, id, len);
    }
}

static void refuses_bad_ids_and_tokens(void **state)
{
    (void)state;
    char out[ES_ID_TOKEN_MAX];
    static char big[ES_ID_MAX + 1];
    memset(big, 'a', sizeof big);
    assert_int_equal(es_id_escape("", 0, out, sizeof out, NULL), ES_ERR_INVALID);
    assert_int_equal(es_id_escape(NULL, 3, out, sizeof out, NULL), ES_ERR_INVALID);
    assert_int_equal(es_id_escape(big, sizeof big, out, sizeof out, NULL), ES_ERR_INVALID);
    assert_int_equal(es_id_escape(big, ES_ID_MAX, out, sizeof out, NULL), ES_OK);
    assert_int_equal(es_id_escape("abc", 3, out, 3, NULL), ES_ERR_LIMIT); /* no room for NUL */
    /* Tokens that no escape produces are refused, so escaping stays 1:1. */
    const char *bad[] = {"a.b", "a*", ">", "a b", "%2e", "%41", "%4", "%", "%G0", "a%2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(es_id_unescape(bad[i], strlen(bad[i]), out, sizeof out, NULL),
                         ES_ERR_INVALID);
}

static void validates_names(void **state)
{
    (void)state;
    assert_true(es_valid_store_name("bank_01-x"));
    assert_true(es_valid_store_name("abcdefghijklmnopqrstuvwxyz012345"));   /* 32 */
    assert_false(es_valid_store_name("abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
    assert_false(es_valid_store_name(""));
    assert_false(es_valid_store_name(NULL));
    assert_false(es_valid_store_name("a.b"));
    assert_false(es_valid_store_name("a*"));
    assert_false(es_valid_store_name("a>"));
    assert_false(es_valid_store_name("a b"));
    assert_true(es_valid_name("app_bsky_feed_like"));
    assert_false(es_valid_name("app.bsky.feed.like"));
    assert_false(es_valid_name("caf\xc3\xa9"));
    char longname[ES_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname);
    longname[ES_NAME_MAX] = '\0';
    assert_true(es_valid_name(longname));
    longname[ES_NAME_MAX] = 'n';
    longname[ES_NAME_MAX + 1] = '\0';
    assert_false(es_valid_name(longname));
    /* entity types reach 317 characters, the longest valid ATProto NSID */
    char longtype[ES_ENTITY_TYPE_MAX + 2];
    memset(longtype, 't', sizeof longtype);
    longtype[ES_ENTITY_TYPE_MAX] = '\0';
    assert_int_equal(ES_ENTITY_TYPE_MAX, 317);
    assert_true(es_valid_entity_type(longtype));
    assert_false(es_valid_name(longtype));
    assert_false(es_valid_entity_type("app.bsky.feed.like"));
    longtype[ES_ENTITY_TYPE_MAX] = 't';
    longtype[ES_ENTITY_TYPE_MAX + 1] = '\0';
    assert_false(es_valid_entity_type(longtype));
}

static void splits_subjects(void **state)
{
    (void)state;
    char s1[] = "$ES.bank.account.acc%2E1.deposited";
    esi_subject_parts p;
    assert_int_equal(esi_subject_split(s1, "bank", false, &p), ES_OK);
    assert_null(p.tenant);
    assert_string_equal(p.type, "account");
    assert_string_equal(p.id_token, "acc%2E1");
    assert_string_equal(p.event, "deposited");
    char s2[] = "$ES.bank.acme.account.a1.opened";
    assert_int_equal(esi_subject_split(s2, "bank", true, &p), ES_OK);
    assert_string_equal(p.tenant, "acme");
    assert_string_equal(p.event, "opened");
    char s3[] = "$ES.bank.account.a1.opened.extra";
    assert_int_equal(esi_subject_split(s3, "bank", false, &p), ES_ERR_PROTOCOL);
    char s4[] = "$ES.bank.account.a1";
    assert_int_equal(esi_subject_split(s4, "bank", false, &p), ES_ERR_PROTOCOL);
    char s5[] = "$ES.bank.account..opened";
    assert_int_equal(esi_subject_split(s5, "bank", false, &p), ES_ERR_PROTOCOL);
    /* Another store's subject, or one that only starts like ours. */
    char s6[] = "$ES.banks.account.a1.opened";
    assert_int_equal(esi_subject_split(s6, "bank", false, &p), ES_ERR_PROTOCOL);
    char s7[] = "$XS.bank.account.a1.opened";
    assert_int_equal(esi_subject_split(s7, "bank", false, &p), ES_ERR_PROTOCOL);
}

/* Subjects within a store (as imports and backups carry them), checked
 * part by part, and the store named by a stream. */
static void splits_and_checks_local_subjects(void **state)
{
    (void)state;
    esi_subject_parts p;
    char id[ES_ID_MAX + 1];
    size_t id_len = 0;
    char l1[] = "account.acc%2E1.deposited";
    assert_int_equal(esi_subject_split_local(l1, false, &p), ES_OK);
    assert_int_equal(esi_subject_parts_check(&p, id, &id_len), ES_OK);
    assert_string_equal(id, "acc.1");
    assert_int_equal(id_len, 5);
    char l2[] = "acme.account.a1.opened";
    assert_int_equal(esi_subject_split_local(l2, true, &p), ES_OK);
    assert_string_equal(p.tenant, "acme");
    assert_int_equal(esi_subject_parts_check(&p, NULL, NULL), ES_OK);
    char l3[] = "acme.account.a1.opened";
    assert_int_equal(esi_subject_split_local(l3, false, &p), ES_ERR_PROTOCOL);
    assert_non_null(strstr(es_last_error(), "<type>.<id>.<event>"));
    const char *bad_parts[] = {"a*.b.c", "a.b.c>", "a.b%2e.c", "a.b c.d", "a.%41.c"};
    for (size_t i = 0; i < sizeof bad_parts / sizeof *bad_parts; i++) {
        char copy[32];
        strcpy(copy, bad_parts[i]);
        if (esi_subject_split_local(copy, false, &p) == ES_OK &&
            esi_subject_parts_check(&p, id, NULL) == ES_OK)
            fail_msg("accepted: %s", bad_parts[i]);
    }

    char store[ES_STORE_NAME_MAX + 1];
    assert_true(esi_wire_store_of_stream("ES_bank", store));
    assert_string_equal(store, "bank");
    assert_false(esi_wire_store_of_stream("ES_", store));
    assert_false(esi_wire_store_of_stream("KV_ES_bank_keys", store));
    assert_false(esi_wire_store_of_stream("ES_a.b", store));
    assert_false(esi_wire_store_of_stream(NULL, store));
    assert_int_equal(esi_wire_store_prefix_len("bank"), strlen("$ES.bank."));
    assert_string_equal(esi_wire_all_stores_subjects(), "$ES.>");
    char bucket[ESI_KV_BUCKET_MAX];
    for (int k = 0; k < ES_BUCKET_KINDS; k++) {
        assert_int_equal(esi_bucket_name("bank", (esi_bucket_kind)k, bucket), ES_OK);
        assert_string_equal(bucket + strlen("ES_bank_"), esi_bucket_kind_name((esi_bucket_kind)k));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_as_specified),
        cmocka_unit_test(every_byte_round_trips),
        cmocka_unit_test(random_ids_round_trip),
        cmocka_unit_test(refuses_bad_ids_and_tokens),
        cmocka_unit_test(validates_names),
        cmocka_unit_test(splits_subjects),
        cmocka_unit_test(splits_and_checks_local_subjects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
