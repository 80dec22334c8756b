/* The tracked repositories (es/atproto_tracked.h) against a live server
 * (NATS_URL; skipped without one): add, remove and contains round trip
 * through the bucket ES_<store>_tracked, listing sees the set, a watch on
 * another connection delivers the current set before its start returns and
 * then each change in order, and values that are not a tracked DID's entry
 * are skipped and counted, never tracked. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <es/es.h>
#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/atproto_tracked.h>
#include <es/checkpoint.h>

#include "live.h"

typedef struct ctx {
    live_store live;
    es_atp_tracked *t;
} ctx;

static int setup(void **state)
{
    static ctx c;
    *state = NULL;
    int made = live_store_create(&c.live, "tracked_t");
    if (made <= 0)
        return made;
    if (es_atp_tracked_open(c.live.store, &c.t) != ES_OK)
        return -1;
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c != NULL) {
        es_atp_tracked_destroy(c->t);
        live_store_destroy(&c->live);
    }
    return 0;
}

static bool tracked(ctx *c, const char *did, int64_t *added_ns)
{
    bool yes = true;
    assert_int_equal(es_atp_tracked_contains(c->t, did, strlen(did), &yes, added_ns), ES_OK);
    return yes;
}

/* ---- add, remove, contains, list ------------------------------------------------- */

static void add_remove_and_contains(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    const char *did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    int64_t added = -1, again = -1;
    assert_false(tracked(c, did, &added));
    assert_int_equal(added, 0);
    assert_int_equal(es_atp_tracked_add(c->t, did, strlen(did)), ES_OK);
    assert_true(tracked(c, did, &added));
    assert_true(added > 0);
    /* adding again changes nothing: the added time is kept */
    live_sleep_ms(5);
    assert_int_equal(es_atp_tracked_add(c->t, did, strlen(did)), ES_OK);
    assert_true(tracked(c, did, &again));
    assert_int_equal(again, added);
    /* removed: not tracked; removing again is ES_ERR_NOT_FOUND */
    assert_int_equal(es_atp_tracked_remove(c->t, did, strlen(did)), ES_OK);
    assert_false(tracked(c, did, NULL));
    assert_int_equal(es_atp_tracked_remove(c->t, did, strlen(did)), ES_ERR_NOT_FOUND);
    /* and back */
    assert_int_equal(es_atp_tracked_add(c->t, did, strlen(did)), ES_OK);
    assert_true(tracked(c, did, NULL));
    /* a did:web with a port ('%' in the DID) */
    const char *web = "did:web:localhost%3A8080";
    assert_int_equal(es_atp_tracked_add(c->t, web, strlen(web)), ES_OK);
    assert_true(tracked(c, web, NULL));
}

static void bad_dids_are_refused(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    assert_int_equal(es_atp_tracked_add(c->t, "plc:abc", 7), ES_ERR_INVALID);
    assert_int_equal(es_atp_tracked_remove(c->t, "plc:abc", 7), ES_ERR_INVALID);
    assert_false(tracked(c, "plc:abc", NULL));
    /* valid DIDs whose key would be hashed cannot be tracked */
    static char longest[2049];
    memset(longest, 'a', 2048);
    memcpy(longest, "did:plc:", 8);
    assert_true(es_atp_valid_did(longest, 2048));
    assert_int_equal(es_atp_tracked_add(c->t, longest, 2048), ES_ERR_LIMIT);
    const char *dots = "did:web:a..b";
    assert_int_equal(es_atp_tracked_add(c->t, dots, strlen(dots)), ES_ERR_LIMIT);
    assert_false(tracked(c, dots, NULL));
    /* the longest that can: 255 bytes */
    char at_max[ES_ATP_TRACKED_DID_MAX + 1];
    memset(at_max, 'b', ES_ATP_TRACKED_DID_MAX);
    memcpy(at_max, "did:plc:", 8);
    assert_int_equal(es_atp_tracked_add(c->t, at_max, ES_ATP_TRACKED_DID_MAX), ES_OK);
    assert_int_equal(es_atp_tracked_remove(c->t, at_max, ES_ATP_TRACKED_DID_MAX), ES_OK);
    assert_int_equal(es_atp_tracked_add(NULL, "did:plc:x", 9), ES_ERR_INVALID);
}

typedef struct listed {
    size_t count;
    bool plc, web;
} listed;

static es_status on_listed(const char *did, size_t len, int64_t added_ns, void *closure)
{
    listed *l = closure;
    l->count++;
    assert_true(added_ns > 0);
    l->plc |= len == 32 && memcmp(did, "did:plc:ewvi7nxzyoun6zhxrhs64oiz", len) == 0;
    l->web |= len == 24 && memcmp(did, "did:web:localhost%3A8080", len) == 0;
    return ES_OK;
}

static void listing_sees_the_set(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    listed l = {0};
    size_t skipped = 99;
    assert_int_equal(es_atp_tracked_list(c->t, on_listed, &l, &skipped), ES_OK);
    assert_int_equal(l.count, 2); /* the earlier tests left these two */
    assert_true(l.plc);
    assert_true(l.web);
    assert_int_equal(skipped, 0);
}

/* ---- the watch ------------------------------------------------------------------- */

#define SEEN_MAX 16

typedef struct seen {
    pthread_mutex_t mu;
    size_t n;
    char what[SEEN_MAX][80]; /* "+did" or "-did" */
} seen;

static void on_change(const char *did, size_t len, bool added, void *closure)
{
    seen *s = closure;
    pthread_mutex_lock(&s->mu);
    if (s->n < SEEN_MAX)
        snprintf(s->what[s->n++], sizeof s->what[0], "%c%.*s", added ? '+' : '-', (int)len, did);
    pthread_mutex_unlock(&s->mu);
}

static size_t seen_count(seen *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Waits up to 5 s for n changes. */
static void wait_seen(seen *s, size_t n)
{
    for (int i = 0; i < 250 && seen_count(s) < n; i++)
        live_sleep_ms(20);
    assert_int_equal(seen_count(s), n);
}

/* A second connection and handle on the same store: the watcher. */
typedef struct other {
    natsConnection *nc;
    es_store *store;
    es_atp_tracked *t;
} other;

static void other_open(ctx *c, other *o)
{
    assert_int_equal(natsConnection_ConnectTo(&o->nc, getenv("NATS_URL")), NATS_OK);
    assert_int_equal(es_store_open(o->nc, c->live.name, NULL, &o->store), ES_OK);
    assert_int_equal(es_atp_tracked_open(o->store, &o->t), ES_OK);
}

static void other_close(other *o)
{
    es_atp_tracked_destroy(o->t);
    es_store_destroy(o->store);
    natsConnection_Destroy(o->nc);
}

static void watch_sees_the_set_then_changes(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    const char *a = "did:plc:watchaaaaaaaaaaaaaaaaaaaa", *b = "did:plc:watchbbbbbbbbbbbbbbbbbbbb";
    const char *d = "did:plc:watchdddddddddddddddddddd";
    /* start from a set of one (the earlier tests' DIDs removed), and a
     * DID removed before the watch starts: no current value */
    assert_int_equal(es_atp_tracked_remove(c->t, "did:plc:ewvi7nxzyoun6zhxrhs64oiz", 32), ES_OK);
    assert_int_equal(es_atp_tracked_remove(c->t, "did:web:localhost%3A8080", 24), ES_OK);
    assert_int_equal(es_atp_tracked_add(c->t, a, strlen(a)), ES_OK);
    assert_int_equal(es_atp_tracked_add(c->t, b, strlen(b)), ES_OK);
    assert_int_equal(es_atp_tracked_remove(c->t, b, strlen(b)), ES_OK);

    other o;
    other_open(c, &o);
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    es_atp_tracked_watch *w = NULL;
    assert_int_equal(es_atp_tracked_watch_start(o.t, on_change, &s, &w), ES_OK);
    /* the current set is delivered when start returns */
    assert_int_equal(seen_count(&s), 1);
    assert_string_equal(s.what[0], "+did:plc:watchaaaaaaaaaaaaaaaaaaaa");

    /* changes made through the first handle, while the watch runs */
    assert_int_equal(es_atp_tracked_add(c->t, d, strlen(d)), ES_OK);
    assert_int_equal(es_atp_tracked_remove(c->t, a, strlen(a)), ES_OK);
    assert_int_equal(es_atp_tracked_add(c->t, b, strlen(b)), ES_OK);
    assert_int_equal(es_atp_tracked_add(c->t, b, strlen(b)), ES_OK); /* no change: nothing seen */
    wait_seen(&s, 4);
    live_sleep_ms(200);
    assert_int_equal(es_atp_tracked_watch_skipped(w), 0);
    es_atp_tracked_watch_destroy(w);
    assert_int_equal(seen_count(&s), 4);
    assert_string_equal(s.what[1], "+did:plc:watchdddddddddddddddddddd");
    assert_string_equal(s.what[2], "-did:plc:watchaaaaaaaaaaaaaaaaaaaa");
    assert_string_equal(s.what[3], "+did:plc:watchbbbbbbbbbbbbbbbbbbbb");
    assert_int_equal(es_atp_tracked_watch_skipped(NULL), 0);
    other_close(&o);
    /* leave an empty set for the next test */
    assert_int_equal(es_atp_tracked_remove(c->t, b, strlen(b)), ES_OK);
    assert_int_equal(es_atp_tracked_remove(c->t, d, strlen(d)), ES_OK);
}

/* ---- hostile values -------------------------------------------------------------- */

/* Writes raw checkpoint data under a key of the tracked bucket. */
static void put_raw(ctx *c, const char *key, const char *json)
{
    es_checkpoints *cps = NULL;
    assert_int_equal(es_checkpoints_open_bucket(c->live.store, ES_CHECKPOINTS_TRACKED, &cps),
                     ES_OK);
    assert_int_equal(es_checkpoint_set(cps, key, 0, json, ES_CHECKPOINT_ANY, NULL), ES_OK);
    es_checkpoints_destroy(cps);
}

/* Writes a raw KV value into the tracked bucket, past the library. */
static void put_garbage(ctx *c, const char *key, const char *value)
{
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    char bucket[64];
    snprintf(bucket, sizeof bucket, "ES_%s_tracked", c->live.name);
    assert_int_equal(natsConnection_JetStream(&js, c->live.nc, NULL), NATS_OK);
    assert_int_equal(js_KeyValue(&kv, js, bucket), NATS_OK);
    assert_int_equal(kvStore_PutString(NULL, kv, key, value), NATS_OK);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
}

static es_status count_listed(const char *did, size_t len, int64_t added_ns, void *closure)
{
    (void)added_ns;
    size_t *n = closure;
    assert_int_equal(len, strlen("did:plc:goodgoodgoodgoodgoodgood"));
    assert_memory_equal(did, "did:plc:goodgoodgoodgoodgoodgood", len);
    (*n)++;
    return ES_OK;
}

static void hostile_values_are_skipped(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    const char *good = "did:plc:goodgoodgoodgoodgoodgood";
    assert_int_equal(es_atp_tracked_add(c->t, good, strlen(good)), ES_OK);
    put_raw(c, "did/plc/hostile1", "{\"v\":2,\"did\":\"did:plc:hostile1\"}");   /* a newer version */
    put_raw(c, "did/plc/hostile2", "{\"v\":1,\"did\":\"did:plc:someoneelse\"}"); /* not the key's */
    put_raw(c, "did/plc/hostile3", NULL);                                     /* no data */
    put_raw(c, "did/plc/hostile4", "[1,2]");                                  /* not an object */
    put_raw(c, "did/plc/hostile5", "{\"v\":1}");                              /* no did */
    put_raw(c, "not-a-did", "{\"v\":1,\"did\":\"did:plc:x\"}");                /* no DID's key */
    put_raw(c, "cid/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
            "{\"v\":1,\"did\":\"did:web:a..b\"}"); /* a hashed key */
    assert_false(tracked(c, "did:plc:hostile1", NULL));
    assert_false(tracked(c, "did:plc:hostile2", NULL));
    assert_false(tracked(c, "did:plc:someoneelse", NULL));

    size_t n = 0, skipped = 0;
    assert_int_equal(es_atp_tracked_list(c->t, count_listed, &n, &skipped), ES_OK);
    assert_int_equal(n, 1);
    assert_int_equal(skipped, 7);

    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    es_atp_tracked_watch *w = NULL;
    assert_int_equal(es_atp_tracked_watch_start(c->t, on_change, &s, &w), ES_OK);
    assert_int_equal(seen_count(&s), 1);
    assert_string_equal(s.what[0], "+did:plc:goodgoodgoodgoodgoodgood");
    assert_int_equal(es_atp_tracked_watch_skipped(w), 7);
    /* a hostile value written while watching: skipped too */
    put_raw(c, "did/plc/hostile6", "{\"v\":1,\"did\":7}");
    for (int i = 0; i < 250 && es_atp_tracked_watch_skipped(w) < 8; i++)
        live_sleep_ms(20);
    assert_int_equal(es_atp_tracked_watch_skipped(w), 8);
    /* a value that is not even a checkpoint (written with nats.c): the
     * engine passes it over, uncounted; contains says not tracked */
    put_garbage(c, "did/plc/garbage", "not json");
    assert_false(tracked(c, "did:plc:garbage", NULL));
    assert_int_equal(es_atp_tracked_remove(c->t, "did:plc:garbage", 15), ES_ERR_NOT_FOUND);
    live_sleep_ms(100);
    assert_int_equal(seen_count(&s), 1);
    /* adding a DID whose key holds a hostile value replaces it */
    assert_int_equal(es_atp_tracked_add(c->t, "did:plc:hostile1", 16), ES_OK);
    assert_true(tracked(c, "did:plc:hostile1", NULL));
    assert_int_equal(es_atp_tracked_add(c->t, "did:plc:garbage", 15), ES_OK);
    assert_true(tracked(c, "did:plc:garbage", NULL));
    wait_seen(&s, 3);
    assert_string_equal(s.what[1], "+did:plc:hostile1");
    assert_string_equal(s.what[2], "+did:plc:garbage");
    es_atp_tracked_watch_destroy(w);
}

typedef struct bucket_seen {
    char want[64];
    bool found;
} bucket_seen;

static es_status on_bucket(const es_bucket_info *b, void *closure)
{
    bucket_seen *s = closure;
    s->found |= strcmp(b->bucket, s->want) == 0 && strcmp(b->kind, "tracked") == 0;
    return ES_OK;
}

/* The set lives in the store's own bucket ES_<store>_tracked. */
static void the_bucket_is_the_stores(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    bucket_seen s = {.found = false};
    snprintf(s.want, sizeof s.want, "ES_%s_tracked", c->live.name);
    assert_int_equal(es_store_buckets(c->live.store, on_bucket, &s), ES_OK);
    assert_true(s.found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_remove_and_contains),
        cmocka_unit_test(bad_dids_are_refused),
        cmocka_unit_test(listing_sees_the_set),
        cmocka_unit_test(watch_sees_the_set_then_changes),
        cmocka_unit_test(hostile_values_are_skipped),
        cmocka_unit_test(the_bucket_is_the_stores),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
