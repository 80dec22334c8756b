/* A live watch: a reader that first receives a store's history and then
 * every event as it is appended, as a dashboard or a notifier would.
 *
 *   live-watch [--server URL] [--store NAME] [--count N]
 *
 * Starts from an empty store NAME (default "sensors"; it is deleted first:
 * this is demo data) holding 3 readings, watches entity type "sensor", and
 * has another thread append readings while it watches. The watch prints
 * each event as it arrives and the main thread stops it cleanly after N
 * events (default 10: 3 from history, 7 live). Then it checks that the N
 * events came in store order, each once, history before live. Exits 1 when a
 * check fails. */
#include <es/es.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"

#define HISTORY      3
#define COUNT_MAX    1000
#define WAIT_SECONDS 30
#define APPEND_PAUSE (50 * 1000 * 1000) /* ns between live appends */

/* What the watch's thread and the main thread share: the watch callbacks run
 * on the watch's own thread, so it is guarded by a mutex. */
typedef struct watcher {
    pthread_mutex_t lock;
    pthread_cond_t done; /* signalled when `count` events were seen */
    int count, seen;
    int seen_before_caught_up; /* history */
    bool caught_up;
    bool out_of_order;
    uint64_t last_seq;
} watcher;

/* Called on the watch's thread, for each event, history first. */
static es_status on_event(const es_event *ev, void *closure)
{
    watcher *w = closure;
    const void *data;
    size_t len, id_len;
    if (es_event_data(ev, &data, &len) != ES_OK)
        len = 0;
    const char *id = es_event_entity_id(ev, &id_len);
    printf("  #%-4llu %-8.*s %-9s %.*s\n", (unsigned long long)es_event_seq(ev), (int)id_len, id,
           es_event_event_type(ev), (int)len, (const char *)data);
    fflush(stdout);
    pthread_mutex_lock(&w->lock);
    if (es_event_seq(ev) <= w->last_seq)
        w->out_of_order = true;
    w->last_seq = es_event_seq(ev);
    if (!w->caught_up)
        w->seen_before_caught_up++;
    if (++w->seen == w->count)
        pthread_cond_signal(&w->done);
    pthread_mutex_unlock(&w->lock);
    return ES_OK; /* anything else would end the watch */
}

static void on_caught_up(void *closure)
{
    watcher *w = closure;
    pthread_mutex_lock(&w->lock);
    w->caught_up = true;
    pthread_mutex_unlock(&w->lock);
    printf("  -- history done, now live --\n");
    fflush(stdout);
}

/* Trouble the watch rides out (final == false), or why it ended. */
static void on_error(es_status status, const char *text, bool final, void *closure)
{
    (void)closure;
    fprintf(stderr, "watch %s: %s: %s\n", final ? "ended" : "trouble", es_status_text(status),
            text);
}

static es_status append_reading(es_store *st, const char *sensor, int celsius)
{
    char data[32];
    snprintf(data, sizeof data, "{\"celsius\":%d}", celsius);
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = "sensor";
    e.entity_id = sensor;
    e.event_type = "reading";
    e.data = data;
    e.data_len = strlen(data);
    e.codec = "json";
    return es_append(st, &e, NULL);
}

/* Another writer: in a real system, another process. */
typedef struct writer {
    es_store *st;
    int readings;
    es_status status;
} writer;

static void *writer_loop(void *arg)
{
    writer *wr = arg;
    const char *sensors[] = {"kitchen", "cellar", "attic"};
    struct timespec pause = {0, APPEND_PAUSE};
    for (int i = 0; i < wr->readings && wr->status == ES_OK; i++) {
        nanosleep(&pause, NULL);
        wr->status = append_reading(wr->st, sensors[i % 3], 18 + i % 7);
    }
    return NULL;
}

/* Waits until the watcher saw its count of events, at most WAIT_SECONDS. */
static bool wait_for_all(watcher *w)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&w->lock);
    int r = 0;
    while (w->seen < w->count && r != ETIMEDOUT)
        r = pthread_cond_timedwait(&w->done, &w->lock, &until);
    bool all = w->seen >= w->count;
    pthread_mutex_unlock(&w->lock);
    return all;
}

static int check(const watcher *w, uint64_t last_seq)
{
    int failures = 0;
    if (w->seen != w->count) {
        fprintf(stderr, "FAILED: %d events seen, %d expected\n", w->seen, w->count);
        failures++;
    }
    if (w->out_of_order) {
        fprintf(stderr, "FAILED: events out of store order\n");
        failures++;
    }
    if (w->seen_before_caught_up != HISTORY) {
        fprintf(stderr, "FAILED: %d events before catching up, the history holds %d\n",
                w->seen_before_caught_up, HISTORY);
        failures++;
    }
    if (last_seq != (uint64_t)w->count) {
        fprintf(stderr, "FAILED: the watch stopped at #%llu, not #%d\n",
                (unsigned long long)last_seq, w->count);
        failures++;
    }
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    int count = 10;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--count") == 0)
            count = atoi(argv[i + 1]);
    if (count <= HISTORY || count > COUNT_MAX) {
        fprintf(stderr, "live-watch: --count is between %d and %d\n", HISTORY + 1, COUNT_MAX);
        return 1;
    }
    demo d;
    if (!demo_open(argc, argv, "live-watch", "sensors", &d))
        return 1;
    es_store *st = d.st;
    es_status s = ES_OK;
    for (int i = 0; i < HISTORY && s == ES_OK; i++) /* the history */
        s = append_reading(st, "kitchen", 20 + i);
    if (s != ES_OK) {
        fprintf(stderr, "live-watch: %s\n", es_last_error());
        demo_close(&d);
        return 1;
    }

    watcher w = {.count = count};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.done, NULL);
    es_watch_options wo;
    es_watch_options_init(&wo);
    wo.filter.entity_type = "sensor"; /* every sensor */
    wo.on_event = on_event;
    wo.on_caught_up = on_caught_up;
    wo.on_error = on_error;
    wo.closure = &w;
    es_watch *watch = NULL;
    printf("watching sensor events of store %s:\n", d.store);
    /* Returns once the history is delivered; live events follow on the
     * watch's thread. */
    if (es_watch_start(st, &wo, &watch) != ES_OK) {
        fprintf(stderr, "live-watch: %s\n", es_last_error());
        demo_close(&d);
        return 1;
    }

    writer wr = {.st = st, .readings = count - HISTORY, .status = ES_OK};
    pthread_t writer_thread;
    pthread_create(&writer_thread, NULL, writer_loop, &wr);
    bool all = wait_for_all(&w);
    /* Stop first: once es_watch_stop returns no callback runs, so the last
     * sequence is final (what a program saves to resume from later). */
    es_watch_stop(watch);
    uint64_t last_seq = es_watch_last_seq(watch);
    es_watch_destroy(watch);
    pthread_join(writer_thread, NULL);

    int code = 0;
    if (wr.status != ES_OK) {
        fprintf(stderr, "FAILED: the writer: %s\n", es_status_text(wr.status));
        code = 1;
    }
    if (!all) {
        fprintf(stderr, "FAILED: not every event arrived within %d s\n", WAIT_SECONDS);
        code = 1;
    }
    if (check(&w, last_seq) != 0)
        code = 1;
    printf("stopped after %d events (%d from history, %d live), last #%llu\n", w.seen,
           w.seen_before_caught_up, w.seen - w.seen_before_caught_up, (unsigned long long)last_seq);
    pthread_cond_destroy(&w.done);
    pthread_mutex_destroy(&w.lock);
    demo_close(&d);
    printf("%s\n", code == 0 ? "live-watch: every check passed" : "live-watch: FAILED");
    return code;
}
