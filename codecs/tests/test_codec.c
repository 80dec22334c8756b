#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include <es/cid.h>
#include <es/codec.h>

static const char *const CODECS[] = {"binary", "json", "msgpack", "cbor", "dag-cbor"};
#define NCODECS (sizeof CODECS / sizeof CODECS[0])

static es_arena *new_arena(void)
{
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    return a;
}

static es_value_entry entry(const char *key, const es_value *v)
{
    return (es_value_entry){key, strlen(key), *v};
}

/* What a value needs from a codec. */
typedef struct needs {
    bool floats, big_uint, only_bytes;
} needs;

static void walk(const es_value *v, needs *n)
{
    if (v->kind == ES_VALUE_FLOAT)
        n->floats = true;
    if (v->kind == ES_VALUE_UINT)
        n->big_uint = true;
    if (v->kind == ES_VALUE_ARRAY)
        for (size_t i = 0; i < v->u.array.count; i++)
            walk(&v->u.array.items[i], n);
    if (v->kind == ES_VALUE_MAP)
        for (size_t i = 0; i < v->u.map.count; i++)
            walk(&v->u.map.entries[i].value, n);
}

static bool can_represent(const char *codec, const es_value *v)
{
    needs n = {false, false, v->kind == ES_VALUE_BYTES};
    walk(v, &n);
    if (strcmp(codec, "binary") == 0)
        return n.only_bytes;
    if (strcmp(codec, "json") == 0)
        return !n.big_uint; /* jansson reads integers as int64 only */
    if (strcmp(codec, "dag-cbor") == 0)
        return !n.floats && !n.big_uint;
    return true;
}

/* A record like the ones atproto stores, plus the kinds it lacks. */
static es_value *samples(es_arena *a, size_t *count)
{
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, "x", 1, cid), ES_OK);
    es_value *link = es_value_new_bytes(a, cid, sizeof cid);
    link->kind = ES_VALUE_LINK;
    es_value *tags = es_value_new_array(a, 3);
    tags->u.array.items[0] = *es_value_new_string(a, "caf\xc3\xa9", 5);
    tags->u.array.items[1] = *es_value_new_null(a);
    tags->u.array.items[2] = *es_value_new_int(a, INT64_MIN);
    es_value *empty_map = es_value_new_map(a, 0);
    es_value *record = es_value_new_map(a, 8);
    record->u.map.entries[0] = entry("$type", es_value_new_string(a, "app.bsky.feed.post", 18));
    record->u.map.entries[1] = entry("text", es_value_new_string(a, "hello \"world\"\n", 14));
    record->u.map.entries[2] =
        entry("createdAt", es_value_new_string(a, "2024-01-01T00:00:00Z", 20));
    record->u.map.entries[3] = entry("langs", tags);
    record->u.map.entries[4] = entry("ref", link);
    record->u.map.entries[5] = entry("sig", es_value_new_bytes(a, "\x00\xff\x10", 3));
    record->u.map.entries[6] = entry("n", es_value_new_int(a, 1234567890123));
    record->u.map.entries[7] = entry("meta", empty_map);

    es_value *floats = es_value_new_array(a, 3);
    floats->u.array.items[0] = (es_value){.kind = ES_VALUE_FLOAT, .u.f = 0.1};
    floats->u.array.items[1] = (es_value){.kind = ES_VALUE_FLOAT, .u.f = -2.0};
    floats->u.array.items[2] = (es_value){.kind = ES_VALUE_FLOAT, .u.f = 1e300};
    es_value *big = es_value_new_array(a, 1);
    big->u.array.items[0] = (es_value){.kind = ES_VALUE_UINT, .u.u = UINT64_MAX};

    es_value *all = es_arena_calloc(a, 6, sizeof *all);
    all[0] = *record;
    all[1] = *floats;
    all[2] = *big;
    all[3] = *es_value_new_bytes(a, "\x01\x02\x03", 3);
    all[4] = *es_value_new_bool(a, true);
    all[5] = *es_value_new_array(a, 0);
    *count = 6;
    return all;
}

static void builtins_found(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODECS; i++) {
        const es_codec *c = es_codec_find(CODECS[i]);
        assert_non_null(c);
        assert_string_equal(c->name, CODECS[i]);
        assert_ptr_equal(es_codec_find_n("dag-cbor-and-more", 8), es_codec_find("dag-cbor"));
    }
    assert_null(es_codec_find("JSON"));
    assert_null(es_codec_find(""));
    assert_null(es_codec_find(NULL));
    es_buf out = ES_BUF_INIT;
    es_value v = {.kind = ES_VALUE_NULL};
    assert_int_equal(es_codec_encode("protobuf", &v, &out), ES_ERR_NO_CODEC);
    assert_non_null(strstr(es_last_error(), "protobuf"));
    /* binary writes only bytes */
    assert_int_equal(es_codec_encode("binary", &v, &out), ES_ERR_ENCODE);
    es_buf_free(&out);
}

/* Every sample through every pair of codecs that can both represent it:
 * encode in A, decode, encode in B, decode: the value is unchanged. */
static void round_trips_between_codecs(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    size_t n = 0;
    es_value *all = samples(a, &n);
    size_t checked = 0;
    for (size_t s = 0; s < n; s++) {
        for (size_t i = 0; i < NCODECS; i++) {
            es_buf first = ES_BUF_INIT;
            es_status st = es_codec_encode(CODECS[i], &all[s], &first);
            if (!can_represent(CODECS[i], &all[s])) {
                /* json writes big integers it cannot read back (jansson's int64) */
                if (strcmp(CODECS[i], "json") != 0)
                    assert_int_equal(st, ES_ERR_ENCODE);
                es_buf_free(&first);
                continue;
            }
            if (st != ES_OK)
                fail_msg("sample %zu in %s: %s", s, CODECS[i], es_last_error());
            for (size_t j = 0; j < NCODECS; j++) {
                if (!can_represent(CODECS[j], &all[s]))
                    continue;
                es_buf second = ES_BUF_INIT;
                st = es_codec_convert(CODECS[i], first.data, first.len, CODECS[j], a, &second);
                if (st != ES_OK)
                    fail_msg("sample %zu %s -> %s: %s", s, CODECS[i], CODECS[j], es_last_error());
                es_value *back = NULL;
                if (es_codec_decode(CODECS[j], second.data, second.len, a, &back) != ES_OK)
                    fail_msg("sample %zu %s -> %s: reading back: %s", s, CODECS[i], CODECS[j],
                             es_last_error());
                if (!es_value_equal(back, &all[s]))
                    fail_msg("sample %zu changed through %s -> %s", s, CODECS[i], CODECS[j]);
                es_buf_free(&second);
                checked++;
            }
            es_buf_free(&first);
        }
    }
    assert_true(checked >= 40);
    es_arena_destroy(a);
}

static void whole_payload_is_one_value(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    es_value *v = NULL;
    assert_int_equal(es_codec_decode("cbor", (const uint8_t *)"\x01\x02", 2, a, &v), ES_ERR_DECODE);
    assert_non_null(strstr(es_last_error(), "after the value"));
    assert_int_equal(es_codec_decode("msgpack", (const uint8_t *)"\x01\x02", 2, a, &v),
                     ES_ERR_DECODE);
    assert_int_equal(es_codec_decode("json", (const uint8_t *)"1 2", 3, a, &v), ES_ERR_DECODE);
    assert_int_equal(es_codec_decode("binary", (const uint8_t *)"\x01\x02", 2, a, &v), ES_OK);
    assert_int_equal(v->u.bytes.len, 2);
    es_arena_destroy(a);
}

/* A user codec: "upper" stores a STRING upper-cased, reads it back as is. */
static int upper_calls;

static es_status upper_encode(const es_codec *c, const es_value *v, es_buf *out)
{
    (*(int *)c->user)++;
    if (v->kind != ES_VALUE_STRING)
        return ES_ERR_ENCODE;
    for (size_t i = 0; i < v->u.str.len; i++) {
        char ch = v->u.str.ptr[i];
        es_status s = es_buf_append_byte(out, (uint8_t)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch));
        if (s != ES_OK)
            return s;
    }
    return ES_OK;
}

static es_status upper_decode(const es_codec *c, const uint8_t *buf, size_t len, es_arena *arena,
                              es_value **out)
{
    (*(int *)c->user)++;
    *out = es_value_new_string(arena, (const char *)buf, len);
    return *out ? ES_OK : ES_ERR_LIMIT;
}

static void user_codecs(void **state)
{
    (void)state;
    es_codec upper = {"x-upper", upper_encode, upper_decode, &upper_calls};
    assert_int_equal(es_codec_register(&upper), ES_OK);
    assert_int_equal(es_codec_register(&upper), ES_ERR_EXISTS);
    es_codec clash = {"json", upper_encode, upper_decode, NULL};
    assert_int_equal(es_codec_register(&clash), ES_ERR_EXISTS);
    es_codec bad = {"has space", upper_encode, upper_decode, NULL};
    assert_int_equal(es_codec_register(&bad), ES_ERR_INVALID);
    bad.name = "";
    assert_int_equal(es_codec_register(&bad), ES_ERR_INVALID);
    char long_name[ES_CODEC_NAME_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    bad.name = long_name;
    assert_int_equal(es_codec_register(&bad), ES_ERR_INVALID);
    bad.name = "no-decoder";
    bad.decode = NULL;
    assert_int_equal(es_codec_register(&bad), ES_ERR_INVALID);

    es_arena *a = new_arena();
    es_buf out = ES_BUF_INIT;
    assert_int_equal(es_codec_convert("json", (const uint8_t *)"\"shout\"", 7, "x-upper", a, &out),
                     ES_OK);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "SHOUT", 5);
    es_buf_clear(&out);
    assert_int_equal(es_codec_convert("x-upper", (const uint8_t *)"hi", 2, "json", a, &out), ES_OK);
    assert_memory_equal(out.data, "\"hi\"", 4);
    assert_int_equal(upper_calls, 2);
    es_buf_free(&out);
    es_arena_destroy(a);
}

/* Threads register distinct names and race for one shared name while
 * others look codecs up: every distinct name lands, the shared one once. */
#define THREADS    4
#define PER_THREAD 50
static int shared_wins[THREADS];

static void *register_many(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d-codec-%d", t, i);
        es_codec c = {name, upper_encode, upper_decode, &upper_calls};
        if (es_codec_register(&c) != ES_OK)
            return (void *)1;
        if (es_codec_find("dag-cbor") == NULL || es_codec_find(name) == NULL)
            return (void *)1;
        es_codec shared = {"shared", upper_encode, upper_decode, &upper_calls};
        if (es_codec_register(&shared) == ES_OK)
            shared_wins[t]++;
    }
    return NULL;
}

static void concurrent_registration(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, register_many, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++) {
        void *rc = NULL;
        pthread_join(th[t], &rc);
        assert_null(rc);
    }
    int wins = 0;
    for (int t = 0; t < THREADS; t++)
        wins += shared_wins[t];
    assert_int_equal(wins, 1);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            char name[32];
            snprintf(name, sizeof name, "t%d-codec-%d", t, i);
            assert_non_null(es_codec_find(name));
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builtins_found),
        cmocka_unit_test(round_trips_between_codecs),
        cmocka_unit_test(whole_payload_is_one_value),
        cmocka_unit_test(user_codecs),
        cmocka_unit_test(concurrent_registration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
