/* The limit on repeated log lines (loglimit.h): per reason, `burst` lines
 * of an interval in full and the rest counted; the summary gives the exact
 * counts per reason, once the interval is over or at once on demand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "loglimit.h"

typedef struct seen {
    int summaries;
    uint64_t skipped, frames, dead;
} seen;

static void summary(const es_cli_log_limit_count *counts, size_t n, uint64_t skipped,
                    double seconds, void *arg)
{
    seen *s = arg;
    (void)seconds;
    s->summaries++;
    s->skipped += skipped;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(counts[i].reason, "frame") == 0)
            s->frames += counts[i].skipped;
        if (strcmp(counts[i].reason, "dead_letter") == 0)
            s->dead += counts[i].skipped;
    }
}

static void bursts_per_reason_and_exact_summaries(void **state)
{
    (void)state;
    es_cli_log_limit l = ES_CLI_LOG_LIMIT_INIT(3, 60000);
    seen s = {0};
    int admitted = 0;
    for (int i = 0; i < 100; i++)
        admitted += es_cli_log_limit_admit(&l, "frame", summary, &s);
    for (int i = 0; i < 5; i++)
        admitted += es_cli_log_limit_admit(&l, "dead_letter", summary, &s);
    assert_int_equal(admitted, 6); /* 3 of each reason */
    assert_int_equal(s.summaries, 0); /* the interval is not over */
    es_cli_log_limit_summarize(&l, false, summary, &s);
    assert_int_equal(s.summaries, 0);
    es_cli_log_limit_summarize(&l, true, summary, &s);
    assert_int_equal(s.summaries, 1);
    assert_int_equal(s.skipped, 99);
    assert_int_equal(s.frames, 97);
    assert_int_equal(s.dead, 2);
    /* a new interval: full lines again; nothing left out, no summary */
    assert_true(es_cli_log_limit_admit(&l, "frame", summary, &s));
    es_cli_log_limit_summarize(&l, true, summary, &s);
    assert_int_equal(s.summaries, 1);
}

static void an_interval_over_writes_the_summary(void **state)
{
    (void)state;
    es_cli_log_limit l = ES_CLI_LOG_LIMIT_INIT(1, 60000);
    es_cli_log_limit_set(&l, 1, 20);
    seen s = {0};
    assert_true(es_cli_log_limit_admit(&l, "frame", summary, &s));
    assert_false(es_cli_log_limit_admit(&l, "frame", summary, &s));
    es_cli_sleep_ms(40);
    assert_true(es_cli_log_limit_admit(&l, "frame", summary, &s)); /* the summary first */
    assert_int_equal(s.summaries, 1);
    assert_int_equal(s.frames, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bursts_per_reason_and_exact_summaries),
        cmocka_unit_test(an_interval_over_writes_the_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
