/* The tracked repositories (es/atproto_tracked.h) over the engine's
 * checkpoints in the tracked set (ES_<store>_tracked): one checkpoint per
 * DID, keyed by its repository key (repos.c owns the mapping both ways),
 * position 0, time = when it was added, data {"v":1,"did":"<DID>"}. The DID
 * is inside the value so that a value written under another key (by hand,
 * by something else) is caught, never tracked. */
#include <es/atproto_tracked.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/checkpoint.h>

#include "atp_internal.h"

#define TRACKED_VERSION 1
/* How long es_atp_tracked_watch_start waits for the current set: a large
 * set takes the server a while to send. */
#define CURRENT_WAIT_MS 60000
#define ADD_ATTEMPTS    4 /* compare-and-set rounds against a racing writer */

struct es_atp_tracked {
    es_checkpoints *cps;
};

/* ---- keys and values ----------------------------------------------------------- */

/* The key of a DID that can be tracked: its repository key, when that is
 * not a hashed one (a deletion must name its DID by its key alone). */
static es_status tracked_key(const char *did, size_t len, char key[ES_ATP_REPO_KEY_MAX + 1])
{
    es_status s = es_atp_repo_key(did, len, key);
    if (s != ES_OK)
        return s;
    char back[ES_ATP_REPO_KEY_MAX + 1];
    size_t back_len;
    if (!esi_atp_repo_key_did(key, back, &back_len))
        return es_error(ES_ERR_LIMIT,
                        "'%.*s%s' cannot be tracked: only DIDs of at most %d bytes that are "
                        "their own KV key (no empty, leading or trailing '.' token)",
                        (int)(len > 64 ? 64 : len), did, len > 64 ? "..." : "",
                        ES_ATP_TRACKED_DID_MAX);
    return ES_OK;
}

/* The stored data of a DID, into *out (es_free). */
static es_status encode_value(const char *did, size_t len, char **out)
{
    json_t *o = json_pack("{s:i,s:s%}", "v", TRACKED_VERSION, "did", did, len);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    *out = text ? esi_atp_strdup(text) : NULL;
    free(text); /* jansson's, from libc */
    if (*out == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory encoding a tracked DID");
    return ES_OK;
}

/* Whether a checkpoint under `key` is a tracked DID's entry (hostile input:
 * bounded by the checkpoint's own bound); its DID into did[] (the key's
 * inverse, ES_ATP_TRACKED_DID_MAX + 1 bytes) and *len. */
static bool decode_value(const char *key, const es_checkpoint *cp, char *did, size_t *len)
{
    if (!esi_atp_repo_key_did(key, did, len) || cp->data == NULL)
        return false;
    json_t *o = json_loadb(cp->data, cp->data_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *v = json_object_get(o, "v"), *d = json_object_get(o, "did");
    bool ok = json_is_object(o) && json_is_integer(v) &&
              json_integer_value(v) == TRACKED_VERSION && json_is_string(d) &&
              json_string_length(d) == *len && memcmp(json_string_value(d), did, *len) == 0;
    json_decref(o);
    return ok;
}

/* ---- the handle ----------------------------------------------------------------- */

es_status es_atp_tracked_open(es_store *store, es_atp_tracked **out)
{
    if (out == NULL || store == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_tracked_open: store and out are required");
    *out = NULL;
    es_atp_tracked *t = es_calloc(1, sizeof *t);
    if (t == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status s = es_checkpoints_open_bucket(store, ES_CHECKPOINTS_TRACKED, &t->cps);
    if (s != ES_OK) {
        es_free(t);
        return s;
    }
    *out = t;
    return ES_OK;
}

void es_atp_tracked_destroy(es_atp_tracked *t)
{
    if (t == NULL)
        return;
    es_checkpoints_destroy(t->cps);
    es_free(t);
}

/* Reads the entry of `key`: ES_OK with *tracked and cp filled (the caller
 * clears it), or an error other than not found. *expect (may be NULL) gets
 * what a write replacing it expects: its revision, none, or any for a
 * value that is not even a checkpoint (the engine does not say its
 * revision; the only valid value of the key is the same anyway). */
static es_status read_entry(es_atp_tracked *t, const char *key, es_checkpoint *cp, bool *tracked,
                            uint64_t *expect)
{
    *tracked = false;
    es_status s = es_checkpoint_get(t->cps, key, cp);
    if (expect != NULL)
        *expect = s == ES_OK           ? cp->revision
                  : s == ES_ERR_DECODE ? ES_CHECKPOINT_ANY
                                       : ES_CHECKPOINT_NEW;
    if (s == ES_ERR_NOT_FOUND || s == ES_ERR_DECODE) {
        es_error_clear();
        return ES_OK;
    }
    char did[ES_ATP_TRACKED_DID_MAX + 1];
    size_t len;
    if (s == ES_OK)
        *tracked = decode_value(key, cp, did, &len);
    return s;
}

es_status es_atp_tracked_add(es_atp_tracked *t, const char *did, size_t len)
{
    if (t == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_tracked_add: handle is required");
    char key[ES_ATP_REPO_KEY_MAX + 1], *text = NULL;
    es_status s = tracked_key(did, len, key);
    if (s == ES_OK)
        s = encode_value(did, len, &text);
    /* Written only when absent: a tracked entry is kept as it is; anything
     * else under the key is replaced, unless it changed in between (then
     * read again). */
    uint64_t expect = ES_CHECKPOINT_NEW;
    for (int i = 0; s == ES_OK && i < ADD_ATTEMPTS; i++) {
        s = es_checkpoint_set(t->cps, key, 0, text, expect, NULL);
        if (s != ES_ERR_CONFLICT)
            break;
        es_checkpoint cp;
        bool tracked;
        s = read_entry(t, key, &cp, &tracked, &expect);
        es_checkpoint_clear(&cp);
        if (s == ES_OK && tracked)
            break;
        if (s == ES_OK && i + 1 == ADD_ATTEMPTS)
            s = es_error(ES_ERR_CONFLICT, "%.*s: %d writers raced on its key", (int)len, did,
                         ADD_ATTEMPTS);
    }
    es_free(text);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

es_status es_atp_tracked_remove(es_atp_tracked *t, const char *did, size_t len)
{
    if (t == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_tracked_remove: handle is required");
    char key[ES_ATP_REPO_KEY_MAX + 1];
    es_checkpoint cp = {0};
    bool tracked = false;
    es_status s = tracked_key(did, len, key);
    if (s == ES_OK)
        s = read_entry(t, key, &cp, &tracked, NULL);
    es_checkpoint_clear(&cp);
    if (s == ES_OK && !tracked)
        return es_error(ES_ERR_NOT_FOUND, "%.*s is not tracked", (int)len, did);
    if (s == ES_OK)
        s = es_checkpoint_delete(t->cps, key, ES_CHECKPOINT_ANY);
    return s;
}

es_status es_atp_tracked_contains(es_atp_tracked *t, const char *did, size_t len, bool *tracked,
                                  int64_t *added_ns)
{
    if (added_ns != NULL)
        *added_ns = 0;
    if (t == NULL || tracked == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_tracked_contains: handle and out are required");
    *tracked = false;
    char key[ES_ATP_REPO_KEY_MAX + 1];
    if (tracked_key(did, len, key) != ES_OK) {
        es_error_clear();
        return ES_OK; /* not a DID that can be tracked: not tracked */
    }
    es_checkpoint cp = {0};
    es_status s = read_entry(t, key, &cp, tracked, NULL);
    if (s == ES_OK && *tracked && added_ns != NULL)
        *added_ns = cp.time_ns;
    es_checkpoint_clear(&cp);
    return s;
}

typedef struct list_ctx {
    es_atp_tracked_cb cb;
    void *closure;
    size_t skipped;
} list_ctx;

static es_status list_one(const char *key, const es_checkpoint *cp, void *closure)
{
    list_ctx *c = closure;
    char did[ES_ATP_TRACKED_DID_MAX + 1];
    size_t len;
    if (!decode_value(key, cp, did, &len)) {
        c->skipped++;
        return ES_OK;
    }
    return c->cb(did, len, cp->time_ns, c->closure);
}

es_status es_atp_tracked_list(es_atp_tracked *t, es_atp_tracked_cb cb, void *closure,
                              size_t *skipped)
{
    if (t == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_tracked_list: handle and callback are required");
    list_ctx c = {cb, closure, 0};
    es_status s = es_checkpoint_list(t->cps, list_one, &c);
    if (skipped != NULL)
        *skipped = c.skipped;
    return s;
}

/* ---- the watch ------------------------------------------------------------------ */

struct es_atp_tracked_watch {
    es_checkpoint_watch *cw;
    es_atp_tracked_watch_cb cb;
    void *closure;
    atomic_uint_least64_t skipped;
};

/* On the checkpoint watch's thread: a put is an added DID, a delete a
 * removed one (the key names it). */
static void on_change(const char *key, const es_checkpoint *cp, void *closure)
{
    es_atp_tracked_watch *w = closure;
    char did[ES_ATP_TRACKED_DID_MAX + 1];
    size_t len;
    bool ok = cp == NULL ? esi_atp_repo_key_did(key, did, &len) : decode_value(key, cp, did, &len);
    if (!ok) {
        atomic_fetch_add(&w->skipped, 1);
        return;
    }
    w->cb(did, len, cp != NULL, w->closure);
}

es_status es_atp_tracked_watch_start(es_atp_tracked *t, es_atp_tracked_watch_cb cb, void *closure,
                                     es_atp_tracked_watch **out)
{
    if (out == NULL || t == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_tracked_watch_start: handle, callback and out "
                                        "are required");
    *out = NULL;
    es_atp_tracked_watch *w = es_calloc(1, sizeof *w);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    w->cb = cb;
    w->closure = closure;
    atomic_init(&w->skipped, 0);
    es_status s = es_checkpoint_watch_start(t->cps, NULL, on_change, w, &w->cw);
    if (s == ES_OK)
        s = es_checkpoint_watch_wait_current(w->cw, CURRENT_WAIT_MS);
    if (s != ES_OK) {
        es_atp_tracked_watch_destroy(w);
        return esi_atp_error_wrap(s, "watching the tracked repositories");
    }
    *out = w;
    return ES_OK;
}

uint64_t es_atp_tracked_watch_skipped(const es_atp_tracked_watch *w)
{
    return w ? atomic_load(&w->skipped) : 0;
}

void es_atp_tracked_watch_destroy(es_atp_tracked_watch *w)
{
    if (w == NULL)
        return;
    es_checkpoint_watch_destroy(w->cw);
    es_free(w);
}
