/* A scripted NATS server in memory (fake_conn.h). One lock guards the whole
 * fake and one condition variable tells every waiter that something changed:
 * tests are small, and simple beats fast here. The fake's own memory comes
 * from libc, not from the library's allocator, so that out-of-memory tests
 * count the library's allocations only. */
#include "fake_conn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "transport/js.h"
#include "transport/msg.h"

#define DEFAULT_MAX_PAYLOAD (1024 * 1024)
#define DRAIN_ON_CLOSE_MS   5000

typedef struct queued {
    struct queued *next;
    natsMsg *m;
    int64_t due_ms; /* timer entries only */
} queued;

struct esi_sub {
    fake_conn *f;
    esi_sub *next; /* in f->subs while it has interest */
    char *subject;
    esi_msg_handler cb; /* asynchronous only */
    void *closure;
    queued *head, *tail;
    size_t pending;
    int64_t pending_bytes;
    int max_msgs; /* synchronous: what may wait before messages are dropped */
    int64_t max_bytes;
    bool stopped; /* no more messages will come */
    bool busy;    /* its handler is running */
    bool thread_done;
    pthread_t thread;
};

struct fake_conn {
    pthread_mutex_t mu;
    pthread_cond_t changed; /* on CLOCK_MONOTONIC */
    fake_handler handler;
    void *closure;
    esi_sub *subs;
    natsMsg **log;
    size_t nlog, caplog;
    queued *timers; /* by due time */
    pthread_t timer;
    bool closing;
    unsigned fail_times;
    es_status fail_status;
    int64_t max_payload;
    uint64_t handled, dropped, inboxes;
};

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on f->changed until deadline_ms; false when it has passed. */
static bool wait_until(fake_conn *f, int64_t deadline_ms)
{
    if (now_ms() >= deadline_ms)
        return false;
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(&f->changed, &f->mu, &ts);
    return true;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "fake_conn: out of memory\n");
        abort();
    }
    return p;
}

bool fake_subject_matches(const char *pattern, const char *subject)
{
    for (;;) {
        const char *pe = strchr(pattern, '.'), *se = strchr(subject, '.');
        size_t pn = pe ? (size_t)(pe - pattern) : strlen(pattern);
        size_t sn = se ? (size_t)(se - subject) : strlen(subject);
        if (pn == 1 && pattern[0] == '>' && pe == NULL)
            return sn > 0;
        if (sn == 0 ||
            !((pn == 1 && pattern[0] == '*') || (pn == sn && memcmp(pattern, subject, pn) == 0)))
            return false;
        if (pe == NULL || se == NULL)
            return pe == NULL && se == NULL;
        pattern = pe + 1;
        subject = se + 1;
    }
}

static es_status copy_headers(natsMsg *from, natsMsg *to)
{
    const char **keys = NULL;
    int n = 0;
    es_status s = esi_msg_header_keys(from, &keys, &n);
    for (int i = 0; i < n && s == ES_OK; i++) {
        const char **values = NULL;
        int nv = 0;
        s = esi_msg_header_values(from, keys[i], &values, &nv);
        for (int j = 0; j < nv && s == ES_OK; j++)
            s = esi_msg_header_add(to, keys[i], values[j]);
        esi_free_foreign(values);
    }
    esi_free_foreign(keys);
    return s;
}

es_status fake_msg_copy_as(natsMsg *m, const char *subject, const char *reply, natsMsg **out)
{
    natsMsg *c = NULL;
    es_status s = esi_msg_create(subject, reply, esi_msg_data(m), esi_msg_len(m), &c);
    if (s == ES_OK)
        s = copy_headers(m, c);
    if (s != ES_OK) {
        esi_msg_destroy(c);
        c = NULL;
    }
    *out = c;
    return s;
}

es_status fake_msg_copy(natsMsg *m, natsMsg **out)
{
    const char *reply = esi_msg_reply(m);
    return fake_msg_copy_as(m, esi_msg_subject(m), reply && reply[0] ? reply : NULL, out);
}

static natsMsg *must_copy(natsMsg *m)
{
    natsMsg *c = NULL;
    if (fake_msg_copy(m, &c) != ES_OK) {
        fprintf(stderr, "fake_conn: cannot copy a message: %s\n", es_last_error());
        abort();
    }
    return c;
}

static void free_queue(queued *q)
{
    while (q != NULL) {
        queued *next = q->next;
        esi_msg_destroy(q->m);
        free(q);
        q = next;
    }
}

/* ---- routing -------------------------------------------------------------- */

static void enqueue(esi_sub *sub, natsMsg *m)
{
    int64_t bytes = (int64_t)esi_msg_len(m);
    if (sub->cb == NULL && sub->max_msgs > 0 &&
        ((int)sub->pending >= sub->max_msgs ||
         (sub->max_bytes > 0 && sub->pending_bytes + bytes > sub->max_bytes))) {
        sub->f->dropped++; /* a slow consumer */
        return;
    }
    queued *q = xcalloc(1, sizeof *q);
    q->m = must_copy(m);
    if (sub->tail)
        sub->tail->next = q;
    else
        sub->head = q;
    sub->tail = q;
    sub->pending++;
    sub->pending_bytes += bytes;
}

static natsMsg *dequeue(esi_sub *sub)
{
    queued *q = sub->head;
    sub->head = q->next;
    if (sub->head == NULL)
        sub->tail = NULL;
    sub->pending--;
    natsMsg *m = q->m;
    sub->pending_bytes -= (int64_t)esi_msg_len(m);
    free(q);
    return m;
}

/* Copies `m` to every subscription with interest in its subject. Called
 * with f->mu held. */
static void route_locked(fake_conn *f, natsMsg *m)
{
    for (esi_sub *sub = f->subs; sub != NULL; sub = sub->next)
        if (fake_subject_matches(sub->subject, esi_msg_subject(m)))
            enqueue(sub, m);
    pthread_cond_broadcast(&f->changed);
}

void fake_conn_deliver(fake_conn *f, natsMsg *m)
{
    pthread_mutex_lock(&f->mu);
    route_locked(f, m);
    pthread_mutex_unlock(&f->mu);
    esi_msg_destroy(m);
}

void fake_conn_deliver_after(fake_conn *f, int64_t delay_ms, natsMsg *m)
{
    queued *t = xcalloc(1, sizeof *t);
    t->m = m;
    t->due_ms = now_ms() + delay_ms;
    pthread_mutex_lock(&f->mu);
    queued **at = &f->timers;
    while (*at != NULL && (*at)->due_ms <= t->due_ms)
        at = &(*at)->next;
    t->next = *at;
    *at = t;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->mu);
}

static void *run_timers(void *arg)
{
    fake_conn *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->closing) {
        queued *t = f->timers;
        if (t == NULL)
            pthread_cond_wait(&f->changed, &f->mu);
        else if (t->due_ms <= now_ms()) {
            f->timers = t->next;
            route_locked(f, t->m);
            esi_msg_destroy(t->m);
            free(t);
        } else
            wait_until(f, t->due_ms);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void answer_msg(fake_conn *f, natsMsg *m, int64_t delay_ms)
{
    if (delay_ms > 0)
        fake_conn_deliver_after(f, delay_ms, m);
    else
        fake_conn_deliver(f, m);
}

void fake_conn_answer(fake_conn *f, natsMsg *req, const void *data, size_t len, int64_t delay_ms)
{
    const char *reply = esi_msg_reply(req);
    if (reply == NULL || reply[0] == '\0')
        return;
    natsMsg *m = NULL;
    if (esi_msg_create(reply, NULL, data, len, &m) != ES_OK)
        abort();
    answer_msg(f, m, delay_ms);
}

void fake_conn_answer_text(fake_conn *f, natsMsg *req, const char *text, int64_t delay_ms)
{
    fake_conn_answer(f, req, text, strlen(text), delay_ms);
}

void fake_conn_answer_status(fake_conn *f, natsMsg *req, const char *code, const char *desc)
{
    const char *reply = esi_msg_reply(req);
    if (reply == NULL || reply[0] == '\0')
        return;
    natsMsg *m = NULL;
    if (esi_msg_create(reply, NULL, NULL, 0, &m) != ES_OK ||
        esi_msg_header_set(m, "Status", code) != ES_OK ||
        (desc != NULL && esi_msg_header_set(m, "Description", desc) != ES_OK))
        abort();
    fake_conn_deliver(f, m);
}

/* ---- the table: publishing and requests ---------------------------------- */

static es_status fake_publish(void *ctx, natsMsg *m)
{
    fake_conn *f = ctx;
    pthread_mutex_lock(&f->mu);
    if (f->fail_times > 0) {
        f->fail_times--;
        es_status s = f->fail_status;
        pthread_mutex_unlock(&f->mu);
        return es_error(s, "fake: publishing to %s refused", esi_msg_subject(m));
    }
    if ((int64_t)esi_msg_len(m) > f->max_payload) {
        pthread_mutex_unlock(&f->mu);
        return esi_nats_status(NATS_MAX_PAYLOAD, "publishing");
    }
    if (f->nlog == f->caplog) {
        f->caplog = f->caplog ? 2 * f->caplog : 64;
        f->log = realloc(f->log, f->caplog * sizeof *f->log);
        if (f->log == NULL)
            abort();
    }
    f->log[f->nlog++] = must_copy(m);
    route_locked(f, m);
    fake_handler h = f->handler;
    void *closure = f->closure;
    pthread_mutex_unlock(&f->mu);
    if (h != NULL)
        h(f, m, closure);
    else
        fake_conn_answer_status(f, m, "503", NULL);
    return ES_OK;
}

static es_status fake_publish_data(void *ctx, const char *subject, const char *reply,
                                   const void *data, size_t len)
{
    natsMsg *m = NULL;
    es_status s = esi_msg_create(subject, reply, data, len, &m);
    if (s == ES_OK)
        s = fake_publish(ctx, m);
    esi_msg_destroy(m);
    return s;
}

static es_status fake_subscribe_sync(void *ctx, const char *subject, int max_msgs,
                                     int64_t max_bytes, esi_sub **out);
static es_status fake_next_msg(esi_sub *sub, int64_t timeout_ms, natsMsg **out);
static void fake_release(void *ctx, esi_sub *sub);

static es_status fake_request_msg(void *ctx, natsMsg *m, int64_t timeout_ms, natsMsg **reply)
{
    fake_conn *f = ctx;
    *reply = NULL;
    char inbox[64];
    pthread_mutex_lock(&f->mu);
    snprintf(inbox, sizeof inbox, "_INBOX.fake.%llu", (unsigned long long)++f->inboxes);
    pthread_mutex_unlock(&f->mu);
    esi_sub *sub = NULL;
    natsMsg *req = NULL;
    es_status s = fake_subscribe_sync(ctx, inbox, 0, 0, &sub);
    if (s == ES_OK)
        s = fake_msg_copy_as(m, esi_msg_subject(m), inbox, &req);
    if (s == ES_OK)
        s = fake_publish(ctx, req);
    if (s == ES_OK)
        s = fake_next_msg(sub, timeout_ms, reply);
    if (s == ES_ERR_TIMEOUT)
        s = esi_nats_status(NATS_TIMEOUT, esi_msg_subject(m));
    else if (s == ES_OK && esi_msg_no_responders(*reply)) {
        esi_msg_destroy(*reply);
        *reply = NULL;
        s = esi_nats_status(NATS_NO_RESPONDERS, esi_msg_subject(m));
    }
    esi_msg_destroy(req);
    fake_release(ctx, sub);
    return s;
}

static es_status fake_request(void *ctx, const char *subject, const void *data, size_t len,
                              int64_t timeout_ms, natsMsg **reply)
{
    *reply = NULL;
    natsMsg *m = NULL;
    es_status s = esi_msg_create(subject, NULL, data, len, &m);
    if (s == ES_OK)
        s = fake_request_msg(ctx, m, timeout_ms, reply);
    esi_msg_destroy(m);
    return s;
}

/* ---- the table: subscriptions ---------------------------------------------- */

static esi_sub *new_sub(fake_conn *f, const char *subject)
{
    esi_sub *sub = xcalloc(1, sizeof *sub);
    sub->f = f;
    sub->subject = strdup(subject);
    if (sub->subject == NULL)
        abort();
    return sub;
}

static void free_sub(esi_sub *sub)
{
    free_queue(sub->head);
    free(sub->subject);
    free(sub);
}

/* Ends the subscription's interest: nothing more is routed to it. Called
 * with f->mu held. */
static void unroute_locked(fake_conn *f, esi_sub *sub)
{
    for (esi_sub **at = &f->subs; *at != NULL; at = &(*at)->next)
        if (*at == sub) {
            *at = sub->next;
            break;
        }
    sub->next = NULL;
    sub->stopped = true;
    pthread_cond_broadcast(&f->changed);
}

/* An asynchronous subscription's delivery thread: one message at a time. */
static void *deliver_loop(void *arg)
{
    esi_sub *sub = arg;
    fake_conn *f = sub->f;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (sub->head == NULL && !sub->stopped)
            pthread_cond_wait(&f->changed, &f->mu);
        if (sub->head == NULL)
            break;
        natsMsg *m = dequeue(sub);
        sub->busy = true;
        pthread_mutex_unlock(&f->mu);
        sub->cb(m, sub->closure);
        pthread_mutex_lock(&f->mu);
        sub->busy = false;
        f->handled++;
        pthread_cond_broadcast(&f->changed);
    }
    sub->thread_done = true;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static es_status fake_subscribe(void *ctx, const char *subject, esi_msg_handler cb, void *closure,
                                esi_sub **out)
{
    fake_conn *f = ctx;
    esi_sub *sub = new_sub(f, subject);
    sub->cb = cb;
    sub->closure = closure;
    if (pthread_create(&sub->thread, NULL, deliver_loop, sub) != 0) {
        free_sub(sub);
        return es_error(ES_ERR_NOMEM, "fake: cannot start a delivery thread");
    }
    pthread_mutex_lock(&f->mu);
    sub->next = f->subs;
    f->subs = sub;
    pthread_mutex_unlock(&f->mu);
    *out = sub;
    return ES_OK;
}

static es_status fake_subscribe_sync(void *ctx, const char *subject, int max_msgs,
                                     int64_t max_bytes, esi_sub **out)
{
    fake_conn *f = ctx;
    esi_sub *sub = new_sub(f, subject);
    sub->max_msgs = max_msgs;
    sub->max_bytes = max_bytes;
    pthread_mutex_lock(&f->mu);
    sub->next = f->subs;
    f->subs = sub;
    pthread_mutex_unlock(&f->mu);
    *out = sub;
    return ES_OK;
}

static es_status fake_next_msg(esi_sub *sub, int64_t timeout_ms, natsMsg **out)
{
    fake_conn *f = sub->f;
    *out = NULL;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    es_status s = ES_OK;
    pthread_mutex_lock(&f->mu);
    while (sub->head == NULL && !sub->stopped && s == ES_OK)
        if (!wait_until(f, deadline))
            s = ES_ERR_TIMEOUT;
    if (sub->head != NULL) {
        *out = dequeue(sub);
        s = ES_OK;
    } else if (s == ES_OK) {
        s = ES_ERR_STOPPED;
    }
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* Asynchronous: what was routed before is still delivered for up to
 * timeout_ms; then the rest is dropped, and once the handler in progress (if
 * any) has returned, the subscription is freed. */
static es_status drain_async(fake_conn *f, esi_sub *sub, int64_t timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    es_status s = ES_OK;
    pthread_mutex_lock(&f->mu);
    unroute_locked(f, sub);
    while (!sub->thread_done && s == ES_OK)
        if (!wait_until(f, deadline))
            s = ES_ERR_TIMEOUT;
    if (s != ES_OK) {
        free_queue(sub->head);
        sub->head = sub->tail = NULL;
        sub->pending = 0;
        pthread_cond_broadcast(&f->changed);
    }
    pthread_mutex_unlock(&f->mu);
    pthread_join(sub->thread, NULL);
    free_sub(sub);
    return s == ES_OK ? ES_OK : es_error(s, "fake: draining a subscription took too long");
}

static es_status fake_drain(void *ctx, esi_sub *sub, int64_t timeout_ms)
{
    fake_conn *f = ctx;
    if (sub->cb != NULL)
        return drain_async(f, sub, timeout_ms);
    pthread_mutex_lock(&f->mu);
    unroute_locked(f, sub); /* next_msg reads what is left, then says stopped */
    pthread_mutex_unlock(&f->mu);
    return ES_OK;
}

static void fake_close(void *ctx, esi_sub *sub)
{
    fake_conn *f = ctx;
    if (sub == NULL)
        return;
    if (sub->cb != NULL) {
        drain_async(f, sub, DRAIN_ON_CLOSE_MS);
        return;
    }
    pthread_mutex_lock(&f->mu);
    unroute_locked(f, sub);
    pthread_mutex_unlock(&f->mu);
    free_sub(sub);
}

static void fake_release(void *ctx, esi_sub *sub)
{
    fake_close(ctx, sub);
}

static es_status fake_flush(void *ctx, int64_t timeout_ms)
{
    (void)ctx;
    (void)timeout_ms;
    return ES_OK; /* the handler has seen every publish before it returned */
}

static int64_t fake_max_payload(void *ctx)
{
    fake_conn *f = ctx;
    pthread_mutex_lock(&f->mu);
    int64_t n = f->max_payload;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static const esi_conn_ops fake_ops = {
    .publish = fake_publish,
    .publish_data = fake_publish_data,
    .request = fake_request,
    .request_msg = fake_request_msg,
    .subscribe = fake_subscribe,
    .subscribe_sync = fake_subscribe_sync,
    .next_msg = fake_next_msg,
    .drain = fake_drain,
    .close = fake_close,
    .release = fake_release,
    .flush = fake_flush,
    .max_payload = fake_max_payload,
};

/* ---- life and observation -------------------------------------------------- */

int fake_nats_setup(void **state)
{
    (void)state;
    esi_nats_open();
    return 0;
}

int fake_nats_teardown(void **state)
{
    (void)state;
    esi_nats_close();
    return 0;
}

fake_conn *fake_conn_create(void)
{
    fake_conn *f = xcalloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->changed, &attr);
    pthread_condattr_destroy(&attr);
    f->max_payload = DEFAULT_MAX_PAYLOAD;
    if (pthread_create(&f->timer, NULL, run_timers, f) != 0)
        abort();
    return f;
}

void fake_conn_destroy(fake_conn *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->closing = true;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->timer, NULL);
    free_queue(f->timers);
    while (f->subs != NULL)
        fake_close(f, f->subs);
    for (size_t i = 0; i < f->nlog; i++)
        esi_msg_destroy(f->log[i]);
    free(f->log);
    pthread_cond_destroy(&f->changed);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void fake_conn_table(fake_conn *f, esi_conn *out)
{
    out->ops = &fake_ops;
    out->ctx = f;
}

esi_js *fake_conn_js(fake_conn *f, int64_t timeout_ms)
{
    esi_conn conn;
    fake_conn_table(f, &conn);
    esi_js_options o = {.timeout_ms = timeout_ms};
    esi_js *js = NULL;
    return esi_js_create(&conn, &o, &js) == ES_OK ? js : NULL;
}

void fake_conn_set_handler(fake_conn *f, fake_handler h, void *closure)
{
    pthread_mutex_lock(&f->mu);
    f->handler = h;
    f->closure = closure;
    pthread_mutex_unlock(&f->mu);
}

void fake_conn_set_max_payload(fake_conn *f, int64_t bytes)
{
    pthread_mutex_lock(&f->mu);
    f->max_payload = bytes;
    pthread_mutex_unlock(&f->mu);
}

void fake_conn_fail_publish(fake_conn *f, es_status s, unsigned times)
{
    pthread_mutex_lock(&f->mu);
    f->fail_status = s;
    f->fail_times = times;
    pthread_mutex_unlock(&f->mu);
}

static bool idle_locked(const fake_conn *f)
{
    for (const esi_sub *sub = f->subs; sub != NULL; sub = sub->next)
        if (sub->cb != NULL && (sub->head != NULL || sub->busy))
            return false;
    return true;
}

bool fake_conn_wait_idle(fake_conn *f, int64_t timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    bool idle;
    pthread_mutex_lock(&f->mu);
    while (!(idle = idle_locked(f)) && wait_until(f, deadline))
        ;
    pthread_mutex_unlock(&f->mu);
    return idle;
}

natsMsg *fake_conn_published_msg(fake_conn *f, size_t i)
{
    pthread_mutex_lock(&f->mu);
    natsMsg *m = i < f->nlog ? must_copy(f->log[i]) : NULL;
    pthread_mutex_unlock(&f->mu);
    return m;
}

fake_conn_stats fake_conn_stats_now(fake_conn *f)
{
    fake_conn_stats st = {0};
    pthread_mutex_lock(&f->mu);
    st.published = f->nlog;
    for (const esi_sub *sub = f->subs; sub != NULL; sub = sub->next)
        st.subscriptions++;
    st.handled = f->handled;
    st.dropped = f->dropped;
    pthread_mutex_unlock(&f->mu);
    return st;
}
