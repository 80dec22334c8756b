/* Forgeries of real firehose frames (test helper of test_atproto_verify.c
 * and the ingester's end-to-end test): each keeps every hash consistent, so
 * only verification can tell. `frames` are real frames (the corpus); each
 * forge_* returns a new frame (the caller frees .bytes). Failures are
 * cmocka assertions: include after cmocka.h. */
#ifndef ES_ATP_TEST_FORGE_H
#define ES_ATP_TEST_FORGE_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "frame_edit.h"

/* The first corpus commit whose ops include `action` (NULL: any) and whose
 * op count is `ops` (0: any). */
static inline const sample *real_commit(const sample *frames, size_t n, const char *action,
                                        size_t ops)
{
    for (size_t i = 0; i < n; i++) {
        edit e;
        edit_open(&e, &frames[i]);
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
            return &frames[i];
    }
    fail_msg("no commit with a %s op", action ? action : "any");
    return NULL;
}

/* The frame's commit block, decoded (copied) into the edit's arena. */
static inline es_value *commit_block(edit *e, es_car *car)
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
static inline void replace_commit(edit *e, const es_car *car, const es_value *c)
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

/* Sets the commit block's `sig` to `len` bytes of `sig`, or removes it (NULL). */
static inline sample with_signature(const sample *base, const uint8_t *sig, size_t len)
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

static inline sample forge_garbage_signature(const sample *frames, size_t n)
{
    uint8_t sig[64];
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (uint8_t)(i * 37 + 11);
    sig[32] = 0x10; /* low S: refused for not verifying, not for its form */
    return with_signature(real_commit(frames, n, NULL, 0), sig, sizeof sig);
}

static inline sample forge_missing_signature(const sample *frames, size_t n)
{
    return with_signature(real_commit(frames, n, NULL, 0), NULL, 0);
}

/* One user's commit re-labelled as another's DID: the frame's repo and the
 * commit's did both changed, so every hash holds, but the other repo's key
 * did not sign it. */
static inline sample forge_relabelled_did(const sample *frames, size_t n)
{
    const sample *base = real_commit(frames, n, NULL, 0), *other = NULL;
    edit e, o;
    edit_open(&e, base);
    for (size_t i = 0; i < n && other == NULL; i++) {
        edit_open(&o, &frames[i]);
        const es_value *repo = es_value_get(o.body, "repo");
        if (repo != NULL && !es_value_equal(repo, es_value_get(e.body, "repo")))
            other = &frames[i];
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
    return edit_close(&e);
}

/* A record rewritten, its CID recomputed and its block added; the op points
 * at it. The signed tree (untouched) holds the original CID. */
static inline sample forge_rewritten_record(const sample *frames, size_t n)
{
    edit e;
    es_car car;
    edit_open(&e, real_commit(frames, n, "create", 1));
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
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, forged.data, forged.len, new_cid),
                     ES_OK);
    *slot(e.body, "blocks") = car_value(&e, &car, NULL, NULL, new_cid, &forged);
    *cid = *es_value_new_bytes(e.a, new_cid, sizeof new_cid);
    cid->kind = ES_VALUE_LINK;
    es_buf_free(&forged);
    return edit_close(&e);
}

/* A key the signed tree holds besides the op's: the first key of an MST
 * node of the CAR (its first entry elides no prefix), and its value. */
static inline void other_key(edit *e, const es_car *car, const es_value *op, es_value *key,
                             es_value *value)
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
        if (k->u.bytes.len == path->u.str.len &&
            memcmp(k->u.bytes.ptr, path->u.str.ptr, k->u.bytes.len) == 0)
            continue;
        *key = *es_value_new_string(e->a, (const char *)k->u.bytes.ptr, k->u.bytes.len);
        *value = *es_value_get(&entries->u.array.items[0], "v");
        return;
    }
    fail_msg("no other key in the commit's MST nodes");
}

/* A delete op appended that the signed tree never made: the record it
 * claims to delete is still in the signed tree. */
static inline sample forge_invented_delete(const sample *frames, size_t n)
{
    edit e;
    es_car car;
    edit_open(&e, real_commit(frames, n, "create", 1));
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
    return edit_close(&e);
}

/* Every MST node dropped from the CAR: the commit and records remain, so a
 * plain decoder maps the ops; inversion cannot walk the tree. */
static inline sample forge_mst_blocks_removed(const sample *frames, size_t n)
{
    edit e;
    es_car car;
    edit_open(&e, real_commit(frames, n, "create", 1));
    parse_blocks(&e, &car);
    const es_value *data = es_value_get(commit_block(&e, &car), "data");
    *slot(e.body, "blocks") = car_value(&e, &car, data->u.bytes.ptr, NULL, NULL, NULL);
    return edit_close(&e);
}

/* prevData replaced by another CID (here the new root itself). */
static inline sample forge_bogus_prev_data(const sample *frames, size_t n)
{
    edit e;
    es_car car;
    edit_open(&e, real_commit(frames, n, NULL, 0));
    es_value *c = commit_block(&e, &car);
    *slot(e.body, "prevData") = *es_value_get(c, "data");
    return edit_close(&e);
}

static inline sample forge_missing_prev_data(const sample *frames, size_t n)
{
    edit e;
    edit_open(&e, real_commit(frames, n, NULL, 0));
    *slot(e.body, "prevData") = *es_value_new_null(e.a);
    return edit_close(&e);
}

/* The ops of an update and of a delete lose their `prev`. */
static inline sample ops_lose_prev(const sample *frames, size_t n, const char *action)
{
    edit e;
    const sample *base = real_commit(frames, n, action, 0);
    edit_open(&e, base);
    es_value *ops = slot(e.body, "ops");
    for (size_t i = 0; i < ops->u.array.count; i++)
        if (es_value_is_string(es_value_get(&ops->u.array.items[i], "action"), action))
            *slot(&ops->u.array.items[i], "prev") = *es_value_new_null(e.a);
    return edit_close(&e);
}

static inline sample forge_update_without_prev(const sample *frames, size_t n)
{
    return ops_lose_prev(frames, n, "update");
}

static inline sample forge_delete_without_prev(const sample *frames, size_t n)
{
    return ops_lose_prev(frames, n, "delete");
}

/* A rev in 2100, in the frame and in the commit block alike. */
static inline sample forge_future_rev(const sample *frames, size_t n)
{
    edit e;
    es_car car;
    edit_open(&e, real_commit(frames, n, NULL, 0));
    es_value *c = commit_block(&e, &car);
    const char *rev = "3zzzzzzzzzzzz"; /* far beyond any clock's now */
    *slot(c, "rev") = str_value(&e, rev);
    *slot(e.body, "rev") = str_value(&e, rev);
    replace_commit(&e, &car, c);
    return edit_close(&e);
}

/* A #sync built from a real commit: the CAR holds the signed commit block
 * alone. With its signature it is accepted; with the signature zeroed, not. */
static inline sample sync_of(const sample *base, bool zero_sig)
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
    body->u.map.entries[4] =
        (es_value_entry){"blocks", 6, car_value(&e, &only, NULL, cid, cid, &block)};
    e.body = body;
    *slot(e.header, "t") = str_value(&e, "#sync");
    es_buf_free(&block);
    return edit_close(&e);
}

static inline sample forge_sync_zeroed_signature(const sample *frames, size_t n)
{
    return sync_of(real_commit(frames, n, NULL, 0), true);
}

/* An #identity whose handle is not handle syntax. */
static inline sample forge_bad_handle(const sample *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        edit e;
        edit_open(&e, &frames[i]);
        if (!es_value_is_string(es_value_get(e.header, "t"), "#identity")) {
            es_arena_destroy(e.a);
            continue;
        }
        es_value *body = es_value_new_map(e.a, e.body->u.map.count + 1);
        size_t k = 0;
        for (size_t j = 0; j < e.body->u.map.count; j++)
            if (strcmp(e.body->u.map.entries[j].key, "handle") != 0)
                body->u.map.entries[k++] = e.body->u.map.entries[j];
        body->u.map.entries[k++] = (es_value_entry){"handle", 6, str_value(&e, "not a handle")};
        body->u.map.count = k;
        e.body = body;
        return edit_close(&e);
    }
    fail_msg("no #identity frame");
    return (sample){0};
}

/* Every forgery, and the reason a verifying decoder refuses it for. */
typedef struct forgery {
    const char *name;
    sample (*make)(const sample *frames, size_t n);
    es_atp_error refused_as;
} forgery;

static const forgery forgeries[] = {
    {"garbage signature", forge_garbage_signature, ES_ATP_ERR_SIGNATURE},
    {"missing signature", forge_missing_signature, ES_ATP_ERR_SIGNATURE},
    {"commit re-labelled as another DID", forge_relabelled_did, ES_ATP_ERR_SIGNATURE},
    {"record rewritten, CID recomputed", forge_rewritten_record, ES_ATP_ERR_OP_MISMATCH},
    {"delete the signed tree never made", forge_invented_delete, ES_ATP_ERR_OP_MISMATCH},
    {"MST blocks removed", forge_mst_blocks_removed, ES_ATP_ERR_MISSING_BLOCK},
    {"bogus prevData", forge_bogus_prev_data, ES_ATP_ERR_PREV_DATA},
    {"missing prevData", forge_missing_prev_data, ES_ATP_ERR_NO_PREV_DATA},
    {"update without prev", forge_update_without_prev, ES_ATP_ERR_OP_PREV},
    {"delete without prev", forge_delete_without_prev, ES_ATP_ERR_OP_PREV},
    {"future rev", forge_future_rev, ES_ATP_ERR_FUTURE_REV},
    {"#sync with a zeroed signature", forge_sync_zeroed_signature, ES_ATP_ERR_SIGNATURE},
    {"#identity with an invalid handle", forge_bad_handle, ES_ATP_ERR_SYNTAX},
};

#endif
