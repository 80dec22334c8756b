/* A one-line progress display on stderr for long runs (replays, exports,
 * imports): items done, items per second, and, when the total is known, a
 * bar with the ETA. It draws only when stderr is a terminal, at most a few
 * times a second, and erases itself when finished, so output stays clean
 * when stderr is a file or a pipe. */
#ifndef ES_CLI_PROGRESS_H
#define ES_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct es_progress {
    /* private */
    bool on_;
    bool drawn_;
    const char *what_;
    uint64_t total_, calls_;
    int64_t start_ms_, last_draw_ms_;
} es_progress;

/* `what` ("replay") is borrowed; `total` is in the units of the position
 * passed to es_progress_update (0: unknown). `enabled` false (e.g. --quiet)
 * turns it off whatever stderr is. */
void es_progress_start(es_progress *p, const char *what, uint64_t total, bool enabled);

/* `done`: items processed; `position`: how far along the total (often the
 * same). Cheap: call it for every item. */
void es_progress_update(es_progress *p, uint64_t done, uint64_t position);

/* Erases the line. */
void es_progress_finish(es_progress *p);

#endif
