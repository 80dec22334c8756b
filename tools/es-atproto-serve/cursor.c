/* Cursor to sequence: JetStream can start a consumer at a time, but that is
 * its own stored time and the public read API speaks in sequences; the
 * stored time of an event is es_event_stored_ns, so the first sequence at
 * or after a time is found by bisection over probes of one event each. */
#include "cursor.h"

typedef struct probe {
    uint64_t seq;
    int64_t stored_ns;
} probe;

static es_status first_event(const es_event *ev, void *closure)
{
    probe *p = closure;
    p->seq = es_event_seq(ev);
    p->stored_ns = es_event_stored_ns(ev);
    return ES_ERR_ABORTED; /* one is enough: stop the read */
}

/* The stored time of the first event at or after `seq` (INT64_MAX if none). */
static es_status time_from(es_store *st, uint64_t seq, int64_t *stored_ns)
{
    probe p = {0, INT64_MAX};
    es_read_options o;
    es_read_options_init(&o);
    o.after_seq = seq - 1;
    es_status s = es_evolve(st, NULL, &o, first_event, &p, NULL);
    if (s != ES_OK && s != ES_ERR_ABORTED)
        return s;
    *stored_ns = p.stored_ns;
    return ES_OK;
}

es_status serve_cursor_after_seq(es_store *st, bool has_cursor, int64_t cursor_us,
                                 uint64_t *after_seq)
{
    es_store_info info;
    es_status s = es_store_info_get(st, &info);
    if (s != ES_OK)
        return s;
    *after_seq = info.last_seq;
    if (!has_cursor || info.events == 0)
        return ES_OK;
    int64_t cursor_ns = cursor_us > INT64_MAX / 1000 ? INT64_MAX : cursor_us * 1000;
    if (cursor_ns > info.last_time_ns)
        return ES_OK; /* newer than every event: live */
    if (cursor_ns <= info.first_time_ns) {
        *after_seq = info.first_seq - 1; /* older than every event: all of them */
        return ES_OK;
    }
    /* the smallest m with the first event at or after m stored at or after
     * the cursor; the last event is, so m exists in [first, last] */
    uint64_t lo = info.first_seq, hi = info.last_seq;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t t;
        if ((s = time_from(st, mid, &t)) != ES_OK)
            return s;
        if (t >= cursor_ns)
            hi = mid;
        else
            lo = mid + 1;
    }
    *after_seq = lo - 1;
    return ES_OK;
}
