/* The sample generator: its MST builder against the atproto interop vectors,
 * and its frames through our own decoder. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include <es/atproto.h>
#include <es/cid.h>

#include "atproto_gen.h"
#include "fixture_json.h"
#include "fixtures.h"
#include "gen_digest.h"

static void key_heights(void **state)
{
    (void)state;
    json_t *cases = fixture_json("atproto-interop/mst/key_heights.json");
    if (cases == NULL)
        skip();
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *key = json_string_value(json_object_get(c, "key"));
        int height = (int)json_integer_value(json_object_get(c, "height"));
        assert_int_equal(es_atp_gen_key_height(key, strlen(key)), height);
    }
    assert_true(i > 5);
    json_decref(cases);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(((const es_atp_gen_leaf *)a)->key, ((const es_atp_gen_leaf *)b)->key);
}

/* The root CID of the tree holding `keys` (all with the CID `leaf`). */
static void tree_root(json_t *keys, const uint8_t *leaf, char *out)
{
    size_t n = json_array_size(keys);
    es_atp_gen_leaf *leaves = calloc(n + 1, sizeof *leaves);
    for (size_t i = 0; i < n; i++) {
        leaves[i].key = json_string_value(json_array_get(keys, i));
        memcpy(leaves[i].cid, leaf, ES_CID_SHA256_LEN);
    }
    qsort(leaves, n, sizeof *leaves, compare_keys);
    uint8_t root[ES_CID_SHA256_LEN];
    assert_int_equal(es_atp_gen_mst(leaves, n, NULL, NULL, root), ES_OK);
    assert_int_equal(es_cid_to_string(root, sizeof root, out, ES_CID_STRING_MAX), ES_OK);
    free(leaves);
}

static void mst_roots_match_interop_vectors(void **state)
{
    (void)state;
    json_t *cases = fixture_json("atproto-interop/firehose/commit-proof-fixtures.json");
    if (cases == NULL)
        skip();
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *leaf_text = json_string_value(json_object_get(c, "leafValue"));
        uint8_t leaf[64];
        size_t leaf_len;
        assert_int_equal(
            es_cid_from_string(leaf_text, strlen(leaf_text), leaf, sizeof leaf, &leaf_len), ES_OK);
        assert_int_equal(leaf_len, ES_CID_SHA256_LEN);
        char root[ES_CID_STRING_MAX];
        json_t *keys = json_object_get(c, "keys");
        tree_root(keys, leaf, root);
        assert_string_equal(root, json_string_value(json_object_get(c, "rootBeforeCommit")));
        /* after the commit: keys + adds - dels */
        json_t *after = json_array();
        size_t k;
        json_t *key;
        json_array_foreach(keys, k, key)
        {
            bool deleted = false;
            size_t d;
            json_t *del;
            json_array_foreach(json_object_get(c, "dels"), d, del) deleted |= json_equal(del, key);
            if (!deleted)
                json_array_append(after, key);
        }
        json_array_extend(after, json_object_get(c, "adds"));
        tree_root(after, leaf, root);
        assert_string_equal(root, json_string_value(json_object_get(c, "rootAfterCommit")));
        json_decref(after);
    }
    assert_int_equal(i, 6);
    json_decref(cases);
}

static void empty_tree(void **state)
{
    (void)state;
    uint8_t root[ES_CID_SHA256_LEN];
    char text[ES_CID_STRING_MAX];
    assert_int_equal(es_atp_gen_mst(NULL, 0, NULL, NULL, root), ES_OK);
    assert_int_equal(es_cid_to_string(root, sizeof root, text, sizeof text), ES_OK);
    /* the CID of {"e": [], "l": null}, the empty MST of every new repository */
    assert_string_equal(text, "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm");
}

#define FRAMES 3000

typedef struct walk_ctx {
    const es_atp_gen *g;
    size_t repo, seen;
} walk_ctx;

/* Record i of the walk is record i of the generator's sorted list. */
static int check_record(const es_atp_record *rec, void *user)
{
    walk_ctx *ctx = user;
    assert_true(ctx->seen < es_atp_gen_repo_records(ctx->g, ctx->repo));
    assert_string_equal(rec->key, es_atp_gen_record_key(ctx->g, ctx->repo, ctx->seen));
    assert_int_equal(rec->cid_len, ES_CID_SHA256_LEN);
    assert_memory_equal(rec->cid, es_atp_gen_record_cid(ctx->g, ctx->repo, ctx->seen),
                        ES_CID_SHA256_LEN);
    assert_non_null(rec->block);
    ctx->seen++;
    return 0;
}

/* Generate FRAMES frames from `seed`, decode them all with every block
 * verified, and check the mapping against what the generator did. */
static void frames_decode_and_verify(void **state)
{
    (void)state;
    es_atp_gen *g = NULL;
    es_atp_gen_options o = {.seed = 42, .repos = 20, .first_seq = 1000};
    assert_int_equal(es_atp_gen_create(&o, &g), ES_OK);
    es_atp_options opts = {.verify_all_blocks = true};
    es_atp_decoder *d = NULL;
    assert_int_equal(es_atp_decoder_create(&opts, &d), ES_OK);
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_buf frame = ES_BUF_INIT;
    size_t events = 0, payloads = 0;
    for (int i = 0; i < FRAMES; i++) {
        es_buf_clear(&frame);
        assert_int_equal(es_atp_gen_next(g, &frame), ES_OK);
        es_atp_batch b;
        es_arena_reset(a);
        es_status s = es_atp_decode(d, frame.data, frame.len, a, &b);
        if (s != ES_OK)
            fail_msg("frame %d: %s", i, es_last_error());
        assert_true(b.has_seq);
        assert_int_equal(b.seq, 1000 + (uint64_t)i);
        for (size_t e = 0; e < b.count; e++) {
            const es_event_spec *ev = &b.events[e];
            assert_true(ev->time_ns > 1748779200000000000LL);
            if (ev->data == NULL)
                continue;
            /* the payload is the block whose CID the metadata names */
            const char *cid_text = NULL;
            for (size_t m = 0; m < ev->meta_count; m++)
                if (strcmp(ev->meta[m].key, "cid") == 0)
                    cid_text = ev->meta[m].value;
            if (cid_text != NULL) {
                uint8_t cid[ES_CID_SHA256_LEN], again[ES_CID_SHA256_LEN];
                size_t n;
                assert_int_equal(
                    es_cid_from_string(cid_text, strlen(cid_text), cid, sizeof cid, &n), ES_OK);
                assert_int_equal(
                    es_cid_sha256(ES_CID_CODEC_DAG_CBOR, ev->data, ev->data_len, again), ES_OK);
                assert_memory_equal(cid, again, sizeof cid);
                payloads++;
            }
        }
        events += b.count;
    }
    const es_atp_gen_counts *n = es_atp_gen_counts_of(g);
    const es_atp_stats *st = es_atp_decoder_stats(d);
    for (int k = 0; k < ES_ATP_ERR_COUNT; k++)
        assert_int_equal(st->errors[k], 0);
    assert_int_equal(st->frames, FRAMES);
    assert_int_equal(st->by_kind[ES_ATP_KIND_COMMIT], n->commits);
    assert_int_equal(st->by_kind[ES_ATP_KIND_IDENTITY], n->identity);
    assert_int_equal(st->by_kind[ES_ATP_KIND_ACCOUNT], n->account);
    assert_int_equal(st->by_kind[ES_ATP_KIND_SYNC], n->sync);
    assert_int_equal(events,
                     n->creates + n->updates + n->deletes + n->identity + n->account + n->sync);
    assert_int_equal(payloads, n->creates + n->updates);
    assert_true(n->updates > 0 && n->deletes > 0 && n->identity > 0 && n->account > 0 &&
                n->sync > 0);
    assert_true(st->blocks_verified > n->commits * 3);

    /* each repository's final state, exported as a full CAR, walks to
     * exactly the generator's records */
    for (size_t r = 0; r < es_atp_gen_repo_count(g); r++) {
        es_buf car = ES_BUF_INIT;
        assert_int_equal(es_atp_gen_repo_car(g, r, &car, NULL), ES_OK);
        es_arena_reset(a);
        es_car parsed;
        assert_int_equal(es_car_parse(car.data, car.len, NULL, a, &parsed), ES_OK);
        walk_ctx ctx = {g, r, 0};
        assert_int_equal(es_atp_walk_repo(&parsed, a, NULL, NULL, NULL), ES_ERR_INVALID);
        assert_int_equal(es_atp_walk_repo(&parsed, a, NULL, check_record, &ctx), ES_OK);
        assert_int_equal(ctx.seen, es_atp_gen_repo_records(g, r));
        es_buf_free(&car);
    }
    es_buf_free(&frame);
    es_arena_destroy(a);
    es_atp_decoder_destroy(d);
    es_atp_gen_destroy(g);
}

/* Equal seeds, equal bytes; another seed, other bytes. */
static void deterministic(void **state)
{
    (void)state;
    uint8_t a[ES_CID_SHA256_LEN], b[ES_CID_SHA256_LEN], c[ES_CID_SHA256_LEN];
    gen_digest((es_atp_gen_options){.seed = 7}, 300, a, NULL);
    gen_digest((es_atp_gen_options){.seed = 7}, 300, b, NULL);
    gen_digest((es_atp_gen_options){.seed = 8}, 300, c, NULL);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_tree),
        cmocka_unit_test(key_heights),
        cmocka_unit_test(mst_roots_match_interop_vectors),
        cmocka_unit_test(frames_decode_and_verify),
        cmocka_unit_test(deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
