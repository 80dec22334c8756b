/* Filters and tenant handles without a server: NATS subject coverage, the
 * set a list of filters comes down to, and what a tenant handle makes of a
 * filter or an event's tenant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/es.h>

#include "fake_store.h"
#include "filters.h"
#include "store_impl.h"

static void option_structs_start_at_their_defaults(void **state)
{
    (void)state;
    es_read_options o;
    memset(&o, 0xab, sizeof o);
    es_read_options_init(&o);
    assert_int_equal(o.after_seq, 0);
    assert_int_equal(o.up_to_seq, 0);
    es_read_options_init(NULL); /* harmless */
    es_filter f;
    memset(&f, 0xab, sizeof f);
    es_filter_init(&f);
    assert_null(f.tenant);
    assert_null(f.entity_type);
    assert_null(f.entity_id);
    assert_int_equal(f.entity_id_len, 0);
    assert_null(f.event_type);
}

static void subject_coverage(void **state)
{
    (void)state;
    assert_true(esi_subject_within("a.b.c", "a.b.c"));
    assert_true(esi_subject_within("a.b.c", "a.*.c"));
    assert_false(esi_subject_within("a.*.c", "a.b.c"));
    assert_true(esi_subject_within("a.b.c", "a.>"));
    assert_true(esi_subject_within("a.*.>", "a.>"));
    assert_false(esi_subject_within("a.>", "a.*.>")); /* a.b is in a.> only */
    assert_true(esi_subject_within("a.>", "a.>"));
    assert_false(esi_subject_within("a", "a.>"));      /* '>' takes one token or more */
    assert_false(esi_subject_within("a.b", "a.b.c"));
    assert_false(esi_subject_within("a.b.c", "a.b"));
    assert_true(esi_subject_within("a.b", "*.*"));
    assert_false(esi_subject_within("a.b", "*"));
    assert_false(esi_subject_within("ab.c", "a.c"));
    assert_false(esi_subject_within("a.*.opened", "*.x.*")); /* they cross, neither holds */
}

static es_filter filter(const char *type, const char *id, const char *event)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = type;
    f.entity_id = id;
    f.event_type = event;
    return f;
}

static void lists_come_down_to_sets(void **state)
{
    (void)state;
    fake_store fs;
    assert_int_equal(fake_store_open(&fs, "shop", 1000), ES_OK);
    esi_filter_set *set = NULL;
    /* Nested and repeated: the widest alone. */
    es_filter nested[] = {filter("order", "x", NULL), filter("order", NULL, NULL),
                          filter("order", "x", "opened"), filter("order", "x", NULL)};
    assert_int_equal(esi_filter_set_make(fs.st, nested, 4, &set), ES_OK);
    assert_int_equal(set->n, 1);
    assert_string_equal(set->subjects[0], "$ES.shop.order.>");
    esi_filter_set_free(set);
    /* Equal ones: the first stays. */
    es_filter same[] = {filter("order", "y", NULL), filter("cart", NULL, NULL),
                        filter("order", "y", NULL)};
    assert_int_equal(esi_filter_set_make(fs.st, same, 3, &set), ES_OK);
    assert_int_equal(set->n, 2);
    assert_string_equal(set->subjects[0], "$ES.shop.order.y.>");
    assert_string_equal(set->subjects[1], "$ES.shop.cart.>");
    esi_filter_set_free(set);
    /* Crossing ones stay (the server delivers an event of both once). */
    es_filter crossed[] = {filter("order", NULL, "opened"), filter(NULL, "x", NULL)};
    assert_int_equal(esi_filter_set_make(fs.st, crossed, 2, &set), ES_OK);
    assert_int_equal(set->n, 2);
    assert_string_equal(set->subjects[0], "$ES.shop.order.*.opened");
    assert_string_equal(set->subjects[1], "$ES.shop.*.x.>");
    esi_filter_set_free(set);
    /* None: every event. */
    assert_int_equal(esi_filter_set_make(fs.st, NULL, 0, &set), ES_OK);
    assert_int_equal(set->n, 1);
    assert_string_equal(set->subjects[0], "$ES.shop.>");
    esi_filter_set_free(set);
    /* Refused: a bad filter (named), too many, NULL with a count. */
    es_filter bad[] = {filter("order", NULL, NULL), filter("or der", NULL, NULL)};
    assert_int_equal(esi_filter_set_make(fs.st, bad, 2, &set), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "filter 1"));
    assert_null(set);
    es_filter many[ES_FILTERS_MAX + 1];
    for (size_t i = 0; i <= ES_FILTERS_MAX; i++)
        many[i] = filter("order", NULL, NULL);
    assert_int_equal(esi_filter_set_make(fs.st, many, ES_FILTERS_MAX + 1, &set), ES_ERR_INVALID);
    assert_int_equal(esi_filter_set_make(fs.st, NULL, 1, &set), ES_ERR_INVALID);
    fake_store_close(&fs);
}

static void a_tenant_handle_fills_and_refuses(void **state)
{
    (void)state;
    fake_store fs;
    assert_int_equal(fake_store_open(&fs, "shop", 1000), ES_OK);
    es_store *t = NULL;
    assert_int_equal(es_store_tenant(fs.st, "acme", &t), ES_ERR_INVALID); /* no tenancy */
    fs.st->config.tenancy = true; /* as if the stream said so */
    assert_int_equal(es_store_tenant(fs.st, "acme", &t), ES_OK);
    char subject[ES_SUBJECT_MAX];
    assert_int_equal(es_filter_subject(t, NULL, subject, sizeof subject), ES_OK);
    assert_string_equal(subject, "$ES.shop.acme.>");
    es_filter f = filter("order", NULL, NULL);
    assert_int_equal(es_filter_subject(t, &f, subject, sizeof subject), ES_OK);
    assert_string_equal(subject, "$ES.shop.acme.order.>");
    f.tenant = "acme";
    assert_int_equal(es_filter_subject(t, &f, subject, sizeof subject), ES_OK);
    f.tenant = "globex";
    assert_int_equal(es_filter_subject(t, &f, subject, sizeof subject), ES_ERR_INVALID);
    assert_int_equal(es_filter_subject(fs.st, &f, subject, sizeof subject), ES_OK);
    assert_string_equal(subject, "$ES.shop.globex.order.>");
    /* An event's tenant: filled in through the handle, required without. */
    assert_int_equal(esi_tenant_check(t, NULL, 0), ES_OK);
    assert_int_equal(esi_tenant_check(t, "acme", 0), ES_OK);
    assert_int_equal(esi_tenant_check(t, "globex", 3), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "event 3"));
    assert_int_equal(esi_tenant_check(fs.st, NULL, 0), ES_ERR_INVALID);
    es_event_spec e = fake_order_event("o-1", "opened", NULL);
    esi_subject subj;
    assert_int_equal(esi_subject_for(t, &e, &subj), ES_OK);
    assert_string_equal(subj.full, "$ES.shop.acme.order.o-1.opened");
    /* Re-scoping replaces; the view's end leaves the store. */
    es_store *t2 = NULL;
    assert_int_equal(es_store_tenant(t, "globex", &t2), ES_OK);
    assert_string_equal(es_store_tenant_name(t2), "globex");
    assert_ptr_equal(t2->root, fs.st);
    es_store_destroy(t);
    es_store_destroy(t2);
    assert_null(es_store_tenant_name(fs.st));
    fs.st->config.tenancy = false;
    fake_store_close(&fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(option_structs_start_at_their_defaults),
        cmocka_unit_test(subject_coverage),
        cmocka_unit_test(lists_come_down_to_sets),
        cmocka_unit_test(a_tenant_handle_fills_and_refuses),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
