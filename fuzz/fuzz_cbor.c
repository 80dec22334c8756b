/* Target `cbor`: general CBOR (RFC 8949) through es_cbor_decode with strict
 * off: indefinite lengths, every float width, tags, simple values, unsigned
 * integers above int64, duplicate and unordered keys.
 *
 * Properties checked on every item that decodes: copy mode gives the same
 * value as zero-copy mode; the value encodes again (general mode) to bytes
 * that decode to the same value; and when the strict encoder accepts it, the
 * strict bytes decode (strict, floats allowed) to an equal value and encode
 * again to the very same bytes (DAG-CBOR is canonical). */
#include <string.h>

#include <es/cbor.h>

#include "fuzz.h"

static es_value *decode(const uint8_t *buf, size_t len, const es_cbor_options *o, es_arena *a,
                        size_t *used)
{
    es_value *v = NULL;
    return es_cbor_decode(buf, len, o, a, &v, used) == ES_OK ? v : NULL;
}

static void check_copy_mode(const uint8_t *buf, size_t len, es_cbor_options o, const es_value *v,
                            size_t used, es_arena *a)
{
    o.copy = true;
    size_t used2 = 0;
    es_value *c = decode(buf, len, &o, a, &used2);
    FUZZ_CHECK(c != NULL && used2 == used && es_value_identical(v, c));
}

static void check_general_roundtrip(const es_value *v, es_arena *a)
{
    es_cbor_options o;
    es_cbor_options_init(&o, false);
    es_buf out = ES_BUF_INIT;
    FUZZ_CHECK(es_cbor_encode(v, &o, &out) == ES_OK);
    size_t used = 0;
    es_value *back = decode(out.data, out.len, &o, a, &used);
    FUZZ_CHECK(back != NULL && used == out.len && es_value_identical(v, back));
    es_buf_free(&out);
}

static void check_strict_reencode(const es_value *v, es_arena *a)
{
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    o.allow_floats = true;
    es_buf out = ES_BUF_INIT, again = ES_BUF_INIT;
    if (es_cbor_encode(v, &o, &out) == ES_OK) {
        size_t used = 0;
        es_value *back = decode(out.data, out.len, &o, a, &used);
        FUZZ_CHECK(back != NULL && used == out.len && es_value_equal(v, back));
        FUZZ_CHECK(es_cbor_encode(back, &o, &again) == ES_OK);
        FUZZ_CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    }
    es_buf_free(&out);
    es_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_copy(data, size);
    es_arena *a = fuzz_arena();
    es_cbor_options o;
    es_cbor_options_init(&o, false);
    size_t used = 0;
    es_value *v = decode(buf, size, &o, a, &used);
    if (v != NULL) {
        FUZZ_CHECK(used >= 1 && used <= size);
        check_copy_mode(buf, size, o, v, used, a);
        check_general_roundtrip(v, a);
        check_strict_reencode(v, a);
    }
    es_arena_destroy(a);
    free(buf);
    return 0;
}
