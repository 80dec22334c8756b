/* Synchronous requests, one after another: KV writes (es_checkpoint_set,
 * a publish awaiting its acknowledgement), KV reads (es_checkpoint_get, a
 * direct get) and stream info requests (es_store_info_get, a JetStream API
 * request), each a request and its answer. Prints requests/s, the
 * 50th and 99th percentile latency and, with --server-pid, the CPU time
 * the server spent per 1,000 requests (from /proc). docs/wire-format.md
 * ("Requests and their answers") has the figures.
 *
 *   es-bench-requests --server URL [--requests N] [--threads N] [--server-pid PID]
 *
 * With --threads, that many threads share the requests and the one
 * connection.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <es/es.h>

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The server's user + system CPU time in ms, or -1 without a pid. */
static int64_t server_cpu_ms(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long utime = 0, stime = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &utime, &stime) != 2)
        return -1;
    return (int64_t)((utime + stime) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct target {
    es_store *st;
    es_checkpoints *cps;
} target;

typedef es_status (*one_request)(const target *t, long i);

static es_status kv_write(const target *t, long i)
{
    return es_checkpoint_set(t->cps, "bench", (uint64_t)i + 1, NULL, ES_CHECKPOINT_ANY, NULL);
}

static es_status kv_read(const target *t, long i)
{
    (void)i;
    es_checkpoint cp;
    es_status s = es_checkpoint_get(t->cps, "bench", &cp);
    es_checkpoint_clear(&cp);
    return s;
}

static es_status stream_info(const target *t, long i)
{
    (void)i;
    es_store_info info;
    return es_store_info_get(t->st, &info);
}

/* One thread's share of a run: requests [from, to), their latencies. */
typedef struct share {
    pthread_t thread;
    one_request req;
    const target *t;
    long from, to;
    int64_t *lat;
    es_status s;
} share;

static void *run_share(void *arg)
{
    share *sh = arg;
    for (long i = sh->from; i < sh->to && sh->s == ES_OK; i++) {
        int64_t began = now_us();
        sh->s = sh->req(sh->t, i);
        sh->lat[i] = now_us() - began;
    }
    return NULL;
}

/* `n` requests by `threads` threads at once on the one connection. */
static int run(const char *what, one_request req, const target *t, long n, int threads, long pid)
{
    int64_t *lat = malloc((size_t)n * sizeof *lat);
    share *shares = calloc((size_t)threads, sizeof *shares);
    int rc = lat != NULL && shares != NULL ? 0 : 1;
    int64_t cpu0 = server_cpu_ms(pid), t0 = now_us();
    int created = 0;
    while (rc == 0 && created < threads) {
        share *sh = &shares[created];
        *sh = (share){.req = req, .t = t, .lat = lat, .s = ES_OK};
        sh->from = n * created / threads;
        sh->to = n * (created + 1) / threads;
        if (pthread_create(&sh->thread, NULL, run_share, sh) == 0)
            created++;
        else
            rc = 1;
    }
    for (int i = 0; i < created; i++) {
        pthread_join(shares[i].thread, NULL);
        if (shares[i].s != ES_OK) {
            fprintf(stderr, "es-bench-requests: %s: %s\n", what, es_status_text(shares[i].s));
            rc = 1;
        }
    }
    int64_t elapsed = now_us() - t0, cpu1 = server_cpu_ms(pid);
    if (rc == 0) {
        qsort(lat, (size_t)n, sizeof *lat, by_value);
        printf("| %-10s | %9.0f | %8" PRId64 " | %8" PRId64 " | ", what,
               (double)n * 1e6 / (double)elapsed, lat[n / 2], lat[n * 99 / 100]);
        if (cpu0 >= 0 && cpu1 >= 0)
            printf("%10.1f |\n", (double)(cpu1 - cpu0) * 1000.0 / (double)n);
        else
            printf("%10s |\n", "-");
    }
    free(shares);
    free(lat);
    return rc;
}

int main(int argc, char **argv)
{
    const char *url = getenv("NATS_URL");
    long n = 5000, pid = 0;
    int threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--server") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--requests") == 0)
            n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--server-pid") == 0)
            pid = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else
            break;
    }
    if (n < 1 || n > 10000000 || threads < 1 || threads > 256 || n < threads || argc % 2 == 0) {
        fprintf(stderr, "usage: es-bench-requests [--server URL] [--requests N] "
                        "[--threads N] [--server-pid PID]\n");
        return 2;
    }
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = url;
    natsConnection *nc = NULL;
    char name[32];
    snprintf(name, sizeof name, "bench_requests_%ld", (long)getpid());
    es_store *st = NULL;
    es_checkpoints *cps = NULL;
    if (es_connect(&co, &nc) != ES_OK || es_store_create(nc, name, NULL, NULL, &st) != ES_OK ||
        es_checkpoints_open(st, &cps) != ES_OK) {
        fprintf(stderr, "es-bench-requests: %s\n", es_last_error());
        return 1;
    }
    printf("| %-10s | %9s | %8s | %8s | %10s |\n", "requests", "per s", "p50 µs", "p99 µs",
           "server CPU ms / 1000");
    target t = {st, cps};
    int rc = run("KV write", kv_write, &t, n, threads, pid);
    if (rc == 0)
        rc = run("KV read", kv_read, &t, n, threads, pid);
    if (rc == 0)
        rc = run("info", stream_info, &t, n, threads, pid);
    es_checkpoints_destroy(cps);
    es_store_destroy(st);
    es_store_delete(nc, name, NULL);
    es_connection_close(nc);
    es_shutdown(2000);
    return rc;
}
