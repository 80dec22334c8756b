/* Target `msgpack`: MessagePack through es_msgpack_decode: every format
 * byte, lengths against the input, nesting, str as UTF-8, ext 42 as a CID
 * link, and refusals of what the value model cannot hold.
 *
 * Properties: an accepted item encodes again (es_msgpack_encode) to bytes
 * that decode to the same value (order and duplicate keys kept); the JSON
 * and general CBOR encoders take the value without harm. */
#include <es/cbor.h>
#include <es/json.h>
#include <es/msgpack.h>

#include "fuzz.h"

static void check_roundtrip(const es_value *v, es_arena *a)
{
    es_buf out = ES_BUF_INIT;
    FUZZ_CHECK(es_msgpack_encode(v, 0, &out) == ES_OK);
    es_value *back = NULL;
    size_t used = 0;
    FUZZ_CHECK(es_msgpack_decode(out.data, out.len, 0, a, &back, &used) == ES_OK);
    FUZZ_CHECK(used == out.len && es_value_identical(v, back));
    es_buf_free(&out);
}

static void other_encoders(const es_value *v)
{
    es_buf out = ES_BUF_INIT;
    (void)es_json_encode(v, NULL, &out);
    es_buf_clear(&out);
    es_cbor_options o;
    es_cbor_options_init(&o, false);
    FUZZ_CHECK(es_cbor_encode(v, &o, &out) == ES_OK);
    es_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_copy(data, size);
    es_arena *a = fuzz_arena();
    es_value *v = NULL;
    size_t used = 0;
    if (es_msgpack_decode(buf, size, 0, a, &v, &used) == ES_OK) {
        FUZZ_CHECK(v != NULL && used >= 1 && used <= size);
        check_roundtrip(v, a);
        other_encoders(v);
    }
    es_arena_destroy(a);
    free(buf);
    return 0;
}
