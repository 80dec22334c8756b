#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/value.h>

static es_value *sample(es_arena *a, int64_t n, const char *second_key)
{
    es_value *m = es_value_new_map(a, 2);
    m->u.map.entries[0].key = "n";
    m->u.map.entries[0].key_len = 1;
    m->u.map.entries[0].value = *es_value_new_int(a, n);
    m->u.map.entries[1].key = second_key;
    m->u.map.entries[1].key_len = strlen(second_key);
    m->u.map.entries[1].value = *es_value_new_string(a, "text", 4);
    return m;
}

static void lookup_and_equality(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_value *x = sample(a, 1, "s");
    es_value *y = sample(a, 1, "s");
    es_value *z = sample(a, 2, "s");
    es_value *w = sample(a, 1, "t");
    assert_true(es_value_equal(x, y));
    assert_false(es_value_equal(x, z));
    assert_false(es_value_equal(x, w));
    assert_true(es_value_is_string(es_value_get(x, "s"), "text"));
    assert_null(es_value_get(x, "missing"));
    assert_null(es_value_get(es_value_get(x, "n"), "n"));
    assert_int_equal(es_value_get(x, "n")->u.i, 1);

    es_value *b1 = es_value_new_bytes(a, "\0\1\2", 3);
    es_value *b2 = es_value_new_bytes(a, "\0\1\2", 3);
    assert_true(es_value_equal(b1, b2));
    b2->kind = ES_VALUE_LINK;
    assert_false(es_value_equal(b1, b2));
    es_arena_destroy(a);
}

/* The same entries in another order: equal, not identical; nested too. */
static void identical_keeps_map_order(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_value *x = sample(a, 1, "s");
    es_value *swapped = sample(a, 1, "s");
    es_value_entry first = swapped->u.map.entries[0];
    swapped->u.map.entries[0] = swapped->u.map.entries[1];
    swapped->u.map.entries[1] = first;
    assert_true(es_value_equal(x, swapped));
    assert_false(es_value_identical(x, swapped));
    assert_true(es_value_identical(x, sample(a, 1, "s")));
    assert_false(es_value_identical(x, sample(a, 2, "s")));

    es_value *outer1 = es_value_new_array(a, 1), *outer2 = es_value_new_array(a, 1);
    outer1->u.array.items[0] = *x;
    outer2->u.array.items[0] = *swapped;
    assert_true(es_value_equal(outer1, outer2));
    assert_false(es_value_identical(outer1, outer2));
    /* Duplicate keys (general CBOR, MessagePack) compare by place. */
    es_value *dup1 = sample(a, 1, "n"), *dup2 = sample(a, 1, "n");
    assert_true(es_value_identical(dup1, dup2));
    dup2->u.map.entries[1].value = *es_value_new_int(a, 7);
    assert_false(es_value_identical(dup1, dup2));
    assert_true(es_value_identical(NULL, NULL));
    assert_false(es_value_identical(x, NULL));
    es_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup_and_equality),
        cmocka_unit_test(identical_keeps_map_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
