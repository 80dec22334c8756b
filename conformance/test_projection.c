/* Durable projections against a live server: exactly once without failures,
 * at least once with redelivery, competing instances, stop/restart,
 * multi-filter and start positions, per-entity order under 4 instances,
 * dead letters, the definition's lifecycle, and batches held in progress. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_SEQ 4096
#define WAIT_MS 20000

/* What handlers saw, shared by every instance of a test. */
typedef struct recorder {
    pthread_mutex_t mu;
    int handled[MAX_SEQ];  /* successful handler calls per stream sequence */
    int attempts[MAX_SEQ]; /* every handler call */
    int by_instance[4];
    int dead[MAX_SEQ];
    bool out_of_order;
    char why[256]; /* the first event out of order: which entity, sequences, instances */
    char last_entity_seq_key[64][32];
    uint64_t last_entity_seq[64];
    int last_entity_instance[64];
    int entities;
    /* behaviour */
    int fail_first_of_every; /* fail the first attempt of seq % n == 0 (0: never) */
    int fail_permanently_of_every;
    bool always_fail_seq_7;
    int slow_every; /* a short pause now and then, to shuffle instances */
    uint64_t hold_seq; /* its first attempt is held hold_ms, kept in progress */
    int64_t hold_ms;
    _Atomic bool holding;
    _Atomic int total;
} recorder;

typedef struct instance {
    recorder *r;
    int index;
    natsConnection *nc;
    es_store *st;
    es_projection *p;
} instance;

static void recorder_init(recorder *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

/* Per-entity order: each entity's sequences must only go up (a duplicate
 * counts as out of order too). Under r->mu; `by` (the instance) is -1 when
 * unknown. */
static void check_order(recorder *r, const es_event *ev, int by)
{
    size_t len;
    const char *id = es_event_entity_id(ev, &len);
    int i = 0;
    for (; i < r->entities; i++)
        if (strcmp(r->last_entity_seq_key[i], id) == 0)
            break;
    if (i == r->entities && r->entities < 64)
        snprintf(r->last_entity_seq_key[r->entities++], 32, "%s", id);
    if (i < 64) {
        uint64_t seq = es_event_seq(ev);
        if (seq <= r->last_entity_seq[i] && !r->out_of_order)
            snprintf(r->why, sizeof r->why,
                     "entity %s: seq %llu (instance %d, handler call %d, handled %d times) "
                     "after seq %llu (instance %d)",
                     id, (unsigned long long)seq, by, seq < MAX_SEQ ? r->attempts[seq] : -1,
                     seq < MAX_SEQ ? r->handled[seq] : -1,
                     (unsigned long long)r->last_entity_seq[i], r->last_entity_instance[i]);
        if (seq <= r->last_entity_seq[i])
            r->out_of_order = true;
        r->last_entity_seq[i] = seq;
        r->last_entity_instance[i] = by;
    }
}

static void assert_in_order(const recorder *r)
{
    if (r->out_of_order)
        fail_msg("out of per-entity order: %s", r->why);
}

static es_status on_event(const es_event *ev, void *closure)
{
    instance *in = closure;
    recorder *r = in->r;
    uint64_t seq = es_event_seq(ev);
    assert_true(seq < MAX_SEQ);
    pthread_mutex_lock(&r->mu);
    int attempt = ++r->attempts[seq];
    pthread_mutex_unlock(&r->mu);
    if (r->slow_every && seq % (uint64_t)r->slow_every == 0)
        conf_sleep_ms(2);
    if (seq == r->hold_seq && attempt == 1) {
        r->holding = true;
        for (int64_t t = 0; t < r->hold_ms; t += 100) {
            conf_sleep_ms(100);
            assert_int_equal(es_projection_in_progress(ev), ES_OK);
        }
    }
    if (r->always_fail_seq_7 && seq == 7)
        return ES_ERR_TIMEOUT;
    if (r->fail_permanently_of_every && seq % (uint64_t)r->fail_permanently_of_every == 0)
        return ES_ERR_DECODE;
    if (r->fail_first_of_every && seq % (uint64_t)r->fail_first_of_every == 0 && attempt == 1)
        return ES_ERR_CONNECTION;
    pthread_mutex_lock(&r->mu);
    r->handled[seq]++;
    r->by_instance[in->index]++;
    check_order(r, ev, in->index);
    pthread_mutex_unlock(&r->mu);
    r->total++;
    return ES_OK;
}

static void on_dead(const es_event *ev, es_status why, void *closure)
{
    instance *in = closure;
    (void)why;
    pthread_mutex_lock(&in->r->mu);
    in->r->dead[es_event_seq(ev)]++;
    pthread_mutex_unlock(&in->r->mu);
}

static void run_options(es_projection_run_options *o)
{
    es_projection_run_options_init(o);
    o->heartbeat_ms = 200;
    o->retry_backoff_ms = 20;
    o->retry_backoff_max_ms = 100;
}

/* An instance with its own connection, as another process would have. */
static void start_instance(conf_ctx *c, instance *in, recorder *r, int index, const char *name,
                           const es_projection_run_options *o)
{
    memset(in, 0, sizeof *in);
    in->r = r;
    in->index = index;
    in->nc = conf_connect(conf_url);
    assert_int_equal(es_store_open(in->nc, c->name, NULL, &in->st), ES_OK);
    es_projection_handler h = {.on_event = on_event, .on_dead_letter = on_dead, .closure = in};
    es_status s = es_projection_start(in->st, name, &h, o, &in->p);
    if (s != ES_OK)
        fail_msg("es_projection_start: %s", es_last_error());
}

static void stop_instance(instance *in)
{
    assert_int_equal(es_projection_stop(in->p), ES_OK);
    es_projection_destroy(in->p);
    es_store_destroy(in->st);
    natsConnection_Destroy(in->nc);
    in->p = NULL;
}

static void wait_caught_up(instance *in)
{
    es_status s = es_projection_wait_caught_up(in->p, WAIT_MS);
    if (s != ES_OK)
        fail_msg("wait_caught_up: %s", es_last_error());
}

static void config(es_projection_config *cfg, const es_filter *filters, size_t n)
{
    es_projection_config_init(cfg);
    cfg->filters = filters;
    cfg->filter_count = n;
    cfg->ack_wait_ms = 2000;
}

static es_filter type_filter(const char *type)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = type;
    return f;
}

/* Appends `per` events to each of `entities` entities of `type`, interleaved. */
static void append_interleaved(es_store *st, const char *type, int entities, int per)
{
    for (int k = 0; k < per; k++) {
        es_event_spec specs[64];
        char ids[64][16];
        for (int e = 0; e < entities; e++) {
            snprintf(ids[e], sizeof ids[e], "e%d", e);
            specs[e] = conf_spec(type, ids[e], k % 3 ? "updated" : "created", "x");
        }
        assert_int_equal(es_append_batch(st, specs, (size_t)entities, NULL), ES_OK);
    }
}

/* Every event of `type` handled exactly `times` times, none of the others. */
static void assert_handled(conf_ctx *c, recorder *r, const char *type, const char *event, int times)
{
    natsMsg *m = NULL;
    uint64_t last = 0;
    es_store_info si;
    assert_int_equal(es_store_info_get(c->st, &si), ES_OK);
    last = si.last_seq;
    assert_true(last < MAX_SEQ);
    for (uint64_t seq = 1; seq <= last; seq++) {
        m = conf_raw_get(c->nc, es_store_stream(c->st), seq);
        char prefix[128], suffix[64];
        snprintf(prefix, sizeof prefix, "$ES.%s.%s.", c->name, type);
        snprintf(suffix, sizeof suffix, ".%s", event ? event : "");
        const char *subject = natsMsg_GetSubject(m);
        bool matches =
            strncmp(subject, prefix, strlen(prefix)) == 0 &&
            (event == NULL || strcmp(subject + strlen(subject) - strlen(suffix), suffix) == 0);
        if (r->handled[seq] != (matches ? times : 0))
            fail_msg("seq %llu (%s) handled %d times, expected %d", (unsigned long long)seq,
                     subject, r->handled[seq], matches ? times : 0);
        natsMsg_Destroy(m);
    }
}

/* ---- tests ------------------------------------------------------------------ */

static void exactly_once_without_failures(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "order", 10, 30);
    append_interleaved(c->st, "invoice", 5, 10);
    es_filter f = type_filter("order");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    assert_int_equal(es_projection_create(c->st, "orders", &cfg), ES_OK);
    recorder r;
    recorder_init(&r);
    es_projection_run_options o;
    run_options(&o);
    instance in;
    start_instance(c, &in, &r, 0, "orders", &o);
    wait_caught_up(&in);
    assert_int_equal(r.total, 300);
    /* Live events after catching up. */
    append_interleaved(c->st, "order", 10, 5);
    append_interleaved(c->st, "invoice", 5, 2);
    wait_caught_up(&in);
    es_projection_stats st;
    es_projection_stats_get(in.p, &st);
    assert_int_equal(st.handled, 350);
    assert_int_equal(st.dead_lettered, 0);
    stop_instance(&in);
    assert_handled(c, &r, "order", NULL, 1);
}

static void at_least_once_with_redelivery(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "order", 10, 20);
    es_filter f = type_filter("order");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    cfg.max_deliver = 3;
    assert_int_equal(es_projection_create(c->st, "flaky", &cfg), ES_OK);
    recorder r;
    recorder_init(&r);
    r.fail_first_of_every = 5;        /* retryable: redelivered, then handled */
    r.fail_permanently_of_every = 23; /* permanent: dead-lettered at once */
    r.always_fail_seq_7 = true;       /* retryable for ever: dead after 3 deliveries */
    es_projection_run_options o;
    run_options(&o);
    instance in;
    start_instance(c, &in, &r, 0, "flaky", &o);
    wait_caught_up(&in);
    conf_sleep_ms(100);
    for (uint64_t seq = 1; seq <= 200; seq++) {
        bool permanent = seq % 23 == 0, forever = seq == 7, flaky = seq % 5 == 0;
        if (permanent) {
            assert_int_equal(r.attempts[seq], 1);
            assert_int_equal(r.dead[seq], 1);
            assert_int_equal(r.handled[seq], 0);
        } else if (forever) {
            assert_int_equal(r.attempts[seq], 3);
            assert_int_equal(r.dead[seq], 1);
        } else {
            assert_int_equal(r.handled[seq], 1);
            assert_int_equal(r.attempts[seq], flaky ? 2 : 1);
            assert_int_equal(r.dead[seq], 0);
        }
    }
    es_projection_stats st;
    es_projection_stats_get(in.p, &st);
    assert_int_equal(st.dead_lettered, 9); /* 8 multiples of 23, and seq 7 */
    stop_instance(&in);
}

static void two_instances_share_the_work(void **state)
{
    conf_ctx *c = *state;
    es_filter f = type_filter("order");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    assert_int_equal(es_projection_create(c->st, "shared", &cfg), ES_OK);
    recorder r;
    recorder_init(&r);
    r.slow_every = 3;
    es_projection_run_options o;
    run_options(&o);
    o.batch = 8;
    instance a, b;
    start_instance(c, &a, &r, 0, "shared", &o);
    start_instance(c, &b, &r, 1, "shared", &o);
    append_interleaved(c->st, "order", 20, 50);
    wait_caught_up(&a);
    stop_instance(&a);
    stop_instance(&b);
    assert_handled(c, &r, "order", NULL, 1);
    assert_true(r.by_instance[0] > 0);
    assert_true(r.by_instance[1] > 0);
    assert_int_equal(r.by_instance[0] + r.by_instance[1], 1000);
}

static void stop_and_restart_resume_in_place(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "order", 10, 100);
    es_filter f = type_filter("order");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    cfg.ack_wait_ms = 1000; /* anything in flight at the stop comes back quickly */
    assert_int_equal(es_projection_create(c->st, "resumed", &cfg), ES_OK);
    recorder r;
    recorder_init(&r);
    r.slow_every = 2;
    es_projection_run_options o;
    run_options(&o);
    o.batch = 16;
    instance in;
    start_instance(c, &in, &r, 0, "resumed", &o);
    while (r.total < 300)
        conf_sleep_ms(5);
    stop_instance(&in);
    int first_run = r.total;
    assert_true(first_run >= 300 && first_run < 1000);
    es_projection_info info;
    assert_int_equal(es_projection_info_get(c->st, "resumed", &info), ES_OK);
    assert_true(info.pending + info.ack_pending >= (uint64_t)(1000 - first_run));
    start_instance(c, &in, &r, 1, "resumed", &o);
    wait_caught_up(&in);
    stop_instance(&in);
    assert_handled(c, &r, "order", NULL, 1);
    assert_int_equal(r.by_instance[0], first_run);
}

static void multi_filter_and_start_positions(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "order", 4, 9); /* created on k = 0, 3, 6 */
    append_interleaved(c->st, "invoice", 3, 4);
    append_interleaved(c->st, "refund", 3, 4);
    es_filter fs[2];
    fs[0] = type_filter("order");
    fs[0].event_type = "created";
    fs[1] = type_filter("invoice");
    es_projection_config cfg;
    config(&cfg, fs, 2);
    assert_int_equal(es_projection_create(c->st, "multi", &cfg), ES_OK);
    recorder r;
    recorder_init(&r);
    es_projection_run_options o;
    run_options(&o);
    instance in;
    start_instance(c, &in, &r, 0, "multi", &o);
    wait_caught_up(&in);
    stop_instance(&in);
    assert_int_equal(r.total, 4 * 3 + 3 * 4);
    for (uint64_t seq = 1; seq <= 36; seq++) /* orders: k = seq / 4 */
        assert_int_equal(r.handled[seq], ((seq - 1) / 4) % 3 == 0 ? 1 : 0);

    /* After a sequence, and new only. */
    es_store_info si;
    assert_int_equal(es_store_info_get(c->st, &si), ES_OK);
    es_filter all = type_filter("refund");
    config(&cfg, &all, 1);
    cfg.start = ES_PROJECTION_AFTER_SEQ;
    cfg.after_seq = si.last_seq - 5;
    assert_int_equal(es_projection_create(c->st, "tail", &cfg), ES_OK);
    cfg.start = ES_PROJECTION_NEW_ONLY;
    assert_int_equal(es_projection_create(c->st, "fresh", &cfg), ES_OK);
    append_interleaved(c->st, "refund", 2, 1);
    recorder r2, r3;
    recorder_init(&r2);
    recorder_init(&r3);
    instance t, n;
    start_instance(c, &t, &r2, 0, "tail", &o);
    start_instance(c, &n, &r3, 0, "fresh", &o);
    wait_caught_up(&t);
    wait_caught_up(&n);
    stop_instance(&t);
    stop_instance(&n);
    assert_int_equal(r2.total, 5 + 2);
    assert_int_equal(r3.total, 2);
    assert_int_equal(r3.handled[si.last_seq + 1], 1);
}

static void per_entity_order_under_four_instances(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "account", 24, 40);
    es_filter f = type_filter("account");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    cfg.ordered = true;
    cfg.partitions = 4;
    cfg.pin_timeout_ms = 3000; /* above ack_wait, as it must be */
    assert_int_equal(es_projection_create(c->st, "ordered", &cfg), ES_OK);
    recorder r;
    recorder_init(&r);
    r.fail_first_of_every = 7; /* retried in place: must not let later events overtake */
    r.slow_every = 5;
    es_projection_run_options o;
    run_options(&o);
    o.batch = 16;
    instance in[4];
    /* Two processes take an assignment (instance i of 2), two take every
     * partition: the server's pins keep one holder per partition anyway. */
    for (int i = 0; i < 4; i++) {
        es_projection_run_options oi = o;
        if (i < 2) {
            oi.instance = i;
            oi.instances = 2;
        }
        start_instance(c, &in[i], &r, i, "ordered", &oi);
    }
    while (r.total < 300)
        conf_sleep_ms(5);
    stop_instance(&in[0]); /* its partitions move to the others, in order */
    append_interleaved(c->st, "account", 24, 10);
    wait_caught_up(&in[1]);
    for (int i = 1; i < 4; i++)
        stop_instance(&in[i]);
    assert_in_order(&r);
    assert_handled(c, &r, "account", NULL, 1);
    assert_int_equal(r.total, 24 * 50);
    es_projection_info info;
    assert_int_equal(es_projection_info_get(c->st, "ordered", &info), ES_OK);
    assert_true(info.ordered);
    assert_int_equal(info.partitions, 4);
    assert_int_equal(info.pending, 0);
}

/* Lets go of a consumer's pin, as the server does when the consumer's
 * leader changes (pins are not replicated) or a pin times out. */
static void unpin(conf_ctx *c, const char *consumer)
{
    char subject[256];
    snprintf(subject, sizeof subject, "$JS.API.CONSUMER.UNPIN.%s.%s", es_store_stream(c->st),
             consumer);
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, c->nc, subject, "{\"group\":\"es\"}",
                                                  5000),
                     NATS_OK);
    natsMsg_Destroy(reply);
}

/* Instance 0 holds an entity's first event (in progress) while instance 1
 * waits to take the partition: with `unpin_meanwhile` the pin is taken from
 * instance 0 mid-hold, else the hold outlasts the pin timeout (and its
 * in-progress notices must keep the pin). Either way the entity's later
 * events must wait for the held one. */
static void order_across_a_pin_move(conf_ctx *c, const char *type, bool unpin_meanwhile)
{
    append_interleaved(c->st, type, 1, 12);
    es_filter f = type_filter(type);
    es_projection_config cfg;
    config(&cfg, &f, 1);
    cfg.ordered = true;
    cfg.ack_wait_ms = 1000;
    cfg.pin_timeout_ms = 1500;
    assert_int_equal(es_projection_create(c->st, type, &cfg), ES_OK);
    es_store_info si;
    assert_int_equal(es_store_info_get(c->st, &si), ES_OK);
    recorder r;
    recorder_init(&r);
    r.hold_seq = si.last_seq - 11;
    r.hold_ms = unpin_meanwhile ? 1200 : 2000;
    es_projection_run_options o;
    run_options(&o);
    instance in[2];
    o.batch = 1; /* it holds one event: nothing else of it is out */
    start_instance(c, &in[0], &r, 0, type, &o);
    while (!r.holding)
        conf_sleep_ms(5);
    o.batch = 16;
    start_instance(c, &in[1], &r, 1, type, &o);
    if (unpin_meanwhile) {
        conf_sleep_ms(200); /* instance 1's pull is waiting */
        unpin(c, type);
    }
    wait_caught_up(&in[1]);
    for (int i = 0; i < 2; i++)
        stop_instance(&in[i]);
    assert_in_order(&r);
    assert_handled(c, &r, type, NULL, 1);
    if (unpin_meanwhile)
        assert_true(r.by_instance[1] > 0); /* the pin did move */
    else
        assert_int_equal(r.by_instance[1], 0); /* in-progress notices kept the pin */
}

static void order_holds_when_a_hold_outlasts_the_pin(void **state)
{
    order_across_a_pin_move(*state, "outlasted", false);
}

static void order_holds_when_the_pin_is_taken(void **state)
{
    order_across_a_pin_move(*state, "unpinned", true);
}

typedef struct batches {
    recorder *r;
    _Atomic int calls;
    _Atomic int largest;
} batches;

/* Fails its first call (retryable), then records every event of a batch. */
static es_status on_batch(const es_event *const *evs, size_t n, void *closure)
{
    batches *b = closure;
    if (b->calls++ == 0)
        return ES_ERR_TIMEOUT;
    if ((int)n > b->largest)
        b->largest = (int)n;
    pthread_mutex_lock(&b->r->mu);
    for (size_t i = 0; i < n; i++) {
        b->r->handled[es_event_seq(evs[i])]++;
        check_order(b->r, evs[i], -1);
    }
    pthread_mutex_unlock(&b->r->mu);
    b->r->total += (int)n;
    return ES_OK;
}

static void batch_handlers_settle_whole_pulls(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "order", 10, 40);
    es_filter f = type_filter("order");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    for (int ordered = 0; ordered < 2; ordered++) {
        cfg.ordered = ordered;
        cfg.partitions = 2;
        const char *name = ordered ? "batched_ordered" : "batched";
        assert_int_equal(es_projection_create(c->st, name, &cfg), ES_OK);
        recorder r;
        recorder_init(&r);
        batches b = {.r = &r};
        es_projection_run_options o;
        run_options(&o);
        o.batch = 32;
        es_projection_handler h = {.on_batch = on_batch, .closure = &b};
        es_projection *p = NULL;
        assert_int_equal(es_projection_start(c->st, name, &h, &o, &p), ES_OK);
        assert_int_equal(es_projection_wait_caught_up(p, WAIT_MS), ES_OK);
        assert_int_equal(es_projection_stop(p), ES_OK);
        es_projection_destroy(p);
        assert_handled(c, &r, "order", NULL, 1); /* the failed batch came back whole */
        assert_true(b.largest > 1 && b.largest <= 32);
        assert_false(r.out_of_order && ordered);
    }
}

/* A batch handler that holds its events for `hold_ms` (as a delivery
 * waiting on acknowledgements from elsewhere would), telling the server
 * they are still in progress every 100 ms when `keep_alive`. */
typedef struct holder {
    int64_t hold_ms;
    bool keep_alive;
    _Atomic int calls, in_progress_failed;
} holder;

static es_status on_held_batch(const es_event *const *evs, size_t n, void *closure)
{
    holder *h = closure;
    h->calls++;
    for (int64_t t = 0; t < h->hold_ms; t += 100) {
        conf_sleep_ms(100);
        for (size_t i = 0; i < n && h->keep_alive; i++)
            if (es_projection_in_progress(evs[i]) != ES_OK)
                h->in_progress_failed++;
    }
    return ES_OK;
}

/* An ordered batch held twice its ack wait: without in-progress notices
 * the server delivers the events again meanwhile (the worker then skips
 * them, counted), with them it does not. The notices (every 100 ms) keep
 * the events only while the server hears them within the ack wait: a server
 * stalled for longer than the ack wait less that interval (a loaded machine;
 * on an R3 consumer the wait starts before the replicas confirm the
 * delivery) delivers them again. An ack wait of 500 ms left 400 ms and
 * failed on a loaded cluster (docs/operations.md, "The conformance suite on
 * a cluster"). */
static void long_batches_stay_in_progress(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "held", 3, 1);
    es_filter f = type_filter("held");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    cfg.ordered = true;
    cfg.ack_wait_ms = 1000;
    for (int keep_alive = 0; keep_alive < 2; keep_alive++) {
        const char *name = keep_alive ? "held_alive" : "held_silent";
        assert_int_equal(es_projection_create(c->st, name, &cfg), ES_OK);
        holder h = {.hold_ms = 2000, .keep_alive = keep_alive};
        es_projection_run_options o;
        run_options(&o);
        o.heartbeat_ms = 1000; /* the pull stays open across the hold: redeliveries reach it */
        es_projection_handler hd = {.on_batch = on_held_batch, .closure = &h};
        es_projection *p = NULL;
        assert_int_equal(es_projection_start(c->st, name, &hd, &o, &p), ES_OK);
        assert_int_equal(es_projection_wait_caught_up(p, WAIT_MS), ES_OK);
        conf_sleep_ms(300); /* a redelivery queued behind the batch is pulled and skipped */
        es_projection_stats st;
        es_projection_stats_get(p, &st);
        assert_int_equal(es_projection_stop(p), ES_OK);
        es_projection_destroy(p);
        assert_int_equal(st.handled, 3);
        assert_int_equal(h.in_progress_failed, 0);
        if (keep_alive)
            assert_int_equal(st.skipped, 0);
        else
            assert_true(st.skipped > 0);
    }
    /* outside a projection's delivery they are refused */
    assert_int_equal(es_projection_in_progress(NULL), ES_ERR_INVALID);
    assert_int_equal(es_projection_ack(NULL), ES_ERR_INVALID);
}

/* Acknowledges the first two events of its batch at once, then looks at
 * what the server holds before returning. */
typedef struct early {
    es_store *st;
    _Atomic int calls;
    uint64_t ack_pending, ack_floor, first;
} early;

static es_status on_early_batch(const es_event *const *evs, size_t n, void *closure)
{
    early *e = closure;
    if (e->calls > 0 || n < 3) /* the first batch of three or more (a pull may bring fewer) */
        return ES_OK;
    e->calls++;
    e->first = es_event_seq(evs[0]);
    for (size_t i = 0; i < 2; i++)
        if (es_projection_ack(evs[i]) != ES_OK)
            return ES_ERR_DECODE;
    es_projection_info info;
    for (int tries = 0; tries < 50; tries++) {
        conf_sleep_ms(20);
        if (es_projection_info_get(e->st, "early", &info) == ES_OK &&
            info.partition[0].ack_pending == n - 2)
            break;
    }
    e->ack_pending = info.partition[0].ack_pending;
    e->ack_floor = info.partition[0].ack_floor_seq;
    return ES_OK;
}

/* es_projection_ack inside a batch: the server has those events done before
 * the batch returns. */
static void a_batch_acknowledges_events_early(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "early", 5, 1);
    es_filter f = type_filter("early");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    cfg.ordered = true;
    assert_int_equal(es_projection_create(c->st, "early", &cfg), ES_OK);
    early e = {.st = c->st};
    es_projection_run_options o;
    run_options(&o);
    es_projection_handler h = {.on_batch = on_early_batch, .closure = &e};
    es_projection *p = NULL;
    assert_int_equal(es_projection_start(c->st, "early", &h, &o, &p), ES_OK);
    assert_int_equal(es_projection_wait_caught_up(p, WAIT_MS), ES_OK);
    es_projection_stats st;
    es_projection_stats_get(p, &st);
    assert_int_equal(es_projection_stop(p), ES_OK);
    es_projection_destroy(p);
    assert_int_equal(e.ack_pending, 3);
    assert_int_equal(e.ack_floor, e.first + 1);
    assert_int_equal(st.handled, 5);
}

/* Hands its first two pulls back (ES_ERR_AGAIN: not now), then takes the
 * events; counts dead letters. */
typedef struct handing {
    recorder *r;
    int hand_backs; /* how many pulls go back (0: two) */
    _Atomic int calls, dead;
} handing;

static es_status on_handed_batch(const es_event *const *evs, size_t n, void *closure)
{
    handing *h = closure;
    if (h->calls++ < (h->hand_backs ? h->hand_backs : 2))
        return ES_ERR_AGAIN;
    pthread_mutex_lock(&h->r->mu);
    for (size_t i = 0; i < n; i++) {
        h->r->handled[es_event_seq(evs[i])]++;
        check_order(h->r, evs[i], -1);
    }
    pthread_mutex_unlock(&h->r->mu);
    h->r->total += (int)n;
    return ES_OK;
}

static void on_handed_dead(const es_event *ev, es_status why, void *closure)
{
    handing *h = closure;
    (void)ev;
    (void)why;
    h->dead++;
}

/* Runs the ordered projection `name` over the events of `type` with
 * on_handed_batch (batch 0: the default) until it is caught up; its
 * counters in *st. */
static void run_handing(conf_ctx *c, const char *name, const char *type, int max_deliver,
                        int batch, handing *h, es_projection_stats *st)
{
    es_filter f = type_filter(type);
    es_projection_config cfg;
    config(&cfg, &f, 1);
    cfg.ordered = true;
    cfg.max_deliver = max_deliver;
    assert_int_equal(es_projection_create(c->st, name, &cfg), ES_OK);
    es_projection_run_options o;
    run_options(&o);
    if (batch > 0)
        o.batch = batch;
    es_projection_handler hd = {.on_batch = on_handed_batch, .on_dead_letter = on_handed_dead,
                                .closure = h};
    es_projection *p = NULL;
    assert_int_equal(es_projection_start(c->st, name, &hd, &o, &p), ES_OK);
    assert_int_equal(es_projection_wait_caught_up(p, WAIT_MS), ES_OK);
    es_projection_stats_get(p, st);
    assert_int_equal(es_projection_stop(p), ES_OK);
    es_projection_destroy(p);
}

/* ES_ERR_AGAIN from a batch handler hands the pull back to the server, not
 * as a failure: the events come again, in order, none dead-lettered (and
 * not counted as retries). */
static void a_batch_handed_back_comes_again(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "again", 4, 5);
    recorder r;
    recorder_init(&r);
    handing h = {.r = &r};
    es_projection_stats st;
    run_handing(c, "again", "again", 5, 0, &h, &st);
    assert_int_equal(h.dead, 0);
    assert_true(h.calls >= 3);
    assert_int_equal(st.retried, 0);
    assert_handled(c, &r, "again", NULL, 1); /* each event once, after the hand-backs */
    assert_in_order(&r);
}

/* Whole pulls handed back while no pull is open: the server queues each
 * redelivery it cannot send at once behind the others, so they come back
 * out of stream order now and then (it takes a few rounds to be sure to
 * see it), and must still be handled in order. Each pull is filled (8 of
 * 48 events), so none is open when its events go back. */
static void handed_back_pulls_keep_their_order(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "rotated", 1, 48);
    for (int round = 0; round < 3; round++) {
        char name[32];
        snprintf(name, sizeof name, "rotated%d", round);
        recorder r;
        recorder_init(&r);
        handing h = {.r = &r, .hand_backs = 6};
        es_projection_stats st;
        run_handing(c, name, "rotated", -1, 8, &h, &st);
        assert_int_equal(h.dead, 0);
        assert_in_order(&r);
        assert_handled(c, &r, "rotated", NULL, 1);
    }
}

static void survives_a_server_restart(void **state)
{
    (void)state;
    conf_server *srv = conf_server_start();
    if (srv == NULL) {
        print_message("skipped: set ES_NATS_SERVER or --nats-server to run restart tests\n");
        skip();
    }
    conf_ctx c = {.nc = conf_connect(conf_server_url(srv))};
    snprintf(c.name, sizeof c.name, "restart_proj");
    assert_int_equal(es_store_create(c.nc, c.name, conf_store_config(), NULL, &c.st), ES_OK);
    conf_wait_store_ready(c.nc, c.st);
    append_interleaved(c.st, "order", 10, 5);
    es_filter f = type_filter("order");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    cfg.ack_wait_ms = 1000;
    assert_int_equal(es_projection_create(c.st, "durable", &cfg), ES_OK);
    recorder r;
    recorder_init(&r);
    es_projection_run_options o;
    run_options(&o);
    es_projection_handler h = {.on_event = on_event, .on_dead_letter = on_dead};
    instance in = {.r = &r, .st = c.st};
    h.closure = &in;
    assert_int_equal(es_projection_start(c.st, "durable", &h, &o, &in.p), ES_OK);
    assert_int_equal(es_projection_wait_caught_up(in.p, WAIT_MS), ES_OK);
    assert_int_equal(r.total, 50);

    conf_server_restart(srv);
    /* Appends fail while the client reconnects: retry until they land. */
    for (int i = 0; i < 50; i++) {
        char id[32];
        snprintf(id, sizeof id, "after-restart-%d", i);
        es_event_spec e = conf_spec("order", "late", "created", "x");
        e.event_id = id;
        es_status s = ES_ERR_CONNECTION;
        for (int attempt = 0; attempt < 100 && s != ES_OK; attempt++)
            if ((s = es_append(c.st, &e, NULL)) != ES_OK)
                conf_sleep_ms(100);
        assert_int_equal(s, ES_OK);
    }
    es_status s = ES_ERR_TIMEOUT;
    for (int attempt = 0; attempt < 20 && s != ES_OK; attempt++)
        s = es_projection_wait_caught_up(in.p, WAIT_MS);
    assert_int_equal(s, ES_OK);
    assert_int_equal(es_projection_stop(in.p), ES_OK);
    es_projection_destroy(in.p);
    for (uint64_t seq = 1; seq <= 100; seq++)
        assert_true(r.handled[seq] >= 1); /* at least once: an ack may die with the link */
    assert_int_equal(r.handled[101], 0);
    es_store_destroy(c.st);
    natsConnection_Destroy(c.nc);
    conf_server_destroy(srv);
}

static es_status count_listed(const es_projection_info *info, void *closure)
{
    char *names = closure;
    strcat(names, info->name);
    strcat(names, info->ordered ? "(o)," : ",");
    return ES_OK;
}

static void definition_lifecycle(void **state)
{
    conf_ctx *c = *state;
    append_interleaved(c->st, "order", 5, 4);
    es_filter f = type_filter("order");
    es_projection_config cfg;
    config(&cfg, &f, 1);
    assert_int_equal(es_projection_create(c->st, "life", &cfg), ES_OK);
    assert_int_equal(es_projection_create(c->st, "life", &cfg), ES_OK); /* idempotent */
    es_projection_config other = cfg;
    other.max_deliver = 2;
    assert_int_equal(es_projection_create(c->st, "life", &other), ES_ERR_EXISTS);
    assert_int_equal(es_projection_create(c->st, "bad name", &cfg), ES_ERR_INVALID);
    es_projection_config bad = cfg;
    bad.max_deliver = 0;
    assert_int_equal(es_projection_create(c->st, "x", &bad), ES_ERR_INVALID);

    es_projection_info info;
    assert_int_equal(es_projection_info_get(c->st, "life", &info), ES_OK);
    assert_string_equal(info.name, "life");
    assert_false(info.ordered);
    assert_int_equal(info.partitions, 1);
    assert_int_equal(info.pending, 20);
    assert_int_equal(info.ack_pending, 0);
    assert_int_equal(info.max_deliver, 10);
    assert_int_equal(info.ack_wait_ms, 2000);
    assert_int_equal(info.filter_count, 1);

    assert_int_equal(es_projection_update(c->st, "life", &other), ES_OK);
    assert_int_equal(es_projection_info_get(c->st, "life", &info), ES_OK);
    assert_int_equal(info.max_deliver, 2);
    es_projection_config reordered = other;
    reordered.ordered = true;
    assert_int_equal(es_projection_update(c->st, "life", &reordered), ES_ERR_INVALID);
    assert_int_equal(es_projection_update(c->st, "nope", &other), ES_ERR_NOT_FOUND);

    es_projection_config ordered = cfg;
    ordered.ordered = true;
    ordered.partitions = 3;
    if (es_projection_create(c->st, "alpha", &ordered) != ES_OK)
        fail_msg("create alpha: %s", es_last_error());
    char names[256] = "";
    assert_int_equal(es_projection_list(c->st, count_listed, names), ES_OK);
    assert_string_equal(names, "alpha(o),life,");
    assert_int_equal(es_projection_info_get(c->st, "alpha", &info), ES_OK);
    assert_int_equal(info.partitions, 3);
    assert_int_equal(info.pending, 20); /* each partition reads every event */

    assert_int_equal(es_projection_delete(c->st, "alpha"), ES_OK);
    assert_int_equal(es_projection_delete(c->st, "alpha"), ES_ERR_NOT_FOUND);
    assert_int_equal(es_projection_info_get(c->st, "alpha", &info), ES_ERR_NOT_FOUND);
    es_projection *p = NULL;
    es_projection_handler h = {.on_event = on_event};
    assert_int_equal(es_projection_start(c->st, "alpha", &h, NULL, &p), ES_ERR_NOT_FOUND);
    es_projection_handler both = {.on_event = on_event, .on_batch = NULL};
    both.on_event = NULL;
    assert_int_equal(es_projection_start(c->st, "life", &both, NULL, &p), ES_ERR_INVALID);
    names[0] = '\0';
    assert_int_equal(es_projection_list(c->st, count_listed, names), ES_OK);
    assert_string_equal(names, "life,");
}

int conf_run_projection(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(exactly_once_without_failures, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(at_least_once_with_redelivery, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(two_instances_share_the_work, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(stop_and_restart_resume_in_place, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(multi_filter_and_start_positions, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(per_entity_order_under_four_instances, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(order_holds_when_a_hold_outlasts_the_pin, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(order_holds_when_the_pin_is_taken, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(definition_lifecycle, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(batch_handlers_settle_whole_pulls, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(long_batches_stay_in_progress, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_batch_acknowledges_events_early, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_batch_handed_back_comes_again, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(handed_back_pulls_keep_their_order, conf_setup,
                                        conf_teardown),
        cmocka_unit_test(survives_a_server_restart),
    };
    return cmocka_run_group_tests_name("projection", tests, NULL, NULL);
}
