/* load -> decide -> append with the expected sequence -> retry on conflict. */
#include <es/decide.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/arena.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/backoff.h"
#include "base/clock.h"

#define DECISION_ARENA_LIMIT ((size_t)256 << 20)
#define DEFAULT_BUDGET_MS    5000
#define REASON_MAX           256

struct es_decision {
    es_arena *arena;
    const es_filter *entity;
    es_event_spec events[ES_BATCH_MAX];
    size_t count;
    bool rejected;
    char reason[REASON_MAX]; /* es_decision_reject's, NUL-terminated */
};

void es_decide_options_init(es_decide_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->budget_ms = DEFAULT_BUDGET_MS;
    opts->snapshot_every = 100;
    opts->snapshot_version = 1;
}

es_status es_decision_reject(es_decision *d, const char *reason)
{
    if (d == NULL)
        return es_error(ES_ERR_INVALID, "es_decision_reject: decision is NULL");
    d->rejected = true;
    snprintf(d->reason, sizeof d->reason, "%s",
             reason && reason[0] ? reason : "the decider refused the command");
    return es_error(ES_ERR_ABORTED, "%s", d->reason);
}

static const char *copy_str(es_arena *a, const char *s)
{
    return s ? es_arena_strndup(a, s, strlen(s)) : NULL;
}

static const void *copy_bytes(es_arena *a, const void *p, size_t n)
{
    void *q = n ? es_arena_alloc(a, n) : NULL;
    if (q)
        memcpy(q, p, n);
    return q;
}

/* Whether a string was copied: there was none, or the copy exists. */
static bool copied(const void *from, const void *to)
{
    return from == NULL || to != NULL;
}

/* A decided event's expect_filter, copied (NULL stays NULL). */
static const es_filter *copy_filter(es_arena *a, const es_filter *f, bool *ok)
{
    es_filter *c = f ? es_arena_alloc(a, sizeof *c) : NULL;
    if (f == NULL || c == NULL) {
        *ok = *ok && f == NULL;
        return NULL;
    }
    *c = *f;
    if (f->entity_id != NULL && f->entity_id_len == 0)
        c->entity_id_len = strlen(f->entity_id);
    c->tenant = copy_str(a, f->tenant);
    c->entity_type = copy_str(a, f->entity_type);
    c->entity_id = copy_bytes(a, f->entity_id, c->entity_id_len);
    c->event_type = copy_str(a, f->event_type);
    *ok = *ok && copied(f->tenant, c->tenant) && copied(f->entity_type, c->entity_type) &&
          copied(f->entity_id, c->entity_id) && copied(f->event_type, c->event_type);
    return c;
}

es_status es_decision_add(es_decision *d, const es_event_spec *e)
{
    if (d == NULL || e == NULL)
        return es_error(ES_ERR_INVALID, "es_decision_add: decision and event are required");
    if (d->count == ES_BATCH_MAX)
        return es_error(ES_ERR_TOO_LARGE, "a decision holds at most %d events", ES_BATCH_MAX);
    es_arena *a = d->arena;
    es_event_spec c = *e;
    bool own_entity = e->entity_type == NULL && e->entity_id == NULL;
    if (own_entity) {
        c.tenant = e->tenant ? e->tenant : d->entity->tenant;
        c.entity_type = d->entity->entity_type;
        c.entity_id = d->entity->entity_id;
        c.entity_id_len = d->entity->entity_id_len;
    }
    size_t id_len = c.entity_id_len ? c.entity_id_len : (c.entity_id ? strlen(c.entity_id) : 0);
    const es_event_spec src = c;
    c.tenant = copy_str(a, src.tenant);
    c.entity_type = copy_str(a, src.entity_type);
    c.entity_id = copy_bytes(a, src.entity_id, id_len);
    c.entity_id_len = id_len;
    c.event_type = copy_str(a, src.event_type);
    c.event_id = copy_str(a, src.event_id);
    c.codec = copy_str(a, src.codec);
    c.data = copy_bytes(a, src.data, c.data_len);
    es_meta *meta = c.meta_count ? es_arena_calloc(a, c.meta_count, sizeof *meta) : NULL;
    bool ok = copied(src.tenant, c.tenant) && copied(src.entity_type, c.entity_type) &&
              copied(src.event_type, c.event_type) && copied(src.event_id, c.event_id) &&
              copied(src.codec, c.codec) && (id_len == 0 || c.entity_id != NULL) &&
              (c.data_len == 0 || c.data != NULL) && (c.meta_count == 0 || meta != NULL);
    for (size_t i = 0; ok && i < c.meta_count; i++) {
        meta[i].key = copy_str(a, e->meta[i].key);
        meta[i].value = copy_str(a, e->meta[i].value);
        ok = copied(e->meta[i].key, meta[i].key) && copied(e->meta[i].value, meta[i].value);
    }
    c.meta = meta;
    c.expect_filter = copy_filter(a, src.expect_filter, &ok);
    if (!ok)
        return es_arena_error(a, "copying a decided event");
    d->events[d->count++] = c;
    return ES_OK;
}

static bool same_entity(const es_event_spec *e, const es_filter *f)
{
    size_t a = e->entity_id_len, b = f->entity_id_len ? f->entity_id_len : strlen(f->entity_id);
    return strcmp(e->entity_type, f->entity_type) == 0 && a == b &&
           memcmp(e->entity_id, f->entity_id, a) == 0 &&
           (e->tenant == NULL || f->tenant == NULL || strcmp(e->tenant, f->tenant) == 0);
}

/* The state was loaded at `seq`: the first event for the entity expects it. */
static void set_expectation(es_decision *d, uint64_t seq)
{
    for (size_t i = 0; i < d->count; i++)
        if (same_entity(&d->events[i], d->entity)) {
            d->events[i].expect = seq ? ES_EXPECT_SEQ : ES_EXPECT_NEW;
            d->events[i].expect_seq = seq;
            d->events[i].expect_filter = NULL; /* about the entity loaded, nothing wider */
            return;
        }
}

typedef struct evolve_call {
    const es_decider *decider;
    void *state;
    const es_decide_options *opts;
} evolve_call;

static es_status on_event(const es_event *ev, void *closure)
{
    evolve_call *c = closure;
    return c->decider->evolve(c->state, ev);
}

static es_status on_snapshot(const void *data, size_t len, void *closure)
{
    evolve_call *c = closure;
    return c->opts->snapshot_read(c->state, data, len);
}

/* The snapshot policy: load from the latest snapshot, save a new one when
 * the tail replayed is long enough. */
static es_status load_via_snapshot(es_decision *d, evolve_call *c, const es_decide_options *opts,
                                   uint64_t *seq)
{
    es_snapshot_load_result r;
    es_status s = es_load_from_snapshot(opts->snapshots, d->entity, opts->snapshot_version,
                                        on_snapshot, on_event, c, &r);
    *seq = r.last_seq;
    if (s != ES_OK || r.replayed < opts->snapshot_every)
        return s;
    es_buf b = ES_BUF_INIT;
    if (opts->snapshot_write(c->state, &b) == ES_OK)
        es_snapshot_save(opts->snapshots, d->entity, r.last_seq, opts->snapshot_version, b.data,
                         b.len); /* a cache: failing to fill it is not the command's failure */
    es_buf_free(&b);
    return ES_OK;
}

/* A conflict's retry waits a little, jittered: writers competing for one
 * entity drift apart instead of colliding again in step. */
#define RETRY_FIRST_MS 2
#define RETRY_MAX_MS   64

static es_status attempt(es_store *st, es_decision *d, const es_decider *decider, void *state,
                         const es_decide_options *opts, es_append_result *result)
{
    es_arena_reset(d->arena);
    d->count = 0;
    d->rejected = false;
    es_status s = decider->reset ? decider->reset(state) : ES_OK;
    uint64_t seq = 0;
    evolve_call c = {decider, state, opts};
    if (s == ES_OK && opts->snapshots != NULL)
        s = load_via_snapshot(d, &c, opts, &seq);
    else if (s == ES_OK)
        s = es_load(st, d->entity, NULL, on_event, &c, &seq);
    if (s == ES_OK)
        s = decider->decide(state, d);
    if (d->rejected) /* the reason again: decide may have called es_ functions since */
        return es_error(ES_ERR_ABORTED, "%s", d->reason);
    if (s != ES_OK || d->count == 0)
        return s;
    set_expectation(d, seq);
    return es_append_batch(st, d->events, d->count, result);
}

/* Whether another attempt may start after waiting `delay_ms`: within the
 * attempt count and the time budget, both when set. */
static bool may_retry(const es_decide_options *opts, int attempts, int64_t started_ms,
                      int64_t delay_ms)
{
    if (opts->max_attempts > 0 && attempts >= opts->max_attempts)
        return false;
    return opts->budget_ms == 0 || esi_monotonic_ms() + delay_ms - started_ms <= opts->budget_ms;
}

static bool valid_options(const es_decide_options *o)
{
    return o->max_attempts >= 0 && o->budget_ms >= 0 && (o->max_attempts > 0 || o->budget_ms > 0) &&
           (o->snapshots == NULL || (o->snapshot_write != NULL && o->snapshot_read != NULL));
}

es_status es_decide(es_store *st, const es_filter *entity, const es_decider *decider, void *state,
                    const es_decide_options *opts, es_append_result *result)
{
    es_decide_options defaults;
    if (opts == NULL) {
        es_decide_options_init(&defaults);
        opts = &defaults;
    }
    if (st == NULL || entity == NULL || entity->entity_type == NULL || entity->entity_id == NULL ||
        entity->event_type != NULL || decider == NULL || decider->evolve == NULL ||
        decider->decide == NULL || !valid_options(opts))
        return es_error(ES_ERR_INVALID,
                        "es_decide: store, an entity (type and id, no event type), a decider "
                        "with evolve and decide, a budget_ms or max_attempts (not negative, "
                        "not both 0), and snapshot_write/read with snapshots are required");
    es_append_result ignored;
    if (result == NULL)
        result = &ignored;
    memset(result, 0, sizeof *result);
    es_decision *d = esi_calloc(1, sizeof *d);
    if (d == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    d->entity = entity;
    es_status s = es_arena_create(DECISION_ARENA_LIMIT, &d->arena);
    esi_backoff backoff;
    esi_backoff_init(&backoff, RETRY_FIRST_MS, RETRY_MAX_MS);
    int64_t started_ms = esi_monotonic_ms();
    int attempts = 0;
    while (s == ES_OK) {
        s = attempt(st, d, decider, state, opts, result);
        attempts++;
        int64_t delay_ms = esi_backoff_next(&backoff, (unsigned)attempts);
        if (s != ES_ERR_CONFLICT || !may_retry(opts, attempts, started_ms, delay_ms))
            break;
        esi_sleep_ms(delay_ms);
        s = ES_OK;
    }
    if (s == ES_ERR_CONFLICT)
        s = es_error_code(s, es_last_error_code(),
                          "es_decide: the entity kept changing under the command (%d attempts "
                          "in %lld ms): %s",
                          attempts, (long long)(esi_monotonic_ms() - started_ms), es_last_error());
    es_arena_destroy(d->arena);
    esi_free(d);
    return s;
}
