/* A JetStream stand-in on a fake_conn (fake_js.h). */
#include "fake_js.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <es/time.h>

#include "base/clock.h"
#include "transport/msg.h"

#define API_PREFIX          "$JS.API."
#define ANSWER_MAX          512
#define EARLY_WAIT_MS       5000
#define ERR_WRONG_LAST_SEQ  10071
#define ERR_BATCH_DUPLICATE 10201
#define ERR_BATCHES_FULL    10211

typedef struct stored {
    uint64_t seq;
    int64_t time_ns;
    natsMsg *m;
} stored;

/* A batch between its first message and its commit. */
typedef struct open_batch {
    struct open_batch *next;
    char *id;
    fake_step step;
    natsMsg **msgs;
    size_t n, cap;
} open_batch;

struct fake_js {
    fake_conn *f;
    pthread_mutex_t mu;
    char *stream, *subjects;
    stored *msgs; /* msgs[i] has sequence i + 1 */
    size_t n, cap;
    fake_step *steps;
    size_t step_head, nsteps, step_cap;
    open_batch *batches;
    unsigned lose_requests;
    uint64_t units;
};

static void *must(void *p)
{
    if (p == NULL) {
        fprintf(stderr, "fake_js: out of memory\n");
        abort();
    }
    return p;
}

static natsMsg *new_msg(const char *subject, const char *data)
{
    natsMsg *m = NULL;
    if (esi_msg_create(subject, NULL, data, data ? strlen(data) : 0, &m) != ES_OK)
        abort();
    return m;
}

static void set_header(natsMsg *m, const char *name, const char *value)
{
    if (esi_msg_header_set(m, name, value) != ES_OK)
        abort();
}

void fake_js_error_json(char *out, size_t size, int code, int err_code, const char *description)
{
    snprintf(out, size, "{\"error\":{\"code\":%d,\"err_code\":%d,\"description\":\"%s\"}}", code,
             err_code, description);
}

/* ---- the script ------------------------------------------------------------ */

void fake_js_push(fake_js *js, fake_step step)
{
    if (step.json != NULL)
        step.json = must(strdup(step.json));
    pthread_mutex_lock(&js->mu);
    if (js->nsteps == js->step_cap) {
        js->step_cap = js->step_cap ? 2 * js->step_cap : 16;
        js->steps = must(realloc(js->steps, js->step_cap * sizeof *js->steps));
    }
    js->steps[js->nsteps++] = step;
    pthread_mutex_unlock(&js->mu);
}

void fake_js_push_n(fake_js *js, fake_do what, unsigned times)
{
    for (unsigned i = 0; i < times; i++)
        fake_js_push(js, (fake_step){.what = what});
}

/* The step for a new unit (the caller frees its json). */
static fake_step next_step(fake_js *js)
{
    fake_step step = {.what = FAKE_ACK};
    pthread_mutex_lock(&js->mu);
    js->units++;
    if (js->step_head < js->nsteps)
        step = js->steps[js->step_head++];
    pthread_mutex_unlock(&js->mu);
    return step;
}

/* ---- storing ----------------------------------------------------------------- */

static uint64_t last_seq_on(const fake_js *js, const char *pattern)
{
    for (size_t i = js->n; i > 0; i--)
        if (fake_subject_matches(pattern, esi_msg_subject(js->msgs[i - 1].m)))
            return js->msgs[i - 1].seq;
    return 0;
}

static uint64_t seq_of_id(const fake_js *js, const char *id)
{
    for (size_t i = 0; i < js->n; i++) {
        const char *stored_id = esi_msg_header(js->msgs[i].m, "Nats-Msg-Id");
        if (stored_id != NULL && strcmp(stored_id, id) == 0)
            return js->msgs[i].seq;
    }
    return 0;
}

/* Expectations, checked against the stream as it is (before the unit). */
static bool expectations_hold(const fake_js *js, natsMsg **msgs, size_t n, char *answer)
{
    for (size_t i = 0; i < n; i++) {
        const char *want = esi_msg_header(msgs[i], "Nats-Expected-Last-Subject-Sequence");
        if (want == NULL)
            continue;
        const char *scope = esi_msg_header(msgs[i], "Nats-Expected-Last-Subject-Sequence-Subject");
        uint64_t last = last_seq_on(js, scope ? scope : esi_msg_subject(msgs[i]));
        if (last != strtoull(want, NULL, 10)) {
            char desc[64];
            snprintf(desc, sizeof desc, "wrong last sequence: %" PRIu64, last);
            fake_js_error_json(answer, ANSWER_MAX, 400, ERR_WRONG_LAST_SEQ, desc);
            return false;
        }
    }
    return true;
}

/* The sequence a single message's id was stored at, or 0; a batch with an
 * id stored before (or twice in itself) is refused into `answer`. */
static bool ids_fresh(const fake_js *js, natsMsg **msgs, size_t n, bool is_batch, uint64_t *dup,
                      char *answer)
{
    *dup = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = esi_msg_header(msgs[i], "Nats-Msg-Id");
        if (id == NULL)
            continue;
        bool again = seq_of_id(js, id) != 0;
        for (size_t j = 0; j < i && !again; j++) {
            const char *other = esi_msg_header(msgs[j], "Nats-Msg-Id");
            again = other != NULL && strcmp(other, id) == 0;
        }
        if (again && is_batch) {
            fake_js_error_json(answer, ANSWER_MAX, 400, ERR_BATCH_DUPLICATE,
                               "atomic publish batch contains duplicate message id");
            return false;
        }
        if (again)
            *dup = seq_of_id(js, id);
    }
    return true;
}

static void store_locked(fake_js *js, natsMsg *m)
{
    if (js->n == js->cap) {
        js->cap = js->cap ? 2 * js->cap : 64;
        js->msgs = must(realloc(js->msgs, js->cap * sizeof *js->msgs));
    }
    stored *s = &js->msgs[js->n];
    s->seq = ++js->n;
    s->time_ns = esi_now_ns();
    if (fake_msg_copy_as(m, esi_msg_subject(m), NULL, &s->m) != ES_OK)
        abort();
}

/* What nats-server does with a unit: store it (or not) and the answer. */
static void store_unit(fake_js *js, natsMsg **msgs, size_t n, const char *batch_id, char *answer)
{
    pthread_mutex_lock(&js->mu);
    uint64_t dup = 0;
    if (expectations_hold(js, msgs, n, answer) &&
        ids_fresh(js, msgs, n, batch_id != NULL, &dup, answer)) {
        if (dup != 0)
            snprintf(answer, ANSWER_MAX,
                     "{\"stream\":\"%s\",\"seq\":%" PRIu64 ",\"duplicate\":true}", js->stream, dup);
        else {
            for (size_t i = 0; i < n; i++)
                store_locked(js, msgs[i]);
            if (batch_id != NULL)
                snprintf(answer, ANSWER_MAX,
                         "{\"stream\":\"%s\",\"seq\":%zu,\"batch\":\"%s\",\"count\":%zu}",
                         js->stream, js->n, batch_id, n);
            else
                snprintf(answer, ANSWER_MAX, "{\"stream\":\"%s\",\"seq\":%zu}", js->stream, js->n);
        }
    }
    pthread_mutex_unlock(&js->mu);
}

/* The answer of a step that refuses: its own JSON, or the default refusal. */
static void refusal(const fake_step *step, char *answer)
{
    if (step->json != NULL)
        snprintf(answer, ANSWER_MAX, "%s", step->json);
    else if (step->what == FAKE_REFUSE_START)
        fake_js_error_json(answer, ANSWER_MAX, 503, ERR_BATCHES_FULL,
                           "atomic publish too many inflight batches");
    else
        answer[0] = '\0';
}

/* Answers the unit whose last message is `last` as `step` says (a single
 * message refused "at its start" is refused, and stores nothing). */
static void conclude(fake_js *js, fake_step step, natsMsg **msgs, size_t n, const char *batch_id,
                     natsMsg *last)
{
    char answer[ANSWER_MAX];
    if (step.what == FAKE_LOST)
        return;
    if (step.what == FAKE_ANSWER || step.what == FAKE_REFUSE_START)
        refusal(&step, answer);
    else
        store_unit(js, msgs, n, batch_id, answer);
    switch (step.what) {
    case FAKE_ACK:
    case FAKE_ANSWER:
    case FAKE_REFUSE_START:
        fake_conn_answer_text(js->f, last, answer, 0);
        if (step.early)
            fake_conn_wait_idle(js->f, EARLY_WAIT_MS);
        break;
    case FAKE_TWICE:
        fake_conn_answer_text(js->f, last, answer, 0);
        fake_conn_answer_text(js->f, last, answer, step.delay_ms);
        break;
    case FAKE_LATER: fake_conn_answer_text(js->f, last, answer, step.delay_ms); break;
    default: break; /* FAKE_NO_ANSWER: stored, not answered */
    }
}

/* ---- units -------------------------------------------------------------- */

static void on_single(fake_js *js, natsMsg *m)
{
    const char *reply = esi_msg_reply(m);
    fake_step step = {.what = FAKE_ACK};
    if (reply != NULL && reply[0] != '\0')
        step = next_step(js);
    else /* a plain publish: stored, nothing to answer */
        step.what = FAKE_NO_ANSWER;
    conclude(js, step, &m, 1, NULL, m);
    free((char *)step.json);
}

static open_batch *find_batch(fake_js *js, const char *id, bool remove)
{
    pthread_mutex_lock(&js->mu);
    open_batch **at = &js->batches;
    while (*at != NULL && strcmp((*at)->id, id) != 0)
        at = &(*at)->next;
    open_batch *b = *at;
    if (b != NULL && remove)
        *at = b->next;
    pthread_mutex_unlock(&js->mu);
    return b;
}

static void free_batch(open_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        esi_msg_destroy(b->msgs[i]);
    free(b->msgs);
    free((char *)b->step.json);
    free(b->id);
    free(b);
}

static open_batch *start_batch(fake_js *js, natsMsg *m, const char *id)
{
    open_batch *b = must(calloc(1, sizeof *b));
    b->id = must(strdup(id));
    b->step = next_step(js);
    pthread_mutex_lock(&js->mu);
    b->next = js->batches;
    js->batches = b;
    pthread_mutex_unlock(&js->mu);
    if (b->step.what == FAKE_REFUSE_START) {
        char answer[ANSWER_MAX];
        refusal(&b->step, answer);
        fake_conn_answer_text(js->f, m, answer, 0);
    } else if (b->step.what != FAKE_LOST) {
        fake_conn_answer(js->f, m, NULL, 0, 0); /* the start's empty acknowledgement */
    }
    return b;
}

static void on_batch_msg(fake_js *js, natsMsg *m, const char *id)
{
    const char *seq = esi_msg_header(m, "Nats-Batch-Sequence");
    bool first = seq != NULL && strcmp(seq, "1") == 0;
    open_batch *b = first ? start_batch(js, m, id) : find_batch(js, id, false);
    if (b == NULL)
        return; /* no start: nats-server abandons it */
    bool refused = b->step.what == FAKE_REFUSE_START;
    if (refused && b->step.early && seq != NULL && strcmp(seq, "2") == 0)
        fake_conn_wait_idle(js->f, EARLY_WAIT_MS); /* the refusal reaches a sender still busy */
    if (!refused) {
        if (b->n == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 8;
            b->msgs = must(realloc(b->msgs, b->cap * sizeof *b->msgs));
        }
        if (fake_msg_copy(m, &b->msgs[b->n]) != ES_OK)
            abort();
        b->n++;
    }
    if (esi_msg_header(m, "Nats-Batch-Commit") == NULL)
        return;
    find_batch(js, id, true);
    if (!refused)
        conclude(js, b->step, b->msgs, b->n, id, m);
    free_batch(b);
}

/* ---- the API ---------------------------------------------------------------- */

static const char *api_after(const char *subject, const char *what)
{
    size_t n = strlen(what);
    return strncmp(subject, what, n) == 0 ? subject + n : NULL;
}

static void stream_info(fake_js *js, natsMsg *req)
{
    char answer[1024];
    pthread_mutex_lock(&js->mu);
    snprintf(answer, sizeof answer,
             "{\"config\":{\"name\":\"%s\",\"subjects\":[\"%s\"],\"retention\":\"limits\","
             "\"storage\":\"memory\",\"num_replicas\":1,\"duplicate_window\":120000000000,"
             "\"allow_direct\":true,\"allow_atomic\":true,\"deny_delete\":true,\"metadata\":{}},"
             "\"state\":{\"messages\":%zu,\"first_seq\":%d,\"last_seq\":%zu}}",
             js->stream, js->subjects, js->n, js->n ? 1 : 0, js->n);
    pthread_mutex_unlock(&js->mu);
    fake_conn_answer_text(js->f, req, answer, 0);
}

typedef struct dg_query {
    const char *filter;
    uint64_t from;
    int64_t start_ns;
    size_t batch;
} dg_query;

static bool dg_parse(natsMsg *req, dg_query *q, json_t **body)
{
    json_error_t jerr;
    *body = json_loadb(esi_msg_data(req), esi_msg_len(req), 0, &jerr);
    q->filter = json_string_value(json_object_get(*body, "next_by_subj"));
    json_int_t seq = json_integer_value(json_object_get(*body, "seq"));
    json_int_t batch = json_integer_value(json_object_get(*body, "batch"));
    const char *start = json_string_value(json_object_get(*body, "start_time"));
    q->from = seq > 0 ? (uint64_t)seq : 1;
    q->start_ns = 0;
    q->batch = batch > 0 ? (size_t)batch : 1;
    return q->filter != NULL && (start == NULL || es_time_parse(start, &q->start_ns) == ES_OK);
}

static bool dg_matches(const stored *s, const dg_query *q)
{
    return s->seq >= q->from && s->time_ns >= q->start_ns &&
           fake_subject_matches(q->filter, esi_msg_subject(s->m));
}

static natsMsg *dg_answer(const fake_js *js, const stored *s, const char *inbox)
{
    natsMsg *m = NULL;
    if (fake_msg_copy_as(s->m, inbox, NULL, &m) != ES_OK)
        abort();
    char num[24], when[ES_TIME_MAX];
    set_header(m, "Nats-Stream", js->stream);
    set_header(m, "Nats-Subject", esi_msg_subject(s->m));
    snprintf(num, sizeof num, "%" PRIu64, s->seq);
    set_header(m, "Nats-Sequence", num);
    es_time_format(s->time_ns, when);
    set_header(m, "Nats-Time-Stamp", when);
    return m;
}

/* A batched direct get: up to `batch` messages, then the EOB. */
static void direct_get(fake_js *js, natsMsg *req)
{
    dg_query q;
    json_t *body = NULL;
    const char *inbox = esi_msg_reply(req);
    if (!dg_parse(req, &q, &body)) {
        json_decref(body);
        fake_conn_answer_status(js->f, req, "408", "Bad Request");
        return;
    }
    size_t sent = 0, pending = 0;
    uint64_t last = 0;
    pthread_mutex_lock(&js->mu);
    for (size_t i = 0; i < js->n; i++) {
        if (!dg_matches(&js->msgs[i], &q))
            continue;
        if (sent == q.batch) {
            pending++;
            continue;
        }
        fake_conn_deliver(js->f, dg_answer(js, &js->msgs[i], inbox));
        last = js->msgs[i].seq;
        sent++;
    }
    pthread_mutex_unlock(&js->mu);
    json_decref(body);
    if (sent == 0) {
        fake_conn_answer_status(js->f, req, "404", "Message Not Found");
        return;
    }
    natsMsg *eob = new_msg(inbox, NULL);
    char num[24];
    set_header(eob, "Status", "204");
    set_header(eob, "Description", "EOB");
    snprintf(num, sizeof num, "%zu", pending);
    set_header(eob, "Nats-Num-Pending", num);
    snprintf(num, sizeof num, "%" PRIu64, last);
    set_header(eob, "Nats-Last-Sequence", num);
    fake_conn_deliver(js->f, eob);
}

static void api(fake_js *js, natsMsg *req)
{
    pthread_mutex_lock(&js->mu);
    bool lose = js->lose_requests > 0;
    if (lose)
        js->lose_requests--;
    pthread_mutex_unlock(&js->mu);
    if (lose)
        return;
    const char *subject = esi_msg_subject(req);
    const char *info = api_after(subject, API_PREFIX "STREAM.INFO.");
    const char *get = api_after(subject, API_PREFIX "DIRECT.GET.");
    const char *stream = info ? info : get;
    char answer[ANSWER_MAX];
    if (strcmp(subject, API_PREFIX "INFO") == 0)
        fake_conn_answer_text(js->f, req, "{\"api\":{\"level\":2}}", 0);
    else if (stream != NULL && strcmp(stream, js->stream) != 0) {
        fake_js_error_json(answer, sizeof answer, 404, 10059, "stream not found");
        fake_conn_answer_text(js->f, req, answer, 0);
    } else if (info != NULL)
        stream_info(js, req);
    else if (get != NULL)
        direct_get(js, req);
    else {
        fake_js_error_json(answer, sizeof answer, 400, 10003, "fake_js: unsupported API request");
        fake_conn_answer_text(js->f, req, answer, 0);
    }
}

static void on_publish(fake_conn *f, natsMsg *m, void *closure)
{
    fake_js *js = closure;
    const char *subject = esi_msg_subject(m);
    if (strncmp(subject, API_PREFIX, strlen(API_PREFIX)) == 0) {
        api(js, m);
        return;
    }
    if (!fake_subject_matches(js->subjects, subject)) {
        fake_conn_answer_status(f, m, "503", NULL); /* no stream listens there */
        return;
    }
    const char *batch_id = esi_msg_header(m, "Nats-Batch-Id");
    if (batch_id != NULL)
        on_batch_msg(js, m, batch_id);
    else
        on_single(js, m);
}

/* ---- life and observation ------------------------------------------------------ */

fake_js *fake_js_create(fake_conn *f, const char *stream, const char *subjects)
{
    fake_js *js = must(calloc(1, sizeof *js));
    js->f = f;
    js->stream = must(strdup(stream));
    js->subjects = must(strdup(subjects));
    pthread_mutex_init(&js->mu, NULL);
    fake_conn_set_handler(f, on_publish, js);
    return js;
}

void fake_js_destroy(fake_js *js)
{
    if (js == NULL)
        return;
    fake_conn_set_handler(js->f, NULL, NULL);
    for (size_t i = 0; i < js->n; i++)
        esi_msg_destroy(js->msgs[i].m);
    free(js->msgs);
    for (size_t i = js->step_head; i < js->nsteps; i++)
        free((char *)js->steps[i].json);
    free(js->steps);
    while (js->batches != NULL) {
        open_batch *b = js->batches;
        js->batches = b->next;
        free_batch(b);
    }
    pthread_mutex_destroy(&js->mu);
    free(js->stream);
    free(js->subjects);
    free(js);
}

void fake_js_lose_requests(fake_js *js, unsigned times)
{
    pthread_mutex_lock(&js->mu);
    js->lose_requests = times;
    pthread_mutex_unlock(&js->mu);
}

fake_js_stats fake_js_stats_now(fake_js *js)
{
    pthread_mutex_lock(&js->mu);
    fake_js_stats st = {
        .units = js->units, .stored = js->n, .script_left = js->nsteps - js->step_head};
    pthread_mutex_unlock(&js->mu);
    return st;
}

natsMsg *fake_js_stored_msg(fake_js *js, uint64_t seq)
{
    natsMsg *m = NULL;
    pthread_mutex_lock(&js->mu);
    if (seq >= 1 && seq <= js->n && fake_msg_copy(js->msgs[seq - 1].m, &m) != ES_OK)
        abort();
    pthread_mutex_unlock(&js->mu);
    return m;
}
