/* Structured logs of the ingester on stderr: one line per event, as text
 * ("2026-01-02T03:04:05.678Z warn refused seq=12 kind=hash error=\"…\"") or
 * as JSON ({"time":…,"level":"warn","msg":"refused","seq":12,…}), chosen
 * once with --log-format. Lines are built in a fixed buffer (longer values
 * are cut) and written with one write(2), so lines from several threads
 * never interleave. */
#ifndef ES_INGEST_LOG_H
#define ES_INGEST_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ingest_log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } ingest_log_level;

/* --log-format: "text" (default) or "json"; false for anything else. */
bool ingest_log_set_format(const char *name);
void ingest_log_set_quiet(bool quiet); /* only warnings and errors */
bool ingest_log_quiet(void);

#define INGEST_LOG_LINE_MAX 2048

typedef struct ingest_log_line {
    char buf[INGEST_LOG_LINE_MAX];
    size_t len;
    bool skip; /* below the level shown */
} ingest_log_line;

/* Starts a line: its level and message (a short constant: "refused"). */
void ingest_log_begin(ingest_log_line *l, ingest_log_level level, const char *msg);
void ingest_log_str(ingest_log_line *l, const char *key, const char *value);
void ingest_log_strn(ingest_log_line *l, const char *key, const char *value, size_t len);
void ingest_log_u64(ingest_log_line *l, const char *key, uint64_t value);
void ingest_log_i64(ingest_log_line *l, const char *key, int64_t value);
void ingest_log_f64(ingest_log_line *l, const char *key, double value, int decimals);
/* Writes the line. */
void ingest_log_end(ingest_log_line *l);

/* The common case: a message and one "error" field (NULL: none). */
void ingest_log_msg(ingest_log_level level, const char *msg, const char *error);

/* Per-frame warnings are limited, or a stream of hostile frames (a 30 KB
 * zstd bomb holds millions) would turn into gigabytes of log: of each
 * reason (a short constant, e.g. es_atp_error_name), the first `burst` lines
 * of every interval are written in full, the rest only counted; one warn
 * line "frame lines not logged" then gives, per reason, how many were left
 * out. The counters of the stats and reports stay exact: they never depend
 * on the log. Defaults: 10 lines per reason per 10 s (tools/common/loglimit.h). */
#define INGEST_LOG_BURST 10
#define INGEST_LOG_INTERVAL_MS 10000
void ingest_log_set_limit(unsigned burst, int64_t interval_ms);
/* True: write this line in full; false: it was counted. Thread-safe. */
bool ingest_log_admit(const char *reason);
/* Writes the summary of the lines not logged, if any: once the interval is
 * over, or at once when `now` (at the end of a run). */
void ingest_log_summarize(bool now);

#endif
