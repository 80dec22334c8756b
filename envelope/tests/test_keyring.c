/* Encryption with per-entity keys and crypto-shredding: master key sources,
 * round trips, tampering, replay elsewhere, wrong master key, shredding, the
 * key cache. Everything but master key parsing needs a live server. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>

#include <es/envelope.h>
#include <es/keyring.h>

#include "envelope_internal.h"
#include "nats_fixture.h"

#define ENTITY_A "$ES.bank.account.alice"
#define ENTITY_B "$ES.bank.account.bob"
#define SUBJ_A   ENTITY_A ".deposited"
#define SUBJ_B   ENTITY_B ".deposited"

static const uint8_t master1[ES_MASTER_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const uint8_t master2[ES_MASTER_KEY_BYTES] = {42};

typedef struct fixture {
    natsConnection *nc;
    char store[33];
    es_keyring *kr;
    es_envelope *env;
} fixture;

static es_keyring *keyring_with(fixture *f, const uint8_t *master, size_t cache, int64_t ttl)
{
    es_keyring_options ko = {.master_key = master, .cache_size = cache, .cache_ttl_ms = ttl};
    es_keyring *kr = NULL;
    es_status s = es_keyring_create(f->nc, f->store, &ko, &kr);
    if (s != ES_OK)
        fail_msg("es_keyring_create: %s", es_last_error());
    return kr;
}

static es_envelope *envelope_with(fixture *f, es_keyring *kr)
{
    es_envelope_options o = {.encrypt = true, .keyring = kr};
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(f->nc, f->store, &o, &env), ES_OK);
    return env;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->nc = fixture_connect();
    if (f->nc != NULL) {
        fixture_store_name(f->store);
        f->kr = keyring_with(f, master1, 0, 0);
        f->env = envelope_with(f, f->kr);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    es_envelope_destroy(f->env);
    es_keyring_destroy(f->kr);
    fixture_drop_store(f->nc, f->store);
    fixture_disconnect(f->nc);
    free(f);
    return 0;
}

/* A sealed event copied out of es_sealed, so that tests can alter it. */
typedef struct event {
    char subject[128], id[64];
    es_header h[ES_ENVELOPE_HEADER_COUNT];
    char values[ES_ENVELOPE_HEADER_COUNT][48];
    size_t nh;
    uint8_t payload[512];
    size_t len;
} event;

static void seal_event(es_envelope *env, const char *subject, const char *id, uint32_t schema,
                       const char *text, event *e)
{
    es_sealed s = ES_SEALED_INIT;
    es_status st =
        es_envelope_seal(env, subject, id, schema, (const uint8_t *)text, strlen(text), &s);
    if (st != ES_OK)
        fail_msg("seal: %s: %s", es_status_text(st), es_last_error());
    snprintf(e->subject, sizeof e->subject, "%s", subject);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->nh = s.n_headers;
    for (size_t i = 0; i < s.n_headers; i++) {
        snprintf(e->values[i], sizeof e->values[i], "%s", s.headers[i].value);
        e->h[i] = (es_header){s.headers[i].name, e->values[i]};
    }
    assert_true(s.len <= sizeof e->payload);
    memcpy(e->payload, s.data, s.len);
    e->len = s.len;
    es_sealed_free(&s);
}

/* A copy whose header values point into the copy. */
static void copy_event(event *dst, const event *src)
{
    *dst = *src;
    for (size_t i = 0; i < dst->nh; i++)
        if (dst->h[i].value == src->values[i])
            dst->h[i].value = dst->values[i];
}

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

/* Opens e (as read from e->subject) and compares with `text` when ES_OK. */
static es_status open_event(es_envelope *env, const event *e, const char *text)
{
    es_opened o = ES_OPENED_INIT;
    es_status st = es_envelope_open(env, e->subject, e->id, e->h, e->nh, e->payload, e->len, &o);
    if (st == ES_OK && text != NULL) {
        assert_int_equal(o.len, strlen(text));
        assert_memory_equal(o.data, text, o.len);
    }
    if (st != ES_OK)
        assert_null(o.data);
    es_opened_free(&o);
    return st;
}

/* ---- master keys (no server needed for the failures) -------------------- */

static es_status create_with(const es_keyring_options *ko)
{
    es_keyring *kr = NULL;
    es_status s = es_keyring_create(NULL, "bank", ko, &kr);
    assert_null(kr);
    return s;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static void master_key_sources(void **state)
{
    (void)state;
    es_keyring_options none = {0};
    assert_int_equal(create_with(&none), ES_ERR_NO_KEY);

    es_keyring_options two = {.master_key = master1, .master_key_env = "X"};
    assert_int_equal(create_with(&two), ES_ERR_INVALID);

    unsetenv("ES_TEST_MASTER");
    es_keyring_options env = {.master_key_env = "ES_TEST_MASTER"};
    assert_int_equal(create_with(&env), ES_ERR_NO_KEY);
    const char *secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeZZ";
    setenv("ES_TEST_MASTER", secret, 1);
    assert_int_equal(create_with(&env), ES_ERR_INVALID);
    assert_null(strstr(es_last_error(), "00112233")); /* never echoed */
    setenv("ES_TEST_MASTER", "0011", 1);
    assert_int_equal(create_with(&env), ES_ERR_INVALID);
    /* A good key gets past parsing: the failure is then the missing connection. */
    setenv("ES_TEST_MASTER", "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n",
           1);
    assert_int_equal(create_with(&env), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "connection"));

    char path[64];
    snprintf(path, sizeof path, "/tmp/es-test-master-%ld", (long)getpid());
    es_keyring_options file = {.master_key_file = path};
    unlink(path);
    assert_int_equal(create_with(&file), ES_ERR_IO);
    write_file(path, master1, 32); /* raw */
    assert_int_equal(create_with(&file), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "connection"));
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\r\n", 66);
    assert_int_equal(create_with(&file), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "connection"));
    static const uint8_t raw33[33] = {1, 2, 3};
    write_file(path, raw33, sizeof raw33); /* neither raw nor hex */
    assert_int_equal(create_with(&file), ES_ERR_INVALID);
    assert_null(strstr(es_last_error(), "connection"));
    write_file(path, "", 0);
    assert_int_equal(create_with(&file), ES_ERR_INVALID);
    static char big[4096];
    memset(big, 'a', sizeof big);
    write_file(path, big, sizeof big);
    assert_int_equal(create_with(&file), ES_ERR_INVALID);
    unlink(path);

    es_keyring_options bad_store = {.master_key = master1};
    es_keyring *kr = NULL;
    assert_int_equal(es_keyring_create(NULL, "no.dots", &bad_store, &kr), ES_ERR_INVALID);
    es_keyring_destroy(NULL);
}

/* The same master key from a file and from the environment opens the same
 * data (live server). */
static void master_key_file_and_env_agree(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    event e;
    seal_event(f->env, SUBJ_A, "id-1", 0, "hello", &e);

    char hex[2 * ES_MASTER_KEY_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, master1, sizeof master1);
    setenv("ES_TEST_MASTER", hex, 1);
    es_keyring_options ko = {.master_key_env = "ES_TEST_MASTER"};
    es_keyring *kr = NULL;
    assert_int_equal(es_keyring_create(f->nc, f->store, &ko, &kr), ES_OK);
    es_envelope *env = envelope_with(f, kr);
    assert_int_equal(open_event(env, &e, "hello"), ES_OK);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);

    char path[64];
    snprintf(path, sizeof path, "/tmp/es-test-master-%ld", (long)getpid());
    write_file(path, master1, sizeof master1);
    es_keyring_options kf = {.master_key_file = path};
    assert_int_equal(es_keyring_create(f->nc, f->store, &kf, &kr), ES_OK);
    unlink(path);
    env = envelope_with(f, kr);
    assert_int_equal(open_event(env, &e, "hello"), ES_OK);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

/* ---- encryption ---------------------------------------------------------- */

static void round_trip(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    const char *text = "{\"amount\":100,\"currency\":\"EUR\"}";
    event e;
    seal_event(f->env, SUBJ_A, "id-1", 0, text, &e);
    assert_int_equal(e.nh, 1);
    assert_string_equal(e.h[0].name, ES_HDR_KEY);
    assert_int_equal(strlen(e.h[0].value), ES_KID_HEX);
    assert_int_equal(e.len, strlen(text) + ES_AEAD_OVERHEAD);
    assert_false(contains(e.payload, e.len, "amount"));
    assert_int_equal(open_event(f->env, &e, text), ES_OK);

    /* Same entity, same key id; another entity, another key. */
    event e2, e3;
    seal_event(f->env, SUBJ_A, "id-2", 0, text, &e2);
    seal_event(f->env, SUBJ_B, "id-3", 0, text, &e3);
    assert_string_equal(e.h[0].value, e2.h[0].value);
    assert_string_not_equal(e.h[0].value, e3.h[0].value);
    /* Fresh nonces: equal plaintexts never give equal payloads. */
    assert_memory_not_equal(e.payload, e2.payload, e.len);

    /* Another keyring (another process) with the same master key. */
    es_keyring *kr = keyring_with(f, master1, 0, 0);
    es_envelope *env = envelope_with(f, kr);
    assert_int_equal(open_event(env, &e, text), ES_OK);
    assert_int_equal(open_event(env, &e3, text), ES_OK);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);

    /* Empty payloads and compression + encryption. */
    event empty;
    seal_event(f->env, SUBJ_A, "id-4", 0, "", &empty);
    assert_int_equal(empty.len, ES_AEAD_OVERHEAD);
    assert_int_equal(open_event(f->env, &empty, ""), ES_OK);
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    es_envelope_options o = {
        .encrypt = true, .keyring = f->kr, .compress = true, .compress_min = 64};
    assert_int_equal(es_envelope_create(f->nc, f->store, &o, &env), ES_OK);
    event both;
    seal_event(env, SUBJ_A, "id-5", 7, big, &both);
    assert_int_equal(both.nh, 3); /* compression, key, schema */
    assert_true(both.len < 100);  /* compressed before encryption */
    assert_int_equal(open_event(env, &both, big), ES_OK);
    es_envelope_destroy(env);
}

static void flip(event *e, size_t byte)
{
    e->payload[byte] ^= 0x04;
}

static void tampering_fails(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    const char *text = "transfer 100 to carol";
    event e, t;
    seal_event(f->env, SUBJ_A, "id-1", 3, text, &e);
    assert_int_equal(open_event(f->env, &e, text), ES_OK);

    /* Any bit of nonce, ciphertext or tag. */
    for (size_t i = 0; i < e.len; i++) {
        copy_event(&t, &e);
        flip(&t, i);
        assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    }
    /* Truncated or extended payloads. */
    for (size_t n = 0; n < e.len; n++) {
        copy_event(&t, &e);
        t.len = n;
        assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    }
    copy_event(&t, &e);
    t.payload[t.len++] = 0;
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);

    /* Headers: key id, schema changed, schema removed, compression added. */
    copy_event(&t, &e);
    t.values[0][0] = t.values[0][0] == 'a' ? 'b' : 'a';
    assert_string_equal(t.h[0].name, ES_HDR_KEY);
    t.h[0].value = t.values[0];
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &e);
    t.h[1].value = "4";
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &e);
    t.nh = 1; /* drop Es-Schema */
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &e);
    t.h[t.nh++] = (es_header){ES_HDR_COMPRESSION, "zstd"};
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &e);
    t.h[0].value = "not-hex";
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    /* Dropping the key header: the store requires encryption. */
    copy_event(&t, &e);
    t.h[0] = t.h[1];
    t.nh = 1;
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    /* ... unless told to accept plaintext (then the bytes are what they are). */
    es_envelope_options o = {.encrypt = true, .keyring = f->kr, .accept_plaintext = true};
    es_envelope *lax = NULL;
    assert_int_equal(es_envelope_create(f->nc, f->store, &o, &lax), ES_OK);
    event plain;
    es_envelope_options po = {0};
    es_envelope *clear = NULL;
    assert_int_equal(es_envelope_create(f->nc, f->store, &po, &clear), ES_OK);
    seal_event(clear, SUBJ_A, "id-9", 0, "old plaintext", &plain);
    assert_int_equal(plain.nh, 0);
    assert_int_equal(open_event(lax, &plain, "old plaintext"), ES_OK);
    assert_int_equal(open_event(f->env, &plain, NULL), ES_ERR_CRYPTO);
    es_envelope_destroy(clear);
    es_envelope_destroy(lax);
}

static void replay_elsewhere_fails(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    event a, b, t;
    seal_event(f->env, SUBJ_A, "id-1", 0, "alice's data", &a);
    seal_event(f->env, SUBJ_B, "id-2", 0, "bob's data", &b); /* bob has a key too */

    copy_event(&t, &a); /* another event id */
    snprintf(t.id, sizeof t.id, "id-1x");
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &a); /* same entity, another event type */
    snprintf(t.subject, sizeof t.subject, "%s", ENTITY_A ".withdrawn");
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &a); /* another entity that has a key */
    snprintf(t.subject, sizeof t.subject, "%s", SUBJ_B);
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &a); /* another entity without a key */
    snprintf(t.subject, sizeof t.subject, "%s", "$ES.bank.account.mallory.deposited");
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &a); /* another store name in the subject */
    snprintf(t.subject, sizeof t.subject, "%s", "$ES.bank2.account.alice.deposited");
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, &b); /* bob's ciphertext under alice's key id */
    snprintf(t.values[0], sizeof t.values[0], "%s", a.values[0]);
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    /* The originals still open. */
    assert_int_equal(open_event(f->env, &a, "alice's data"), ES_OK);
    assert_int_equal(open_event(f->env, &b, "bob's data"), ES_OK);
}

static void wrong_master_key_fails(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    event e;
    seal_event(f->env, SUBJ_A, "id-1", 0, "secret", &e);
    es_keyring *kr = keyring_with(f, master2, 0, 0);
    es_envelope *env = envelope_with(f, kr);
    assert_int_equal(open_event(env, &e, NULL), ES_ERR_CRYPTO);
    assert_non_null(strstr(es_last_error(), "master key"));
    /* Nor can it write for an entity keyed under the other master key. */
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(env, SUBJ_A, "id-2", 0, (const uint8_t *)"x", 1, &s),
                     ES_ERR_CRYPTO);
    es_sealed_free(&s);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

static void no_master_key(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    event e;
    seal_event(f->env, SUBJ_A, "id-1", 0, "secret", &e);
    es_envelope_options o = {.encrypt = true}; /* no keyring */
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(f->nc, f->store, &o, &env), ES_OK);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(env, SUBJ_A, "id-2", 0, (const uint8_t *)"x", 1, &s),
                     ES_ERR_NO_KEY);
    assert_int_equal(s.n_headers, 0);
    assert_null(s.data);
    assert_int_equal(open_event(env, &e, NULL), ES_ERR_NO_KEY);
    es_envelope_destroy(env);
    /* A store that does not encrypt, reading an encrypted event: the same. */
    es_envelope_options plain = {0};
    assert_int_equal(es_envelope_create(f->nc, f->store, &plain, &env), ES_OK);
    assert_int_equal(open_event(env, &e, NULL), ES_ERR_NO_KEY);
    es_envelope_destroy(env);
}

/* ---- shredding ----------------------------------------------------------- */

static size_t history_len(fixture *f, const char *entity)
{
    char bucket[ES_BUCKET_NAME_MAX], key[ES_KEYRING_KV_KEY_MAX];
    assert_int_equal(esi_bucket_name(f->store, "keys", bucket), ES_OK);
    es_keyring_kv_key(entity, strlen(entity), key);
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    assert_int_equal(natsConnection_JetStream(&js, f->nc, NULL), NATS_OK);
    assert_int_equal(js_KeyValue(&kv, js, bucket), NATS_OK);
    kvEntryList list = {0};
    natsStatus ns = kvStore_History(&list, kv, key, NULL);
    size_t n = ns == NATS_OK ? (size_t)list.Count : 0;
    kvEntryList_Destroy(&list);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    return n;
}

static void shredding(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    event a[3], b;
    seal_event(f->env, SUBJ_A, "id-a1", 0, "alice 1", &a[0]);
    seal_event(f->env, ENTITY_A ".withdrawn", "id-a2", 0, "alice 2", &a[1]);
    seal_event(f->env, SUBJ_A, "id-a3", 2, "alice 3", &a[2]);
    seal_event(f->env, SUBJ_B, "id-b1", 0, "bob 1", &b);
    assert_int_equal(history_len(f, ENTITY_A), 1);

    /* A second process that has alice's key cached before the shred. */
    es_keyring *other = keyring_with(f, master1, 0, 1);
    es_envelope *other_env = envelope_with(f, other);
    assert_int_equal(open_event(other_env, &a[0], "alice 1"), ES_OK);

    assert_int_equal(es_keyring_shred(f->kr, ENTITY_A), ES_OK);
    /* The wrapped key is gone from the bucket's history: only the mark. */
    assert_int_equal(history_len(f, ENTITY_A), 1);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(open_event(f->env, &a[i], NULL), ES_ERR_SHREDDED);
        assert_null(strstr(es_last_error(), "alice")); /* never names the entity */
    }
    assert_int_equal(open_event(f->env, &b, "bob 1"), ES_OK);
    /* Later events of a shredded entity are refused: it stays shredded. */
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(f->env, SUBJ_A, "id-a4", 0, (const uint8_t *)"x", 1, &s),
                     ES_ERR_SHREDDED);
    assert_int_equal(s.n_headers, 0);

    /* Once its cache entry expires (ttl 1 ms), the other process sees it. */
    struct timespec ms5 = {0, 5 * 1000 * 1000};
    nanosleep(&ms5, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(open_event(other_env, &a[i], NULL), ES_ERR_SHREDDED);
    assert_int_equal(es_envelope_seal(other_env, SUBJ_A, "id-a5", 0, (const uint8_t *)"x", 1, &s),
                     ES_ERR_SHREDDED);
    es_keyring_stats st;
    es_keyring_stats_get(other, &st);
    assert_true(st.cache_expired >= 1);
    es_envelope_destroy(other_env);
    es_keyring_destroy(other);

    /* A brand-new process reads the mark from the bucket. */
    es_keyring *fresh = keyring_with(f, master1, 0, 0);
    es_envelope *fresh_env = envelope_with(f, fresh);
    assert_int_equal(open_event(fresh_env, &a[1], NULL), ES_ERR_SHREDDED);
    assert_int_equal(open_event(fresh_env, &b, "bob 1"), ES_OK);

    /* Idempotent; an entity without a key can be shredded up front. */
    assert_int_equal(es_keyring_shred(f->kr, ENTITY_A), ES_OK);
    assert_int_equal(history_len(f, ENTITY_A), 1);
    assert_int_equal(es_keyring_shred(fresh, "$ES.bank.account.zoe"), ES_OK);
    assert_int_equal(es_envelope_seal(f->env, "$ES.bank.account.zoe.opened", "id-z1", 0,
                                      (const uint8_t *)"x", 1, &s),
                     ES_ERR_SHREDDED);
    assert_int_equal(es_keyring_shred(f->kr, ""), ES_ERR_INVALID);
    assert_int_equal(es_keyring_shred(NULL, ENTITY_A), ES_ERR_INVALID);
    es_sealed_free(&s);
    es_envelope_destroy(fresh_env);
    es_keyring_destroy(fresh);
}

/* ---- key cache ----------------------------------------------------------- */

static void cache_eviction(void **state)
{
    fixture *f = *state;
    REQUIRE_NATS(f->nc);
    es_keyring *kr = keyring_with(f, master1, 2, -1); /* two keys, no expiry */
    es_envelope *env = envelope_with(f, kr);
    event e[3];
    const char *subj[3] = {"$ES.bank.account.c1.x", "$ES.bank.account.c2.x",
                           "$ES.bank.account.c3.x"};
    for (int i = 0; i < 3; i++)
        seal_event(env, subj[i], "id", 0, subj[i], &e[i]);
    es_keyring_stats st;
    es_keyring_stats_get(kr, &st);
    assert_int_equal(st.keys_created, 3);
    assert_int_equal(st.capacity, 2);
    assert_int_equal(st.cached, 2);
    assert_int_equal(st.cache_evictions, 1);

    /* c3 and c2 are cached: no bucket read. */
    uint64_t gets = st.kv_gets;
    assert_int_equal(open_event(env, &e[2], subj[2]), ES_OK);
    assert_int_equal(open_event(env, &e[1], subj[1]), ES_OK);
    es_keyring_stats_get(kr, &st);
    assert_int_equal(st.kv_gets, gets);
    /* c1 was evicted: read again (evicting c3, the least recently used). */
    assert_int_equal(open_event(env, &e[0], subj[0]), ES_OK);
    es_keyring_stats_get(kr, &st);
    assert_int_equal(st.kv_gets, gets + 1);
    assert_int_equal(st.cache_evictions, 2);
    assert_int_equal(open_event(env, &e[1], subj[1]), ES_OK);
    es_keyring_stats_get(kr, &st);
    assert_int_equal(st.kv_gets, gets + 1);
    assert_int_equal(open_event(env, &e[2], subj[2]), ES_OK);
    es_keyring_stats_get(kr, &st);
    assert_int_equal(st.kv_gets, gets + 2);
    assert_int_equal(st.cached, 2);
    /* Many entities through a tiny cache: always correct. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 3; i++)
            assert_int_equal(open_event(env, &e[i], subj[i]), ES_OK);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

/* Writers of several processes race to create one entity's key: one wins,
 * every event opens. */
typedef struct racer {
    fixture *f;
    event e;
    es_status st;
    pthread_barrier_t *go;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    es_keyring_options ko = {.master_key = master1};
    es_keyring *kr = NULL;
    es_envelope *env = NULL;
    r->st = es_keyring_create(r->f->nc, r->f->store, &ko, &kr);
    es_envelope_options o = {.encrypt = true, .keyring = kr};
    if (r->st == ES_OK)
        r->st = es_envelope_create(r->f->nc, r->f->store, &o, &env);
    pthread_barrier_wait(r->go);
    if (r->st == ES_OK) {
        es_sealed s = ES_SEALED_INIT;
        r->st = es_envelope_seal(env, "$ES.bank.account.race.opened", "id", 0,
                                 (const uint8_t *)"raced", 5, &s);
        if (r->st == ES_OK) {
            memcpy(r->e.payload, s.data, s.len);
            r->e.len = s.len;
            snprintf(r->e.values[0], sizeof r->e.values[0], "%s", s.headers[0].value);
            r->e.h[0] = (es_header){ES_HDR_KEY, r->e.values[0]};
            r->e.nh = 1;
            snprintf(r->e.subject, sizeof r->e.subject, "$ES.bank.account.race.opened");
            snprintf(r->e.id, sizeof r->e.id, "id");
        }
        es_sealed_free(&s);
    }
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
    return NULL;
}

static void key_creation_race(void **state)
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
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].st, ES_OK);
        r[i].e.h[0].value = r[i].e.values[0];
        assert_string_equal(r[i].e.values[0], r[0].e.values[0]); /* one key won */
        assert_int_equal(open_event(f->env, &r[i].e, "raced"), ES_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(master_key_sources),
        cmocka_unit_test_setup_teardown(master_key_file_and_env_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(tampering_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_elsewhere_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_master_key_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(no_master_key, setup, teardown),
        cmocka_unit_test_setup_teardown(shredding, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(key_creation_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
