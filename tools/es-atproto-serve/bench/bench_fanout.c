/* Fan-out of es-atproto-serve under load, for its figures (docs/performance.md,
 * "Serving fan-out"): SUBSCRIBERS WebSocket clients in this one process
 * (read by READERS threads) while a thread appends ATProto record events
 * through the public API at RATE events/s for SECONDS. Each delivered
 * event's latency is the time it was read here minus its `time_us` (when
 * the server stored it: the same clock on one machine). Prints the p50,
 * p95, p99 and max latency, the events each subscriber got against what
 * it should have, and serve's RSS and CPU (from /proc/PID) before the
 * subscribers, with them idle, and at the end of the load.
 *
 *   bench_fanout create NATS_URL STORE           # the store serve opens
 *   bench_fanout run NATS_URL STORE PORT SERVE_PID SUBSCRIBERS RATE SECONDS [QUERY [READERS]]
 *
 * QUERY defaults to "/subscribe" (all collections, live); e.g.
 * "/subscribe?wantedCollections=app.bsky.feed.like" (a third of the
 * events). The events cycle through three collections (like, post,
 * follow) and 1,000 DIDs. READERS (default 1) threads read the
 * subscribers' sockets, each its share through one epoll set: the reading
 * itself costs a core's worth at 1,000 subscribers, on the same machine as
 * serve (docs/performance.md). Built with the benchmarks, never run by
 * ctest. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

#include <es/es.h>

#include "cli.h"
#include "ws_client.h"

#define LAT_BUCKETS  60000 /* 1 ms each: up to a minute */
#define COLLECTIONS  3
#define QUIET_US     10000000 /* the end of the deliveries, for a filtered query */
#define DIDS         1000
#define READERS_MAX  16
#define READ_MIN     (256 * 1024) /* room for one recv: a few hundred events */

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

/* What one reading thread measured. */
typedef struct lat_stats {
    uint64_t lat[LAT_BUCKETS + 1];
    uint64_t samples;
    int64_t max_us;
} lat_stats;

typedef struct bench {
    ws_client *clients;
    _Atomic long *got; /* written by the client's reader only */
    _Atomic bool *gone; /* the client is closed or failed: nothing more to wait for */
    int n;
    int64_t load_start_us; /* events stored before are not counted */
    _Atomic int64_t last_us; /* the last delivery, any reader */
    _Atomic long closed;
    _Atomic bool stop;
} bench;

/* One reading thread: its share of the clients (i % readers == index), one
 * epoll set, and its own latency histogram (merged at the end). */
typedef struct reader {
    bench *b;
    int epfd;
    lat_stats stats;
    pthread_t thread;
} reader;

/* The latency of one event's JSON (`len` bytes, not NUL-terminated). */
static void record_latency(bench *b, lat_stats *s, const unsigned char *json, size_t len)
{
    const unsigned char *t = memmem(json, len < 256 ? len : 256, "\"time_us\":", 10);
    if (t == NULL)
        return;
    int64_t stored = 0;
    for (t += 10; t < json + len && *t >= '0' && *t <= '9'; t++)
        stored = stored * 10 + (*t - '0');
    if (stored < b->load_start_us)
        return;
    int64_t now = now_us();
    atomic_store_explicit(&b->last_us, now, memory_order_relaxed);
    int64_t d = now - stored;
    if (d < 0)
        d = 0;
    if (d > s->max_us)
        s->max_us = d;
    int64_t ms = d / 1000;
    s->lat[ms < LAT_BUCKETS ? ms : LAT_BUCKETS]++;
    s->samples++;
}

static void merge(lat_stats *into, const lat_stats *s)
{
    for (int i = 0; i <= LAT_BUCKETS; i++)
        into->lat[i] += s->lat[i];
    into->samples += s->samples;
    into->max_us = s->max_us > into->max_us ? s->max_us : into->max_us;
}

static double percentile_ms(const lat_stats *s, double p)
{
    uint64_t want = (uint64_t)((double)s->samples * p), seen = 0;
    for (int i = 0; i <= LAT_BUCKETS; i++) {
        seen += s->lat[i];
        if (seen > want)
            return i + 1; /* the bucket's upper bound */
    }
    return LAT_BUCKETS;
}

/* The whole frames in client i's buffer (server frames: unmasked), parsed in
 * place and consumed at once (ws_read copies and moves each one). false
 * when the server closed it. */
static bool parse_frames(bench *b, lat_stats *s, int i)
{
    ws_client *w = &b->clients[i];
    size_t off = 0;
    bool open = true;
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
            atomic_fetch_add_explicit(&b->got[i], 1, memory_order_relaxed);
            record_latency(b, s, f + hdr, (size_t)plen);
        } else if (opcode == 0x8) {
            atomic_fetch_add(&b->closed, 1);
            fprintf(stderr, "subscriber %d closed: %d %.*s\n", i,
                    plen >= 2 ? f[hdr] << 8 | f[hdr + 1] : 1005,
                    plen > 2 ? (int)plen - 2 : 0, (const char *)f + hdr + 2);
            open = false;
        }
        off += hdr + (size_t)plen;
    }
    ws_consume(w, off);
    return open;
}

/* Reads what client i has, without blocking (its socket is non-blocking):
 * one recv per readiness, straight into its buffer (no poll of its own).
 * false when it is done (closed, the end of the stream, an error). */
static bool drain(bench *b, lat_stats *s, int i)
{
    ws_client *w = &b->clients[i];
    if (w->cap - w->len < READ_MIN) { /* grown once (a frame's start stays in it) */
        w->cap = 2 * (w->len + READ_MIN);
        w->buf = realloc(w->buf, w->cap);
    }
    ssize_t r = recv(w->fd, w->buf + w->len, w->cap - w->len, 0);
    if (r < 0)
        return errno == EAGAIN || errno == EINTR;
    if (r == 0)
        return false;
    w->len += (size_t)r;
    return parse_frames(b, s, i);
}

static void *read_loop(void *arg)
{
    reader *r = arg;
    struct epoll_event evs[256];
    while (!atomic_load(&r->b->stop)) {
        int k = epoll_wait(r->epfd, evs, 256, 50);
        for (int j = 0; j < k; j++) {
            int i = evs[j].data.fd;
            if (!drain(r->b, &r->stats, i)) {
                epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->b->clients[i].fd, NULL);
                atomic_store(&r->b->gone[i], true);
            }
        }
    }
    return NULL;
}

/* Every open subscriber has at least `want` events. */
static bool all_got(bench *b, long want)
{
    for (int i = 0; i < b->n; i++)
        if (!atomic_load(&b->gone[i]) &&
            atomic_load_explicit(&b->got[i], memory_order_relaxed) < want)
            return false;
    return true;
}

/* Waits until end_us, or until nothing came for idle_us (0: no such end),
 * or until every subscriber has `want` events (0: no such end). */
static void wait_until(bench *b, int64_t end_us, int64_t idle_us, long want)
{
    int64_t start = now_us();
    while (now_us() < end_us) {
        int64_t last = atomic_load(&b->last_us);
        if (idle_us != 0 && now_us() - (last > start ? last : start) >= idle_us)
            return;
        if (want != 0 && all_got(b, want))
            return;
        sleep_until_us(now_us() + 20000);
    }
}

static int run(int argc, char **argv)
{
    const char *url = argv[2], *store = argv[3];
    int port = atoi(argv[4]), pid = atoi(argv[5]), n = atoi(argv[6]);
    double rate = atof(argv[7]), seconds = atof(argv[8]);
    const char *query = argc > 9 ? argv[9] : "/subscribe";
    int readers = argc > 10 ? atoi(argv[10]) : 1;
    if (port <= 0 || pid <= 0 || n <= 0 || n > 10000 || rate <= 0 || seconds <= 0 ||
        readers <= 0 || readers > READERS_MAX) {
        fprintf(stderr, "bench_fanout: bad arguments\n");
        return 2;
    }
    natsConnection *nc = NULL;
    es_store *st = NULL;
    if (connect_store(url, store, false, &nc, &st) != ES_OK)
        return 1;
    static bench b;
    static reader rd[READERS_MAX];
    b.n = n;
    b.clients = calloc((size_t)n, sizeof *b.clients);
    b.got = calloc((size_t)n, sizeof *b.got);
    b.gone = calloc((size_t)n, sizeof *b.gone);
    for (int k = 0; k < readers; k++)
        rd[k] = (reader){.b = &b, .epfd = epoll_create1(0)};
    proc_sample before = proc_of(pid);
    for (int i = 0; i < n; i++) {
        if (ws_open(&b.clients[i], port, query, 0) != 101) {
            fprintf(stderr, "bench_fanout: subscriber %d: the upgrade failed\n", i);
            return 1;
        }
        fcntl(b.clients[i].fd, F_SETFL, fcntl(b.clients[i].fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = i};
        epoll_ctl(rd[i % readers].epfd, EPOLL_CTL_ADD, b.clients[i].fd, &ev);
        parse_frames(&b, &rd[i % readers].stats, i); /* what came with the upgrade's answer */
    }
    sleep_until_us(now_us() + 1000000); /* the subscribers settle */
    b.load_start_us = now_us();
    for (int k = 0; k < readers; k++)
        pthread_create(&rd[k].thread, NULL, read_loop, &rd[k]);
    wait_until(&b, now_us() + 200000, 0, 0);
    proc_sample idle = proc_of(pid);
    appender a = {.st = st, .rate = rate, .seconds = seconds};
    pthread_t t;
    pthread_create(&t, NULL, append_loop, &a);
    long peak_rss = idle.rss_kib;
    int64_t t_load = now_us();
    while (!atomic_load(&a.done)) { /* the readers read all along */
        wait_until(&b, now_us() + 500000, 0, 0);
        proc_sample p = proc_of(pid);
        peak_rss = p.rss_kib > peak_rss ? p.rss_kib : peak_rss;
    }
    pthread_join(t, NULL);
    double load_s = (double)(now_us() - t_load) / 1e6;
    /* what is on its way: until every subscriber has every event (a
     * filtered one: until QUIET_US of silence) */
    wait_until(&b, now_us() + 120000000, QUIET_US,
               strchr(query, '?') == NULL ? atomic_load(&a.appended) : 0);
    atomic_store(&b.stop, true);
    static lat_stats all;
    for (int k = 0; k < readers; k++) {
        pthread_join(rd[k].thread, NULL);
        merge(&all, &rd[k].stats);
        close(rd[k].epfd);
    }
    proc_sample loaded = proc_of(pid);
    peak_rss = loaded.rss_kib > peak_rss ? loaded.rss_kib : peak_rss;
    long sum = 0, low = -1, high = 0;
    for (int i = 0; i < n; i++) {
        long got = atomic_load(&b.got[i]);
        sum += got;
        low = low < 0 || got < low ? got : low;
        high = got > high ? got : high;
    }
    long appended = atomic_load(&a.appended);
    printf("subscribers %d query %s rate %.0f/s for %.0f s, %d reader thread(s): %ld appended "
           "(%ld failed) in %.1f s\n",
           n, query, rate, seconds, readers, appended, atomic_load(&a.failed), load_s);
    printf("delivered %ld events: per subscriber min %ld max %ld (all collections %ld, "
           "like %ld); %ld closed\n",
           sum, low, high, appended, a.per_collection[0], atomic_load(&b.closed));
    printf("latency append->delivery over %" PRIu64 " deliveries: p50 %.0f ms p95 %.0f ms "
           "p99 %.0f ms max %.1f ms\n",
           all.samples, percentile_ms(&all, 0.50), percentile_ms(&all, 0.95),
           percentile_ms(&all, 0.99), (double)all.max_us / 1000.0);
    printf("serve RSS: %ld KiB before, %ld KiB with %d idle subscribers (%.1f KiB each), "
           "%ld KiB peak under load (%.1f KiB each)\n",
           before.rss_kib, idle.rss_kib, n, (double)(idle.rss_kib - before.rss_kib) / n, peak_rss,
           (double)(peak_rss - before.rss_kib) / n);
    double wall = (double)(atomic_load(&b.last_us) - b.load_start_us) / 1e6;
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
                    "SECONDS [QUERY [READERS]]\n");
    return 2;
}
