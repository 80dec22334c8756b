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

#endif
