/* ES_EXPECT_EXISTS. JetStream checks that the last sequence of a subject
 * filter IS a number (Nats-Expected-Last-Subject-Sequence), never that it
 * is not 0. So the library finds the first event that matches (the entity's,
 * or the expect_filter's) and expects the last sequence of that event's own
 * subject (its entity and event type): a subject that, once it has an event,
 * keeps one, and that other writers seldom move (an entity's "opened" comes
 * once), unlike the entity's last event. When one did move it in between,
 * the server refuses, the entity still exists, and append.c resolves and
 * sends again (a bounded number of times). */
#include "expect.h"

#include <stdio.h>
#include <string.h>

#include <es/read.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "headers.h"
#include "store_impl.h"
#include "transport/scan.h"
#include "transport/msg.h"
#include "wire.h"

/* The subject one ES_EXPECT_EXISTS is checked on, as a filter. */
typedef struct slot {
    es_filter filter;
    char subject[ES_SUBJECT_MAX]; /* the first matching event's, split in place */
    char id[ES_ID_MAX + 1];
    uint64_t first_seq;
} slot;

struct esi_exists {
    size_t used;
    slot slots[];
};

bool esi_expects_existence(const es_event_spec *events, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (events[i].expect == ES_EXPECT_EXISTS)
            return true;
    return false;
}

void esi_exists_free(esi_exists *x)
{
    esi_free(x);
}

static es_status first_match(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                             void *closure)
{
    (void)msg;
    (void)stored_ns;
    slot *sl = closure;
    snprintf(sl->subject, sizeof sl->subject, "%s", subject);
    sl->first_seq = seq;
    return ES_OK;
}

/* Records event i, whose expectation subject has no event, in *missing. */
static es_status add_missing(const es_event_spec *e, size_t i, size_t n, const char *subject,
                             esi_conflicts **missing)
{
    es_status s = *missing ? ES_OK : esi_conflicts_new(n, missing);
    size_t id_len = e->entity_id_len ? e->entity_id_len : strlen(e->entity_id);
    es_append_conflict k = {.index = i,
                            .tenant = e->tenant,
                            .entity_type = e->entity_type,
                            .entity_id = e->entity_id,
                            .entity_id_len = id_len,
                            .subject = subject};
    return s == ES_OK ? esi_conflicts_add(*missing, &k) : s;
}

/* The filter of exactly the first matching event's subject. */
static es_status pin(const es_store *st, slot *sl)
{
    esi_subject_parts p;
    size_t id_len = 0;
    es_status s = esi_subject_split(sl->subject, st->name, st->config.tenancy, &p);
    if (s == ES_OK)
        s = es_id_unescape(p.id_token, strlen(p.id_token), sl->id, sizeof sl->id, &id_len);
    if (s != ES_OK)
        return s;
    sl->filter = (es_filter){.tenant = p.tenant,
                             .entity_type = p.type,
                             .entity_id = sl->id,
                             .entity_id_len = id_len,
                             .event_type = p.event};
    return ES_OK;
}

/* out[i] expects the last sequence of the subject of the first event that
 * event i's expectation covers. */
static es_status resolve_one(const es_store *st, const es_event_spec *e, size_t i, size_t n,
                             slot *sl, es_event_spec *out, esi_conflicts **missing)
{
    esi_subject subj;
    char subject[ES_SUBJECT_MAX], pinned[ES_SUBJECT_MAX];
    uint64_t last = 0;
    es_status s = esi_subject_for(st, e, &subj);
    if (s == ES_OK)
        s = esi_expect_subject(st, e, &subj, subject);
    esi_dg_request req = {.filter = subject, .start_seq = 1, .batch = 1, .max_msgs = 1};
    if (s == ES_OK)
        s = esi_subject_scan(st->js, st->stream, &req, st->opts.confined, first_match, sl, NULL);
    if (s != ES_OK)
        return s;
    if (sl->first_seq == 0)
        return add_missing(e, i, n, subject, missing);
    s = pin(st, sl);
    if (s == ES_OK)
        s = es_filter_subject(st, &sl->filter, pinned, sizeof pinned);
    if (s == ES_OK)
        s = esi_subject_last_seq(st->js, st->stream, pinned, st->opts.confined, &last);
    if (s == ES_OK && last == 0) /* gone in between (a limit, a purge): nothing matches now */
        return add_missing(e, i, n, subject, missing);
    out[i].expect = ES_EXPECT_SEQ;
    out[i].expect_seq = last;
    out[i].expect_filter = &sl->filter;
    return s;
}

static size_t count_exists(const es_event_spec *events, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += events[i].expect == ES_EXPECT_EXISTS;
    return k;
}

es_status esi_exists_resolve(const es_store *st, const es_event_spec *events, size_t n,
                             es_event_spec *out, esi_exists **x, esi_conflicts **missing)
{
    *missing = NULL;
    *x = esi_calloc(1, sizeof **x + count_exists(events, n) * sizeof(slot));
    if (*x == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    memcpy(out, events, n * sizeof *out);
    es_status s = ES_OK;
    for (size_t i = 0; i < n && s == ES_OK; i++)
        if (events[i].expect == ES_EXPECT_EXISTS)
            s = resolve_one(st, &events[i], i, n, &(*x)->slots[(*x)->used++], out, missing);
    if (s == ES_OK && *missing != NULL) {
        char which[320];
        esi_conflicts_describe(*missing, which, sizeof which);
        return es_error(ES_ERR_CONFLICT, "conflict: expected to exist, but nothing is there: %s",
                        which);
    }
    if (s != ES_OK) {
        esi_conflicts_free(*missing);
        *missing = NULL;
    }
    return s;
}

bool esi_exists_moved_on(const es_event_spec *events, const es_append_result *r)
{
    for (size_t i = 0; i < r->conflict_count; i++)
        if (events[r->conflicts[i].index].expect != ES_EXPECT_EXISTS)
            return false;
    return r->conflict_count > 0;
}
