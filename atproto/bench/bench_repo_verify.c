/* Whole-repository verification throughput, the figure of
 * docs/performance.md ("Repository verification"): es-atproto-gen builds a
 * repository of N posts (K-256 or P-256 key), its getRepo CAR is parsed
 * once, then es_atp_verify_repo runs on it repeatedly (signature checked
 * against the generator's DID document, every block hashed, every record
 * decoded) for at least the given seconds. Each round re-parses the CAR, so
 * that no block stays marked verified. Built with ES_BUILD_BENCHMARKS,
 * never installed, never run by ctest. Reports wall-clock and CPU time
 * (the machine is shared: CPU time is the figure that does not depend on
 * what else runs).
 * Usage: bench_repo_verify [records [seconds [k256|p256]]]
 *        (defaults: 50000 records, 3 s, k256) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <es/atproto.h>
#include <es/car.h>
#include <es/time.h>

#include "atproto_gen.h"

static void die(const char *what)
{
    fprintf(stderr, "bench_repo_verify: %s: %s\n", what, es_last_error());
    exit(1);
}

static int count(const es_atp_record *rec, void *user)
{
    (void)rec;
    (*(size_t *)user)++;
    return 0;
}

/* An identity seeded, offline, with the generator's documents. */
static es_atp_identity *identity_of(es_atp_gen *g)
{
    es_buf docs = ES_BUF_INIT;
    char path[] = "/tmp/bench_repo_verify.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || es_atp_gen_did_docs(g, &docs) != ES_OK ||
        write(fd, docs.data, docs.len) != (ssize_t)docs.len)
        die("documents");
    close(fd);
    es_atp_identity_options io;
    es_atp_identity_options_init(&io);
    io.offline = true;
    es_atp_identity *id = NULL;
    if (es_atp_identity_create(&io, &id) != ES_OK || es_atp_identity_seed_file(id, path, NULL) != ES_OK)
        die("identity");
    unlink(path);
    es_buf_free(&docs);
    return id;
}

int main(int argc, char **argv)
{
    size_t records = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 50000;
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    bool p256 = argc > 3 && strcmp(argv[3], "p256") == 0;
    es_atp_gen_options go = {.seed = 1, .repos = 1,
                             .curves = p256 ? ES_ATP_GEN_CURVES_P256 : ES_ATP_GEN_CURVES_K256};
    es_atp_gen *g = NULL;
    es_buf car = ES_BUF_INIT;
    const char *did;
    if (es_atp_gen_create(&go, &g) != ES_OK || es_atp_gen_fill_repo(g, 0, records) != ES_OK ||
        es_atp_gen_repo_car(g, 0, &car, &did) != ES_OK)
        die("generator");
    es_atp_identity *id = identity_of(g);
    es_car_limits limits = {.max_bytes = car.len, .max_blocks = 4 * records + 16};
    es_atp_repo_verify_options o;
    es_atp_repo_verify_options_init(&o);
    o.did = did;
    o.identity = id;
    es_arena *a = NULL;
    if (es_arena_create(0, &a) != ES_OK)
        die("arena");
    size_t rounds = 0, seen = 0;
    int64_t start = es_monotonic_ns(), elapsed = 0;
    clock_t cpu_start = clock();
    do {
        es_arena_reset(a);
        es_car c;
        es_atp_repo_verdict v;
        if (es_car_parse(car.data, car.len, &limits, a, &c) != ES_OK)
            die("parse");
        if (es_atp_verify_repo(&c, &o, a, NULL, count, &seen, &v) != ES_OK)
            die("verify");
        rounds++;
        elapsed = es_monotonic_ns() - start;
    } while ((double)elapsed / 1e9 < seconds);
    double s = (double)elapsed / 1e9, cpu = (double)(clock() - cpu_start) / CLOCKS_PER_SEC;
    printf("%s repo of %zu records, CAR %zu bytes: %zu verifications in %.2f s wall, %.2f s "
           "CPU; %.1f ms CPU each; %.0f records/s wall, %.0f records per CPU second\n",
           p256 ? "P-256" : "K-256", records, car.len, rounds, s, cpu, cpu * 1000 / (double)rounds,
           (double)seen / s, (double)seen / cpu);
    es_arena_destroy(a);
    es_atp_identity_destroy(id);
    es_buf_free(&car);
    es_atp_gen_destroy(g);
    return 0;
}
