/* Syntax checks for the atproto identifiers the mapping relies on. They
 * matter beyond pedantry: a collection NSID becomes a subject token (so it
 * must never contain '.', '*', '>' or '_' once mapped) and the rkey goes into
 * message ids. Rules follow the atproto specs and their interop test vectors. */
#include <es/atproto.h>

#include "atp_internal.h"

#include <limits.h>
#include <string.h>

#define DID_MAX          2048
#define NSID_MAX         317
#define NSID_SEGMENT_MAX 63
#define RKEY_MAX         512
#define DATETIME_MAX     64

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static bool is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}

bool es_atp_valid_did(const char *s, size_t len)
{
    if (s == NULL || len < 7 || len > DID_MAX || memcmp(s, "did:", 4) != 0)
        return false;
    size_t i = 4;
    while (i < len && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i == 4 || i >= len || s[i] != ':')
        return false;
    if (++i >= len)
        return false;
    for (; i < len; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != ':' && c != '%' && c != '-')
            return false;
    }
    return s[len - 1] != ':' && s[len - 1] != '%';
}

/* One NSID segment [s, s+n): domain segments allow inner hyphens, the final
 * name segment only letters then letters and digits. */
static bool valid_nsid_segment(const char *s, size_t n, bool first, bool last)
{
    if (n == 0 || n > NSID_SEGMENT_MAX)
        return false;
    if (last) {
        if (!is_alpha(s[0]))
            return false;
        for (size_t i = 1; i < n; i++)
            if (!is_alnum(s[i]))
                return false;
        return true;
    }
    if (s[0] == '-' || s[n - 1] == '-' || (first && is_digit(s[0])))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool es_atp_valid_nsid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > NSID_MAX)
        return false;
    size_t segments = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        bool last = i == len;
        if (!valid_nsid_segment(s + start, i - start, segments == 0, last))
            return false;
        segments++;
        start = i + 1;
    }
    return segments >= 3;
}

bool es_atp_valid_rkey(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > RKEY_MAX)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '~')
            return false;
    }
    return true;
}

/* A TID is 13 characters of base32-sortable: 64 bits, big-endian. */
static const char tid_alphabet[] = "234567abcdefghijklmnopqrstuvwxyz";

bool es_atp_valid_tid(const char *s, size_t len)
{
    if (s == NULL || len != 13)
        return false;
    /* The top bit of the 64-bit value is zero: the first character is in
     * the lower half of the alphabet. */
    if (memchr(tid_alphabet, s[0], 16) == NULL || s[0] == '\0')
        return false;
    for (size_t i = 1; i < len; i++)
        if (s[i] == '\0' || strchr(tid_alphabet, s[i]) == NULL)
            return false;
    return true;
}

int64_t esi_atp_tid_time_us(const char *tid)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 13; i++)
        v = v << 5 | (uint64_t)(strchr(tid_alphabet, tid[i]) - tid_alphabet);
    return (int64_t)(v >> 10); /* the top bit is zero in a valid TID */
}

/* ---- datetime ------------------------------------------------------------ */

/* Read exactly `n` digits at *p as a number; false unless all are digits. */
static bool take_digits(const char **p, const char *end, int n, int *out)
{
    if (end - *p < n)
        return false;
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (!is_digit(c))
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool take_char(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return false;
    (*p)++;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t mp = (m + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

typedef struct datetime {
    int year, month, day, hour, minute, second;
    int64_t nanos;      /* fraction, truncated to nanoseconds */
    int offset_minutes; /* east of UTC */
} datetime;

static bool parse_fraction(const char **p, const char *end, int64_t *nanos)
{
    *nanos = 0;
    if (*p >= end || **p != '.')
        return true;
    (*p)++;
    int digits = 0;
    while (*p < end && is_digit(**p)) {
        if (digits < 9)
            *nanos = *nanos * 10 + (**p - '0');
        digits++;
        (*p)++;
    }
    for (int i = digits; i < 9; i++)
        *nanos *= 10;
    return digits > 0;
}

static bool parse_offset(const char **p, const char *end, int *minutes)
{
    if (take_char(p, end, 'Z')) {
        *minutes = 0;
        return true;
    }
    if (*p >= end || (**p != '+' && **p != '-'))
        return false;
    int sign = **p == '-' ? -1 : 1;
    (*p)++;
    int hh, mm;
    if (!take_digits(p, end, 2, &hh) || !take_char(p, end, ':') || !take_digits(p, end, 2, &mm))
        return false;
    if (hh > 23 || mm > 59 || (sign < 0 && hh == 0 && mm == 0)) /* -00:00 means "unknown" */
        return false;
    *minutes = sign * (hh * 60 + mm);
    return true;
}

static bool parse_datetime(const char *s, size_t len, datetime *dt)
{
    if (s == NULL || len > DATETIME_MAX)
        return false;
    const char *p = s, *end = s + len;
    if (!take_digits(&p, end, 4, &dt->year) || !take_char(&p, end, '-') ||
        !take_digits(&p, end, 2, &dt->month) || !take_char(&p, end, '-') ||
        !take_digits(&p, end, 2, &dt->day) || !take_char(&p, end, 'T') ||
        !take_digits(&p, end, 2, &dt->hour) || !take_char(&p, end, ':') ||
        !take_digits(&p, end, 2, &dt->minute) || !take_char(&p, end, ':') ||
        !take_digits(&p, end, 2, &dt->second) || !parse_fraction(&p, end, &dt->nanos) ||
        !parse_offset(&p, end, &dt->offset_minutes) || p != end)
        return false;
    return dt->month >= 1 && dt->month <= 12 && dt->day >= 1 &&
           dt->day <= days_in_month(dt->year, dt->month) && dt->hour <= 23 && dt->minute <= 59 &&
           dt->second <= 59;
}

/* Seconds since the epoch of a parsed datetime, false when it normalises to
 * a time before year 0 (e.g. 0000-01-01T00:00:00+01:00). */
static bool datetime_seconds(const datetime *dt, int64_t *secs)
{
    *secs = days_from_civil(dt->year, dt->month, dt->day) * 86400 + dt->hour * 3600 +
            dt->minute * 60 + dt->second - (int64_t)dt->offset_minutes * 60;
    return *secs >= days_from_civil(0, 1, 1) * 86400;
}

bool es_atp_valid_datetime(const char *s, size_t len)
{
    datetime dt;
    int64_t secs;
    return parse_datetime(s, len, &dt) && datetime_seconds(&dt, &secs);
}

bool es_atp_parse_datetime(const char *s, size_t len, int64_t *unix_ns)
{
    datetime dt;
    int64_t secs;
    if (!parse_datetime(s, len, &dt) || !datetime_seconds(&dt, &secs))
        return false;
    /* Keep secs * 1e9 + nanos inside int64. */
    if (secs > (INT64_MAX - dt.nanos) / 1000000000 || secs < INT64_MIN / 1000000000 + 1)
        return false;
    if (unix_ns != NULL)
        *unix_ns = secs * 1000000000 + dt.nanos;
    return true;
}

/* A handle (atproto handle spec): ASCII labels of 1 to 63 letters, digits and
 * inner hyphens, at least two, separated by dots, 253 characters at most;
 * the last label (the TLD) does not start with a digit. */
bool es_atp_valid_handle(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > 253)
        return false;
    size_t labels = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (!is_alnum(s[i]) && s[i] != '-')
                return false;
            continue;
        }
        size_t n = i - start;
        if (n == 0 || n > 63 || s[start] == '-' || s[i - 1] == '-')
            return false;
        labels++;
        if (i == len && is_digit(s[start]))
            return false;
        start = i + 1;
    }
    return labels >= 2;
}

const char *esi_atp_repo_path_problem(const char *path, size_t len, size_t *collection_len)
{
    const char *slash = memchr(path, '/', len);
    if (slash == NULL)
        return "path has no '/'";
    *collection_len = (size_t)(slash - path);
    if (!es_atp_valid_nsid(path, *collection_len))
        return "collection is not a valid NSID";
    if (!es_atp_valid_rkey(slash + 1, len - *collection_len - 1))
        return "record key is not valid";
    return NULL;
}
