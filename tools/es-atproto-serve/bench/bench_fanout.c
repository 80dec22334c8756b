/* Fan-out of es-atproto-serve under load, for its figures (docs/performance.md,
 * "Serving fan-out"): SUBSCRIBERS WebSocket clients in this one process
 * (poll over their sockets) while a thread appends ATProto record events
 * through the public API at RATE events/s for SECONDS. Each delivered
 * event's latency is the time it was read here minus its `time_us` (when
 * the server stored it: the same clock on one machine). Prints the p50,
 * p95, p99 and max latency, the events each subscriber got against what
 * it should have, and serve's RSS and CPU (from /proc/PID) before the
 * subscribers, with them idle, and at the end of the load.
 *
 *   bench_fanout create NATS_URL STORE           # the store serve opens
 *   bench_fanout run NATS_URL STORE PORT SERVE_PID SUBSCRIBERS RATE SECONDS [QUERY]
 *
 * QUERY defaults to "/subscribe" (all collections, live); e.g.
 * "/subscribe?wantedCollections=app.bsky.feed.like" (a third of the
 * events). The events cycle through three collections (like, post,
 * follow) and 1,000 DIDs. Built with the benchmarks, never run by ctest. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>

#include <es/es.h>

#include "cli.h"
#include "ws_client.h"

#define LAT_BUCKETS  60000 /* 1 ms each: up to a minute */
#define COLLECTIONS  3
#define QUIET_US     10000000 /* the end of the deliveries, for a filtered query */
#define DIDS         1000

static const char *const collections[COLLECTIONS] = {"app_bsky_feed_like", "app_bsky_feed_post",
                                                     "app_bsky_graph_follow"};

/* The store, through the tools' connection helper (tools/common). */
static es_status connect_store(const char *url, const char *store, bool create,
                               natsConnection **nc, es_store **st)
{
    es_cli_conn conn;
    es_cli_conn_init(&conn, "bench_fanout");
    conn.server = url;
    *st = NULL;
    es_status s = es_cli_connect(&conn, nc);
    if (s == ES_OK)
        s = create ? es_store_create(*nc, store, NULL, NULL, st)
                   : es_store_open(*nc, store, NULL, st);
    if (s != ES_OK)
        fprintf(stderr, "bench_fanout: %s: %s\n", store, es_last_error());
    return s;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until_us(int64_t t)
{
    int64_t d = t - now_us();
    if (d > 0) {
        struct timespec ts = {d / 1000000, (long)(d % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

/* ---- serve's process -------------------------------------------------------- */

typedef struct proc_sample {
    long rss_kib;
    double cpu_s; /* user + system */
} proc_sample;

static proc_sample proc_of(int pid)
{
    proc_sample p = {0, 0};
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &p.rss_kib) == 1)
            break;
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    f = fopen(path, "r");
    char buf[1024];
    if (f && fgets(buf, sizeof buf, f)) {
        const char *c = strrchr(buf, ')'); /* the command may hold spaces */
        unsigned long ut = 0, st = 0;
        if (c && sscanf(c + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            p.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    if (f)
        fclose(f);
    return p;
}

/* ---- the appender ------------------------------------------------------------ */

typedef struct appender {
    es_store *st;
    double rate;
    double seconds;
    _Atomic long appended, failed;
    _Atomic bool done;
    long per_collection[COLLECTIONS];
} appender;

/* A small DAG-CBOR record: {"$type": nsid, "subject": "...", "createdAt": "..."}
 * (keys in DAG-CBOR's order: shorter first). */
static size_t record_of(const char *nsid, long i, unsigned char *out, size_t size)
{
    char subject[96], created[32];
    snprintf(subject, sizeof subject, "at://did:plc:bench%04ld/app.bsky.feed.post/3k%010ld",
             (i * 7) % DIDS, i);
    snprintf(created, sizeof created, "2026-01-01T00:00:%02ld.000Z", i % 60);
    size_t n = 0;
    out[n++] = 0xa3;
    const char *kv[6] = {"$type", nsid, "subject", subject, "createdAt", created};
    for (int k = 0; k < 6; k++) {
        size_t l = strlen(kv[k]);
        if (n + 2 + l > size)
            return 0;
        if (l < 24) {
            out[n++] = (unsigned char)(0x60 | l);
        } else {
            out[n++] = 0x78;
            out[n++] = (unsigned char)l;
        }
        memcpy(out + n, kv[k], l);
        n += l;
    }
    return n;
}

static void on_appended(es_status status, const es_append_result *r, void *closure)
{
    (void)r;
    appender *a = closure;
    atomic_fetch_add(status == ES_OK ? &a->appended : &a->failed, 1);
}

/* Pipelined appends (es_append_batch_async of one event each): a round
 * trip per event would cap the rate on a loaded machine. */
static void *append_loop(void *arg)
{
    appender *a = arg;
    long total = (long)(a->rate * a->seconds);
    int64_t t0 = now_us();
    for (long i = 0; i < total; i++) {
        sleep_until_us(t0 + (int64_t)((double)i * 1e6 / a->rate));
        int c = (int)(i % COLLECTIONS);
        char nsid[64], did[32], rkey[24], rev[24];
        snprintf(nsid, sizeof nsid, "%s", collections[c]);
        for (char *p = nsid; *p; p++)
            *p = *p == '_' ? '.' : *p;
        snprintf(did, sizeof did, "did:plc:bench%04ld", i % DIDS);
        snprintf(rkey, sizeof rkey, "3k%010ld", i);
        snprintf(rev, sizeof rev, "3l%010ld", i);
        unsigned char rec[256];
        size_t len = record_of(nsid, i, rec, sizeof rec);
        es_meta meta[3] = {{"rkey", rkey},
                           {"rev", rev},
                           {"cid", "bafyreibenchbenchbenchbenchbenchbenchbenchbenchbenchbench"}};
        es_event_spec e;
        es_event_spec_init(&e);
        e.entity_type = collections[c];
        e.entity_id = did;
        e.event_type = "create";
        e.data = rec;
        e.data_len = len;
        e.codec = "dag-cbor";
        e.meta = meta;
        e.meta_count = 3;
        if (es_append_batch_async(a->st, &e, 1, on_appended, a) == ES_OK)
            a->per_collection[c]++;
        else
            atomic_fetch_add(&a->failed, 1);
    }
    es_append_flush(a->st, 30000);
    atomic_store(&a->done, true);
    return NULL;
}

/* ---- the subscribers ----------------------------------------------------------- */

typedef struct bench {
    ws_client *clients;
    struct pollfd *fds;
    long *got;
    int n;
    int64_t load_start_us; /* events stored before are not counted */
    uint64_t lat[LAT_BUCKETS + 1];
    uint64_t samples;
    int64_t max_us;
    int64_t last_us; /* the last delivery */
    long closed;
} bench;

/* The latency of one event's JSON (`len` bytes, not NUL-terminated). */
static void record_latency(bench *b, const unsigned char *json, size_t len)
{
    const unsigned char *t = memmem(json, len < 256 ? len : 256, "\"time_us\":", 10);
    if (t == NULL)
        return;
    int64_t stored = 0;
    for (t += 10; t < json + len && *t >= '0' && *t <= '9'; t++)
        stored = stored * 10 + (*t - '0');
    if (stored < b->load_start_us)
        return;
    b->last_us = now_us();
    int64_t d = b->last_us - stored;
    if (d < 0)
        d = 0;
    if (d > b->max_us)
        b->max_us = d;
    int64_t ms = d / 1000;
    b->lat[ms < LAT_BUCKETS ? ms : LAT_BUCKETS]++;
    b->samples++;
}

static double percentile_ms(const bench *b, double p)
{
    uint64_t want = (uint64_t)((double)b->samples * p), seen = 0;
    for (int i = 0; i <= LAT_BUCKETS; i++) {
        seen += b->lat[i];
        if (seen > want)
            return i + 1; /* the bucket's upper bound */
    }
    return LAT_BUCKETS;
}

/* The whole frames in client i's buffer (server frames: unmasked), parsed in
 * place and consumed at once (ws_read copies and moves each one). */
static void parse_frames(bench *b, int i)
{
    ws_client *w = &b->clients[i];
    size_t off = 0;
    while (w->len - off >= 2) {
        const unsigned char *f = w->buf + off;
        size_t avail = w->len - off, hdr = 2;
        uint64_t plen = f[1] & 0x7f;
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = (uint64_t)f[2] << 8 | f[3];
            hdr = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int k = 0; k < 8; k++)
                plen = plen << 8 | f[2 + k];
            hdr = 10;
        }
        if (avail < hdr + plen)
            break;
        int opcode = f[0] & 0x0f;
        if (opcode == 0x1) {
            b->got[i]++;
            record_latency(b, f + hdr, (size_t)plen);
        } else if (opcode == 0x8) {
            b->closed++;
            fprintf(stderr, "subscriber %d closed: %d %.*s\n", i,
                    plen >= 2 ? f[hdr] << 8 | f[hdr + 1] : 1005,
                    plen > 2 ? (int)plen - 2 : 0, (const char *)f + hdr + 2);
            b->fds[i].fd = -1;
        }
        off += hdr + (size_t)plen;
    }
    ws_consume(w, off);
}

/* Reads what is there on client i without blocking. */
static void drain(bench *b, int i)
{
    if (ws_fill(&b->clients[i], 0) != 1) {
        b->fds[i].fd = -1; /* the end of the stream, or an error */
        return;
    }
    parse_frames(b, i);
}

/* Every subscriber has at least `want` events. */
static bool all_got(const bench *b, long want)
{
    for (int i = 0; i < b->n; i++)
        if (b->fds[i].fd >= 0 && b->got[i] < want)
            return false;
    return true;
}

/* Reads until end_us, or until nothing came for idle_us (0: no such end),
 * or until every subscriber has `want` events (0: no such end). */
static void poll_until(bench *b, int64_t end_us, int64_t idle_us, long want)
{
    int64_t last = now_us();
    while (now_us() < end_us && (idle_us == 0 || now_us() - last < idle_us) &&
           (want == 0 || !all_got(b, want))) {
        int r = poll(b->fds, (nfds_t)b->n, 50);
        if (r < 0 && errno != EINTR)
            return;
        if (r > 0)
            last = now_us();
        for (int i = 0; r > 0 && i < b->n; i++)
            if (b->fds[i].fd >= 0 && (b->fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                drain(b, i);
    }
}

static int run(int argc, char **argv)
{
    const char *url = argv[2], *store = argv[3];
    int port = atoi(argv[4]), pid = atoi(argv[5]), n = atoi(argv[6]);
    double rate = atof(argv[7]), seconds = atof(argv[8]);
    const char *query = argc > 9 ? argv[9] : "/subscribe";
    if (port <= 0 || pid <= 0 || n <= 0 || n > 10000 || rate <= 0 || seconds <= 0) {
        fprintf(stderr, "bench_fanout: bad arguments\n");
        return 2;
    }
    natsConnection *nc = NULL;
    es_store *st = NULL;
    if (connect_store(url, store, false, &nc, &st) != ES_OK)
        return 1;
    static bench b;
    b.n = n;
    b.clients = calloc((size_t)n, sizeof *b.clients);
    b.fds = calloc((size_t)n, sizeof *b.fds);
    b.got = calloc((size_t)n, sizeof *b.got);
    proc_sample before = proc_of(pid);
    for (int i = 0; i < n; i++) {
        if (ws_open(&b.clients[i], port, query, 0) != 101) {
            fprintf(stderr, "bench_fanout: subscriber %d: the upgrade failed\n", i);
            return 1;
        }
        b.fds[i] = (struct pollfd){.fd = b.clients[i].fd, .events = POLLIN};
        parse_frames(&b, i); /* what came with the upgrade's answer */
    }
    sleep_until_us(now_us() + 1000000); /* the subscribers settle */
    b.load_start_us = now_us();
    poll_until(&b, now_us() + 200000, 0, 0);
    proc_sample idle = proc_of(pid);
    appender a = {.st = st, .rate = rate, .seconds = seconds};
    pthread_t t;
    pthread_create(&t, NULL, append_loop, &a);
    long peak_rss = idle.rss_kib;
    int64_t t_load = now_us();
    while (!atomic_load(&a.done)) { /* reading all along: a pause would be latency */
        poll_until(&b, now_us() + 500000, 0, 0);
        proc_sample p = proc_of(pid);
        peak_rss = p.rss_kib > peak_rss ? p.rss_kib : peak_rss;
    }
    pthread_join(t, NULL);
    double load_s = (double)(now_us() - t_load) / 1e6;
    /* what is on its way: until every subscriber has every event (a
     * filtered one: until QUIET_US of silence) */
    poll_until(&b, now_us() + 120000000, QUIET_US,
               strchr(query, '?') == NULL ? atomic_load(&a.appended) : 0);
    proc_sample loaded = proc_of(pid);
    peak_rss = loaded.rss_kib > peak_rss ? loaded.rss_kib : peak_rss;
    long sum = 0, low = -1, high = 0;
    for (int i = 0; i < n; i++) {
        sum += b.got[i];
        low = low < 0 || b.got[i] < low ? b.got[i] : low;
        high = b.got[i] > high ? b.got[i] : high;
    }
    long appended = atomic_load(&a.appended);
    printf("subscribers %d query %s rate %.0f/s for %.0f s: %ld appended (%ld failed) in %.1f s\n",
           n, query, rate, seconds, appended, atomic_load(&a.failed), load_s);
    printf("delivered %ld events: per subscriber min %ld max %ld (all collections %ld, "
           "like %ld); %ld closed\n",
           sum, low, high, appended, a.per_collection[0], b.closed);
    printf("latency append->delivery over %" PRIu64 " deliveries: p50 %.0f ms p95 %.0f ms "
           "p99 %.0f ms max %.1f ms\n",
           b.samples, percentile_ms(&b, 0.50), percentile_ms(&b, 0.95), percentile_ms(&b, 0.99),
           (double)b.max_us / 1000.0);
    printf("serve RSS: %ld KiB before, %ld KiB with %d idle subscribers (%.1f KiB each), "
           "%ld KiB peak under load (%.1f KiB each)\n",
           before.rss_kib, idle.rss_kib, n, (double)(idle.rss_kib - before.rss_kib) / n, peak_rss,
           (double)(peak_rss - before.rss_kib) / n);
    double wall = (double)(b.last_us - b.load_start_us) / 1e6;
    printf("serve CPU: %.1f s over %.1f s from the first append to the last delivery "
           "(%.0f %% of one core)\n",
           loaded.cpu_s - idle.cpu_s, wall, 100.0 * (loaded.cpu_s - idle.cpu_s) / wall);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench CPU: %.1f s over %.1f s\n",
           (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
           wall);
    for (int i = 0; i < n; i++)
        ws_close(&b.clients[i]);
    es_store_destroy(st);
    es_cli_disconnect(nc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "create") == 0) {
        natsConnection *nc = NULL;
        es_store *st = NULL;
        es_status s = connect_store(argv[2], argv[3], true, &nc, &st);
        es_store_destroy(st);
        es_cli_disconnect(nc);
        return s == ES_OK ? 0 : 1;
    }
    if (argc >= 9 && strcmp(argv[1], "run") == 0)
        return run(argc, argv);
    fprintf(stderr, "usage: bench_fanout create NATS_URL STORE\n"
                    "       bench_fanout run NATS_URL STORE PORT SERVE_PID SUBSCRIBERS RATE "
                    "SECONDS [QUERY]\n");
    return 2;
}
