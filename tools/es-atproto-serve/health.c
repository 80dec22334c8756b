/* The health checker (health.h). es_store_info_get is one request to the
 * JetStream API for the stream: it answers only when the connection is up
 * and the stream exists. */
#define _POSIX_C_SOURCE 200809L
#include "health.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

struct health {
    es_store *st;
    int64_t interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    int64_t ok_at_ms;   /* monotonic time of the last good answer, 0: none */
    char reason[200];   /* why the last check failed, "" when it did not */
};

static void check(health *h)
{
    es_store_info info;
    es_status s = es_store_info_get(h->st, &info);
    pthread_mutex_lock(&h->lock);
    if (s == ES_OK) {
        h->ok_at_ms = es_cli_monotonic_ms();
        h->reason[0] = '\0';
    } else {
        snprintf(h->reason, sizeof h->reason, "%s", es_last_error());
    }
    pthread_mutex_unlock(&h->lock);
}

static void *run(void *arg)
{
    health *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        pthread_mutex_unlock(&h->lock);
        check(h);
        pthread_mutex_lock(&h->lock);
        struct timespec deadline = es_cli_deadline(h->interval_ms);
        if (!h->stop)
            pthread_cond_timedwait(&h->wake, &h->lock, &deadline);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

es_status health_start(es_store *st, int64_t interval_ms, health **out)
{
    health *h = calloc(1, sizeof *h);
    if (h == NULL)
        return ES_ERR_NOMEM;
    h->st = st;
    h->interval_ms = interval_ms;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    check(h); /* the first answer before the first request */
    if (pthread_create(&h->thread, NULL, run, h) != 0) {
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return es_error(ES_ERR_NOMEM, "cannot start the health thread");
    }
    *out = h;
    return ES_OK;
}

/* A reason as a JSON string's content: quotes, backslashes and control
 * characters are left out (the text is ours or the server's, one line). */
static void plain(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    for (; *src && n + 1 < size; src++)
        if (*src != '"' && *src != '\\' && (unsigned char)*src >= 0x20)
            dst[n++] = *src;
    dst[n] = '\0';
}

bool health_report(health *h, char *body, size_t size)
{
    pthread_mutex_lock(&h->lock);
    int64_t age = h->ok_at_ms ? es_cli_monotonic_ms() - h->ok_at_ms : -1;
    char why[200];
    bool ok = age >= 0 && age <= 3 * h->interval_ms && h->reason[0] == '\0';
    if (ok)
        snprintf(why, sizeof why, "%s", "");
    else if (h->reason[0] != '\0')
        plain(why, sizeof why, h->reason);
    else
        snprintf(why, sizeof why, "no answer from NATS for %lld ms", (long long)age);
    pthread_mutex_unlock(&h->lock);
    if (ok)
        snprintf(body, size, "{\"status\":\"ok\"}");
    else
        snprintf(body, size, "{\"status\":\"unavailable\",\"reason\":\"%s\"}", why);
    return ok;
}

void health_destroy(health *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
