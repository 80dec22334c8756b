#define _POSIX_C_SOURCE 200809L
#include "cursor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "clock.h"
#include "log.h"

#define FINAL_SAVE_ATTEMPTS   3
#define CONFLICT_LOG_EVERY_MS 60000

struct ingest_cursor {
    es_checkpoints *cps;
    char name[ES_CHECKPOINT_NAME_MAX + 1];
    char *json; /* {"source": ...} saved with every position */
    int64_t interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    bool has_offer;
    bool found; /* a cursor was there at start */
    bool wrote; /* this run saved (or found another writer ahead) */
    uint64_t offered, saved;
    es_status last;
    int64_t last_conflict_log_ms;
};

/* Saves `pos` (called without the lock: it makes a request). */
static es_status save(ingest_cursor *c, uint64_t pos)
{
    es_status s = es_checkpoint_advance(c->cps, c->name, pos, c->json, NULL);
    if (s == ES_OK)
        return s;
    ingest_log_line l;
    if (s == ES_ERR_CONFLICT) {
        /* Another writer with this --name is ahead (two ingesters side by
         * side): fine, ours moves on when it passes theirs. */
        int64_t now = es_cli_monotonic_ms();
        if (now - c->last_conflict_log_ms < CONFLICT_LOG_EVERY_MS)
            return s;
        c->last_conflict_log_ms = now;
        ingest_log_begin(&l, LOG_INFO, "cursor behind another writer");
    } else {
        ingest_log_begin(&l, LOG_WARN, "cursor not saved");
    }
    ingest_log_str(&l, "name", c->name);
    ingest_log_u64(&l, "cursor", pos);
    ingest_log_str(&l, "error", es_last_error());
    ingest_log_end(&l);
    return s;
}

static void *saver(void *arg)
{
    ingest_cursor *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        struct timespec deadline = es_cli_deadline(c->interval_ms);
        pthread_cond_timedwait(&c->cond, &c->mu, &deadline);
        if (c->stop || !c->has_offer || c->offered == c->saved)
            continue;
        uint64_t pos = c->offered;
        pthread_mutex_unlock(&c->mu);
        es_status s = save(c, pos);
        pthread_mutex_lock(&c->mu);
        c->last = s;
        if (s == ES_OK || s == ES_ERR_CONFLICT) {
            c->saved = pos;
            c->wrote = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void read_start(ingest_cursor *c, ingest_cursor_start *start)
{
    memset(start, 0, sizeof *start);
    es_checkpoint cp;
    if (es_checkpoint_get(c->cps, c->name, &cp) != ES_OK)
        return;
    start->found = true;
    start->position = cp.position;
    start->saved_ns = cp.time_ns;
    if (cp.data != NULL) {
        json_t *j = json_loadb(cp.data, cp.data_len, 0, NULL);
        const char *src = json_string_value(json_object_get(j, "source"));
        snprintf(start->source, sizeof start->source, "%s", src ? src : "");
        json_decref(j);
    }
    es_checkpoint_clear(&cp);
}

es_status ingest_cursor_open(es_store *store, const char *name, const char *source,
                             int64_t interval_ms, ingest_cursor_start *start, ingest_cursor **out)
{
    ingest_cursor *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ES_ERR_NOMEM;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    c->last_conflict_log_ms = -CONFLICT_LOG_EVERY_MS;
    json_t *j = json_pack("{s:s}", "source", source ? source : "");
    c->json = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    es_status s = c->json ? es_checkpoints_open(store, &c->cps) : ES_ERR_NOMEM;
    if (s == ES_OK) {
        read_start(c, start);
        c->saved = start->found ? start->position : 0;
        c->found = start->found;
        if (pthread_create(&c->thread, NULL, saver, c) != 0)
            s = ES_ERR_NOMEM;
    }
    if (s != ES_OK) {
        es_checkpoints_destroy(c->cps);
        free(c->json);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return s;
    }
    *out = c;
    return ES_OK;
}

void ingest_cursor_offer(ingest_cursor *c, uint64_t position)
{
    pthread_mutex_lock(&c->mu);
    if (!c->has_offer || position > c->offered) {
        c->offered = position;
        c->has_offer = true;
    }
    pthread_mutex_unlock(&c->mu);
}

uint64_t ingest_cursor_saved(ingest_cursor *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t v = c->saved;
    pthread_mutex_unlock(&c->mu);
    return v;
}

es_status ingest_cursor_close(ingest_cursor *c)
{
    if (c == NULL)
        return ES_OK;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    es_status s = ES_OK;
    if (c->has_offer && c->offered != c->saved) {
        for (int i = 0; i < FINAL_SAVE_ATTEMPTS; i++) {
            s = save(c, c->offered);
            if (s == ES_OK || s == ES_ERR_CONFLICT)
                break;
        }
        if (s == ES_OK || s == ES_ERR_CONFLICT) {
            c->saved = c->offered;
            c->wrote = true;
        }
    }
    bool ok = s == ES_OK || s == ES_ERR_CONFLICT;
    ingest_log_line l;
    /* "saved" only when this run wrote one: with nothing acknowledged, the
     * cursor found at start (if any) stands */
    ingest_log_begin(&l, ok ? LOG_INFO : LOG_ERROR,
                     !ok ? "cursor not saved" : c->wrote ? "cursor saved" : "cursor unchanged");
    ingest_log_str(&l, "name", c->name);
    if (c->wrote || c->found || !ok)
        ingest_log_u64(&l, "cursor", ok ? c->saved : c->offered);
    else
        ingest_log_str(&l, "reason", "nothing acknowledged, no cursor yet");
    ingest_log_end(&l);
    es_checkpoints_destroy(c->cps);
    free(c->json);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return s == ES_ERR_CONFLICT ? ES_OK : s;
}
