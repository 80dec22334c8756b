/* Where frames come from. Every source yields whole frames, one at a time,
 * in order; the pipeline does not care which kind it reads. (The relay
 * WebSocket source joins these when the NATS side of the ingester lands.) */
#ifndef ES_INGEST_SOURCE_H
#define ES_INGEST_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include <es/status.h>

typedef struct ingest_source ingest_source;

/* A capture file read as a stream (plain or zstd), in bounded memory. */
es_status ingest_source_file(const char *path, size_t max_frame, ingest_source **out);

/* A capture loaded into memory once and replayed `repeat` times (the decode
 * benchmark: no I/O or decompression inside the timed loop). Captures larger
 * than `max_bytes` are refused. */
es_status ingest_source_memory(const char *path, size_t max_frame, unsigned long repeat,
                               size_t max_bytes, ingest_source **out);

/* The next frame (owned by the source, valid until the next call):
 * ES_OK, ES_ERR_NOT_FOUND at the end, or an error with es_last_error(). */
es_status ingest_source_next(ingest_source *s, const uint8_t **frame, size_t *len);

/* A short description for the report ("file frames.bin.zst"). */
const char *ingest_source_name(const ingest_source *s);

void ingest_source_close(ingest_source *s);

#endif
