/* The progress line (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#define REDRAW_MS 200

void es_progress_start(es_progress *p, const char *what, uint64_t total, bool enabled)
{
    memset(p, 0, sizeof *p);
    p->on_ = enabled && isatty(STDERR_FILENO);
    p->what_ = what;
    p->total_ = total;
    p->start_ms_ = p->last_draw_ms_ = es_cli_monotonic_ms();
}

static void draw(es_progress *p, uint64_t done, uint64_t position, int64_t now)
{
    double secs = (double)(now - p->start_ms_) / 1000.0;
    double rate = secs > 0 ? (double)done / secs : 0;
    char line[160];
    int n = snprintf(line, sizeof line, "%s: %llu done, %.0f/s", p->what_, (unsigned long long)done,
                     rate);
    if (p->total_ > 0 && n > 0 && (size_t)n < sizeof line) {
        double frac = position >= p->total_ ? 1.0 : (double)position / (double)p->total_;
        char bar[21];
        int full = (int)(frac * 20);
        for (int i = 0; i < 20; i++)
            bar[i] = i < full ? '#' : '-';
        bar[20] = '\0';
        double pos_rate = secs > 0 ? (double)position / secs : 0;
        double eta =
            pos_rate > 0
                ? (double)(p->total_ - (position < p->total_ ? position : p->total_)) / pos_rate
                : 0;
        snprintf(line + n, sizeof line - (size_t)n, " [%s] %3.0f%% ETA %.0fs", bar, frac * 100,
                 eta);
    }
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    p->drawn_ = true;
}

void es_progress_update(es_progress *p, uint64_t done, uint64_t position)
{
    if (!p->on_ || (++p->calls_ & 63) != 0) /* look at the clock every 64 calls */
        return;
    int64_t now = es_cli_monotonic_ms();
    if (now - p->last_draw_ms_ < REDRAW_MS)
        return;
    p->last_draw_ms_ = now;
    draw(p, done, position, now);
}

void es_progress_finish(es_progress *p)
{
    if (p->on_ && p->drawn_) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    p->drawn_ = false;
}
