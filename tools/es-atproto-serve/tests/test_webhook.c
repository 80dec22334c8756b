/* The webhook target (webhook.h) driven directly with tap_events, against
 * a receiver on loopback (atproto/tests/http_standin.h, several workers):
 * a slow receiver failing ~30 % of requests (a deterministic rule, so the
 * exact number of retries is known) gets every event, each signature
 * recomputed here with OpenSSL's one-shot HMAC verifies, the in-flight bound
 * holds; a receiver that always fails, one that never answers in time and
 * a port nobody listens on end in dead letters with their reason after the
 * attempt limit; /metrics' text counts what happened; a 429 or 503 with
 * Retry-After delays the retry that long, within a bound, and hostile
 * values of it neither stall nor crash. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "http_standin.h"
#include "webhook.h"
#include "webhook_receiver.h"

#define SECRET     "s3cret-shared-with-the-receiver"
#define EVENTS_MAX 512
#define BOUND      8 /* requests in flight, at most */

/* ---- the receiver -------------------------------------------------------- */

/* RETRY_LATER: each event's first request is answered first_status (with
 * the stand-in's extra headers: a Retry-After), the next ones 200. */
typedef enum behaviour { FLAKY, ALWAYS_503, TOO_SLOW, RETRY_LATER } behaviour;

typedef struct receiver {
    behaviour how;
    pthread_mutex_t lock;
    unsigned arrivals[EVENTS_MAX]; /* requests per event id */
    unsigned failed;               /* requests answered 500 */
    unsigned bad;                  /* missing or wrong signature, id, attempt or body */
    unsigned in_progress, max_in_progress;
    int first_status;                  /* RETRY_LATER's */
    int64_t arrived_ms[EVENTS_MAX][2]; /* RETRY_LATER: when attempts 1 and 2 arrived */
} receiver;

/* Wall-clock milliseconds: an HTTP-date is compared with them. */
static int64_t realtime_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The body the test sends for event `id`. */
static int event_json(uint64_t id, char *out, size_t cap)
{
    return snprintf(out, cap, "{\"id\":%" PRIu64 ",\"type\":\"record\",\"record\":{\"n\":\"%0*d\"}}",
                    id, (int)(id % 200), 0);
}

/* Checks one request against what was sent; false when something is off. */
static bool request_ok(const char *head, const void *body, size_t len, uint64_t *id,
                       unsigned *attempt)
{
    char v[128], json[512];
    if (!wr_request_ids(head, id, attempt) || *id >= EVENTS_MAX ||
        !wr_header(head, "Content-Type", v, sizeof v) || strcmp(v, "application/json") != 0 ||
        strncmp(head, "POST /hook ", 11) != 0)
        return false;
    int n = event_json(*id, json, sizeof json);
    if ((size_t)n != len || memcmp(json, body, len) != 0)
        return false;
    return wr_signature_verifies(SECRET, head, body, len);
}

static int on_post(void *ctx, const char *head, const void *body, size_t len)
{
    receiver *r = ctx;
    uint64_t id = 0;
    unsigned attempt = 0;
    bool ok = request_ok(head, body, len, &id, &attempt);
    pthread_mutex_lock(&r->lock);
    if (!ok)
        r->bad++;
    else
        r->arrivals[id]++;
    if (ok && attempt <= 2)
        r->arrived_ms[id][attempt - 1] = realtime_ms();
    if (++r->in_progress > r->max_in_progress)
        r->max_in_progress = r->in_progress;
    pthread_mutex_unlock(&r->lock);
    int status = 200;
    if (r->how == TOO_SLOW)
        standin_sleep_ms(400);
    else if (r->how == ALWAYS_503)
        status = 503;
    else if (r->how == RETRY_LATER)
        status = attempt == 1 ? r->first_status : 200;
    else
        standin_sleep_ms(wr_delay_ms(id, attempt)); /* slow */
    bool fail = r->how == FLAKY && wr_flaky_fails(id, attempt);
    pthread_mutex_lock(&r->lock);
    r->in_progress--;
    if (fail)
        r->failed++;
    pthread_mutex_unlock(&r->lock);
    return fail ? 500 : status;
}

/* ---- the dispatcher's side --------------------------------------------------- */

typedef struct outcomes {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned done[EVENTS_MAX];
    tap_outcome outcome[EVENTS_MAX];
    char why[EVENTS_MAX][WEBHOOK_REASON_MAX];
    unsigned total;
} outcomes;

static void on_done(void *arg, uint64_t id, tap_outcome outcome, const char *why)
{
    outcomes *o = arg;
    pthread_mutex_lock(&o->lock);
    if (id < EVENTS_MAX) {
        o->done[id]++;
        o->outcome[id] = outcome;
        snprintf(o->why[id], sizeof o->why[id], "%s", why != NULL ? why : "");
    }
    o->total++;
    pthread_cond_broadcast(&o->changed);
    pthread_mutex_unlock(&o->lock);
}

/* Waits until `n` events are done (at most 60 s); true if they are. */
static bool wait_done(outcomes *o, unsigned n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&o->lock);
    while (o->total < n && pthread_cond_timedwait(&o->changed, &o->lock, &until) == 0)
        ;
    bool all = o->total >= n;
    pthread_mutex_unlock(&o->lock);
    return all;
}

typedef struct fixture {
    receiver r;
    standin s;
    outcomes out;
    webhook *w;
    char url[64];
} fixture;

static fixture *fixture_new(behaviour how)
{
    fixture *f = calloc(1, sizeof *f);
    f->r.how = how;
    pthread_mutex_init(&f->r.lock, NULL);
    pthread_mutex_init(&f->out.lock, NULL);
    pthread_cond_init(&f->out.changed, NULL);
    assert_int_equal(standin_start_workers(&f->s, 2 * BOUND, on_post, &f->r), 0);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/hook", f->s.port);
    return f;
}

static void fixture_free(fixture *f)
{
    webhook_destroy(f->w);
    standin_stop(&f->s);
    pthread_mutex_destroy(&f->r.lock);
    pthread_mutex_destroy(&f->out.lock);
    pthread_cond_destroy(&f->out.changed);
    free(f);
}

static void fast_options(webhook_options *o, const char *url)
{
    webhook_options_init(o);
    o->url = url;
    o->secret = SECRET;
    o->max_in_flight = BOUND;
    o->timeout_ms = 5000;
    o->backoff_first_ms = 5;
    o->backoff_max_ms = 40;
}

static void send_events(webhook *w, unsigned n)
{
    tap_target t = webhook_target(w);
    for (uint64_t id = 0; id < n; id++) {
        char json[512];
        int len = event_json(id, json, sizeof json);
        tap_event ev = {id, "did:plc:test", id % 7 == 0, (const unsigned char *)json, (size_t)len};
        assert_int_equal(t.send(t.self, &ev), ES_OK);
    }
}

/* The value of the sample `name` (a whole line's name, labels included). */
static double metric(webhook *w, const char *name)
{
    es_buf b = ES_BUF_INIT;
    webhook_metrics(w, &b);
    es_buf_append_byte(&b, 0);
    double v = -1;
    size_t n = strlen(name);
    for (const char *p = (const char *)b.data; p != NULL && *p != '\0';) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            v = strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    es_buf_free(&b);
    return v;
}

/* ---- the tests --------------------------------------------------------------- */

/* 200 events to the slow receiver failing ~30 %: each acked once, after
 * exactly the failures the rule gives it; every request well formed and
 * signed; never more than BOUND in flight, and more than one at times. */
static void test_flaky_receiver_gets_everything(void **state)
{
    (void)state;
    const unsigned n = 200;
    fixture *f = fixture_new(FLAKY);
    webhook_options o;
    fast_options(&o, f->url);
    assert_int_equal(webhook_start(&o, on_done, &f->out, &f->w), ES_OK);
    send_events(f->w, n);
    assert_true(wait_done(&f->out, n));
    unsigned expected_failures = 0;
    for (uint64_t id = 0; id < n; id++) {
        unsigned fails = 0;
        while (wr_flaky_fails(id, fails + 1))
            fails++;
        assert_true(fails < o.attempts); /* the rule lets every event through in time */
        expected_failures += fails;
        assert_int_equal(f->out.done[id], 1);
        assert_int_equal(f->out.outcome[id], TAP_ACKED);
        assert_int_equal(f->r.arrivals[id], fails + 1);
    }
    assert_int_equal(f->r.bad, 0);
    assert_int_equal(f->r.failed, expected_failures);
    assert_true(expected_failures > n / 5 && expected_failures < n / 2); /* ~30 % of requests */
    assert_true(f->r.max_in_progress <= BOUND);
    assert_true(webhook_max_in_flight_seen(f->w) <= BOUND);
    assert_true(webhook_max_in_flight_seen(f->w) > 1);
    assert_true(metric(f->w, "es_serve_webhook_retries_total") == expected_failures);
    assert_true(metric(f->w, "es_serve_webhook_requests_total{outcome=\"5xx\"}") ==
                expected_failures);
    assert_true(metric(f->w, "es_serve_webhook_requests_total{outcome=\"2xx\"}") == n);
    assert_true(metric(f->w, "es_serve_webhook_acked_total") == n);
    assert_true(metric(f->w, "es_serve_webhook_dead_letters_total") == 0);
    assert_true(metric(f->w, "es_serve_webhook_request_seconds_count") == n + expected_failures);
    assert_true(metric(f->w, "es_serve_webhook_request_seconds_bucket{le=\"+Inf\"}") ==
                n + expected_failures);
    assert_true(metric(f->w, "es_serve_webhook_held") == 0);
    assert_true(metric(f->w, "es_serve_webhook_in_flight") == 0);
    fixture_free(f);
}

/* A receiver answering 503 to everything: each event is tried exactly
 * `attempts` times, then dead-lettered with the status as its reason. */
static void test_always_failing_receiver_dead_letters(void **state)
{
    (void)state;
    const unsigned n = 20;
    fixture *f = fixture_new(ALWAYS_503);
    webhook_options o;
    fast_options(&o, f->url);
    o.attempts = 3;
    assert_int_equal(webhook_start(&o, on_done, &f->out, &f->w), ES_OK);
    send_events(f->w, n);
    assert_true(wait_done(&f->out, n));
    for (uint64_t id = 0; id < n; id++) {
        assert_int_equal(f->out.done[id], 1);
        assert_int_equal(f->out.outcome[id], TAP_DEAD_LETTER);
        assert_string_equal(f->out.why[id], "HTTP 503");
        assert_int_equal(f->r.arrivals[id], 3);
    }
    assert_int_equal(f->r.bad, 0);
    assert_true(metric(f->w, "es_serve_webhook_dead_letters_total") == n);
    assert_true(metric(f->w, "es_serve_webhook_retries_total") == 2 * n);
    assert_true(metric(f->w, "es_serve_webhook_requests_total{outcome=\"5xx\"}") == 3 * n);
    fixture_free(f);
}

/* A receiver slower than the timeout: a timeout each time, then a dead
 * letter saying so. */
static void test_timeouts_dead_letter(void **state)
{
    (void)state;
    fixture *f = fixture_new(TOO_SLOW);
    webhook_options o;
    fast_options(&o, f->url);
    o.attempts = 2;
    o.timeout_ms = 100;
    assert_int_equal(webhook_start(&o, on_done, &f->out, &f->w), ES_OK);
    send_events(f->w, 3);
    assert_true(wait_done(&f->out, 3));
    for (uint64_t id = 0; id < 3; id++) {
        assert_int_equal(f->out.outcome[id], TAP_DEAD_LETTER);
        assert_string_equal(f->out.why[id], "no answer within 100 ms");
    }
    assert_true(metric(f->w, "es_serve_webhook_requests_total{outcome=\"timeout\"}") == 6);
    fixture_free(f);
}

/* Nobody listens: connection refused each time, a dead letter with
 * libcurl's account of it. */
static void test_refused_connection_dead_letters(void **state)
{
    (void)state;
    fixture *f = fixture_new(FLAKY);
    int port = f->s.port;
    standin_stop(&f->s); /* the port is closed now */
    assert_int_equal(standin_start_workers(&f->s, 1, on_post, &f->r), 0); /* for fixture_free */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    webhook_options o;
    fast_options(&o, url);
    o.attempts = 2;
    assert_int_equal(webhook_start(&o, on_done, &f->out, &f->w), ES_OK);
    send_events(f->w, 2);
    assert_true(wait_done(&f->out, 2));
    for (uint64_t id = 0; id < 2; id++) {
        assert_int_equal(f->out.outcome[id], TAP_DEAD_LETTER);
        assert_true(strlen(f->out.why[id]) > 0);
        assert_null(strstr(f->out.why[id], "HTTP"));
    }
    assert_true(metric(f->w, "es_serve_webhook_requests_total{outcome=\"error\"}") == 4);
    fixture_free(f);
}

/* Four events whose first request is answered `status` with the header
 * line `header` (NULL: a Retry-After HTTP-date two seconds after the
 * events are sent, at Unix time *date): each is acked on its second
 * request; the longest and shortest wait between the two, in *longest and
 * *shortest, and the earliest retry's wall-clock time in *first_retry_ms. */
static void retry_waits(int status, const char *header, int64_t retry_after_max_ms,
                        int64_t *shortest, int64_t *longest, int64_t *first_retry_ms, time_t *date)
{
    const unsigned n = 4;
    fixture *f = fixture_new(RETRY_LATER);
    f->r.first_status = status;
    webhook_options o;
    fast_options(&o, f->url); /* a backoff of 5 to 40 ms */
    o.retry_after_max_ms = retry_after_max_ms;
    assert_int_equal(webhook_start(&o, on_done, &f->out, &f->w), ES_OK);
    char line[128];
    if (header == NULL) { /* now: under valgrind the start above may take seconds */
        *date = time(NULL) + 2;
        struct tm tm;
        gmtime_r(date, &tm);
        strftime(line, sizeof line, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        header = line;
    }
    standin_post_headers(&f->s, header);
    send_events(f->w, n);
    assert_true(wait_done(&f->out, n));
    *shortest = *first_retry_ms = INT64_MAX;
    *longest = 0;
    for (uint64_t id = 0; id < n; id++) {
        assert_int_equal(f->out.outcome[id], TAP_ACKED);
        assert_int_equal(f->r.arrivals[id], 2);
        int64_t waited = f->r.arrived_ms[id][1] - f->r.arrived_ms[id][0];
        *shortest = waited < *shortest ? waited : *shortest;
        *longest = waited > *longest ? waited : *longest;
        if (f->r.arrived_ms[id][1] < *first_retry_ms)
            *first_retry_ms = f->r.arrived_ms[id][1];
    }
    assert_int_equal(f->r.bad, 0);
    fixture_free(f);
}

/* Retry-After on a 429 (seconds) and a 503 (an HTTP-date): the retry waits
 * at least that long, not much longer; on a 500 it is not read. */
static void test_retry_after_is_honoured(void **state)
{
    (void)state;
    int64_t shortest, longest, first_retry;
    time_t at = 0;
    retry_waits(429, "Retry-After: 1\r\n", 600000, &shortest, &longest, &first_retry, NULL);
    printf("  429, Retry-After: 1: the retries waited %" PRId64 " to %" PRId64 " ms\n", shortest,
           longest);
    assert_true(shortest >= 1000 && longest < 3000);

    retry_waits(503, NULL, 600000, &shortest, &longest, &first_retry, &at);
    printf("  503, Retry-After an HTTP-date 2 s ahead: waited %" PRId64 " to %" PRId64 " ms\n",
           shortest, longest);
    assert_true(first_retry >= (int64_t)at * 1000); /* not before the date */
    assert_true(longest < 4000);

    retry_waits(500, "Retry-After: 1\r\n", 600000, &shortest, &longest, &first_retry, NULL);
    assert_true(longest < 1000); /* the backoff's: 5 to 40 ms */
}

/* Hostile values: a huge delay waits the bound (here 300 ms), not more;
 * negative, fractional, garbage, past, too long ones wait the backoff only
 * (with a bound of 5 s, so that one misread as 1 s or more would show). */
static void test_hostile_retry_after_neither_stalls_nor_crashes(void **state)
{
    (void)state;
    int64_t shortest, longest, first_retry;
    retry_waits(429, "Retry-After: 99999999999999999999999999999999\r\n", 300, &shortest, &longest,
                &first_retry, NULL);
    assert_true(shortest >= 300 && longest < 2000);
    const char *ignored[] = {
        "Retry-After: -5\r\n",
        "Retry-After: 1.5\r\n",
        "Retry-After: soon\r\n",
        "Retry-After: \r\n",
        "Retry-After: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
        "Retry-After: 1111111111111111111111111111111111111111111111111111111111111111111111\r\n",
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        retry_waits(503, ignored[i], 5000, &shortest, &longest, &first_retry, NULL);
        if (longest >= 1000)
            fail_msg("%s waited %" PRId64 " ms", ignored[i], longest);
    }
}

/* webhook_retry_after_ms's reading of the header's value. */
static void test_retry_after_values(void **state)
{
    (void)state;
    const int64_t now = 1700000000, max = 60000;
    assert_int_equal(webhook_retry_after_ms("1", now, max), 1000);
    assert_int_equal(webhook_retry_after_ms("0", now, max), 0);
    assert_int_equal(webhook_retry_after_ms("120", now, max), max);
    assert_int_equal(webhook_retry_after_ms("18446744073709551616999", now, max), max);
    assert_int_equal(webhook_retry_after_ms("", now, max), -1);
    assert_int_equal(webhook_retry_after_ms("-5", now, max), -1);
    assert_int_equal(webhook_retry_after_ms("1.5", now, max), -1);
    assert_int_equal(webhook_retry_after_ms("garbage", now, max), -1);
    /* 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT */
    assert_int_equal(webhook_retry_after_ms("Tue, 14 Nov 2023 22:13:25 GMT", now, max), 5000);
    assert_int_equal(webhook_retry_after_ms("Tue, 14 Nov 2023 22:13:00 GMT", now, max), 0);
    assert_int_equal(webhook_retry_after_ms("Fri, 31 Dec 9999 23:59:59 GMT", now, max), max);
}

/* webhook_sign against the HMAC computed here, and its exact layout. */
static void test_signature_layout(void **state)
{
    (void)state;
    static const char body[] = "{\"id\":7}";
    char sig[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign(SECRET, strlen(SECRET), 1700000000, (const unsigned char *)body,
                                  strlen(body), sig),
                     ES_OK);
    assert_int_equal(strncmp(sig, "t=1700000000,v1=", 16), 0);
    assert_int_equal(strlen(sig), 16 + 64);
    unsigned char mac[32];
    unsigned len = 0;
    static const char msg[] = "1700000000.{\"id\":7}";
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)msg, strlen(msg), mac,
         &len);
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(sig + 16, hex);
    /* the same value as docs/serve.md's Python and openssl dgst give */
    assert_string_equal(sig, "t=1700000000,v1=d92ab38a53ca5d49f80abe1a71b3c23bbc4127f40073891846333ae"
                             "3194bb5f1");
}

/* Stopping with requests under way returns promptly (the receiver takes
 * 400 ms to answer) and calls no done, then and after; sends are refused
 * from then on (the dispatcher, destroyed next, may still send). */
static void test_stop_abandons_in_flight(void **state)
{
    (void)state;
    fixture *f = fixture_new(TOO_SLOW);
    webhook_options o;
    fast_options(&o, f->url);
    assert_int_equal(webhook_start(&o, on_done, &f->out, &f->w), ES_OK);
    send_events(f->w, 20);
    standin_sleep_ms(100);
    assert_true(metric(f->w, "es_serve_webhook_held") == 20);
    assert_true(metric(f->w, "es_serve_webhook_in_flight") == BOUND);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    webhook_stop(f->w);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 250);
    webhook_stop(f->w); /* idempotent */
    tap_target t = webhook_target(f->w);
    tap_event ev = {99, "did:plc:test", true, (const unsigned char *)"{}", 2};
    assert_int_equal(t.send(t.self, &ev), ES_ERR_STOPPED);
    standin_sleep_ms(500); /* the receiver has answered everything by now */
    assert_int_equal(f->out.total, 0);
    fixture_free(f);
}

static void test_bad_options(void **state)
{
    (void)state;
    outcomes out;
    webhook *w = NULL;
    webhook_options o;
    webhook_options_init(&o);
    assert_int_equal(webhook_start(&o, on_done, &out, &w), ES_ERR_INVALID); /* no URL */
    o.url = "ftp://127.0.0.1/";
    assert_int_equal(webhook_start(&o, on_done, &out, &w), ES_ERR_INVALID);
    o.url = "http://127.0.0.1/";
    o.attempts = 0;
    assert_int_equal(webhook_start(&o, on_done, &out, &w), ES_ERR_INVALID);
    o.attempts = 1;
    o.max_in_flight = 0;
    assert_int_equal(webhook_start(&o, on_done, &out, &w), ES_ERR_INVALID);
    assert_null(w);
    webhook_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flaky_receiver_gets_everything),
        cmocka_unit_test(test_always_failing_receiver_dead_letters),
        cmocka_unit_test(test_timeouts_dead_letter),
        cmocka_unit_test(test_refused_connection_dead_letters),
        cmocka_unit_test(test_signature_layout),
        cmocka_unit_test(test_stop_abandons_in_flight),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_retry_after_is_honoured),
        cmocka_unit_test(test_hostile_retry_after_neither_stalls_nor_crashes),
        cmocka_unit_test(test_retry_after_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
