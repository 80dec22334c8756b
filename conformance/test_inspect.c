/* Looking into a server and a store (es/inspect.h): the stores listed, a
 * store's KV buckets, its events counted per subject and per entity, with
 * the last sequence of each entity, without reading the events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- stores ---------------------------------------------------------------- */

typedef struct store_seen {
    const char *want;
    const char *foreign;
    bool found, foreign_found;
    es_store_info info;
    size_t count;
} store_seen;

static es_status on_store(const char *name, const es_store_info *info, void *closure)
{
    store_seen *s = closure;
    s->count++;
    if (strcmp(name, s->want) == 0) {
        s->found = true;
        s->info = *info;
    }
    s->foreign_found = s->foreign_found || strcmp(name, s->foreign) == 0;
    return ES_OK;
}

static es_status stop_at_first(const char *name, const es_store_info *info, void *closure)
{
    (void)name;
    (void)info;
    (*(size_t *)closure)++;
    return ES_ERR_ABORTED;
}

static void stores_are_listed_with_their_info(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("account", "a1", "opened", "{}");
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    /* A stream named like a store over its subjects, but not made as one. */
    char foreign[ES_STORE_NAME_MAX + 1], subject[128], body[256];
    conf_unique_name(foreign);
    snprintf(subject, sizeof subject, "$JS.API.STREAM.CREATE.ES_%s", foreign);
    snprintf(body, sizeof body, "{\"name\":\"ES_%s\",\"subjects\":[\"$ES.%s.>\"]}", foreign,
             foreign);
    natsMsg *m = NULL;
    assert_int_equal(natsConnection_RequestString(&m, c->nc, subject, body, 5000), NATS_OK);
    natsMsg_Destroy(m);

    store_seen s = {.want = c->name, .foreign = foreign};
    assert_int_equal(es_store_list(c->nc, NULL, on_store, &s), ES_OK);
    assert_true(s.found);
    assert_false(s.foreign_found);
    assert_int_equal(s.info.events, 2);
    assert_int_equal(s.info.last_seq, 2);
    assert_true(s.info.last_time_ns > 0);
    assert_int_equal(s.info.config.duplicate_window_ns, 120000000000LL);
    /* A callback's status stops the listing and is returned. */
    size_t calls = 0;
    assert_int_equal(es_store_list(c->nc, NULL, stop_at_first, &calls), ES_ERR_ABORTED);
    assert_int_equal(calls, 1);
    assert_int_equal(es_store_list(NULL, NULL, on_store, &s), ES_ERR_INVALID);
    /* Through the JetStream API of a domain nobody serves: no answer. */
    es_store_options o;
    es_store_options_init(&o);
    o.js_domain = "nowhere";
    o.timeout_ms = 300;
    assert_int_not_equal(es_store_list(c->nc, &o, on_store, &s), ES_OK);

    snprintf(subject, sizeof subject, "$JS.API.STREAM.DELETE.ES_%s", foreign);
    assert_int_equal(natsConnection_RequestString(&m, c->nc, subject, "", 5000), NATS_OK);
    natsMsg_Destroy(m);
}

/* ---- buckets ----------------------------------------------------------------- */

typedef struct buckets_seen {
    char names[4][64];
    char kinds[4][16];
    uint64_t values[4], bytes[4];
    size_t n;
} buckets_seen;

static es_status on_bucket(const es_bucket_info *b, void *closure)
{
    buckets_seen *s = closure;
    assert_true(s->n < 4);
    snprintf(s->names[s->n], sizeof s->names[0], "%s", b->bucket);
    snprintf(s->kinds[s->n], sizeof s->kinds[0], "%s", b->kind);
    s->values[s->n] = b->values;
    s->bytes[s->n++] = b->bytes;
    return ES_OK;
}

static void buckets_are_those_that_exist(void **state)
{
    conf_ctx *c = *state;
    buckets_seen none = {0};
    assert_int_equal(es_store_buckets(c->st, on_bucket, &none), ES_OK);
    assert_int_equal(none.n, 0); /* a fresh store has none yet */

    es_checkpoints *cps = NULL;
    assert_int_equal(es_checkpoints_open(c->st, &cps), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "reader", 7, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "reader", 9, NULL, ES_CHECKPOINT_ANY, NULL), ES_OK);
    es_checkpoints_destroy(cps);
    buckets_seen s = {0};
    assert_int_equal(es_store_buckets(c->st, on_bucket, &s), ES_OK);
    assert_int_equal(s.n, 1);
    char want[64];
    snprintf(want, sizeof want, "ES_%s_checkpoints", c->name);
    assert_string_equal(s.names[0], want);
    assert_string_equal(s.kinds[0], "checkpoints");
    assert_true(s.values[0] >= 1);
    assert_true(s.bytes[0] > 0);
    assert_int_equal(es_store_buckets(c->st, NULL, NULL), ES_ERR_INVALID);
}

/* ---- counts ------------------------------------------------------------------ */

typedef struct counts_seen {
    char text[1024]; /* "type/id/event=count[*] " per subject; * marks an entity's first */
} counts_seen;

static es_status on_count(const es_subject_count *sc, void *closure)
{
    counts_seen *s = closure;
    size_t used = strlen(s->text);
    assert_int_equal(strlen(sc->entity_id), sc->entity_id_len);
    snprintf(s->text + used, sizeof s->text - used, "%s%s%s/%s/%s=%llu%s ",
             sc->tenant ? sc->tenant : "", sc->tenant ? ":" : "", sc->entity_type, sc->entity_id,
             sc->event_type, (unsigned long long)sc->events, sc->first_of_entity ? "*" : "");
    return ES_OK;
}

/* account "a.1" (Opened, Deposited x2), account a2, user u1; and one
 * message under the store's subjects that is not an event. */
static void fill_sample(conf_ctx *c)
{
    es_event_spec b[5] = {
        conf_spec("account", "a.1", "Opened", "1"),
        conf_spec("account", "a.1", "Deposited", "2"),
        conf_spec("account", "a2", "Opened", "3"),
        conf_spec("user", "u1", "Joined", "4"),
        conf_spec("account", "a.1", "Deposited", "5"),
    };
    assert_int_equal(es_append_batch(c->st, b, 5, NULL), ES_OK);
    char subject[128];
    snprintf(subject, sizeof subject, "$ES.%s.junk", c->name);
    natsMsg *m = NULL;
    char inbox[] = "_INBOX.inspect.junk";
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&sub, c->nc, inbox), NATS_OK);
    assert_int_equal(natsConnection_PublishRequestString(c->nc, subject, inbox, "x"), NATS_OK);
    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK); /* stored */
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
}

static void counts_come_per_subject_sorted_and_parsed(void **state)
{
    conf_ctx *c = *state;
    fill_sample(c);
    counts_seen s = {{0}};
    uint64_t skipped = 99;
    assert_int_equal(es_store_subject_counts(c->st, NULL, on_count, &s, &skipped), ES_OK);
    assert_string_equal(s.text, "account/a.1/Deposited=2* account/a.1/Opened=1 "
                                "account/a2/Opened=1* user/u1/Joined=1* ");
    assert_int_equal(skipped, 1); /* $ES.<store>.junk */
    es_filter f;
    es_filter_init(&f);
    f.event_type = "Opened";
    counts_seen opened = {{0}};
    assert_int_equal(es_store_subject_counts(c->st, &f, on_count, &opened, NULL), ES_OK);
    assert_string_equal(opened.text, "account/a.1/Opened=1* account/a2/Opened=1* ");
    f.event_type = "bad.name";
    assert_int_equal(es_store_subject_counts(c->st, &f, on_count, &opened, NULL), ES_ERR_INVALID);
    assert_int_equal(es_store_subject_counts(c->st, NULL, NULL, NULL, NULL), ES_ERR_INVALID);
}

/* ---- entities ---------------------------------------------------------------- */

typedef struct entities_seen {
    char text[1024]; /* "type/id=events@last_seq " */
    size_t count;
    uint64_t last_seqs_ok; /* entities whose last_seq is what fill_many stored */
} entities_seen;

static es_status on_entity(const es_entity_info *e, void *closure)
{
    entities_seen *s = closure;
    s->count++;
    size_t used = strlen(s->text);
    if (used + 200 < sizeof s->text)
        snprintf(s->text + used, sizeof s->text - used, "%s%s%s/%s=%llu@%llu ",
                 e->tenant ? e->tenant : "", e->tenant ? ":" : "", e->entity_type, e->entity_id,
                 (unsigned long long)e->events, (unsigned long long)e->last_seq);
    return ES_OK;
}

static void entities_come_with_counts_and_last_sequences(void **state)
{
    conf_ctx *c = *state;
    fill_sample(c);
    entities_seen s = {{0}, 0, 0};
    assert_int_equal(es_store_entities(c->st, NULL, on_entity, &s), ES_OK);
    assert_string_equal(s.text, "account/a.1=3@5 account/a2=1@3 user/u1=1@4 ");
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    f.event_type = "Opened";
    entities_seen opened = {{0}, 0, 0};
    assert_int_equal(es_store_entities(c->st, &f, on_entity, &opened), ES_OK);
    assert_string_equal(opened.text, "account/a.1=1@1 account/a2=1@3 ");
    assert_int_equal(es_store_entities(NULL, NULL, on_entity, &s), ES_ERR_INVALID);
}

static es_status check_many(const es_entity_info *e, void *closure)
{
    entities_seen *s = closure;
    /* entity "e<i>" got events i+1 (the first round) and N+i+1 (the second) */
    long i = strtol(e->entity_id + 1, NULL, 10);
    s->count++;
    if (e->events == 2 && e->last_seq == (uint64_t)(1500 + i + 1))
        s->last_seqs_ok++;
    return ES_OK;
}

/* More entities than one batched lookup takes (1024 subjects). */
static void entities_beyond_one_lookup(void **state)
{
    conf_ctx *c = *state;
    enum { N = 1500 };
    static char ids[N][8];
    static es_event_spec b[1000];
    for (int round = 0; round < 2; round++)
        for (int start = 0; start < N; start += 1000) {
            int n = N - start < 1000 ? N - start : 1000;
            for (int i = 0; i < n; i++) {
                snprintf(ids[start + i], sizeof ids[0], "e%d", start + i);
                b[i] = conf_spec("thing", ids[start + i], round ? "Changed" : "Made", "x");
            }
            assert_int_equal(es_append_batch(c->st, b, (size_t)n, NULL), ES_OK);
        }
    entities_seen s = {{0}, 0, 0};
    assert_int_equal(es_store_entities(c->st, NULL, check_many, &s), ES_OK);
    assert_int_equal(s.count, N);
    assert_int_equal(s.last_seqs_ok, N);
}

static void tenants_are_parts_of_counts_and_entities(void **state)
{
    conf_ctx *c = *state;
    es_event_spec e = conf_spec("order", "o 1", "Placed", "{}");
    e.tenant = "acme";
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    e.tenant = "bolt";
    assert_int_equal(es_append(c->st, &e, NULL), ES_OK);
    counts_seen s = {{0}};
    assert_int_equal(es_store_subject_counts(c->st, NULL, on_count, &s, NULL), ES_OK);
    assert_string_equal(s.text, "acme:order/o 1/Placed=1* bolt:order/o 1/Placed=1* ");
    es_filter f;
    es_filter_init(&f);
    f.tenant = "bolt";
    entities_seen ent = {{0}, 0, 0};
    assert_int_equal(es_store_entities(c->st, &f, on_entity, &ent), ES_OK);
    assert_string_equal(ent.text, "bolt:order/o 1=1@2 ");
}

int conf_run_inspect(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(stores_are_listed_with_their_info, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(buckets_are_those_that_exist, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(counts_come_per_subject_sorted_and_parsed, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(entities_come_with_counts_and_last_sequences, conf_setup,
                                        conf_teardown),
        cmocka_unit_test_setup_teardown(entities_beyond_one_lookup, conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(tenants_are_parts_of_counts_and_entities,
                                        conf_setup_tenancy, conf_teardown),
    };
    return cmocka_run_group_tests_name("inspect", tests, NULL, NULL);
}
