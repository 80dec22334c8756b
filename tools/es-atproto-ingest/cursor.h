/* The relay cursor in the store's checkpoint bucket (ES_<store>_checkpoints,
 * key = the ingester's --name): read once at start, then saved by a small
 * thread at most once per interval, and a last time at shutdown, so that a
 * slow or absent server never stalls the pipeline. Saves only move forward
 * (es_checkpoint_advance): a stale writer is told, never obeyed. */
#ifndef ES_INGEST_CURSOR_H
#define ES_INGEST_CURSOR_H

#include <stdbool.h>
#include <stdint.h>

#include <es/es.h>

typedef struct ingest_cursor ingest_cursor;

typedef struct ingest_cursor_start {
    bool found;
    uint64_t position;
    int64_t saved_ns; /* when it was saved (the writer's clock) */
    char source[512]; /* the source it was saved for ("" when unknown) */
} ingest_cursor_start;

/* Opens the bucket and reads the stored cursor of `name` into *start. The
 * store must outlive the handle. `source` (a relay URL or a file) is saved
 * with the cursor. */
es_status ingest_cursor_open(es_store *store, const char *name, const char *source,
                             int64_t interval_ms, ingest_cursor_start *start, ingest_cursor **out);

/* The newest watermark (cheap; the thread saves it later). */
void ingest_cursor_offer(ingest_cursor *c, uint64_t position);

/* The last position saved (0 before any). */
uint64_t ingest_cursor_saved(ingest_cursor *c);

/* Saves what was offered (a few attempts), stops the thread, frees. Returns
 * the outcome of the last save (ES_OK when there was nothing to save).
 * Accepts NULL. */
es_status ingest_cursor_close(ingest_cursor *c);

#endif
