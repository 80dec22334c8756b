/* Appends: validate every event, build the NATS messages (subject and
 * headers as docs/wire-format.md fixes them), hand them to the publisher as
 * one unit, and turn its PubAck into an es_append_result. */
#include <es/append.h>
#include <es/hash.h>
#include <es/read.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/newid.h"
#include "base/clock.h"
#include "conflicts.h"
#include "expect.h"
#include "headers.h"
#include "payload.h"
#include "store_impl.h"
#include "transport/scan.h"
#include "transport/msg.h"
#include "transport/publisher.h"
#include "wire.h"

#define ERR_BATCH_DUPLICATE_ID 10201
#define EVENT_ID_MAX           256
#define EXISTS_ATTEMPTS        5 /* sends of an append whose existing entities move on */

void es_event_spec_init(es_event_spec *spec)
{
    memset(spec, 0, sizeof *spec);
}

static bool single_line(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static bool valid_event_id(const char *id)
{
    size_t n = 0;
    for (; id[n] != '\0'; n++)
        if ((unsigned char)id[n] <= 0x20 || (unsigned char)id[n] >= 0x7F || n >= EVENT_ID_MAX)
            return false;
    return n > 0;
}

static es_status check_spec_within(const es_store *st, const es_event_spec *e, size_t index,
                                   size_t limit);

/* An expect_filter goes with an expectation, and makes a subject filter. */
static es_status check_expect_filter(const es_store *st, const es_event_spec *e, size_t index)
{
    if (e->expect_filter == NULL)
        return ES_OK;
    if (e->expect == ES_EXPECT_ANY)
        return es_error(ES_ERR_INVALID, "event %zu: expect_filter without an expectation", index);
    char subject[ES_SUBJECT_MAX];
    es_status s = es_filter_subject(st, e->expect_filter, subject, sizeof subject);
    return s == ES_OK ? ES_OK : es_error(s, "event %zu: expect_filter: %s", index, es_last_error());
}

es_status esi_event_spec_check(const es_store *st, const es_event_spec *e, size_t index)
{
    return check_spec_within(st, e, index, esi_store_max_payload(st));
}

static es_status check_spec_within(const es_store *st, const es_event_spec *e, size_t index,
                                   size_t limit)
{
    es_status ts = esi_tenant_check(st, e->tenant, index);
    if (ts != ES_OK)
        return ts;
    if (!es_valid_entity_type(e->entity_type))
        return es_error(ES_ERR_INVALID, "event %zu: invalid entity type '%.64s'", index,
                        e->entity_type ? e->entity_type : "(null)");
    if (!es_valid_name(e->event_type))
        return es_error(ES_ERR_INVALID, "event %zu: invalid event type '%.64s'", index,
                        e->event_type ? e->event_type : "(null)");
    if (e->event_id != NULL && !valid_event_id(e->event_id))
        return es_error(ES_ERR_INVALID,
                        "event %zu: event id must be 1..%d printable ASCII bytes without spaces",
                        index, EVENT_ID_MAX);
    if (e->data == NULL && e->data_len != 0)
        return es_error(ES_ERR_INVALID, "event %zu: data is NULL but data_len is %zu", index,
                        e->data_len);
    if (e->meta_count > 0 && e->meta == NULL)
        return es_error(ES_ERR_INVALID, "event %zu: meta is NULL but meta_count is %zu", index,
                        e->meta_count);
    for (size_t i = 0; i < e->meta_count; i++)
        if (!es_valid_name(e->meta[i].key) || !single_line(e->meta[i].value))
            return es_error(ES_ERR_INVALID,
                            "event %zu: metadata entry %zu needs a [A-Za-z0-9_-]+ key and a "
                            "one-line value",
                            index, i);
    if (e->expect > ES_EXPECT_EXISTS || (e->expect == ES_EXPECT_SEQ && e->expect_seq == 0))
        return es_error(
            ES_ERR_INVALID,
            "event %zu: ES_EXPECT_SEQ needs a sequence > 0 (use ES_EXPECT_NEW for none)", index);
    es_status s = check_expect_filter(st, e, index);
    if (s != ES_OK)
        return s;
    if (e->data_len > limit)
        return es_error(ES_ERR_TOO_LARGE, "event %zu: %zu bytes of data; the limit is %zu", index,
                        e->data_len, limit);
    size_t id_len = e->entity_id_len ? e->entity_id_len : (e->entity_id ? strlen(e->entity_id) : 0);
    return esi_id_check(e->entity_id, id_len); /* escaped once, when the subject is built */
}

/* Two events of one batch with the same event id: JetStream would refuse
 * the batch as a duplicate, which reads as a retry of a stored batch. Ids
 * hashed into a table twice the batch's bound (open addressing). */
#define ID_TABLE_SIZE (2 * ES_BATCH_MAX)

static es_status check_unique_ids(const es_event_spec *events, size_t n)
{
    uint16_t table[ID_TABLE_SIZE]; /* 1 + the index of an event; 0: empty */
    memset(table, 0, sizeof table);
    for (size_t i = 0; i < n; i++) {
        const char *id = events[i].event_id;
        if (id == NULL)
            continue; /* generated: unique */
        size_t len = strlen(id);
        for (size_t h = (size_t)(es_hash64(id, len) % ID_TABLE_SIZE);; h = (h + 1) % ID_TABLE_SIZE) {
            if (table[h] == 0) {
                table[h] = (uint16_t)(i + 1);
                break;
            }
            if (strcmp(events[table[h] - 1].event_id, id) == 0)
                return es_error(ES_ERR_INVALID,
                                "event %zu: event id '%.64s' is also event %u's: the ids of a "
                                "batch must differ",
                                i, id, (unsigned)(table[h] - 1));
        }
    }
    return ES_OK;
}

/* Everything that can be refused is refused here, before anything is sent. */
static es_status check_batch(const es_store *st, const es_event_spec *events, size_t n)
{
    if (st == NULL || events == NULL || n == 0)
        return es_error(ES_ERR_INVALID, "append: store and at least one event are required");
    if (n > ES_BATCH_MAX)
        return es_error(ES_ERR_TOO_LARGE,
                        "a batch holds at most %d events, not %zu (it is never split silently)",
                        ES_BATCH_MAX, n);
    size_t limit = esi_store_max_payload(st);
    for (size_t i = 0; i < n; i++) {
        es_status s = check_spec_within(st, &events[i], i, limit);
        if (s != ES_OK)
            return s;
    }
    es_status s = n > 1 ? check_unique_ids(events, n) : ES_OK;
    return s == ES_OK ? esi_payloads_check(st, events, n) : s; /* the costliest check, last */
}

static es_status build_msg(const es_store *st, const es_event_spec *e, const char *reply,
                           es_sealed *sealed, natsMsg **out)
{
    esi_subject subj;
    es_status s = esi_subject_for(st, e, &subj);
    if (s != ES_OK)
        return s;
    char generated[ES_NEW_ID_LEN + 1];
    const char *id = e->event_id;
    if (id == NULL) {
        esi_new_id(generated);
        id = generated;
    }
    const void *data = e->data;
    size_t len = e->data_len;
    if (st->env != NULL) { /* compress, encrypt: bound to this subject and id */
        s = es_envelope_seal(st->env, &subj.env, id, e->schema, data, len, sealed);
        if (s != ES_OK)
            return s;
        data = sealed->data;
        len = sealed->len;
    }
    natsMsg *m = NULL;
    s = esi_msg_create(subj.full, reply, data, len, &m);
    if (s != ES_OK)
        return s;
    s = esi_headers_set(st, e, id, &subj, st->env ? sealed : NULL, m);
    if (s != ES_OK) {
        esi_msg_destroy(m);
        return s;
    }
    *out = m;
    return ES_OK;
}

static es_status set_batch_headers(natsMsg *m, const char *batch_id, size_t i, size_t n)
{
    char seq[24];
    *esi_put_u64(seq, i + 1) = '\0';
    es_status s = esi_msg_header_set(m, ES_HDR_BATCH_ID, batch_id);
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_BATCH_SEQ, seq);
    if (s == ES_OK && i + 1 == n)
        s = esi_msg_header_set(m, ES_HDR_BATCH_COMMIT, "1");
    return s;
}

/* The data was checked against the limit; the message the server counts
 * holds its headers too (and the envelope's sealed data): an event that
 * fits only without them is refused here, not by nats.c or the server. */
static es_status check_wire_size(natsMsg *m, size_t index, size_t limit)
{
    size_t size = 0;
    es_status s = esi_msg_wire_size(m, &size);
    if (s == ES_OK && size > limit)
        s = es_error(ES_ERR_TOO_LARGE,
                     "event %zu: %zu bytes with its headers (%zu of data); the limit is %zu", index,
                     size, esi_msg_len(m), limit);
    return s;
}

/* The messages of one unit: a single event plainly; several as an atomic
 * batch (first with a reply to learn the batch started, last committing). */
static es_status build_unit(const es_store *st, const es_event_spec *events, size_t n,
                            const esi_pub_ticket *t, natsMsg ***out)
{
    natsMsg **msgs = esi_calloc(n, sizeof *msgs);
    if (msgs == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    char batch_id[ES_NEW_ID_LEN + 1];
    if (n > 1)
        esi_new_id(batch_id);
    es_sealed sealed = ES_SEALED_INIT; /* messages copy their data: one serves the whole unit */
    es_status s = ES_OK;
    size_t limit = esi_store_max_payload(st);
    for (size_t i = 0; i < n && s == ES_OK; i++) {
        const char *reply = i + 1 == n ? t->reply : i == 0 ? t->first_reply : NULL;
        s = build_msg(st, &events[i], reply, &sealed, &msgs[i]);
        if (s == ES_OK && n > 1)
            s = set_batch_headers(msgs[i], batch_id, i, n);
        if (s == ES_OK)
            s = check_wire_size(msgs[i], i, limit);
    }
    es_sealed_free(&sealed);
    if (s != ES_OK) {
        for (size_t i = 0; i < n; i++)
            esi_msg_destroy(msgs[i]);
        esi_free(msgs);
        return s;
    }
    *out = msgs;
    return ES_OK;
}

/* ---- outcome ---------------------------------------------------------- */

static void result_from_ack(const esi_pub_result *r, size_t n, es_append_result *out)
{
    memset(out, 0, sizeof *out);
    out->count = n;
    out->last_seq = r->seq;
    out->first_seq = r->seq >= n ? r->seq - (n - 1) : 0;
    out->duplicate = r->duplicate;
    out->actual_seq = r->actual_seq;
}

/* ---- duplicates --------------------------------------------------------
 * JetStream checks a message's expectations before its id, and refuses a
 * batch holding an id it has seen without saying where it was stored. So
 * when an append with ids of the caller's own is refused, look for those ids
 * among the events stored on the same subjects within the duplicate window
 * (that is all the server deduplicates against anyway). */

#define CLOCK_SKEW_MARGIN_NS (60LL * 1000000000LL)
#define DUPLICATE_SCAN_MAX   100000

typedef struct id_search {
    const char *id;
    uint64_t found;
} id_search;

static es_status match_id(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                          void *closure)
{
    (void)subject;
    (void)stored_ns;
    id_search *q = closure;
    const char *id = esi_msg_header(msg, ES_HDR_MSG_ID);
    if (id != NULL && strcmp(id, q->id) == 0) {
        q->found = seq;
        return ES_ERR_ABORTED; /* found: stop reading */
    }
    return ES_OK;
}

/* The sequence at which the message's id was stored on its subject, or 0. */
static es_status stored_seq_of(const es_store *st, natsMsg *m, uint64_t *seq)
{
    *seq = 0;
    id_search q = {esi_msg_header(m, ES_HDR_MSG_ID), 0};
    if (q.id == NULL)
        return ES_OK;
    esi_dg_request req = {.filter = esi_msg_subject(m),
                          .start_time_ns =
                              esi_now_ns() - st->config.duplicate_window_ns - CLOCK_SKEW_MARGIN_NS,
                          .batch = 256,
                          .max_msgs = DUPLICATE_SCAN_MAX};
    if (st->opts.confined) { /* a consumer starts from a sequence: the subject's events through */
        req.start_time_ns = 0;
        req.start_seq = 1;
        req.max_msgs = 0;
    }
    es_status s = esi_subject_scan(st->js, st->stream, &req, st->opts.confined, match_id, &q, NULL);
    if (s != ES_OK && s != ES_ERR_ABORTED)
        return s;
    *seq = q.found;
    return ES_OK;
}

/* ES_OK with a duplicate result when every message was stored before;
 * ES_ERR_NOT_FOUND when none was; ES_ERR_DUPLICATE when only some were. */
static es_status find_duplicates(const es_store *st, natsMsg **msgs, size_t n,
                                 es_append_result *out)
{
    uint64_t first = 0, last = 0;
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq;
        es_status s = stored_seq_of(st, msgs[i], &seq);
        if (s != ES_OK)
            return s;
        if (seq == 0)
            continue;
        found++;
        if (first == 0 || seq < first)
            first = seq;
        if (seq > last)
            last = seq;
    }
    if (found == 0)
        return ES_ERR_NOT_FOUND;
    if (found < n)
        return es_error(ES_ERR_DUPLICATE,
                        "batch refused: %zu of its %zu event ids were stored before; use fresh "
                        "ids for new events",
                        found, n);
    memset(out, 0, sizeof *out);
    out->first_seq = first;
    out->last_seq = last;
    out->count = n;
    out->duplicate = true;
    return ES_OK;
}

/* A conflict's status and text, with every expectation that fails in
 * *conflicts (NULL when they could not be looked up: the text says why). */
static es_status conflict(const es_store *st, const esi_pub_result *r, const char *text,
                          natsMsg **msgs, size_t n, esi_conflicts **conflicts)
{
    es_status s = esi_conflicts_find(st, msgs, n, r->actual_seq, conflicts);
    if (s != ES_OK)
        return es_error_code(ES_ERR_CONFLICT, r->err_code,
                             "conflict: %s (the failing entities could not be looked up: %s)", text,
                             es_last_error());
    if (n == 1)
        return es_error_code(ES_ERR_CONFLICT, r->err_code,
                             "conflict: %s; the entity's last sequence is %" PRIu64, text,
                             r->actual_seq);
    char which[320];
    esi_conflicts_describe(*conflicts, which, sizeof which);
    return es_error_code(ES_ERR_CONFLICT, r->err_code, "conflict: %s; %s", text,
                         which[0] ? which
                                  : "(the store has moved on since: no expectation fails now)");
}

/* Turns a unit's outcome into the append's status and result (and the
 * thread's last error); on a conflict, *conflicts lists what failed. */
static es_status conclude(const es_store *st, bool own_ids, es_status s, const esi_pub_result *r,
                          const char *text, natsMsg **msgs, size_t n, es_append_result *out,
                          esi_conflicts **conflicts)
{
    *conflicts = NULL;
    result_from_ack(r, n, out);
    if (s == ES_OK) {
        if (n > 1 && r->count != n)
            return es_error(ES_ERR_PROTOCOL, "batch of %zu acknowledged with count %zu", n,
                            r->count);
        es_error_clear();
        return ES_OK;
    }
    /* A retry of an append that was stored already is refused by the server
     * as a duplicate batch or, when it carried expectations, as a conflict. */
    if ((r->err_code == ERR_BATCH_DUPLICATE_ID && n > 1) || (s == ES_ERR_CONFLICT && own_ids)) {
        es_status d = find_duplicates(st, msgs, n, out);
        if (d != ES_ERR_NOT_FOUND)
            return d;
        result_from_ack(r, n, out);
    }
    if (s == ES_ERR_CONFLICT)
        return conflict(st, r, text, msgs, n, conflicts);
    return es_error_code(s, r->err_code, "append: %s", text);
}

/* Only ids the caller chose can have been stored before. */
static bool has_own_ids(const es_event_spec *events, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (events[i].event_id == NULL)
            return false;
    return true;
}

/* An outcome that may hide a retry of a stored append (find_duplicates), or
 * a conflict whose failing expectations are looked up (conflicts.c): it
 * needs requests, so it never runs on nats.c's delivery thread. */
static bool needs_scan(es_status s, const esi_pub_result *r, size_t n)
{
    return (r->err_code == ERR_BATCH_DUPLICATE_ID && n > 1) || s == ES_ERR_CONFLICT;
}

/* A unit's raw outcome, kept for follow-up on another thread. */
typedef struct outcome {
    es_status status;
    esi_pub_result r;
    char text[256];
    natsMsg **msgs;
    size_t n;
} outcome;

static void keep_outcome(outcome *o, es_status s, const esi_pub_result *r, const char *text,
                         natsMsg **msgs, size_t n)
{
    o->status = s;
    o->r = *r;
    snprintf(o->text, sizeof o->text, "%s", text ? text : "");
    o->msgs = msgs;
    o->n = n;
}

/* ---- synchronous ------------------------------------------------------ */

typedef struct sync_call {
    esi_pub_waiter waiter;
    const es_store *st;
    bool own_ids;
    es_append_result *out;
    es_status status;
    outcome kept; /* kept.msgs != NULL: conclude on the caller's thread */
} sync_call;

static bool sync_done(es_status s, const esi_pub_result *r, const char *text, natsMsg **msgs,
                      size_t n, void *closure)
{
    sync_call *c = closure;
    bool keep = needs_scan(s, r, n);
    esi_conflicts *none;
    if (keep)
        keep_outcome(&c->kept, s, r, text, msgs, n);
    else
        c->status = conclude(c->st, c->own_ids, s, r, text, msgs, n, c->out, &none);
    /* The error text and code live in this thread's last error: carry them over. */
    char copy[256];
    snprintf(copy, sizeof copy, "%s", es_last_error());
    esi_pub_result echo = *r;
    echo.err_code = es_last_error_code();
    esi_pub_waiter_done(c->status, &echo, copy, msgs, n, &c->waiter);
    return keep;
}

/* Builds and sends one unit. `wait`: wait for room in the window (up to the
 * request timeout); else ES_ERR_AGAIN at once when it is full. */
static es_status submit(es_store *st, const es_event_spec *events, size_t n, bool wait,
                        esi_pub_done cb, void *closure)
{
    esi_pub_ticket t;
    es_status s = wait ? esi_publisher_reserve(st->pub, n > 1, cb, closure, &t)
                       : esi_publisher_try_reserve(st->pub, n > 1, cb, closure, &t);
    if (s != ES_OK)
        return s;
    natsMsg **msgs = NULL;
    s = build_unit(st, events, n, &t, &msgs);
    if (s != ES_OK) {
        esi_publisher_cancel(st->pub, &t);
        return s;
    }
    esi_publisher_send(st->pub, &t, msgs, n);
    return ES_OK;
}

static es_status send_sync_once(es_store *store, const es_event_spec *events, size_t n,
                                es_append_result *result)
{
    es_status s;
    sync_call c = {.st = store, .own_ids = has_own_ids(events, n), .out = result};
    esi_pub_waiter_init(&c.waiter);
    s = submit(store, events, n, true, sync_done, &c);
    if (s == ES_OK)
        s = esi_pub_waiter_wait(&c.waiter);
    esi_pub_waiter_destroy(&c.waiter);
    if (c.kept.msgs != NULL) { /* a possible retry, a conflict: look at the store from here */
        esi_conflicts *conflicts;
        s = conclude(store, c.own_ids, c.kept.status, &c.kept.r, c.kept.text, c.kept.msgs, c.kept.n,
                     c.out, &conflicts);
        esi_publisher_finish(store->pub, c.kept.msgs, c.kept.n);
        esi_conflicts_keep(conflicts); /* the result points into them */
        esi_conflicts_to_result(conflicts, c.out);
        return s;
    }
    if (s != ES_OK && c.waiter.done) /* the reply thread set its own last error: repeat it */
        return es_error_code(s, c.waiter.result.err_code, "%s", c.waiter.text);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

typedef struct sync_send {
    es_store *store;
    const es_event_spec *events;
    size_t n;
    es_append_result *result;
} sync_send;

static es_status send_sync_attempt(void *closure)
{
    sync_send *a = closure;
    return send_sync_once(a->store, a->events, a->n, a->result);
}

/* One unit, sent again while the answer is "no responders": no server had
 * the stream's subjects, so nothing was stored. It happens on a cluster
 * right after a store is made, until the stream leader's interest has
 * reached the server of this connection; sent again with backoff within
 * the request timeout (a store that is gone still fails after it). */
static es_status send_sync(es_store *store, const es_event_spec *events, size_t n,
                           es_append_result *result)
{
    sync_send a = {store, events, n, result};
    return esi_js_retry_for(esi_js_timeout_ms(store->js), esi_pub_no_responders,
                            send_sync_attempt, &a);
}

/* Sends events whose ES_EXPECT_EXISTS are resolved into sequences again
 * while a conflict shows only that those entities moved on (expect.c). */
static es_status send_expecting_existence(es_store *store, const es_event_spec *events, size_t n,
                                          es_append_result *result)
{
    es_event_spec *resolved = esi_malloc(n * sizeof *resolved);
    if (resolved == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status s = ES_OK;
    for (int attempt = 1; attempt <= EXISTS_ATTEMPTS; attempt++) {
        esi_conflicts *missing = NULL;
        esi_exists *x = NULL;
        s = esi_exists_resolve(store, events, n, resolved, &x, &missing);
        if (s == ES_OK)
            s = send_sync(store, resolved, n, result);
        esi_exists_free(x);
        if (missing != NULL) { /* refused before sending */
            esi_conflicts_keep(missing);
            esi_conflicts_to_result(missing, result);
        }
        if (s != ES_ERR_CONFLICT || missing != NULL || !esi_exists_moved_on(events, result))
            break;
    }
    esi_free(resolved);
    return s;
}

static es_status append_sync(es_store *store, const es_event_spec *events, size_t n,
                             es_append_result *result)
{
    es_status s = check_batch(store, events, n);
    if (s != ES_OK)
        return s;
    if (esi_expects_existence(events, n))
        return send_expecting_existence(store, events, n, result);
    return send_sync(store, events, n, result);
}

/* A result's error fields: the thread's last error, which the synchronous
 * path has just set (or cleared). */
static void set_result_error(es_status s, es_append_result *out)
{
    out->err_code = s == ES_OK ? 0 : es_last_error_code();
    out->error = s == ES_OK ? "" : es_last_error();
}

es_status es_append_batch(es_store *store, const es_event_spec *events, size_t n,
                          es_append_result *result)
{
    es_append_result ignored;
    es_append_result *out = result ? result : &ignored;
    memset(out, 0, sizeof *out);
    esi_conflicts_keep(NULL); /* the last append's are no longer pointed to */
    es_status s = append_sync(store, events, n, out);
    set_result_error(s, out);
    return s;
}

es_status es_append(es_store *store, const es_event_spec *event, es_append_result *result)
{
    return es_append_batch(store, event, 1, result);
}

/* ---- asynchronous ----------------------------------------------------- */

typedef struct async_call {
    const es_store *st;
    bool own_ids;
    es_append_cb cb;
    void *closure;
    outcome kept;
} async_call;

static void finish_async(async_call *c, es_status s, const esi_pub_result *r, const char *text,
                         natsMsg **msgs, size_t n)
{
    es_append_result out;
    esi_conflicts *conflicts;
    s = conclude(c->st, c->own_ids, s, r, text, msgs, n, &out, &conflicts);
    set_result_error(s, &out); /* conclude set this thread's last error: hand it over */
    esi_conflicts_to_result(conflicts, &out);
    c->cb(s, &out, c->closure);
    esi_conflicts_free(conflicts);
}

/* On the publisher's thread: the duplicate scan, then the user's callback. */
static void async_followup(void *arg)
{
    async_call *c = arg;
    outcome *o = &c->kept;
    finish_async(c, o->status, &o->r, o->text, o->msgs, o->n);
    esi_publisher_finish(c->st->pub, o->msgs, o->n);
    esi_free(c);
}

static bool async_done(es_status s, const esi_pub_result *r, const char *text, natsMsg **msgs,
                       size_t n, void *closure)
{
    async_call *c = closure;
    if (needs_scan(s, r, n)) {
        keep_outcome(&c->kept, s, r, text, msgs, n);
        esi_publisher_defer(c->st->pub, async_followup, c);
        return true;
    }
    finish_async(c, s, r, text, msgs, n);
    esi_free(c);
    return false;
}

static es_status append_async(es_store *store, const es_event_spec *events, size_t n, bool wait,
                              es_append_cb cb, void *closure)
{
    if (cb == NULL)
        return es_error(ES_ERR_INVALID, "asynchronous append: a callback is required");
    es_status s = check_batch(store, events, n);
    if (s != ES_OK)
        return s;
    if (esi_expects_existence(events, n)) /* looked up, maybe sent again: not in a callback */
        return es_error(ES_ERR_INVALID, "ES_EXPECT_EXISTS needs a synchronous append "
                                        "(es_append, es_append_batch)");
    async_call *c = esi_calloc(1, sizeof *c);
    if (c == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    c->st = store;
    c->own_ids = has_own_ids(events, n);
    c->cb = cb;
    c->closure = closure;
    s = submit(store, events, n, wait, async_done, c);
    if (s != ES_OK)
        esi_free(c);
    return s;
}

es_status es_append_batch_async(es_store *store, const es_event_spec *events, size_t n,
                                es_append_cb cb, void *closure)
{
    return append_async(store, events, n, true, cb, closure);
}

es_status es_append_batch_try_async(es_store *store, const es_event_spec *events, size_t n,
                                    es_append_cb cb, void *closure)
{
    return append_async(store, events, n, false, cb, closure);
}

/* ---- unacknowledged ---------------------------------------------------- */

es_status es_append_unacked(es_store *store, const es_event_spec *events, size_t n)
{
    es_status s = check_batch(store, events, n);
    for (size_t i = 0; s == ES_OK && i < n; i++)
        if (events[i].expect != ES_EXPECT_ANY) /* nobody would hear that it failed */
            s = es_error(ES_ERR_INVALID, "event %zu: an unacknowledged append takes no "
                                         "expectation",
                         i);
    if (s != ES_OK)
        return s;
    const esi_conn *conn = esi_js_conn(store->js);
    es_sealed sealed = ES_SEALED_INIT;
    for (size_t i = 0; s == ES_OK && i < n; i++) {
        natsMsg *m = NULL;
        s = build_msg(store, &events[i], NULL, &sealed, &m);
        if (s == ES_OK)
            s = conn->ops->publish(conn->ctx, m);
        esi_msg_destroy(m);
    }
    es_sealed_free(&sealed);
    return s;
}

es_status es_append_flush(es_store *store, int64_t timeout_ms)
{
    if (store == NULL)
        return es_error(ES_ERR_INVALID, "store is NULL");
    return esi_publisher_flush(store->pub, timeout_ms);
}
