/* Checkpoints over the store's KV bucket ES_<store>_checkpoints. */
#include <es/checkpoint.h>

#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <es/kvkey.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/clock.h"
#include "checkpoint_impl.h"
#include "store_impl.h"
#include "transport/kv.h"

#define CHECKPOINT_HISTORY 5 /* a little history helps when debugging a cursor */
#define ADVANCE_ATTEMPTS   16
#define WATCH_POLL_MS      200

struct es_checkpoints {
    esi_kv *kv;
    int64_t timeout_ms;
};

/* ---- stored form --------------------------------------------------------- */

es_status esi_checkpoint_encode(uint64_t position, const char *json, int64_t time_ns, es_buf *out)
{
    if (position > ES_CHECKPOINT_POSITION_MAX)
        return es_error(ES_ERR_INVALID, "checkpoint position %llu is above INT64_MAX",
                        (unsigned long long)position);
    json_t *data = NULL;
    if (json != NULL) {
        size_t len = strlen(json);
        if (len > ES_CHECKPOINT_DATA_MAX)
            return es_error(ES_ERR_INVALID, "checkpoint data is %zu bytes; the limit is %d", len,
                            ES_CHECKPOINT_DATA_MAX);
        json_error_t jerr;
        data = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
        if (data == NULL)
            return es_error(ES_ERR_INVALID, "checkpoint data is not JSON: %s (at %d)", jerr.text,
                            jerr.position);
    }
    char when[ES_TIME_MAX];
    es_time_format(time_ns, when);
    json_t *v = json_pack("{s:I, s:s}", "position", (json_int_t)position, "time", when);
    if (v != NULL && data != NULL)
        json_object_set_new(v, "data", data);
    else
        json_decref(data);
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (text == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory encoding a checkpoint");
    es_status s = es_buf_append_str(out, text);
    esi_free_foreign(text); /* jansson's */
    return s;
}

es_status esi_checkpoint_decode(const void *value, size_t len, es_checkpoint *cp)
{
    uint64_t revision = cp->revision;
    memset(cp, 0, sizeof *cp);
    cp->revision = revision;
    if (value == NULL || len == 0 || len > ES_CHECKPOINT_VALUE_MAX)
        return es_error(ES_ERR_DECODE, "checkpoint value of %zu bytes (expected 1..%d)", len,
                        ES_CHECKPOINT_VALUE_MAX);
    json_error_t jerr;
    json_t *v = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *pos = json_object_get(v, "position"), *time = json_object_get(v, "time");
    json_t *data = json_object_get(v, "data");
    es_status s = ES_OK;
    if (!json_is_object(v))
        s = es_error(ES_ERR_DECODE, "checkpoint value is not a JSON object");
    else if (!json_is_integer(pos) || json_integer_value(pos) < 0)
        s = es_error(ES_ERR_DECODE, "checkpoint value has no non-negative integer position");
    else if (time != NULL && (!json_is_string(time) ||
                              es_time_parse(json_string_value(time), &cp->time_ns) != ES_OK))
        s = es_error(ES_ERR_DECODE, "checkpoint value has a bad time");
    if (s == ES_OK && data != NULL) {
        char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY); /* jansson's */
        cp->data = text ? esi_strdup(text) : NULL;
        esi_free_foreign(text);
        if (cp->data == NULL)
            s = es_error(ES_ERR_NOMEM, "out of memory decoding a checkpoint");
        else
            cp->data_len = strlen(cp->data);
    }
    if (s == ES_OK)
        cp->position = (uint64_t)json_integer_value(pos);
    else
        es_checkpoint_clear(cp);
    json_decref(v);
    return s;
}

void es_checkpoint_clear(es_checkpoint *cp)
{
    if (cp == NULL)
        return;
    esi_free(cp->data);
    memset(cp, 0, sizeof *cp);
}

static bool token_ok(const char *t, size_t n, bool pattern, bool last)
{
    if (n == 0)
        return false;
    if (pattern && n == 1 && (t[0] == '*' || (t[0] == '>' && last)))
        return true;
    char tmp[ES_CHECKPOINT_NAME_MAX + 1];
    memcpy(tmp, t, n);
    tmp[n] = '\0';
    return es_kv_key_valid(tmp) && memchr(t, '.', n) == NULL;
}

bool esi_checkpoint_name_valid(const char *name, bool pattern)
{
    if (name == NULL)
        return false;
    size_t len = strlen(name);
    if (len == 0 || len > ES_CHECKPOINT_NAME_MAX)
        return false;
    for (const char *p = name;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!token_ok(p, n, pattern, dot == NULL))
            return false;
        if (dot == NULL)
            return true;
        p = dot + 1;
    }
}

static es_status check_name(const char *name)
{
    if (!esi_checkpoint_name_valid(name, false))
        return es_error(ES_ERR_INVALID,
                        "invalid checkpoint name '%.64s': use 1..%d bytes of [-/_=.A-Za-z0-9], "
                        "no leading, trailing or double '.'",
                        name ? name : "(null)", ES_CHECKPOINT_NAME_MAX);
    return ES_OK;
}

/* ---- handle -------------------------------------------------------------- */

es_status es_checkpoints_open(es_store *store, es_checkpoints **out)
{
    return es_checkpoints_open_bucket(store, ES_CHECKPOINTS_DEFAULT, out);
}

es_status es_checkpoints_open_bucket(es_store *store, es_checkpoint_bucket set,
                                     es_checkpoints **out)
{
    if (out == NULL || store == NULL)
        return es_error(ES_ERR_INVALID, "es_checkpoints_open: store and out are required");
    *out = NULL;
    /* The repository and identity sets hold one small entry per repository
     * or identity (millions): no history. */
    esi_bucket_kind kind = ES_BUCKET_CHECKPOINTS;
    int history = 1;
    switch (set) {
    case ES_CHECKPOINTS_DEFAULT: history = CHECKPOINT_HISTORY; break;
    case ES_CHECKPOINTS_REPOS: kind = ES_BUCKET_REPOS; break;
    case ES_CHECKPOINTS_IDENTITY: kind = ES_BUCKET_IDENTITY; break;
    case ES_CHECKPOINTS_TRACKED: kind = ES_BUCKET_TRACKED; break;
    case ES_CHECKPOINTS_DEAD_LETTERS: kind = ES_BUCKET_DEAD_LETTERS; break;
    default: return es_error(ES_ERR_INVALID, "es_checkpoints_open_bucket: no such set %d", (int)set);
    }
    return esi_checkpoints_open_kind(store, kind, history, out);
}

es_status esi_checkpoints_open_kind(es_store *store, esi_bucket_kind kind, int history,
                                    es_checkpoints **out)
{
    *out = NULL;
    es_checkpoints *cps = esi_calloc(1, sizeof *cps);
    if (cps == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    cps->timeout_ms = store->opts.timeout_ms;
    es_status s = esi_store_kv_open(store, kind, history, ES_CHECKPOINT_VALUE_MAX, &cps->kv);
    if (s != ES_OK) {
        esi_free(cps);
        return s;
    }
    *out = cps;
    es_error_clear();
    return ES_OK;
}

void es_checkpoints_destroy(es_checkpoints *cps)
{
    if (cps == NULL)
        return;
    esi_kv_close(cps->kv);
    esi_free(cps);
}

es_status es_checkpoint_get(es_checkpoints *cps, const char *name, es_checkpoint *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (cps == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_checkpoint_get: handle and out are required");
    es_status s = check_name(name);
    esi_kv_entry e = {0};
    if (s == ES_OK)
        s = esi_kv_get(cps->kv, name, &e);
    if (s == ES_OK) {
        out->revision = e.revision;
        s = esi_checkpoint_decode(e.data, e.len, out);
    }
    esi_kv_entry_clear(&e);
    return s;
}

es_status es_checkpoint_set(es_checkpoints *cps, const char *name, uint64_t position,
                            const char *json, uint64_t expect_revision, uint64_t *revision)
{
    if (cps == NULL)
        return es_error(ES_ERR_INVALID, "es_checkpoint_set: handle is required");
    es_status s = check_name(name);
    es_buf value = ES_BUF_INIT;
    if (s == ES_OK)
        s = esi_checkpoint_encode(position, json, esi_now_ns(), &value);
    if (s == ES_OK)
        s = esi_kv_put(cps->kv, name, value.data, value.len, expect_revision, revision);
    es_buf_free(&value);
    if (s == ES_ERR_CONFLICT)
        return es_error_code(s, es_last_error_code(),
                             "checkpoint '%s' was written by someone else (expected revision "
                             "%llu)",
                             name, (unsigned long long)expect_revision);
    return s;
}

es_status es_checkpoint_advance(es_checkpoints *cps, const char *name, uint64_t position,
                                const char *json, uint64_t *revision)
{
    for (int i = 0; i < ADVANCE_ATTEMPTS; i++) {
        es_checkpoint cur;
        es_status s = es_checkpoint_get(cps, name, &cur);
        uint64_t expect = s == ES_OK ? cur.revision : ES_CHECKPOINT_NEW;
        uint64_t stored = cur.position;
        es_checkpoint_clear(&cur);
        if (s != ES_OK && s != ES_ERR_NOT_FOUND)
            return s;
        if (s == ES_OK && stored > position)
            return es_error_code(ES_ERR_CONFLICT, 0,
                                 "checkpoint '%s' is at %llu already: not moving it back to %llu",
                                 name, (unsigned long long)stored, (unsigned long long)position);
        s = es_checkpoint_set(cps, name, position, json, expect, revision);
        if (s != ES_ERR_CONFLICT)
            return s;
    }
    return es_error(ES_ERR_CONFLICT, "checkpoint '%s': %d writers raced ahead in a row", name,
                    ADVANCE_ATTEMPTS);
}

es_status es_checkpoint_delete(es_checkpoints *cps, const char *name, uint64_t expect_revision)
{
    if (cps == NULL)
        return es_error(ES_ERR_INVALID, "es_checkpoint_delete: handle is required");
    es_status s = check_name(name);
    if (s == ES_OK && expect_revision == ES_CHECKPOINT_NEW)
        s = es_error(ES_ERR_INVALID,
                     "es_checkpoint_delete: expect a revision or ES_CHECKPOINT_ANY");
    if (s == ES_OK)
        s = esi_kv_delete(cps->kv, name, expect_revision);
    return s;
}

/* ---- listing and watching ------------------------------------------------ */

/* Decodes a watched value; false for one to skip (not ours). */
static bool update_checkpoint(const esi_kv_update *u, es_checkpoint *cp)
{
    memset(cp, 0, sizeof *cp);
    cp->revision = u->revision;
    return esi_checkpoint_decode(u->data, u->len, cp) == ES_OK;
}

es_status es_checkpoint_list(es_checkpoints *cps, es_checkpoint_cb cb, void *closure)
{
    if (cps == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_checkpoint_list: handle and callback are required");
    esi_kv_watcher *w = NULL;
    es_status s = esi_kv_watch(cps->kv, NULL, true, &w);
    while (s == ES_OK) {
        esi_kv_update u;
        s = esi_kv_watch_next(w, cps->timeout_ms, &u);
        if (s != ES_OK) {
            s = es_error(s, "listing checkpoints: %s", es_status_text(s));
            break;
        }
        if (u.caught_up) /* every current value has been seen */
            break;
        es_checkpoint cp;
        if (update_checkpoint(&u, &cp))
            s = cb(u.key, &cp, closure);
        es_checkpoint_clear(&cp);
    }
    esi_kv_watch_destroy(w);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

struct es_checkpoint_watch {
    es_checkpoints *cps;
    esi_kv_watcher *w;
    es_checkpoint_watch_cb cb;
    void *closure;
    atomic_bool stop;
    pthread_t thread;
    /* es_checkpoint_watch_wait_current: set once, by the watch thread */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool current; /* every current value delivered */
    bool ended;   /* the watch thread returned */
};

/* The condition waits on the monotonic clock: a wall clock step moves no
 * deadline. */
static bool watch_sync_init(es_checkpoint_watch *cw)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return false;
    bool ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&cw->changed, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (ok && pthread_mutex_init(&cw->lock, NULL) != 0) {
        pthread_cond_destroy(&cw->changed);
        ok = false;
    }
    return ok;
}

static void watch_sync_destroy(es_checkpoint_watch *cw)
{
    pthread_cond_destroy(&cw->changed);
    pthread_mutex_destroy(&cw->lock);
}

static void watch_mark(es_checkpoint_watch *cw, bool *flag)
{
    pthread_mutex_lock(&cw->lock);
    *flag = true;
    pthread_cond_broadcast(&cw->changed);
    pthread_mutex_unlock(&cw->lock);
}

static void deliver(es_checkpoint_watch *cw, const esi_kv_update *u)
{
    if (u->deleted) {
        cw->cb(u->key, NULL, cw->closure);
        return;
    }
    es_checkpoint cp;
    if (update_checkpoint(u, &cp))
        cw->cb(u->key, &cp, cw->closure);
    es_checkpoint_clear(&cp);
}

static void *watch_loop(void *arg)
{
    es_checkpoint_watch *cw = arg;
    bool current = false; /* the watch thread's copy of cw->current */
    while (!atomic_load(&cw->stop)) {
        esi_kv_update u;
        es_status s = esi_kv_watch_next(cw->w, WATCH_POLL_MS, &u);
        if (s == ES_OK && u.caught_up && !current) {
            current = true;
            watch_mark(cw, &cw->current);
        }
        if (s == ES_ERR_TIMEOUT || (s == ES_OK && u.caught_up))
            continue;
        if (s != ES_OK)
            break; /* the watcher was stopped or its connection closed */
        /* A delete marker among the current values is a checkpoint that
         * no longer exists, not a change. */
        if (!current && u.deleted)
            continue;
        deliver(cw, &u);
    }
    watch_mark(cw, &cw->ended);
    return NULL;
}

es_status es_checkpoint_watch_wait_current(es_checkpoint_watch *cw, int64_t timeout_ms)
{
    if (cw == NULL)
        return es_error(ES_ERR_INVALID, "es_checkpoint_watch_wait_current: no watch");
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t ns = until.tv_nsec + (timeout_ms < 0 ? 0 : timeout_ms % 1000) * 1000000;
    until.tv_sec += (timeout_ms < 0 ? 0 : timeout_ms / 1000) + ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&cw->lock);
    int rc = 0;
    while (!cw->current && !cw->ended && rc == 0)
        rc = pthread_cond_timedwait(&cw->changed, &cw->lock, &until);
    es_status s = cw->current ? ES_OK : cw->ended ? ES_ERR_STOPPED : ES_ERR_TIMEOUT;
    pthread_mutex_unlock(&cw->lock);
    if (s == ES_ERR_TIMEOUT)
        return es_error(s, "the checkpoint watch did not deliver the current values in %lld ms",
                        (long long)timeout_ms);
    if (s == ES_ERR_STOPPED)
        return es_error(s, "the checkpoint watch ended before the current values were delivered");
    return ES_OK;
}

es_status es_checkpoint_watch_start(es_checkpoints *cps, const char *pattern,
                                    es_checkpoint_watch_cb cb, void *closure,
                                    es_checkpoint_watch **out)
{
    if (out == NULL || cps == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_checkpoint_watch_start: handle, callback and out "
                                        "are required");
    *out = NULL;
    if (pattern != NULL && !esi_checkpoint_name_valid(pattern, true))
        return es_error(ES_ERR_INVALID, "invalid checkpoint pattern '%.64s'", pattern);
    es_checkpoint_watch *cw = esi_calloc(1, sizeof *cw);
    if (cw == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    cw->cps = cps;
    cw->cb = cb;
    cw->closure = closure;
    if (!watch_sync_init(cw)) {
        esi_free(cw);
        return es_error(ES_ERR_NOMEM, "cannot create the checkpoint watch's lock");
    }
    es_status s = esi_kv_watch(cps->kv, pattern, false, &cw->w);
    if (s == ES_OK && pthread_create(&cw->thread, NULL, watch_loop, cw) != 0)
        s = es_error(ES_ERR_NOMEM, "cannot start the checkpoint watch thread");
    if (s != ES_OK) {
        esi_kv_watch_destroy(cw->w);
        watch_sync_destroy(cw);
        esi_free(cw);
        return s;
    }
    *out = cw;
    return ES_OK;
}

void es_checkpoint_watch_destroy(es_checkpoint_watch *cw)
{
    if (cw == NULL)
        return;
    atomic_store(&cw->stop, true);
    esi_kv_watch_stop(cw->w);
    pthread_join(cw->thread, NULL);
    esi_kv_watch_destroy(cw->w);
    watch_sync_destroy(cw);
    esi_free(cw);
}
