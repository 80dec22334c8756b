/* Out of memory in base: every allocation of the arena, the buffer and the
 * value constructors fails in turn (failalloc.h); each run reports it and
 * leaks nothing. Escapes write into the caller's buffer: they never
 * allocate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/arena.h>
#include <es/buf.h>
#include <es/kvkey.h>
#include <es/value.h>

#include "base/tests/failalloc.h"

/* Many small allocations and a few large ones: the arena grows block by
 * block; a reset keeps one block. */
static es_status arena_work(void *ctx)
{
    (void)ctx;
    es_arena *a = NULL;
    es_status s = es_arena_create(1 << 20, &a);
    for (int i = 0; i < 300 && s == ES_OK; i++) {
        char *p = es_arena_strndup(a, "some text", 9);
        uint64_t *q = es_arena_calloc(a, (size_t)(i % 7 + 1) * 16, sizeof *q);
        if (p == NULL || q == NULL)
            s = ES_ERR_NOMEM;
        else if (strcmp(p, "some text") != 0 || q[0] != 0)
            s = ES_ERR_PROTOCOL;
    }
    if (s == ES_OK) {
        es_arena_reset(a);
        if (es_arena_alloc(a, 20000) == NULL)
            s = ES_ERR_NOMEM;
    }
    es_arena_destroy(a);
    return s;
}

static void arena_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(arena_work, NULL, 5);
}

static es_status buf_work(void *ctx)
{
    (void)ctx;
    es_buf b = ES_BUF_INIT;
    es_status s = ES_OK;
    for (int i = 0; i < 2000 && s == ES_OK; i++)
        s = i % 3 == 0 ? es_buf_append_byte(&b, 'x') : es_buf_append_str(&b, "abc");
    if (s == ES_OK)
        s = es_buf_reserve(&b, 100000);
    if (s == ES_OK && (b.len != 667 + 1333 * 3 || b.data[0] != 'x'))
        s = ES_ERR_PROTOCOL;
    es_buf_free(&b);
    return s;
}

static void buf_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(buf_work, NULL, 3);
}

/* A tree of every constructor's values, compared with one built beforehand. */
static es_value *build_tree(es_arena *a)
{
    es_value *map = es_value_new_map(a, 64);
    if (map == NULL)
        return NULL;
    static char key[64][8];
    for (size_t i = 0; i < 64; i++) {
        es_value *arr = es_value_new_array(a, 4);
        es_value *str = es_value_new_string(a, "a longer string value", 21);
        es_value *bytes = es_value_new_bytes(a, "\x01\x02\x03", 3);
        es_value *n = es_value_new_int(a, (int64_t)i);
        es_value *b = es_value_new_bool(a, i % 2 == 0);
        es_value *nul = es_value_new_null(a);
        if (!arr || !str || !bytes || !n || !b || !nul)
            return NULL;
        arr->u.array.items[0] = *str;
        arr->u.array.items[1] = *bytes;
        arr->u.array.items[2] = *n;
        arr->u.array.items[3] = i % 3 ? *b : *nul;
        key[i][0] = (char)('A' + i % 26);
        key[i][1] = (char)('a' + i / 26);
        key[i][2] = '\0';
        map->u.map.entries[i].key = key[i];
        map->u.map.entries[i].key_len = 2;
        map->u.map.entries[i].value = *arr;
    }
    return map;
}

static es_status value_work(void *ctx)
{
    const es_value *want = ctx;
    es_arena *a = NULL;
    es_status s = es_arena_create(0, &a);
    es_value *v = s == ES_OK ? build_tree(a) : NULL;
    if (s == ES_OK)
        s = v == NULL ? ES_ERR_NOMEM : es_value_equal(v, want) ? ES_OK : ES_ERR_PROTOCOL;
    es_arena_destroy(a);
    return s;
}

static void value_constructors_out_of_memory(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_value *want = build_tree(a);
    assert_non_null(want);
    failalloc_expect_nomem(value_work, want, 3);
    es_arena_destroy(a);
}

/* Decoders tell a full arena (the caller's bound) from a failed allocation. */
static void arena_tells_limit_from_memory(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(8192, &a), ES_OK);
    assert_null(es_arena_alloc(a, 10000));
    assert_int_equal(es_arena_error(a, "x"), ES_ERR_LIMIT);
    assert_string_equal(es_last_error(), "x: arena limit reached");
    failalloc_fail_at(1, false);
    assert_null(es_arena_alloc(a, 100));
    failalloc_fail_at(0, false);
    assert_int_equal(es_arena_error(a, "x"), ES_ERR_NOMEM);
    assert_non_null(es_arena_alloc(a, 100));
    assert_null(es_arena_calloc(a, SIZE_MAX / 2, 4));
    assert_int_equal(es_arena_error(a, "x"), ES_ERR_LIMIT);
    es_arena_destroy(a);
    /* the first failure is the one reported, also after later allocations */
    assert_int_equal(es_arena_create(1 << 16, &a), ES_OK);
    failalloc_fail_at(1, false);
    assert_null(es_arena_alloc(a, 100));
    assert_null(es_arena_alloc(a, 1 << 17));
    assert_non_null(es_arena_alloc(a, 100));
    failalloc_fail_at(0, false);
    assert_int_equal(es_arena_error(a, "x"), ES_ERR_NOMEM);
    failalloc_fail_at(1, false);
    assert_null(es_arena_alloc(a, 1 << 14));
    failalloc_fail_at(0, false);
    es_arena_reset(a); /* forgets it */
    assert_null(es_arena_alloc(a, 1 << 17));
    assert_int_equal(es_arena_error(a, "x"), ES_ERR_LIMIT);
    es_arena_destroy(a);
}

static es_status escape_work(void *ctx)
{
    (void)ctx;
    const char id[] = "did:plc:ab/c d\x01";
    char esc[128], back[128];
    size_t n = 0, m = 0;
    es_status s = es_kv_key_escape(id, sizeof id - 1, esc, sizeof esc, &n);
    if (s == ES_OK)
        s = es_kv_key_unescape(esc, n, back, sizeof back, &m);
    if (s == ES_OK && (m != sizeof id - 1 || memcmp(back, id, m) != 0))
        s = ES_ERR_PROTOCOL;
    return s;
}

static void escapes_never_allocate(void **state)
{
    (void)state;
    failalloc_expect_nomem(escape_work, NULL, 0);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_out_of_memory),
        cmocka_unit_test(buf_out_of_memory),
        cmocka_unit_test(value_constructors_out_of_memory),
        cmocka_unit_test(arena_tells_limit_from_memory),
        cmocka_unit_test(escapes_never_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
