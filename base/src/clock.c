/* Clocks (base/clock.h) and RFC 3339 timestamps in UTC with nanoseconds, as
 * Rita-Time carries them (es/time.h). */
#include "base/clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/internal.h"

int64_t esi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t esi_monotonic_ms(void)
{
    return esi_monotonic_ns() / 1000000;
}

int64_t esi_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t es_now_ns(void)
{
    return esi_now_ns();
}

int64_t es_monotonic_ns(void)
{
    return esi_monotonic_ns();
}

int64_t es_monotonic_ms(void)
{
    return esi_monotonic_ms();
}

void esi_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* gmtime_r and snprintf cost more than the rest of an append: keep the
 * formatted seconds per thread and only write the nine fraction digits. */
static _Thread_local int64_t cached_sec = INT64_MIN;
static _Thread_local char cached_text[32];
static _Thread_local int cached_len;

void es_time_format(int64_t ns, char out[ES_TIME_MAX])
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec -= 1;
    }
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        cached_len = snprintf(cached_text, sizeof cached_text, "%04d-%02d-%02dT%02d:%02d:%02d.",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec);
        if (cached_len < 0 || cached_len >= (int)sizeof cached_text) { /* far-off years */
            snprintf(out, ES_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
            cached_sec = INT64_MIN;
            return;
        }
        cached_sec = sec;
    }
    memcpy(out, cached_text, (size_t)cached_len);
    char *p = out + cached_len;
    for (int i = 8; i >= 0; i--) {
        p[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    p[9] = 'Z';
    p[10] = '\0';
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

es_status es_time_parse(const char *s, int64_t *ns)
{
    int y, mo, d, h, mi, sec;
    if (s == NULL || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return es_error(ES_ERR_INVALID, "not an RFC 3339 time: '%.40s'", s ? s : "(null)");
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 9)
                frac = frac * 10 + (*p - '0');
        if (n == 0)
            return es_error(ES_ERR_INVALID, "RFC 3339 time with an empty fraction: '%.40s'", s);
        for (; n < 9; n++)
            frac *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || !digits(p + 4, 2, &om))
            return es_error(ES_ERR_INVALID, "bad RFC 3339 offset: '%.40s'", s);
        offset = (*p == '+' ? 1 : -1) * ((int64_t)oh * 3600 + om * 60);
        p += 6;
    } else {
        return es_error(ES_ERR_INVALID, "RFC 3339 time without a zone: '%.40s'", s);
    }
    if (*p != '\0')
        return es_error(ES_ERR_INVALID, "trailing bytes after an RFC 3339 time: '%.40s'", s);
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    *ns = secs * 1000000000 + frac;
    return ES_OK;
}
