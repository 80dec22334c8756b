/* es-failover-probe: what a stream-leader kill costs an appender. Several
 * threads append single events (each with its own event id, retried with
 * the same id until stored) to a fresh store; after --before seconds the
 * probe runs --kill-cmd (which kills the store's stream leader), and after
 * --after more seconds it prints:
 *   - the appends per second before the kill,
 *   - the time from the kill to the first append sent after it that was
 *     stored,
 *   - the time from the kill to full speed again (the first 1 s window from
 *     which the rate is at least 90 % of the rate before),
 *   - the events the store holds against the events acknowledged (every
 *     acknowledged event once: retries after an unknown outcome are
 *     deduplicated by event id).
 * Public API only; the kill command is the caller's (tools/failover-measure
 * uses tools/nats-local cluster). Not run by ctest.
 *
 *   es-failover-probe --server URLS --kill-cmd CMD [--replicas 3] [--threads 4]
 *                     [--before 5] [--after 25] [--timeout-ms 1000] */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/es.h>

#include "clock.h"

#define BUCKET_MS   100
#define MAX_BUCKETS 3000 /* 300 s */
#define MAX_THREADS 64
#define STORE       "failover_probe"

typedef struct probe {
    es_store *st;
    int64_t start_ms;
    int64_t end_ms;
    _Atomic int64_t kill_ms;        /* 0 until the kill command ran */
    _Atomic int64_t first_after_ms; /* completion of the first append sent after the kill */
    _Atomic uint64_t stored;        /* appends acknowledged */
    _Atomic uint64_t failures;      /* attempts that failed (and were retried) */
    _Atomic uint32_t bucket[MAX_BUCKETS];
} probe;

typedef struct worker {
    probe *p;
    int index;
} worker;

static void note_first_after(probe *p, int64_t sent_ms, int64_t done_ms)
{
    int64_t kill = atomic_load(&p->kill_ms);
    if (kill == 0 || sent_ms < kill)
        return;
    int64_t none = 0;
    atomic_compare_exchange_strong(&p->first_after_ms, &none, done_ms);
}

static void *append_loop(void *arg)
{
    worker *w = arg;
    probe *p = w->p;
    for (uint64_t n = 0; es_cli_monotonic_ms() < p->end_ms; n++) {
        char id[64];
        snprintf(id, sizeof id, "probe-%d-%" PRIu64, w->index, n);
        es_event_spec e;
        es_event_spec_init(&e);
        e.entity_type = "probe";
        e.entity_id = id + 6;
        e.event_type = "appended";
        e.event_id = id;
        e.data = "{}";
        e.data_len = 2;
        for (;;) { /* the same event until stored: an unknown outcome is retried safely */
            int64_t sent = es_cli_monotonic_ms();
            es_status s = es_append(p->st, &e, NULL);
            int64_t done = es_cli_monotonic_ms();
            if (s == ES_OK) {
                atomic_fetch_add(&p->stored, 1);
                int64_t b = (done - p->start_ms) / BUCKET_MS;
                if (b >= 0 && b < MAX_BUCKETS)
                    atomic_fetch_add(&p->bucket[b], 1);
                note_first_after(p, sent, done);
                break;
            }
            atomic_fetch_add(&p->failures, 1);
            if (done >= p->end_ms + 60000) /* give up a minute after the run */
                return NULL;
            es_cli_sleep_ms(20);
        }
    }
    return NULL;
}

static double rate(const probe *p, int64_t from_bucket, int64_t to_bucket)
{
    uint64_t n = 0;
    for (int64_t b = from_bucket; b < to_bucket; b++)
        n += atomic_load(&p->bucket[b]);
    return to_bucket > from_bucket ? (double)n * 1000.0 / (double)((to_bucket - from_bucket) * BUCKET_MS) : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: es-failover-probe --server URLS --kill-cmd CMD [--replicas N] "
                    "[--threads N] [--before S] [--after S] [--timeout-ms MS]\n");
    return 2;
}

static es_status open_store(const char *url, int replicas, int64_t timeout_ms, es_store **out)
{
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = url;
    co.max_reconnect = -1;
    co.reconnect_wait_ms = 100;
    natsConnection *nc = NULL;
    es_status s = es_connect(&co, &nc);
    if (s != ES_OK)
        return s;
    es_store_delete(nc, STORE, NULL);
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.replicas = replicas;
    es_store_options o;
    es_store_options_init(&o);
    o.timeout_ms = timeout_ms;
    return es_store_create(nc, STORE, &cfg, &o, out);
}

int main(int argc, char **argv)
{
    const char *url = getenv("NATS_URL"), *kill_cmd = NULL;
    int replicas = 3, threads = 4;
    long before = 5, after = 25;
    int64_t timeout_ms = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--server") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--kill-cmd") == 0)
            kill_cmd = argv[i + 1];
        else if (strcmp(argv[i], "--replicas") == 0)
            replicas = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--before") == 0)
            before = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--after") == 0)
            after = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            timeout_ms = atol(argv[i + 1]);
        else
            return usage();
    }
    if (argc % 2 == 0 || url == NULL || kill_cmd == NULL || threads < 1 || threads > MAX_THREADS ||
        before < 2 || after < 2 || (before + after) * 1000 / BUCKET_MS >= MAX_BUCKETS ||
        replicas < 1 || replicas > 5 || timeout_ms < 100)
        return usage();
    static probe p;
    if (open_store(url, replicas, timeout_ms, &p.st) != ES_OK) {
        fprintf(stderr, "es-failover-probe: %s\n", es_last_error());
        return 1;
    }
    p.start_ms = es_cli_monotonic_ms();
    p.end_ms = p.start_ms + (before + after) * 1000;
    pthread_t tid[MAX_THREADS];
    worker w[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.p = &p, .index = i};
        pthread_create(&tid[i], NULL, append_loop, &w[i]);
    }
    es_cli_sleep_ms(before * 1000);
    int rc = system(kill_cmd);
    atomic_store(&p.kill_ms, es_cli_monotonic_ms());
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);

    int64_t kill_b = (atomic_load(&p.kill_ms) - p.start_ms) / BUCKET_MS;
    double base = rate(&p, 1000 / BUCKET_MS, kill_b); /* the first second warms up */
    /* Full speed: a 1 s window, from the first stored append on, at 90 %
     * of the rate before (from the kill on, a window half empty and half
     * the backlog's burst would pass too early). */
    int64_t first = atomic_load(&p.first_after_ms);
    int64_t full_b = -1, last_b = (p.end_ms - p.start_ms) / BUCKET_MS;
    int64_t from_b = first > 0 ? (first - p.start_ms) / BUCKET_MS : last_b;
    for (int64_t b = from_b; b + 10 <= last_b && full_b < 0; b++)
        if (rate(&p, b, b + 10) >= 0.9 * base)
            full_b = b;
    es_store_info info;
    es_status is = es_store_info_get(p.st, &info);
    printf("replicas %d, %d appending threads, request timeout %" PRId64 " ms, kill command exit %d\n",
           replicas, threads, timeout_ms, rc);
    printf("appends/s before the kill:             %.0f\n", base);
    if (first > 0)
        printf("kill -> first append stored:          %.2f s\n",
               (double)(first - atomic_load(&p.kill_ms)) / 1000.0);
    else
        printf("kill -> first append stored:          none in %ld s\n", after);
    if (full_b >= 0) /* the window's end: the time by which a full second ran at speed */
        printf("kill -> full speed (>= 90%% for 1 s):  %.2f s\n",
               (double)(full_b + 10) * BUCKET_MS / 1000.0 -
                   (double)(atomic_load(&p.kill_ms) - p.start_ms) / 1000.0);
    else
        printf("kill -> full speed (>= 90%% for 1 s):  not within %ld s\n", after);
    printf("failed attempts (retried):             %" PRIu64 "\n", atomic_load(&p.failures));
    printf("acknowledged %" PRIu64 ", stored %" PRIu64 ": %s\n", atomic_load(&p.stored),
           is == ES_OK ? info.events : 0,
           is == ES_OK && info.events == atomic_load(&p.stored) ? "every event exactly once"
                                                                 : "MISMATCH");
    bool ok = is == ES_OK && info.events == atomic_load(&p.stored) && first > 0;
    es_store_destroy(p.st);
    es_shutdown(2000);
    return ok ? 0 : 1;
}
