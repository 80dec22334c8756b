/* evolve (ordered consumer) and load (batched direct get). */
#include <es/read.h>

#include <stdio.h>
#include <string.h>

#include "transport/consumer.h"
#include "transport/directget.h"
#include "event_impl.h"
#include "base/internal.h"
#include "store_impl.h"
#include "transport/msg.h"
#include "wire.h"

#define LOAD_BATCH          256
#define EVOLVE_HEARTBEAT_MS 2000
#define EVOLVE_WAIT_MS      1000

void es_filter_init(es_filter *f)
{
    memset(f, 0, sizeof *f);
}

static es_status check_filter_name(const char *what, const char *v)
{
    if (v != NULL && !es_valid_name(v))
        return es_error(ES_ERR_INVALID, "filter: invalid %s '%.64s'", what, v);
    return ES_OK;
}

static es_status check_filter(const es_store *st, const es_filter *f)
{
    if (f->tenant != NULL && !st->config.tenancy)
        return es_error(ES_ERR_INVALID, "filter: store '%s' has no tenancy", st->name);
    es_status s = check_filter_name("tenant", f->tenant);
    if (s == ES_OK)
        s = check_filter_name("entity type", f->entity_type);
    if (s == ES_OK)
        s = check_filter_name("event type", f->event_type);
    return s;
}

es_status es_filter_subject(const es_store *st, const es_filter *f, char *out, size_t out_size)
{
    es_filter any;
    if (f == NULL) {
        es_filter_init(&any);
        f = &any;
    }
    if (st == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_filter_subject: store and out are required");
    es_status s = check_filter(st, f);
    char token[ES_ID_TOKEN_MAX] = "*";
    if (s == ES_OK && f->entity_id != NULL) {
        size_t len = f->entity_id_len ? f->entity_id_len : strlen(f->entity_id);
        s = es_id_escape(f->entity_id, len, token, sizeof token, NULL);
    }
    if (s != ES_OK)
        return s;
    /* Trailing wildcards collapse into '>' (every event subject has the same
     * number of tokens, so it matches the same events): JetStream serves a
     * consumer whose filter covers the whole stream much faster. */
    const char *parts[4] = {f->tenant, f->entity_type, f->entity_id ? token : NULL, f->event_type};
    int first = st->config.tenancy ? 0 : 1, last = 3;
    while (last >= first && parts[last] == NULL)
        last--;
    int n = snprintf(out, out_size, "$ES.%s", st->name);
    for (int i = first; i <= last && n > 0 && (size_t)n < out_size; i++)
        n += snprintf(out + n, out_size - (size_t)n, ".%s", parts[i] ? parts[i] : "*");
    if (n > 0 && (size_t)n < out_size && last < 3)
        n += snprintf(out + n, out_size - (size_t)n, ".>");
    if (n < 0 || (size_t)n >= out_size)
        return es_error(ES_ERR_LIMIT, "filter subject does not fit %zu bytes", out_size);
    return ES_OK;
}

static es_status prepare(es_store *st, const es_filter *f, const es_read_options *o, es_event_cb cb,
                         char *subject, size_t size)
{
    if (st == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "read: store and callback are required");
    if (o != NULL && o->up_to_seq != 0 && o->up_to_seq <= o->after_seq)
        return es_error(ES_ERR_INVALID, "read: up_to_seq must be above after_seq");
    return es_filter_subject(st, f, subject, size);
}

/* ---- evolve ------------------------------------------------------------ */

es_status es_evolve(es_store *st, const es_filter *f, const es_read_options *o, es_event_cb cb,
                    void *closure, uint64_t *last_seq)
{
    char subject[ES_SUBJECT_MAX];
    es_read_options none = {0, 0};
    if (o == NULL)
        o = &none;
    if (last_seq)
        *last_seq = 0;
    es_status s = prepare(st, f, o, cb, subject, sizeof subject);
    if (s != ES_OK)
        return s;
    esi_oc *oc = NULL;
    uint64_t pending = 0;
    s = esi_oc_create(st->js, st->stream, subject, o->after_seq + 1, EVOLVE_HEARTBEAT_MS, &oc, &pending);
    es_event ev;
    memset(&ev, 0, sizeof ev);
    /* Caught up when the consumer has nothing pending: known at creation for
     * an empty result, then from each delivery's pending count. */
    while (s == ES_OK && pending > 0) {
        esi_oc_msg m;
        s = esi_oc_next(oc, EVOLVE_WAIT_MS * 10, &m);
        if (s == ES_ERR_TIMEOUT)
            s = es_error(ES_ERR_TIMEOUT, "evolve: no delivery for %d ms with %llu pending",
                         EVOLVE_WAIT_MS * 10, (unsigned long long)pending);
        if (s != ES_OK)
            break;
        pending = m.pending;
        if (o->up_to_seq && m.seq > o->up_to_seq) {
            esi_msg_destroy(m.msg);
            break;
        }
        esi_event_wrap(&ev, st, m.msg, esi_msg_subject(m.msg), m.seq, m.stored_ns);
        bool deliver = esi_event_well_formed(&ev);
        s = deliver ? cb(&ev, closure) : ES_OK;
        esi_event_clear(&ev);
        esi_msg_destroy(m.msg);
        if (s != ES_OK)
            break;
        if (deliver && last_seq)
            *last_seq = m.seq;
        if (o->up_to_seq && m.seq >= o->up_to_seq)
            break;
    }
    esi_oc_destroy(oc);
    esi_event_release(&ev);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

/* ---- load -------------------------------------------------------------- */

typedef struct load_call {
    es_store *st;
    es_event_cb cb;
    void *closure;
    uint64_t last_seq; /* last sequence cb accepted (read.h: the resume point) */
    es_event ev;
} load_call;

static es_status on_direct(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                           void *closure)
{
    load_call *c = closure;
    esi_event_wrap(&c->ev, c->st, msg, subject, seq, stored_ns);
    es_status s = ES_OK;
    if (esi_event_well_formed(&c->ev)) {
        s = c->cb(&c->ev, c->closure);
        if (s == ES_OK)
            c->last_seq = seq;
    }
    esi_event_clear(&c->ev);
    return s;
}

es_status es_load(es_store *st, const es_filter *f, const es_read_options *o, es_event_cb cb,
                  void *closure, uint64_t *last_seq)
{
    char subject[ES_SUBJECT_MAX];
    es_read_options none = {0, 0};
    if (o == NULL)
        o = &none;
    if (last_seq)
        *last_seq = 0;
    if (f == NULL || f->entity_type == NULL || f->entity_id == NULL)
        return es_error(ES_ERR_INVALID, "es_load: the filter must name an entity type and id");
    es_status s = prepare(st, f, o, cb, subject, sizeof subject);
    if (s != ES_OK)
        return s;
    load_call c = {.st = st, .cb = cb, .closure = closure};
    esi_dg_request req = {.filter = subject,
                         .start_seq = o->after_seq + 1,
                         .up_to_seq = o->up_to_seq,
                         .batch = LOAD_BATCH};
    s = esi_direct_get(st->js, st->stream, &req, on_direct, &c, NULL);
    esi_event_release(&c.ev);
    if (last_seq)
        *last_seq = c.last_seq;
    if (s == ES_OK)
        es_error_clear();
    return s;
}
