#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/arena.h>

static void alloc_is_aligned_and_usable(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    for (int i = 1; i < 2000; i++) {
        unsigned char *p = es_arena_alloc(a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        memset(p, 0xAB, (size_t)i);
    }
    es_arena_destroy(a);
}

static void limit_is_never_exceeded(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(10000, &a), ES_OK);
    size_t got = 0;
    while (es_arena_alloc(a, 100) != NULL)
        got += 100;
    assert_true(got <= 10000);
    assert_true(got >= 5000);
    assert_null(es_arena_alloc(a, SIZE_MAX));
    assert_null(es_arena_calloc(a, SIZE_MAX / 2, 4));
    es_arena_destroy(a);
}

static void reset_reuses_memory(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 100; i++)
            assert_non_null(es_arena_alloc(a, 1000));
        es_arena_reset(a);
        assert_int_equal(es_arena_used(a), 0);
    }
    char *s = es_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    es_arena_destroy(a);
    es_arena_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alloc_is_aligned_and_usable),
        cmocka_unit_test(limit_is_never_exceeded),
        cmocka_unit_test(reset_reuses_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
