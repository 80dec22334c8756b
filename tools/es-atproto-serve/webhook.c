/* The webhook target (webhook.h): one thread runs libcurl's multi interface
 * over a fixed set of easy handles, one per request that may be in flight.
 * Events arrive from the dispatcher's thread into `incoming`; the thread
 * moves them to its own FIFO `waiting` list, starts the ones that are due
 * while a handle is free, and turns each finished request into a `done` or
 * a retry at a later time.
 *
 * Why not atproto/src/http.c: it is libes-atproto's private GET (bounded
 * bodies, an SSRF guard for hosts a relay chooses, one blocking easy handle
 * per call); a webhook POSTs to the one URL its operator chose, many
 * requests at once, without blocking. What they share is libcurl's settings
 * for a safe client — HTTPS verified, no redirects, no signals, a whole
 * transfer timeout — which are a few lines each and stay the same here. */
#define _POSIX_C_SOURCE 200809L
#include "webhook.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include <es/alloc.h>

#include "backoff.h"
#include "clock.h"
#include "metrics.h"

/* The thread looks at the clock at least this often (retries due, stop). */
#define IDLE_WAIT_MS 1000

/* The outcome of one request, the label of es_serve_webhook_requests_total. */
enum request_outcome { OUT_2XX, OUT_3XX, OUT_4XX, OUT_5XX, OUT_TIMEOUT, OUT_ERROR, OUT_COUNT };
static const char *const outcome_label[OUT_COUNT] = {"2xx", "3xx", "4xx", "5xx", "timeout", "error"};

/* The latency histogram's upper bounds, in seconds (+Inf is implied). */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10};
#define LATENCY_BUCKETS (sizeof latency_bounds / sizeof latency_bounds[0])

/* One event until its done: its JSON follows the struct. */
typedef struct job {
    struct job *next;
    uint64_t id;
    unsigned attempts;  /* requests made so far */
    int64_t due_ms;     /* monotonic: not sent again before */
    char reason[WEBHOOK_REASON_MAX]; /* why the last request failed */
    size_t len;
    unsigned char json[];
} job;

/* One easy handle and the request it carries. */
typedef struct slot {
    CURL *easy;
    struct curl_slist *headers;
    job *job; /* NULL: free */
    int64_t started_ns;
    char error[CURL_ERROR_SIZE];
    char retry_after[64]; /* the answer's Retry-After ("": none, or too long to be one) */
} slot;

/* What /metrics shows: written by the thread, read by any, under `lock`. */
typedef struct counters {
    uint64_t requests[OUT_COUNT];
    uint64_t latency[LATENCY_BUCKETS + 1]; /* per bucket (not cumulative); the last: +Inf */
    double latency_sum;
    uint64_t retries, dead_letters, acked;
    size_t in_flight, held, max_in_flight_seen;
} counters;

struct webhook {
    char *url;
    unsigned char *secret; /* NULL: no signature */
    size_t secret_len;
    webhook_options o;
    tap_done_fn done;
    void *done_arg;
    CURLM *multi;
    pthread_t thread;

    pthread_mutex_t lock; /* guards the fields below it */
    job *incoming, *incoming_tail;
    bool stopping;
    bool joined; /* webhook_stop's: the thread has ended */
    counters c;

    /* the thread's own */
    job *waiting, *waiting_tail;
    slot *slots;     /* max_in_flight of them */
    slot **free;     /* the free ones, a stack */
    size_t nfree;
    uint64_t rng;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- options ------------------------------------------------------------- */

void webhook_options_init(webhook_options *o)
{
    memset(o, 0, sizeof *o);
    o->attempts = 10;
    o->timeout_ms = 10000;
    o->max_in_flight = 32;
    o->backoff_first_ms = 1000;
    o->backoff_max_ms = 60000;
    o->retry_after_max_ms = 600000;
}

static es_status check_options(const webhook_options *o)
{
    if (o == NULL || o->url == NULL ||
        (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0))
        return es_error(ES_ERR_INVALID, "the webhook URL must start with http:// or https://");
    if (o->attempts < 1 || o->timeout_ms <= 0 || o->max_in_flight < 1 || o->max_in_flight > 65536 ||
        o->backoff_first_ms <= 0 || o->backoff_max_ms <= 0 || o->retry_after_max_ms <= 0)
        return es_error(ES_ERR_INVALID,
                        "webhook: attempts, timeout, in-flight bound (at most 65536), backoff and "
                        "Retry-After bound must be more than 0");
    return ES_OK;
}

/* ---- lists ----------------------------------------------------------------- */

static void push(job **head, job **tail, job *j)
{
    j->next = NULL;
    if (*tail != NULL)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static void free_list(job *j)
{
    while (j != NULL) {
        job *next = j->next;
        es_free(j);
        j = next;
    }
}

/* ---- one request ------------------------------------------------------------ */

/* Answers' bodies are not read: the status says all (the timeout bounds a
 * receiver that streams without end). */
static size_t discard(char *data, size_t size, size_t n, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * n;
}

/* Keeps the answer's Retry-After (the last response's: a status line
 * starts over). Other headers are not read. */
static size_t on_header(char *line, size_t size, size_t n, void *ctx)
{
    slot *s = ctx;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        s->retry_after[0] = '\0';
    } else if (len > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
        const char *v = line + sizeof name - 1, *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && isspace((unsigned char)end[-1]))
            end--;
        size_t vlen = (size_t)(end - v);
        if (vlen < sizeof s->retry_after) {
            memcpy(s->retry_after, v, vlen);
            s->retry_after[vlen] = '\0';
        } else {
            s->retry_after[0] = '\0'; /* longer than any delay or date */
        }
    }
    return len;
}

int64_t webhook_retry_after_ms(const char *value, int64_t now_s, int64_t max_ms)
{
    if (value[0] == '\0')
        return -1;
    if (strspn(value, "0123456789") == strlen(value)) {
        int64_t seconds = 0;
        for (const char *p = value; *p != '\0' && seconds <= max_ms / 1000; p++)
            seconds = seconds * 10 + (*p - '0'); /* stops once past the bound: no overflow */
        return seconds > max_ms / 1000 ? max_ms : seconds * 1000;
    }
    if (!isalpha((unsigned char)value[0]))
        return -1; /* "-5", "1.5": no HTTP-date starts so */
    time_t at = curl_getdate(value, NULL);
    if (at == (time_t)-1)
        return -1;
    int64_t seconds = (int64_t)at - now_s;
    if (seconds <= 0)
        return 0;
    return seconds > max_ms / 1000 ? max_ms : seconds * 1000;
}

/* The settings every request shares, set once per handle. */
static es_status slot_init(webhook *w, slot *s)
{
    s->easy = curl_easy_init();
    if (s->easy == NULL)
        return es_error(ES_ERR_NOMEM, "webhook: libcurl handle: out of memory");
    CURL *c = s->easy;
    curl_easy_setopt(c, CURLOPT_URL, w->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)w->o.timeout_ms);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "es-atproto-serve");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->error);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_PRIVATE, s);
    return ES_OK;
}

/* The headers of one request: the signature binds the time it is sent. */
static es_status request_headers(webhook *w, const job *j, struct curl_slist **out)
{
    char line[64 + WEBHOOK_SIGNATURE_MAX];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = h != NULL ? curl_slist_append(h, "Expect:") : NULL; /* no 100-continue round trip */
    snprintf(line, sizeof line, WEBHOOK_EVENT_ID_HEADER ": %" PRIu64, j->id);
    h = h != NULL ? curl_slist_append(h, line) : NULL;
    snprintf(line, sizeof line, WEBHOOK_ATTEMPT_HEADER ": %u", j->attempts + 1);
    h = h != NULL ? curl_slist_append(h, line) : NULL;
    if (h != NULL && w->secret != NULL) {
        char sig[WEBHOOK_SIGNATURE_MAX];
        es_status s = webhook_sign(w->secret, w->secret_len, es_cli_now_ns() / 1000000000, j->json,
                                   j->len, sig);
        if (s != ES_OK) {
            curl_slist_free_all(h);
            return s;
        }
        snprintf(line, sizeof line, WEBHOOK_SIGNATURE_HEADER ": %s", sig);
        h = curl_slist_append(h, line);
    }
    if (h == NULL)
        return es_error(ES_ERR_NOMEM, "webhook: request headers: out of memory");
    *out = h;
    return ES_OK;
}

static es_status slot_start(webhook *w, slot *s, job *j)
{
    struct curl_slist *h = NULL;
    es_status st = request_headers(w, j, &h);
    if (st != ES_OK)
        return st;
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, (const char *)j->json);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len);
    s->error[0] = '\0';
    s->retry_after[0] = '\0';
    if (curl_multi_add_handle(w->multi, s->easy) != CURLM_OK) {
        curl_slist_free_all(h);
        return es_error(ES_ERR_NOMEM, "webhook: libcurl refused a request");
    }
    s->headers = h;
    s->job = j;
    s->started_ns = es_cli_monotonic_ns();
    return ES_OK;
}

/* Which outcome a finished request had, and the reason if it failed. */
static enum request_outcome classify(webhook *w, slot *s, CURLcode rc, char *why, size_t cap)
{
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300)
        return OUT_2XX;
    if (rc == CURLE_OK && status >= 300 && status < 600) {
        snprintf(why, cap, "HTTP %ld", status);
        return status < 400 ? OUT_3XX : status < 500 ? OUT_4XX : OUT_5XX;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(why, cap, "no answer within %" PRId64 " ms", w->o.timeout_ms);
        return OUT_TIMEOUT;
    }
    if (rc == CURLE_OK)
        snprintf(why, cap, "HTTP %ld", status);
    else
        snprintf(why, cap, "%s", s->error[0] != '\0' ? s->error : curl_easy_strerror(rc));
    return OUT_ERROR;
}

static void observe(counters *c, enum request_outcome out, int64_t elapsed_ns)
{
    double seconds = (double)elapsed_ns / 1e9;
    size_t b = 0;
    while (b < LATENCY_BUCKETS && seconds > latency_bounds[b])
        b++;
    c->requests[out]++;
    c->latency[b]++;
    c->latency_sum += seconds;
    c->in_flight--;
}

/* How long a failed request's event waits: the backoff, or longer when a
 * 429 or 503 said Retry-After (bounded by retry_after_max_ms). */
static int64_t retry_delay_ms(webhook *w, const slot *s, unsigned attempts)
{
    int64_t backoff =
        es_cli_backoff_ms(w->o.backoff_first_ms, w->o.backoff_max_ms, attempts - 1, &w->rng);
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 429 && status != 503)
        return backoff;
    int64_t asked =
        webhook_retry_after_ms(s->retry_after, (int64_t)time(NULL), w->o.retry_after_max_ms);
    return asked > backoff ? asked : backoff;
}

/* A request ended: the event is done (2xx, or its last attempt), or waits
 * for its retry. `done` is called without the lock. */
static void slot_finish(webhook *w, slot *s, CURLcode rc)
{
    job *j = s->job;
    curl_multi_remove_handle(w->multi, s->easy);
    curl_slist_free_all(s->headers);
    s->headers = NULL;
    s->job = NULL;
    w->free[w->nfree++] = s;
    j->attempts++;
    enum request_outcome out = classify(w, s, rc, j->reason, sizeof j->reason);
    bool acked = out == OUT_2XX, retry = !acked && j->attempts < w->o.attempts;
    pthread_mutex_lock(&w->lock);
    observe(&w->c, out, es_cli_monotonic_ns() - s->started_ns);
    if (retry) {
        w->c.retries++;
    } else {
        w->c.held--;
        if (acked)
            w->c.acked++;
        else
            w->c.dead_letters++;
    }
    pthread_mutex_unlock(&w->lock);
    if (retry) {
        j->due_ms = es_cli_monotonic_ms() + retry_delay_ms(w, s, j->attempts);
        push(&w->waiting, &w->waiting_tail, j);
        return;
    }
    w->done(w->done_arg, j->id, acked ? TAP_ACKED : TAP_DEAD_LETTER, acked ? NULL : j->reason);
    es_free(j);
}

/* ---- the thread -------------------------------------------------------------- */

/* Starts the due events, oldest first, while a handle is free; returns how
 * many, and in *wait the milliseconds until the next one that is not due
 * yet (IDLE_WAIT_MS at most). An event that cannot be started (out of
 * memory) waits one backoff. */
static size_t start_due(webhook *w, int64_t *wait)
{
    int64_t now = es_cli_monotonic_ms();
    size_t started = 0;
    *wait = IDLE_WAIT_MS;
    job *prev = NULL, *j = w->waiting;
    while (j != NULL && w->nfree > 0) {
        job *next = j->next;
        if (j->due_ms > now) {
            if (j->due_ms - now < *wait)
                *wait = j->due_ms - now;
            prev = j;
        } else if (slot_start(w, w->free[w->nfree - 1], j) == ES_OK) {
            w->nfree--;
            started++;
            if (prev != NULL)
                prev->next = next;
            else
                w->waiting = next;
            if (w->waiting_tail == j)
                w->waiting_tail = prev;
            pthread_mutex_lock(&w->lock);
            if (++w->c.in_flight > w->c.max_in_flight_seen)
                w->c.max_in_flight_seen = w->c.in_flight;
            pthread_mutex_unlock(&w->lock);
        } else {
            j->due_ms = now + w->o.backoff_first_ms;
            prev = j;
        }
        j = next;
    }
    return started;
}

/* Moves what the dispatcher sent to the waiting list; false once stopping. */
static bool take_incoming(webhook *w)
{
    pthread_mutex_lock(&w->lock);
    job *in = w->incoming;
    w->incoming = w->incoming_tail = NULL;
    bool stopping = w->stopping;
    pthread_mutex_unlock(&w->lock);
    while (in != NULL) {
        job *next = in->next;
        push(&w->waiting, &w->waiting_tail, in);
        in = next;
    }
    return !stopping;
}

static void collect_finished(webhook *w)
{
    int left;
    for (CURLMsg *m; (m = curl_multi_info_read(w->multi, &left)) != NULL;) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *s = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &s);
        CURLcode rc = m->data.result; /* m is invalid once its handle is removed */
        slot_finish(w, (slot *)(void *)s, rc);
    }
}

static void *run(void *arg)
{
    webhook *w = arg;
    while (take_incoming(w)) {
        int running;
        int64_t wait;
        do { /* requests that end at once free their handle for the next */
            curl_multi_perform(w->multi, &running);
            collect_finished(w);
        } while (start_due(w, &wait) > 0);
        /* libcurl shortens the wait to its own timeouts; send and stop wake it */
        curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

/* ---- the target ---------------------------------------------------------------- */

static es_status send_event(void *self, const tap_event *ev)
{
    webhook *w = self;
    job *j = es_malloc(sizeof *j + ev->len);
    if (j == NULL)
        return es_error(ES_ERR_NOMEM, "webhook: event %" PRIu64 ": out of memory", ev->id);
    memset(j, 0, sizeof *j);
    j->id = ev->id;
    j->len = ev->len;
    memcpy(j->json, ev->json, ev->len);
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        es_free(j);
        return es_error(ES_ERR_STOPPED, "webhook: stopped");
    }
    push(&w->incoming, &w->incoming_tail, j);
    w->c.held++;
    curl_multi_wakeup(w->multi); /* under the lock: stop cannot free the handle meanwhile */
    pthread_mutex_unlock(&w->lock);
    return ES_OK;
}

tap_target webhook_target(webhook *w)
{
    return (tap_target){send_event, w};
}

/* ---- start, stop ------------------------------------------------------------- */

static es_status copy_options(webhook *w, const webhook_options *o)
{
    w->o = *o;
    size_t ulen = strlen(o->url);
    w->url = es_malloc(ulen + 1);
    if (w->url == NULL)
        return es_error(ES_ERR_NOMEM, "webhook: out of memory");
    memcpy(w->url, o->url, ulen + 1);
    w->o.url = w->url;
    w->o.secret = NULL;
    if (o->secret != NULL && o->secret[0] != '\0') {
        w->secret_len = strlen(o->secret);
        w->secret = es_malloc(w->secret_len);
        if (w->secret == NULL)
            return es_error(ES_ERR_NOMEM, "webhook: out of memory");
        memcpy(w->secret, o->secret, w->secret_len);
    }
    return ES_OK;
}

static es_status make_handles(webhook *w)
{
    w->multi = curl_multi_init();
    w->slots = es_calloc(w->o.max_in_flight, sizeof *w->slots);
    w->free = es_calloc(w->o.max_in_flight, sizeof *w->free);
    if (w->multi == NULL || w->slots == NULL || w->free == NULL)
        return es_error(ES_ERR_NOMEM, "webhook: out of memory");
    for (size_t i = 0; i < w->o.max_in_flight; i++) {
        es_status s = slot_init(w, &w->slots[i]);
        if (s != ES_OK)
            return s;
        w->free[w->nfree++] = &w->slots[i];
    }
    return ES_OK;
}

static void free_webhook(webhook *w)
{
    for (size_t i = 0; w->slots != NULL && i < w->o.max_in_flight; i++) {
        slot *s = &w->slots[i];
        if (s->job != NULL) {
            curl_multi_remove_handle(w->multi, s->easy);
            es_free(s->job);
        }
        curl_slist_free_all(s->headers);
        curl_easy_cleanup(s->easy);
    }
    es_free(w->slots);
    es_free(w->free);
    curl_multi_cleanup(w->multi);
    free_list(w->incoming);
    free_list(w->waiting);
    pthread_mutex_destroy(&w->lock);
    if (w->secret != NULL)
        memset(w->secret, 0, w->secret_len);
    es_free(w->secret);
    es_free(w->url);
    es_free(w);
}

es_status webhook_start(const webhook_options *o, tap_done_fn done, void *done_arg, webhook **out)
{
    es_status s = check_options(o);
    if (s != ES_OK)
        return s;
    if (done == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "webhook_start: no done callback or no out");
    pthread_once(&curl_once, curl_init);
    if (curl_init_result != CURLE_OK)
        return es_error(ES_ERR_UNSUPPORTED, "libcurl does not initialise: %s",
                        curl_easy_strerror(curl_init_result));
    webhook *w = es_calloc(1, sizeof *w);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "webhook: out of memory");
    pthread_mutex_init(&w->lock, NULL);
    w->done = done;
    w->done_arg = done_arg;
    w->rng = es_cli_backoff_seed();
    if ((s = copy_options(w, o)) != ES_OK || (s = make_handles(w)) != ES_OK) {
        free_webhook(w);
        return s;
    }
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        free_webhook(w);
        return es_error(ES_ERR_NOMEM, "webhook: no thread");
    }
    *out = w;
    return ES_OK;
}

void webhook_stop(webhook *w)
{
    if (w == NULL || w->joined)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    curl_multi_wakeup(w->multi);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->joined = true;
}

void webhook_destroy(webhook *w)
{
    if (w == NULL)
        return;
    webhook_stop(w);
    free_webhook(w);
}

/* ---- metrics ------------------------------------------------------------------- */

size_t webhook_max_in_flight_seen(webhook *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->c.max_in_flight_seen;
    pthread_mutex_unlock(&w->lock);
    return n;
}

static void latency_histogram(es_buf *b, const counters *c)
{
    static const char name[] = "es_serve_webhook_request_seconds";
    es_prom_family(b, name, "histogram", "Webhook requests by duration, whatever their outcome.");
    uint64_t cumulative = 0, count = 0;
    for (size_t i = 0; i <= LATENCY_BUCKETS; i++)
        count += c->latency[i];
    for (size_t i = 0; i <= LATENCY_BUCKETS; i++) {
        char le[32];
        if (i < LATENCY_BUCKETS)
            snprintf(le, sizeof le, "%g", latency_bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        cumulative += c->latency[i];
        es_prom_sample(b, "es_serve_webhook_request_seconds_bucket", "le", le, (double)cumulative);
    }
    es_prom_sample(b, "es_serve_webhook_request_seconds_sum", NULL, NULL, c->latency_sum);
    es_prom_sample(b, "es_serve_webhook_request_seconds_count", NULL, NULL, (double)count);
}

void webhook_metrics(webhook *w, es_buf *b)
{
    pthread_mutex_lock(&w->lock);
    counters c = w->c;
    pthread_mutex_unlock(&w->lock);
    static const char requests[] = "es_serve_webhook_requests_total";
    es_prom_family(b, requests, "counter",
                   "Webhook requests by outcome: the answer's status class, a timeout, or an "
                   "error (no connection, TLS, a reset).");
    for (size_t i = 0; i < OUT_COUNT; i++)
        es_prom_sample(b, requests, "outcome", outcome_label[i], (double)c.requests[i]);
    latency_histogram(b, &c);
    es_prom_one(b, "es_serve_webhook_acked_total", "counter", "Events the webhook answered 2xx.",
                (double)c.acked);
    es_prom_one(b, "es_serve_webhook_retries_total", "counter",
                "Webhook requests that failed and were scheduled again.", (double)c.retries);
    es_prom_one(b, "es_serve_webhook_dead_letters_total", "counter",
                "Events given up after --webhook-attempts failed requests.",
                (double)c.dead_letters);
    es_prom_one(b, "es_serve_webhook_in_flight", "gauge", "Webhook requests under way now.",
                (double)c.in_flight);
    es_prom_one(b, "es_serve_webhook_held", "gauge",
                "Events the webhook holds: in flight, queued or waiting for a retry.",
                (double)c.held);
}
