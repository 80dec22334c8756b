/* Where a Jetstream cursor (Unix microseconds) starts in the store. */
#ifndef SERVE_CURSOR_H
#define SERVE_CURSOR_H

#include <stdbool.h>
#include <stdint.h>

#include <es/es.h>

/* The sequence to watch after: with no cursor, the store's last (live
 * only, as Jetstream); with one, just before the first event stored at or
 * after cursor_us (Jetstream's rule: the cursor's own event comes again),
 * which is the start for a cursor older than every event and the end for
 * one newer than every event. A binary search over sequences, one
 * single-event read per probe (about log2 of the store's events). */
es_status serve_cursor_after_seq(es_store *st, bool has_cursor, int64_t cursor_us,
                                 uint64_t *after_seq);

#endif
