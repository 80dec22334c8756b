/* Per-repository chain state (es/atproto_repos.h) against a live server
 * (NATS_URL; skipped without one): states round trip, writes compare and
 * set on the KV revision, odd DIDs get keys (reversible when they can,
 * hashed when they cannot) and a value that is not a state is refused with
 * a clear error, never read as one. */
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

#include <es/es.h>
#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/checkpoint.h>
#include <es/cid.h>

#include "live.h"

typedef struct ctx {
    live_store live;
    es_atp_repos *repos;
} ctx;

static int setup(void **state)
{
    static ctx c;
    *state = NULL;
    int made = live_store_create(&c.live, "repos_t");
    if (made <= 0)
        return made;
    if (es_atp_repos_open(c.live.store, &c.repos) != ES_OK)
        return -1;
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c != NULL) {
        es_atp_repos_destroy(c->repos);
        live_store_destroy(&c->live);
    }
    return 0;
}

/* A state with every field set. */
static void full_state(es_atp_repo_state *st, const char *rev)
{
    es_atp_repo_state_init(st);
    snprintf(st->rev, sizeof st->rev, "%s", rev);
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, rev, strlen(rev), st->data), ES_OK);
    st->data_len = ES_CID_SHA256_LEN;
    snprintf(st->status, sizeof st->status, "takendown");
    st->desynced = true;
    snprintf(st->reason, sizeof st->reason, "chain_break");
    st->desync_seq = 4242;
    st->position = 99;
    st->seq = 31527015471ULL;
}

static void assert_same(const es_atp_repo_state *a, const es_atp_repo_state *b)
{
    assert_string_equal(a->rev, b->rev);
    assert_int_equal(a->data_len, b->data_len);
    assert_memory_equal(a->data, b->data, a->data_len);
    assert_string_equal(a->status, b->status);
    assert_int_equal(a->desynced, b->desynced);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->desync_seq, b->desync_seq);
    assert_int_equal(a->position, b->position);
    assert_int_equal(a->seq, b->seq);
}

static void put_get(ctx *c, const char *did, size_t len, const char *rev)
{
    es_atp_repo_state in, out;
    full_state(&in, rev);
    assert_int_equal(es_atp_repos_get(c->repos, did, len, &out), ES_ERR_NOT_FOUND);
    uint64_t revision = 0;
    assert_int_equal(es_atp_repos_put(c->repos, did, len, &in, ES_ATP_REPO_NEW, &revision), ES_OK);
    assert_true(revision > 0);
    assert_int_equal(es_atp_repos_get(c->repos, did, len, &out), ES_OK);
    assert_same(&in, &out);
    assert_int_equal(out.revision, revision);
    assert_true(out.updated_ns > 0);
}

static void a_state_round_trips(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    const char *did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    put_get(c, did, strlen(did), "3jzfcijpj2z2a");
    char key[ES_ATP_REPO_KEY_MAX + 1];
    assert_int_equal(es_atp_repo_key(did, strlen(did), key), ES_OK);
    assert_string_equal(key, "did/plc/ewvi7nxzyoun6zhxrhs64oiz");
    /* A state with nothing set reads back as active, no rev, no data. */
    const char *fresh = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    es_atp_repo_state st, out;
    es_atp_repo_state_init(&st);
    assert_int_equal(es_atp_repos_put(c->repos, fresh, strlen(fresh), &st, ES_ATP_REPO_NEW, NULL),
                     ES_OK);
    assert_int_equal(es_atp_repos_get(c->repos, fresh, strlen(fresh), &out), ES_OK);
    assert_true(es_atp_repo_active(&out));
    assert_string_equal(out.rev, "");
    assert_int_equal(out.data_len, 0);
    assert_false(out.desynced);
}

static void a_stale_writer_gets_a_conflict(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    const char *did = "did:plc:cas0000000000000000000000";
    es_atp_repo_state st, got;
    full_state(&st, "3jzfcijpj2z2a");
    uint64_t r1 = 0, r2 = 0;
    assert_int_equal(es_atp_repos_put(c->repos, did, strlen(did), &st, ES_ATP_REPO_NEW, &r1),
                     ES_OK);
    /* NEW again: it exists */
    assert_int_equal(es_atp_repos_put(c->repos, did, strlen(did), &st, ES_ATP_REPO_NEW, NULL),
                     ES_ERR_CONFLICT);
    snprintf(st.rev, sizeof st.rev, "3jzfcijpj2z2b");
    assert_int_equal(es_atp_repos_put(c->repos, did, strlen(did), &st, r1, &r2), ES_OK);
    /* r1 is stale now */
    snprintf(st.rev, sizeof st.rev, "3jzfcijpj2z2c");
    assert_int_equal(es_atp_repos_put(c->repos, did, strlen(did), &st, r1, NULL), ES_ERR_CONFLICT);
    assert_int_equal(es_atp_repos_get(c->repos, did, strlen(did), &got), ES_OK);
    assert_string_equal(got.rev, "3jzfcijpj2z2b");
    assert_int_equal(got.revision, r2);
}

static void odd_dids_get_keys(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    char key[ES_ATP_REPO_KEY_MAX + 1];
    /* did:web with a port: '%' -> '=' */
    const char *web = "did:web:localhost%3A8080";
    assert_int_equal(es_atp_repo_key(web, strlen(web), key), ES_OK);
    assert_string_equal(key, "did/web/localhost=3A8080");
    put_get(c, web, strlen(web), "3jzfcijpj2z2a");
    /* an empty dot-separated token, a trailing dot: hashed keys */
    const char *dots = "did:web:a..b", *trailing = "did:web:example.com.";
    assert_true(es_atp_valid_did(dots, strlen(dots)));
    assert_true(es_atp_valid_did(trailing, strlen(trailing)));
    assert_int_equal(es_atp_repo_key(dots, strlen(dots), key), ES_OK);
    assert_memory_equal(key, "cid/b", 5);
    put_get(c, dots, strlen(dots), "3jzfcijpj2z2d");
    put_get(c, trailing, strlen(trailing), "3jzfcijpj2z2e");
    /* the longest DID (2,048 bytes) */
    static char longest[2049];
    memset(longest, 'a', 2048);
    memcpy(longest, "did:plc:", 8);
    assert_true(es_atp_valid_did(longest, 2048));
    assert_int_equal(es_atp_repo_key(longest, 2048, key), ES_OK);
    assert_memory_equal(key, "cid/b", 5);
    put_get(c, longest, 2048, "3jzfcijpj2z2f");
    /* not a DID */
    assert_int_equal(es_atp_repo_key("plc:abc", 7, key), ES_ERR_INVALID);
    es_atp_repo_state st;
    es_atp_repo_state_init(&st);
    assert_int_equal(es_atp_repos_put(c->repos, "x", 1, &st, ES_ATP_REPO_ANY, NULL),
                     ES_ERR_INVALID);
}

/* Writes raw checkpoint data under the key of `did`. */
static void put_raw(ctx *c, const char *did, const char *json)
{
    es_checkpoints *cps = NULL;
    assert_int_equal(es_checkpoints_open_bucket(c->live.store, ES_CHECKPOINTS_REPOS, &cps), ES_OK);
    char key[ES_ATP_REPO_KEY_MAX + 1];
    assert_int_equal(es_atp_repo_key(did, strlen(did), key), ES_OK);
    assert_int_equal(es_checkpoint_set(cps, key, 1, json, ES_CHECKPOINT_ANY, NULL), ES_OK);
    es_checkpoints_destroy(cps);
}

static void expect_refused(ctx *c, const char *did, const char *json, es_status want,
                           const char *text)
{
    put_raw(c, did, json);
    es_atp_repo_state st;
    assert_int_equal(es_atp_repos_get(c->repos, did, strlen(did), &st), want);
    if (strstr(es_last_error(), text) == NULL)
        fail_msg("error '%s' does not say '%s'", es_last_error(), text);
}

static void a_corrupt_value_is_refused(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    const char *did = "did:plc:corrupt00000000000000000";
    expect_refused(c, did, "[1,2]", ES_ERR_DECODE, "not a JSON object");
    expect_refused(c, did, "{\"v\":2,\"did\":\"did:plc:corrupt00000000000000000\"}", ES_ERR_DECODE,
                   "not version 1");
    expect_refused(c, did, "{\"v\":1}", ES_ERR_DECODE, "no valid did");
    expect_refused(c, did, "{\"v\":1,\"did\":\"did:plc:corrupt00000000000000000\",\"rev\":7}",
                   ES_ERR_DECODE, "string field");
    expect_refused(c, did,
                   "{\"v\":1,\"did\":\"did:plc:corrupt00000000000000000\",\"rev\":"
                   "\"0123456789abcdefXX\"}",
                   ES_ERR_DECODE, "too long");
    expect_refused(c, did,
                   "{\"v\":1,\"did\":\"did:plc:corrupt00000000000000000\",\"data\":\"bnotacid\"}",
                   ES_ERR_DECODE, "not a CID");
    expect_refused(c, did,
                   "{\"v\":1,\"did\":\"did:plc:corrupt00000000000000000\",\"desynced\":\"yes\"}",
                   ES_ERR_DECODE, "wrong type");
    expect_refused(c, did, "{\"v\":1,\"did\":\"did:plc:corrupt00000000000000000\",\"seq\":-1}",
                   ES_ERR_DECODE, "wrong type");
    /* Another DID's state under this DID's key (what a hash collision
     * would look like) is not this DID's state. */
    expect_refused(c, did, "{\"v\":1,\"did\":\"did:plc:someoneelse000000000000\"}", ES_ERR_CONFLICT,
                   "another DID");
}

typedef struct seen {
    size_t count;
    bool longest, web;
} seen;

static es_status on_repo(const char *did, size_t len, const es_atp_repo_state *st, void *closure)
{
    seen *s = closure;
    s->count++;
    if (len == 2048)
        s->longest = strcmp(st->rev, "3jzfcijpj2z2f") == 0;
    if (len == strlen("did:web:localhost%3A8080") &&
        memcmp(did, "did:web:localhost%3A8080", len) == 0)
        s->web = true;
    return ES_OK;
}

static void listing_sees_every_repo(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    seen s = {0};
    size_t skipped = 0;
    assert_int_equal(es_atp_repos_list(c->repos, on_repo, &s, &skipped), ES_OK);
    /* the earlier tests wrote 7 good states and left one key holding another DID's */
    assert_int_equal(s.count, 8);
    assert_int_equal(skipped, 0);
    assert_true(s.longest);
    assert_true(s.web);
}

typedef struct bucket_seen {
    char want[64];
    bool found;
    uint64_t values;
} bucket_seen;

static es_status on_bucket(const es_bucket_info *b, void *closure)
{
    bucket_seen *s = closure;
    if (strcmp(b->bucket, s->want) == 0 && strcmp(b->kind, "repos") == 0) {
        s->found = true;
        s->values = b->values;
    }
    return ES_OK;
}

/* The states live in the store's own bucket ES_<store>_repos, one value
 * per repository (no history kept). */
static void the_bucket_is_the_stores(void **state)
{
    LIVE_SKIP_WITHOUT_SERVER();
    ctx *c = *state;
    bucket_seen s = {.found = false};
    snprintf(s.want, sizeof s.want, "ES_%s_repos", c->live.name);
    assert_int_equal(es_store_buckets(c->live.store, on_bucket, &s), ES_OK);
    assert_true(s.found);
    assert_int_equal(s.values, 8); /* the CAS test wrote its repository twice */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_state_round_trips),     cmocka_unit_test(a_stale_writer_gets_a_conflict),
        cmocka_unit_test(odd_dids_get_keys),       cmocka_unit_test(a_corrupt_value_is_refused),
        cmocka_unit_test(listing_sees_every_repo), cmocka_unit_test(the_bucket_is_the_stores),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
