/* A verifying decoder (es_atp_options.identity) over the real relay capture:
 * every commit's signature verifies and every commit inverts, the chain
 * fields and the audit metadata are set; then frames forged from the real
 * ones, each hash-consistent (a plain decoder accepts them all), are each
 * refused with their reason and no events (forge.h, one case each). Key
 * rotation goes through a PLC stand-in on loopback (http_standin.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include <es/atproto.h>
#include <es/base.h>
#include <es/cbor.h>
#include <es/cid.h>

#include "fixture_json.h"
#include "fixtures.h"
#include "forge.h"
#include "http_standin.h"

#define CORPUS_FRAMES 150
#define CORPUS_COMMITS 148

static sample corpus[CORPUS_FRAMES];
static size_t corpus_count;
static const char *docs_path;
static char closed_plc[64]; /* a loopback port nobody listens on: no network in tests */

static int load_corpus(void **state)
{
    (void)state;
    es_atp_capture *c = corpus_frames_open();
    docs_path = fixture_path("firehose-corpus/did_docs.json.zst");
    if (c == NULL || docs_path == NULL) {
        es_atp_capture_close(c);
        return 0;
    }
    const uint8_t *frame;
    size_t len;
    while (corpus_count < CORPUS_FRAMES && es_atp_capture_next(c, &frame, &len) == ES_OK) {
        corpus[corpus_count].bytes = malloc(len);
        memcpy(corpus[corpus_count].bytes, frame, len);
        corpus[corpus_count++].len = len;
    }
    es_atp_capture_close(c);
    standin closed;
    if (standin_start(&closed) != 0)
        return -1;
    snprintf(closed_plc, sizeof closed_plc, "http://127.0.0.1:%d", closed.port);
    standin_stop(&closed);
    return 0;
}

static int free_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < corpus_count; i++)
        free(corpus[i].bytes);
    return 0;
}

static void need_corpus(void)
{
    if (corpus_count != CORPUS_FRAMES)
        skip();
}

/* ---- a verifying decoder ------------------------------------------------- */

typedef struct verifier {
    es_atp_identity *id;
    es_atp_decoder *d;
    es_arena *a;
} verifier;

/* A decoder whose identity is seeded from `seed` (NULL: none) and resolves
 * through `plc` (http on loopback). */
static void verifier_open(verifier *v, const char *plc, const char *seed)
{
    es_atp_identity_options io;
    es_atp_identity_options_init(&io);
    io.plc_url = plc;
    io.timeout_ms = 2000;
    io.allow_insecure = true;
    assert_int_equal(es_atp_identity_create(&io, &v->id), ES_OK);
    size_t n = 0;
    if (seed != NULL && es_atp_identity_seed_file(v->id, seed, &n) != ES_OK)
        fail_msg("seed %s: %s", seed, es_last_error());
    es_atp_options o = {.identity = v->id};
    assert_int_equal(es_atp_decoder_create(&o, &v->d), ES_OK);
    assert_int_equal(es_arena_create(0, &v->a), ES_OK);
}

static void verifier_close(verifier *v)
{
    es_arena_destroy(v->a);
    es_atp_decoder_destroy(v->d);
    es_atp_identity_destroy(v->id);
}

static es_status decode(verifier *v, const sample *s, es_atp_batch *b)
{
    es_arena_reset(v->a);
    return es_atp_decode(v->d, s->bytes, s->len, v->a, b);
}

static const char *meta_of(const es_event_spec *e, const char *key)
{
    for (size_t i = 0; i < e->meta_count; i++)
        if (strcmp(e->meta[i].key, key) == 0)
            return e->meta[i].value;
    return NULL;
}

static const char *cid_string(const uint8_t *cid, size_t len, char out[ES_CID_STRING_MAX])
{
    assert_int_equal(es_cid_to_string(cid, len, out, ES_CID_STRING_MAX), ES_OK);
    return out;
}

/* The audit metadata of an op event (docs/atproto.md): the signature as
 * base64url of 64 bytes, the MST roots as CID text. */
static void check_audit_meta(const es_atp_batch *b, const es_event_spec *e)
{
    const char *sig = meta_of(e, "sig");
    assert_non_null(sig);
    assert_int_equal(strlen(sig), 86);
    assert_null(strpbrk(sig, "+/="));
    char std[90];
    strcpy(std, sig);
    for (char *c = std; *c; c++)
        *c = *c == '-' ? '+' : *c == '_' ? '/' : *c;
    uint8_t raw[64];
    size_t n = 0;
    assert_int_equal(es_base64_decode(std, strlen(std), raw, sizeof raw, &n), ES_OK);
    assert_int_equal(n, 64);
    char text[ES_CID_STRING_MAX];
    assert_string_equal(meta_of(e, "data"), cid_string(b->data_cid, b->data_cid_len, text));
    assert_string_equal(meta_of(e, "prevdata"), cid_string(b->prev_data, b->prev_data_len, text));
    if (b->since != NULL)
        assert_string_equal(meta_of(e, "since"), b->since);
    else
        assert_null(meta_of(e, "since"));
    assert_null(meta_of(e, "commitprev")); /* v3 commits of today's relays: prev is null */
}

/* ---- the real corpus ----------------------------------------------------- */

static void corpus_verifies(void **state)
{
    (void)state;
    need_corpus();
    verifier v;
    verifier_open(&v, closed_plc, docs_path);
    size_t commits = 0, events = 0, identities = 0, accounts = 0;
    for (size_t i = 0; i < corpus_count; i++) {
        es_atp_batch b;
        if (decode(&v, &corpus[i], &b) != ES_OK)
            fail_msg("frame %zu refused: %s", i, es_last_error());
        events += b.count;
        if (b.kind == ES_ATP_KIND_COMMIT) {
            commits++;
            assert_true(es_atp_valid_tid(b.rev, b.rev_len));
            assert_true(b.since == NULL || es_atp_valid_tid(b.since, b.since_len));
            assert_true(b.since == NULL || strcmp(b.since, b.rev) < 0);
            assert_int_equal(b.commit_cid_len, ES_CID_SHA256_LEN);
            assert_int_equal(b.data_cid_len, ES_CID_SHA256_LEN);
            assert_int_equal(b.prev_data_len, ES_CID_SHA256_LEN); /* all carry prevData */
            for (size_t k = 0; k < b.count; k++)
                check_audit_meta(&b, &b.events[k]);
        } else if (b.kind == ES_ATP_KIND_IDENTITY) {
            identities++;
            assert_true(b.handle == NULL || es_atp_valid_handle(b.handle, strlen(b.handle)));
            assert_null(b.rev);
        } else if (b.kind == ES_ATP_KIND_ACCOUNT) {
            accounts++;
            assert_true(b.active || b.status != NULL); /* an inactive account says why */
            assert_null(b.commit_cid);
        }
    }
    const es_atp_stats *st = es_atp_decoder_stats(v.d);
    for (int k = 0; k < ES_ATP_ERR_COUNT; k++)
        assert_int_equal(st->errors[k], 0);
    assert_int_equal(commits, CORPUS_COMMITS);
    assert_int_equal(identities, 1);
    assert_int_equal(accounts, 1);
    assert_int_equal(events, 152);
    es_atp_identity_stats is;
    es_atp_identity_stats_get(v.id, &is);
    assert_int_equal(is.fetches, 0); /* all from the seed: no network */
    assert_true(is.hits >= CORPUS_COMMITS);
    printf("%zu/%d commits verified and inverted; identity hits %llu\n", commits, CORPUS_COMMITS,
           (unsigned long long)is.hits);
    verifier_close(&v);
}

/* Without a seed and with no PLC directory to ask, nothing verifies: every
 * commit is refused for want of a key. */
static void no_identity_no_commits(void **state)
{
    (void)state;
    need_corpus();
    verifier v;
    verifier_open(&v, closed_plc, NULL);
    size_t refused = 0;
    for (size_t i = 0; i < corpus_count; i++) {
        es_atp_batch b;
        if (decode(&v, &corpus[i], &b) != ES_OK) {
            assert_int_equal(b.error, ES_ATP_ERR_IDENTITY);
            assert_int_equal(b.count, 0);
            refused++;
        }
    }
    assert_int_equal(refused, CORPUS_COMMITS);
    assert_int_equal(es_atp_decoder_stats(v.d)->errors[ES_ATP_ERR_IDENTITY], CORPUS_COMMITS);
    verifier_close(&v);
}

/* ---- forging from the real frames ---------------------------------------- */

/* The forged frame is accepted by a plain decoder (it is hash-consistent:
 * only verification can tell; a syntax refusal excepted) and refused as
 * `kind`, with no events, by a verifying one. Frees the frame. */
static void expect_refused(sample forged, es_atp_error kind)
{
    es_atp_decoder *plain = NULL;
    es_arena *a = NULL;
    es_atp_batch b;
    assert_int_equal(es_atp_decoder_create(NULL, &plain), ES_OK);
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    if (es_atp_decode(plain, forged.bytes, forged.len, a, &b) != ES_OK &&
        kind != ES_ATP_ERR_SYNTAX)
        fail_msg("a plain decoder refuses the forgery already: %s", es_last_error());
    es_atp_decoder_destroy(plain);
    es_arena_destroy(a);
    verifier v;
    verifier_open(&v, closed_plc, docs_path);
    es_status s = decode(&v, &forged, &b);
    if (s == ES_OK)
        fail_msg("forgery accepted, expected a '%s' refusal", es_atp_error_name(kind));
    if (b.error != kind)
        fail_msg("refused as '%s', expected '%s': %s", es_atp_error_name(b.error),
                 es_atp_error_name(kind), es_last_error());
    assert_int_equal(b.count, 0);
    assert_null(b.events);
    const es_atp_stats *st = es_atp_decoder_stats(v.d);
    assert_int_equal(st->errors[kind], 1);
    assert_int_equal(st->events, 0);
    assert_non_null(strstr(es_last_error(), es_atp_error_name(kind)));
    verifier_close(&v);
    free(forged.bytes);
}

/* One case per forgery (cmocka's initial state is its entry of forgeries[]). */
static void forgery_refused(void **state)
{
    const forgery *f = *state;
    need_corpus();
    expect_refused(f->make(corpus, corpus_count), f->refused_as);
}

/* The genuine #sync a forgery zeroes the signature of is accepted. */
static void sync_signatures(void **state)
{
    (void)state;
    need_corpus();
    sample good = sync_of(real_commit(corpus, corpus_count, NULL, 0), false);
    verifier v;
    verifier_open(&v, closed_plc, docs_path);
    es_atp_batch b;
    if (decode(&v, &good, &b) != ES_OK)
        fail_msg("a real signed commit as #sync: %s", es_last_error());
    assert_int_equal(b.kind, ES_ATP_KIND_SYNC);
    assert_int_equal(b.count, 1);
    verifier_close(&v);
    free(good.bytes);
}


/* A copy of `did`'s document with the signing key of `other`'s: a stale
 * key, as before a rotation. */
static json_t *doc_with_key(json_t *all, const char *did, const char *other)
{
    json_t *doc = json_deep_copy(json_object_get(all, did));
    json_t *vm = json_array_get(json_object_get(doc, "verificationMethod"), 0);
    json_t *ovm =
        json_array_get(json_object_get(json_object_get(all, other), "verificationMethod"), 0);
    json_object_set(vm, "publicKeyMultibase", json_object_get(ovm, "publicKeyMultibase"));
    return doc;
}

/* A `--did-docs` file holding `doc` alone (taken); its path (static). */
static const char *seed_file(json_t *doc)
{
    static char path[64];
    json_t *file = json_object();
    json_object_set_new(file, json_string_value(json_object_get(doc, "id")), doc);
    snprintf(path, sizeof path, "/tmp/es-verify-seed-%d.json", (int)getpid());
    assert_int_equal(json_dump_file(file, path, JSON_COMPACT), 0);
    json_decref(file);
    return path;
}

static json_t *corpus_docs(void)
{
    return zst_json(docs_path);
}

/* The corpus's #identity frame, re-addressed to `did` (an #identity carries
 * no signature: any DID is a valid one). */
static sample identity_for(const char *did)
{
    for (size_t i = 0; i < corpus_count; i++) {
        edit e;
        edit_open(&e, &corpus[i]);
        if (es_value_is_string(es_value_get(e.header, "t"), "#identity")) {
            *slot(e.body, "did") = str_value(&e, did);
            return edit_close(&e);
        }
        es_arena_destroy(e.a);
    }
    fail_msg("no #identity in the corpus");
    return (sample){0};
}

/* A repository whose key "rotated": a seed file (`stale`) whose document
 * carries another DID's key, and a PLC stand-in serving the current one. */
typedef struct rotated {
    char did[256];
    const char *other; /* the DID whose key the stale document carries */
    standin plc;
    char url[64], route[300];
    char *current;     /* the current document (JSON text) */
    const char *stale; /* the seed file's path (static: seed_file) */
} rotated;

static void rotated_begin(rotated *r, json_t *all, const sample *frame)
{
    edit e;
    edit_open(&e, frame);
    const es_value *repo = es_value_get(e.body, "repo");
    snprintf(r->did, sizeof r->did, "%.*s", (int)repo->u.str.len, repo->u.str.ptr);
    es_arena_destroy(e.a);
    const char *key;
    json_t *doc;
    r->other = NULL;
    json_object_foreach(all, key, doc) if (strcmp(key, r->did) != 0) r->other = key;
    assert_non_null(r->other);
    assert_int_equal(standin_start(&r->plc), 0);
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d", r->plc.port);
    snprintf(r->route, sizeof r->route, "/%s", r->did);
    r->current = json_dumps(json_object_get(all, r->did), JSON_COMPACT);
    standin_route_set(&r->plc, r->route, 200, r->current, 0);
    r->stale = seed_file(doc_with_key(all, r->did, r->other));
}

static void rotated_end(rotated *r)
{
    unlink(r->stale);
    free(r->current);
    standin_stop(&r->plc);
}

/* #identity makes the next commit fetch the DID's document first (its key
 * may have changed); offline, a seeded document still stands. */
static void identity_events(void **state)
{
    (void)state;
    need_corpus();
    json_t *all = corpus_docs();
    const sample *commit = real_commit(corpus, corpus_count, NULL, 0);
    /* a stale key seeded; the directory has the current one */
    rotated r;
    rotated_begin(&r, all, commit);
    sample event = identity_for(r.did);
    verifier v;
    verifier_open(&v, r.url, r.stale);
    es_atp_batch b;
    assert_int_equal(decode(&v, &event, &b), ES_OK);
    assert_int_equal(b.count, 1);
    assert_int_equal(decode(&v, commit, &b), ES_OK);
    es_atp_identity_stats st;
    es_atp_identity_stats_get(v.id, &st);
    assert_int_equal(st.fetches, 1); /* fetched before verifying: no failed signature first */
    assert_int_equal(st.hits, 0);
    verifier_close(&v);
    /* offline: the seeded (here current) document survives the #identity */
    verifier_open(&v, closed_plc, docs_path);
    assert_int_equal(decode(&v, &event, &b), ES_OK);
    if (decode(&v, commit, &b) != ES_OK)
        fail_msg("offline after #identity: %s", es_last_error());
    assert_int_equal(decode(&v, commit, &b), ES_OK);
    es_atp_identity_stats_get(v.id, &st);
    assert_int_equal(st.fetches, 1); /* one attempt; the next within the minute is spared */
    assert_int_equal(st.failures, 1);
    verifier_close(&v);
    rotated_end(&r);
    free(event.bytes);
    json_decref(all);
}

/* ---- key rotation through a PLC stand-in --------------------------------- */

static void key_rotation(void **state)
{
    (void)state;
    need_corpus();
    json_t *all = corpus_docs();
    const sample *frame = real_commit(corpus, corpus_count, NULL, 0);
    /* the seeded key is stale; the directory has the rotated one */
    rotated r;
    rotated_begin(&r, all, frame);
    verifier v;
    verifier_open(&v, r.url, r.stale);
    es_atp_batch b;
    if (decode(&v, frame, &b) != ES_OK)
        fail_msg("not re-resolved after a rotation: %s", es_last_error());
    es_atp_identity_stats st;
    es_atp_identity_stats_get(v.id, &st);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(standin_requests(&r.plc), 1);
    assert_int_equal(decode(&v, frame, &b), ES_OK); /* the fresh key is cached now */
    assert_int_equal(standin_requests(&r.plc), 1);
    verifier_close(&v);
    /* the directory serves the stale key too: one fetch, then refused */
    json_t *wrong = doc_with_key(all, r.did, r.other);
    char *wrong_text = json_dumps(wrong, JSON_COMPACT);
    standin_route_set(&r.plc, r.route, 200, wrong_text, 0);
    verifier_open(&v, r.url, r.stale);
    assert_int_equal(decode(&v, frame, &b), ES_ERR_DECODE);
    assert_int_equal(b.error, ES_ATP_ERR_SIGNATURE);
    assert_int_equal(standin_requests(&r.plc), 2);
    /* the same forgery again within the minute costs no request */
    assert_int_equal(decode(&v, frame, &b), ES_ERR_DECODE);
    assert_int_equal(b.error, ES_ATP_ERR_SIGNATURE);
    assert_int_equal(standin_requests(&r.plc), 2);
    verifier_close(&v);
    /* unseeded: resolved through the directory on first use */
    standin_route_set(&r.plc, r.route, 200, r.current, 0);
    verifier_open(&v, r.url, NULL);
    assert_int_equal(decode(&v, frame, &b), ES_OK);
    es_atp_identity_stats_get(v.id, &st);
    assert_int_equal(st.fetches, 1);
    verifier_close(&v);
    free(wrong_text);
    json_decref(wrong);
    json_decref(all);
    rotated_end(&r);
}

static void api_edges(void **state)
{
    (void)state;
    es_atp_identity_destroy(NULL);
    es_atp_identity_invalidate(NULL, "did:plc:x", 9);
    es_atp_identity_options o;
    es_atp_identity_options_init(&o);
    assert_string_equal(o.plc_url, "https://plc.directory");
    assert_false(o.allow_insecure);
    es_atp_identity *id = NULL;
    o.plc_url = "http://plc.example"; /* https only, without the test switch */
    assert_int_equal(es_atp_identity_create(&o, &id), ES_ERR_INVALID);
    assert_int_equal(es_atp_identity_create(NULL, &id), ES_OK);
    size_t n = 7;
    assert_int_equal(es_atp_identity_seed_file(id, "/nonexistent/docs.json", &n), ES_ERR_IO);
    assert_int_equal(n, 0);
    es_atp_identity_stats st;
    es_atp_identity_stats_get(id, &st);
    assert_int_equal(st.cached, 0);
    es_atp_identity_destroy(id);
    for (int k = ES_ATP_ERR_SIGNATURE; k < ES_ATP_ERR_COUNT; k++)
        assert_string_not_equal(es_atp_error_name((es_atp_error)k), "unknown");
}

#define FORGERIES (sizeof forgeries / sizeof forgeries[0])

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(corpus_verifies), cmocka_unit_test(no_identity_no_commits),
        cmocka_unit_test(sync_signatures), cmocka_unit_test(identity_events),
        cmocka_unit_test(key_rotation),    cmocka_unit_test(api_edges),
    };
    struct CMUnitTest tests[sizeof fixed / sizeof fixed[0] + FORGERIES];
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < FORGERIES; i++)
        tests[n++] = (struct CMUnitTest){.name = forgeries[i].name,
                                         .test_func = forgery_refused,
                                         .initial_state = (void *)&forgeries[i]};
    return _cmocka_run_group_tests("test_atproto_verify", tests, n, load_corpus, free_corpus);
}
