/* Test and benchmark helpers for codecs/value: locating ../shared fixtures,
 * reading files, and walking the firehose corpus (frames and the CAR blocks
 * inside #commit bodies). Not part of the library. */
#ifndef ES_CODECS_TEST_CORPUS_H
#define ES_CODECS_TEST_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include <es/status.h>

/* "$ES_SHARED_DIR/fixtures/<rel>" in a malloc'd string, or NULL when
 * ES_SHARED_DIR is unset or the file does not exist. Caller frees. */
char *corpus_fixture_path(const char *rel);

/* The whole file in a malloc'd buffer (NUL-terminated beyond *len), or NULL. */
uint8_t *corpus_read_file(const char *path, size_t *len);

/* The frames of firehose-corpus/frames.bin.zst, decompressed: *data holds
 * them back to back as [u32 LE length][frame]; ES_ERR_NOT_FOUND when the
 * fixture is absent. Caller frees *data. */
es_status corpus_load_frames(uint8_t **data, size_t *len);

/* Iterate the frames loaded above: sets frame and frame_len to the one at *pos,
 * advancing *pos. Returns 0 at the end, -1 on a malformed container. */
int corpus_next_frame(const uint8_t *data, size_t len, size_t *pos, const uint8_t **frame,
                      size_t *frame_len);

typedef int (*corpus_block_fn)(void *ctx, const uint8_t *cid, size_t cid_len, const uint8_t *block,
                               size_t block_len);

/* Call fn for every block of a CAR v1 file (header skipped). Stops and
 * returns fn's value when it is non-zero; -1 for a malformed CAR. */
int corpus_car_blocks(const uint8_t *car, size_t len, corpus_block_fn fn, void *ctx);

#endif
