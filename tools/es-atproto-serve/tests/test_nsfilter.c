/* Server-side wantedCollections (nsfilter.c) through a live server
 * (NATS_URL): the real corpus ingested by es-atproto-ingest leaves an
 * entity-type index listing exactly the types stored; a watch over
 * `app.bsky.feed.*` is handed exactly that namespace's events (and "repo"'s)
 * with no filtering in the process — the NATS server sent only those — and
 * reads one filter per type; a feed type that appears mid-watch (indexed
 * before or after its first event) is picked up with no gap and no repeat,
 * while another namespace's new type is not; the same through a reader (a
 * replay that pulls, es_reader); a store written without the
 * index gets it rebuilt from the stream's subjects.
 *
 * ES_INGEST_BIN and ES_SHARED_DIR come from CMake; the corpus tests skip
 * when ../shared is absent. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <es/atproto.h>
#include <es/es.h>

#include "children.h"
#include "nsfilter.h"

#define TYPES_MAX 64
#define FEED      "app_bsky_feed_"

/* ---- a set of entity types with counts ------------------------------------- */

typedef struct counts {
    pthread_mutex_t mu;
    char type[TYPES_MAX][80];
    uint64_t n[TYPES_MAX];
    size_t len;
    uint64_t total, last_seq;
    bool out_of_order; /* a delivery at or before the previous one */
} counts;

static void counts_add(counts *c, const char *type, uint64_t n)
{
    pthread_mutex_lock(&c->mu);
    size_t i = 0;
    while (i < c->len && strcmp(c->type[i], type) != 0)
        i++;
    if (i == c->len && c->len < TYPES_MAX)
        snprintf(c->type[c->len++], sizeof c->type[0], "%s", type);
    if (i < c->len)
        c->n[i] += n;
    c->total += n;
    pthread_mutex_unlock(&c->mu);
}

static uint64_t counts_of(counts *c, const char *type)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = 0;
    for (size_t i = 0; i < c->len; i++)
        if (strcmp(c->type[i], type) == 0)
            n = c->n[i];
    pthread_mutex_unlock(&c->mu);
    return n;
}

static uint64_t counts_total(counts *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->total;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static es_status count_subject(const es_subject_count *sc, void *closure)
{
    counts_add(closure, sc->entity_type, sc->events);
    return ES_OK;
}

static es_status count_indexed(const char *tenant, const char *type, void *closure)
{
    assert_null(tenant);
    counts_add(closure, type, 1);
    return ES_OK;
}

static bool in_namespace(const char *type)
{
    return strcmp(type, "repo") == 0 || strncmp(type, FEED, strlen(FEED)) == 0;
}

/* ---- the store --------------------------------------------------------------- */

typedef struct fixture {
    natsConnection *nc;
    char store[64];
    es_store *st;
} fixture;

static natsConnection *connect_or_skip(void)
{
    const char *url = getenv("NATS_URL");
    if (url == NULL) {
        printf("SKIP: NATS_URL is not set\n");
        return NULL;
    }
    natsConnection *nc = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    return nc;
}

static int drop(void **state)
{
    fixture *f = *state;
    children_kill_all();
    if (f == NULL)
        return 0;
    es_store_destroy(f->st);
    if (f->nc != NULL)
        es_store_delete(f->nc, f->store, NULL);
    natsConnection_Destroy(f->nc);
    free(f);
    return 0;
}

/* The real corpus ingested (verified) into a store of its own; NULL (the
 * test skips) without a server or the corpus. */
static fixture *corpus_ingested(void **state, const char *what)
{
    const char *dir = getenv("ES_SHARED_DIR"), *bin = getenv("ES_INGEST_BIN");
    char frames[512], docs[512], log[512];
    snprintf(frames, sizeof frames, "%s/fixtures/firehose-corpus/frames.bin.zst", dir ? dir : "");
    snprintf(docs, sizeof docs, "%s/fixtures/firehose-corpus/did_docs.json.zst", dir ? dir : "");
    struct stat sb;
    if (dir == NULL || bin == NULL || stat(frames, &sb) != 0) {
        printf("SKIP: the real relay capture is absent (ES_SHARED_DIR=%s)\n", dir ? dir : "unset");
        return NULL;
    }
    natsConnection *nc = connect_or_skip();
    if (nc == NULL)
        return NULL;
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    f->nc = nc;
    snprintf(f->store, sizeof f->store, "nsidx_%s_%ld", what, (long)getpid());
    snprintf(log, sizeof log, "/tmp/nsidx_%s_%ld.log", what, (long)getpid());
    char *argv[] = {(char *)bin, "--server", (char *)getenv("NATS_URL"), "--store", f->store,
                    "--from-file", frames, "--exit-at-end", "--did-docs", docs, NULL};
    int code = children_exit_code(children_spawn(argv, log, NULL), 60000);
    if (code != 0)
        children_show_log(log);
    assert_int_equal(code, 0);
    unlink(log);
    assert_int_equal(es_store_open(nc, f->store, NULL, &f->st), ES_OK);
    return f;
}

static void the_ingested_index_lists_exactly_the_stored_types(void **state)
{
    fixture *f = corpus_ingested(state, "index");
    if (f == NULL)
        skip();
    counts stored = {.mu = PTHREAD_MUTEX_INITIALIZER}, indexed = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(es_store_subject_counts(f->st, NULL, count_subject, &stored, NULL), ES_OK);
    es_entity_types *t;
    assert_int_equal(es_entity_types_open(f->st, &t), ES_OK);
    assert_int_equal(es_entity_types_list(t, count_indexed, &indexed), ES_OK);
    es_entity_types_destroy(t);
    assert_true(stored.len > 3); /* the corpus has several collections */
    assert_int_equal(indexed.len, stored.len);
    for (size_t i = 0; i < stored.len; i++)
        assert_int_equal(counts_of(&indexed, stored.type[i]), 1);
}

/* ---- a namespace watch --------------------------------------------------------- */

typedef struct watched {
    counts got;
    es_atp_filter *wanted;
} watched;

static es_status on_event(const es_event *ev, void *closure)
{
    watched *w = closure;
    pthread_mutex_lock(&w->got.mu);
    if (es_event_seq(ev) <= w->got.last_seq)
        w->got.out_of_order = true;
    w->got.last_seq = es_event_seq(ev);
    pthread_mutex_unlock(&w->got.mu);
    counts_add(&w->got, es_event_entity_type(ev), 1); /* no filtering here */
    return ES_OK;
}

static bool wants(const char *nsid, void *arg)
{
    watched *w = arg;
    return es_atp_filter_keeps_collection(w->wanted, nsid, strlen(nsid));
}

static void wait_total(counts *c, uint64_t n)
{
    for (int i = 0; i < 250 && counts_total(c) < n; i++)
        children_sleep_ms(20);
    children_sleep_ms(300); /* and nothing more */
    assert_int_equal(counts_total(c), n);
}

static void append(es_store *st, const char *type, const char *id)
{
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = type;
    e.entity_id = id;
    e.event_type = "create";
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
}

static void a_namespace_watch_gets_exactly_its_events(void **state)
{
    fixture *f = corpus_ingested(state, "watch");
    if (f == NULL)
        skip();
    counts stored = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(es_store_subject_counts(f->st, NULL, count_subject, &stored, NULL), ES_OK);
    uint64_t want = 0;
    size_t feed_types = 0;
    for (size_t i = 0; i < stored.len; i++) {
        if (in_namespace(stored.type[i]))
            want += stored.n[i];
        feed_types += strncmp(stored.type[i], FEED, strlen(FEED)) == 0;
    }
    assert_true(feed_types > 0 && want < stored.total); /* a real selection */

    ns_index *ix;
    assert_int_equal(ns_index_open(f->st, &ix), ES_OK);
    watched w = {.got = {.mu = PTHREAD_MUTEX_INITIALIZER}};
    assert_int_equal(es_atp_filter_create(&w.wanted), ES_OK);
    assert_int_equal(es_atp_filter_add_collections(w.wanted, "app.bsky.feed.*"), ES_OK);
    es_watch_options wo;
    es_watch_options_init(&wo);
    wo.on_event = on_event;
    wo.closure = &w;
    es_watch *watch;
    assert_int_equal(ns_watch_start(ix, f->st, wants, &w, &wo, &watch), ES_OK);
    wait_total(&w.got, want);
    for (size_t i = 0; i < w.got.len; i++)
        assert_true(in_namespace(w.got.type[i]));
    assert_int_equal(ns_watch_filters(ix, watch), feed_types + 1); /* one per type, and repo */

    /* a new feed type indexed before its first event, as the ingester does;
     * another indexed only after (a writer without the index, then a
     * rebuild): both read from the watch's start, once, in order after */
    es_entity_types *t;
    assert_int_equal(es_entity_types_open(f->st, &t), ES_OK);
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_feed_brandnew"), ES_OK);
    append(f->st, "app_bsky_feed_brandnew", "did:plc:a");
    append(f->st, "app_bsky_graph_brandnew", "did:plc:a"); /* another namespace */
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_graph_brandnew"), ES_OK);
    append(f->st, "app_bsky_feed_late", "did:plc:b");
    append(f->st, "app_bsky_feed_brandnew", "did:plc:c");
    wait_total(&w.got, want + 2);
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_feed_late"), ES_OK);
    wait_total(&w.got, want + 3);
    append(f->st, "app_bsky_feed_late", "did:plc:d");
    wait_total(&w.got, want + 4);
    assert_int_equal(counts_of(&w.got, "app_bsky_feed_brandnew"), 2);
    assert_int_equal(counts_of(&w.got, "app_bsky_feed_late"), 2);
    assert_int_equal(counts_of(&w.got, "app_bsky_graph_brandnew"), 0);
    assert_int_equal(ns_watch_filters(ix, watch), feed_types + 3);
    ns_index_forget(ix, watch);
    es_watch_destroy(watch);
    es_entity_types_destroy(t);
    ns_index_close(ix);
    es_atp_filter_destroy(w.wanted);
}

/* ---- a namespace reader (a pulled replay's) ------------------------------------------ */

/* Reads `rd` in windows of 16 up to the store's last event. */
static void read_to_end(es_store *st, es_reader *rd, watched *w)
{
    es_store_info info;
    assert_int_equal(es_store_info_get(st, &info), ES_OK);
    for (int calls = 0; es_reader_position(rd) < info.last_seq; calls++) {
        assert_true(calls < 10000);
        size_t count = 0;
        assert_int_equal(es_reader_next(rd, info.last_seq, 16, on_event, w, &count), ES_OK);
        assert_true(count <= 16);
    }
}

/* Waits up to 5 s for the index to have widened `rd` to `n` filters. */
static void wait_filters(ns_index *ix, es_reader *rd, size_t n)
{
    for (int i = 0; i < 250 && ns_watch_filters(ix, rd) != n; i++)
        children_sleep_ms(20);
    assert_int_equal(ns_watch_filters(ix, rd), n);
}

/* The same selection through a reader (a replay that pulls): exactly the
 * namespace's events, and new feed types picked up once each. */
static void a_namespace_reader_gets_exactly_its_events(void **state)
{
    fixture *f = corpus_ingested(state, "reader");
    if (f == NULL)
        skip();
    counts stored = {.mu = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(es_store_subject_counts(f->st, NULL, count_subject, &stored, NULL), ES_OK);
    uint64_t want = 0;
    size_t feed_types = 0;
    for (size_t i = 0; i < stored.len; i++) {
        if (in_namespace(stored.type[i]))
            want += stored.n[i];
        feed_types += strncmp(stored.type[i], FEED, strlen(FEED)) == 0;
    }
    assert_true(feed_types > 0 && want < stored.total);

    ns_index *ix;
    assert_int_equal(ns_index_open(f->st, &ix), ES_OK);
    watched w = {.got = {.mu = PTHREAD_MUTEX_INITIALIZER}};
    assert_int_equal(es_atp_filter_create(&w.wanted), ES_OK);
    assert_int_equal(es_atp_filter_add_collections(w.wanted, "app.bsky.feed.*"), ES_OK);
    es_reader *rd;
    assert_int_equal(ns_reader_open(ix, f->st, wants, &w, 0, &rd), ES_OK);
    read_to_end(f->st, rd, &w);
    assert_int_equal(counts_total(&w.got), want);
    for (size_t i = 0; i < w.got.len; i++)
        assert_true(in_namespace(w.got.type[i]));
    assert_false(w.got.out_of_order);
    assert_int_equal(ns_watch_filters(ix, rd), feed_types + 1);

    es_entity_types *t;
    assert_int_equal(es_entity_types_open(f->st, &t), ES_OK);
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_feed_brandnew"), ES_OK);
    append(f->st, "app_bsky_feed_brandnew", "did:plc:a");
    append(f->st, "app_bsky_graph_brandnew", "did:plc:a"); /* another namespace */
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_graph_brandnew"), ES_OK);
    append(f->st, "app_bsky_feed_late", "did:plc:b");
    append(f->st, "app_bsky_feed_brandnew", "did:plc:c");
    wait_filters(ix, rd, feed_types + 2);
    read_to_end(f->st, rd, &w);
    assert_int_equal(counts_total(&w.got), want + 2);
    assert_int_equal(es_entity_types_add(t, NULL, "app_bsky_feed_late"), ES_OK);
    wait_filters(ix, rd, feed_types + 3);
    append(f->st, "app_bsky_feed_late", "did:plc:d");
    read_to_end(f->st, rd, &w); /* the earlier one late, then the new one */
    assert_int_equal(counts_total(&w.got), want + 4);
    assert_int_equal(counts_of(&w.got, "app_bsky_feed_brandnew"), 2);
    assert_int_equal(counts_of(&w.got, "app_bsky_feed_late"), 2);
    assert_int_equal(counts_of(&w.got, "app_bsky_graph_brandnew"), 0);
    ns_index_forget(ix, rd);
    es_reader_destroy(rd);
    es_entity_types_destroy(t);
    ns_index_close(ix);
    es_atp_filter_destroy(w.wanted);
}

static void a_store_without_an_index_gets_it_rebuilt(void **state)
{
    natsConnection *nc = connect_or_skip();
    if (nc == NULL)
        skip();
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    f->nc = nc;
    snprintf(f->store, sizeof f->store, "nsidx_rebuild_%ld", (long)getpid());
    assert_int_equal(es_store_create(nc, f->store, NULL, NULL, &f->st), ES_OK);
    append(f->st, "app_bsky_feed_post", "did:plc:a");
    append(f->st, "app_bsky_feed_post", "did:plc:b");
    append(f->st, "app_bsky_graph_follow", "did:plc:a");
    append(f->st, "repo", "did:plc:a");
    ns_index *ix;
    assert_int_equal(ns_index_open(f->st, &ix), ES_OK);
    ns_index_close(ix);
    counts indexed = {.mu = PTHREAD_MUTEX_INITIALIZER};
    es_entity_types *t;
    assert_int_equal(es_entity_types_open(f->st, &t), ES_OK);
    assert_int_equal(es_entity_types_list(t, count_indexed, &indexed), ES_OK);
    es_entity_types_destroy(t);
    assert_int_equal(indexed.len, 3);
    assert_int_equal(counts_of(&indexed, "app_bsky_feed_post"), 1);
    assert_int_equal(counts_of(&indexed, "app_bsky_graph_follow"), 1);
    assert_int_equal(counts_of(&indexed, "repo"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(the_ingested_index_lists_exactly_the_stored_types, drop),
        cmocka_unit_test_teardown(a_namespace_watch_gets_exactly_its_events, drop),
        cmocka_unit_test_teardown(a_namespace_reader_gets_exactly_its_events, drop),
        cmocka_unit_test_teardown(a_store_without_an_index_gets_it_rebuilt, drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
