/* The envelope's keys and dictionaries in a store's KV buckets
 * (envelope_kv.h), against a live server from NATS_URL: the KV keyring round
 * trip, shredding by rollup, racing key creation, es_dict_put and the KV
 * dictionary source, deleting the buckets. Skips without a server. What does
 * not depend on KV is tested by the envelope (envelope/tests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include <es/dict.h>
#include <es/envelope.h>
#include <es/keyring.h>

#include "base/internal.h"
#include "envelope_kv.h"
#include "store_impl.h"
#include "transport/kv.h"
#include "wire.h"
#include "nats_fixture.h"

/* Key records (docs/envelope.md): version byte, key id, wrapped key; a shred
 * mark is its version byte and a time. */
#define REC_KEY      0x01
#define REC_SHREDDED 0x02
#define KID_BYTES    16
#define REC_KEY_LEN  (1 + KID_BYTES + 24 + 32 + 16)
#define REC_MARK_LEN 9

static const uint8_t master1[ES_MASTER_KEY_BYTES] = {1, 2, 3};
static const uint8_t master2[ES_MASTER_KEY_BYTES] = {4, 5, 6};

typedef struct fixture {
    natsConnection *nc;
    esi_js *js; /* over nc */
    char store[33];
    esi_kv_place at;
    char entity[96], subject[112]; /* "$ES.<store>.account.alice" and its event */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->nc = fixture_connect();
    fixture_store_name(f->store);
    if (f->nc != NULL)
        assert_int_equal(esi_store_js(f->nc, NULL, &f->js), ES_OK);
    f->at = (esi_kv_place){.js = f->js, .store = f->store, .replicas = 1};
    snprintf(f->entity, sizeof f->entity, "$ES.%s.account.alice", f->store);
    snprintf(f->subject, sizeof f->subject, "%s.deposited", f->entity);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fixture_drop_store(f->js, f->store);
    esi_js_destroy(f->js);
    fixture_disconnect(f->nc);
    free(f);
    return 0;
}

/* The event published on f->subject (entity type "account"). */
static es_envelope_event alice_event(const fixture *f)
{
    size_t entity_len = strlen(f->entity);
    return (es_envelope_event){.subject = f->subject,
                               .entity = f->entity,
                               .entity_len = entity_len,
                               .entity_type = "account",
                               .entity_type_len = 7,
                               .event_type = f->subject + entity_len + 1,
                               .event_type_len = strlen("deposited")};
}

static es_keyring *kv_keyring(const fixture *f, const uint8_t *master)
{
    es_keyring_options ko = {.master_key = master};
    es_keyring *kr = NULL;
    es_status s = esi_keyring_open_kv(&f->at, &ko, &kr);
    if (s != ES_OK)
        fail_msg("esi_keyring_open_kv: %s: %s", es_status_text(s), es_last_error());
    return kr;
}

static es_envelope *encrypting(es_keyring *kr)
{
    es_envelope_options o = {.encrypt = true, .keyring = kr};
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    return env;
}

/* A sealed event, kept. */
typedef struct sealed {
    char kid[2 * KID_BYTES + 1];
    es_header h[ES_ENVELOPE_HEADER_COUNT];
    char values[ES_ENVELOPE_HEADER_COUNT][48];
    size_t nh;
    uint8_t payload[256];
    size_t len;
} sealed;

static es_status seal(es_envelope *env, const es_envelope_event *ev, const char *text, sealed *out)
{
    es_sealed s = ES_SEALED_INIT;
    es_status st = es_envelope_seal(env, ev, "id-1", 0, (const uint8_t *)text, strlen(text), &s);
    if (st == ES_OK && s.len <= sizeof out->payload) {
        out->nh = s.n_headers;
        for (size_t i = 0; i < s.n_headers; i++) {
            snprintf(out->values[i], sizeof out->values[i], "%s", s.headers[i].value);
            out->h[i] = (es_header){s.headers[i].name, out->values[i]};
            if (strcmp(s.headers[i].name, ES_HDR_KEY) == 0)
                snprintf(out->kid, sizeof out->kid, "%s", s.headers[i].value);
        }
        memcpy(out->payload, s.data, s.len);
        out->len = s.len;
    }
    es_sealed_free(&s);
    return st;
}

static es_status open_sealed(es_envelope *env, const es_envelope_event *ev, const sealed *e,
                             const char *text)
{
    es_opened o = ES_OPENED_INIT;
    es_status st = es_envelope_open(env, ev, "id-1", e->h, e->nh, e->payload, e->len, &o);
    if (st == ES_OK && text != NULL) {
        assert_int_equal(o.len, strlen(text));
        assert_memory_equal(o.data, text, o.len);
    }
    es_opened_free(&o);
    return st;
}

/* ---- bucket access for checks -------------------------------------------- */

typedef struct bucket {
    jsCtx *js;
    kvStore *kv;
} bucket;

/* Binds ES_<store>_<suffix>; NATS_NOT_FOUND when it does not exist. */
static natsStatus bucket_bind(const fixture *f, esi_bucket_kind kind, bucket *b)
{
    char name[ESI_KV_BUCKET_MAX];
    assert_int_equal(esi_bucket_name(f->store, kind, name), ES_OK);
    *b = (bucket){0};
    assert_int_equal(natsConnection_JetStream(&b->js, f->nc, NULL), NATS_OK);
    natsStatus ns = js_KeyValue(&b->kv, b->js, name);
    if (ns != NATS_OK) {
        jsCtx_Destroy(b->js);
        *b = (bucket){0};
    }
    return ns;
}

static void bucket_close(bucket *b)
{
    kvStore_Destroy(b->kv);
    jsCtx_Destroy(b->js);
}

/* The revisions the keys bucket holds under the record name `key`, oldest
 * first (none: an empty list). The caller destroys the list. */
static void record_history(const fixture *f, const char *key, kvEntryList *list)
{
    bucket b;
    assert_int_equal(bucket_bind(f, ES_BUCKET_KEYS, &b), NATS_OK);
    memset(list, 0, sizeof *list);
    natsStatus ns = kvStore_History(list, b.kv, key, NULL);
    assert_true(ns == NATS_OK || ns == NATS_NOT_FOUND);
    bucket_close(&b);
}

static size_t record_history_len(const fixture *f, const char *key)
{
    kvEntryList list;
    record_history(f, key, &list);
    size_t n = (size_t)list.Count;
    kvEntryList_Destroy(&list);
    return n;
}

/* The same for `entity`'s data key record. */
static void key_history(const fixture *f, const char *entity, kvEntryList *list)
{
    char key[ES_KEYRING_KV_KEY_MAX];
    es_keyring_kv_key(entity, strlen(entity), key);
    record_history(f, key, list);
}

static size_t history_len(const fixture *f, const char *entity)
{
    char key[ES_KEYRING_KV_KEY_MAX];
    es_keyring_kv_key(entity, strlen(entity), key);
    return record_history_len(f, key);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* ---- keyring ------------------------------------------------------------- */

static void kv_keyring_round_trip(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    es_keyring *kr = kv_keyring(f, master1);
    es_envelope *env = encrypting(kr);
    es_envelope_event ev = alice_event(f);
    sealed e;
    assert_int_equal(seal(env, &ev, "hello", &e), ES_OK);
    assert_int_equal(open_sealed(env, &ev, &e, "hello"), ES_OK);

    /* The wrapped key sits in ES_<store>_keys under the entity's record
     * name, with the id the event names; the bucket keeps one revision. */
    kvEntryList list;
    key_history(f, f->entity, &list);
    assert_int_equal(list.Count, 1);
    const uint8_t *rec = kvEntry_Value(list.Entries[0]);
    assert_int_equal(kvEntry_ValueLen(list.Entries[0]), REC_KEY_LEN);
    assert_int_equal(rec[0], REC_KEY);
    char kid[2 * KID_BYTES + 1];
    hex(rec + 1, KID_BYTES, kid);
    assert_string_equal(kid, e.kid);
    kvEntryList_Destroy(&list);
    bucket b;
    assert_int_equal(bucket_bind(f, ES_BUCKET_KEYS, &b), NATS_OK);
    kvStatus *status = NULL;
    assert_int_equal(kvStore_Status(&status, b.kv), NATS_OK);
    assert_int_equal(kvStatus_History(status), 1);
    kvStatus_Destroy(status);
    bucket_close(&b);

    /* Another process with the same master key reads it from the bucket;
     * one with another master key is refused before it can write. */
    es_keyring *kr2 = kv_keyring(f, master1);
    es_envelope *env2 = encrypting(kr2);
    assert_int_equal(open_sealed(env2, &ev, &e, "hello"), ES_OK);
    es_keyring_options ko_bad = {.master_key = master2};
    es_keyring *bad = NULL;
    assert_int_equal(esi_keyring_open_kv(&f->at, &ko_bad, &bad), ES_ERR_CRYPTO);
    assert_null(bad);
    assert_int_equal(record_history_len(f, ES_KEYRING_CHECK_NAME), 1);

    es_envelope_destroy(env2);
    es_keyring_destroy(kr2);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

static void kv_keyring_arguments(void **state)
{
    fixture *f = *state;
    es_keyring_options ko = {.master_key = master1};
    es_keyring *kr = NULL;
    esi_kv_place bad = f->at;
    bad.store = "no.dots";
    assert_int_equal(esi_keyring_open_kv(&bad, &ko, &kr), ES_ERR_INVALID);
    assert_null(kr);
    bad = f->at;
    bad.js = NULL;
    assert_int_equal(esi_keyring_open_kv(&bad, &ko, &kr), ES_ERR_INVALID);
    assert_null(kr);
    REQUIRE_NATS(f->nc);
    /* A bad master key fails after the bucket was bound: nothing leaks. */
    es_keyring_options none = {0};
    assert_int_equal(esi_keyring_open_kv(&f->at, &none, &kr), ES_ERR_NO_KEY);
    assert_null(kr);
}

/* The shred is one rollup: in a bucket that keeps history, every earlier
 * revision of the entity's record goes in the same step. */
static void kv_shred_leaves_no_earlier_revision(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    /* The bucket made beforehand with history 5: only the rollup can erase
     * revisions, not the bucket's limit. */
    char name[ESI_KV_BUCKET_MAX];
    assert_int_equal(esi_bucket_name(f->store, ES_BUCKET_KEYS, name), ES_OK);
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    assert_int_equal(natsConnection_JetStream(&js, f->nc, NULL), NATS_OK);
    kvConfig c;
    kvConfig_Init(&c);
    c.Bucket = name;
    c.History = 5;
    assert_int_equal(js_CreateKeyValue(&kv, js, &c), NATS_OK);

    es_keyring *kr = kv_keyring(f, master1);
    es_envelope *env = encrypting(kr);
    es_envelope_event ev = alice_event(f);
    sealed e;
    assert_int_equal(seal(env, &ev, "alice's data", &e), ES_OK);
    /* A second revision of the record (a copy put back outside es). */
    char key[ES_KEYRING_KV_KEY_MAX];
    es_keyring_kv_key(f->entity, strlen(f->entity), key);
    kvEntry *first = NULL;
    assert_int_equal(kvStore_Get(&first, kv, key), NATS_OK);
    uint64_t first_rev = kvEntry_Revision(first);
    assert_int_equal(kvStore_Put(NULL, kv, key, kvEntry_Value(first), kvEntry_ValueLen(first)),
                     NATS_OK);
    kvEntry_Destroy(first);
    assert_int_equal(history_len(f, f->entity), 2);

    assert_int_equal(es_keyring_shred(kr, f->entity), ES_OK);
    kvEntryList list;
    key_history(f, f->entity, &list);
    assert_int_equal(list.Count, 1);
    assert_int_equal(kvEntry_Operation(list.Entries[0]), kvOp_Put);
    assert_int_equal(kvEntry_ValueLen(list.Entries[0]), REC_MARK_LEN);
    assert_int_equal(((const uint8_t *)kvEntry_Value(list.Entries[0]))[0], REC_SHREDDED);
    kvEntryList_Destroy(&list);
    kvEntry *gone = NULL;
    assert_int_equal(kvStore_GetRevision(&gone, kv, key, first_rev), NATS_NOT_FOUND);

    /* Every process now reads "shredded"; shredding again changes nothing;
     * an entity without a key can be shredded up front. */
    es_keyring *fresh = kv_keyring(f, master1);
    es_envelope *fresh_env = encrypting(fresh);
    assert_int_equal(open_sealed(fresh_env, &ev, &e, NULL), ES_ERR_SHREDDED);
    assert_int_equal(es_keyring_shred(fresh, f->entity), ES_OK);
    assert_int_equal(history_len(f, f->entity), 1);
    char zoe[96];
    snprintf(zoe, sizeof zoe, "$ES.%s.account.zoe", f->store);
    assert_int_equal(es_keyring_shred(fresh, zoe), ES_OK);
    assert_int_equal(history_len(f, zoe), 1);

    es_envelope_destroy(fresh_env);
    es_keyring_destroy(fresh);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
}

/* Writers of several processes (own connections, own keyrings, the bucket
 * not made yet) race to create one entity's key: exactly one key is
 * created and every writer uses it. */
typedef struct racer {
    const fixture *f;
    pthread_barrier_t *go;
    const uint8_t *master; /* NULL: master1 */
    es_status st;
    uint64_t created;
    sealed e;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    natsConnection *nc = NULL;
    es_keyring *kr = NULL;
    es_envelope *env = NULL;
    esi_kv_place at = r->f->at;
    esi_js *js = NULL;
    /* No cmocka asserts off the main thread: keep the status. */
    r->st =
        natsConnection_ConnectTo(&nc, getenv("NATS_URL")) == NATS_OK ? ES_OK : ES_ERR_CONNECTION;
    if (r->st == ES_OK)
        r->st = esi_store_js(nc, NULL, &js);
    at.js = js;
    pthread_barrier_wait(r->go);
    es_keyring_options ko = {.master_key = r->master ? r->master : master1};
    if (r->st == ES_OK)
        r->st = esi_keyring_open_kv(&at, &ko, &kr);
    es_envelope_options o = {.encrypt = true, .keyring = kr};
    if (r->st == ES_OK)
        r->st = es_envelope_create(&o, &env);
    es_envelope_event ev = alice_event(r->f);
    if (r->st == ES_OK)
        r->st = seal(env, &ev, "raced", &r->e);
    es_keyring_stats st;
    es_keyring_stats_get(kr, &st);
    r->created = st.keys_created;
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
    esi_js_destroy(js);
    if (nc != NULL)
        natsConnection_Destroy(nc);
    return NULL;
}

static void kv_key_creation_race(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    enum { N = 4 };
    racer r[N];
    pthread_t t[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        r[i] = (racer){.f = f, .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);

    es_keyring *kr = kv_keyring(f, master1);
    es_envelope *env = encrypting(kr);
    es_envelope_event ev = alice_event(f);
    uint64_t created = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].st, ES_OK);
        assert_string_equal(r[i].e.kid, r[0].e.kid); /* one key won */
        assert_int_equal(open_sealed(env, &ev, &r[i].e, "raced"), ES_OK);
        created += r[i].created;
    }
    assert_int_equal(created, 1);
    assert_int_equal(history_len(f, f->entity), 1);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

/* Writers opening a new bucket at once, each with another master key: the
 * first key check written wins, every other key is refused before it wraps
 * anything (the check is a KV create, which refuses an existing record). */
static void kv_master_check_race(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    enum { N = 4 };
    uint8_t masters[N][ES_MASTER_KEY_BYTES] = {{0}};
    racer r[N];
    pthread_t t[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        masters[i][0] = (uint8_t)(0x10 + i);
        r[i] = (racer){.f = f, .go = &go, .master = masters[i]};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int won = -1;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (r[i].st == ES_OK) {
            assert_int_equal(won, -1); /* one winner only */
            won = i;
        } else {
            assert_int_equal(r[i].st, ES_ERR_CRYPTO);
            assert_int_equal(r[i].created, 0);
        }
    }
    pthread_barrier_destroy(&go);
    assert_true(won >= 0);
    assert_int_equal(record_history_len(f, ES_KEYRING_CHECK_NAME), 1);
    assert_int_equal(history_len(f, f->entity), 1); /* the winner's data key only */
    es_keyring_options ko = {.master_key = masters[won]};
    es_keyring *kr = NULL;
    assert_int_equal(esi_keyring_open_kv(&f->at, &ko, &kr), ES_OK);
    es_envelope *env = encrypting(kr);
    es_envelope_event ev = alice_event(f);
    assert_int_equal(open_sealed(env, &ev, &r[won].e, "raced"), ES_OK);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

/* ---- dictionaries -------------------------------------------------------- */

static void train(es_buf *dict, uint32_t *id)
{
    enum { N = 1000 };
    es_buf samples = ES_BUF_INIT;
    size_t sizes[N];
    for (int i = 0; i < N; i++) {
        char ev[160];
        int k = snprintf(ev, sizeof ev,
                         "{\"type\":\"order-created\",\"customer\":\"cust-%05d\",\"lines\":"
                         "[{\"sku\":\"SKU-%04d\",\"qty\":%d}],\"channel\":\"web\"}",
                         i * 7919 % 100000, i % 1000, i % 9 + 1);
        sizes[i] = (size_t)k;
        assert_int_equal(es_buf_append(&samples, ev, (size_t)k), ES_OK);
    }
    assert_int_equal(es_dict_train(samples.data, sizes, N, 8 << 10, dict, id), ES_OK);
    es_buf_free(&samples);
}

static void kv_dict_put(void **state)
{
    fixture *f = *state;
    es_buf dict = ES_BUF_INIT;
    uint32_t id = 0, stored = 0;
    train(&dict, &id);
    assert_int_equal(es_dict_put(NULL, f->store, dict.data, dict.len, NULL), ES_ERR_INVALID);
    REQUIRE_NATS(f->nc);
    assert_int_equal(es_dict_put(f->nc, f->store, dict.data, dict.len, &stored), ES_OK);
    assert_int_equal(stored, id);
    /* Idempotent. */
    stored = 0;
    assert_int_equal(es_dict_put(f->nc, f->store, dict.data, dict.len, &stored), ES_OK);
    assert_int_equal(stored, id);
    assert_int_equal(es_dict_put(f->nc, f->store, dict.data, dict.len, NULL), ES_OK);
    /* Another dictionary under a used id (same header, other content). */
    es_buf other = ES_BUF_INIT;
    assert_int_equal(es_buf_append(&other, dict.data, dict.len), ES_OK);
    other.data[other.len - 1] ^= 0x55;
    uint32_t other_id = 0;
    assert_int_equal(es_dict_id(other.data, other.len, &other_id), ES_OK);
    assert_int_equal(other_id, id);
    assert_int_equal(es_dict_put(f->nc, f->store, other.data, other.len, NULL), ES_ERR_EXISTS);
    /* Not dictionaries; not a store. */
    assert_int_equal(es_dict_put(f->nc, f->store, (const uint8_t *)"not a dictionary", 16, NULL),
                     ES_ERR_INVALID);
    assert_int_equal(es_dict_put(f->nc, f->store, NULL, 0, NULL), ES_ERR_INVALID);
    assert_int_equal(es_dict_put(f->nc, "no.dots", dict.data, dict.len, NULL), ES_ERR_INVALID);

    /* What the bucket holds: the first dictionary, under its id. */
    bucket b;
    assert_int_equal(bucket_bind(f, ES_BUCKET_DICTS, &b), NATS_OK);
    char key[16];
    snprintf(key, sizeof key, "%u", (unsigned)id);
    kvEntry *e = NULL;
    assert_int_equal(kvStore_Get(&e, b.kv, key), NATS_OK);
    assert_int_equal(kvEntry_ValueLen(e), dict.len);
    assert_memory_equal(kvEntry_Value(e), dict.data, dict.len);
    kvEntry_Destroy(e);
    bucket_close(&b);
    es_buf_free(&other);
    es_buf_free(&dict);
}

static void kv_dict_source(void **state)
{
    fixture *f = *state;
    es_dict_source src;
    esi_kv_place bad = f->at;
    bad.store = "no.dots";
    assert_int_equal(esi_dict_source_kv_create(&bad, &src), ES_ERR_INVALID);
    assert_null(src.ctx);
    esi_dict_source_kv_destroy(NULL);
    REQUIRE_NATS(f->nc);
    es_buf dict = ES_BUF_INIT;
    uint32_t id = 0;
    train(&dict, &id);

    /* A reader made before the store had dictionaries: "not found" now,
     * readable once one is stored (the bucket is bound on first use, and a
     * failed bind is tried again). */
    es_dict_source rsrc;
    assert_int_equal(esi_dict_source_kv_create(&f->at, &rsrc), ES_OK);
    es_envelope_options ro = {.dicts = &rsrc};
    es_envelope *reader = NULL;
    assert_int_equal(es_envelope_create(&ro, &reader), ES_OK);
    es_envelope_options early = {.compress = true, .compress_dict = id, .dicts = &rsrc};
    es_envelope *none = NULL;
    assert_int_equal(es_envelope_create(&early, &none), ES_ERR_NOT_FOUND);
    assert_null(none);

    assert_int_equal(es_dict_put(f->nc, f->store, dict.data, dict.len, NULL), ES_OK);
    es_dict_source wsrc;
    assert_int_equal(esi_dict_source_kv_create(&f->at, &wsrc), ES_OK);
    es_envelope_options wo = {
        .compress = true, .compress_min = 32, .compress_dict = id, .dicts = &wsrc};
    es_envelope *writer = NULL;
    assert_int_equal(es_envelope_create(&wo, &writer), ES_OK);
    const char *text = "{\"type\":\"order-created\",\"customer\":\"cust-00042\",\"lines\":"
                       "[{\"sku\":\"SKU-0042\",\"qty\":3}],\"channel\":\"web\"}";
    es_envelope_event ev = alice_event(f);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(
        es_envelope_seal(writer, &ev, "id-1", 0, (const uint8_t *)text, strlen(text), &s), ES_OK);
    assert_int_equal(s.n_headers, 2); /* compression, dictionary */
    assert_true(s.len < strlen(text) / 2);
    es_opened o = ES_OPENED_INIT;
    assert_int_equal(
        es_envelope_open(reader, &ev, "id-1", s.headers, s.n_headers, s.data, s.len, &o), ES_OK);
    assert_int_equal(o.len, strlen(text));
    assert_memory_equal(o.data, text, o.len);
    /* An id the bucket does not hold. */
    es_header unknown[] = {{ES_HDR_COMPRESSION, "zstd"}, {ES_HDR_DICT, "4242"}};
    assert_int_equal(es_envelope_open(reader, &ev, "id-1", unknown, 2, s.data, s.len, &o),
                     ES_ERR_NOT_FOUND);

    es_sealed_free(&s);
    es_opened_free(&o);
    es_envelope_destroy(writer);
    es_envelope_destroy(reader);
    esi_dict_source_kv_destroy(&wsrc);
    esi_dict_source_kv_destroy(&rsrc);
    assert_null(rsrc.ctx);
    es_buf_free(&dict);
}

/* ---- deleting the buckets ------------------------------------------------ */

/* What es_store_delete does after the stream: every bucket kind of the
 * store goes, other buckets stay. */
static void kv_delete(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    assert_int_equal(esi_store_delete_buckets(f->js, "no.dots"), ES_ERR_INVALID);
    /* Nothing to delete yet: fine. */
    assert_int_equal(esi_store_delete_buckets(f->js, f->store), ES_OK);

    es_keyring *kr = kv_keyring(f, master1);
    es_keyring_destroy(kr);
    es_buf dict = ES_BUF_INIT;
    uint32_t id = 0;
    train(&dict, &id);
    assert_int_equal(es_dict_put(f->nc, f->store, dict.data, dict.len, NULL), ES_OK);
    es_buf_free(&dict);
    /* A bucket that only looks like the store's. */
    char name[ESI_KV_BUCKET_MAX];
    snprintf(name, sizeof name, "ES_%s_other", f->store);
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    assert_int_equal(natsConnection_JetStream(&js, f->nc, NULL), NATS_OK);
    kvConfig c;
    kvConfig_Init(&c);
    c.Bucket = name;
    assert_int_equal(js_CreateKeyValue(&kv, js, &c), NATS_OK);
    kvStore_Destroy(kv);

    bucket b;
    assert_int_equal(bucket_bind(f, ES_BUCKET_KEYS, &b), NATS_OK);
    bucket_close(&b);
    assert_int_equal(bucket_bind(f, ES_BUCKET_DICTS, &b), NATS_OK);
    bucket_close(&b);
    assert_int_equal(esi_store_delete_buckets(f->js, f->store), ES_OK);
    assert_int_equal(bucket_bind(f, ES_BUCKET_KEYS, &b), NATS_NOT_FOUND);
    assert_int_equal(bucket_bind(f, ES_BUCKET_DICTS, &b), NATS_NOT_FOUND);
    assert_int_equal(js_KeyValue(&kv, js, name), NATS_OK);
    kvStore_Destroy(kv);
    /* Deleting buckets that are gone is fine. */
    assert_int_equal(esi_store_delete_buckets(f->js, f->store), ES_OK);
    assert_int_equal(js_DeleteKeyValue(js, name), NATS_OK);
    jsCtx_Destroy(js);
}

#define WITH_FIXTURE(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        WITH_FIXTURE(kv_keyring_round_trip),
        WITH_FIXTURE(kv_keyring_arguments),
        WITH_FIXTURE(kv_shred_leaves_no_earlier_revision),
        WITH_FIXTURE(kv_key_creation_race),
        WITH_FIXTURE(kv_master_check_race),
        WITH_FIXTURE(kv_dict_put),
        WITH_FIXTURE(kv_dict_source),
        WITH_FIXTURE(kv_delete),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return failed;
}
