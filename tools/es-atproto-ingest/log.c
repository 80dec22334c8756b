#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "loglimit.h"

static bool json_format;
static bool quiet;

bool ingest_log_set_format(const char *name)
{
    if (strcmp(name, "json") == 0)
        json_format = true;
    else if (strcmp(name, "text") == 0)
        json_format = false;
    else
        return false;
    return true;
}

void ingest_log_set_quiet(bool q)
{
    quiet = q;
}

bool ingest_log_quiet(void)
{
    return quiet;
}

static void put(ingest_log_line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 2 - l->len; /* keep room for '}' and '\n' */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(ingest_log_line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A value: JSON-escaped in JSON; in text, bare when it has no space or
 * quote, else quoted with the same escapes. */
static void put_value(ingest_log_line *l, const char *v, size_t n, bool quote)
{
    if (quote)
        put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    if (quote)
        put(l, "\"", 1);
}

static void put_key(ingest_log_line *l, const char *key)
{
    if (json_format) {
        put(l, ",\"", 2);
        puts_(l, key);
        put(l, "\":", 2);
    } else {
        put(l, " ", 1);
        puts_(l, key);
        put(l, "=", 1);
    }
}

static const char *level_name(ingest_log_level level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return names[level];
}

void ingest_log_begin(ingest_log_line *l, ingest_log_level level, const char *msg)
{
    l->len = 0;
    l->skip = level == LOG_DEBUG || (quiet && level < LOG_WARN);
    if (l->skip)
        return;
    int64_t now = es_cli_now_ns();
    time_t secs = (time_t)(now / 1000000000LL);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now % 1000000000LL / 1000000));
    if (json_format) {
        puts_(l, "{\"time\":\"");
        puts_(l, when);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_name(level));
        puts_(l, "\",\"msg\":");
        put_value(l, msg, strlen(msg), true);
    } else {
        puts_(l, when);
        put(l, " ", 1);
        puts_(l, level_name(level));
        put(l, " ", 1);
        puts_(l, msg);
    }
}

void ingest_log_strn(ingest_log_line *l, const char *key, const char *value, size_t len)
{
    if (l->skip)
        return;
    put_key(l, key);
    bool quote = json_format || len == 0 || memchr(value, ' ', len) || memchr(value, '"', len) ||
                 memchr(value, '=', len);
    put_value(l, value, len, quote);
}

void ingest_log_str(ingest_log_line *l, const char *key, const char *value)
{
    if (value == NULL)
        value = "";
    ingest_log_strn(l, key, value, strlen(value));
}

static void put_number(ingest_log_line *l, const char *key, const char *text)
{
    if (l->skip)
        return;
    put_key(l, key);
    puts_(l, text);
}

void ingest_log_u64(ingest_log_line *l, const char *key, uint64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, value);
    put_number(l, key, text);
}

void ingest_log_i64(ingest_log_line *l, const char *key, int64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, value);
    put_number(l, key, text);
}

void ingest_log_f64(ingest_log_line *l, const char *key, double value, int decimals)
{
    char text[48];
    snprintf(text, sizeof text, "%.*f", decimals, value);
    put_number(l, key, text);
}

void ingest_log_end(ingest_log_line *l)
{
    if (l->skip)
        return;
    if (json_format)
        l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    /* One write per line: lines of several threads never interleave. */
    ssize_t w = write(STDERR_FILENO, l->buf, l->len);
    (void)w;
}

void ingest_log_msg(ingest_log_level level, const char *msg, const char *error)
{
    ingest_log_line l;
    ingest_log_begin(&l, level, msg);
    if (error != NULL)
        ingest_log_str(&l, "error", error);
    ingest_log_end(&l);
}

static es_cli_log_limit limit = ES_CLI_LOG_LIMIT_INIT(INGEST_LOG_BURST, INGEST_LOG_INTERVAL_MS);

void ingest_log_set_limit(unsigned burst, int64_t interval_ms)
{
    es_cli_log_limit_set(&limit, burst, interval_ms);
}

/* The summary of the lines left out, one warn line. */
static void write_summary(const es_cli_log_limit_count *counts, size_t n, uint64_t skipped,
                          double seconds, void *arg)
{
    (void)arg;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_WARN, "frame lines not logged");
    ingest_log_u64(&l, "not_logged", skipped);
    ingest_log_f64(&l, "seconds", seconds, 1);
    for (size_t i = 0; i < n; i++)
        if (counts[i].skipped > 0)
            ingest_log_u64(&l, counts[i].reason, counts[i].skipped);
    ingest_log_end(&l);
}

bool ingest_log_admit(const char *reason)
{
    return es_cli_log_limit_admit(&limit, reason, write_summary, NULL);
}

void ingest_log_summarize(bool now)
{
    es_cli_log_limit_summarize(&limit, now, write_summary, NULL);
}
