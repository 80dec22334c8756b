/* The Tap-style dispatcher (dispatch.h) against a live server (NATS_URL),
 * with a target of the test's own that answers from another thread, late
 * and out of order: Tap's per-repo rule (live events are barriers,
 * historical ones of a repo go together) over interleaved historical and
 * live events of several repos, the bound on events in flight, dead letters
 * recorded in ES_<store>_dead_letters and counted (a flood of them logged
 * in a few lines), a dispatcher made again on the same consumer resuming
 * after what was acknowledged, and --collections narrowing the consumer. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <es/checkpoint.h>
#include <es/projection.h>
#include <es/time.h>

#include "dispatch.h"
#include "live.h"
#include "tap_events.h"

#define EVENTS_MAX 512
#define WAIT_MS    20000

/* ---- a target that answers late, from its own thread -------------------------- */

typedef struct sent {
    uint64_t id;
    char did[64];
    bool live;
    int64_t due_ms; /* when the answer goes */
} sent;

typedef struct target {
    pthread_mutex_t lock;
    dispatch *d;
    sent flight[EVENTS_MAX]; /* sent, not answered */
    size_t n;
    int sends[EVENTS_MAX];   /* by id */
    bool answered_id[EVENTS_MAX];
    uint64_t first_id;
    size_t most_in_flight, answered;
    uint64_t dead_id; /* answer this one with a dead letter */
    bool all_dead;    /* answer every one with a dead letter */
    bool odd_unanswered; /* never answer odd ids */
    bool any_order;      /* historical events may come in any order (Tap's rule) */
    char violation[256];
    uint64_t last_sent[8]; /* per repo (index in dids) */
    atomic_bool stop;
    pthread_t thread;
    unsigned seed;
} target;

#define dids    tap_dids
#define repo_of tap_repo_of

/* Tap's rule, checked at each send against what is in flight. */
static void check_rule(target *t, const tap_event *ev)
{
    for (size_t i = 0; i < t->n && t->violation[0] == '\0'; i++) {
        const sent *s = &t->flight[i];
        if (strcmp(s->did, ev->did) != 0)
            continue;
        if (ev->live || s->live)
            snprintf(t->violation, sizeof t->violation,
                     "%s event %llu sent while %s event %llu of its repo is in flight",
                     ev->live ? "live" : "historical", (unsigned long long)ev->id,
                     s->live ? "live" : "historical", (unsigned long long)s->id);
    }
    int r = repo_of(ev->did);
    if (r >= 0 && ev->id <= t->last_sent[r] && t->violation[0] == '\0' &&
        (!t->any_order || ev->live))
        snprintf(t->violation, sizeof t->violation, "event %llu sent after %llu of its repo",
                 (unsigned long long)ev->id, (unsigned long long)t->last_sent[r]);
    if (r >= 0)
        t->last_sent[r] = ev->id;
}

static es_status target_send(void *self, const tap_event *ev)
{
    target *t = self;
    json_t *j = json_loadb((const char *)ev->json, ev->len, 0, NULL);
    bool ok = j != NULL && json_integer_value(json_object_get(j, "id")) == (json_int_t)ev->id;
    json_decref(j);
    pthread_mutex_lock(&t->lock);
    if (!ok)
        snprintf(t->violation, sizeof t->violation, "event %llu: bad JSON", (unsigned long long)ev->id);
    check_rule(t, ev);
    if (t->first_id == 0)
        t->first_id = ev->id;
    if (ev->id < EVENTS_MAX)
        t->sends[ev->id]++;
    else
        snprintf(t->violation, sizeof t->violation, "id %llu past the test's tables",
                 (unsigned long long)ev->id);
    sent *s = &t->flight[t->n++];
    s->id = ev->id;
    snprintf(s->did, sizeof s->did, "%s", ev->did);
    s->live = ev->live;
    s->due_ms = es_monotonic_ms() + rand_r(&t->seed) % 8;
    if (t->n > t->most_in_flight)
        t->most_in_flight = t->n;
    pthread_mutex_unlock(&t->lock);
    return ES_OK;
}

/* Answers what is due, in no particular order. */
static void *answerer(void *arg)
{
    target *t = arg;
    while (!atomic_load(&t->stop)) {
        pthread_mutex_lock(&t->lock);
        size_t i = t->n ? (size_t)rand_r(&t->seed) % t->n : 0;
        bool due = t->n > 0 && t->flight[i].due_ms <= es_monotonic_ms() &&
                   !(t->odd_unanswered && t->flight[i].id % 2 == 1);
        sent s = due ? t->flight[i] : (sent){0};
        if (due) {
            t->flight[i] = t->flight[--t->n];
            t->answered++;
            t->answered_id[s.id] = true;
        }
        pthread_mutex_unlock(&t->lock);
        if (due)
            dispatch_done(t->d, s.id,
                          s.id == t->dead_id || t->all_dead ? TAP_DEAD_LETTER : TAP_ACKED,
                          "the test gives up");
        else
            live_sleep_ms(1);
    }
    return NULL;
}

/* `t` zeroed but for its policy (dead_id, odd_unanswered, any_order). */
static void target_start(target *t, dispatch *d)
{
    pthread_mutex_init(&t->lock, NULL);
    t->d = d;
    t->seed = 7;
    assert_int_equal(pthread_create(&t->thread, NULL, answerer, t), 0);
}

/* A dispatcher on `consumer` delivering to a new target `t`, of the
 * collections `collections` (NULL: all). */
static dispatch *start_of(es_store *st, const char *consumer, int max_in_flight,
                          int64_t takeover_ms, const char *collections, target *t)
{
    dispatch_config cfg;
    dispatch_config_init(&cfg);
    cfg.consumer = consumer;
    cfg.max_in_flight = max_in_flight;
    cfg.takeover_ms = takeover_ms;
    cfg.collections = collections;
    dispatch *d;
    assert_int_equal(dispatch_create(st, &cfg, &d), ES_OK);
    target_start(t, d);
    tap_target tt = {.send = target_send, .self = t};
    assert_int_equal(dispatch_start(d, &tt), ES_OK);
    return d;
}

static dispatch *start(es_store *st, const char *consumer, int max_in_flight,
                       int64_t takeover_ms, target *t)
{
    return start_of(st, consumer, max_in_flight, takeover_ms, NULL, t);
}

static void target_stop(target *t)
{
    atomic_store(&t->stop, true);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->lock);
}

/* ---- the store ------------------------------------------------------------------ */

static int setup(void **state)
{
    static live_store ls;
    return live_group_setup(state, &ls, "dispatch_t");
}

static void append_op(es_store *st, const char *did, int n, bool live)
{
    assert_int_equal(tap_append_op(st, did, n, live), ES_OK);
}

static size_t append_mix(es_store *st, int rounds)
{
    size_t n = tap_append_mix(st, rounds);
    assert_int_equal(n, (size_t)rounds * 21);
    return n;
}

static void wait_answered(target *t, size_t want)
{
    for (int64_t waited = 0; waited < WAIT_MS; waited += 10) {
        pthread_mutex_lock(&t->lock);
        size_t got = t->answered;
        pthread_mutex_unlock(&t->lock);
        if (got >= want)
            return;
        live_sleep_ms(10);
    }
    fail_msg("only some events were answered in %d ms", WAIT_MS);
}

/* Until the dispatcher is done with `want` events (sent and answered, or skipped). */
static void wait_done(dispatch *d, uint64_t want)
{
    dispatch_stats ds;
    for (int64_t waited = 0; waited < WAIT_MS; waited += 10) {
        dispatch_stats_get(d, &ds);
        if (ds.acked + ds.dead_letters + ds.skipped >= want)
            return;
        live_sleep_ms(10);
    }
    fail_msg("the dispatcher is done with %llu events of %llu",
             (unsigned long long)(ds.acked + ds.dead_letters + ds.skipped), (unsigned long long)want);
}

static void barriers_bound_and_dead_letters(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    es_store_info si;
    assert_int_equal(es_store_info_get(st, &si), ES_OK);
    size_t n = append_mix(st, 4); /* 84 events */
    append_op(st, "did:plc:dddddddddddddddddddddddd", 0, false); /* dead-lettered below */
    es_event_spec other;
    es_event_spec_init(&other);
    other.entity_type = "account"; /* not the adapter's: skipped */
    other.entity_id = "x";
    other.event_type = "opened";
    assert_int_equal(es_append(st, &other, NULL), ES_OK);

    target t = {.dead_id = si.last_seq + n + 1};
    dispatch *d = start(st, "tap_rule", 4, 2000, &t);
    wait_answered(&t, n + 1);
    live_sleep_ms(300); /* nothing more comes */
    dispatch_stats ds;
    dispatch_stats_get(d, &ds);
    es_buf m = ES_BUF_INIT;
    dispatch_metrics(d, &m);
    dispatch_destroy(d);
    target_stop(&t);

    if (t.violation[0] != '\0')
        fail_msg("%s", t.violation);
    assert_true(t.most_in_flight <= 4);
    assert_true(t.most_in_flight >= 2); /* historical events did go together */
    for (uint64_t id = si.last_seq + 1; id <= si.last_seq + n + 1; id++)
        assert_int_equal(t.sends[id], 1);
    assert_int_equal(ds.acked, n);
    assert_int_equal(ds.dead_letters, 1);
    assert_int_equal(ds.skipped, 1);
    assert_int_equal(ds.in_flight, 0);
    assert_non_null(strstr((const char *)m.data, "es_serve_tap_deliveries_total{outcome=\"dead_letter\"} 1"));
    es_buf_free(&m);

    /* the dead letter, where an operator lists it */
    es_checkpoints *dl;
    assert_int_equal(es_checkpoints_open_bucket(st, ES_CHECKPOINTS_DEAD_LETTERS, &dl), ES_OK);
    char name[64];
    snprintf(name, sizeof name, "tap_rule.%llu", (unsigned long long)t.dead_id);
    es_checkpoint cp;
    assert_int_equal(es_checkpoint_get(dl, name, &cp), ES_OK);
    assert_int_equal(cp.position, t.dead_id);
    assert_non_null(strstr(cp.data, "the test gives up"));
    assert_non_null(strstr(cp.data, "did:plc:dddddddddddddddddddddddd"));
    es_checkpoint_clear(&cp);
    es_checkpoints_destroy(dl);
}

typedef struct prefix_count {
    const char *prefix;
    size_t n;
} prefix_count;

static es_status count_prefixed(const char *name, const es_checkpoint *cp, void *closure)
{
    (void)cp;
    prefix_count *c = closure;
    if (strncmp(name, c->prefix, strlen(c->prefix)) == 0)
        c->n++;
    return ES_OK;
}

/* Waits (10 s at most) until the dead-letter bucket holds `want` entries
 * named `prefix`...: a dead letter is counted when given up, then written
 * to the bucket, then logged. */
static void wait_recorded(es_store *st, const char *prefix, size_t want)
{
    es_checkpoints *dl;
    assert_int_equal(es_checkpoints_open_bucket(st, ES_CHECKPOINTS_DEAD_LETTERS, &dl), ES_OK);
    prefix_count c = {prefix, 0};
    for (int i = 0; i < 200; i++) {
        c.n = 0;
        assert_int_equal(es_checkpoint_list(dl, count_prefixed, &c), ES_OK);
        if (c.n >= want)
            break;
        live_sleep_ms(50);
    }
    es_checkpoints_destroy(dl);
    assert_int_equal(c.n, want);
    live_sleep_ms(100); /* the last one's log line follows its write */
}

/* Stopped half-way, made again: nothing acknowledged comes again, the rest
 * comes (at least once). */
static void a_new_dispatcher_resumes_after_the_acknowledged(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    es_store_info si;
    assert_int_equal(es_store_info_get(st, &si), ES_OK);
    target t = {0};
    dispatch *d = start(st, "tap_resume", 8, 1000, &t);
    wait_done(d, si.last_seq); /* what is stored already (the consumer starts at the first) */
    size_t n = append_mix(st, 2); /* 42 more */
    wait_done(d, si.last_seq + n);
    dispatch_destroy(d);
    target_stop(&t);

    size_t more = append_mix(st, 1); /* 21 while none runs */
    target t2 = {0};
    d = start(st, "tap_resume", 8, 1000, &t2);
    wait_done(d, more);
    live_sleep_ms(300);
    dispatch_destroy(d);
    target_stop(&t2);
    if (t2.violation[0] != '\0')
        fail_msg("%s", t2.violation);
    assert_int_equal(t2.answered, more); /* none of the acknowledged came again */
    assert_int_equal(t2.first_id, si.last_seq + n + 1);
}

/* Stopped while the odd events are unanswered: a new dispatcher gets
 * exactly the events the first did not finish (each was acknowledged to
 * the server when done, not with its batch), whatever the pulls were. */
static void a_stopped_batch_keeps_what_was_done(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    for (int i = 0; i < 10; i++)
        append_op(st, dids[2], 100 + i, false);
    es_store_info si;
    assert_int_equal(es_store_info_get(st, &si), ES_OK);
    target t = {.odd_unanswered = true};
    dispatch *d = start(st, "tap_half", 32, 1000, &t);
    wait_answered(&t, 1);
    size_t answered = 0; /* until nothing moves for half a second */
    for (int still = 0; still < 50; still++, live_sleep_ms(10)) {
        pthread_mutex_lock(&t.lock);
        if (t.answered != answered)
            still = 0;
        answered = t.answered;
        pthread_mutex_unlock(&t.lock);
    }
    dispatch_stats s1;
    dispatch_stats_get(d, &s1);
    dispatch_destroy(d);
    target_stop(&t);
    assert_true(answered > 0);

    /* Tap's rule lets historical events come in any order; live ones are
     * checked. */
    target t2 = {.any_order = true};
    d = start(st, "tap_half", 32, 1000, &t2);
    wait_done(d, si.last_seq - (s1.acked + s1.skipped + s1.dead_letters));
    live_sleep_ms(300);
    dispatch_destroy(d);
    target_stop(&t2);
    if (t2.violation[0] != '\0')
        fail_msg("%s", t2.violation);
    size_t again = 0;
    for (uint64_t id = 1; id <= si.last_seq; id++) {
        if (t.answered_id[id])
            assert_int_equal(t2.sends[id], 0); /* done before: never again */
        else if (t.sends[id] > 0)
            assert_int_equal(t2.sends[id], 1), again++; /* held when stopped: once more */
    }
    assert_true(again > 0);
    print_message("%zu done before the stop, %zu delivered again\n", answered, again);
}

/* stderr into `path` (returns the saved descriptor), and back */
static int stderr_to(const char *path)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    return saved;
}

static void stderr_back(int saved)
{
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

/* Lines of `path` holding `text`; the last such line into last[size]. */
static size_t lines_with(const char *path, const char *text, char *last, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, text) != NULL) {
            n++;
            snprintf(last, size, "%s", line);
        }
    fclose(f);
    return n;
}

/* 150 events dead-lettered at once: 10 lines in full (the default burst)
 * and one summary line with the exact count of the rest; the metrics and
 * the dead-letter bucket have every one. */
static void a_flood_of_dead_letters_is_logged_in_a_few_lines(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    es_store_info si;
    assert_int_equal(es_store_info_get(st, &si), ES_OK);
    const int flood = 150;
    for (int i = 0; i < flood; i += 50)
        assert_int_equal(tap_append_ops(st, dids[2], 1000 + i, 50, false), ES_OK);
    char path[] = "/tmp/es-dispatch-log-XXXXXX";
    int tmpfd = mkstemp(path);
    assert_true(tmpfd >= 0);
    close(tmpfd);

    int saved = stderr_to(path);
    target t = {.all_dead = true};
    /* after what the store holds: only the flood */
    dispatch_config cfg;
    dispatch_config_init(&cfg);
    cfg.consumer = "tap_flood";
    cfg.max_in_flight = 32;
    cfg.takeover_ms = 2000;
    es_projection_config pc;
    es_projection_config_init(&pc);
    pc.ordered = true;
    pc.start = ES_PROJECTION_AFTER_SEQ;
    pc.after_seq = si.last_seq; /* read before the flood was appended */
    pc.ack_wait_ms = cfg.takeover_ms;
    pc.pin_timeout_ms = cfg.takeover_ms + cfg.takeover_ms / 2;
    pc.max_deliver = -1;
    pc.max_ack_pending = DISPATCH_IN_FLIGHT_MAX;
    pc.description = "es-atproto-serve: Tap-style delivery";
    assert_int_equal(es_projection_create(st, cfg.consumer, &pc), ES_OK);
    dispatch *d;
    assert_int_equal(dispatch_create(st, &cfg, &d), ES_OK);
    target_start(&t, d);
    tap_target tt = {.send = target_send, .self = &t};
    assert_int_equal(dispatch_start(d, &tt), ES_OK);
    wait_done(d, (uint64_t)flood);
    wait_recorded(st, "tap_flood.", (size_t)flood); /* counted first, then recorded and logged */
    dispatch_stats ds;
    dispatch_stats_get(d, &ds);
    es_buf m = ES_BUF_INIT;
    dispatch_metrics(d, &m);
    dispatch_destroy(d); /* writes the summary of what is left */
    target_stop(&t);
    stderr_back(saved);

    char last[1024] = "", summary[1024] = "";
    size_t full = lines_with(path, "dead-lettered", last, sizeof last);
    size_t summaries = lines_with(path, "lines about tap_flood not logged", summary,
                                  sizeof summary);
    print_message("%zu lines in full; %s", full, summary);
    if (full + summaries != lines_with(path, "", last, sizeof last)) { /* others: show them */
        char cmd[128];
        snprintf(cmd, sizeof cmd, "grep -v dead-lettered %s | head -5", path);
        assert_int_equal(system(cmd), 0);
    }
    unlink(path);
    assert_int_equal(ds.dead_letters, (uint64_t)flood);
    char want[128];
    snprintf(want, sizeof want, "es_serve_tap_deliveries_total{outcome=\"dead_letter\"} %d", flood);
    assert_non_null(strstr((const char *)m.data, want));
    es_buf_free(&m);
    assert_int_equal(full, 10);
    assert_int_equal(summaries, 1);
    snprintf(want, sizeof want, ": %d lines about tap_flood not logged", flood - 10);
    assert_non_null(strstr(summary, want));
    snprintf(want, sizeof want, " dead_letter=%d", flood - 10);
    assert_non_null(strstr(summary, want));
}

/* --collections: exact NSIDs become the consumer's filters (identity events
 * and each collection), a prefix reads everything and the dispatcher sorts;
 * either way only the wanted collection's record events are sent. Changing
 * them on the same consumer brings its filters along. */
static void collections_narrow_the_consumer(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER(*state);
    es_store *st = ((live_store *)*state)->store;
    es_store_info si;
    assert_int_equal(es_store_info_get(st, &si), ES_OK);
    es_projection_info info;

    target t = {0};
    dispatch *d = start_of(st, "tap_narrow", 8, 1000, "app.bsky.graph.follow", &t);
    assert_int_equal(es_projection_info_get(st, "tap_narrow", &info), ES_OK);
    assert_int_equal(info.filter_count, 2); /* "repo" and app_bsky_graph_follow */
    live_sleep_ms(500);
    dispatch_stats ds;
    dispatch_stats_get(d, &ds);
    dispatch_destroy(d);
    target_stop(&t);
    assert_int_equal(ds.sent, 0); /* the store holds posts only */
    assert_int_equal(ds.filtered, 0); /* the NATS server sent none of them */

    target t2 = {0};
    d = start_of(st, "tap_narrow", 8, 1000, "app.bsky.graph.*", &t2);
    assert_int_equal(es_projection_info_get(st, "tap_narrow", &info), ES_OK);
    assert_int_equal(info.filter_count, 0); /* a prefix: every event */
    dispatch_destroy(d);
    target_stop(&t2);

    target t3 = {0};
    d = start_of(st, "tap_sorted", 8, 1000, "app.bsky.graph.*,app.bsky.actor.profile", &t3);
    wait_done(d, 0);
    for (int i = 0; i < 200; i++) {
        dispatch_stats_get(d, &ds);
        if (ds.filtered + ds.skipped >= si.last_seq)
            break;
        live_sleep_ms(10);
    }
    dispatch_destroy(d);
    target_stop(&t3);
    assert_int_equal(ds.sent, 0);
    assert_int_equal(ds.filtered + ds.skipped, si.last_seq); /* read, and left out here */
    assert_true(ds.filtered > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(barriers_bound_and_dead_letters),
        cmocka_unit_test(a_new_dispatcher_resumes_after_the_acknowledged),
        cmocka_unit_test(a_stopped_batch_keeps_what_was_done),
        cmocka_unit_test(a_flood_of_dead_letters_is_logged_in_a_few_lines),
        cmocka_unit_test(collections_narrow_the_consumer),
    };
    return cmocka_run_group_tests(tests, setup, live_group_teardown);
}
