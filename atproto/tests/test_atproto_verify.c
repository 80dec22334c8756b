/* A verifying decoder (es_atp_options.identity) over the real relay capture:
 * every commit's signature verifies and every commit inverts, the chain
 * fields and the audit metadata are set; then frames forged from the real
 * ones, each hash-consistent (a plain decoder accepts them all), are each
 * refused with their reason and no events. Key rotation goes through a PLC
 * stand-in on loopback (http_standin.h). */
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
#include <zstd.h>

#include <es/atproto.h>
#include <es/base.h>
#include <es/cbor.h>
#include <es/cid.h>

#include "fixtures.h"
#include "frame_edit.h"
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

/* The first corpus commit whose ops include `action` (NULL: any) and whose
 * op count is `ops` (0: any). */
static const sample *real_commit(const char *action, size_t ops)
{
    for (size_t i = 0; i < corpus_count; i++) {
        edit e;
        edit_open(&e, &corpus[i]);
        const es_value *t = es_value_get(e.header, "t");
        bool found = false;
        if (t != NULL && es_value_is_string(t, "#commit")) {
            const es_value *list = es_value_get(e.body, "ops");
            for (size_t k = 0; k < list->u.array.count; k++)
                found |= action == NULL ||
                         es_value_is_string(es_value_get(&list->u.array.items[k], "action"), action);
            found &= ops == 0 || list->u.array.count == ops;
        }
        es_arena_destroy(e.a);
        if (found)
            return &corpus[i];
    }
    fail_msg("no corpus commit with a %s op", action ? action : "any");
    return NULL;
}

/* The frame's commit block, decoded (copied) into the edit's arena. */
static es_value *commit_block(edit *e, es_car *car)
{
    parse_blocks(e, car);
    es_car_block *b = es_car_find(car, car->roots[0], car->root_lens[0]);
    assert_non_null(b);
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    o.copy = true;
    es_value *c;
    size_t used;
    assert_int_equal(es_cbor_decode(b->data, b->len, &o, e->a, &c, &used), ES_OK);
    return c;
}

/* Puts the (edited) commit block `c` in place of the frame's: a new CID in
 * the frame's `commit`, the CAR's root and its block. Hashes stay consistent. */
static void replace_commit(edit *e, const es_car *car, const es_value *c)
{
    es_buf block = ES_BUF_INIT;
    assert_int_equal(es_cbor_encode(c, NULL, &block), ES_OK);
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, block.data, block.len, cid), ES_OK);
    *slot(e->body, "blocks") = car_value(e, car, car->roots[0], cid, cid, &block);
    es_value *link = slot(e->body, "commit");
    *link = *es_value_new_bytes(e->a, cid, sizeof cid);
    link->kind = ES_VALUE_LINK;
    es_buf_free(&block);
}

/* The forged frame is accepted by a plain decoder (it is hash-consistent:
 * only verification can tell) and refused as `kind`, with no events, by a
 * verifying one. Frees the frame. */
static void expect_refused(sample forged, es_atp_error kind)
{
    es_atp_decoder *plain = NULL;
    es_arena *a = NULL;
    es_atp_batch b;
    assert_int_equal(es_atp_decoder_create(NULL, &plain), ES_OK);
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    if (es_atp_decode(plain, forged.bytes, forged.len, a, &b) != ES_OK)
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

/* Sets the commit block's `sig` to `len` bytes of `sig`, or removes it (NULL). */
static sample with_signature(const sample *base, const uint8_t *sig, size_t len)
{
    edit e;
    es_car car;
    edit_open(&e, base);
    es_value *c = commit_block(&e, &car);
    es_value *s = slot(c, "sig");
    if (sig != NULL) {
        *s = *es_value_new_bytes(e.a, sig, len);
    } else { /* drop the entry */
        size_t at = (size_t)((es_value_entry *)((char *)s - offsetof(es_value_entry, value)) -
                             c->u.map.entries);
        memmove(&c->u.map.entries[at], &c->u.map.entries[at + 1],
                (c->u.map.count - at - 1) * sizeof *c->u.map.entries);
        c->u.map.count--;
        assert_null(es_value_get(c, "sig"));
    }
    replace_commit(&e, &car, c);
    return edit_close(&e);
}

static void garbage_signature(void **state)
{
    (void)state;
    need_corpus();
    uint8_t sig[64];
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (uint8_t)(i * 37 + 11);
    sig[32] = 0x10; /* low S: refused for not verifying, not for its form */
    expect_refused(with_signature(real_commit(NULL, 0), sig, sizeof sig), ES_ATP_ERR_SIGNATURE);
}

static void missing_signature(void **state)
{
    (void)state;
    need_corpus();
    expect_refused(with_signature(real_commit(NULL, 0), NULL, 0), ES_ATP_ERR_SIGNATURE);
}

/* One user's commit re-labelled as another's DID: the frame's repo and the
 * commit's did both changed, so every hash holds, but the other repo's key
 * did not sign it. */
static void relabelled_did(void **state)
{
    (void)state;
    need_corpus();
    const sample *base = real_commit(NULL, 0), *other = NULL;
    edit e, o;
    edit_open(&e, base);
    for (size_t i = 0; i < corpus_count && other == NULL; i++) {
        edit_open(&o, &corpus[i]);
        const es_value *repo = es_value_get(o.body, "repo");
        if (repo != NULL && !es_value_equal(repo, es_value_get(e.body, "repo")))
            other = &corpus[i];
        else
            es_arena_destroy(o.a);
    }
    assert_non_null(other);
    const es_value *did = es_value_get(o.body, "repo");
    es_car car;
    es_value *c = commit_block(&e, &car);
    *slot(c, "did") = *es_value_new_string(e.a, did->u.str.ptr, did->u.str.len);
    *slot(e.body, "repo") = *es_value_new_string(e.a, did->u.str.ptr, did->u.str.len);
    es_arena_destroy(o.a);
    replace_commit(&e, &car, c);
    expect_refused(edit_close(&e), ES_ATP_ERR_SIGNATURE);
}

/* A record rewritten, its CID recomputed and its block added; the op points
 * at it. The signed tree (untouched) holds the original CID. */
static void rewritten_record(void **state)
{
    (void)state;
    need_corpus();
    edit e;
    es_car car;
    edit_open(&e, real_commit("create", 1));
    parse_blocks(&e, &car);
    es_value *op = op_at(&e, 0);
    es_value *cid = slot(op, "cid");
    es_car_block *b = es_car_find(&car, cid->u.bytes.ptr, cid->u.bytes.len);
    assert_non_null(b);
    es_buf forged = ES_BUF_INIT;
    es_value *text = es_value_new_map(e.a, 2);
    text->u.map.entries[0] = (es_value_entry){"$type", 5, str_value(&e, "app.bsky.feed.post")};
    text->u.map.entries[1] = (es_value_entry){"text", 4, str_value(&e, "words never written")};
    assert_int_equal(es_cbor_encode(text, NULL, &forged), ES_OK);
    uint8_t new_cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, forged.data, forged.len, new_cid), ES_OK);
    *slot(e.body, "blocks") = car_value(&e, &car, NULL, NULL, new_cid, &forged);
    *cid = *es_value_new_bytes(e.a, new_cid, sizeof new_cid);
    cid->kind = ES_VALUE_LINK;
    es_buf_free(&forged);
    expect_refused(edit_close(&e), ES_ATP_ERR_OP_MISMATCH);
}

/* A key the signed tree holds besides the op's: the first key of an MST
 * node of the CAR (its first entry elides no prefix), and its value. */
static void other_key(edit *e, const es_car *car, const es_value *op, es_value *key, es_value *value)
{
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    o.copy = true;
    for (size_t i = 0; i < car->count; i++) {
        es_value *node;
        size_t used;
        if (es_cbor_decode(car->blocks[i].data, car->blocks[i].len, &o, e->a, &node, &used) != ES_OK)
            continue;
        const es_value *entries = node->kind == ES_VALUE_MAP ? es_value_get(node, "e") : NULL;
        if (entries == NULL || entries->kind != ES_VALUE_ARRAY || entries->u.array.count == 0)
            continue;
        const es_value *k = es_value_get(&entries->u.array.items[0], "k");
        const es_value *path = es_value_get(op, "path");
        if (k->u.bytes.len == path->u.str.len && memcmp(k->u.bytes.ptr, path->u.str.ptr, k->u.bytes.len) == 0)
            continue;
        *key = *es_value_new_string(e->a, (const char *)k->u.bytes.ptr, k->u.bytes.len);
        *value = *es_value_get(&entries->u.array.items[0], "v");
        return;
    }
    fail_msg("no other key in the commit's MST nodes");
}

/* A delete op appended that the signed tree never made: the record it
 * claims to delete is still in the signed tree. */
static void invented_delete(void **state)
{
    (void)state;
    need_corpus();
    edit e;
    es_car car;
    edit_open(&e, real_commit("create", 1));
    parse_blocks(&e, &car);
    es_value path, prev;
    other_key(&e, &car, op_at(&e, 0), &path, &prev);
    es_value *ops = slot(e.body, "ops");
    es_value *grown = es_value_new_array(e.a, 2);
    grown->u.array.items[0] = ops->u.array.items[0];
    es_value *del = es_value_new_map(e.a, 4);
    del->u.map.entries[0] = (es_value_entry){"cid", 3, *es_value_new_null(e.a)};
    del->u.map.entries[1] = (es_value_entry){"path", 4, path};
    del->u.map.entries[2] = (es_value_entry){"prev", 4, prev};
    del->u.map.entries[3] = (es_value_entry){"action", 6, str_value(&e, "delete")};
    grown->u.array.items[1] = *del;
    *ops = *grown;
    expect_refused(edit_close(&e), ES_ATP_ERR_OP_MISMATCH);
}

/* Every MST node dropped from the CAR: the commit and records remain, so a
 * plain decoder maps the ops; inversion cannot walk the tree. */
static void mst_blocks_removed(void **state)
{
    (void)state;
    need_corpus();
    edit e;
    es_car car;
    edit_open(&e, real_commit("create", 1));
    parse_blocks(&e, &car);
    const es_value *data = es_value_get(commit_block(&e, &car), "data");
    *slot(e.body, "blocks") = car_value(&e, &car, data->u.bytes.ptr, NULL, NULL, NULL);
    expect_refused(edit_close(&e), ES_ATP_ERR_MISSING_BLOCK);
}

/* prevData replaced by another CID (here the new root itself). */
static void bogus_prev_data(void **state)
{
    (void)state;
    need_corpus();
    edit e;
    es_car car;
    edit_open(&e, real_commit(NULL, 0));
    es_value *c = commit_block(&e, &car);
    *slot(e.body, "prevData") = *es_value_get(c, "data");
    expect_refused(edit_close(&e), ES_ATP_ERR_PREV_DATA);
}

static void missing_prev_data(void **state)
{
    (void)state;
    need_corpus();
    edit e;
    edit_open(&e, real_commit(NULL, 0));
    *slot(e.body, "prevData") = *es_value_new_null(e.a);
    expect_refused(edit_close(&e), ES_ATP_ERR_NO_PREV_DATA);
}

/* The ops of an update and of a delete lose their `prev`. */
static void ops_lose_prev(const char *action)
{
    edit e;
    const sample *base = real_commit(action, 0);
    edit_open(&e, base);
    es_value *ops = slot(e.body, "ops");
    for (size_t i = 0; i < ops->u.array.count; i++)
        if (es_value_is_string(es_value_get(&ops->u.array.items[i], "action"), action))
            *slot(&ops->u.array.items[i], "prev") = *es_value_new_null(e.a);
    expect_refused(edit_close(&e), ES_ATP_ERR_OP_PREV);
}

static void update_without_prev(void **state)
{
    (void)state;
    need_corpus();
    ops_lose_prev("update");
}

static void delete_without_prev(void **state)
{
    (void)state;
    need_corpus();
    ops_lose_prev("delete");
}

/* A rev in 2100, in the frame and in the commit block alike. */
static void future_rev(void **state)
{
    (void)state;
    need_corpus();
    edit e;
    es_car car;
    edit_open(&e, real_commit(NULL, 0));
    es_value *c = commit_block(&e, &car);
    const char *rev = "3zzzzzzzzzzzz"; /* far beyond any clock's now */
    *slot(c, "rev") = str_value(&e, rev);
    *slot(e.body, "rev") = str_value(&e, rev);
    replace_commit(&e, &car, c);
    expect_refused(edit_close(&e), ES_ATP_ERR_FUTURE_REV);
}

/* A #sync built from a real commit: the CAR holds the signed commit block
 * alone. With its signature it is accepted; with the signature zeroed, not. */
static sample sync_of(const sample *base, bool zero_sig)
{
    edit e;
    es_car car;
    edit_open(&e, base);
    es_value *c = commit_block(&e, &car);
    if (zero_sig) {
        uint8_t zero[64] = {0};
        *slot(c, "sig") = *es_value_new_bytes(e.a, zero, sizeof zero);
    }
    es_buf block = ES_BUF_INIT;
    assert_int_equal(es_cbor_encode(c, NULL, &block), ES_OK);
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, block.data, block.len, cid), ES_OK);
    es_car only = {0}; /* a CAR with no block but the commit */
    es_value *body = es_value_new_map(e.a, 5);
    body->u.map.entries[0] = (es_value_entry){"did", 3, *es_value_get(e.body, "repo")};
    body->u.map.entries[1] = (es_value_entry){"rev", 3, *es_value_get(e.body, "rev")};
    body->u.map.entries[2] = (es_value_entry){"seq", 3, *es_value_get(e.body, "seq")};
    body->u.map.entries[3] = (es_value_entry){"time", 4, *es_value_get(e.body, "time")};
    body->u.map.entries[4] = (es_value_entry){"blocks", 6, car_value(&e, &only, NULL, cid, cid, &block)};
    e.body = body;
    *slot(e.header, "t") = str_value(&e, "#sync");
    es_buf_free(&block);
    return edit_close(&e);
}

static void sync_signatures(void **state)
{
    (void)state;
    need_corpus();
    sample good = sync_of(real_commit(NULL, 0), false);
    verifier v;
    verifier_open(&v, closed_plc, docs_path);
    es_atp_batch b;
    if (decode(&v, &good, &b) != ES_OK)
        fail_msg("a real signed commit as #sync: %s", es_last_error());
    assert_int_equal(b.kind, ES_ATP_KIND_SYNC);
    assert_int_equal(b.count, 1);
    verifier_close(&v);
    free(good.bytes);
    expect_refused(sync_of(real_commit(NULL, 0), true), ES_ATP_ERR_SIGNATURE);
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

/* #identity: an invalid handle is refused; a valid one drops the DID's
 * cached document (its key may have changed). */
static void identity_events(void **state)
{
    (void)state;
    need_corpus();
    const sample *real = NULL;
    for (size_t i = 0; i < corpus_count && real == NULL; i++) {
        edit e;
        edit_open(&e, &corpus[i]);
        if (es_value_is_string(es_value_get(e.header, "t"), "#identity"))
            real = &corpus[i];
        es_arena_destroy(e.a);
    }
    assert_non_null(real);
    edit e;
    edit_open(&e, real);
    es_value *body = es_value_new_map(e.a, e.body->u.map.count + 1);
    memcpy(body->u.map.entries, e.body->u.map.entries,
           e.body->u.map.count * sizeof *body->u.map.entries);
    body->u.map.entries[e.body->u.map.count] =
        (es_value_entry){"handle", 6, str_value(&e, "not a handle")};
    e.body = body;
    sample bad = edit_close(&e);
    verifier v;
    verifier_open(&v, closed_plc, docs_path);
    es_atp_batch b;
    assert_int_equal(decode(&v, &bad, &b), ES_ERR_DECODE);
    assert_int_equal(b.error, ES_ATP_ERR_SYNTAX);
    assert_int_equal(b.count, 0);
    free(bad.bytes);
    verifier_close(&v);
    /* a document cached for the event's DID is dropped by the event */
    edit_open(&e, real);
    const es_value *did = es_value_get(e.body, "did");
    json_t *doc = json_pack("{s:s#}", "id", did->u.str.ptr, (int)did->u.str.len);
    es_arena_destroy(e.a);
    verifier_open(&v, closed_plc, seed_file(doc));
    es_atp_identity_stats st;
    es_atp_identity_stats_get(v.id, &st);
    assert_int_equal(st.cached, 1);
    assert_int_equal(decode(&v, real, &b), ES_OK);
    assert_int_equal(b.count, 1);
    es_atp_identity_stats_get(v.id, &st);
    assert_int_equal(st.cached, 0);
    verifier_close(&v);
}

/* ---- key rotation through a PLC stand-in --------------------------------- */

static json_t *corpus_docs(void)
{
    size_t zlen = 0;
    unsigned char *z = read_whole_file(docs_path, &zlen);
    assert_non_null(z);
    size_t n = (size_t)ZSTD_getFrameContentSize(z, zlen);
    char *text = malloc(n);
    assert_int_equal(ZSTD_decompress(text, n, z, zlen), n);
    json_t *all = json_loadb(text, n, 0, NULL);
    assert_non_null(all);
    free(text);
    free(z);
    return all;
}

static void key_rotation(void **state)
{
    (void)state;
    need_corpus();
    json_t *all = corpus_docs();
    const sample *frame = real_commit(NULL, 0);
    edit e;
    edit_open(&e, frame);
    const es_value *repo = es_value_get(e.body, "repo");
    char did[256];
    snprintf(did, sizeof did, "%.*s", (int)repo->u.str.len, repo->u.str.ptr);
    es_arena_destroy(e.a);
    const char *other = NULL, *key;
    json_t *doc;
    json_object_foreach(all, key, doc) if (strcmp(key, did) != 0) other = key;
    assert_non_null(other);
    standin plc;
    assert_int_equal(standin_start(&plc), 0);
    char url[64], route[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", plc.port);
    snprintf(route, sizeof route, "/%s", did);
    char *current = json_dumps(json_object_get(all, did), JSON_COMPACT);
    standin_route_set(&plc, route, 200, current, 0);
    /* the seeded key is stale; the directory has the rotated one */
    verifier v;
    verifier_open(&v, url, seed_file(doc_with_key(all, did, other)));
    es_atp_batch b;
    if (decode(&v, frame, &b) != ES_OK)
        fail_msg("not re-resolved after a rotation: %s", es_last_error());
    es_atp_identity_stats st;
    es_atp_identity_stats_get(v.id, &st);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(standin_requests(&plc), 1);
    assert_int_equal(decode(&v, frame, &b), ES_OK); /* the fresh key is cached now */
    assert_int_equal(standin_requests(&plc), 1);
    verifier_close(&v);
    /* the directory serves the stale key too: one fetch, then refused */
    json_t *wrong = doc_with_key(all, did, other);
    char *wrong_text = json_dumps(wrong, JSON_COMPACT);
    standin_route_set(&plc, route, 200, wrong_text, 0);
    verifier_open(&v, url, seed_file(doc_with_key(all, did, other)));
    assert_int_equal(decode(&v, frame, &b), ES_ERR_DECODE);
    assert_int_equal(b.error, ES_ATP_ERR_SIGNATURE);
    assert_int_equal(standin_requests(&plc), 2);
    verifier_close(&v);
    /* unseeded: resolved through the directory on first use */
    standin_route_set(&plc, route, 200, current, 0);
    verifier_open(&v, url, NULL);
    assert_int_equal(decode(&v, frame, &b), ES_OK);
    es_atp_identity_stats_get(v.id, &st);
    assert_int_equal(st.fetches, 1);
    verifier_close(&v);
    unlink(seed_file(doc_with_key(all, did, other)));
    free(wrong_text), free(current);
    json_decref(wrong);
    json_decref(all);
    standin_stop(&plc);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus_verifies),     cmocka_unit_test(no_identity_no_commits),
        cmocka_unit_test(garbage_signature),   cmocka_unit_test(missing_signature),
        cmocka_unit_test(relabelled_did),      cmocka_unit_test(rewritten_record),
        cmocka_unit_test(invented_delete),     cmocka_unit_test(mst_blocks_removed),
        cmocka_unit_test(bogus_prev_data),     cmocka_unit_test(missing_prev_data),
        cmocka_unit_test(update_without_prev), cmocka_unit_test(delete_without_prev),
        cmocka_unit_test(future_rev),          cmocka_unit_test(sync_signatures),
        cmocka_unit_test(identity_events),     cmocka_unit_test(key_rotation),
        cmocka_unit_test(api_edges),
    };
    return cmocka_run_group_tests(tests, load_corpus, free_corpus);
}
