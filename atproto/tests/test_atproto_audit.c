/* The audit (es/atproto_audit.h) on the real firehose corpus: every #commit's
 * block rebuilt from the fields its op events carry is byte for byte the
 * block of the frame, its CID is the frame's `commit`, its signature
 * verifies with the key of did_docs.json.zst; tampered fields give their
 * reason; the chain checks on hand-made sequences of commits signed here
 * (the corpus has one commit per repository). */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <es/time.h>
#include <es/atproto.h>
#include <es/atproto_audit.h>

#include "base/tests/failalloc.h"
#include "fixtures.h"
#include "audit_corpus.h"
#include "audit_signer.h"

#define COMMITS_MAX 256

static corpus_commit commits[COMMITS_MAX];
static size_t ncommits;
static char docs_path[4096];

/* Every #commit of the corpus, once; false (skip) when a fixture is absent. */
static bool corpus_loaded(void)
{
    if (ncommits > 0)
        return true;
    const char *path = fixture_path("firehose-corpus/did_docs.json.zst");
    if (path == NULL)
        return false;
    snprintf(docs_path, sizeof docs_path, "%s", path); /* fixture_path's buffer is reused */
    es_atp_capture *frames = corpus_frames_open();
    if (frames == NULL)
        return false;
    static uint8_t keep[COMMITS_MAX][4096]; /* the commit blocks outlive the frames */
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    const uint8_t *frame;
    size_t len;
    while (es_atp_capture_next(frames, &frame, &len) == ES_OK) {
        es_arena_reset(arena);
        corpus_commit *c = &commits[ncommits];
        if (!corpus_commit_of(frame, len, arena, c))
            continue;
        assert_true(ncommits < COMMITS_MAX && c->block_len <= sizeof keep[0]);
        memcpy(keep[ncommits], c->block, c->block_len);
        c->block = keep[ncommits++];
    }
    es_atp_capture_close(frames);
    es_arena_destroy(arena);
    return true;
}

static es_atp_audit *audit_new(bool chain)
{
    es_atp_audit_options o;
    es_atp_audit_options_init(&o);
    o.no_chain = !chain;
    es_atp_audit *a = NULL;
    assert_int_equal(es_atp_audit_create(&o, &a), ES_OK);
    size_t n = 0;
    if (es_atp_audit_load_did_docs(a, docs_path, &n) != ES_OK)
        fail_msg("%s: %s", docs_path, es_last_error());
    assert_true(n > 0);
    return a;
}

static es_atp_audit_reason verdict(es_atp_audit *a, const es_atp_audit_commit *c)
{
    es_atp_audit_result r;
    assert_int_equal(es_atp_audit_check(a, c, &r), ES_OK);
    assert_string_equal(r.did, c->did);
    return r.reason;
}

/* ---- the corpus ------------------------------------------------------------- */

static void every_commit_rebuilds_and_verifies(void **state)
{
    (void)state;
    if (!corpus_loaded())
        skip();
    es_atp_audit *a = audit_new(true);
    es_buf block = ES_BUF_INIT;
    for (size_t i = 0; i < ncommits; i++) {
        corpus_commit *c = &commits[i];
        uint8_t cid[ES_CID_SHA256_LEN];
        char text[ES_CID_STRING_MAX];
        block.len = 0;
        assert_int_equal(es_atp_audit_rebuild(&c->fields, &block, cid), ES_OK);
        assert_int_equal(block.len, c->block_len);
        assert_memory_equal(block.data, c->block, c->block_len);
        assert_int_equal(es_cid_to_string(cid, sizeof cid, text, sizeof text), ES_OK);
        assert_string_equal(text, c->commit);
        es_atp_audit_reason r = verdict(a, &c->fields);
        if (r != ES_ATP_AUDIT_OK)
            fail_msg("commit %zu of %s: %s", i, c->did, es_atp_audit_reason_name(r));
    }
    es_buf_free(&block);
    es_atp_audit_stats st;
    es_atp_audit_stats_get(a, &st);
    printf("corpus: %zu commits rebuilt, CIDs equal, signatures verified (%llu repositories)\n",
           ncommits, (unsigned long long)st.dids);
    assert_int_equal(ncommits, 148);
    assert_int_equal(st.commits, 148);
    assert_int_equal(st.by_reason[ES_ATP_AUDIT_OK], 148);
    es_atp_audit_destroy(a);
}

/* Not a timed test: the rate of es_atp_audit_check (parse, rebuild twice,
 * verify, hash) over the corpus, ES_AUDIT_ROUNDS times (default 20), printed
 * for docs/performance.md. */
static void check_rate(void **state)
{
    (void)state;
    if (!corpus_loaded())
        skip();
    const char *env = getenv("ES_AUDIT_ROUNDS");
    long rounds = env != NULL ? atol(env) : 20;
    es_atp_audit *a = audit_new(false);
    int64_t t0 = es_monotonic_ns();
    for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < ncommits; i++)
            assert_int_equal(verdict(a, &commits[i].fields), ES_ATP_AUDIT_OK);
    double s = (double)(es_monotonic_ns() - t0) / 1e9;
    printf("bench: %ld commits checked in %.3f s: %.0f commits/s on one core\n",
           rounds * (long)ncommits, s, (double)rounds * (double)ncommits / s);
    es_atp_audit_destroy(a);
}

/* One byte of the signature, another data CID, a changed rev or DID, the
 * legacy prev, a commit CID that is not the block's, no signature, no key. */
static void tampered_fields_give_their_reason(void **state)
{
    (void)state;
    if (!corpus_loaded())
        skip();
    es_atp_audit *a = audit_new(false);
    for (size_t i = 0; i < ncommits; i++) {
        corpus_commit c = commits[i];
        corpus_fields(&c);
        assert_int_equal(verdict(a, &c.fields), ES_ATP_AUDIT_OK);

        corpus_commit t = c;
        corpus_fields(&t);
        t.sig[10] = t.sig[10] == 'A' ? 'B' : 'A'; /* one byte of the signature */
        assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_SIGNATURE);

        corpus_fields(&t);
        memcpy(t.sig, c.sig, sizeof t.sig);
        t.fields.data = commits[(i + 1) % ncommits].data; /* another MST root */
        assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_SIGNATURE);

        corpus_fields(&t);
        t.rev[strlen(t.rev) - 1] = t.rev[strlen(t.rev) - 1] == '2' ? '3' : '2';
        assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_SIGNATURE);
        memcpy(t.rev, c.rev, sizeof t.rev);

        corpus_fields(&t);
        t.fields.commitprev = c.commit; /* a prev the author did not sign */
        assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_SIGNATURE);

        corpus_fields(&t);
        t.fields.commit = c.data; /* the stored CID is not the block's */
        assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_COMMIT_CID_MISMATCH);

        corpus_fields(&t);
        t.fields.sig = NULL;
        assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_NO_AUDIT_METADATA);
        t.fields.sig = "not base64url!";
        assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_NO_AUDIT_METADATA);

        corpus_fields(&t);
        t.fields.did = "did:plc:nobodyhasthisdidatallxx"; /* no document */
        assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_NO_KEY);

        corpus_fields(&t);
        t.fields.did = commits[(i + 1) % ncommits].did; /* re-labelled as another repo */
        if (strcmp(t.fields.did, c.did) != 0)
            assert_int_equal(verdict(a, &t.fields), ES_ATP_AUDIT_SIGNATURE);
    }
    es_atp_audit_stats st;
    es_atp_audit_stats_get(a, &st);
    assert_int_equal(st.by_reason[ES_ATP_AUDIT_OK], ncommits);
    assert_int_equal(st.by_reason[ES_ATP_AUDIT_COMMIT_CID_MISMATCH], ncommits);
    assert_int_equal(st.by_reason[ES_ATP_AUDIT_NO_KEY], ncommits);
    es_atp_audit_destroy(a);
}

/* ---- chains ----------------------------------------------------------------- */

typedef struct step {
    const corpus_commit *commit;
    const char *since, *prevdata; /* replacements (the frame's, not signed), or NULL */
    es_atp_audit_reason want;
} step;

/* snapshot[i] (snapshot may be NULL): step i as a resync stores it —
 * live=false, no since, no prevdata. */
static void run_chain_snapshots(const step *steps, const bool *snapshot, size_t n, bool chain)
{
    es_atp_audit_options o;
    es_atp_audit_options_init(&o);
    o.no_chain = !chain;
    es_atp_audit *a = NULL;
    assert_int_equal(es_atp_audit_create(&o, &a), ES_OK);
    const char *doc = chain_did_doc();
    if (es_atp_audit_add_did_doc(a, doc, strlen(doc)) != ES_OK)
        fail_msg("%s: %s", doc, es_last_error());
    for (size_t i = 0; i < n; i++) {
        corpus_commit c = *steps[i].commit;
        corpus_fields(&c);
        if (steps[i].since != NULL)
            c.fields.since = steps[i].since;
        if (steps[i].prevdata != NULL)
            c.fields.prevdata = steps[i].prevdata;
        if (snapshot != NULL && snapshot[i]) {
            c.fields.since = c.fields.prevdata = NULL;
            c.fields.snapshot = true;
        }
        es_atp_audit_reason r = verdict(a, &c.fields);
        if (r != steps[i].want)
            fail_msg("step %zu: %s, expected %s", i, es_atp_audit_reason_name(r),
                     es_atp_audit_reason_name(steps[i].want));
    }
    es_atp_audit_destroy(a);
}

static void run_chain(const step *steps, size_t n, bool chain)
{
    run_chain_snapshots(steps, NULL, n, chain);
}

static void chains_are_followed(void **state)
{
    (void)state;
    signer_start();
    static corpus_commit k1, k2, k3;
    chain_commit(&k1, "3lbaaaaaaaa22", NULL);
    chain_commit(&k2, "3lbaaaaaaab22", &k1);
    chain_commit(&k3, "3lbaaaaaaac22", &k2);
    const corpus_commit *c1 = &k1, *c2 = &k2, *c3 = &k3;
    const step in_order[] = {{c1, NULL, NULL, ES_ATP_AUDIT_OK},
                             {c2, NULL, NULL, ES_ATP_AUDIT_OK},
                             {c3, NULL, NULL, ES_ATP_AUDIT_OK}};
    run_chain(in_order, 3, true);
    /* A commit missing from the history: the next one's since and prevData
     * name a rev and a root the audit never saw. */
    const step gap[] = {{c1, NULL, NULL, ES_ATP_AUDIT_OK},
                        {c3, NULL, NULL, ES_ATP_AUDIT_SINCE_MISMATCH}};
    run_chain(gap, 2, true);
    /* Backwards, and the same commit twice (a replay): the rev is not newer;
     * the chain stays at the newest, so what follows it still links. */
    const step backwards[] = {{c2, NULL, NULL, ES_ATP_AUDIT_OK},
                              {c1, NULL, NULL, ES_ATP_AUDIT_REV_ORDER}};
    run_chain(backwards, 2, true);
    const step twice[] = {{c1, NULL, NULL, ES_ATP_AUDIT_OK},
                          {c1, NULL, NULL, ES_ATP_AUDIT_REV_ORDER},
                          {c2, NULL, NULL, ES_ATP_AUDIT_OK}};
    run_chain(twice, 3, true);
    /* since and prevData are the frame's, not signed: only the chain shows
     * them forged. */
    const step since[] = {{c1, NULL, NULL, ES_ATP_AUDIT_OK},
                          {c2, "2222222222222", NULL, ES_ATP_AUDIT_SINCE_MISMATCH}};
    run_chain(since, 2, true);
    const step prevdata[] = {{c1, NULL, NULL, ES_ATP_AUDIT_OK},
                             {c2, NULL, c3->data, ES_ATP_AUDIT_PREV_DATA_MISMATCH},
                             {c3, NULL, NULL, ES_ATP_AUDIT_OK}};
    run_chain(prevdata, 3, true);
    /* The first commit met starts the chain, whatever its since. */
    const step alone[] = {{c2, NULL, NULL, ES_ATP_AUDIT_OK}, {c3, NULL, NULL, ES_ATP_AUDIT_OK}};
    run_chain(alone, 2, true);
    /* A resync's snapshot has no since or prevData: the chain restarts at it
     * (where a live commit after the same gap is since_mismatch, above); its
     * batches repeat it; only an older rev is refused. */
    const step resync[] = {{c1, NULL, NULL, ES_ATP_AUDIT_OK},
                           {c3, NULL, NULL, ES_ATP_AUDIT_OK},
                           {c3, NULL, NULL, ES_ATP_AUDIT_OK},
                           {c2, NULL, NULL, ES_ATP_AUDIT_REV_ORDER}};
    const bool snapshots[] = {false, true, true, true};
    run_chain_snapshots(resync, snapshots, 4, true);
    /* no_chain: signatures and CIDs only. */
    const step unchained[] = {{c3, NULL, NULL, ES_ATP_AUDIT_OK}, {c1, NULL, NULL, ES_ATP_AUDIT_OK}};
    run_chain(unchained, 2, false);
    /* Signed by another key: the same fields fail the signature. */
    corpus_commit forged = k2;
    corpus_fields(&forged);
    forged.sig[5] = forged.sig[5] == 'Q' ? 'R' : 'Q';
    const step bad_sig[] = {{c1, NULL, NULL, ES_ATP_AUDIT_OK},
                            {&forged, NULL, NULL, ES_ATP_AUDIT_SIGNATURE}};
    run_chain(bad_sig, 2, true);
    signer_stop();
}

/* ---- the API ---------------------------------------------------------------- */

static void names_and_arguments(void **state)
{
    (void)state;
    static const char *const names[ES_ATP_AUDIT_REASON_COUNT] = {"ok",
                                                                 "no_audit_metadata",
                                                                 "no_key",
                                                                 "signature",
                                                                 "commit_cid_mismatch",
                                                                 "rev_order",
                                                                 "since_mismatch",
                                                                 "prev_data_mismatch"};
    for (int i = 0; i < ES_ATP_AUDIT_REASON_COUNT; i++)
        assert_string_equal(es_atp_audit_reason_name((es_atp_audit_reason)i), names[i]);
    assert_string_equal(es_atp_audit_reason_name((es_atp_audit_reason)99), "?");

    es_atp_audit *a = NULL;
    assert_int_equal(es_atp_audit_create(NULL, &a), ES_OK);
    es_atp_audit_result r;
    bool ready = true;
    assert_int_equal(es_atp_audit_finish(a, &r, &ready), ES_OK);
    assert_false(ready);
    assert_int_equal(es_atp_audit_check(a, NULL, &r), ES_ERR_INVALID);
    assert_int_equal(es_atp_audit_add_did_doc(a, "{}", 2), ES_ERR_DECODE);
    assert_int_equal(es_atp_audit_load_did_docs(a, "/nonexistent/did_docs.json", NULL), ES_ERR_IO);
    es_buf b = ES_BUF_INIT;
    uint8_t cid[ES_CID_SHA256_LEN];
    es_atp_audit_commit c = {
        .did = "did:plc:x", .rev = "2222222222222", .data = "bnot-a-cid", .sig = "AA"};
    assert_int_equal(es_atp_audit_rebuild(&c, &b, cid), ES_ERR_DECODE);
    c.data = NULL;
    assert_int_equal(es_atp_audit_rebuild(&c, &b, cid), ES_ERR_INVALID);
    es_buf_free(&b);

    /* A repository bound: the second one is refused. */
    es_atp_audit_destroy(a);
    es_atp_audit_options o;
    es_atp_audit_options_init(&o);
    o.max_dids = 1;
    assert_int_equal(es_atp_audit_create(&o, &a), ES_OK);
    c = (es_atp_audit_commit){.did = "did:plc:one", .rev = "2222222222222"};
    assert_int_equal(es_atp_audit_check(a, &c, &r), ES_OK);
    assert_int_equal(r.reason, ES_ATP_AUDIT_NO_AUDIT_METADATA);
    c.did = "did:plc:two";
    assert_int_equal(es_atp_audit_check(a, &c, &r), ES_ERR_LIMIT);
    es_atp_audit_destroy(a);
    es_atp_audit_destroy(NULL);
}

/* ---- out of memory ------------------------------------------------------------ */

typedef struct oom_ctx {
    corpus_commit k1, k2;
} oom_ctx;

/* An audit's whole life under a failing allocator: a running-out of memory
 * is ES_ERR_NOMEM, never a verdict (a key that could not be parsed for want
 * of memory is not "no_key"). */
static es_status oom_op(void *ctx)
{
    oom_ctx *o = ctx;
    es_atp_audit *a = NULL;
    es_status s = es_atp_audit_create(NULL, &a);
    const char *doc = chain_did_doc();
    if (s == ES_OK)
        s = es_atp_audit_add_did_doc(a, doc, strlen(doc));
    es_atp_audit_result r;
    const corpus_commit *k[] = {&o->k1, &o->k2};
    for (size_t i = 0; i < 2 && s == ES_OK; i++) {
        corpus_commit c = *k[i];
        corpus_fields(&c);
        s = es_atp_audit_check(a, &c.fields, &r);
        if (s == ES_OK && r.reason != ES_ATP_AUDIT_OK)
            s = es_error(ES_ERR_PROTOCOL, "commit %zu: %s", i, es_atp_audit_reason_name(r.reason));
    }
    es_buf block = ES_BUF_INIT;
    uint8_t cid[ES_CID_SHA256_LEN];
    if (s == ES_OK)
        s = es_atp_audit_rebuild(&o->k1.fields, &block, cid);
    es_buf_free(&block);
    es_atp_audit_destroy(a);
    return s;
}

static void out_of_memory(void **state)
{
    (void)state;
    static oom_ctx o;
    signer_start();
    chain_commit(&o.k1, "3lbaaaaaaaa22", NULL);
    chain_commit(&o.k2, "3lbaaaaaaab22", &o.k1);
    corpus_fields(&o.k1);
    failalloc_expect_nomem(oom_op, &o, 5);
    signer_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_commit_rebuilds_and_verifies),
        cmocka_unit_test(check_rate),
        cmocka_unit_test(tampered_fields_give_their_reason),
        cmocka_unit_test(chains_are_followed),
        cmocka_unit_test(names_and_arguments),
        cmocka_unit_test(out_of_memory),
    };
    failalloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
