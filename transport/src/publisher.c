/* Appends in flight. Every unit (a message or an atomic batch) takes a slot in
 * a ring of max_inflight slots; its replies come back on one wildcard inbox
 * subscription as <inbox>.<id> (the PubAck) and <inbox>.f<id> (the start of a
 * batch), so there is no per-request subscription and no lookup table: the id
 * modulo the ring size is the slot. A small thread expires units whose answer
 * does not come within the request timeout of the answers before them:
 * JetStream answers a connection's appends to a stream in order, so a unit
 * waiting behind others of ours is queued, not lost. A unit expires once its
 * own timeout has passed and the oldest unit in flight has waited a whole
 * timeout at the head (the server answered none of ours meanwhile); then
 * every unit past its own timeout expires with it, so a silent server fails
 * them all after one timeout, not one after another. */
#include "transport/publisher.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/newid.h"
#include "base/clock.h"
#include "transport/js.h"
#include "transport/msg.h"

#define TEXT_MAX 256

typedef struct slot {
    uint64_t id; /* 0: free */
    bool batch;  /* holds one of the stream's atomic-batch places */
    esi_pub_done cb;
    void *closure;
    natsMsg **msgs;
    size_t n;
    int64_t deadline_ms;
    /* While its messages are being published a unit cannot end (its
     * messages are in use): an answer that comes early — a refused batch
     * start — waits here until the sender is done. */
    bool sending;
    bool answered;
    es_status answer;
    esi_pub_result answer_r;
    char answer_text[TEXT_MAX];
} slot;

struct esi_publisher {
    const esi_conn *conn;
    int64_t timeout_ms;
    char inbox[64];
    esi_sub *sub;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a slot was freed, or the publisher is closing */
    slot *slots;
    size_t cap;
    size_t inflight;
    size_t batches;     /* atomic batches in flight */
    size_t max_batches; /* the server allows 50 per stream by default */
    uint64_t next_id;
    struct job *jobs, *jobs_tail; /* follow-up work for the worker thread */
    bool closing;
    uint64_t denials; /* esi_conn_denials() when the slots were last checked */
    uint64_t head_id;      /* the oldest unit in flight when the reaper last looked */
    int64_t head_since_ms; /* since when it has been the oldest */
    pthread_t reaper;
    bool reaper_started;
};

static void free_msgs(natsMsg **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        esi_msg_destroy(msgs[i]);
    esi_free(msgs);
}

/* Frees the slot and runs its callback outside the lock. Called with p->mu held;
 * returns with it held. */
static void complete_locked(esi_publisher *p, slot *sl, es_status s, const esi_pub_result *r,
                            const char *text)
{
    slot done = *sl;
    memset(sl, 0, sizeof *sl); /* the slot may be reused at once ... */
    if (done.batch)
        p->batches--;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
    bool kept = done.cb && done.cb(s, r, text, done.msgs, done.n, done.closure);
    pthread_mutex_lock(&p->mu);
    if (!kept) { /* ... but a flush waits for the callback to have run */
        pthread_mutex_unlock(&p->mu);
        free_msgs(done.msgs, done.n);
        pthread_mutex_lock(&p->mu);
        p->inflight--;
        pthread_cond_broadcast(&p->changed);
    }
}

void esi_publisher_finish(esi_publisher *p, natsMsg **msgs, size_t n)
{
    free_msgs(msgs, n);
    pthread_mutex_lock(&p->mu);
    p->inflight--;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
}

/* ---- follow-up work, off nats.c's threads ------------------------------ */

typedef struct job {
    struct job *next;
    void (*fn)(void *arg);
    void *arg;
} job;

void esi_publisher_defer(esi_publisher *p, void (*fn)(void *arg), void *arg)
{
    job *j = esi_malloc(sizeof *j);
    if (j == NULL) { /* no memory for a queue entry: do it here, late rather than never */
        fn(arg);
        return;
    }
    *j = (job){NULL, fn, arg};
    pthread_mutex_lock(&p->mu);
    if (p->jobs_tail)
        p->jobs_tail->next = j;
    else
        p->jobs = j;
    p->jobs_tail = j;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
}

/* Runs queued jobs; called with p->mu held, returns with it held. */
static void run_jobs_locked(esi_publisher *p)
{
    while (p->jobs != NULL) {
        job *j = p->jobs;
        p->jobs = j->next;
        if (p->jobs == NULL)
            p->jobs_tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        esi_free(j);
        pthread_mutex_lock(&p->mu);
    }
}

static uint64_t parse_actual_seq(const char *desc)
{
    const char *colon = desc ? strrchr(desc, ':') : NULL;
    return colon ? strtoull(colon + 1, NULL, 10) : 0;
}

/* The position just after `key` in data[0..len), or NULL. */
static const char *after_key(const char *data, size_t len, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; i + k <= len; i++)
        if (data[i] == key[0] && memcmp(data + i, key, k) == 0)
            return data + i + k;
    return NULL;
}

static bool read_uint(const char *p, const char *end, uint64_t *v)
{
    while (p < end && *p == ' ')
        p++;
    uint64_t n = 0;
    const char *start = p;
    for (; p < end && *p >= '0' && *p <= '9' && p - start < 20; p++)
        n = n * 10 + (uint64_t)(*p - '0');
    *v = n;
    return p > start;
}

/* A successful PubAck is small and always the same shape:
 * {"stream":"ES_x","seq":12[,"duplicate": true][,"batch":"…","count":3]}
 * Reading it without building a JSON tree keeps a pipelined append from
 * paying a dozen allocations per acknowledgement. Anything else (errors,
 * surprises) goes through jansson. */
static bool fast_puback(const char *data, size_t len, esi_pub_result *r)
{
    const char *end = data + len;
    if (len < 2 || data[0] != '{' || after_key(data, len, "\"error\"") != NULL)
        return false;
    const char *seq = after_key(data, len, "\"seq\":");
    if (seq == NULL || !read_uint(seq, end, &r->seq) || r->seq == 0)
        return false;
    uint64_t count = 1;
    const char *c = after_key(data, len, "\"count\":");
    if (c != NULL && !read_uint(c, end, &count))
        return false;
    r->count = (size_t)count;
    const char *dup = after_key(data, len, "\"duplicate\":");
    if (dup != NULL) {
        while (dup < end && *dup == ' ')
            dup++;
        r->duplicate = dup < end && *dup == 't';
    }
    return true;
}

es_status esi_puback_parse(const char *data, size_t len, esi_pub_result *r, char *text,
                          size_t text_size)
{
    memset(r, 0, sizeof *r);
    text[0] = '\0';
    if (fast_puback(data, len, r))
        return ES_OK;
    memset(r, 0, sizeof *r);
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        snprintf(text, text_size, "unreadable PubAck: %.*s", (int)(len > 80 ? 80 : len), data);
        return ES_ERR_PROTOCOL;
    }
    es_status s = ES_OK;
    json_t *err = json_object_get(j, "error");
    if (err != NULL) {
        int code = (int)json_integer_value(json_object_get(err, "code"));
        r->err_code = (int)json_integer_value(json_object_get(err, "err_code"));
        const char *desc = json_string_value(json_object_get(err, "description"));
        s = esi_js_error_status(code, r->err_code);
        if (s == ES_ERR_CONFLICT)
            r->actual_seq = parse_actual_seq(desc);
        snprintf(text, text_size, "%s (err_code %d)", desc ? desc : "error", r->err_code);
    } else {
        r->seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
        json_t *count = json_object_get(j, "count");
        r->count = count ? (size_t)json_integer_value(count) : 1;
        r->duplicate = json_is_true(json_object_get(j, "duplicate"));
        if (r->seq == 0) {
            snprintf(text, text_size, "PubAck without a sequence");
            s = ES_ERR_PROTOCOL;
        }
    }
    json_decref(j);
    return s;
}

static es_status status_reply(natsMsg *msg, char *text, size_t text_size)
{
    if (esi_msg_no_responders(msg)) {
        snprintf(text, text_size, "no responders: the store's stream is not available");
        return ES_ERR_CONNECTION;
    }
    return ES_OK;
}

static void record_answer(slot *sl, es_status s, const esi_pub_result *r, const char *text)
{
    sl->answered = true;
    sl->answer = s;
    sl->answer_r = *r;
    snprintf(sl->answer_text, sizeof sl->answer_text, "%s", text);
}

static void on_reply(natsMsg *msg, void *closure)
{
    esi_publisher *p = closure;
    const char *subj = esi_msg_subject(msg);
    const char *tok = strrchr(subj, '.');
    bool first = tok && tok[1] == 'f';
    uint64_t id = tok ? strtoull(tok + 1 + first, NULL, 10) : 0;
    char text[TEXT_MAX] = "";
    esi_pub_result r;
    memset(&r, 0, sizeof r);
    es_status s = status_reply(msg, text, sizeof text);
    const char *data = esi_msg_data(msg);
    size_t len = esi_msg_len(msg);
    if (s == ES_OK && !(first && len == 0))
        s = esi_puback_parse(data, len, &r, text, sizeof text);
    if (first && s == ES_ERR_PROTOCOL)
        s = ES_OK; /* a start acknowledgement only matters when it is an error */

    pthread_mutex_lock(&p->mu);
    slot *sl = id ? &p->slots[id % p->cap] : NULL;
    /* The PubAck ends a unit; so does a refused batch start (too many batches
     * in flight, atomic publish disabled...): its commit would only be refused
     * too, or never answered. An empty start acknowledgement is ignored. */
    if (sl != NULL && sl->id == id && (!first || s != ES_OK)) {
        if (!sl->sending)
            complete_locked(p, sl, s, &r, text);
        else if (!sl->answered)
            record_answer(sl, s, &r, text);
    } /* else: the unit timed out already; its late answer is dropped */
    pthread_mutex_unlock(&p->mu);
    esi_msg_destroy(msg);
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += ms * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Whether the server refused the publish of one of the unit's messages (a
 * permissions violation: nothing was stored — a batch is stored whole or
 * not at all — and no PubAck will come); its text into `text`. */
static bool denied(const esi_publisher *p, const slot *sl, char text[TEXT_MAX])
{
    for (size_t i = 0; i < sl->n; i++) {
        const char *subject = esi_msg_subject(sl->msgs[i]);
        if (subject != NULL &&
            esi_conn_denied_or(p->conn, subject, ES_ERR_TIMEOUT) != ES_ERR_TIMEOUT) {
            snprintf(text, TEXT_MAX, "%s", es_last_error());
            return true;
        }
    }
    return false;
}

/* Why a unit got no PubAck in time: the server refused its publish, or the
 * outcome is unknown. */
static es_status timed_out(const esi_publisher *p, const slot *sl, char text[TEXT_MAX])
{
    if (denied(p, sl, text))
        return ES_ERR_PERMISSION;
    snprintf(text, TEXT_MAX,
             "no PubAck within %" PRId64 " ms, nor for any append before it: the outcome is "
             "unknown, retrying with the same event ids is safe",
             p->timeout_ms);
    return ES_ERR_TIMEOUT;
}

/* The oldest unit in flight (the smallest id), or NULL. */
static const slot *oldest_locked(const esi_publisher *p)
{
    uint64_t first = p->next_id > p->cap ? p->next_id - p->cap : 1;
    for (uint64_t id = first; id < p->next_id; id++)
        if (p->slots[id % p->cap].id == id)
            return &p->slots[id % p->cap];
    return NULL;
}

/* Whether the server has answered none of our units for a whole timeout:
 * the oldest unit in flight, sent, has been the oldest that long. */
static bool stalled_locked(esi_publisher *p, int64_t now)
{
    const slot *head = oldest_locked(p);
    if (head == NULL)
        return false;
    if (head->id != p->head_id) {
        p->head_id = head->id;
        p->head_since_ms = now;
    }
    return !head->sending && head->deadline_ms <= now &&
           now - p->head_since_ms >= p->timeout_ms;
}

static void *reap(void *arg)
{
    esi_publisher *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!(p->closing && p->inflight == 0 && p->jobs == NULL)) {
        run_jobs_locked(p);
        int64_t now = esi_monotonic_ms();
        /* a new permissions violation: the units it refused end now, not
         * at their timeout */
        uint64_t denials = esi_conn_denials();
        bool check_denied = denials != p->denials, all_checked = true;
        bool stalled = stalled_locked(p, now);
        for (size_t i = 0; i < p->cap; i++) {
            slot *sl = &p->slots[i];
            all_checked = all_checked && !(sl->id != 0 && sl->sending);
            if (sl->id == 0 || sl->sending)
                continue;
            esi_pub_result r;
            memset(&r, 0, sizeof r);
            char text[TEXT_MAX];
            if (stalled && sl->deadline_ms <= now)
                complete_locked(p, sl, timed_out(p, sl, text), &r, text);
            else if (check_denied && denied(p, sl, text))
                complete_locked(p, sl, ES_ERR_PERMISSION, &r, text);
        }
        if (all_checked) /* else a unit still sending is checked next time */
            p->denials = denials;
        struct timespec ts;
        deadline_in(&ts, 50);
        pthread_cond_timedwait(&p->changed, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

es_status esi_publisher_create(const esi_js *js, int max_inflight, int max_batches_inflight,
                              esi_publisher **out)
{
    if (max_inflight < 1 || max_batches_inflight < 1)
        return es_error(ES_ERR_INVALID, "a publisher needs room for at least one unit");
    esi_publisher *p = esi_calloc(1, sizeof *p);
    if (p == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    p->conn = esi_js_conn(js);
    p->timeout_ms = esi_js_timeout_ms(js);
    p->denials = esi_conn_denials();
    p->cap = (size_t)max_inflight;
    p->max_batches = (size_t)max_batches_inflight;
    p->slots = esi_calloc(p->cap, sizeof *p->slots);
    p->next_id = 1;
    char id[ES_NEW_ID_LEN + 1];
    esi_new_id(id);
    snprintf(p->inbox, sizeof p->inbox, "_INBOX.%s", id);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->changed, NULL);
    char wildcard[80];
    snprintf(wildcard, sizeof wildcard, "%s.*", p->inbox);
    es_status s = p->slots ? ES_OK : es_error(ES_ERR_NOMEM, "out of memory");
    if (s == ES_OK)
        s = p->conn->ops->subscribe(p->conn->ctx, wildcard, on_reply, p, &p->sub);
    if (s == ES_OK && pthread_create(&p->reaper, NULL, reap, p) != 0)
        s = es_error(ES_ERR_NOMEM, "cannot start the publisher's timer thread");
    if (s != ES_OK) {
        esi_publisher_destroy(p);
        return s;
    }
    p->reaper_started = true;
    *out = p;
    return ES_OK;
}

void esi_publisher_destroy(esi_publisher *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
    if (p->reaper_started)
        pthread_join(p->reaper, NULL); /* returns once every unit is answered or expired */
    if (p->sub != NULL) /* unsubscribe, then wait for the delivery thread to let go of p */
        p->conn->ops->drain(p->conn->ctx, p->sub, 5000);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->mu);
    esi_free(p->slots);
    esi_free(p);
}

static void reply_subjects(const esi_publisher *p, uint64_t id, bool batch, esi_pub_ticket *t)
{
    t->id = id;
    char *r = esi_put(t->reply, p->inbox);
    *r++ = '.';
    *esi_put_u64(r, id) = '\0';
    t->first_reply[0] = '\0';
    if (batch) {
        char *f = esi_put(t->first_reply, p->inbox);
        f = esi_put(f, ".f");
        *esi_put_u64(f, id) = '\0';
    }
}

static bool window_full(const esi_publisher *p, bool batch)
{
    return p->slots[p->next_id % p->cap].id != 0 || (batch && p->batches >= p->max_batches);
}

/* Takes the next slot for a unit; called with p->mu held and room checked. */
static void take_slot_locked(esi_publisher *p, bool batch, esi_pub_done cb, void *closure,
                             esi_pub_ticket *t)
{
    uint64_t id = p->next_id++;
    slot *sl = &p->slots[id % p->cap];
    memset(sl, 0, sizeof *sl);
    sl->id = id;
    sl->batch = batch;
    p->batches += batch;
    sl->cb = cb;
    sl->closure = closure;
    /* No deadline until the messages are sent: building them is not waiting. */
    sl->deadline_ms = INT64_MAX;
    p->inflight++;
    reply_subjects(p, id, batch, t);
}

static es_status closing_error(void)
{
    return es_error(ES_ERR_STOPPED, "the store handle is being destroyed");
}

es_status esi_publisher_reserve(esi_publisher *p, bool batch, esi_pub_done cb, void *closure,
                               esi_pub_ticket *t)
{
    int64_t give_up = esi_monotonic_ms() + p->timeout_ms;
    pthread_mutex_lock(&p->mu);
    while (!p->closing && window_full(p, batch)) {
        if (esi_monotonic_ms() >= give_up) {
            size_t n = p->inflight;
            pthread_mutex_unlock(&p->mu);
            return es_error(ES_ERR_TIMEOUT,
                            "%zu appends in flight for %" PRId64
                            " ms: the server is not keeping up",
                            n, p->timeout_ms);
        }
        struct timespec ts;
        deadline_in(&ts, 20);
        pthread_cond_timedwait(&p->changed, &p->mu, &ts);
    }
    if (p->closing) {
        pthread_mutex_unlock(&p->mu);
        return closing_error();
    }
    take_slot_locked(p, batch, cb, closure, t);
    pthread_mutex_unlock(&p->mu);
    return ES_OK;
}

es_status esi_publisher_try_reserve(esi_publisher *p, bool batch, esi_pub_done cb, void *closure,
                                    esi_pub_ticket *t)
{
    pthread_mutex_lock(&p->mu);
    if (p->closing) {
        pthread_mutex_unlock(&p->mu);
        return closing_error();
    }
    if (window_full(p, batch)) {
        size_t n = p->inflight, b = p->batches;
        pthread_mutex_unlock(&p->mu);
        return es_error(ES_ERR_AGAIN, "the append window is full (%zu in flight, %zu batches)", n,
                        b);
    }
    take_slot_locked(p, batch, cb, closure, t);
    pthread_mutex_unlock(&p->mu);
    return ES_OK;
}

void esi_publisher_cancel(esi_publisher *p, const esi_pub_ticket *t)
{
    pthread_mutex_lock(&p->mu);
    slot *sl = &p->slots[t->id % p->cap];
    if (sl->id == t->id) {
        if (sl->batch)
            p->batches--;
        memset(sl, 0, sizeof *sl);
        p->inflight--;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->mu);
}

void esi_publisher_send(esi_publisher *p, const esi_pub_ticket *t, natsMsg **msgs, size_t n)
{
    pthread_mutex_lock(&p->mu);
    slot *sl = &p->slots[t->id % p->cap];
    sl->msgs = msgs;
    sl->n = n;
    sl->sending = true;
    sl->deadline_ms = esi_monotonic_ms() + p->timeout_ms;
    pthread_mutex_unlock(&p->mu);
    es_status s = ES_OK;
    for (size_t i = 0; i < n && s == ES_OK; i++)
        s = p->conn->ops->publish(p->conn->ctx, msgs[i]);
    char text[TEXT_MAX];
    if (s != ES_OK)
        snprintf(text, sizeof text, "%s", es_last_error());
    pthread_mutex_lock(&p->mu);
    sl->sending = false;
    if (sl->id == t->id) {
        if (s != ES_OK) {
            esi_pub_result r;
            memset(&r, 0, sizeof r);
            complete_locked(p, sl, s, &r, text);
        } else if (sl->answered) { /* answered while we were still sending */
            esi_pub_result r = sl->answer_r;
            snprintf(text, sizeof text, "%s", sl->answer_text);
            complete_locked(p, sl, sl->answer, &r, text);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

es_status esi_publisher_flush(esi_publisher *p, int64_t timeout_ms)
{
    int64_t give_up = esi_monotonic_ms() + timeout_ms;
    es_status s = ES_OK;
    pthread_mutex_lock(&p->mu);
    while (p->inflight > 0 && s == ES_OK) {
        if (esi_monotonic_ms() >= give_up)
            s = ES_ERR_TIMEOUT;
        struct timespec ts;
        deadline_in(&ts, 20);
        pthread_cond_timedwait(&p->changed, &p->mu, &ts);
    }
    size_t n = p->inflight;
    pthread_mutex_unlock(&p->mu);
    if (s != ES_OK)
        return es_error(s, "%zu appends still in flight after %" PRId64 " ms", n, timeout_ms);
    return ES_OK;
}

/* ---- waiting for one unit ---------------------------------------------- */

void esi_pub_waiter_init(esi_pub_waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
}

bool esi_pub_waiter_done(es_status s, const esi_pub_result *r, const char *text, natsMsg **msgs,
                        size_t n, void *closure)
{
    (void)msgs;
    (void)n;
    esi_pub_waiter *w = closure;
    pthread_mutex_lock(&w->mu);
    w->status = s;
    w->result = *r;
    snprintf(w->text, sizeof w->text, "%s", text ? text : "");
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    return false;
}

es_status esi_pub_waiter_wait(esi_pub_waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->mu); /* the reaper bounds this by the timeout */
    pthread_mutex_unlock(&w->mu);
    return w->status;
}

void esi_pub_waiter_destroy(esi_pub_waiter *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
}
