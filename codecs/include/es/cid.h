/* Content identifiers (CIDs) and the unsigned varints they are made of, as
 * the multiformats specifications define them and atproto uses them: binary
 * CIDv1 (and CIDv0 on parse), sha2-256 hashing, and the base32 string form
 * ("b" multibase prefix, RFC 4648 lower-case alphabet, no padding). */
#ifndef ES_CID_H
#define ES_CID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_CID_CODEC_RAW      0x55
#define ES_CID_CODEC_DAG_CBOR 0x71
#define ES_CID_CODEC_DAG_PB   0x70 /* the implied codec of a CIDv0 */
#define ES_MULTIHASH_SHA2_256 0x12
/* binary CIDv1 + sha2-256: 0x01, codec varint, 0x12, 0x20, 32-byte digest
 * (36 bytes for the one-byte codecs raw and dag-cbor; the most any codec
 * below 2^7 needs) */
#define ES_CID_SHA256_LEN 36
#define ES_CID_STRING_MAX 128 /* enough for any CID string we produce, NUL included */

/* Decode an unsigned LEB128 varint as multiformats define it from the start of
 * buf: minimal encoding only, at most 9 bytes (63 bits). *used is the number
 * of bytes read. ES_ERR_DECODE when truncated, over-long or non-minimal. */
ES_API es_status es_varint_decode(const uint8_t *buf, size_t len, uint64_t *value, size_t *used);

/* Encode value (which must be below 2^63 to be decodable again) into out;
 * returns the number of bytes written (1 to 10). */
ES_API size_t es_varint_encode(uint64_t value, uint8_t out[10]);

/* A parsed binary CID. digest points into the buffer given to es_cid_parse
 * (valid only as long as it is); len is the number of bytes the CID takes. */
typedef struct es_cid {
    uint64_t version; /* 0 or 1 */
    uint64_t codec;   /* multicodec of the content, ES_CID_CODEC_* */
    uint64_t hash;    /* multihash function code, ES_MULTIHASH_* */
    const uint8_t *digest;
    size_t digest_len;
    size_t len;
} es_cid;

/* Parse a binary CID (v1; v0 = a bare sha2-256 multihash too) at the start of
 * buf; bytes after it are not examined (out->len says where it ends).
 * ES_ERR_DECODE with a clear es_last_error() text when it is not one. */
ES_API es_status es_cid_parse(const uint8_t *buf, size_t len, es_cid *out);

/* The binary CIDv1 (sha2-256) of `data` with the given content codec. The
 * codec must fit one varint byte (below 0x80) so the result is exactly
 * ES_CID_SHA256_LEN bytes. Uses OpenSSL's EVP SHA-256, which uses the CPU's
 * SHA extensions where present. Thread-safe. */
ES_API es_status es_cid_sha256(uint64_t codec, const void *data, size_t len,
                        uint8_t out[ES_CID_SHA256_LEN]);

/* True when `cid` is a sha2-256 CID whose digest equals the SHA-256 of data. */
ES_API bool es_cid_matches(const es_cid *cid, const void *data, size_t len);

/* The string form of the binary CID `cid` (len bytes): "b" + base32 lower,
 * no padding, NUL-terminated in out. CIDv0 is rendered as CIDv1 would not be
 * the same CID, so v0 is refused (ES_ERR_INVALID). ES_ERR_TOO_LARGE when
 * out_size is too small (ES_CID_STRING_MAX always suffices for a sha2-256 CID). */
ES_API es_status es_cid_to_string(const uint8_t *cid, size_t len, char *out, size_t out_size);

/* Parse a CID string ("b" + base32 lower, the form atproto uses; exactly the
 * slen bytes of s, no surrounding space) into its binary form in out;
 * *out_len = bytes written. The result must be one complete CIDv1.
 * ES_ERR_DECODE for anything else (other multibases, CIDv0 "Qm...", junk). */
ES_API es_status es_cid_from_string(const char *s, size_t slen, uint8_t *out, size_t out_size,
                             size_t *out_len);

/* atproto's loose CID syntax check (8 to 256 characters of [A-Za-z0-9+=],
 * and not a CIDv0 "Qm..." string): what lexicon "cid" string fields must
 * pass. It does not decode; es_cid_from_string does. */
ES_API bool es_cid_syntax_valid(const char *s, size_t slen);

#ifdef __cplusplus
}
#endif
#endif
