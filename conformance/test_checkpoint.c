/* Checkpoints: named positions with compare-and-set in the store's KV bucket. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static es_checkpoints *open_cps(conf_ctx *c)
{
    es_checkpoints *cps = NULL;
    if (es_checkpoints_open(c->st, &cps) != ES_OK)
        fail_msg("es_checkpoints_open: %s", es_last_error());
    return cps;
}

static void set_get_and_cas(void **state)
{
    conf_ctx *c = *state;
    es_checkpoints *cps = open_cps(c);
    es_checkpoint cp;
    assert_int_equal(es_checkpoint_get(cps, "relay", &cp), ES_ERR_NOT_FOUND);

    uint64_t r1 = 0, r2 = 0;
    assert_int_equal(
        es_checkpoint_set(cps, "relay", 100, "{\"host\":\"bsky.network\"}", ES_CHECKPOINT_NEW, &r1),
        ES_OK);
    assert_true(r1 > 0);
    assert_int_equal(es_checkpoint_set(cps, "relay", 5, NULL, ES_CHECKPOINT_NEW, NULL),
                     ES_ERR_CONFLICT);
    assert_int_equal(es_checkpoint_get(cps, "relay", &cp), ES_OK);
    assert_int_equal(cp.position, 100);
    assert_int_equal(cp.revision, r1);
    assert_string_equal(cp.data, "{\"host\":\"bsky.network\"}");
    assert_true(cp.time_ns > 0);
    es_checkpoint_clear(&cp);

    /* Two writers read revision r1; the first wins, the second is stale. */
    assert_int_equal(es_checkpoint_set(cps, "relay", 200, NULL, r1, &r2), ES_OK);
    assert_true(r2 > r1);
    assert_int_equal(es_checkpoint_set(cps, "relay", 150, NULL, r1, NULL), ES_ERR_CONFLICT);
    assert_non_null(strstr(es_last_error(), "relay"));
    assert_int_equal(es_checkpoint_get(cps, "relay", &cp), ES_OK);
    assert_int_equal(cp.position, 200);
    assert_null(cp.data);
    es_checkpoint_clear(&cp);

    assert_int_equal(es_checkpoint_set(cps, "relay", 7, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "bad name", 7, NULL, ES_CHECKPOINT_ANY, NULL),
                     ES_ERR_INVALID);
    assert_int_equal(es_checkpoint_set(cps, "relay", 7, "{oops", ES_CHECKPOINT_ANY, NULL),
                     ES_ERR_INVALID);
    es_checkpoints_destroy(cps);
}

static void advance_never_moves_back(void **state)
{
    conf_ctx *c = *state;
    es_checkpoints *cps = open_cps(c);
    assert_int_equal(es_checkpoint_advance(cps, "cursor", 10, NULL, NULL), ES_OK);
    assert_int_equal(es_checkpoint_advance(cps, "cursor", 20, "{\"n\":1}", NULL), ES_OK);
    assert_int_equal(es_checkpoint_advance(cps, "cursor", 20, "{\"n\":2}", NULL), ES_OK);
    assert_int_equal(es_checkpoint_advance(cps, "cursor", 19, NULL, NULL), ES_ERR_CONFLICT);
    es_checkpoint cp;
    assert_int_equal(es_checkpoint_get(cps, "cursor", &cp), ES_OK);
    assert_int_equal(cp.position, 20);
    assert_string_equal(cp.data, "{\"n\":2}");
    es_checkpoint_clear(&cp);
    es_checkpoints_destroy(cps);
}

typedef struct racer {
    es_checkpoints *cps;
    int id;
    atomic_int *stale;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (uint64_t p = (uint64_t)r->id; p < 200; p += 4) {
        es_status s = es_checkpoint_advance(r->cps, "raced", p, NULL, NULL);
        if (s == ES_ERR_CONFLICT)
            (*r->stale)++;
        else if (s != ES_OK)
            fail_msg("advance: %s", es_last_error());
    }
    return NULL;
}

static void racing_writers_end_at_the_highest(void **state)
{
    conf_ctx *c = *state;
    es_checkpoints *cps = open_cps(c);
    atomic_int stale = 0;
    pthread_t t[4];
    racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer){cps, i, &stale};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    es_checkpoint cp;
    assert_int_equal(es_checkpoint_get(cps, "raced", &cp), ES_OK);
    assert_int_equal(cp.position, 199);
    es_checkpoint_clear(&cp);
    es_checkpoints_destroy(cps);
}

typedef struct listed {
    int count;
    uint64_t sum;
} listed;

static es_status on_listed(const char *name, const es_checkpoint *cp, void *closure)
{
    listed *l = closure;
    assert_non_null(name);
    l->count++;
    l->sum += cp->position;
    return ES_OK;
}

static void list_and_delete(void **state)
{
    conf_ctx *c = *state;
    es_checkpoints *cps = open_cps(c);
    listed l = {0};
    assert_int_equal(es_checkpoint_list(cps, on_listed, &l), ES_OK);
    assert_int_equal(l.count, 0);
    uint64_t rev = 0;
    assert_int_equal(es_checkpoint_set(cps, "a", 1, NULL, ES_CHECKPOINT_NEW, NULL), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "b.x", 2, NULL, ES_CHECKPOINT_NEW, &rev), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "c", 4, NULL, ES_CHECKPOINT_NEW, NULL), ES_OK);
    assert_int_equal(es_checkpoint_delete(cps, "b.x", rev + 100), ES_ERR_CONFLICT);
    assert_int_equal(es_checkpoint_delete(cps, "b.x", rev), ES_OK);
    assert_int_equal(es_checkpoint_delete(cps, "b.x", ES_CHECKPOINT_ANY), ES_ERR_NOT_FOUND);
    assert_int_equal(es_checkpoint_delete(cps, "never", ES_CHECKPOINT_ANY), ES_ERR_NOT_FOUND);
    es_checkpoint cp;
    assert_int_equal(es_checkpoint_get(cps, "b.x", &cp), ES_ERR_NOT_FOUND);
    l = (listed){0};
    assert_int_equal(es_checkpoint_list(cps, on_listed, &l), ES_OK);
    assert_int_equal(l.count, 2);
    assert_int_equal(l.sum, 5);
    /* A deleted checkpoint counts as absent for ES_CHECKPOINT_NEW. */
    assert_int_equal(es_checkpoint_set(cps, "b.x", 9, NULL, ES_CHECKPOINT_NEW, NULL), ES_OK);
    es_checkpoints_destroy(cps);
}

typedef struct watched {
    pthread_mutex_t mu;
    int puts, deletes;
    uint64_t last;
} watched;

static void on_watch(const char *name, const es_checkpoint *cp, void *closure)
{
    watched *w = closure;
    pthread_mutex_lock(&w->mu);
    if (strncmp(name, "ingest.", 7) == 0) {
        if (cp == NULL)
            w->deletes++;
        else {
            w->puts++;
            w->last = cp->position;
        }
    }
    pthread_mutex_unlock(&w->mu);
}

static int watched_puts(watched *w, uint64_t *last)
{
    pthread_mutex_lock(&w->mu);
    int n = w->puts;
    *last = w->last;
    pthread_mutex_unlock(&w->mu);
    return n;
}

static void watch_sees_current_then_changes(void **state)
{
    conf_ctx *c = *state;
    es_checkpoints *cps = open_cps(c);
    assert_int_equal(es_checkpoint_set(cps, "ingest.a", 1, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "other", 1, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    watched w = {.mu = PTHREAD_MUTEX_INITIALIZER};
    es_checkpoint_watch *cw = NULL;
    assert_int_equal(es_checkpoint_watch_start(cps, "bad..pattern", on_watch, &w, &cw),
                     ES_ERR_INVALID);
    assert_int_equal(es_checkpoint_watch_start(cps, "ingest.*", on_watch, &w, &cw), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "ingest.a", 2, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "ingest.b", 3, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    assert_int_equal(es_checkpoint_delete(cps, "ingest.a", ES_CHECKPOINT_ANY), ES_OK);
    uint64_t last = 0;
    for (int i = 0; i < 250 && watched_puts(&w, &last) < 3; i++)
        conf_sleep_ms(20);
    conf_sleep_ms(100);
    es_checkpoint_watch_destroy(cw);
    assert_int_equal(watched_puts(&w, &last), 3);
    assert_int_equal(last, 3);
    assert_int_equal(w.deletes, 1);
    es_checkpoints_destroy(cps);
}

/* es_checkpoint_watch_wait_current returns once the current values were
 * delivered; a checkpoint deleted before the watch is not one of them. */
static void watch_current_values_are_delivered_first(void **state)
{
    conf_ctx *c = *state;
    es_checkpoints *cps = open_cps(c);
    assert_int_equal(es_checkpoint_set(cps, "ingest.a", 1, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "ingest.b", 2, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    assert_int_equal(es_checkpoint_delete(cps, "ingest.b", ES_CHECKPOINT_ANY), ES_OK);
    watched w = {.mu = PTHREAD_MUTEX_INITIALIZER};
    es_checkpoint_watch *cw = NULL;
    assert_int_equal(es_checkpoint_watch_wait_current(NULL, 10), ES_ERR_INVALID);
    assert_int_equal(es_checkpoint_watch_start(cps, "ingest.>", on_watch, &w, &cw), ES_OK);
    assert_int_equal(es_checkpoint_watch_wait_current(cw, 5000), ES_OK);
    uint64_t last = 0;
    assert_int_equal(watched_puts(&w, &last), 1); /* no waiting: already delivered */
    assert_int_equal(last, 1);
    assert_int_equal(w.deletes, 0); /* ingest.b's old delete marker is no current value */
    assert_int_equal(es_checkpoint_delete(cps, "ingest.a", ES_CHECKPOINT_ANY), ES_OK);
    for (int i = 0; i < 250; i++) {
        pthread_mutex_lock(&w.mu);
        int deletes = w.deletes;
        pthread_mutex_unlock(&w.mu);
        if (deletes > 0)
            break;
        conf_sleep_ms(20);
    }
    es_checkpoint_watch_destroy(cw);
    assert_int_equal(w.deletes, 1); /* a delete after the start is a change */
    /* nothing matches: the current values are none, delivered at once */
    watched none = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(es_checkpoint_watch_start(cps, "nothing.>", on_watch, &none, &cw), ES_OK);
    assert_int_equal(es_checkpoint_watch_wait_current(cw, 5000), ES_OK);
    es_checkpoint_watch_destroy(cw);
    assert_int_equal(none.puts + none.deletes, 0);
    es_checkpoints_destroy(cps);
}

/* A watch started right after writes has them as its current values: on
 * a replicated bucket too, where its consumer may be placed on a replica
 * that has not applied them yet (the watch then waits for the leader's last
 * revision). Each round moves one checkpoint on and deletes another, then
 * watches both. */
static void a_watch_sees_the_writes_before_it(void **state)
{
    conf_ctx *c = *state;
    es_checkpoints *cps = open_cps(c);
    for (int round = 1; round <= 40; round++) {
        assert_int_equal(es_checkpoint_set(cps, "ingest.a", (uint64_t)round, NULL,
                                           ES_CHECKPOINT_ANY, NULL),
                         ES_OK);
        assert_int_equal(es_checkpoint_set(cps, "ingest.b", 1, NULL, ES_CHECKPOINT_ANY, NULL),
                         ES_OK);
        assert_int_equal(es_checkpoint_delete(cps, "ingest.b", ES_CHECKPOINT_ANY), ES_OK);
        watched w = {.mu = PTHREAD_MUTEX_INITIALIZER};
        es_checkpoint_watch *cw = NULL;
        assert_int_equal(es_checkpoint_watch_start(cps, "ingest.>", on_watch, &w, &cw), ES_OK);
        es_status s = es_checkpoint_watch_wait_current(cw, 5000);
        uint64_t last = 0;
        int puts = watched_puts(&w, &last);
        es_checkpoint_watch_destroy(cw);
        if (s != ES_OK || puts != 1 || last != (uint64_t)round || w.deletes != 0)
            fail_msg("round %d: %s; %d current values, the last at %llu, %d deletes", round,
                     es_status_text(s), puts, (unsigned long long)last, w.deletes);
    }
    es_checkpoints_destroy(cps);
}

static void bucket_goes_with_the_store(void **state)
{
    conf_ctx *c = *state;
    es_checkpoints *cps = open_cps(c);
    assert_int_equal(es_checkpoint_set(cps, "x", 1, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    es_checkpoints_destroy(cps);
    char stream[96];
    snprintf(stream, sizeof stream, "KV_ES_%s_checkpoints", c->name);
    assert_int_equal(conf_stream_msgs(c->nc, stream), 1);
    es_store_destroy(c->st);
    c->st = NULL;
    assert_int_equal(es_store_delete(c->nc, c->name, NULL), ES_OK);
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    assert_int_equal(natsConnection_JetStream(&js, c->nc, NULL), NATS_OK);
    assert_int_equal(js_GetStreamInfo(&si, js, stream, NULL, NULL), NATS_NOT_FOUND);
    jsCtx_Destroy(js);
}

int conf_run_checkpoint(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(set_get_and_cas, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(advance_never_moves_back, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(racing_writers_end_at_the_highest, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(list_and_delete, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(watch_sees_current_then_changes, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(watch_current_values_are_delivered_first, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(a_watch_sees_the_writes_before_it, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(bucket_goes_with_the_store, conf_setup, conf_teardown),
    };
    return cmocka_run_group_tests_name("checkpoint", tests, NULL, NULL);
}
