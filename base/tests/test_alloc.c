/* The allocator hook (es/alloc.h): es_malloc and friends go through the
 * allocator set with es_allocator_set, and NULL puts libc's back. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <es/alloc.h>
#include <es/version.h>

typedef struct counts {
    int mallocs, reallocs, frees;
    bool fail;
} counts;

static void *count_malloc(size_t size, void *ctx)
{
    counts *c = ctx;
    c->mallocs++;
    return c->fail ? NULL : malloc(size);
}

static void *count_realloc(void *p, size_t size, void *ctx)
{
    counts *c = ctx;
    c->reallocs++;
    return c->fail ? NULL : realloc(p, size);
}

static void count_free(void *p, void *ctx)
{
    counts *c = ctx;
    c->frees++;
    free(p);
}

static void calls_go_through_the_allocator(void **state)
{
    (void)state;
    counts c = {0};
    es_allocator a = {count_malloc, count_realloc, count_free, &c};
    assert_int_equal(es_allocator_set(&a), ES_OK);
    char *p = es_malloc(8);
    assert_non_null(p);
    unsigned char *z = es_calloc(4, 16);
    assert_non_null(z);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    p = es_realloc(p, 4096);
    assert_non_null(p);
    es_free(p);
    es_free(z);
    es_free(NULL); /* accepted, and not handed to the allocator */
    assert_int_equal(es_allocator_set(NULL), ES_OK);
    assert_int_equal(c.mallocs, 2);
    assert_int_equal(c.reallocs, 1);
    assert_int_equal(c.frees, 2);
    /* libc's again: nothing more is counted */
    es_free(es_malloc(8));
    assert_int_equal(c.mallocs, 2);
}

static void failures_reach_the_caller(void **state)
{
    (void)state;
    counts c = {.fail = true};
    es_allocator a = {count_malloc, count_realloc, count_free, &c};
    assert_int_equal(es_allocator_set(&a), ES_OK);
    assert_null(es_malloc(8));
    assert_null(es_calloc(2, 8));
    assert_null(es_realloc(NULL, 8));
    /* n * size overflows: NULL without asking the allocator */
    int before = c.mallocs;
    assert_null(es_calloc(SIZE_MAX / 2, 3));
    assert_int_equal(c.mallocs, before);
    assert_int_equal(es_allocator_set(NULL), ES_OK);
}

static void an_incomplete_allocator_is_refused(void **state)
{
    (void)state;
    counts c = {0};
    es_allocator a = {count_malloc, NULL, count_free, &c};
    assert_int_equal(es_allocator_set(&a), ES_ERR_INVALID);
    es_free(es_malloc(8)); /* still libc's */
    assert_int_equal(c.mallocs, 0);
}

static void the_version_is_the_headers(void **state)
{
    (void)state;
    assert_string_equal(es_version(), ES_VERSION_STRING);
    char built[32];
    snprintf(built, sizeof built, "%d.%d.%d", ES_VERSION_MAJOR, ES_VERSION_MINOR, ES_VERSION_PATCH);
    assert_string_equal(es_version(), built);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calls_go_through_the_allocator),
        cmocka_unit_test(failures_reach_the_caller),
        cmocka_unit_test(an_incomplete_allocator_is_refused),
        cmocka_unit_test(the_version_is_the_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
