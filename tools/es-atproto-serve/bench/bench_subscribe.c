/* Subscribers of es-atproto-serve, for its figures (docs/serve.md,
 * "Measured"): CLIENTS processes each open TARGET (a /subscribe URL path
 * and query) on 127.0.0.1:PORT and read EVENTS events; each prints its
 * rate and the bytes received (compress=true's zstd frames as they came),
 * the parent the aggregate. Built with the benchmarks, never run by ctest.
 *
 *   bench_subscribe PORT '/subscribe?cursor=1' 35000 20 */
#define _GNU_SOURCE
#include <sys/wait.h>
#include <time.h>

#include "ws_client.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One subscriber: 0 when it read every event. */
static int subscriber(int port, const char *target, long want)
{
    ws_client w;
    double t0 = now_s();
    if (ws_open(&w, port, target, 0) != 101) {
        fprintf(stderr, "bench_subscribe: the upgrade failed\n");
        return 1;
    }
    long n = 0;
    size_t bytes = 0;
    char *m;
    size_t len;
    bool binary;
    while (n < want && ws_read_message(&w, 10000, &m, &len, &binary) == 1) {
        bytes += len;
        free(m);
        n++;
    }
    double s = now_s() - t0;
    printf("%ld events, %zu bytes in %.3f s: %.0f events/s\n", n, bytes, s, (double)n / s);
    ws_close(&w);
    return n == want ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_subscribe PORT TARGET EVENTS [CLIENTS]\n");
        return 2;
    }
    int port = atoi(argv[1]), clients = argc > 4 ? atoi(argv[4]) : 1;
    long want = atol(argv[3]);
    if (port <= 0 || want <= 0 || clients <= 0 || clients > 10000) {
        fprintf(stderr, "bench_subscribe: bad arguments\n");
        return 2;
    }
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(subscriber(port, argv[2], want));
        if (pid < 0)
            return 1;
    }
    int failed = 0, status;
    while (wait(&status) > 0)
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    double s = now_s() - t0;
    printf("%d subscribers, %d failed: %.0f events/s delivered in all (%.3f s)\n", clients,
           failed, (double)want * (clients - failed) / s, s);
    return failed != 0;
}
