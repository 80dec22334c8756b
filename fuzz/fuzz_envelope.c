/* Target `envelope`: es_envelope_open on a hostile payload and hostile
 * Es- header values, and a hostile data key record in the keyring's backend
 * (envelope_setup.h gives the input's layout): header parsing, key record
 * unwrapping, decryption, zstd decompression with and without a dictionary
 * (declared and undeclared sizes, the max_payload bound), and schema
 * upcasting.
 *
 * Seeds sealed by the seed tool with the same master key and dictionary open
 * successfully, so mutations start from the paths behind authentication;
 * what libFuzzer cannot forge (a valid AEAD tag) it reaches through the
 * unencrypted seeds. Property: an opened payload never exceeds max_payload,
 * and its bytes are all readable. */
#include <es/envelope.h>

#include "envelope_setup.h"
#include "fuzz.h"

static es_header *headers_of(const fuzz_env_input *in, size_t *n)
{
    es_header *h = calloc(ES_ENVELOPE_HEADER_COUNT, sizeof *h);
    if (h == NULL)
        abort();
    *n = 0;
    for (size_t k = 0; k < ES_ENVELOPE_HEADER_COUNT; k++)
        if (in->headers[k] != NULL)
            h[(*n)++] = (es_header){es_envelope_header_names[k], in->headers[k]};
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_copy(data, size);
    fuzz_env_input in;
    fuzz_env_input_parse(buf, size, &in);
    fuzz_env *w = fuzz_env_create(in.flags, in.record, in.record_len, false, false);
    size_t n = 0;
    es_header *h = headers_of(&in, &n);
    uint8_t *payload = fuzz_copy(in.payload, in.payload_len); /* exact size for ASan */
    es_opened out = ES_OPENED_INIT;
    if (es_envelope_open(fuzz_env_envelope(w), &fuzz_env_event, FUZZ_ENV_EVENT_ID, h, n, payload,
                         in.payload_len, &out) == ES_OK) {
        size_t max = in.flags & FUZZ_ENV_SMALL ? FUZZ_ENV_SMALL_MAX : FUZZ_ENV_MAX_PAYLOAD;
        FUZZ_CHECK(out.len <= max && (out.data != NULL || out.len == 0));
        FUZZ_CHECK(out.schema >= out.stored_schema && out.stored_schema >= 1);
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < out.len; i++)
            sum = (uint8_t)(sum + out.data[i]);
        (void)sum;
    }
    es_opened_free(&out);
    free(payload);
    free(h);
    fuzz_env_destroy(w);
    fuzz_env_input_free(&in);
    free(buf);
    return 0;
}
