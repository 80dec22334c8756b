/* Keys for NATS KV buckets built from arbitrary bytes (entity ids, DIDs, AT
 * URIs). KV keys may only hold [-/_=.A-Za-z0-9] and no empty dot-separated
 * token, so an id like "did:plc:abc" cannot be a key as it is. The escape is
 * reversible and keeps readable ids readable: bytes in [A-Za-z0-9_-] pass
 * through, every other byte (including '.', '/' and '=') becomes =XX with
 * upper-case hex. An escaped component never holds '.' or '/', so callers
 * may join components with either ("post.<id>", "<did>/<collection>/<rkey>")
 * and still split them back unambiguously. */
#ifndef ES_KVKEY_H
#define ES_KVKEY_H

#include <stdbool.h>
#include <stddef.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest key the library writes or accepts (NATS has no fixed limit; this
 * keeps subjects well under the server's control line limit). */
#define ES_KV_KEY_MAX 1024

/* Escapes `len` bytes into `out` (NUL-terminated), *out_len (may be NULL)
 * getting the length. ES_ERR_INVALID for an empty input, ES_ERR_LIMIT when
 * out_size is too small (3 * len + 1 always suffices). */
ES_API es_status es_kv_key_escape(const void *bytes, size_t len, char *out, size_t out_size,
                           size_t *out_len);

/* Reverses es_kv_key_escape. ES_ERR_INVALID for a component that is not a
 * valid escape (a byte outside the pass-through set, a malformed or
 * lower-case =XX, an escaped byte that would have passed through). Writes the
 * raw bytes plus a NUL; ES_ERR_LIMIT when out_size is too small. */
ES_API es_status es_kv_key_unescape(const char *component, size_t len, char *out, size_t out_size,
                             size_t *out_len);

/* True when `key` is a valid NATS KV key: 1..ES_KV_KEY_MAX bytes of
 * [-/_=.A-Za-z0-9], not starting or ending with '.', no "..". */
ES_API bool es_kv_key_valid(const char *key);

#ifdef __cplusplus
}
#endif
#endif
