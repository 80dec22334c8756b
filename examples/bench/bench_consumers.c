/* es-bench-consumers: durable projections at the seeds' scale — N (1,000)
 * projections on one store, each a JetStream pull consumer with its own
 * filter, fed at the firehose's peak rate (2,000 events/s). A program that
 * prints numbers (never run by ctest; docs/operations.md, "Consumers at
 * scale").
 *
 *   es-bench-consumers [--server URL] [--projections N] [--rate EVENTS/S]
 *                      [--seconds S] [--server-pid PID]... [--store NAME]
 *                      [--replicas N] [--heartbeat-ms MS]
 *
 * Projection i filters entity type "c<i>"; the feeder appends events
 * round-robin over the N types (asynchronous appends, paced every 10 ms),
 * so every projection handles rate/N events a second and the server matches
 * every append against N filters. Each event carries its index and the
 * monotonic time it was handed to the append; the handler measures append →
 * handler latency and marks the index, so the run also proves that every
 * event was handled exactly once. Reported: the time to create and start
 * the projections; server memory (VmRSS of --server-pid, read from /proc:
 * the server must run on this machine; give it once per node of a
 * cluster, the figures are summed) and client memory per consumer;
 * server and client CPU while fed; latency p50/p95/p99/max. The store
 * (default "bench_consumers") and its projections are deleted at the end. */
#define _GNU_SOURCE
#include <es/es.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#define LAT_BUCKET_US 100                  /* latency histogram: 100 µs buckets */
#define LAT_BUCKETS   (10 * 1000 * 10 + 1) /* up to 10 s; the last one is "more" */
#define TICK_MS       10
#define SETTLE_MS     2000
#define DRAIN_S       60

typedef struct args {
    const char *server, *store;
    int projections, rate, seconds;
    int replicas;       /* the store's: 3 on a cluster */
    int heartbeat_ms;   /* the projections' pull heartbeat (es_projection_run_options) */
    long server_pid[8]; /* the server's processes: one, or a cluster's nodes */
    int n_pids;
} args;

static atomic_uint_fast64_t latency[LAT_BUCKETS];
static atomic_uint_fast64_t handled, duplicates, max_latency_us;
static atomic_uchar *seen; /* per event index: times handled */
static uint64_t total_events;

static void die(const char *what)
{
    fprintf(stderr, "es-bench-consumers: %s: %s\n", what, es_last_error());
    exit(1);
}

/* ---- measuring the processes ---------------------------------------------- */

/* A number of /proc/<pid>/status (pid 0: this process), e.g. "VmRSS:" in
 * KiB or "Threads:"; 0 when unreadable. */
static long proc_status(long pid, const char *key)
{
    char path[64], line[256];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%ld/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    long value = 0;
    size_t klen = strlen(key);
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, key, klen) == 0) {
            value = strtol(line + klen, NULL, 10);
            break;
        }
    if (f != NULL)
        fclose(f);
    return value;
}

static long rss_kib(long pid)
{
    return proc_status(pid, "VmRSS:");
}

/* CPU seconds used so far by a process (user + system). */
static double cpu_s(long pid)
{
    if (pid <= 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* fields after the command name */
    unsigned long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                            &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int threads_now(void)
{
    return (int)proc_status(0, "Threads:");
}

/* The server's memory (KiB) and CPU (s): summed over its processes. */
static long server_rss(const args *a)
{
    long kib = 0;
    for (int i = 0; i < a->n_pids; i++)
        kib += rss_kib(a->server_pid[i]);
    return kib;
}

static double server_cpu(const args *a)
{
    double s = 0;
    for (int i = 0; i < a->n_pids; i++)
        s += cpu_s(a->server_pid[i]);
    return s;
}

static double wall_s(void)
{
    return (double)es_monotonic_ns() / 1e9;
}

/* ---- the handler ------------------------------------------------------------ */

typedef struct stamp {
    uint64_t index;
    int64_t sent_ns; /* es_monotonic_ns when handed to the append */
} stamp;

static es_status on_event(const es_event *ev, void *closure)
{
    (void)closure;
    const void *data = NULL;
    size_t len = 0;
    stamp s;
    if (es_event_data(ev, &data, &len) != ES_OK || len != sizeof s)
        return ES_ERR_DECODE; /* not ours: dead-lettered, and counted missing */
    memcpy(&s, data, sizeof s);
    uint64_t us = (uint64_t)((es_monotonic_ns() - s.sent_ns) / 1000);
    uint64_t b = us / LAT_BUCKET_US;
    latency[b < LAT_BUCKETS ? b : LAT_BUCKETS - 1]++;
    for (uint64_t m = max_latency_us; us > m && !atomic_compare_exchange_weak(&max_latency_us, &m, us);)
        ;
    if (s.index < total_events && atomic_fetch_add(&seen[s.index], 1) > 0)
        duplicates++;
    handled++;
    return ES_OK;
}

static double percentile_ms(double q)
{
    uint64_t n = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++)
        n += latency[i];
    uint64_t want = (uint64_t)(q * (double)n), run = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        run += latency[i];
        if (run > want || run == n) { /* the bucket's upper bound, at most the largest seen */
            uint64_t us = (i + 1) * LAT_BUCKET_US;
            return (double)(us < max_latency_us ? us : max_latency_us) / 1000.0;
        }
    }
    return 0;
}

/* ---- feeding ---------------------------------------------------------------- */

static atomic_uint_fast64_t append_failures;

static void on_appended(es_status s, const es_append_result *r, void *closure)
{
    (void)r;
    (void)closure;
    if (s != ES_OK)
        append_failures++;
}

static void feed(es_store *st, const args *a)
{
    int64_t start = es_monotonic_ns(), tick_ns = (int64_t)TICK_MS * 1000000;
    uint64_t next = 0;
    for (int64_t t = 0; next < total_events; t++) {
        /* events due by the end of this tick: rate × elapsed */
        uint64_t due = (uint64_t)((double)a->rate * (double)(t + 1) * TICK_MS / 1000.0);
        for (; next < due && next < total_events; next++) {
            char type[16], id[24];
            snprintf(type, sizeof type, "c%d", (int)(next % (uint64_t)a->projections));
            snprintf(id, sizeof id, "e%llu", (unsigned long long)next);
            stamp s = {.index = next, .sent_ns = es_monotonic_ns()};
            es_event_spec spec;
            es_event_spec_init(&spec);
            spec.entity_type = type;
            spec.entity_id = id;
            spec.event_type = "ticked";
            spec.data = &s;
            spec.data_len = sizeof s;
            if (es_append_batch_async(st, &spec, 1, on_appended, NULL) != ES_OK)
                die("append");
        }
        int64_t wake = start + (t + 1) * tick_ns, now = es_monotonic_ns();
        if (wake > now) {
            struct timespec ts = {.tv_sec = (wake - now) / 1000000000,
                                  .tv_nsec = (wake - now) % 1000000000};
            nanosleep(&ts, NULL);
        }
    }
    if (es_append_flush(st, 30000) != ES_OK)
        die("flushing the appends");
}

/* ---- the run ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: es-bench-consumers [--server URL] [--projections N] [--rate EVENTS/S]\n"
                    "                          [--seconds S] [--server-pid PID]... [--store NAME]\n"
                    "                          [--replicas N] [--heartbeat-ms MS]\n");
    exit(1);
}

static void parse(int argc, char **argv, args *a)
{
    *a = (args){.server = getenv("NATS_URL") ? getenv("NATS_URL") : "nats://127.0.0.1:4222",
                .store = "bench_consumers",
                .projections = 1000,
                .rate = 2000,
                .seconds = 30,
                .replicas = 1,
                .heartbeat_ms = 1000};
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        if (strcmp(k, "--server") == 0)
            a->server = v;
        else if (strcmp(k, "--store") == 0)
            a->store = v;
        else if (strcmp(k, "--projections") == 0)
            a->projections = atoi(v);
        else if (strcmp(k, "--rate") == 0)
            a->rate = atoi(v);
        else if (strcmp(k, "--seconds") == 0)
            a->seconds = atoi(v);
        else if (strcmp(k, "--replicas") == 0)
            a->replicas = atoi(v);
        else if (strcmp(k, "--heartbeat-ms") == 0)
            a->heartbeat_ms = atoi(v);
        else if (strcmp(k, "--server-pid") == 0 && a->n_pids < 8)
            a->server_pid[a->n_pids++] = atol(v); /* once per node of a cluster */
        else
            usage();
    }
    if (a->projections < 1 || a->projections > 100000 || a->rate < 1 || a->rate > 1000000 ||
        a->seconds < 1 || a->seconds > 3600 || a->replicas < 1 || a->replicas > 5 ||
        a->heartbeat_ms < 50)
        usage();
}

static void projection_name(int i, char out[ES_PROJECTION_NAME_MAX + 1])
{
    snprintf(out, ES_PROJECTION_NAME_MAX + 1, "p%d", i);
}

int main(int argc, char **argv)
{
    args a;
    parse(argc, argv, &a);
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines as they come, into a file too */
    total_events = (uint64_t)a.rate * (uint64_t)a.seconds;
    seen = calloc(total_events, sizeof *seen);
    es_projection **runs = calloc((size_t)a.projections, sizeof *runs);
    if (seen == NULL || runs == NULL)
        die("memory");
    natsConnection *nc = NULL;
    if (natsConnection_ConnectTo(&nc, a.server) != NATS_OK)
        die("connecting");
    es_store_options so;
    es_store_options_init(&so);
    es_status s = es_store_delete(nc, a.store, &so);
    if (s != ES_OK && s != ES_ERR_NOT_FOUND)
        die("deleting the old store");
    so.max_inflight = 1024;
    so.timeout_ms = 15000; /* a cluster places replicas */
    es_store_config store_cfg;
    es_store_config_init(&store_cfg);
    store_cfg.replicas = a.replicas;
    es_store *st = NULL;
    if (es_store_create(nc, a.store, &store_cfg, &so, &st) != ES_OK)
        die("creating the store");
    int st_replicas = a.replicas;

    long server0 = server_rss(&a), client0 = rss_kib(0);
    double t0 = wall_s();
    for (int i = 0; i < a.projections; i++) {
        char name[ES_PROJECTION_NAME_MAX + 1], type[16];
        projection_name(i, name);
        snprintf(type, sizeof type, "c%d", i);
        es_filter f = {.entity_type = type};
        es_projection_config cfg;
        es_projection_config_init(&cfg);
        cfg.filters = &f;
        cfg.filter_count = 1;
        if (es_projection_create(st, name, &cfg) != ES_OK)
            die("creating a projection");
    }
    double created_s = wall_s() - t0;
    long server_created = server_rss(&a);
    es_projection_handler h = {.on_event = on_event};
    es_projection_run_options ro;
    es_projection_run_options_init(&ro);
    ro.heartbeat_ms = a.heartbeat_ms; /* a pull request lives five of them */
    t0 = wall_s();
    for (int i = 0; i < a.projections; i++) {
        char name[ES_PROJECTION_NAME_MAX + 1];
        projection_name(i, name);
        if (es_projection_start(st, name, &h, &ro, &runs[i]) != ES_OK)
            die("starting a projection");
    }
    double started_s = wall_s() - t0;
    nats_Sleep(SETTLE_MS);
    long server_idle = server_rss(&a), client_idle = rss_kib(0);
    int threads = threads_now();

    double n = (double)a.projections;
    printf("projections %d (pull consumers, one filter each), store %s, file storage, R%d\n",
           a.projections, a.store, st_replicas);
    printf("create %.1f s (%.1f ms each), start %.1f s; client threads %d; heartbeat %d ms\n",
           created_s, 1000.0 * created_s / n, started_s, threads, a.heartbeat_ms);
    printf("server RSS: %ld MiB before, %ld MiB with the consumers, %ld MiB pulling -> %.1f KiB "
           "per consumer (pulling - before)\n",
           server0 / 1024, server_created / 1024, server_idle / 1024,
           (double)(server_idle - server0) / n);
    printf("client RSS: %ld MiB before, %ld MiB running -> %.1f KiB per consumer\n",
           client0 / 1024, client_idle / 1024, (double)(client_idle - client0) / n);

    double sc0 = server_cpu(&a), cc0 = cpu_s(0), w0 = wall_s();
    feed(st, &a);
    double fed_s = wall_s() - w0;
    double sc1 = server_cpu(&a), cc1 = cpu_s(0);
    long server_fed = server_rss(&a), client_fed = rss_kib(0);
    /* Until every event is handled, or none has been for 5 s (an append that
     * timed out may still have been stored: its event may still come), at
     * most DRAIN_S. */
    double drain_until = wall_s() + DRAIN_S, quiet_since = wall_s();
    for (uint64_t last = handled; handled < total_events && wall_s() < drain_until;) {
        nats_Sleep(50);
        if (handled != last) {
            last = handled;
            quiet_since = wall_s();
        } else if (wall_s() - quiet_since > 5.0)
            break;
    }
    uint64_t missing = 0;
    for (uint64_t i = 0; i < total_events; i++)
        missing += seen[i] == 0;

    printf("RSS fed: server %ld MiB, client %ld MiB\n", server_fed / 1024, client_fed / 1024);
    printf("fed %llu events in %.1f s (%.0f/s asked %d/s); append failures %llu\n",
           (unsigned long long)total_events, fed_s, (double)total_events / fed_s, a.rate,
           (unsigned long long)append_failures);
    printf("CPU while fed: server %.0f %%, client %.0f %% (of one core)\n",
           100.0 * (sc1 - sc0) / fed_s, 100.0 * (cc1 - cc0) / fed_s);
    printf("handled %llu, missing %llu, duplicates %llu\n", (unsigned long long)handled,
           (unsigned long long)missing, (unsigned long long)duplicates);
    printf("append -> handler latency: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms\n",
           percentile_ms(0.50), percentile_ms(0.95), percentile_ms(0.99),
           (double)max_latency_us / 1000.0);

    t0 = wall_s();
    for (int i = 0; i < a.projections; i++)
        es_projection_destroy(runs[i]);
    printf("stop %.1f s (%.1f ms each: a worker leaves its pull)\n", wall_s() - t0,
           1000.0 * (wall_s() - t0) / n);
    for (int i = 0; i < a.projections; i++) {
        char name[ES_PROJECTION_NAME_MAX + 1];
        projection_name(i, name);
        es_projection_delete(st, name);
    }
    es_store_destroy(st);
    es_store_delete(nc, a.store, &so);
    natsConnection_Destroy(nc);
    nats_Close();
    free(runs);
    free(seen);
    return missing == 0 && duplicates == 0 ? 0 : 2;
}
