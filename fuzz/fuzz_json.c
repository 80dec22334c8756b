/* Target `json`: JSON text in the atproto form through es_json_decode
 * (jansson underneath, then "$link" and "$bytes" objects, depth, integer
 * range), in plain and in atproto mode, and es_atproto_check, the data-model
 * rules the interop fixtures test.
 *
 * Properties: plain mode reads back what it writes (es_json_encode, floats
 * in their shortest exact form); whatever atproto mode accepts can be
 * written as strict DAG-CBOR, which reads back to an equal value, and
 * written as atproto JSON, which reads back to an equal value too. */
#include <es/cbor.h>
#include <es/json.h>

#include "fuzz.h"

static void check_plain(const char *text, size_t len, es_arena *a)
{
    es_value *v = NULL, *back = NULL;
    if (es_json_decode(text, len, NULL, a, &v) != ES_OK)
        return;
    (void)es_atproto_check(v);
    es_buf out = ES_BUF_INIT;
    FUZZ_CHECK(es_json_encode(v, NULL, &out) == ES_OK);
    FUZZ_CHECK(es_json_decode((const char *)out.data, out.len, NULL, a, &back) == ES_OK);
    FUZZ_CHECK(es_value_equal(v, back));
    es_buf_free(&out);
}

static void check_atproto(const char *text, size_t len, es_arena *a)
{
    es_json_options jo;
    es_json_options_init(&jo);
    jo.atproto = true;
    es_value *v = NULL, *back = NULL;
    if (es_json_decode(text, len, &jo, a, &v) != ES_OK)
        return;
    (void)es_atproto_check(v);
    es_buf out = ES_BUF_INIT;
    FUZZ_CHECK(es_cbor_encode(v, NULL, &out) == ES_OK);
    size_t used = 0;
    FUZZ_CHECK(es_cbor_decode(out.data, out.len, NULL, a, &back, &used) == ES_OK);
    FUZZ_CHECK(used == out.len && es_value_equal(v, back));
    es_buf_clear(&out);
    FUZZ_CHECK(es_json_encode(v, &jo, &out) == ES_OK);
    FUZZ_CHECK(es_json_decode((const char *)out.data, out.len, &jo, a, &back) == ES_OK);
    FUZZ_CHECK(es_value_equal(v, back));
    es_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = (char *)fuzz_copy(data, size);
    es_arena *a = fuzz_arena();
    check_plain(text, size, a);
    check_atproto(text, size, a);
    es_arena_destroy(a);
    free(text);
    return 0;
}
