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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup_and_equality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
