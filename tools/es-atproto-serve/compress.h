/* Jetstream's compress=true on /subscribe (docs/atproto.md, "Serving"):
 * each message goes as one binary WebSocket message holding one zstd
 * frame of the JSON. Without a dictionary the frames carry no dictionary
 * ID; with the operator's one (--zstd-dictionary, e.g. Jetstream's
 * published dictionary: this project does not ship it) every frame names
 * its ID, so a Jetstream client, which registers its dictionary by ID,
 * decodes both kinds, and a plain `zstd -d` the former.
 *
 * Compressed once per message: the compressed form is cached on the
 * sub_msg (the hub encodes an event once and queues it by reference), so
 * a thousand compressing subscribers cost one compression per event, and
 * none when nobody asks. Thread-safe. */
#ifndef SERVE_COMPRESS_H
#define SERVE_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/es.h>

#include "subscriber.h"

/* A dictionary file larger than this is refused (Jetstream's is 113 KB). */
#define COMPRESS_DICT_MAX (16u << 20)

typedef struct compressor compressor;

/* dict_path NULL: frames without a dictionary. The file must be a zstd
 * dictionary (zstd --train, ZDICT_trainFromBuffer) with a non-zero ID: a
 * raw-content one would make frames without an ID, which Jetstream's
 * clients decode without the dictionary. ES_ERR_INVALID (es_last_error
 * says why) for a file that is not one. The caller owns *out
 * (compressor_destroy). */
es_status compressor_create(const char *dict_path, compressor **out);

/* Accepts NULL. Messages compressed before keep their frames. */
void compressor_destroy(compressor *c);

/* The dictionary's ID, 0 without one. */
unsigned compressor_dict_id(const compressor *c);

/* The compressed form of `m` (its JSON at data + headroom): a new
 * reference for the caller (sub_msg_release), with the same headroom,
 * computed the first time it is asked for and kept on `m` until `m` is
 * freed. NULL without memory. */
sub_msg *compressor_frame(compressor *c, sub_msg *m, size_t headroom);

/* /metrics: messages compressed, their bytes before and after. */
void compressor_metrics(compressor *c, es_buf *b);

#endif
