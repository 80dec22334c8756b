/* Log lines limited per reason and interval (loglimit.h). */
#include "loglimit.h"

#include <string.h>

#include "clock.h"

void es_cli_log_limit_set(es_cli_log_limit *l, unsigned burst, int64_t interval_ms)
{
    pthread_mutex_lock(&l->mu);
    l->burst = burst;
    l->interval_ms = interval_ms > 0 ? interval_ms : 1;
    pthread_mutex_unlock(&l->mu);
}

/* Under mu: the count of `reason`; the last slot is kept for "other". */
static es_cli_log_limit_count *reason_slot(es_cli_log_limit *l, const char *reason)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->reasons[i].reason, reason) == 0)
            return &l->reasons[i];
    if (l->n < ES_CLI_LOG_LIMIT_REASONS - 1 ||
        (l->n == ES_CLI_LOG_LIMIT_REASONS - 1 && strcmp(reason, "other") == 0)) {
        l->reasons[l->n] = (es_cli_log_limit_count){.reason = reason};
        return &l->reasons[l->n++];
    }
    return reason_slot(l, "other");
}

/* Under mu: the summary, and the counts start again. */
static void write_summary(es_cli_log_limit *l, int64_t now_ms, es_cli_log_summary_fn fn, void *arg)
{
    if (l->skipped > 0)
        fn(l->reasons, l->n, l->skipped, (double)(now_ms - l->interval_start_ms) / 1000.0, arg);
    for (size_t i = 0; i < l->n; i++)
        l->reasons[i].logged = l->reasons[i].skipped = 0;
    l->skipped = 0;
    l->interval_start_ms = now_ms;
}

/* Under mu: a new interval when the last one is over. */
static void roll(es_cli_log_limit *l, int64_t now_ms, bool force, es_cli_log_summary_fn fn,
                 void *arg)
{
    if (l->interval_start_ms == 0)
        l->interval_start_ms = now_ms;
    else if (force || now_ms - l->interval_start_ms >= l->interval_ms)
        write_summary(l, now_ms, fn, arg);
}

bool es_cli_log_limit_admit(es_cli_log_limit *l, const char *reason, es_cli_log_summary_fn fn,
                            void *arg)
{
    if (reason == NULL)
        reason = "other";
    pthread_mutex_lock(&l->mu);
    roll(l, es_cli_monotonic_ms(), false, fn, arg);
    es_cli_log_limit_count *r = reason_slot(l, reason);
    bool admit = r->logged < l->burst;
    if (admit) {
        r->logged++;
    } else {
        r->skipped++;
        l->skipped++;
    }
    pthread_mutex_unlock(&l->mu);
    return admit;
}

void es_cli_log_limit_summarize(es_cli_log_limit *l, bool now, es_cli_log_summary_fn fn, void *arg)
{
    pthread_mutex_lock(&l->mu);
    if (l->interval_start_ms != 0)
        roll(l, es_cli_monotonic_ms(), now, fn, arg);
    pthread_mutex_unlock(&l->mu);
}
