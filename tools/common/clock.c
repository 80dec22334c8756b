/* The tools' clock (clock.h). */
#include "clock.h"

#include <errno.h>

#include <es/time.h>

/* Wall and monotonic time are the library's (es/time.h): one clock. */
int64_t es_cli_now_ns(void)
{
    return es_now_ns();
}

int64_t es_cli_monotonic_ns(void)
{
    return es_monotonic_ns();
}

int64_t es_cli_monotonic_ms(void)
{
    return es_monotonic_ms();
}

int64_t es_cli_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void es_cli_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

struct timespec es_cli_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
