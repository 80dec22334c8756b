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

/* Widens a running watch (a namespace's new entity type, say): from now on
 * it also delivers the events `filters` match. Such events already behind
 * the watch's position (es_watch_last_seq) and after `after_seq` are
 * delivered first, late — out of stream order, each once: an event that the
 * watch's filters already matched is not delivered again —, then the watch
 * goes on from its position with the wider set, in stream order, without a
 * gap. Pass the watch's own start (its options' after_seq) to miss nothing
 * of the new filters, or its position for new events only. Applied on the
 * watch's thread before its next event (within 200 ms); the filters are
 * read by the call, not kept. ES_ERR_LIMIT (nothing changes) when the
 * watch would need more than ES_FILTERS_MAX filter subjects; a filter
 * another already covers costs nothing. Thread-safe, also from inside a
 * callback; trouble applying it is reported through on_error. */
ES_API es_status es_watch_add_filters(es_watch *w, const es_filter *filters, size_t n,
                                      uint64_t after_seq);

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
