/* Watching a store: replay the events matching a filter, then keep
 * delivering new ones as they are appended, on a thread of the watch's own.
 * A watch survives reconnects and server restarts without gaps or
 * duplicates: it resumes from the last sequence it delivered. */
#ifndef ES_WATCH_H
#define ES_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/read.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_watch es_watch;

/* Trouble the watch is riding out (ES_ERR_CONNECTION while the server is
 * away), or, when `final` is true, why it ended (a callback's status). */
typedef void (*es_watch_error_cb)(es_status status, const char *text, bool final, void *closure);

typedef struct es_watch_options {
    es_filter filter;           /* read by es_watch_start, not kept */
    uint64_t after_seq;         /* resume after this sequence (0: from the start) */
    bool no_wait;               /* return from es_watch_start at once, not after catch-up */
    int64_t heartbeat_ms;       /* server heartbeat; 3 missed ones mean a reset (default 2000) */
    es_event_cb on_event;       /* required; a status other than ES_OK ends the watch */
    es_watch_error_cb on_error; /* optional */
    void (*on_caught_up)(void *closure); /* optional: called once, when history is delivered */
    void *closure;
    /* Several filters instead of `filter` (which must then be left empty):
     * the events matching any of them, in stream order, each once, as
     * es_evolve_filters reads them. 0..ES_FILTERS_MAX; read by
     * es_watch_start, not kept. */
    const es_filter *filters;
    size_t filter_count;
} es_watch_options;

ES_API void es_watch_options_init(es_watch_options *opts);

/* Starts watching. Unless no_wait is set, returns once every event stored
 * when it started has been delivered. The caller owns *out. */
ES_API es_status es_watch_start(es_store *store, const es_watch_options *opts, es_watch **out);

/* Stops the watch: once it returns, no callback is running or will run.
 * May be called from inside a callback (it then only asks the thread to end). */
ES_API void es_watch_stop(es_watch *w);

/* The last sequence delivered (what to pass as after_seq to resume later). */
ES_API uint64_t es_watch_last_seq(const es_watch *w);
ES_API bool es_watch_caught_up(const es_watch *w);

/* Stops (when still running) and frees. Accepts NULL. */
ES_API void es_watch_destroy(es_watch *w);

#ifdef __cplusplus
}
#endif
#endif
