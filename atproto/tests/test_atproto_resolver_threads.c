/* The resolver shared by threads (identity.h): many threads resolving
 * overlapping DIDs against the PLC stand-in (http_standin.h, which counts
 * requests) fetch each DID once; invalidations racing lookups leave every
 * key handed out usable; concurrent refreshes after a signature failure make
 * one request, and the once-a-minute rule holds; an invalidation during a
 * fetch leaves nothing in memory or the store below it. Worker threads only count;
 * the main thread asserts. Run under -fsanitize=thread to check the locking. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../src/atp_internal.h"
#include "../src/atp_sig.h"
#include "../src/identity.h"
#include "http_standin.h"

#define KEY_A "zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj"
#define KEY_B "zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo"

#define THREADS 8
#define DIDS    12
#define ROUNDS  20

typedef struct fixture {
    standin http;
    esi_atp_resolver *r;
    char plc_url[64];
    atomic_int start;           /* workers spin until the main thread says go */
    atomic_uint lookups, errors; /* counted by workers, asserted by main */
    atomic_int stop;
    _Atomic int64_t now_ms; /* the injected clock */
} fixture;

typedef struct worker {
    fixture *f;
    unsigned seed;
    pthread_t thread;
} worker;

static void did_name(char *out, size_t cap, int i)
{
    snprintf(out, cap, "did:plc:thread%02d", i);
}

static void serve(fixture *f, const char *did, const char *key, int delay_ms)
{
    char path[256], body[2048];
    snprintf(path, sizeof path, "/%s", did);
    snprintf(body, sizeof body,
             "{\"id\":\"%s\",\"alsoKnownAs\":[\"at://t.test\"],\"verificationMethod\":[{\"id\":"
             "\"%s#atproto\",\"type\":\"Multikey\",\"controller\":\"%s\","
             "\"publicKeyMultibase\":\"%s\"}]}",
             did, did, did, key);
    standin_route_set(&f->http, path, 200, body, delay_ms);
}

static int64_t test_clock(void *ctx)
{
    return atomic_load(&((fixture *)ctx)->now_ms);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || standin_start(&f->http) != 0)
        return -1;
    snprintf(f->plc_url, sizeof f->plc_url, "http://127.0.0.1:%d", f->http.port);
    esi_atp_resolver_options o;
    esi_atp_resolver_options_init(&o);
    o.plc_url = f->plc_url;
    o.timeout_ms = 10000; /* the stand-in answers one connection at a time */
    o.allow_insecure = 1;
    o.clock = test_clock;
    o.clock_ctx = f;
    atomic_init(&f->now_ms, 1000);
    if (esi_atp_resolver_create(&o, &f->r) != ES_OK)
        return -1;
    for (int i = 0; i < DIDS; i++) {
        char did[64];
        did_name(did, sizeof did, i);
        serve(f, did, KEY_A, 20); /* slow enough for lookups to overlap the fetch */
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esi_atp_resolver_destroy(f->r);
    standin_stop(&f->http);
    free(f);
    return 0;
}

/* Whether `k` is KEY_A's K-256 point (its first byte is a parity tag). */
static bool key_usable(const esi_atp_key *k)
{
    const uint8_t *p = esi_atp_key_point(k);
    return esi_atp_key_curve(k) == ESI_ATP_K256 && (p[0] == 2 || p[0] == 3);
}

static void wait_start(fixture *f)
{
    while (!atomic_load(&f->start))
        standin_sleep_ms(1);
}

/* Each round resolves every DID in an order of its own, keeping the key
 * over a yield (another thread may invalidate meanwhile) before using it. */
static void *resolve_all(void *arg)
{
    worker *w = arg;
    wait_start(w->f);
    for (int round = 0; round < ROUNDS; round++) {
        for (int j = 0; j < DIDS; j++) {
            char did[64];
            did_name(did, sizeof did, (int)((unsigned)j * 5u + w->seed) % DIDS);
            esi_atp_key *k = NULL;
            es_status s = esi_atp_resolve_key(w->f->r, did, &k);
            atomic_fetch_add(&w->f->lookups, 1);
            sched_yield();
            if (s != ES_OK || !key_usable(k))
                atomic_fetch_add(&w->f->errors, 1);
            esi_atp_key_destroy(k);
        }
    }
    return NULL;
}

static void run_workers(fixture *f, worker *w, int n, void *(*fn)(void *))
{
    for (int i = 0; i < n; i++) {
        w[i] = (worker){f, (unsigned)i, 0};
        assert_int_equal(pthread_create(&w[i].thread, NULL, fn, &w[i]), 0);
    }
    atomic_store(&f->start, 1);
}

static void join_workers(worker *w, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(w[i].thread, NULL);
}

/* THREADS threads resolve the same DIDS DIDs at once: one request per DID,
 * every other lookup a hit (from the cache or by waiting for that request). */
static void one_fetch_per_did(void **state)
{
    fixture *f = *state;
    worker w[THREADS];
    run_workers(f, w, THREADS, resolve_all);
    join_workers(w, THREADS);
    assert_int_equal(atomic_load(&f->errors), 0);
    assert_int_equal(standin_requests(&f->http), DIDS);
    esi_atp_resolver_stats st;
    esi_atp_resolver_stats_get(f->r, &st);
    assert_int_equal(st.fetches, DIDS);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.cached, DIDS);
    assert_int_equal(st.hits + st.fetches, atomic_load(&f->lookups));
}

static void *invalidate_loop(void *arg)
{
    worker *w = arg;
    wait_start(w->f);
    for (unsigned i = 0; !atomic_load(&w->f->stop); i++) {
        char did[64];
        did_name(did, sizeof did, (int)(i % DIDS));
        esi_atp_resolver_invalidate(w->f->r, did);
        standin_sleep_ms(1);
    }
    return NULL;
}

/* Invalidations racing lookups: every lookup succeeds with a key that stays
 * usable after its entry is dropped (a reference of its own), and every
 * request made is counted once, as a fetch. */
static void invalidation_races_lookups(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < DIDS; i++) { /* fast answers: many rounds of drop and refetch */
        char did[64];
        did_name(did, sizeof did, i);
        serve(f, did, KEY_A, 0);
    }
    worker w[THREADS + 1];
    run_workers(f, w, THREADS, resolve_all);
    w[THREADS] = (worker){f, 0, 0};
    assert_int_equal(pthread_create(&w[THREADS].thread, NULL, invalidate_loop, &w[THREADS]), 0);
    join_workers(w, THREADS);
    atomic_store(&f->stop, 1);
    pthread_join(w[THREADS].thread, NULL);
    assert_int_equal(atomic_load(&f->errors), 0);
    esi_atp_resolver_stats st;
    esi_atp_resolver_stats_get(f->r, &st);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.fetches, standin_requests(&f->http));
    assert_true(st.fetches >= DIDS);
    assert_int_equal(st.hits + st.fetches, atomic_load(&f->lookups));
    /* a key kept across the invalidation of its entry is still the caller's */
    esi_atp_key *k = NULL;
    assert_int_equal(esi_atp_resolve_key(f->r, "did:plc:thread00", &k), ES_OK);
    esi_atp_resolver_invalidate(f->r, "did:plc:thread00");
    assert_true(key_usable(k));
    esi_atp_key_destroy(k);
}

static esi_atp_key *stale_key; /* the key every refresher failed with */

static void *refresh_once(void *arg)
{
    worker *w = arg;
    wait_start(w->f);
    if (esi_atp_resolver_refresh(w->f->r, "did:plc:thread00", stale_key) != ES_OK)
        atomic_fetch_add(&w->f->errors, 1);
    atomic_fetch_add(&w->f->lookups, 1);
    return NULL;
}

/* A rotated key: THREADS decoders fail a signature with the old key at once
 * and each asks for a refresh; the directory is asked once, each gets
 * ES_OK and then the new key; a refresh with the new key within the minute
 * is refused without a request (the rule a forging relay meets). */
static void concurrent_refresh_fetches_once(void **state)
{
    fixture *f = *state;
    assert_int_equal(esi_atp_resolve_key(f->r, "did:plc:thread00", &stale_key), ES_OK);
    assert_int_equal(standin_requests(&f->http), 1);
    serve(f, "did:plc:thread00", KEY_B, 50);
    atomic_fetch_add(&f->now_ms, 60000); /* past the minute since that fetch */
    worker w[THREADS];
    run_workers(f, w, THREADS, refresh_once);
    join_workers(w, THREADS);
    assert_int_equal(atomic_load(&f->errors), 0);
    assert_int_equal(standin_requests(&f->http), 2);
    esi_atp_key *k = NULL;
    assert_int_equal(esi_atp_resolve_key(f->r, "did:plc:thread00", &k), ES_OK);
    assert_ptr_not_equal(k, stale_key);
    assert_int_equal(esi_atp_key_curve(k), ESI_ATP_P256);
    assert_int_equal(esi_atp_resolver_refresh(f->r, "did:plc:thread00", k), ES_ERR_LIMIT);
    assert_int_equal(standin_requests(&f->http), 2);
    esi_atp_key_destroy(k);
    esi_atp_key_destroy(stale_key);
    stale_key = NULL;
}

/* A store below the memory cache (esi_atp_doc_store) that keeps one
 * document in memory and counts its calls. */
typedef struct fake_store {
    pthread_mutex_t lock;
    char json[4096];
    bool kept;
    unsigned saves, forgets, loads;
} fake_store;

static es_status fake_load(void *ctx, const char *did, esi_atp_did_doc **out, int64_t *age_ms)
{
    (void)did;
    fake_store *fs = ctx;
    pthread_mutex_lock(&fs->lock);
    fs->loads++;
    es_status s = fs->kept ? esi_atp_did_doc_parse(fs->json, strlen(fs->json), out)
                           : ES_ERR_NOT_FOUND;
    pthread_mutex_unlock(&fs->lock);
    *age_ms = 0;
    return s;
}

static es_status fake_save(void *ctx, const char *did, const char *json, size_t len)
{
    (void)did;
    fake_store *fs = ctx;
    pthread_mutex_lock(&fs->lock);
    snprintf(fs->json, sizeof fs->json, "%.*s", (int)len, json);
    fs->kept = true;
    fs->saves++;
    pthread_mutex_unlock(&fs->lock);
    return ES_OK;
}

static es_status fake_forget(void *ctx, const char *did)
{
    (void)did;
    fake_store *fs = ctx;
    pthread_mutex_lock(&fs->lock);
    fs->kept = false;
    fs->forgets++;
    pthread_mutex_unlock(&fs->lock);
    return ES_OK;
}

static void *resolve_thread00(void *arg)
{
    worker *w = arg;
    esi_atp_key *k = NULL;
    if (esi_atp_resolve_key(w->f->r, "did:plc:thread00", &k) != ES_OK || !key_usable(k))
        atomic_fetch_add(&w->f->errors, 1);
    esi_atp_key_destroy(k);
    return NULL;
}

/* An #identity while the DID's document is being fetched: what the fetch
 * brings back answers its caller but is neither cached in memory nor left
 * in the store (its flier deletes it after writing it), so the next lookup
 * asks the directory again rather than trusting a pre-#identity document. */
static void invalidation_during_fetch_clears_store(void **state)
{
    fixture *f = *state;
    fake_store fs = {.lock = PTHREAD_MUTEX_INITIALIZER};
    esi_atp_doc_store store = {fake_load, fake_save, fake_forget, &fs};
    esi_atp_resolver_set_store(f->r, &store);
    serve(f, "did:plc:thread00", KEY_A, 300);
    worker w = {f, 0, 0};
    assert_int_equal(pthread_create(&w.thread, NULL, resolve_thread00, &w), 0);
    standin_sleep_ms(100); /* the fetch is under way (the stand-in waits 300 ms) */
    esi_atp_resolver_invalidate(f->r, "did:plc:thread00");
    pthread_join(w.thread, NULL);
    assert_int_equal(atomic_load(&f->errors), 0);
    assert_int_equal(standin_requests(&f->http), 1);
    assert_int_equal(fs.loads, 1);
    assert_int_equal(fs.saves, 1);
    assert_int_equal(fs.forgets, 1); /* by the flier, after its save */
    assert_false(fs.kept);
    esi_atp_resolver_stats st;
    esi_atp_resolver_stats_get(f->r, &st);
    assert_int_equal(st.cached, 0);
    /* the next lookup: not in memory, not in the store: the directory */
    serve(f, "did:plc:thread00", KEY_A, 0);
    esi_atp_key *k = NULL;
    assert_int_equal(esi_atp_resolve_key(f->r, "did:plc:thread00", &k), ES_OK);
    esi_atp_key_destroy(k);
    assert_int_equal(standin_requests(&f->http), 2);
    assert_true(fs.kept);
    /* an invalidation with no fetch in flight deletes from the store itself */
    esi_atp_resolver_invalidate(f->r, "did:plc:thread00");
    assert_int_equal(fs.forgets, 2);
    assert_false(fs.kept);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_fetch_per_did, setup, teardown),
        cmocka_unit_test_setup_teardown(invalidation_races_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_refresh_fetches_once, setup, teardown),
        cmocka_unit_test_setup_teardown(invalidation_during_fetch_clears_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
