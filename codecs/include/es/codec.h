/* The codec registry: how event payloads (bytes) become values and back,
 * chosen by the name in an event's `Rita-Codec` header.
 *
 * Built in:
 *   "binary"   a BYTES value written as it is; decodes to one BYTES value
 *   "json"     es/json.h (atproto "$link"/"$bytes" forms, floats allowed)
 *   "msgpack"  es/msgpack.h
 *   "cbor"     es/cbor.h, general mode
 *   "dag-cbor" es/cbor.h, strict DAG-CBOR (atproto) mode
 * Users add their own with es_codec_register. Decoded values never point
 * into the input: they live wholly in the caller's arena. */
#ifndef ES_CODEC_H
#define ES_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/buf.h>
#include <es/status.h>
#include <es/value.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_CODEC_NAME_MAX 64

typedef struct es_codec es_codec;

/* Append the encoding of v to out. ES_ERR_ENCODE (with es_error text) for a
 * value the codec cannot represent. */
typedef es_status (*es_codec_encode_fn)(const es_codec *codec, const es_value *v, es_buf *out);
/* Decode all len bytes of buf into a value allocated in arena, copying
 * whatever it needs from buf. ES_ERR_DECODE for malformed input. */
typedef es_status (*es_codec_decode_fn)(const es_codec *codec, const uint8_t *buf, size_t len,
                                        es_arena *arena, es_value **out);

struct es_codec {
    const char *name; /* the Rita-Codec header value: 1-64 of [A-Za-z0-9._+/-] */
    es_codec_encode_fn encode;
    es_codec_decode_fn decode;
    void *user; /* the user's context, reachable from the callbacks as codec->user */
};

/* Register a codec. The struct and its name are copied; `user` must stay
 * valid for the life of the process (codecs are never unregistered).
 * ES_ERR_EXISTS when the name is taken (built-ins included), ES_ERR_INVALID
 * for a bad name or a missing callback. Thread-safe. */
ES_API es_status es_codec_register(const es_codec *codec);

/* The codec registered under `name`, or NULL. Lock-free and thread-safe; the
 * pointer stays valid for the life of the process. */
ES_API const es_codec *es_codec_find(const char *name);
/* The same for a name that is not NUL-terminated (a header value). */
ES_API const es_codec *es_codec_find_n(const char *name, size_t len);

/* Shortcuts through the registry: ES_ERR_NO_CODEC for an unknown name. */
ES_API es_status es_codec_encode(const char *name, const es_value *v, es_buf *out);
ES_API es_status es_codec_decode(const char *name, const uint8_t *buf, size_t len, es_arena *arena,
                          es_value **out);

/* Bytes in codec `from` to bytes in codec `to` through the value model,
 * appended to out; the intermediate value is allocated in arena. */
ES_API es_status es_codec_convert(const char *from, const uint8_t *in, size_t len, const char *to,
                           es_arena *arena, es_buf *out);

#ifdef __cplusplus
}
#endif
#endif
