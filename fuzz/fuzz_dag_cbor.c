/* Target `dag_cbor`: strict DAG-CBOR (the atproto data model) through
 * es_cbor_decode in strict mode, with and without floats: every rule of
 * es/cbor.h (shortest forms, sorted unique text keys, tag 42 CID links only,
 * no indefinite lengths, int64 range, UTF-8) must refuse cleanly.
 *
 * Properties: DAG-CBOR is canonical, so an accepted item encodes back to
 * exactly the bytes it was decoded from; copy mode gives the same value as
 * zero-copy mode; the atproto data-model check and the JSON encoder accept
 * or refuse it without harm. */
#include <string.h>

#include <es/cbor.h>
#include <es/json.h>

#include "fuzz.h"

static void check_canonical(const uint8_t *buf, size_t len, es_cbor_options o, es_arena *a)
{
    es_value *v = NULL;
    size_t used = 0;
    if (es_cbor_decode(buf, len, &o, a, &v, &used) != ES_OK)
        return;
    FUZZ_CHECK(v != NULL && used >= 1 && used <= len);
    es_buf out = ES_BUF_INIT;
    FUZZ_CHECK(es_cbor_encode(v, &o, &out) == ES_OK);
    FUZZ_CHECK(out.len == used && memcmp(out.data, buf, used) == 0);
    es_buf_free(&out);

    es_cbor_options copy = o;
    copy.copy = true;
    es_value *c = NULL;
    size_t used2 = 0;
    FUZZ_CHECK(es_cbor_decode(buf, len, &copy, a, &c, &used2) == ES_OK);
    FUZZ_CHECK(used2 == used && es_value_identical(v, c));

    (void)es_atproto_check(v);
    es_buf json = ES_BUF_INIT;
    (void)es_json_encode(v, NULL, &json);
    es_buf_free(&json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_copy(data, size);
    es_arena *a = fuzz_arena();
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    check_canonical(buf, size, o, a);
    o.allow_floats = true;
    check_canonical(buf, size, o, a);
    es_arena_destroy(a);
    free(buf);
    return 0;
}
