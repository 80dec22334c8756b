/* Out of memory in the engine, over the scripted server (transport/tests/
 * fake_js) and the counting allocator (base/tests/failalloc.h): opening a
 * store, appending (single, batch, a retried batch found by its ids,
 * asynchronously), loading an entity, and a decide/evolve command. Each run
 * reports ES_ERR_NOMEM, leaks nothing and does not crash. Subjects, id
 * escapes and event checks are shown to need no allocation. What needs a
 * real server's KV (keys, dictionaries, checkpoints, snapshots,
 * projections, watch) is not reachable here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <es/es.h>

#include "base/tests/failalloc.h"
#include "fake_store.h"
#include "store_impl.h"

/* ---- what needs no memory ------------------------------------------------------- */

static es_status checks_op(void *ctx)
{
    es_store *st = ctx;
    es_event_spec e = fake_order_event("a b/c", "created", "id-1");
    esi_subject subj;
    char esc[64], back[64];
    size_t n = 0, m = 0;
    es_status s = esi_event_spec_check(st, &e, 0);
    if (s == ES_OK)
        s = esi_subject_for(st, &e, &subj);
    if (s == ES_OK && strcmp(subj.full, "$ES.shop.order.a%20b/c.created") != 0)
        s = es_error(ES_ERR_PROTOCOL, "subject %s", subj.full);
    if (s == ES_OK)
        s = es_id_escape("a b/c", 5, esc, sizeof esc, &n);
    if (s == ES_OK)
        s = es_id_unescape(esc, n, back, sizeof back, &m);
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "order";
    f.entity_id = "a b/c";
    char filter[128];
    if (s == ES_OK)
        s = es_filter_subject(st, &f, filter, sizeof filter);
    if (s == ES_OK && (m != 5 || strcmp(filter, "$ES.shop.order.a%20b/c.>") != 0))
        s = es_error(ES_ERR_PROTOCOL, "filter %s", filter);
    return s;
}

static void checks_and_subjects_need_no_allocation(void **state)
{
    (void)state;
    fake_store sv;
    assert_int_equal(fake_store_open(&sv, "shop", 2000), ES_OK);
    failalloc_expect_nomem(checks_op, sv.st, 0);
    fake_store_close(&sv);
}

/* ---- over the scripted server ----------------------------------------------------- */

typedef struct async_outcome {
    int calls;
    es_status status;
    es_append_result r;
} async_outcome;

static void on_appended(es_status s, const es_append_result *r, void *closure)
{
    async_outcome *o = closure;
    o->calls++;
    o->status = s;
    o->r = *r;
}

static es_status append_op(void *ctx)
{
    (void)ctx;
    fake_store sv;
    es_event_spec batch[3] = {fake_order_event("1", "created", "a"),
                              fake_order_event("2", "created", "b"),
                              fake_order_event("1", "paid", "c")};
    es_event_spec one = fake_order_event("3", "created", NULL);
    es_append_result r;
    async_outcome o = {0};
    es_status s = fake_store_open(&sv, "shop", 2000);
    if (s == ES_OK)
        s = es_append(sv.st, &one, &r);
    if (s == ES_OK)
        s = es_append_batch(sv.st, batch, 3, &r);
    if (s == ES_OK) /* a retry: refused (10201), found by its ids */
        s = es_append_batch(sv.st, batch, 3, &r);
    if (s == ES_OK && (!r.duplicate || r.first_seq != 2))
        s = ES_ERR_PROTOCOL;
    if (s == ES_OK) /* the same, asynchronously: the scan is deferred */
        s = es_append_batch_async(sv.st, batch, 3, on_appended, &o);
    if (s == ES_OK)
        s = es_append_flush(sv.st, 2000);
    if (s == ES_OK)
        s = o.calls != 1 ? ES_ERR_PROTOCOL : o.status;
    if (s == ES_OK && !o.r.duplicate)
        s = ES_ERR_PROTOCOL;
    fake_store_close(&sv);
    return s;
}

static void appends_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(append_op, NULL, 4);
}

/* A counter: each "incremented" event adds one; the command increments. */
static es_status counter_reset(void *state)
{
    *(int *)state = 0;
    return ES_OK;
}

static es_status counter_evolve(void *state, const es_event *ev)
{
    (void)ev;
    (*(int *)state)++;
    return ES_OK;
}

static es_status counter_decide(void *state, es_decision *d)
{
    (void)state;
    es_event_spec e;
    es_event_spec_init(&e);
    e.event_type = "incremented";
    return es_decision_add(d, &e);
}

static es_status count_event(const es_event *ev, void *closure)
{
    (void)ev;
    (*(int *)closure)++;
    return ES_OK;
}

static es_status load_and_decide_op(void *ctx)
{
    (void)ctx;
    fake_store sv;
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "counter";
    f.entity_id = "c1";
    es_decider dec = {counter_reset, counter_evolve, counter_decide};
    int state = 0, loaded = 0;
    es_append_result r;
    uint64_t last = 0;
    es_status s = fake_store_open(&sv, "shop", 2000);
    for (int i = 0; i < 3 && s == ES_OK; i++)
        s = es_decide(sv.st, &f, &dec, &state, NULL, &r);
    if (s == ES_OK)
        s = es_load(sv.st, &f, NULL, count_event, &loaded, &last);
    if (s == ES_OK && (state != 2 || loaded != 3 || last != 3))
        s = ES_ERR_PROTOCOL;
    fake_store_close(&sv);
    return s;
}

static void load_and_decide_out_of_memory(void **state)
{
    (void)state;
    failalloc_expect_nomem(load_and_decide_op, NULL, 4);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checks_and_subjects_need_no_allocation),
        cmocka_unit_test(appends_out_of_memory),
        cmocka_unit_test(load_and_decide_out_of_memory),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
