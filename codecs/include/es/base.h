/* Binary-to-text encodings of RFC 4648 as atproto uses them: base32 with the
 * lower-case alphabet and no padding (the "b" multibase of CID strings), and
 * standard base64 (section 4, "+/" alphabet) without padding on output, as
 * the atproto JSON form writes "$bytes". Decoders are strict: no whitespace,
 * no characters outside the alphabet, and unused trailing bits must be zero,
 * so every byte string has exactly one accepted text form (plus, for base64
 * only, the same text with its "=" padding). */
#ifndef ES_BASE_H
#define ES_BASE_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Characters needed to encode n bytes (no padding, no NUL); SIZE_MAX on overflow. */
ES_API size_t es_base32_encoded_len(size_t n);
ES_API size_t es_base64_encoded_len(size_t n);
/* An upper bound on the bytes a text of n characters decodes to. */
ES_API size_t es_base32_decoded_max(size_t n);
ES_API size_t es_base64_decoded_max(size_t n);

/* Encode len bytes into out (no NUL written); *out_len = characters written.
 * ES_ERR_TOO_LARGE when out_size is too small. */
ES_API es_status es_base32_encode(const uint8_t *in, size_t len, char *out, size_t out_size,
                           size_t *out_len);
ES_API es_status es_base64_encode(const uint8_t *in, size_t len, char *out, size_t out_size,
                           size_t *out_len);

/* Decode exactly slen characters; *out_len = bytes written. ES_ERR_DECODE on
 * any character outside the alphabet, an impossible length or non-zero
 * trailing bits; ES_ERR_TOO_LARGE when out_size is too small. base64 accepts
 * the text with or without its "=" padding (padding, if any, must be right). */
ES_API es_status es_base32_decode(const char *s, size_t slen, uint8_t *out, size_t out_size,
                           size_t *out_len);
ES_API es_status es_base64_decode(const char *s, size_t slen, uint8_t *out, size_t out_size,
                           size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
