/* es-bench-projection: how fast projections, checkpoints and snapshots go,
 * next to raw nats.c doing the same work in the same run. A program that
 * prints numbers (never run by ctest).
 *
 *   es-bench-projection [--server URL] [--events N]
 *
 * Uses a store of its own ("bench_proj", deleted first and afterwards). */
#include <es/es.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "es-bench-projection: %s: %s\n", what, es_last_error());
    exit(1);
}

static atomic_uint_fast64_t handled;

static es_status count_event(const es_event *ev, void *closure)
{
    (void)ev;
    (void)closure;
    handled++;
    return ES_OK;
}

static void on_done(es_status s, const es_append_result *r, void *closure)
{
    (void)r;
    (void)closure;
    if (s != ES_OK)
        fprintf(stderr, "append failed: %s\n", es_status_text(s));
}

static void fill(es_store *st, int events)
{
    static char payload[256];
    memset(payload, 'x', sizeof payload);
    es_event_spec specs[100];
    char ids[100][16];
    for (int done = 0; done < events; done += 100) {
        for (int i = 0; i < 100; i++) {
            snprintf(ids[i], sizeof ids[i], "acc-%d", (done / 100 * 7 + i) % 1000);
            es_event_spec_init(&specs[i]);
            specs[i].entity_type = "account";
            specs[i].entity_id = ids[i];
            specs[i].event_type = "changed";
            specs[i].data = payload;
            specs[i].data_len = sizeof payload;
        }
        if (es_append_batch_async(st, specs, 100, on_done, NULL) != ES_OK)
            die("append");
    }
    if (es_append_flush(st, 120000) != ES_OK)
        die("flush");
}

/* One projection run from the start to caught up: events/s. */
static double run_projection(es_store *st, const char *name, bool ordered, int partitions,
                             int workers, int events)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    es_projection_config cfg;
    es_projection_config_init(&cfg);
    cfg.filters = &f;
    cfg.filter_count = 1;
    cfg.ordered = ordered;
    cfg.partitions = partitions;
    cfg.max_ack_pending = 10000;
    if (es_projection_create(st, name, &cfg) != ES_OK)
        die(name);
    es_projection_run_options o;
    es_projection_run_options_init(&o);
    o.workers = workers;
    o.batch = 256;
    es_projection_handler h = {.on_event = count_event};
    handled = 0;
    double t0 = now_s();
    es_projection *p = NULL;
    if (es_projection_start(st, name, &h, &o, &p) != ES_OK)
        die(name);
    while (handled < (uint64_t)events) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    double dt = now_s() - t0;
    es_projection_destroy(p);
    es_projection_delete(st, name);
    return events / dt;
}

/* The same with nats.c's own pull subscription: fetch 256, ack each. */
static double run_raw(natsConnection *nc, const char *stream, int events)
{
    jsCtx *js = NULL;
    natsConnection_JetStream(&js, nc, NULL);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.MaxAckPending = 10000;
    so.Config.AckPolicy = js_AckExplicit;
    so.Stream = stream;
    natsSubscription *sub = NULL;
    char subject[64];
    snprintf(subject, sizeof subject, "$ES.bench_proj.account.*.*");
    double t0 = now_s();
    if (js_PullSubscribe(&sub, js, subject, "raw", NULL, &so, NULL) != NATS_OK) {
        fprintf(stderr, "raw pull subscribe: %s\n", nats_GetLastError(NULL));
        exit(1);
    }
    for (int got = 0; got < events;) {
        natsMsgList list = {0};
        if (natsSubscription_Fetch(&list, sub, 256, 5000, NULL) != NATS_OK)
            continue;
        for (int i = 0; i < list.Count; i++)
            natsMsg_Ack(list.Msgs[i], NULL);
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    double dt = now_s() - t0;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    js_DeleteConsumer(js, stream, "raw", NULL, NULL);
    jsCtx_Destroy(js);
    return events / dt;
}

typedef struct tally {
    uint64_t n;
} tally;

static es_status count_tally(const es_event *ev, void *closure)
{
    (void)ev;
    ((tally *)closure)->n++;
    return ES_OK;
}

static es_status restore_tally(const void *data, size_t len, void *closure)
{
    if (len != sizeof(tally))
        return ES_ERR_DECODE;
    memcpy(closure, data, len);
    return ES_OK;
}

int main(int argc, char **argv)
{
    const char *url = getenv("NATS_URL");
    int events = 200000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--server") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--events") == 0)
            events = atoi(argv[i + 1]);
    }
    events = events / 100 * 100;
    natsConnection *nc = NULL;
    if (natsConnection_ConnectTo(&nc, url ? url : NATS_DEFAULT_URL) != NATS_OK) {
        fprintf(stderr, "cannot connect\n");
        return 1;
    }
    es_store *st = NULL;
    es_store_delete(nc, "bench_proj", NULL);
    if (es_store_create(nc, "bench_proj", NULL, NULL, &st) != ES_OK)
        die("store");
    fill(st, events);

    printf("| workload (%d events of 256 bytes, events/s) | es | raw nats.c | ratio |\n", events);
    printf("|---|---|---|---|\n");
    double raw = run_raw(nc, es_store_stream(st), events);
    double one = run_projection(st, "b1", false, 1, 1, events);
    printf("| projection, 1 worker, batches of 256 | %.0f | %.0f | %.2f |\n", one, raw, one / raw);
    double two = run_projection(st, "b2", false, 1, 2, events);
    printf("| projection, 2 workers | %.0f | | |\n", two);
    double o1 = run_projection(st, "b3", true, 1, 1, events);
    printf("| ordered, 1 partition | %.0f | | |\n", o1);
    double o4 = run_projection(st, "b4", true, 4, 1, events);
    printf("| ordered, 4 partitions, one process | %.0f | | |\n", o4);

    /* Checkpoints: compare-and-set advances, one after the other. */
    es_checkpoints *cps = NULL;
    if (es_checkpoints_open(st, &cps) != ES_OK)
        die("checkpoints");
    int n = 2000;
    double t0 = now_s();
    for (int i = 1; i <= n; i++)
        if (es_checkpoint_advance(cps, "bench", (uint64_t)i, NULL, NULL) != ES_OK)
            die("advance");
    printf("| checkpoint advance (get + compare-and-set), one at a time | %.0f /s | | |\n",
           n / (now_s() - t0));
    es_checkpoints_destroy(cps);

    /* Snapshots: an entity of 10,000 events, loaded whole and from a snapshot. */
    es_snapshots *sn = NULL;
    if (es_snapshots_open(st, &sn) != ES_OK)
        die("snapshots");
    static char payload[256];
    es_event_spec specs[100];
    for (int k = 0; k < 100; k++) {
        for (int i = 0; i < 100; i++) {
            es_event_spec_init(&specs[i]);
            specs[i].entity_type = "big";
            specs[i].entity_id = "one";
            specs[i].event_type = "changed";
            specs[i].data = payload;
            specs[i].data_len = sizeof payload;
        }
        if (es_append_batch(st, specs, 100, NULL) != ES_OK)
            die("append");
    }
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "big";
    f.entity_id = "one";
    tally full = {0};
    uint64_t last = 0;
    t0 = now_s();
    if (es_load(st, &f, NULL, count_tally, &full, &last) != ES_OK)
        die("load");
    double t_full = now_s() - t0;
    if (es_snapshot_save(sn, &f, last, 1, &full, sizeof full) != ES_OK)
        die("snapshot");
    tally fast = {0};
    t0 = now_s();
    if (es_load_from_snapshot(sn, &f, 1, restore_tally, count_tally, &fast, NULL) != ES_OK)
        die("load from snapshot");
    double t_snap = now_s() - t0;
    printf("| load a 10,000-event entity: full replay / from a snapshot at its last event | "
           "%.1f ms / %.2f ms | | |\n",
           t_full * 1000, t_snap * 1000);
    es_snapshots_destroy(sn);
    es_store_destroy(st);
    es_store_delete(nc, "bench_proj", NULL);
    natsConnection_Destroy(nc);
    return 0;
}
