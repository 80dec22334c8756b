#include "bench.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/es.h>

#include "clock.h"
#include "workloads.h"

typedef struct bench_opts {
    const char *url;
    long appends; /* pipelined single appends */
    long batches; /* atomic batches of 100 */
    long loads;   /* loads of a 100-event entity */
    long replay;  /* events replayed */
    int rounds;   /* alternate lib/raw this many times, keep the best of each */
} bench_opts;

char bench_payload[BENCH_PAYLOAD];
int bench_replicas = 1;

double bench_now_s(void)
{
    return (double)es_cli_monotonic_ns() / 1e9;
}

_Noreturn void bench_die(const char *what)
{
    fprintf(stderr, "es-bench: %s: %s\n", what, es_last_error());
    exit(ES_BENCH_EXIT_SERVER);
}

es_store *bench_fresh_store(natsConnection *nc, const char *name)
{
    es_store_delete(nc, name, NULL);
    es_store_options o;
    es_store_options_init(&o);
    o.max_inflight = 4096;
    o.timeout_ms = 30000;
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.replicas = bench_replicas;
    es_store *st = NULL;
    if (es_store_create(nc, name, &cfg, &o, &st) != ES_OK)
        bench_die("create store");
    return st;
}

static es_event_spec lib_event(const char *id)
{
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = "account";
    e.entity_id = id;
    e.event_type = "deposited";
    e.data = bench_payload;
    e.data_len = BENCH_PAYLOAD;
    return e;
}

/* ---- 1. pipelined single appends --------------------------------------- */

static _Atomic long lib_failed;

static void lib_done(es_status s, const es_append_result *r, void *closure)
{
    (void)r;
    (void)closure;
    if (s != ES_OK)
        lib_failed++;
}

static double lib_appends(natsConnection *nc, long n)
{
    es_store *st = bench_fresh_store(nc, "bench_lib");
    es_event_spec e = lib_event("a1");
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++)
        if (es_append_batch_async(st, &e, 1, lib_done, NULL) != ES_OK)
            bench_die("append");
    if (es_append_flush(st, 60000) != ES_OK)
        bench_die("flush");
    double t = bench_now_s() - t0;
    if (lib_failed)
        bench_die("async appends failed");
    es_store_destroy(st);
    return (double)n / t;
}

/* ---- 2. atomic batches of 100, one at a time --------------------------- */

static double lib_batches(natsConnection *nc, long n)
{
    es_store *st = bench_fresh_store(nc, "bench_lib");
    es_event_spec b[100];
    for (int i = 0; i < 100; i++)
        b[i] = lib_event("a1");
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++)
        if (es_append_batch(st, b, 100, NULL) != ES_OK)
            bench_die("batch");
    double t = bench_now_s() - t0;
    es_store_destroy(st);
    return (double)n * 100 / t;
}

/* ---- 3. load a 100-event entity ---------------------------------------- */

static es_status touch(const es_event *ev, void *closure)
{
    const void *d;
    size_t len;
    es_event_data(ev, &d, &len);
    *(size_t *)closure += len + (size_t)es_event_event_type(ev)[0];
    return ES_OK;
}

es_store *bench_store_with_entity(natsConnection *nc, const char *name)
{
    es_store *st = bench_fresh_store(nc, name);
    es_event_spec b[100];
    char ids[10][8];
    /* The entity sits among others, as it would in a real store. */
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 100; i++) {
            snprintf(ids[i % 10], sizeof ids[0], "e%d", i % 10);
            b[i] = lib_event(i % 10 == 3 ? "target" : ids[i % 10]);
        }
        if (es_append_batch(st, b, 100, NULL) != ES_OK)
            bench_die("fill");
    }
    return st;
}

static double lib_loads(natsConnection *nc, long n)
{
    es_store *st = bench_store_with_entity(nc, "bench_lib");
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    f.entity_id = "target";
    size_t sink = 0;
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++)
        if (es_load(st, &f, NULL, touch, &sink, NULL) != ES_OK)
            bench_die("load");
    double t = bench_now_s() - t0;
    if (sink != (size_t)n * 100 * (BENCH_PAYLOAD + 'd'))
        bench_die("load saw the wrong events");
    es_store_destroy(st);
    return (double)n * 100 / t;
}

/* ---- 4. replay ---------------------------------------------------------- */

static void fill_replay(natsConnection *nc, const char *name, long n)
{
    es_store *st = bench_fresh_store(nc, name);
    es_event_spec b[1000];
    char ids[100][8];
    for (int i = 0; i < 100; i++)
        snprintf(ids[i], sizeof ids[i], "e%d", i);
    for (long done = 0; done < n; done += 1000) {
        long k = n - done < 1000 ? n - done : 1000;
        for (long i = 0; i < k; i++)
            b[i] = lib_event(ids[(done + i) % 100]);
        if (es_append_batch_async(st, b, (size_t)k, lib_done, NULL) != ES_OK)
            bench_die("fill replay");
    }
    if (es_append_flush(st, 300000) != ES_OK || lib_failed)
        bench_die("fill replay flush");
    es_store_destroy(st);
}

static double lib_replay(natsConnection *nc, const char *name, long n)
{
    es_store *st = NULL;
    if (es_store_open(nc, name, NULL, &st) != ES_OK)
        bench_die("open");
    size_t sink = 0;
    uint64_t last = 0;
    double t0 = bench_now_s();
    if (es_evolve(st, NULL, NULL, touch, &sink, &last) != ES_OK)
        bench_die("evolve");
    double t = bench_now_s() - t0;
    if (last != (uint64_t)n)
        bench_die("replay ended early");
    es_store_destroy(st);
    return (double)n / t;
}

/* ---- the table ---------------------------------------------------------- */

typedef double (*workload)(natsConnection *nc, long n);

static void row(const char *what, double lib, double raw)
{
    printf("| %-36s | %12.0f | %12.0f | %5.2f |\n", what, lib, raw, lib / raw);
}

static void measure(natsConnection *nc, const char *what, workload lib, workload raw, long n,
                    int rounds)
{
    double best_lib = 0, best_raw = 0;
    for (int r = 0; r < rounds; r++) { /* alternate, so drift hits both alike */
        double a = raw(nc, n), b = lib(nc, n);
        best_raw = a > best_raw ? a : best_raw;
        best_lib = b > best_lib ? b : best_lib;
    }
    row(what, best_lib, best_raw);
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: es-bench [--server URL] [--appends N] [--batches N] [--loads N] [--replay N] "
            "[--rounds N] [--replicas N]\n"
            "Runs each workload through the library and through raw nats.c doing the same work,\n"
            "against the server at --server (default $NATS_URL), and prints events/s and the\n"
            "ratio library/raw. It creates and deletes stores named bench_*, with --replicas\n"
            "JetStream replicas (default 1; 3 on a 3-node cluster).\n");
    return 1;
}

int es_bench_main(int argc, char **argv)
{
    bench_opts o = {getenv("NATS_URL"), 100000, 300, 2000, 1000000, 3};
    for (int i = 1; i < argc; i++) {
        long *target = NULL;
        if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
            o.url = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--appends") == 0)
            target = &o.appends;
        else if (strcmp(argv[i], "--batches") == 0)
            target = &o.batches;
        else if (strcmp(argv[i], "--loads") == 0)
            target = &o.loads;
        else if (strcmp(argv[i], "--replay") == 0)
            target = &o.replay;
        if (strcmp(argv[i], "--replicas") == 0 && i + 1 < argc) {
            bench_replicas = atoi(argv[++i]);
            continue;
        }
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            o.rounds = atoi(argv[++i]);
            continue;
        }
        if (target == NULL || i + 1 >= argc)
            return usage();
        *target = atol(argv[++i]);
    }
    if (bench_replicas < 1 || bench_replicas > 5 || o.rounds < 1 || o.appends < 1 || o.batches < 1 || o.loads < 1 || o.replay < 1)
        return usage();
    memset(bench_payload, 'p', sizeof bench_payload);
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = o.url;
    co.name = "es-bench";
    natsConnection *nc = NULL;
    if (es_connect(&co, &nc) != ES_OK) {
        fprintf(stderr, "es-bench: %s\n", es_last_error());
        return ES_BENCH_EXIT_SERVER;
    }
    printf("%d-byte events, file storage, R%d; best of %d alternating rounds\n\n", BENCH_PAYLOAD,
           bench_replicas, o.rounds);
    printf("| %-36s | %12s | %12s | %5s |\n", "workload (events/s)", "es", "raw nats.c", "ratio");
    printf("|%s|%s|%s|%s|\n", "--------------------------------------", "--------------",
           "--------------", "-------");
    char what[64];
    snprintf(what, sizeof what, "pipelined single appends (%ld)", o.appends);
    measure(nc, what, lib_appends, raw_appends, o.appends, o.rounds);
    snprintf(what, sizeof what, "atomic batches of 100 (%ld)", o.batches);
    measure(nc, what, lib_batches, raw_batches, o.batches, o.rounds);
    snprintf(what, sizeof what, "load a 100-event entity (%ld)", o.loads);
    measure(nc, what, lib_loads, raw_loads, o.loads, o.rounds);
    fill_replay(nc, "bench_replay", o.replay);
    double best_lib = 0, best_raw = 0;
    for (int r = 0; r < o.rounds; r++) {
        double b = lib_replay(nc, "bench_replay", o.replay);
        double a = raw_replay(nc, "bench_replay", o.replay);
        best_raw = a > best_raw ? a : best_raw;
        best_lib = b > best_lib ? b : best_lib;
    }
    snprintf(what, sizeof what, "replay (%ld events)", o.replay);
    row(what, best_lib, best_raw);
    es_store_delete(nc, "bench_replay", NULL);
    es_store_delete(nc, "bench_lib", NULL);
    es_store_delete(nc, "bench_raw", NULL);
    es_connection_close(nc);
    es_shutdown(2000);
    return 0;
}
