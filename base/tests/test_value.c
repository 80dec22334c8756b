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

/* A map of `n` int entries, keys and values given in order. */
static es_value *map_of(es_arena *a, size_t n, const char *const *keys, const int64_t *values)
{
    es_value *m = es_value_new_map(a, n);
    for (size_t i = 0; i < n; i++) {
        m->u.map.entries[i].key = keys[i];
        m->u.map.entries[i].key_len = strlen(keys[i]);
        m->u.map.entries[i].value = *es_value_new_int(a, values[i]);
    }
    return m;
}

/* Maps with duplicate keys (general CBOR and MessagePack keep them): equal
 * is reflexive and symmetric, and compares the entries as a multiset. */
static void equal_with_duplicate_keys(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    const char *aa[] = {"a", "a"}, *ab[] = {"a", "b"}, *aab[] = {"a", "a", "b"},
               *aba[] = {"a", "b", "a"};
    es_value *x = map_of(a, 2, aa, (int64_t[]){1, 2});
    assert_true(es_value_equal(x, x));
    assert_true(es_value_equal(x, map_of(a, 2, aa, (int64_t[]){2, 1})));
    /* {a:1,a:1} and {a:1,a:2}: neither way equal */
    es_value *ones = map_of(a, 2, aa, (int64_t[]){1, 1});
    assert_false(es_value_equal(ones, x));
    assert_false(es_value_equal(x, ones));
    /* {a:1,a:1} and {a:1,b:1}: neither way */
    es_value *y = map_of(a, 2, ab, (int64_t[]){1, 1});
    assert_false(es_value_equal(ones, y));
    assert_false(es_value_equal(y, ones));
    /* another order of the same entries */
    es_value *p = map_of(a, 3, aab, (int64_t[]){1, 2, 3});
    es_value *q = map_of(a, 3, aba, (int64_t[]){2, 3, 1});
    assert_true(es_value_equal(p, q));
    assert_true(es_value_equal(q, p));
    assert_true(es_value_equal(p, p));
    es_value *r = map_of(a, 3, aba, (int64_t[]){2, 3, 2});
    assert_false(es_value_equal(p, r));
    assert_false(es_value_equal(r, p));
    es_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup_and_equality),
        cmocka_unit_test(identical_keeps_map_order),
        cmocka_unit_test(equal_with_duplicate_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
