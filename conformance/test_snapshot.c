/* Snapshots: save/get, never backwards, versions, snapshot + tail equals a
 * full replay, and the decide helper's snapshot policy. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* The state under test: a running sum and count of integer payloads. */
typedef struct tally {
    int64_t sum;
    uint64_t count;
    uint64_t last_seq;
} tally;

static es_status tally_event(const es_event *ev, void *closure)
{
    tally *t = closure;
    const void *d;
    size_t n;
    char buf[32];
    assert_int_equal(es_event_data(ev, &d, &n), ES_OK);
    assert_true(n < sizeof buf);
    memcpy(buf, d, n);
    buf[n] = '\0';
    t->sum += strtoll(buf, NULL, 10);
    t->count++;
    t->last_seq = es_event_seq(ev);
    return ES_OK;
}

static es_status tally_restore(const void *state, size_t len, void *closure)
{
    if (len != sizeof(tally))
        return ES_ERR_DECODE;
    memcpy(closure, state, len);
    return ES_OK;
}

static es_filter entity(const char *id)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "counter";
    f.entity_id = id;
    return f;
}

static void append_values(es_store *st, const char *id, int from, int to)
{
    for (int i = from; i < to; i += 100) {
        es_event_spec specs[100];
        char data[100][16];
        int n = to - i < 100 ? to - i : 100;
        for (int k = 0; k < n; k++) {
            snprintf(data[k], sizeof data[k], "%d", i + k);
            specs[k] = conf_spec("counter", id, "added", data[k]);
        }
        assert_int_equal(es_append_batch(st, specs, (size_t)n, NULL), ES_OK);
    }
}

static es_snapshots *open_snaps(conf_ctx *c)
{
    es_snapshots *sn = NULL;
    if (es_snapshots_open(c->st, &sn) != ES_OK)
        fail_msg("es_snapshots_open: %s", es_last_error());
    return sn;
}

static void save_get_never_backwards(void **state)
{
    conf_ctx *c = *state;
    es_snapshots *sn = open_snaps(c);
    es_filter f = entity("did:plc:x.y");
    es_snapshot snap;
    assert_int_equal(es_snapshot_get(sn, &f, &snap), ES_ERR_NOT_FOUND);
    assert_int_equal(es_snapshot_save(sn, &f, 10, 1, "ten", 3), ES_OK);
    assert_int_equal(es_snapshot_save(sn, &f, 5, 1, "five", 4), ES_OK); /* ignored: older */
    assert_int_equal(es_snapshot_get(sn, &f, &snap), ES_OK);
    assert_int_equal(snap.seq, 10);
    assert_int_equal(snap.version, 1);
    assert_int_equal(snap.len, 3);
    assert_memory_equal(snap.data, "ten", 3);
    assert_true(snap.time_ns > 0);
    es_snapshot_clear(&snap);
    assert_int_equal(es_snapshot_save(sn, &f, 20, 2, "twenty", 6), ES_OK);
    assert_int_equal(es_snapshot_get(sn, &f, &snap), ES_OK);
    assert_int_equal(snap.seq, 20);
    es_snapshot_clear(&snap);
    assert_int_equal(es_snapshot_delete(sn, &f), ES_OK);
    assert_int_equal(es_snapshot_get(sn, &f, &snap), ES_ERR_NOT_FOUND);
    assert_int_equal(es_snapshot_delete(sn, &f), ES_ERR_NOT_FOUND);
    assert_int_equal(es_snapshot_save(sn, &f, 3, 1, "x", 1), ES_OK);

    size_t big = (size_t)natsConnection_GetMaxPayload(c->nc) + 1;
    char *huge = calloc(1, big);
    assert_int_equal(es_snapshot_save(sn, &f, 30, 1, huge, big), ES_ERR_TOO_LARGE);
    free(huge);
    es_filter bad = entity("x");
    bad.event_type = "added";
    assert_int_equal(es_snapshot_save(sn, &bad, 30, 1, "x", 1), ES_ERR_INVALID);
    es_snapshots_destroy(sn);
}

static void snapshot_plus_tail_equals_full_replay(void **state)
{
    conf_ctx *c = *state;
    es_snapshots *sn = open_snaps(c);
    es_filter f = entity("acc-1");
    append_values(c->st, "acc-1", 0, 150);
    append_values(c->st, "other", 0, 10);

    /* Snapshot the state after the first 150 events. */
    tally at150 = {0};
    assert_int_equal(es_load(c->st, &f, NULL, tally_event, &at150, NULL), ES_OK);
    assert_int_equal(at150.count, 150);
    assert_int_equal(es_snapshot_save(sn, &f, at150.last_seq, 1, &at150, sizeof at150), ES_OK);
    append_values(c->st, "acc-1", 150, 400);

    tally full = {0}, fast = {0};
    uint64_t full_last = 0;
    assert_int_equal(es_load(c->st, &f, NULL, tally_event, &full, &full_last), ES_OK);
    es_snapshot_load_result r;
    assert_int_equal(es_load_from_snapshot(sn, &f, 1, tally_restore, tally_event, &fast, &r),
                     ES_OK);
    assert_int_equal(r.snapshot_seq, at150.last_seq);
    assert_int_equal(r.replayed, 250);
    assert_int_equal(r.last_seq, full_last);
    assert_memory_equal(&fast, &full, sizeof full);

    /* Another state version: the snapshot is ignored, everything replayed. */
    tally v2 = {0};
    assert_int_equal(es_load_from_snapshot(sn, &f, 2, tally_restore, tally_event, &v2, &r), ES_OK);
    assert_int_equal(r.snapshot_seq, 0);
    assert_int_equal(r.replayed, 400);
    assert_memory_equal(&v2, &full, sizeof full);

    /* A snapshot at the last event: nothing to replay, same state. */
    assert_int_equal(es_snapshot_save(sn, &f, full.last_seq, 1, &full, sizeof full), ES_OK);
    tally none = {0};
    assert_int_equal(es_load_from_snapshot(sn, &f, 1, tally_restore, tally_event, &none, &r),
                     ES_OK);
    assert_int_equal(r.replayed, 0);
    assert_int_equal(r.last_seq, full_last);
    assert_memory_equal(&none, &full, sizeof full);

    /* An entity with no snapshot and no events. */
    es_filter empty = entity("nobody");
    tally nothing = {0};
    assert_int_equal(es_load_from_snapshot(sn, &empty, 1, tally_restore, tally_event, &nothing, &r),
                     ES_OK);
    assert_int_equal(r.last_seq, 0);
    assert_int_equal(nothing.count, 0);
    es_snapshots_destroy(sn);
}

/* ---- the decide helper's policy ----------------------------------------- */

typedef struct command_state {
    tally t;
    int64_t add;
} command_state;

static es_status cs_reset(void *state)
{
    ((command_state *)state)->t = (tally){0};
    return ES_OK;
}

static es_status cs_evolve(void *state, const es_event *ev)
{
    return tally_event(ev, &((command_state *)state)->t);
}

static es_status cs_decide(void *state, es_decision *d)
{
    command_state *cs = state;
    char data[24];
    snprintf(data, sizeof data, "%" PRId64, cs->add);
    es_event_spec e = conf_spec(NULL, NULL, "added", data);
    return es_decision_add(d, &e);
}

static es_status cs_write(const void *state, es_buf *out)
{
    return es_buf_append(out, &((const command_state *)state)->t, sizeof(tally));
}

static es_status cs_read(void *state, const void *data, size_t len)
{
    return tally_restore(data, len, &((command_state *)state)->t);
}

static void decide_saves_snapshots_every_n_events(void **state)
{
    conf_ctx *c = *state;
    es_snapshots *sn = open_snaps(c);
    es_filter f = entity("acc-2");
    static const es_decider decider = {cs_reset, cs_evolve, cs_decide};
    es_decide_options o;
    es_decide_options_init(&o);
    o.snapshots = sn;
    o.snapshot_every = 10;
    o.snapshot_write = cs_write;
    o.snapshot_read = cs_read;
    command_state cs = {0};
    for (int i = 1; i <= 35; i++) {
        cs.add = i;
        assert_int_equal(es_decide(c->st, &f, &decider, &cs, &o, NULL), ES_OK);
        /* The loaded state saw every earlier command. */
        assert_int_equal(cs.t.count, (uint64_t)(i - 1));
        assert_int_equal(cs.t.sum, (int64_t)(i - 1) * i / 2);
    }
    es_snapshot snap;
    assert_int_equal(es_snapshot_get(sn, &f, &snap), ES_OK);
    assert_int_equal(snap.version, 1);
    tally saved;
    memcpy(&saved, snap.data, sizeof saved);
    assert_int_equal(snap.seq, saved.last_seq);
    assert_int_equal(saved.count, 30); /* taken at loads that replayed 10 past the last */
    es_snapshot_clear(&snap);

    /* A snapshot of the wrong size fails loudly through snapshot_read. */
    es_decide_options bad = o;
    bad.snapshot_write = NULL;
    assert_int_equal(es_decide(c->st, &f, &decider, &cs, &bad, NULL), ES_ERR_INVALID);
    es_snapshots_destroy(sn);
}

int conf_run_snapshot(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(save_get_never_backwards, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(snapshot_plus_tail_equals_full_replay, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(decide_saves_snapshots_every_n_events, conf_setup,
                                        conf_teardown),
    };
    return cmocka_run_group_tests_name("snapshot", tests, NULL, NULL);
}
