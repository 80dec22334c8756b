/* Encryption with per-entity keys and crypto-shredding: master key sources,
 * the backend contract, round trips, tampering, replay elsewhere, wrong
 * master key, records altered outside es, backend failures, shredding, the
 * key cache, racing writers. Keys live in an in-memory backend (memstore.h);
 * the KV-backed keyring is tested by the engine (test_envelope_kv). */
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
#include "memstore.h"

#define ENTITY_A "$ES.bank.account.alice"
#define ENTITY_B "$ES.bank.account.bob"
#define SUBJ_A   ENTITY_A ".deposited"
#define SUBJ_B   ENTITY_B ".deposited"

/* Record layout (docs/envelope.md): version byte, then the rest. */
#define REC_SHREDDED 0x02
#define REC_MARK_LEN 9

static const uint8_t master1[ES_MASTER_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const uint8_t master2[ES_MASTER_KEY_BYTES] = {42};

typedef struct fixture {
    mem_keys *keys; /* the bucket every keyring of a test shares */
    es_keyring *kr;
    es_envelope *env;
} fixture;

static es_keyring *keyring_on(mem_keys *keys, const uint8_t *master, size_t cache, int64_t ttl)
{
    es_keyring_options ko = {.master_key = master, .cache_size = cache, .cache_ttl_ms = ttl};
    es_keyring_backend b = mem_keys_backend(keys);
    es_keyring *kr = NULL;
    es_status s = es_keyring_create(&b, &ko, &kr);
    if (s != ES_OK)
        fail_msg("es_keyring_create: %s", es_last_error());
    return kr;
}

static es_keyring *keyring_with(fixture *f, const uint8_t *master, size_t cache, int64_t ttl)
{
    return keyring_on(f->keys, master, cache, ttl);
}

static es_envelope *envelope_with(es_keyring *kr)
{
    es_envelope_options o = {.encrypt = true, .keyring = kr};
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    return env;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->keys = mem_keys_create();
    f->kr = keyring_with(f, master1, 0, 0);
    f->env = envelope_with(f->kr);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    es_envelope_destroy(f->env);
    es_keyring_destroy(f->kr);
    /* Every keyring a test made gave its backend back. */
    assert_int_equal(mem_keys_refs(f->keys), 1);
    mem_keys_release(f->keys);
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

/* Copies a sealed result into e (whose subject and id are set). */
static void keep_sealed(const es_sealed *s, event *e)
{
    e->nh = s->n_headers;
    for (size_t i = 0; i < s->n_headers; i++) {
        snprintf(e->values[i], sizeof e->values[i], "%s", s->headers[i].value);
        e->h[i] = (es_header){s->headers[i].name, e->values[i]};
    }
    assert_true(s->len <= sizeof e->payload);
    memcpy(e->payload, s->data, s->len);
    e->len = s->len;
}

static es_status try_seal(es_envelope *env, const char *subject, const char *id, uint32_t schema,
                          const char *text, event *e)
{
    es_envelope_event ev = mem_event(subject);
    es_sealed s = ES_SEALED_INIT;
    es_status st = es_envelope_seal(env, &ev, id, schema, (const uint8_t *)text, strlen(text), &s);
    if (st == ES_OK) {
        snprintf(e->subject, sizeof e->subject, "%s", subject);
        snprintf(e->id, sizeof e->id, "%s", id);
        keep_sealed(&s, e);
    } else {
        assert_int_equal(s.n_headers, 0);
        assert_null(s.data);
    }
    es_sealed_free(&s);
    return st;
}

static void seal_event(es_envelope *env, const char *subject, const char *id, uint32_t schema,
                       const char *text, event *e)
{
    es_status st = try_seal(env, subject, id, schema, text, e);
    if (st != ES_OK)
        fail_msg("seal: %s: %s", es_status_text(st), es_last_error());
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

/* Opens e as the event `ev` and compares with `text` when ES_OK. */
static es_status open_as(es_envelope *env, const es_envelope_event *ev, const event *e,
                         const char *text)
{
    es_opened o = ES_OPENED_INIT;
    es_status st = es_envelope_open(env, ev, e->id, e->h, e->nh, e->payload, e->len, &o);
    if (st == ES_OK && text != NULL) {
        assert_int_equal(o.len, strlen(text));
        assert_memory_equal(o.data, text, o.len);
    }
    if (st != ES_OK)
        assert_null(o.data);
    es_opened_free(&o);
    return st;
}

/* Opens e as read from e->subject. */
static es_status open_event(es_envelope *env, const event *e, const char *text)
{
    es_envelope_event ev = mem_event(e->subject);
    return open_as(env, &ev, e, text);
}

/* ---- master keys and the backend contract -------------------------------- */

/* A keyring from these options over a fresh backend, destroyed again; the
 * backend must come back whatever happened. */
static es_status create_with(const es_keyring_options *ko)
{
    mem_keys *keys = mem_keys_create();
    es_keyring_backend b = mem_keys_backend(keys);
    es_keyring *kr = NULL;
    es_status s = es_keyring_create(&b, ko, &kr);
    if (s != ES_OK)
        assert_null(kr);
    es_keyring_destroy(kr);
    assert_int_equal(mem_keys_refs(keys), 1);
    mem_keys_release(keys);
    return s;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static void master_key_from_env(void)
{
    unsetenv("ES_TEST_MASTER");
    es_keyring_options env = {.master_key_env = "ES_TEST_MASTER"};
    assert_int_equal(create_with(&env), ES_ERR_NO_KEY);
    setenv("ES_TEST_MASTER", "", 1);
    assert_int_equal(create_with(&env), ES_ERR_NO_KEY);
    const char *secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeZZ";
    setenv("ES_TEST_MASTER", secret, 1);
    assert_int_equal(create_with(&env), ES_ERR_INVALID);
    assert_null(strstr(es_last_error(), "00112233")); /* never echoed */
    setenv("ES_TEST_MASTER", "0011", 1);
    assert_int_equal(create_with(&env), ES_ERR_INVALID);
    /* Either case, a trailing newline. */
    setenv("ES_TEST_MASTER", "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n",
           1);
    assert_int_equal(create_with(&env), ES_OK);
}

static void master_key_from_file(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/es-test-master-%ld", (long)getpid());
    es_keyring_options file = {.master_key_file = path};
    unlink(path);
    assert_int_equal(create_with(&file), ES_ERR_IO);
    write_file(path, master1, 32); /* raw */
    assert_int_equal(create_with(&file), ES_OK);
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\r\n", 66);
    assert_int_equal(create_with(&file), ES_OK);
    static const uint8_t raw33[33] = {1, 2, 3};
    write_file(path, raw33, sizeof raw33); /* neither raw nor hex */
    assert_int_equal(create_with(&file), ES_ERR_INVALID);
    write_file(path, "", 0);
    assert_int_equal(create_with(&file), ES_ERR_INVALID);
    static char big[4096];
    memset(big, 'a', sizeof big);
    write_file(path, big, sizeof big);
    assert_int_equal(create_with(&file), ES_ERR_INVALID);
    unlink(path);
}

static void master_key_sources(void **state)
{
    (void)state;
    es_keyring_options none = {0};
    assert_int_equal(create_with(&none), ES_ERR_NO_KEY);
    es_keyring_options two = {.master_key = master1, .master_key_env = "X"};
    assert_int_equal(create_with(&two), ES_ERR_INVALID);
    es_keyring_options bytes = {.master_key = master1};
    assert_int_equal(create_with(&bytes), ES_OK);
    master_key_from_env();
    master_key_from_file();
}

/* es_keyring_create owns the backend from the call on: its destroy hook runs
 * exactly once, also when creation fails. */
static void backend_contract(void **state)
{
    (void)state;
    mem_keys *keys = mem_keys_create();
    es_keyring_options ko = {.master_key = master1};
    es_keyring *kr = NULL;
    assert_int_equal(es_keyring_create(NULL, &ko, &kr), ES_ERR_INVALID);
    for (int missing = 0; missing < 3; missing++) {
        es_keyring_backend b = mem_keys_backend(keys);
        if (missing == 0)
            b.get = NULL;
        else if (missing == 1)
            b.create = NULL;
        else
            b.replace = NULL;
        assert_int_equal(es_keyring_create(&b, &ko, &kr), ES_ERR_INVALID);
        assert_null(kr);
        assert_int_equal(mem_keys_refs(keys), 1);
    }
    es_keyring_backend b = mem_keys_backend(keys);
    assert_int_equal(es_keyring_create(&b, NULL, &kr), ES_ERR_INVALID);
    assert_int_equal(mem_keys_refs(keys), 1);
    b = mem_keys_backend(keys);
    assert_int_equal(es_keyring_create(&b, &ko, NULL), ES_ERR_INVALID);
    assert_int_equal(mem_keys_refs(keys), 1);
    es_keyring_options huge = {.master_key = master1, .cache_size = ((size_t)1 << 20) + 1};
    b = mem_keys_backend(keys);
    assert_int_equal(es_keyring_create(&b, &huge, &kr), ES_ERR_INVALID);
    assert_null(kr);
    assert_int_equal(mem_keys_refs(keys), 1);
    /* Success: the keyring holds it until destroyed. */
    b = mem_keys_backend(keys);
    assert_int_equal(es_keyring_create(&b, &ko, &kr), ES_OK);
    assert_int_equal(mem_keys_refs(keys), 2);
    es_keyring_destroy(kr);
    assert_int_equal(mem_keys_refs(keys), 1);
    es_keyring_destroy(NULL);
    mem_keys_release(keys);
}

static void record_names(void **state)
{
    (void)state;
    char a[ES_KEYRING_KV_KEY_MAX], a2[ES_KEYRING_KV_KEY_MAX], b[ES_KEYRING_KV_KEY_MAX];
    es_keyring_kv_key(ENTITY_A, strlen(ENTITY_A), a);
    assert_int_equal(strlen(a), ES_KEYRING_KV_KEY_MAX - 1);
    assert_memory_equal(a, "e.", 2);
    /* A hash in lower-case hex: the name never shows the entity, which may
     * be personal data. */
    for (size_t i = 2; i < strlen(a); i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    /* Only entity_len bytes count: the entity of a subject is its prefix. */
    es_keyring_kv_key(SUBJ_A, strlen(ENTITY_A), a2);
    assert_string_equal(a, a2);
    es_keyring_kv_key(ENTITY_B, strlen(ENTITY_B), b);
    assert_string_not_equal(a, b);
}

/* The same master key from a file and from the environment opens the same
 * data. */
static void master_key_file_and_env_agree(void **state)
{
    fixture *f = *state;
    event e;
    seal_event(f->env, SUBJ_A, "id-1", 0, "hello", &e);

    char hex[2 * ES_MASTER_KEY_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, master1, sizeof master1);
    setenv("ES_TEST_MASTER", hex, 1);
    es_keyring_options ko = {.master_key_env = "ES_TEST_MASTER"};
    es_keyring_backend b = mem_keys_backend(f->keys);
    es_keyring *kr = NULL;
    assert_int_equal(es_keyring_create(&b, &ko, &kr), ES_OK);
    es_envelope *env = envelope_with(kr);
    assert_int_equal(open_event(env, &e, "hello"), ES_OK);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);

    char path[64];
    snprintf(path, sizeof path, "/tmp/es-test-master-%ld", (long)getpid());
    write_file(path, master1, sizeof master1);
    es_keyring_options kf = {.master_key_file = path};
    b = mem_keys_backend(f->keys);
    assert_int_equal(es_keyring_create(&b, &kf, &kr), ES_OK);
    unlink(path);
    env = envelope_with(kr);
    assert_int_equal(open_event(env, &e, "hello"), ES_OK);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

/* ---- encryption ---------------------------------------------------------- */

static void round_trip(void **state)
{
    fixture *f = *state;
    const char *text = "{\"amount\":100,\"currency\":\"EUR\"}";
    event e;
    seal_event(f->env, SUBJ_A, "id-1", 0, text, &e);
    assert_int_equal(e.nh, 1);
    assert_string_equal(e.h[0].name, ES_HDR_KEY);
    assert_int_equal(strlen(e.h[0].value), ES_KID_HEX);
    assert_int_equal(e.len, strlen(text) + ES_AEAD_OVERHEAD);
    assert_false(contains(e.payload, e.len, "amount"));
    assert_int_equal(open_event(f->env, &e, text), ES_OK);
    assert_int_equal(mem_keys_versions(f->keys, ENTITY_A), 1);

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
    es_envelope *env = envelope_with(kr);
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
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    event both;
    seal_event(env, SUBJ_A, "id-5", 7, big, &both);
    assert_int_equal(both.nh, 3); /* compression, key, schema */
    assert_true(both.len < 100);  /* compressed before encryption */
    assert_int_equal(open_event(env, &both, big), ES_OK);
    es_envelope_destroy(env);
}

/* The data key is the one of the entity the event names, whatever its
 * subject says: the engine decides what the entity is. */
static void entity_picks_the_key(void **state)
{
    fixture *f = *state;
    event a, b, odd;
    seal_event(f->env, SUBJ_A, "id-1", 0, "alice", &a);
    seal_event(f->env, SUBJ_B, "id-2", 0, "bob", &b);
    es_envelope_event ev = mem_event(SUBJ_A);
    ev.entity = ENTITY_B;
    ev.entity_len = strlen(ENTITY_B);
    es_sealed s = ES_SEALED_INIT;
    assert_int_equal(es_envelope_seal(f->env, &ev, "id-3", 0, (const uint8_t *)"odd", 3, &s),
                     ES_OK);
    snprintf(odd.subject, sizeof odd.subject, "%s", SUBJ_A);
    snprintf(odd.id, sizeof odd.id, "id-3");
    keep_sealed(&s, &odd);
    es_sealed_free(&s);
    assert_string_equal(odd.values[0], b.values[0]); /* bob's key */
    assert_int_equal(open_as(f->env, &ev, &odd, "odd"), ES_OK);
    /* Read as alice's, it is not hers. */
    assert_int_equal(open_event(f->env, &odd, NULL), ES_ERR_CRYPTO);
    /* Shredding bob takes it along. */
    assert_int_equal(es_keyring_shred(f->kr, ENTITY_B), ES_OK);
    assert_int_equal(open_as(f->env, &ev, &odd, NULL), ES_ERR_SHREDDED);
    assert_int_equal(open_event(f->env, &a, "alice"), ES_OK);
}

static void flip(event *e, size_t byte)
{
    e->payload[byte] ^= 0x04;
}

static void tampered_headers_fail(fixture *f, const event *e)
{
    event t;
    /* Key id, schema changed, schema removed, compression added. */
    copy_event(&t, e);
    t.values[0][0] = t.values[0][0] == 'a' ? 'b' : 'a';
    assert_string_equal(t.h[0].name, ES_HDR_KEY);
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, e);
    t.h[1].value = "4";
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, e);
    t.nh = 1; /* drop Es-Schema */
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, e);
    t.h[t.nh++] = (es_header){ES_HDR_COMPRESSION, "zstd"};
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    copy_event(&t, e);
    t.h[0].value = "not-hex";
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
    /* Dropping the key header: the store requires encryption. */
    copy_event(&t, e);
    t.h[0] = t.h[1];
    t.nh = 1;
    assert_int_equal(open_event(f->env, &t, NULL), ES_ERR_CRYPTO);
}

static void tampering_fails(void **state)
{
    fixture *f = *state;
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
    tampered_headers_fail(f, &e);

    /* ... unless told to accept plaintext (then the bytes are what they are). */
    es_envelope_options o = {.encrypt = true, .keyring = f->kr, .accept_plaintext = true};
    es_envelope *lax = NULL;
    assert_int_equal(es_envelope_create(&o, &lax), ES_OK);
    event plain;
    es_envelope_options po = {0};
    es_envelope *clear = NULL;
    assert_int_equal(es_envelope_create(&po, &clear), ES_OK);
    seal_event(clear, SUBJ_A, "id-9", 0, "old plaintext", &plain);
    assert_int_equal(plain.nh, 0);
    assert_int_equal(open_event(lax, &plain, "old plaintext"), ES_OK);
    assert_int_equal(open_event(f->env, &plain, NULL), ES_ERR_CRYPTO);
    /* Accepting plaintext does not mean accepting tampered ciphertext. */
    copy_event(&t, &e);
    flip(&t, 0);
    assert_int_equal(open_event(lax, &t, NULL), ES_ERR_CRYPTO);
    es_envelope_destroy(clear);
    es_envelope_destroy(lax);
}

static void replay_elsewhere_fails(void **state)
{
    fixture *f = *state;
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
    /* The same entity and key, but another subject handed to the envelope:
     * the subject is authenticated, not only the entity. */
    es_envelope_event ev = mem_event(SUBJ_A);
    ev.subject = ENTITY_A ".withdrawn";
    assert_int_equal(open_as(f->env, &ev, &a, NULL), ES_ERR_CRYPTO);
    /* The originals still open. */
    assert_int_equal(open_event(f->env, &a, "alice's data"), ES_OK);
    assert_int_equal(open_event(f->env, &b, "bob's data"), ES_OK);
}

static void wrong_master_key_fails(void **state)
{
    fixture *f = *state;
    event e, scratch;
    seal_event(f->env, SUBJ_A, "id-1", 0, "secret", &e);
    es_keyring *kr = keyring_with(f, master2, 0, 0);
    es_envelope *env = envelope_with(kr);
    assert_int_equal(open_event(env, &e, NULL), ES_ERR_CRYPTO);
    assert_non_null(strstr(es_last_error(), "master key"));
    /* Nor can it write for an entity keyed under the other master key. */
    assert_int_equal(try_seal(env, SUBJ_A, "id-2", 0, "x", &scratch), ES_ERR_CRYPTO);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

/* ---- the master key check ------------------------------------------------ */

#define KEY_MISMATCH "the master key does not match the one this store was written with"

/* es_keyring_check_master of a keyring with `master` over `keys` (with the
 * backend's scan unless `no_scan`). No cmocka asserts: threads call it. */
static es_status check_on(mem_keys *keys, const uint8_t *master, bool no_scan)
{
    es_keyring_options ko = {.master_key = master};
    es_keyring_backend b = mem_keys_backend(keys);
    if (no_scan)
        b.scan = NULL;
    es_keyring *kr = NULL;
    es_status s = es_keyring_create(&b, &ko, &kr);
    if (s == ES_OK)
        s = es_keyring_check_master(kr);
    es_keyring_destroy(kr);
    return s;
}

static void master_key_check(void **state)
{
    (void)state;
    mem_keys *keys = mem_keys_create();
    assert_int_equal(check_on(keys, master1, false), ES_OK); /* the first writes it */
    assert_int_equal(mem_keys_named_versions(keys, ES_KEYRING_CHECK_NAME), 1);
    assert_int_equal(check_on(keys, master1, false), ES_OK);
    size_t written = mem_keys_total(keys);
    assert_int_equal(check_on(keys, master2, false), ES_ERR_CRYPTO);
    assert_string_equal(es_last_error(), KEY_MISMATCH);
    assert_int_equal(mem_keys_total(keys), written); /* refused, nothing written */
    assert_false(mem_keys_holds(keys, master1, sizeof master1));
    assert_int_equal(es_keyring_check_master(NULL), ES_ERR_INVALID);

    /* A check record altered outside es is refused, not rewritten. */
    mem_keys *altered = mem_keys_create();
    mem_keys_put_named(altered, ES_KEYRING_CHECK_NAME, (const uint8_t *)"\x03junk", 5);
    assert_int_equal(check_on(altered, master1, false), ES_ERR_CRYPTO);
    assert_non_null(strstr(es_last_error(), "altered"));
    assert_int_equal(mem_keys_total(altered), 1);
    mem_keys_release(altered);

    /* A backend that cannot be read or scanned: its failure, nothing written. */
    mem_keys *failing = mem_keys_create();
    mem_keys_fail(failing, MEM_GET, ES_ERR_CONNECTION, 1);
    assert_int_equal(check_on(failing, master1, false), ES_ERR_CONNECTION);
    mem_keys_fail(failing, MEM_SCAN, ES_ERR_TIMEOUT, 1);
    assert_int_equal(check_on(failing, master1, false), ES_ERR_TIMEOUT);
    assert_int_equal(mem_keys_total(failing), 0);
    mem_keys_release(failing);
    mem_keys_release(keys);
}

/* A backend written before the check existed: data keys, no check. The
 * first key checked is proven against a data key before its check is
 * written, so a wrong one cannot claim the store. */
static void master_key_check_of_an_old_backend(void **state)
{
    fixture *f = *state; /* f->kr never checked: it writes as an old es did */
    event e;
    assert_int_equal(es_keyring_shred(f->kr, ENTITY_B), ES_OK); /* a mark comes first */
    seal_event(f->env, SUBJ_A, "id-1", 0, "secret", &e);
    size_t written = mem_keys_total(f->keys);
    assert_int_equal(check_on(f->keys, master2, false), ES_ERR_CRYPTO);
    assert_string_equal(es_last_error(), KEY_MISMATCH);
    assert_int_equal(mem_keys_total(f->keys), written);
    assert_int_equal(check_on(f->keys, master1, false), ES_OK);
    assert_int_equal(mem_keys_named_versions(f->keys, ES_KEYRING_CHECK_NAME), 1);
    assert_int_equal(check_on(f->keys, master2, false), ES_ERR_CRYPTO);

    /* Without a scan there is nothing to prove against: the first key
     * checked claims the backend (docs/envelope.md says when that is safe). */
    mem_keys *old = mem_keys_create();
    es_keyring *kr = keyring_on(old, master1, 0, 0);
    es_envelope *env = envelope_with(kr);
    seal_event(env, SUBJ_A, "id-1", 0, "secret", &e);
    assert_int_equal(check_on(old, master2, true), ES_OK);
    assert_int_equal(check_on(old, master1, true), ES_ERR_CRYPTO);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
    mem_keys_release(old);
}

typedef struct checker {
    mem_keys *keys;
    const uint8_t *master;
    es_status st;
} checker;

static void *check_thread(void *arg)
{
    checker *c = arg;
    c->st = check_on(c->keys, c->master, false);
    return NULL;
}

/* Two keyrings checking a new backend at once with different keys: both
 * find no check, both create one; the backend takes one, the other is
 * refused. */
static void master_key_check_race(void **state)
{
    (void)state;
    mem_keys *keys = mem_keys_create();
    mem_keys_gate_creates(keys, 2);
    checker c[2] = {{keys, master1, ES_OK}, {keys, master2, ES_OK}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, check_thread, &c[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_true((c[0].st == ES_OK && c[1].st == ES_ERR_CRYPTO) ||
                (c[0].st == ES_ERR_CRYPTO && c[1].st == ES_OK));
    assert_int_equal(mem_keys_named_versions(keys, ES_KEYRING_CHECK_NAME), 1);
    mem_keys_stats st;
    mem_keys_stats_get(keys, &st);
    assert_int_equal(st.creates_refused, 1);
    assert_int_equal(check_on(keys, c[0].st == ES_OK ? master1 : master2, false), ES_OK);
    mem_keys_release(keys);
}

static void no_master_key(void **state)
{
    fixture *f = *state;
    event e, scratch;
    seal_event(f->env, SUBJ_A, "id-1", 0, "secret", &e);
    es_envelope_options o = {.encrypt = true}; /* no keyring */
    es_envelope *env = NULL;
    assert_int_equal(es_envelope_create(&o, &env), ES_OK);
    assert_int_equal(try_seal(env, SUBJ_A, "id-2", 0, "x", &scratch), ES_ERR_NO_KEY);
    assert_int_equal(open_event(env, &e, NULL), ES_ERR_NO_KEY);
    es_envelope_destroy(env);
    /* A store that does not encrypt, reading an encrypted event: the same. */
    es_envelope_options plain = {0};
    assert_int_equal(es_envelope_create(&plain, &env), ES_OK);
    assert_int_equal(open_event(env, &e, NULL), ES_ERR_NO_KEY);
    es_envelope_destroy(env);
}

/* ---- records altered outside es ------------------------------------------ */

static size_t latest_record(mem_keys *keys, const char *entity, uint8_t *rec)
{
    size_t n = mem_keys_versions(keys, entity), len = 0;
    assert_true(n > 0);
    assert_true(mem_keys_version(keys, entity, n - 1, rec, ES_KEYRING_RECORD_MAX, &len));
    return len;
}

/* Records that are not what es wrote never give a key. */
static void altered_records_fail(void **state)
{
    fixture *f = *state;
    event a, scratch;
    seal_event(f->env, SUBJ_A, "id-1", 0, "alice", &a);
    uint8_t rec[ES_KEYRING_RECORD_MAX];
    size_t len = latest_record(f->keys, ENTITY_A, rec);

    /* Alice's record copied to carol: bound to alice's name, it does not
     * unwrap as carol's. */
    mem_keys_put(f->keys, "$ES.bank.account.carol", rec, len);
    assert_int_equal(try_seal(f->env, "$ES.bank.account.carol.opened", "id", 0, "x", &scratch),
                     ES_ERR_CRYPTO);
    /* Garbage, a truncated key, an oversized record, an unknown version. */
    static const uint8_t junk[] = {0x07, 1, 2, 3};
    mem_keys_put(f->keys, "$ES.bank.account.dan", junk, sizeof junk);
    assert_int_equal(try_seal(f->env, "$ES.bank.account.dan.opened", "id", 0, "x", &scratch),
                     ES_ERR_CRYPTO);
    mem_keys_put(f->keys, "$ES.bank.account.eve", rec, len - 1);
    assert_int_equal(try_seal(f->env, "$ES.bank.account.eve.opened", "id", 0, "x", &scratch),
                     ES_ERR_CRYPTO);
    static uint8_t huge[ES_KEYRING_RECORD_MAX + 40];
    memcpy(huge, rec, len);
    mem_keys_put(f->keys, "$ES.bank.account.fay", huge, sizeof huge);
    assert_int_equal(try_seal(f->env, "$ES.bank.account.fay.opened", "id", 0, "x", &scratch),
                     ES_ERR_CRYPTO);
    mem_keys_put(f->keys, "$ES.bank.account.gus", (const uint8_t *)"", 0);
    assert_int_equal(try_seal(f->env, "$ES.bank.account.gus.opened", "id", 0, "x", &scratch),
                     ES_ERR_CRYPTO);
    /* None of that touched alice. */
    assert_int_equal(open_event(f->env, &a, "alice"), ES_OK);
}

/* Alice's key replaced by another valid one (say, restored from another
 * store's backup): the old events no longer open, new ones do, and a cached
 * key with the wrong id makes the keyring look again. */
static void replaced_key(void **state)
{
    fixture *f = *state;
    event old, fresh;
    seal_event(f->env, SUBJ_A, "id-1", 0, "old", &old);

    mem_keys *elsewhere = mem_keys_create();
    es_keyring *kr2 = keyring_on(elsewhere, master1, 0, 0);
    es_envelope *env2 = envelope_with(kr2);
    seal_event(env2, SUBJ_A, "id-2", 0, "fresh", &fresh);
    assert_string_not_equal(old.values[0], fresh.values[0]);
    uint8_t rec[ES_KEYRING_RECORD_MAX];
    size_t len = latest_record(elsewhere, ENTITY_A, rec);
    mem_keys_put(f->keys, ENTITY_A, rec, len);

    es_keyring_stats before, after;
    es_keyring_stats_get(f->kr, &before);
    assert_int_equal(open_event(f->env, &fresh, "fresh"), ES_OK); /* cache had the old key */
    es_keyring_stats_get(f->kr, &after);
    assert_int_equal(after.kv_gets, before.kv_gets + 1);
    assert_int_equal(open_event(f->env, &old, NULL), ES_ERR_CRYPTO);
    assert_non_null(strstr(es_last_error(), "not the entity's key"));

    es_envelope_destroy(env2);
    es_keyring_destroy(kr2);
    mem_keys_release(elsewhere);
}

/* ---- backend failures ---------------------------------------------------- */

static void backend_failures(void **state)
{
    fixture *f = *state;
    event e, scratch;
    mem_keys_stats st;
    /* A failing read is the seal's failure; nothing is written. */
    mem_keys_fail(f->keys, MEM_GET, ES_ERR_TIMEOUT, 1);
    assert_int_equal(try_seal(f->env, SUBJ_A, "id-1", 0, "x", &scratch), ES_ERR_TIMEOUT);
    assert_int_equal(mem_keys_versions(f->keys, ENTITY_A), 0);
    /* One failed creation is retried (it is most often a lost race) ... */
    mem_keys_fail(f->keys, MEM_CREATE, ES_ERR_TIMEOUT, 1);
    seal_event(f->env, SUBJ_A, "id-2", 0, "alice", &e);
    mem_keys_stats_get(f->keys, &st);
    assert_int_equal(st.calls[MEM_CREATE], 2);
    assert_int_equal(mem_keys_versions(f->keys, ENTITY_A), 1);
    /* ... two are the seal's failure. */
    mem_keys_fail(f->keys, MEM_CREATE, ES_ERR_CONNECTION, 2);
    assert_int_equal(try_seal(f->env, SUBJ_B, "id-3", 0, "x", &scratch), ES_ERR_CONNECTION);
    assert_int_equal(mem_keys_versions(f->keys, ENTITY_B), 0);
    /* A shred that did not reach the backend changed nothing. */
    mem_keys_fail(f->keys, MEM_REPLACE, ES_ERR_TIMEOUT, 1);
    assert_int_equal(es_keyring_shred(f->kr, ENTITY_A), ES_ERR_TIMEOUT);
    assert_int_equal(open_event(f->env, &e, "alice"), ES_OK);
    es_keyring *fresh = keyring_with(f, master1, 0, 0);
    es_envelope *fresh_env = envelope_with(fresh);
    assert_int_equal(open_event(fresh_env, &e, "alice"), ES_OK);
    es_envelope_destroy(fresh_env);
    es_keyring_destroy(fresh);
}

/* ---- shredding ----------------------------------------------------------- */

/* After a shred, the entity's record is one version, the mark, and its key's
 * bytes are nowhere in the backend. */
static void only_the_mark_left(mem_keys *keys, const char *entity, const uint8_t *old_rec,
                               size_t old_len)
{
    assert_int_equal(mem_keys_versions(keys, entity), 1);
    uint8_t rec[ES_KEYRING_RECORD_MAX];
    size_t len = 0;
    assert_true(mem_keys_version(keys, entity, 0, rec, sizeof rec, &len));
    assert_int_equal(len, REC_MARK_LEN);
    assert_int_equal(rec[0], REC_SHREDDED);
    if (old_rec != NULL)
        assert_false(mem_keys_holds(keys, old_rec, old_len));
}

static void shredding_reads(fixture *f, event a[3], const event *b)
{
    for (int i = 0; i < 3; i++) {
        assert_int_equal(open_event(f->env, &a[i], NULL), ES_ERR_SHREDDED);
        assert_null(strstr(es_last_error(), "alice")); /* never names the entity */
    }
    assert_int_equal(open_event(f->env, b, "bob 1"), ES_OK);
    /* Later events of a shredded entity are refused: it stays shredded. */
    event scratch;
    assert_int_equal(try_seal(f->env, SUBJ_A, "id-a4", 0, "x", &scratch), ES_ERR_SHREDDED);
}

static void shredding(void **state)
{
    fixture *f = *state;
    event a[3], b, scratch;
    seal_event(f->env, SUBJ_A, "id-a1", 0, "alice 1", &a[0]);
    seal_event(f->env, ENTITY_A ".withdrawn", "id-a2", 0, "alice 2", &a[1]);
    seal_event(f->env, SUBJ_A, "id-a3", 2, "alice 3", &a[2]);
    seal_event(f->env, SUBJ_B, "id-b1", 0, "bob 1", &b);
    assert_int_equal(mem_keys_versions(f->keys, ENTITY_A), 1);
    /* An earlier version kept in the bucket's history (written outside es):
     * the shred must erase it too. */
    uint8_t old[ES_KEYRING_RECORD_MAX];
    size_t old_len = latest_record(f->keys, ENTITY_A, old);
    mem_keys_put(f->keys, ENTITY_A, old, old_len);
    assert_int_equal(mem_keys_versions(f->keys, ENTITY_A), 2);

    /* A second process that has alice's key cached before the shred. */
    es_keyring *other = keyring_with(f, master1, 0, 1);
    es_envelope *other_env = envelope_with(other);
    assert_int_equal(open_event(other_env, &a[0], "alice 1"), ES_OK);

    assert_int_equal(es_keyring_shred(f->kr, ENTITY_A), ES_OK);
    only_the_mark_left(f->keys, ENTITY_A, old, old_len);
    shredding_reads(f, a, &b);

    /* Once its cache entry expires (ttl 1 ms), the other process sees it. */
    struct timespec ms5 = {0, 5 * 1000 * 1000};
    nanosleep(&ms5, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(open_event(other_env, &a[i], NULL), ES_ERR_SHREDDED);
    assert_int_equal(try_seal(other_env, SUBJ_A, "id-a5", 0, "x", &scratch), ES_ERR_SHREDDED);
    es_keyring_stats st;
    es_keyring_stats_get(other, &st);
    assert_true(st.cache_expired >= 1);
    es_envelope_destroy(other_env);
    es_keyring_destroy(other);

    /* A brand-new process reads the mark from the backend. */
    es_keyring *fresh = keyring_with(f, master1, 0, 0);
    es_envelope *fresh_env = envelope_with(fresh);
    assert_int_equal(open_event(fresh_env, &a[1], NULL), ES_ERR_SHREDDED);
    assert_int_equal(open_event(fresh_env, &b, "bob 1"), ES_OK);

    /* Idempotent; an entity without a key can be shredded up front. */
    assert_int_equal(es_keyring_shred(f->kr, ENTITY_A), ES_OK);
    only_the_mark_left(f->keys, ENTITY_A, NULL, 0);
    assert_int_equal(es_keyring_shred(fresh, "$ES.bank.account.zoe"), ES_OK);
    only_the_mark_left(f->keys, "$ES.bank.account.zoe", NULL, 0);
    assert_int_equal(try_seal(f->env, "$ES.bank.account.zoe.opened", "id-z1", 0, "x", &scratch),
                     ES_ERR_SHREDDED);
    assert_int_equal(es_keyring_shred(f->kr, ""), ES_ERR_INVALID);
    assert_int_equal(es_keyring_shred(f->kr, NULL), ES_ERR_INVALID);
    assert_int_equal(es_keyring_shred(NULL, ENTITY_A), ES_ERR_INVALID);
    es_envelope_destroy(fresh_env);
    es_keyring_destroy(fresh);
}

/* ---- key cache ----------------------------------------------------------- */

static void cache_eviction(void **state)
{
    fixture *f = *state;
    es_keyring *kr = keyring_with(f, master1, 2, -1); /* two keys, no expiry */
    es_envelope *env = envelope_with(kr);
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

    /* c3 and c2 are cached: no backend read. */
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
    /* The keyring's count of backend reads is the backend's (the fixture's
     * keyring read nothing here). */
    mem_keys_stats ms;
    mem_keys_stats_get(f->keys, &ms);
    assert_int_equal(ms.calls[MEM_GET], st.kv_gets);
    /* Many entities through a tiny cache: always correct. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 3; i++)
            assert_int_equal(open_event(env, &e[i], subj[i]), ES_OK);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

/* ---- threads ------------------------------------------------------------- */

/* Writers of several processes race to create one entity's key: all find
 * none, all try to create it at once (the backend holds them until all have
 * come), one wins, the others read the winner's key. */
typedef struct racer {
    mem_keys *keys;
    event e;
    es_status st;
    uint64_t created;
    pthread_barrier_t *go;
} racer;

#define RACE_SUBJECT "$ES.bank.account.race.opened"

static void *race(void *arg)
{
    racer *r = arg;
    es_keyring_options ko = {.master_key = master1};
    es_keyring_backend b = mem_keys_backend(r->keys);
    es_keyring *kr = NULL;
    es_envelope *env = NULL;
    r->st = es_keyring_create(&b, &ko, &kr);
    es_envelope_options o = {.encrypt = true, .keyring = kr};
    if (r->st == ES_OK)
        r->st = es_envelope_create(&o, &env);
    pthread_barrier_wait(r->go);
    if (r->st == ES_OK) {
        /* No cmocka asserts off the main thread: keep the status. */
        es_envelope_event ev = mem_event(RACE_SUBJECT);
        es_sealed s = ES_SEALED_INIT;
        r->st = es_envelope_seal(env, &ev, "id", 0, (const uint8_t *)"raced", 5, &s);
        if (r->st == ES_OK && s.n_headers == 1 && s.len <= sizeof r->e.payload) {
            snprintf(r->e.subject, sizeof r->e.subject, RACE_SUBJECT);
            snprintf(r->e.id, sizeof r->e.id, "id");
            keep_sealed(&s, &r->e);
        }
        es_sealed_free(&s);
    }
    es_keyring_stats st;
    es_keyring_stats_get(kr, &st);
    r->created = st.keys_created;
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
    return NULL;
}

static void key_creation_race(void **state)
{
    fixture *f = *state;
    enum { N = 4 };
    racer r[N];
    pthread_t t[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    mem_keys_gate_creates(f->keys, N);
    for (int i = 0; i < N; i++) {
        r[i] = (racer){.keys = f->keys, .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    mem_keys_stats ms;
    mem_keys_stats_get(f->keys, &ms);
    assert_int_equal(ms.calls[MEM_CREATE], N); /* all of them raced */
    assert_int_equal(ms.creates_refused, N - 1);
    uint64_t created = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].st, ES_OK);
        assert_int_equal(r[i].e.nh, 1);
        assert_string_equal(r[i].e.values[0], r[0].e.values[0]); /* one key won */
        assert_int_equal(open_event(f->env, &r[i].e, "raced"), ES_OK);
        created += r[i].created;
    }
    assert_int_equal(created, 1);
    assert_int_equal(mem_keys_versions(f->keys, "$ES.bank.account.race"), 1);
}

/* Many threads sealing and opening through one envelope and keyring whose
 * cache is smaller than the set of entities: every result is right. */
typedef struct worker {
    es_envelope *env;
    int seed, failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 200; i++) {
        char subject[64], text[32];
        snprintf(subject, sizeof subject, "$ES.bank.account.w%d.moved", (w->seed + i) % 7);
        int n = snprintf(text, sizeof text, "%d/%d", w->seed, i);
        es_envelope_event ev = mem_event(subject);
        es_sealed s = ES_SEALED_INIT;
        es_opened o = ES_OPENED_INIT;
        es_status st = es_envelope_seal(w->env, &ev, "id", 0, (const uint8_t *)text, (size_t)n, &s);
        if (st == ES_OK)
            st = es_envelope_open(w->env, &ev, "id", s.headers, s.n_headers, s.data, s.len, &o);
        if (st != ES_OK || o.len != (size_t)n || memcmp(o.data, text, (size_t)n) != 0)
            w->failures++;
        es_sealed_free(&s);
        es_opened_free(&o);
    }
    return NULL;
}

static void many_threads(void **state)
{
    fixture *f = *state;
    enum { N = 4 };
    es_keyring *kr = keyring_with(f, master1, 3, 0);
    es_envelope *env = envelope_with(kr);
    worker w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){.env = env, .seed = i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    es_keyring_stats st;
    es_keyring_stats_get(kr, &st);
    assert_int_equal(st.cached, 3);
    assert_true(st.cache_evictions > 0);
    es_envelope_destroy(env);
    es_keyring_destroy(kr);
}

#define WITH_FIXTURE(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(master_key_sources),
        cmocka_unit_test(backend_contract),
        cmocka_unit_test(record_names),
        WITH_FIXTURE(master_key_file_and_env_agree),
        WITH_FIXTURE(round_trip),
        WITH_FIXTURE(entity_picks_the_key),
        WITH_FIXTURE(tampering_fails),
        WITH_FIXTURE(replay_elsewhere_fails),
        WITH_FIXTURE(wrong_master_key_fails),
        cmocka_unit_test(master_key_check),
        WITH_FIXTURE(master_key_check_of_an_old_backend),
        cmocka_unit_test(master_key_check_race),
        WITH_FIXTURE(no_master_key),
        WITH_FIXTURE(altered_records_fail),
        WITH_FIXTURE(replaced_key),
        WITH_FIXTURE(backend_failures),
        WITH_FIXTURE(shredding),
        WITH_FIXTURE(cache_eviction),
        WITH_FIXTURE(key_creation_race),
        WITH_FIXTURE(many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
