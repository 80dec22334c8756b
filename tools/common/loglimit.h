/* Log lines limited per reason and interval, so that a flood of one kind of
 * warning (hostile frames, dead letters) cannot turn into gigabytes of log:
 * of each reason (a short constant string, e.g. "dead_letter"), the first
 * `burst` lines of every interval are written in full and the rest only
 * counted; when the interval is over (or at the end of a run) the caller's
 * summary function says, per reason, how many were left out. Counters kept
 * elsewhere (stats, /metrics) stay exact: they never depend on the log.
 *
 *   static es_cli_log_limit limit = ES_CLI_LOG_LIMIT_INIT(10, 10000);
 *   if (es_cli_log_limit_admit(&limit, "hash", summary, NULL))
 *       fprintf(stderr, "...\n");
 *   ...
 *   es_cli_log_limit_summarize(&limit, true, summary, NULL); // at the end
 *
 * Thread-safe; the summary function runs under the limiter's lock (it must
 * not call the limiter). */
#ifndef ES_CLI_LOGLIMIT_H
#define ES_CLI_LOGLIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reasons counted apart; past them, the rest count as "other". */
#define ES_CLI_LOG_LIMIT_REASONS 32

typedef struct es_cli_log_limit_count {
    const char *reason;
    uint64_t logged;  /* in full, this interval */
    uint64_t skipped; /* counted only, since the last summary */
} es_cli_log_limit_count;

typedef struct es_cli_log_limit {
    pthread_mutex_t mu;
    unsigned burst;
    int64_t interval_ms;
    int64_t interval_start_ms; /* 0: no line yet */
    es_cli_log_limit_count reasons[ES_CLI_LOG_LIMIT_REASONS];
    size_t n;
    uint64_t skipped; /* the sum over the reasons */
} es_cli_log_limit;

#define ES_CLI_LOG_LIMIT_INIT(burst, interval_ms)                                                  \
    {PTHREAD_MUTEX_INITIALIZER, (burst), (interval_ms), 0, {{0}}, 0, 0}

/* The lines left out of one interval: `skipped` in all, per reason in
 * counts[0..n) (those with skipped 0 included), over `seconds`. */
typedef void (*es_cli_log_summary_fn)(const es_cli_log_limit_count *counts, size_t n,
                                      uint64_t skipped, double seconds, void *arg);

/* Changes the burst and interval (interval_ms at least 1). */
void es_cli_log_limit_set(es_cli_log_limit *l, unsigned burst, int64_t interval_ms);

/* True: write this line in full; false: it was counted. A summary of the
 * interval before is written first when it is over. */
bool es_cli_log_limit_admit(es_cli_log_limit *l, const char *reason, es_cli_log_summary_fn fn,
                            void *arg);

/* Writes the summary of the lines not logged, if any: once the interval is
 * over, or at once when `now` (at the end of a run). */
void es_cli_log_limit_summarize(es_cli_log_limit *l, bool now, es_cli_log_summary_fn fn, void *arg);

#endif
