/* Backfill end to end, the figure of docs/performance.md ("Backfill"):
 * es-atproto-gen fills N repositories of R records each (signed), a PDS
 * stand-in on loopback (atproto/tests/http_standin.h) serves their getRepo
 * CARs, and `es-atproto-ingest --backfill` fetches, verifies, diffs and
 * stores them into a fresh store on NATS_URL. Prints records/s (wall) and
 * the ingester's peak RSS (its VmHWM, sampled every 20 ms), checks that the
 * store holds one event per record, and deletes it. Modes: `pipelined` (the
 * default resync: plain publishes in flight together), `atomic` (each batch
 * of 1,000 one atomic batch, as before; ES_INGEST_TEST_RESYNC_ATOMIC=1), or
 * `both`, one after the other on the same repositories. With `again`, after
 * the pipelined run every repository is resynced again in this process
 * (nothing to append): the cost of reading a stored repository back. Never
 * run by ctest. With ES_BENCH_SERVER_PID set to nats-server's pid (same
 * machine), each run also reports the server's CPU time.
 * Usage: bench_backfill INGEST-BIN [repos [records [parallelism [mode [again]]]]]
 *        (defaults: 10 repositories of 50,000 records, parallelism 4, both) */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <es/atproto.h>
#include <es/atproto_resync.h>
#include <es/car.h>
#include <es/es.h>
#include <es/time.h>

#include "atproto_gen.h"
#include "http_standin.h"

extern char **environ;

static void die(const char *what)
{
    fprintf(stderr, "bench_backfill: %s: %s\n", what, es_last_error());
    exit(1);
}

/* Each repository's getRepo served by the stand-in; its DID appended to dids. */
static size_t serve_repos(es_atp_gen *g, size_t repos, standin *pds, char *dids, size_t cap)
{
    size_t bytes = 0, at = 0;
    for (size_t i = 0; i < repos; i++) {
        es_buf car = ES_BUF_INIT;
        const char *did;
        if (es_atp_gen_repo_car(g, i, &car, &did) != ES_OK)
            die("repository CAR");
        char route[512];
        standin_get_repo_path(did, route, sizeof route);
        standin_answer a = {.status = 200, .body = car.data, .len = car.len,
                            .announce = STANDIN_LENGTH_TRUE};
        standin_route_answer(pds, route, &a);
        at += (size_t)snprintf(dids + at, cap - at, "%s%s", i ? "," : "", did);
        bytes += car.len;
        es_buf_free(&car);
    }
    return bytes;
}

/* The process's peak resident set (VmHWM) so far, in KiB; 0 when unknown.
 * Not rusage: a spawned child's ru_maxrss counts the parent's memory it
 * shared until exec. */
static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kb;
}

/* CPU seconds (user + system) of process `pid` so far, from /proc; 0 when
 * unknown. */
static double cpu_seconds(long pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    double secs = 0;
    if (f != NULL && fgets(line, sizeof line, f) != NULL) {
        const char *p = strrchr(line, ')'); /* the command may hold spaces */
        unsigned long long utime = 0, stime = 0;
        if (p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                                &utime, &stime) == 2)
            secs = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    }
    if (f != NULL)
        fclose(f);
    return secs;
}

static void write_docs(es_atp_gen *g, const char *path)
{
    es_buf docs = ES_BUF_INIT;
    FILE *f = fopen(path, "w");
    if (f == NULL || es_atp_gen_did_docs(g, &docs) != ES_OK ||
        fwrite(docs.data, 1, docs.len, f) != docs.len)
        die("documents");
    fclose(f);
    es_buf_free(&docs);
}

/* Each repository's resync again over what the backfill stored: nothing to
 * append, so this times what a resync of a stored repository costs before
 * its first event (read back, fold, walk, compare). */
static double resync_again(es_store *st, es_atp_gen *g, size_t repos, size_t records)
{
    double secs = 0;
    for (size_t i = 0; i < repos; i++) {
        es_buf car = ES_BUF_INIT;
        const char *did;
        es_arena *a = NULL;
        es_car c;
        if (es_atp_gen_repo_car(g, i, &car, &did) != ES_OK || es_arena_create(0, &a) != ES_OK)
            die("repository CAR");
        es_car_limits lim = {.max_bytes = car.len, .max_blocks = car.len / 38 + 1};
        if (es_car_parse(car.data, car.len, &lim, a, &c) != ES_OK)
            die("parse");
        es_atp_resync_options o;
        es_atp_resync_options_init(&o);
        o.did = did;
        es_atp_resync_result r;
        int64_t t0 = es_monotonic_ns();
        if (es_atp_resync_apply(st, &c, &o, &r) != ES_OK || r.unchanged != records ||
            r.batches != 0)
            die("resync again");
        secs += (double)(es_monotonic_ns() - t0) / 1e9;
        es_arena_destroy(a);
        es_buf_free(&car);
    }
    return secs;
}

/* What `store` holds (the backfill stored one event per record), after a
 * resync of every repository again (`g` not NULL: its seconds in *again);
 * then deletes it. */
static es_store_info stored(const char *store, es_atp_gen *g, size_t repos, size_t records,
                            double *again)
{
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = getenv("NATS_URL");
    natsConnection *nc = NULL;
    es_store *st = NULL;
    es_store_info info = {0};
    if (es_connect(&co, &nc) != ES_OK || es_store_open(nc, store, NULL, &st) != ES_OK ||
        es_store_info_get(st, &info) != ES_OK)
        die("the store");
    *again = g != NULL && info.events == repos * records ? resync_again(st, g, repos, records) : 0;
    es_store_destroy(st);
    es_store_delete(nc, store, NULL);
    es_connection_close(nc);
    return info;
}

typedef struct run_args {
    es_atp_gen *g; /* resync every repository again after the run (NULL: no) */
    const char *ingest, *docs, *parallelism;
    char *dids;
    size_t repos, records, bytes;
} run_args;

/* One backfill of every repository into a fresh store, `atomic` or not. */
static int run_once(const run_args *a, bool atomic)
{
    char store[64];
    snprintf(store, sizeof store, "bench_backfill_%ld_%s", (long)getpid(),
             atomic ? "atomic" : "pipelined");
    char *args[] = {(char *)a->ingest, "--store", store, "--did-docs", (char *)a->docs,
                    "--offline", "--exit-at-end", "--quiet", "--backfill-parallelism",
                    (char *)a->parallelism, "--backfill", a->dids, NULL};
    if (atomic)
        setenv("ES_INGEST_TEST_RESYNC_ATOMIC", "1", 1);
    else
        unsetenv("ES_INGEST_TEST_RESYNC_ATOMIC");
    const char *server_pid = getenv("ES_BENCH_SERVER_PID");
    long spid = server_pid ? strtol(server_pid, NULL, 10) : 0;
    double server_cpu = spid > 0 ? cpu_seconds(spid) : 0;
    int64_t start = es_monotonic_ns();
    pid_t pid;
    if (posix_spawn(&pid, a->ingest, NULL, NULL, args, environ) != 0)
        die("spawn");
    int status;
    struct rusage ru;
    long hwm_kb = 0;
    while (wait4(pid, &status, WNOHANG, &ru) == 0) {
        long kb = vm_hwm_kb(pid);
        hwm_kb = kb > hwm_kb ? kb : hwm_kb;
        usleep(20000);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_backfill: the ingester failed (status %d)\n", status);
        return 1;
    }
    double secs = (double)(es_monotonic_ns() - start) / 1e9;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    server_cpu = spid > 0 ? cpu_seconds(spid) - server_cpu : 0;
    double again;
    es_store_info info = stored(store, atomic ? NULL : a->g, a->repos, a->records, &again);
    uint64_t events = info.events;
    printf("%-9s %zu repositories x %zu records (CARs %.1f MB), parallelism %s: %.2f s wall, "
           "%.2f s ingester CPU; %.0f records/s; ingester peak RSS %ld MiB; %llu events "
           "stored, %.0f bytes each\n",
           atomic ? "atomic" : "pipelined", a->repos, a->records, (double)a->bytes / 1e6,
           a->parallelism, secs, cpu, (double)(a->repos * a->records) / secs, hwm_kb / 1024,
           (unsigned long long)events, events ? (double)info.bytes / (double)events : 0.0);
    if (spid > 0)
        printf("          nats-server CPU %.2f s (%.1f us per event)\n", server_cpu,
               server_cpu * 1e6 / (double)(a->repos * a->records));
    if (again > 0)
        printf("          resynced again (nothing to append): %.2f s, %.0f records/s read back, "
               "folded and compared\n",
               again, (double)(a->repos * a->records) / again);
    if (events != a->repos * a->records) {
        fprintf(stderr, "bench_backfill: %llu events stored, %zu records\n",
                (unsigned long long)events, a->repos * a->records);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || getenv("NATS_URL") == NULL) {
        fprintf(stderr, "usage: NATS_URL=... bench_backfill INGEST-BIN [repos [records "
                        "[parallelism [pipelined|atomic|both [again]]]]]\n");
        return 2;
    }
    size_t repos = argc > 2 ? strtoull(argv[2], NULL, 10) : 10;
    size_t records = argc > 3 ? strtoull(argv[3], NULL, 10) : 50000;
    const char *mode = argc > 5 ? argv[5] : "both";
    bool pipelined = strcmp(mode, "atomic") != 0, atomic = strcmp(mode, "pipelined") != 0;
    standin pds;
    if (standin_start(&pds) != 0)
        die("stand-in");
    char pds_url[64], docs[] = "/tmp/bench_backfill_docs.XXXXXX";
    snprintf(pds_url, sizeof pds_url, "http://127.0.0.1:%d", pds.port);
    es_atp_gen_options go = {.seed = 7, .repos = repos, .pds_url = pds_url};
    es_atp_gen *g = NULL;
    if (es_atp_gen_create(&go, &g) != ES_OK)
        die("generator");
    for (size_t i = 0; i < repos; i++)
        if (es_atp_gen_fill_repo(g, i, records) != ES_OK)
            die("fill");
    close(mkstemp(docs));
    write_docs(g, docs);
    size_t cap = repos * 64 + 16;
    bool again = argc > 6 && strcmp(argv[6], "again") == 0;
    run_args a = {.g = again ? g : NULL, .ingest = argv[1], .docs = docs, .parallelism = argc > 4 ? argv[4] : "4",
                  .dids = malloc(cap), .repos = repos, .records = records};
    if (a.dids == NULL)
        die("memory");
    a.bytes = serve_repos(g, repos, &pds, a.dids, cap);
    setenv("ES_ATPROTO_TEST_INSECURE_IDENTITY", "1", 1);
    int rc = 0;
    if (pipelined)
        rc |= run_once(&a, false);
    if (atomic)
        rc |= run_once(&a, true);
    unlink(docs);
    free(a.dids);
    es_atp_gen_destroy(g);
    standin_stop(&pds);
    return rc;
}
