/* Webhook delivery rate, for docs/performance.md: EVENTS events of SIZE
 * bytes of JSON handed to the webhook target (webhook.h) with IN_FLIGHT
 * requests at most, signed, to a receiver on loopback that answers 200 at
 * once (atproto/tests/http_standin.h, kept-alive connections, one worker per
 * request in flight). A window of 4 x IN_FLIGHT events not yet done stands
 * for the dispatcher's in-flight bound. Prints events/s from the first send
 * to the last done. Built with the benchmarks, never run by ctest.
 *
 *   bench_webhook [EVENTS [IN_FLIGHT [SIZE]]]     (defaults 50000 32 600) */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "http_standin.h"
#include "webhook.h"

typedef struct progress {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned long done, dead;
} progress;

static void on_done(void *arg, uint64_t id, tap_outcome outcome, const char *why)
{
    (void)id;
    (void)why;
    progress *p = arg;
    pthread_mutex_lock(&p->lock);
    p->done++;
    p->dead += outcome == TAP_DEAD_LETTER;
    pthread_cond_signal(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

static int on_post(void *ctx, const char *head, const void *body, size_t len)
{
    (void)ctx;
    (void)head;
    (void)body;
    (void)len;
    return 200;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until fewer than `window` events are outstanding after `sent`. */
static void wait_window(progress *p, unsigned long sent, unsigned long window)
{
    pthread_mutex_lock(&p->lock);
    while (sent - p->done >= window)
        pthread_cond_wait(&p->changed, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

int main(int argc, char **argv)
{
    unsigned long events = argc > 1 ? strtoul(argv[1], NULL, 10) : 50000;
    unsigned long in_flight = argc > 2 ? strtoul(argv[2], NULL, 10) : 32;
    unsigned long size = argc > 3 ? strtoul(argv[3], NULL, 10) : 600;
    if (events == 0 || in_flight == 0 || in_flight > STANDIN_WORKERS_MAX || size < 16 ||
        size > STANDIN_BODY_MAX) {
        fprintf(stderr, "usage: bench_webhook [EVENTS [IN_FLIGHT (1-%d) [SIZE]]]\n",
                STANDIN_WORKERS_MAX);
        return 2;
    }
    standin s;
    if (standin_start_workers(&s, (unsigned)in_flight, on_post, NULL) != 0) {
        fprintf(stderr, "bench_webhook: no receiver\n");
        return 1;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", s.port);
    progress p = {.done = 0};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.changed, NULL);
    webhook_options o;
    webhook_options_init(&o);
    o.url = url;
    o.secret = "a-shared-secret";
    o.max_in_flight = in_flight;
    webhook *w = NULL;
    if (webhook_start(&o, on_done, &p, &w) != ES_OK) {
        fprintf(stderr, "bench_webhook: %s\n", es_last_error());
        return 1;
    }
    unsigned char *json = malloc(size);
    memset(json, 'x', size);
    memcpy(json, "{\"pad\":\"", 8);
    memcpy(json + size - 2, "\"}", 2);
    tap_target t = webhook_target(w);
    double t0 = now_s();
    for (unsigned long id = 0; id < events; id++) {
        wait_window(&p, id, 4 * in_flight);
        tap_event ev = {id, "did:plc:bench", false, json, size};
        if (t.send(t.self, &ev) != ES_OK) {
            fprintf(stderr, "bench_webhook: %s\n", es_last_error());
            return 1;
        }
    }
    wait_window(&p, events, 1);
    double secs = now_s() - t0;
    printf("%lu events of %lu bytes, %lu in flight: %.3f s, %.0f events/s, %lu dead letters\n",
           events, size, in_flight, secs, (double)events / secs, p.dead);
    webhook_destroy(w);
    standin_stop(&s);
    free(json);
    return 0;
}
