#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include <es/base.h>
#include <es/cbor.h>
#include <es/cid.h>
#include <es/json.h>

#include "corpus.h"

static es_arena *new_arena(void)
{
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    return a;
}

static es_value *parse(es_arena *a, bool atproto, const char *text)
{
    es_json_options o;
    es_json_options_init(&o);
    o.atproto = atproto;
    es_value *v = NULL;
    es_status s = es_json_decode(text, strlen(text), &o, a, &v);
    if (s != ES_OK)
        fail_msg("decode of %s failed: %s", text, es_last_error());
    return v;
}

static void parse_refused(bool atproto, const char *text, es_status status, const char *why)
{
    es_arena *a = new_arena();
    es_json_options o;
    es_json_options_init(&o);
    o.atproto = atproto;
    es_value *v = (es_value *)1;
    es_status s = es_json_decode(text, strlen(text), &o, a, &v);
    if (s != status || strstr(es_last_error(), why) == NULL)
        fail_msg("%s: expected %d with '%s', got %d: %s", text, status, why, s, es_last_error());
    assert_null(v);
    es_arena_destroy(a);
}

/* Encode v and compare with the exact text. */
static void writes(const es_value *v, const char *want)
{
    es_buf out = ES_BUF_INIT;
    es_status s = es_json_encode(v, NULL, &out);
    if (s != ES_OK)
        fail_msg("encode failed: %s", es_last_error());
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    es_buf_free(&out);
}

static void text_round_trip(const char *text)
{
    es_arena *a = new_arena();
    writes(parse(a, false, text), text);
    es_arena_destroy(a);
}

#define CID_TEXT "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"

static void plain_json(void **state)
{
    (void)state;
    text_round_trip("{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}");
    text_round_trip("[-9223372036854775808,9223372036854775807,0]");
    text_round_trip("\"tab\\there \\\"quoted\\\" back\\\\slash \\u0001 \\n\\r\"");
    text_round_trip("\"h\xc3\xa9llo \xf0\x9f\x98\x80\"");
    text_round_trip("[1.5,-0.25,1e+300,0.1,1.0,-0.0,123.456]");
    text_round_trip("{}");
    text_round_trip("[]");
    text_round_trip("{\"z\":1,\"a\":2}"); /* key order is kept */
    es_arena *a = new_arena();
    es_value *v = parse(a, false, "  {\"nul\": \"a\\u0000b\"}  ");
    const es_value *s = es_value_get(v, "nul");
    assert_int_equal(s->u.str.len, 3);
    assert_memory_equal(s->u.str.ptr, "a\0b", 3);
    v = parse(a, false, "2.5");
    assert_int_equal(v->kind, ES_VALUE_FLOAT);
    v = parse(a, false, "2.0");
    assert_int_equal(v->kind, ES_VALUE_FLOAT);
    v = parse(a, true, "2.0");
    assert_int_equal(v->kind, ES_VALUE_INT);
    assert_int_equal(v->u.i, 2);
    /* floats that have no JSON form */
    es_value nan = {.kind = ES_VALUE_FLOAT};
    uint64_t bits = 0x7ff8000000000000ull;
    memcpy(&nan.u.f, &bits, sizeof bits);
    es_buf out = ES_BUF_INIT;
    assert_int_equal(es_json_encode(&nan, NULL, &out), ES_ERR_ENCODE);
    es_json_options o;
    es_json_options_init(&o);
    o.atproto = true;
    es_value f = {.kind = ES_VALUE_FLOAT, .u.f = 1.5};
    assert_int_equal(es_json_encode(&f, &o, &out), ES_ERR_ENCODE);
    es_value bad = {.kind = ES_VALUE_STRING, .u.str = {"\xff", 1}};
    assert_int_equal(es_json_encode(&bad, NULL, &out), ES_ERR_ENCODE);
    es_value big = {.kind = ES_VALUE_UINT, .u.u = UINT64_MAX};
    es_buf_clear(&out);
    assert_int_equal(es_json_encode(&big, NULL, &out), ES_OK);
    assert_memory_equal(out.data, "18446744073709551615", out.len);
    es_buf_free(&out);
    es_arena_destroy(a);
}

static void atproto_forms(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    es_value *v = parse(a, true,
                        "{\"l\":{\"$link\":\"" CID_TEXT "\"},\"b\":{\"$bytes\":\"AQID\"},"
                        "\"p\":{\"$bytes\":\"AQ==\"}}");
    const es_value *l = es_value_get(v, "l");
    assert_int_equal(l->kind, ES_VALUE_LINK);
    assert_int_equal(l->u.bytes.len, ES_CID_SHA256_LEN);
    const es_value *b = es_value_get(v, "b");
    assert_int_equal(b->kind, ES_VALUE_BYTES);
    assert_int_equal(b->u.bytes.len, 3);
    assert_memory_equal(b->u.bytes.ptr, "\1\2\3", 3);
    assert_int_equal(es_value_get(v, "p")->u.bytes.len, 1);
    writes(v, "{\"l\":{\"$link\":\"" CID_TEXT "\"},\"b\":{\"$bytes\":\"AQID\"},"
              "\"p\":{\"$bytes\":\"AQ\"}}");
    parse_refused(true, "{\"$link\":\"" CID_TEXT "\",\"x\":1}", ES_ERR_DECODE, "other keys");
    parse_refused(false, "{\"$bytes\":\"AQID\",\"x\":1}", ES_ERR_DECODE, "other keys");
    parse_refused(true, "{\"$link\":1234}", ES_ERR_DECODE, "not a string");
    parse_refused(true, "{\"$bytes\":[1,2,3]}", ES_ERR_DECODE, "not a string");
    parse_refused(true, "{\"$link\":\".\"}", ES_ERR_DECODE, "bad \"$link\"");
    parse_refused(true, "{\"$bytes\":\"A\"}", ES_ERR_DECODE, "bad \"$bytes\"");
    parse_refused(true, "{\"$link\":\"QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR\"}",
                  ES_ERR_DECODE, "bad \"$link\"");
    es_arena_destroy(a);
}

static void hostile_json(void **state)
{
    (void)state;
    parse_refused(false, "{\"a\":1,\"a\":2}", ES_ERR_DECODE, "duplicate");
    parse_refused(false, "[1,2", ES_ERR_DECODE, "line");
    parse_refused(false, "", ES_ERR_DECODE, "json");
    parse_refused(false, "99999999999999999999", ES_ERR_DECODE, "json");
    parse_refused(false, "\"\\ud800\"", ES_ERR_DECODE, "json");
    parse_refused(false, "\"\xc0\x80\"", ES_ERR_DECODE, "json");
    parse_refused(false, "[1] [2]", ES_ERR_DECODE, "json");
    parse_refused(true, "123.456", ES_ERR_DECODE, "not an integer");
    parse_refused(true, "1e300", ES_ERR_DECODE, "not an integer");
    char deep[200];
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    parse_refused(false, deep, ES_ERR_TOO_DEEP, "nesting");
    deep[64] = '\0'; /* unbalanced 64: a parse error, not a crash */
    parse_refused(false, deep, ES_ERR_DECODE, "json");
    es_arena *a = new_arena();
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    deep[128] = '\0';
    assert_non_null(parse(a, false, deep));
    /* a small arena is a limit */
    es_arena *tiny = NULL;
    assert_int_equal(es_arena_create(256, &tiny), ES_OK);
    es_value *v = NULL;
    const char *many = "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]";
    assert_int_equal(es_json_decode(many, strlen(many), NULL, tiny, &v), ES_ERR_LIMIT);
    es_arena_destroy(tiny);
    es_arena_destroy(a);
}

static void data_model_check(void **state)
{
    (void)state;
    es_arena *a = new_arena();
    assert_int_equal(es_atproto_check(parse(a, true, "{\"a\":{\"$type\":\"x.y.z\"}}")), ES_OK);
    assert_int_equal(es_atproto_check(parse(a, true, "[1]")), ES_ERR_DECODE);
    assert_non_null(strstr(es_last_error(), "top level"));
    assert_int_equal(es_atproto_check(parse(a, false, "{\"a\":[1,{\"b\":1.5}]}")), ES_ERR_DECODE);
    assert_non_null(strstr(es_last_error(), "/a/1/b"));
    assert_int_equal(es_atproto_check(parse(a, true, "{\"a\":{\"$type\":\"\"}}")), ES_ERR_DECODE);
    assert_int_equal(
        es_atproto_check(parse(a, true, "{\"a\":{\"$type\":\"blob\",\"mimeType\":\"x\"}}")),
        ES_ERR_DECODE);
    assert_non_null(strstr(es_last_error(), "ref"));
    es_arena_destroy(a);
}

/* ---- atproto interop fixtures -------------------------------------------- */

static json_t *load_fixture(const char *rel)
{
    char *path = corpus_fixture_path(rel);
    if (path == NULL)
        return NULL;
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    free(path);
    assert_non_null(j);
    return j;
}

/* The JSON text of a fixture's "json" member, as the file has it. */
static char *fixture_text(json_t *fx)
{
    char *text = json_dumps(json_object_get(fx, "json"), JSON_ENCODE_ANY | JSON_COMPACT);
    assert_non_null(text);
    return text;
}

static void fixtures_json_cbor_cid(void **state)
{
    (void)state;
    json_t *all = load_fixture("atproto-interop/data-model/data-model-fixtures.json");
    if (all == NULL) {
        print_message("ES_SHARED_DIR fixtures absent: data-model JSON vectors not run\n");
        skip();
    }
    es_arena *a = new_arena();
    size_t i;
    json_t *fx;
    json_array_foreach(all, i, fx)
    {
        /* JSON -> value -> DAG-CBOR: byte-identical, same CID */
        char *text = fixture_text(fx);
        es_value *v = parse(a, true, text);
        assert_int_equal(es_atproto_check(v), ES_OK);
        es_buf cbor = ES_BUF_INIT;
        assert_int_equal(es_cbor_encode(v, NULL, &cbor), ES_OK);
        const char *b64 = json_string_value(json_object_get(fx, "cbor_base64"));
        uint8_t want[4096];
        size_t n = 0;
        assert_int_equal(es_base64_decode(b64, strlen(b64), want, sizeof want, &n), ES_OK);
        assert_int_equal(cbor.len, n);
        assert_memory_equal(cbor.data, want, n);
        uint8_t cid[ES_CID_SHA256_LEN];
        char cid_text[ES_CID_STRING_MAX];
        assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, cbor.data, cbor.len, cid), ES_OK);
        assert_int_equal(es_cid_to_string(cid, sizeof cid, cid_text, sizeof cid_text), ES_OK);
        assert_string_equal(cid_text, json_string_value(json_object_get(fx, "cid")));

        /* DAG-CBOR -> value -> JSON: equal to the fixture as JSON values */
        es_value *back = NULL;
        assert_int_equal(es_cbor_decode(want, n, NULL, a, &back, NULL), ES_OK);
        es_buf out = ES_BUF_INIT;
        assert_int_equal(es_json_encode(back, NULL, &out), ES_OK);
        json_error_t err;
        json_t *mine = json_loadb((const char *)out.data, out.len, 0, &err);
        assert_non_null(mine);
        assert_true(json_equal(mine, json_object_get(fx, "json")));
        json_decref(mine);
        es_buf_free(&out);
        es_buf_free(&cbor);
        free(text);
    }
    es_arena_destroy(a);
    json_decref(all);
}

static void fixtures_valid_and_invalid(void **state)
{
    (void)state;
    json_t *valid = load_fixture("atproto-interop/data-model/data-model-valid.json");
    json_t *invalid = load_fixture("atproto-interop/data-model/data-model-invalid.json");
    if (valid == NULL || invalid == NULL) {
        print_message("ES_SHARED_DIR fixtures absent: data-model validity vectors not run\n");
        skip();
    }
    es_arena *a = new_arena();
    es_json_options o;
    es_json_options_init(&o);
    o.atproto = true;
    size_t i;
    json_t *fx;
    json_array_foreach(valid, i, fx)
    {
        char *text = fixture_text(fx);
        es_value *v = parse(a, true, text);
        if (es_atproto_check(v) != ES_OK)
            fail_msg("valid fixture '%s' refused: %s",
                     json_string_value(json_object_get(fx, "note")), es_last_error());
        es_buf cbor = ES_BUF_INIT;
        assert_int_equal(es_cbor_encode(v, NULL, &cbor), ES_OK);
        es_buf_free(&cbor);
        free(text);
    }
    json_array_foreach(invalid, i, fx)
    {
        char *text = fixture_text(fx);
        es_value *v = NULL;
        es_status s = es_json_decode(text, strlen(text), &o, a, &v);
        if (s == ES_OK)
            s = es_atproto_check(v);
        if (s != ES_ERR_DECODE)
            fail_msg("invalid fixture '%s' accepted",
                     json_string_value(json_object_get(fx, "note")));
        free(text);
    }
    assert_true(json_array_size(valid) >= 5);
    assert_true(json_array_size(invalid) >= 12);
    es_arena_destroy(a);
    json_decref(valid);
    json_decref(invalid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_json),
        cmocka_unit_test(atproto_forms),
        cmocka_unit_test(hostile_json),
        cmocka_unit_test(data_model_check),
        cmocka_unit_test(fixtures_json_cbor_cid),
        cmocka_unit_test(fixtures_valid_and_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
