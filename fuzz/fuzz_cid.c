/* Target `cid`: binary CIDs (es_cid_parse, es_cid_to_string), CID strings
 * (es_cid_from_string, es_cid_syntax_valid), varints, and the strict base32
 * and base64 codecs under them. The input is read both as bytes and as text.
 *
 * Every output buffer is allocated at exactly the size the API promises to
 * be enough (es_base*_decoded_max, es_base*_encoded_len, ES_CID_STRING_MAX),
 * so that a write one byte too far is caught. Properties: each decoder has
 * one accepted text form, so decode then encode gives the text back (base64
 * without its padding); a parsed CIDv1 survives string form and back. */
#include <string.h>

#include <es/base.h>
#include <es/cid.h>

#include "fuzz.h"

static void check_varint(const uint8_t *data, size_t size)
{
    uint64_t v = 0;
    size_t used = 0;
    if (es_varint_decode(data, size, &v, &used) != ES_OK)
        return;
    uint8_t out[10];
    FUZZ_CHECK(used >= 1 && used <= size && used <= 9);
    FUZZ_CHECK(es_varint_encode(v, out) == used && memcmp(out, data, used) == 0);
}

static void check_binary_cid(const uint8_t *data, size_t size)
{
    es_cid c;
    if (es_cid_parse(data, size, &c) != ES_OK)
        return;
    FUZZ_CHECK(c.len >= 1 && c.len <= size && c.digest >= data &&
               c.digest + c.digest_len <= data + c.len);
    (void)es_cid_matches(&c, data, size);
    char *text = malloc(ES_CID_STRING_MAX);
    if (text == NULL)
        abort();
    if (es_cid_to_string(data, c.len, text, ES_CID_STRING_MAX) == ES_OK) {
        size_t tlen = strlen(text), n = 0;
        uint8_t *bin = malloc(es_base32_decoded_max(tlen - 1));
        if (bin == NULL)
            abort();
        FUZZ_CHECK(c.version == 1);
        FUZZ_CHECK(es_cid_from_string(text, tlen, bin, es_base32_decoded_max(tlen - 1), &n) ==
                   ES_OK);
        FUZZ_CHECK(n == c.len && memcmp(bin, data, n) == 0);
        free(bin);
    }
    free(text);
}

static void check_cid_text(const char *s, size_t len)
{
    (void)es_cid_syntax_valid(s, len);
    size_t cap = len > 1 ? es_base32_decoded_max(len - 1) : 0, n = 0;
    uint8_t *bin = malloc(cap ? cap : 1);
    char *text = malloc(ES_CID_STRING_MAX);
    if (bin == NULL || text == NULL)
        abort();
    if (es_cid_from_string(s, len, bin, cap, &n) == ES_OK &&
        es_cid_to_string(bin, n, text, ES_CID_STRING_MAX) == ES_OK)
        FUZZ_CHECK(strlen(text) == len && memcmp(text, s, len) == 0);
    free(bin);
    free(text);
}

typedef es_status (*decode_fn)(const char *, size_t, uint8_t *, size_t, size_t *);
typedef es_status (*encode_fn)(const uint8_t *, size_t, char *, size_t, size_t *);

/* decode then encode gives the text back (without its '=' padding, if any). */
static void check_text_codec(const char *s, size_t len, decode_fn dec, encode_fn enc,
                             size_t max_bytes, size_t (*enc_len)(size_t), bool padding)
{
    uint8_t *bin = malloc(max_bytes ? max_bytes : 1);
    if (bin == NULL)
        abort();
    size_t n = 0;
    if (dec(s, len, bin, max_bytes, &n) == ES_OK) {
        size_t want = len;
        while (padding && want > 0 && s[want - 1] == '=')
            want--;
        size_t cap = enc_len(n), m = 0;
        char *text = malloc(cap ? cap : 1);
        if (text == NULL)
            abort();
        FUZZ_CHECK(n <= max_bytes && enc(bin, n, text, cap, &m) == ES_OK);
        FUZZ_CHECK(m == want && memcmp(text, s, m) == 0);
        free(text);
    }
    free(bin);
}

/* encode then decode gives the bytes back. */
static void check_bytes_codec(const uint8_t *data, size_t size, decode_fn dec, encode_fn enc,
                              size_t (*enc_len)(size_t), size_t (*dec_max)(size_t))
{
    size_t cap = enc_len(size), m = 0, n = 0;
    char *text = malloc(cap ? cap : 1);
    if (text == NULL)
        abort();
    FUZZ_CHECK(enc(data, size, text, cap, &m) == ES_OK && m == cap);
    size_t max = dec_max(m);
    uint8_t *bin = malloc(max ? max : 1);
    if (bin == NULL)
        abort();
    FUZZ_CHECK(dec(text, m, bin, max, &n) == ES_OK);
    FUZZ_CHECK(n == size && (n == 0 || memcmp(bin, data, n) == 0));
    free(bin);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_copy(data, size);
    const char *s = (const char *)buf;
    check_varint(buf, size);
    check_binary_cid(buf, size);
    check_cid_text(s, size);
    check_text_codec(s, size, es_base32_decode, es_base32_encode, es_base32_decoded_max(size),
                     es_base32_encoded_len, false);
    check_text_codec(s, size, es_base64_decode, es_base64_encode, es_base64_decoded_max(size),
                     es_base64_encoded_len, true);
    check_bytes_codec(buf, size, es_base32_decode, es_base32_encode, es_base32_encoded_len,
                      es_base32_decoded_max);
    check_bytes_codec(buf, size, es_base64_decode, es_base64_encode, es_base64_encoded_len,
                      es_base64_decoded_max);
    free(buf);
    return 0;
}
