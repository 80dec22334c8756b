/* The editable MST and Sync 1.1 inversion (src/invert.h): the interop
 * fixtures of ../shared (key heights, common prefixes, commit proofs), every
 * #commit of the real firehose corpus, and crafted refusals built from it.
 * Also prints inversions per second over the corpus repeated. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <es/time.h>
#include <es/atproto.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>
#include <es/json.h>

#include "atproto_gen.h"
#include "base/tests/failalloc.h"
#include "fixtures.h"
#include "invert.h"

#define MAX_OPS    64
#define MAX_BLOCKS 256

/* ---- helpers ------------------------------------------------------------ */

static es_value *load_json(const char *rel, es_arena *arena)
{
    const char *path = fixture_path(rel);
    if (path == NULL)
        return NULL;
    size_t len;
    unsigned char *text = read_whole_file(path, &len);
    assert_non_null(text);
    es_value *v = NULL;
    assert_int_equal(es_json_decode((const char *)text, len, NULL, arena, &v), ES_OK);
    free(text);
    return v;
}

static const es_value *field(const es_value *v, const char *name)
{
    const es_value *f = es_value_get(v, name);
    assert_non_null(f);
    return f;
}

static void cid_of(const es_value *s, uint8_t *out, size_t *len)
{
    assert_int_equal(s->kind, ES_VALUE_STRING);
    assert_int_equal(es_cid_from_string(s->u.str.ptr, s->u.str.len, out, ESI_MST_CID_MAX, len),
                     ES_OK);
}

/* ---- key heights and prefixes ------------------------------------------- */

static void key_heights(void **state)
{
    (void)state;
    es_arena *a;
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    es_value *cases = load_json("atproto-interop/mst/key_heights.json", a);
    if (cases == NULL) {
        es_arena_destroy(a);
        skip();
    }
    for (size_t i = 0; i < cases->u.array.count; i++) {
        const es_value *c = &cases->u.array.items[i];
        const es_value *key = field(c, "key");
        assert_int_equal(esi_mst_key_height(key->u.str.ptr, key->u.str.len),
                         field(c, "height")->u.i);
    }
    printf("key heights: %zu cases\n", cases->u.array.count);
    es_arena_destroy(a);
}

static void common_prefix(void **state)
{
    (void)state;
    es_arena *a;
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    es_value *cases = load_json("atproto-interop/mst/common_prefix.json", a);
    if (cases == NULL) {
        es_arena_destroy(a);
        skip();
    }
    for (size_t i = 0; i < cases->u.array.count; i++) {
        const es_value *c = &cases->u.array.items[i];
        const es_value *l = field(c, "left"), *r = field(c, "right");
        assert_int_equal(
            esi_mst_common_prefix(l->u.str.ptr, l->u.str.len, r->u.str.ptr, r->u.str.len),
            field(c, "len")->u.i);
    }
    printf("common prefixes: %zu cases\n", cases->u.array.count);
    es_arena_destroy(a);
}

/* ---- commit proofs ------------------------------------------------------ */

/* An in-memory CAR v1 (one root) of the blocks a test keeps. */
typedef struct car_out {
    es_buf buf;
} car_out;

static void car_put_section(es_buf *b, const uint8_t *cid, size_t cid_len, const uint8_t *data,
                            size_t len)
{
    uint8_t v[10];
    size_t n = es_varint_encode(cid_len + len, v);
    assert_int_equal(es_buf_append(b, v, n), ES_OK);
    assert_int_equal(es_buf_append(b, cid, cid_len), ES_OK);
    assert_int_equal(es_buf_append(b, data, len), ES_OK);
}

static void car_begin(es_buf *b, const uint8_t *root, size_t root_len)
{
    /* {roots: [root], version: 1} */
    es_buf h = {0};
    static const uint8_t head[] = {0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x81, 0xd8, 0x2a};
    assert_int_equal(es_buf_append(&h, head, sizeof head), ES_OK);
    assert_true(root_len + 1 < 24 + 256);
    uint8_t bh[2] = {0x58, (uint8_t)(root_len + 1)};
    assert_int_equal(es_buf_append(&h, bh, 2), ES_OK);
    assert_int_equal(es_buf_append_byte(&h, 0), ES_OK);
    assert_int_equal(es_buf_append(&h, root, root_len), ES_OK);
    static const uint8_t tail[] = {0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01};
    assert_int_equal(es_buf_append(&h, tail, sizeof tail), ES_OK);
    uint8_t v[10];
    size_t n = es_varint_encode(h.len, v);
    assert_int_equal(es_buf_append(b, v, n), ES_OK);
    assert_int_equal(es_buf_append(b, h.data, h.len), ES_OK);
    es_buf_free(&h);
}

typedef struct proof_ctx {
    const es_value *wanted; /* blocksInProof */
    es_buf *car;
    size_t kept;
} proof_ctx;

/* Keep the re-encoded nodes that the fixture lists as the proof. */
static es_status keep_proof_block(const uint8_t *cid, size_t cid_len, const uint8_t *data,
                                  size_t len, void *user)
{
    proof_ctx *p = user;
    for (size_t i = 0; i < p->wanted->u.array.count; i++) {
        uint8_t want[ESI_MST_CID_MAX];
        size_t want_len;
        cid_of(&p->wanted->u.array.items[i], want, &want_len);
        if (want_len == cid_len && memcmp(want, cid, cid_len) == 0) {
            car_put_section(p->car, cid, cid_len, data, len);
            p->kept++;
            return ES_OK;
        }
    }
    return ES_OK;
}

static void check_root(esi_mst *t, const es_value *want, esi_mst_node_fn fn, void *user)
{
    uint8_t root[ES_CID_SHA256_LEN], exp[ESI_MST_CID_MAX];
    size_t exp_len;
    cid_of(want, exp, &exp_len);
    assert_int_equal(esi_mst_root(t, fn, user, root), ES_OK);
    char got[ES_CID_STRING_MAX];
    assert_int_equal(es_cid_to_string(root, sizeof root, got, sizeof got), ES_OK);
    assert_string_equal(got, want->u.str.ptr);
}

/* One fixture: build the tree from its keys (root before), apply the
 * commit's adds and deletes (root after), then invert the commit from the
 * proof blocks alone and get the root before back. */
static void one_proof(const es_value *c)
{
    const es_value *keys = field(c, "keys"), *adds = field(c, "adds"), *dels = field(c, "dels");
    uint8_t leaf[ESI_MST_CID_MAX];
    size_t leaf_len;
    cid_of(field(c, "leafValue"), leaf, &leaf_len);
    esi_mst *t;
    assert_int_equal(esi_mst_open(NULL, NULL, 0, &t), ES_OK);
    for (size_t i = 0; i < keys->u.array.count; i++) {
        const es_value *k = &keys->u.array.items[i];
        assert_int_equal(esi_mst_insert(t, k->u.str.ptr, k->u.str.len, leaf, leaf_len), ES_OK);
    }
    check_root(t, field(c, "rootBeforeCommit"), NULL, NULL);
    esi_atp_op ops[MAX_OPS];
    size_t n = 0;
    for (size_t i = 0; i < adds->u.array.count && n < MAX_OPS; i++, n++) {
        const es_value *k = &adds->u.array.items[i];
        assert_int_equal(esi_mst_insert(t, k->u.str.ptr, k->u.str.len, leaf, leaf_len), ES_OK);
        ops[n] = (esi_atp_op){ESI_ATP_CREATE, k->u.str.ptr, k->u.str.len, leaf, leaf_len, NULL, 0};
    }
    for (size_t i = 0; i < dels->u.array.count && n < MAX_OPS; i++, n++) {
        const es_value *k = &dels->u.array.items[i];
        assert_int_equal(esi_mst_delete(t, k->u.str.ptr, k->u.str.len), ES_OK);
        ops[n] = (esi_atp_op){ESI_ATP_DELETE, k->u.str.ptr, k->u.str.len, NULL, 0, leaf, leaf_len};
    }
    es_buf car = {0};
    uint8_t after[ESI_MST_CID_MAX], before[ESI_MST_CID_MAX];
    size_t after_len, before_len;
    cid_of(field(c, "rootAfterCommit"), after, &after_len);
    cid_of(field(c, "rootBeforeCommit"), before, &before_len);
    car_begin(&car, after, after_len);
    proof_ctx p = {field(c, "blocksInProof"), &car, 0};
    check_root(t, field(c, "rootAfterCommit"), keep_proof_block, &p);
    esi_mst_destroy(t);
    assert_int_equal(p.kept, p.wanted->u.array.count);

    es_arena *a;
    es_car parsed;
    esi_atp_refusal why;
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    assert_int_equal(es_car_parse(car.data, car.len, NULL, a, &parsed), ES_OK);
    es_status s = esi_atp_invert(&parsed, after, after_len, before, before_len, ops, n, &why);
    if (s != ES_OK)
        printf("%s: %s\n", field(c, "comment")->u.str.ptr, es_last_error());
    assert_int_equal(s, ES_OK);
    assert_int_equal(why, ESI_ATP_REFUSAL_NONE);
    /* Without the new root's block, the same commit cannot be inverted. */
    es_car_block kept[MAX_BLOCKS];
    size_t k = 0;
    for (size_t i = 0; i < parsed.count && k < MAX_BLOCKS; i++)
        if (!(parsed.blocks[i].cid_len == after_len &&
              memcmp(parsed.blocks[i].cid, after, after_len) == 0))
            kept[k++] = parsed.blocks[i];
    assert_int_equal(k + 1, parsed.count);
    es_car fewer = parsed;
    fewer.blocks = kept;
    fewer.count = k;
    fewer.index = NULL;
    s = esi_atp_invert(&fewer, after, after_len, before, before_len, ops, n, &why);
    assert_int_equal(s, ES_ERR_DECODE);
    assert_int_equal(why, ESI_ATP_REFUSAL_MISSING_BLOCK);
    es_arena_destroy(a);
    es_buf_free(&car);
}

static void commit_proofs(void **state)
{
    (void)state;
    es_arena *a;
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    es_value *cases = load_json("atproto-interop/firehose/commit-proof-fixtures.json", a);
    if (cases == NULL) {
        es_arena_destroy(a);
        skip();
    }
    for (size_t i = 0; i < cases->u.array.count; i++)
        one_proof(&cases->u.array.items[i]);
    printf("commit proofs: %zu cases build, apply and invert\n", cases->u.array.count);
    es_arena_destroy(a);
}

/* ---- editing round trips ------------------------------------------------ */

/* Inserting keys in any order gives one root; deleting them all gives the
 * empty tree's root. */
static void order_independent(void **state)
{
    (void)state;
    static const char *const keys[] = {"A0/374913",
                                       "B1/986427",
                                       "C0/451630",
                                       "D2/269196",
                                       "E0/670489",
                                       "F1/085263",
                                       "G0/765327",
                                       "app.bsky.feed.post/454397e440ec",
                                       "app.bsky.feed.post/9adeb165882c",
                                       "88bfafc7",
                                       "2a92d355"};
    size_t n = sizeof keys / sizeof *keys;
    uint8_t leaf[ES_CID_SHA256_LEN], r1[ES_CID_SHA256_LEN], r2[ES_CID_SHA256_LEN],
        empty[ES_CID_SHA256_LEN], r3[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, "x", 1, leaf), ES_OK);
    esi_mst *t;
    assert_int_equal(esi_mst_open(NULL, NULL, 0, &t), ES_OK);
    assert_int_equal(esi_mst_root(t, NULL, NULL, empty), ES_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(esi_mst_insert(t, keys[i], strlen(keys[i]), leaf, sizeof leaf), ES_OK);
    assert_int_equal(esi_mst_insert(t, keys[0], strlen(keys[0]), leaf, sizeof leaf), ES_ERR_EXISTS);
    assert_int_equal(esi_mst_root(t, NULL, NULL, r1), ES_OK);
    esi_mst_destroy(t);
    assert_int_equal(esi_mst_open(NULL, NULL, 0, &t), ES_OK);
    for (size_t i = n; i > 0; i--)
        assert_int_equal(esi_mst_insert(t, keys[i - 1], strlen(keys[i - 1]), leaf, sizeof leaf),
                         ES_OK);
    assert_int_equal(esi_mst_root(t, NULL, NULL, r2), ES_OK);
    assert_memory_equal(r1, r2, sizeof r1);
    for (size_t i = 0; i < n; i += 2)
        assert_int_equal(esi_mst_delete(t, keys[i], strlen(keys[i])), ES_OK);
    for (size_t i = 1; i < n; i += 2)
        assert_int_equal(esi_mst_delete(t, keys[i], strlen(keys[i])), ES_OK);
    assert_int_equal(esi_mst_delete(t, keys[0], strlen(keys[0])), ES_ERR_NOT_FOUND);
    assert_int_equal(esi_mst_root(t, NULL, NULL, r3), ES_OK);
    assert_memory_equal(r3, empty, sizeof r3);
    esi_mst_destroy(t);
}

/* Hostile sizes are refused with ES_ERR_LIMIT, not worked on. */
static void bounds(void **state)
{
    (void)state;
    static char key[ESI_MST_KEY_MAX + 2];
    memset(key, 'a', sizeof key - 1);
    uint8_t leaf[ES_CID_SHA256_LEN], big[ESI_MST_CID_MAX + 1] = {0};
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, "x", 1, leaf), ES_OK);
    esi_mst *t;
    assert_int_equal(esi_mst_open(NULL, NULL, 0, &t), ES_OK);
    assert_int_equal(esi_mst_insert(t, key, ESI_MST_KEY_MAX + 1, leaf, sizeof leaf), ES_ERR_LIMIT);
    assert_int_equal(esi_mst_last_fault(t), ESI_MST_FAULT_LIMIT);
    assert_int_equal(esi_mst_insert(t, key, ESI_MST_KEY_MAX, leaf, sizeof leaf), ES_OK);
    assert_int_equal(esi_mst_insert(t, "b", 1, big, sizeof big), ES_ERR_LIMIT);
    esi_mst_destroy(t);
    assert_int_equal(esi_mst_open(NULL, big, sizeof big, &t), ES_ERR_LIMIT);

    static esi_atp_op ops[ESI_INVERT_MAX_OPS + 1];
    esi_atp_refusal why;
    assert_int_equal(esi_atp_invert(NULL, leaf, sizeof leaf, leaf, sizeof leaf, ops,
                                    ESI_INVERT_MAX_OPS + 1, &why),
                     ES_ERR_LIMIT);
    assert_int_equal(why, ESI_ATP_REFUSAL_LIMIT);
    /* A path over the key bound is a malformed op. */
    ops[0] = (esi_atp_op){ESI_ATP_CREATE, key, ESI_MST_KEY_MAX + 1, leaf, sizeof leaf, NULL, 0};
    assert_int_equal(esi_atp_invert(NULL, leaf, sizeof leaf, leaf, sizeof leaf, ops, 1, &why),
                     ES_ERR_DECODE);
    assert_int_equal(why, ESI_ATP_REFUSAL_BAD_OP);
    /* No blocks at all: the new root is missing. */
    ops[0].path_len = 3;
    assert_int_equal(esi_atp_invert(NULL, leaf, sizeof leaf, leaf, sizeof leaf, ops, 1, &why),
                     ES_ERR_DECODE);
    assert_int_equal(why, ESI_ATP_REFUSAL_MISSING_BLOCK);
}

/* A root whose two subtrees are the same node: reaching it a second time
 * would decode more than the CAR holds, which a valid tree never needs. */
static void node_reached_twice(void **state)
{
    (void)state;
    uint8_t leaf[ES_CID_SHA256_LEN], child_cid[ES_CID_SHA256_LEN], root_cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, "x", 1, leaf), ES_OK);
    assert_int_equal(esi_mst_key_height("asdf", 4), 0); /* key_heights.json */
    assert_int_equal(esi_mst_key_height("blue", 4), 1);
    static const uint8_t link[] = {0xd8, 0x2a, 0x58, 0x25, 0x00};
    es_buf child = {0}, root = {0}, car = {0};
    /* {e: [{k: "asdf", p: 0, t: null, v: leaf}], l: null} */
    static const uint8_t c1[] = {0xa2, 0x61, 'e',  0x81, 0xa4, 0x61, 'k', 0x44, 'a',  's',
                                 'd',  'f',  0x61, 'p',  0x00, 0x61, 't', 0xf6, 0x61, 'v'};
    static const uint8_t tail[] = {0x61, 'l', 0xf6};
    assert_int_equal(es_buf_append(&child, c1, sizeof c1), ES_OK);
    assert_int_equal(es_buf_append(&child, link, sizeof link), ES_OK);
    assert_int_equal(es_buf_append(&child, leaf, sizeof leaf), ES_OK);
    assert_int_equal(es_buf_append(&child, tail, sizeof tail), ES_OK);
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, child.data, child.len, child_cid), ES_OK);
    /* {e: [{k: "blue", p: 0, t: child, v: leaf}], l: child} */
    static const uint8_t r1[] = {0xa2, 0x61, 'e', 0x81, 0xa4, 0x61, 'k',  0x44, 'b',
                                 'l',  'u',  'e', 0x61, 'p',  0x00, 0x61, 't'};
    static const uint8_t v[] = {0x61, 'v'}, l[] = {0x61, 'l'};
    assert_int_equal(es_buf_append(&root, r1, sizeof r1), ES_OK);
    assert_int_equal(es_buf_append(&root, link, sizeof link), ES_OK);
    assert_int_equal(es_buf_append(&root, child_cid, sizeof child_cid), ES_OK);
    assert_int_equal(es_buf_append(&root, v, sizeof v), ES_OK);
    assert_int_equal(es_buf_append(&root, link, sizeof link), ES_OK);
    assert_int_equal(es_buf_append(&root, leaf, sizeof leaf), ES_OK);
    assert_int_equal(es_buf_append(&root, l, sizeof l), ES_OK);
    assert_int_equal(es_buf_append(&root, link, sizeof link), ES_OK);
    assert_int_equal(es_buf_append(&root, child_cid, sizeof child_cid), ES_OK);
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, root.data, root.len, root_cid), ES_OK);
    car_begin(&car, root_cid, sizeof root_cid);
    car_put_section(&car, root_cid, sizeof root_cid, root.data, root.len);
    car_put_section(&car, child_cid, sizeof child_cid, child.data, child.len);
    es_arena *a;
    es_car parsed;
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    assert_int_equal(es_car_parse(car.data, car.len, NULL, a, &parsed), ES_OK);
    esi_mst *t;
    const uint8_t *got;
    size_t got_len;
    bool found;
    assert_int_equal(esi_mst_open(&parsed, root_cid, sizeof root_cid, &t), ES_OK);
    assert_int_equal(esi_mst_get(t, "asdf", 4, &got, &got_len, &found), ES_OK);
    assert_true(found);
    char after[2] = "c"; /* a key after "blue" on layer 0: found in the right subtree */
    while (esi_mst_key_height(after, 1) != 0)
        after[0]++;
    assert_int_equal(esi_mst_get(t, after, 1, &got, &got_len, &found), ES_ERR_LIMIT);
    assert_int_equal(esi_mst_last_fault(t), ESI_MST_FAULT_LIMIT);
    esi_mst_destroy(t);
    es_arena_destroy(a);
    es_buf_free(&child);
    es_buf_free(&root);
    es_buf_free(&car);
}

/* ---- against the generator's bottom-up build ------------------------------ */

#define MODEL_KEYS 600

typedef struct model {
    char keys[MODEL_KEYS][32];
    uint8_t vals[MODEL_KEYS][ES_CID_SHA256_LEN];
    bool present[MODEL_KEYS];
} model;

/* The root es_atp_gen_mst builds from the present keys (an independent,
 * bottom-up construction); `fn` sees its nodes. */
static void model_root(const model *m, es_atp_gen_node_fn fn, void *user,
                       uint8_t root[ES_CID_SHA256_LEN])
{
    static es_atp_gen_leaf leaves[MODEL_KEYS];
    size_t n = 0;
    for (size_t i = 0; i < MODEL_KEYS; i++)
        if (m->present[i]) {
            leaves[n].key = m->keys[i];
            memcpy(leaves[n++].cid, m->vals[i], ES_CID_SHA256_LEN);
        }
    assert_int_equal(es_atp_gen_mst(leaves, n, fn, user, root), ES_OK);
}

static void same_root(esi_mst *t, const model *m)
{
    uint8_t got[ES_CID_SHA256_LEN], want[ES_CID_SHA256_LEN];
    assert_int_equal(esi_mst_root(t, NULL, NULL, got), ES_OK);
    model_root(m, NULL, NULL, want);
    assert_memory_equal(got, want, sizeof got);
}

static es_status gen_block(const uint8_t cid[ES_CID_SHA256_LEN], const uint8_t *bytes, size_t len,
                           void *user)
{
    car_put_section(user, cid, ES_CID_SHA256_LEN, bytes, len);
    return ES_OK;
}

/* A pseudo-random permutation step (LCG), the same on every run. */
static size_t next_index(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return (size_t)(*x >> 8) % MODEL_KEYS;
}

/* Edits in random order give the tree a bottom-up build of the same keys
 * gives, both in memory and on a tree loaded lazily from a CAR. */
static void matches_bottom_up_build(void **state)
{
    (void)state;
    static model m;
    uint32_t x = 12345;
    for (size_t i = 0; i < MODEL_KEYS; i++) {
        snprintf(m.keys[i], sizeof m.keys[i], "app.bsky.feed.post/k%05zu", i);
        assert_int_equal(
            es_cid_sha256(ES_CID_CODEC_DAG_CBOR, m.keys[i], strlen(m.keys[i]), m.vals[i]), ES_OK);
    }
    esi_mst *t;
    assert_int_equal(esi_mst_open(NULL, NULL, 0, &t), ES_OK);
    for (size_t done = 0; done < MODEL_KEYS;) { /* insert all, in a scrambled order */
        size_t i = next_index(&x);
        if (m.present[i])
            continue;
        assert_int_equal(
            esi_mst_insert(t, m.keys[i], strlen(m.keys[i]), m.vals[i], ES_CID_SHA256_LEN), ES_OK);
        m.present[i] = true;
        done++;
    }
    same_root(t, &m);
    for (size_t k = 0; k < MODEL_KEYS / 2; k++) { /* delete or update at random */
        size_t i = next_index(&x);
        if (!m.present[i])
            continue;
        if (k % 4 == 0) {
            m.vals[i][ES_CID_SHA256_LEN - 1] ^= 0x5a;
            assert_int_equal(
                esi_mst_update(t, m.keys[i], strlen(m.keys[i]), m.vals[i], ES_CID_SHA256_LEN),
                ES_OK);
        } else {
            assert_int_equal(esi_mst_delete(t, m.keys[i], strlen(m.keys[i])), ES_OK);
            m.present[i] = false;
        }
    }
    same_root(t, &m);
    esi_mst_destroy(t);

    /* The same tree as CAR blocks, edited through lazy loading. */
    uint8_t root[ES_CID_SHA256_LEN];
    es_buf sections = {0}, car = {0};
    model_root(&m, gen_block, &sections, root);
    car_begin(&car, root, sizeof root);
    assert_int_equal(es_buf_append(&car, sections.data, sections.len), ES_OK);
    es_arena *a;
    es_car parsed;
    es_car_limits lim = {.max_blocks = 100000};
    assert_int_equal(es_arena_create(8 << 20, &a), ES_OK);
    assert_int_equal(es_car_parse(car.data, car.len, &lim, a, &parsed), ES_OK);
    assert_int_equal(esi_mst_open(&parsed, root, sizeof root, &t), ES_OK);
    same_root(t, &m);
    for (size_t k = 0; k < 40; k++) {
        size_t i = next_index(&x);
        if (m.present[i])
            assert_int_equal(esi_mst_delete(t, m.keys[i], strlen(m.keys[i])), ES_OK);
        else
            assert_int_equal(
                esi_mst_insert(t, m.keys[i], strlen(m.keys[i]), m.vals[i], ES_CID_SHA256_LEN),
                ES_OK);
        m.present[i] = !m.present[i];
    }
    same_root(t, &m);
    esi_mst_destroy(t);
    es_arena_destroy(a);
    es_buf_free(&sections);
    es_buf_free(&car);
}

/* ---- out of memory ------------------------------------------------------ */

static const char *const oom_keys[] = {"A0/374913", "B1/986427", "C0/451630", "E0/670489",
                                       "F1/085263", "G0/765327", "88bfafc7",  "2a92d355"};

typedef struct oom_case {
    es_car car;
    uint8_t leaf[ES_CID_SHA256_LEN], before[ES_CID_SHA256_LEN], after[ES_CID_SHA256_LEN];
} oom_case;

static es_status put_block(const uint8_t *cid, size_t cid_len, const uint8_t *data, size_t len,
                           void *user)
{
    car_put_section(user, cid, cid_len, data, len);
    return ES_OK;
}

/* Build, edit and seal a tree; ES_ERR_NOMEM or the known root. */
static es_status edit_op(void *ctx)
{
    oom_case *c = ctx;
    esi_mst *t;
    uint8_t root[ES_CID_SHA256_LEN];
    es_status s = esi_mst_open(NULL, NULL, 0, &t);
    for (size_t i = 0; s == ES_OK && i < sizeof oom_keys / sizeof *oom_keys; i++)
        s = esi_mst_insert(t, oom_keys[i], strlen(oom_keys[i]), c->leaf, sizeof c->leaf);
    if (s == ES_OK)
        s = esi_mst_insert(t, "D2/269196", 9, c->leaf, sizeof c->leaf);
    if (s == ES_OK)
        s = esi_mst_delete(t, "D2/269196", 9);
    if (s == ES_OK)
        s = esi_mst_root(t, NULL, NULL, root);
    if (s == ES_OK && memcmp(root, c->before, sizeof root) != 0)
        s = ES_ERR_PROTOCOL;
    esi_mst_destroy(t);
    return s;
}

/* Invert a create: out of memory is never a refusal. */
static es_status invert_op(void *ctx)
{
    oom_case *c = ctx;
    esi_atp_op op = {ESI_ATP_CREATE, "D2/269196", 9, c->leaf, sizeof c->leaf, NULL, 0};
    esi_atp_refusal why;
    es_status s = esi_atp_invert(&c->car, c->after, sizeof c->after, c->before, sizeof c->before,
                                 &op, 1, &why);
    return (s == ES_OK || s == ES_ERR_NOMEM) && why == ESI_ATP_REFUSAL_NONE ? s : ES_ERR_PROTOCOL;
}

static void out_of_memory(void **state)
{
    (void)state;
    oom_case c;
    es_buf car = {0};
    es_arena *a;
    esi_mst *t;
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, "x", 1, c.leaf), ES_OK);
    assert_int_equal(esi_mst_open(NULL, NULL, 0, &t), ES_OK);
    for (size_t i = 0; i < sizeof oom_keys / sizeof *oom_keys; i++)
        assert_int_equal(esi_mst_insert(t, oom_keys[i], strlen(oom_keys[i]), c.leaf, sizeof c.leaf),
                         ES_OK);
    assert_int_equal(esi_mst_root(t, NULL, NULL, c.before), ES_OK);
    assert_int_equal(esi_mst_insert(t, "D2/269196", 9, c.leaf, sizeof c.leaf), ES_OK);
    es_buf sections = {0};
    assert_int_equal(esi_mst_root(t, put_block, &sections, c.after), ES_OK);
    esi_mst_destroy(t);
    car_begin(&car, c.after, sizeof c.after);
    assert_int_equal(es_buf_append(&car, sections.data, sections.len), ES_OK);
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    assert_int_equal(es_car_parse(car.data, car.len, NULL, a, &c.car), ES_OK);
    assert_int_equal(invert_op(&c), ES_OK);
    failalloc_expect_nomem(edit_op, &c, 1);
    failalloc_expect_nomem(invert_op, &c, 1);
    es_arena_destroy(a);
    es_buf_free(&sections);
    es_buf_free(&car);
}

/* ---- the real corpus ---------------------------------------------------- */

typedef struct commit {
    es_car car;
    const uint8_t *data, *prev_data;
    size_t data_len, prev_data_len;
    esi_atp_op ops[MAX_OPS];
    size_t count;
} commit;

static esi_atp_action action_of(const es_value *a)
{
    if (a->u.str.len == 6 && memcmp(a->u.str.ptr, "create", 6) == 0)
        return ESI_ATP_CREATE;
    if (a->u.str.len == 6 && memcmp(a->u.str.ptr, "update", 6) == 0)
        return ESI_ATP_UPDATE;
    return ESI_ATP_DELETE;
}

static const uint8_t *link_or_null(const es_value *v, size_t *len)
{
    *len = v != NULL && v->kind == ES_VALUE_LINK ? v->u.bytes.len : 0;
    return *len ? v->u.bytes.ptr : NULL;
}

/* Read a frame's #commit (false for other frames): its CAR, its commit's
 * data root, prevData and ops, all pointing into the frame. */
static bool read_commit(const uint8_t *frame, size_t len, es_arena *a, commit *c)
{
    es_value *h, *b, *cv;
    size_t used;
    assert_int_equal(es_cbor_decode(frame, len, NULL, a, &h, &used), ES_OK);
    const es_value *t = es_value_get(h, "t");
    if (t == NULL || t->u.str.len != 7 || memcmp(t->u.str.ptr, "#commit", 7) != 0)
        return false;
    assert_int_equal(es_cbor_decode(frame + used, len - used, NULL, a, &b, NULL), ES_OK);
    const es_value *blocks = field(b, "blocks"), *ops = field(b, "ops");
    assert_int_equal(es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, NULL, a, &c->car),
                     ES_OK);
    size_t commit_len;
    const uint8_t *commit_cid = link_or_null(field(b, "commit"), &commit_len);
    es_car_block *cb = es_car_find(&c->car, commit_cid, commit_len);
    assert_non_null(cb);
    assert_int_equal(es_cbor_decode(cb->data, cb->len, NULL, a, &cv, NULL), ES_OK);
    c->data = link_or_null(field(cv, "data"), &c->data_len);
    c->prev_data = link_or_null(es_value_get(b, "prevData"), &c->prev_data_len);
    c->count = ops->u.array.count;
    assert_true(c->count <= MAX_OPS);
    for (size_t i = 0; i < c->count; i++) {
        const es_value *o = &ops->u.array.items[i];
        esi_atp_op *op = &c->ops[i];
        const es_value *path = field(o, "path");
        op->action = action_of(field(o, "action"));
        op->path = path->u.str.ptr;
        op->path_len = path->u.str.len;
        op->cid = link_or_null(es_value_get(o, "cid"), &op->cid_len);
        op->prev = link_or_null(es_value_get(o, "prev"), &op->prev_len);
    }
    return true;
}

static void expect_refusal(commit *c, esi_atp_refusal want, const char *what)
{
    esi_atp_refusal why;
    es_status s = esi_atp_invert(&c->car, c->data, c->data_len, c->prev_data, c->prev_data_len,
                                 c->ops, c->count, &why);
    printf("crafted: %-28s -> %s (%s)\n", what, esi_atp_refusal_name(why), es_last_error());
    assert_int_not_equal(s, ES_OK);
    assert_int_equal(why, want);
}

/* Each forgery of one real commit is refused with its own reason. */
static void crafted(commit *c)
{
    commit m = *c;
    m.count = 0; /* an op removed */
    expect_refusal(&m, ESI_ATP_REFUSAL_PREV_DATA, "op removed");

    uint8_t cid[ESI_MST_CID_MAX];
    m = *c;
    memcpy(cid, m.ops[0].cid, m.ops[0].cid_len);
    cid[m.ops[0].cid_len - 1] ^= 1;
    m.ops[0].cid = cid; /* a record CID changed */
    expect_refusal(&m, ESI_ATP_REFUSAL_OP_MISMATCH, "record cid changed");

    uint8_t bogus[ESI_MST_CID_MAX];
    m = *c;
    memcpy(bogus, m.prev_data, m.prev_data_len);
    bogus[m.prev_data_len - 1] ^= 1;
    m.prev_data = bogus;
    expect_refusal(&m, ESI_ATP_REFUSAL_PREV_DATA, "bogus prevData");

    m = *c;
    m.prev_data = NULL;
    expect_refusal(&m, ESI_ATP_REFUSAL_NO_PREV_DATA, "no prevData");

    m = *c;
    m.ops[0].prev = m.ops[0].cid; /* a create with prev */
    m.ops[0].prev_len = m.ops[0].cid_len;
    expect_refusal(&m, ESI_ATP_REFUSAL_OP_PREV, "create with prev");

    m = *c;
    m.ops[0].action = ESI_ATP_UPDATE; /* an update without prev */
    expect_refusal(&m, ESI_ATP_REFUSAL_OP_PREV, "update without prev");

    /* The data root's block removed: the CAR's blocks without it. */
    es_car_block kept[MAX_BLOCKS];
    size_t n = 0;
    for (size_t i = 0; i < c->car.count && n < MAX_BLOCKS; i++)
        if (!(c->car.blocks[i].cid_len == c->data_len &&
              memcmp(c->car.blocks[i].cid, c->data, c->data_len) == 0))
            kept[n++] = c->car.blocks[i];
    m = *c;
    m.car.blocks = kept;
    m.car.count = n;
    m.car.index = NULL;
    expect_refusal(&m, ESI_ATP_REFUSAL_MISSING_BLOCK, "missing MST block");

    /* A node whose bytes no longer hash to its CID. */
    uint8_t copy[1 << 16];
    for (size_t i = 0; i < n; i++)
        kept[i].state = 0;
    for (size_t i = 0; i < c->car.count; i++) {
        es_car_block *b = &c->car.blocks[i];
        if (b->cid_len == c->data_len && memcmp(b->cid, c->data, c->data_len) == 0 &&
            b->len <= sizeof copy) {
            memcpy(copy, b->data, b->len);
            copy[b->len - 1] ^= 1;
            kept[n] = *b;
            kept[n].data = copy;
            kept[n].state = 0;
            m.car.count = n + 1;
            break;
        }
    }
    expect_refusal(&m, ESI_ATP_REFUSAL_BAD_NODE, "corrupt MST block");
}

static double now_s(void)
{
    return (double)es_monotonic_ns() / 1e9;
}

/* Every commit inverts; prints inversions/s over the corpus repeated, each
 * round parsing the CARs afresh so every node is hashed again. */
static void corpus(void **state)
{
    (void)state;
    es_atp_capture *cap = corpus_frames_open();
    if (cap == NULL)
        skip();
    es_arena *a;
    assert_int_equal(es_arena_create((size_t)64 << 20, &a), ES_OK);
    const uint8_t *frame;
    size_t len, commits = 0, inverted = 0, no_prev = 0, crafted_done = 0, actions[3] = {0};
    const uint8_t *frames[512];
    size_t lens[512], nframes = 0;
    while (es_atp_capture_next(cap, &frame, &len) == ES_OK && frame != NULL) {
        commit c;
        if (!read_commit(frame, len, a, &c))
            continue;
        commits++;
        if (c.prev_data == NULL) {
            no_prev++;
            continue;
        }
        esi_atp_refusal why;
        es_status s = esi_atp_invert(&c.car, c.data, c.data_len, c.prev_data, c.prev_data_len,
                                     c.ops, c.count, &why);
        if (s != ES_OK)
            printf("commit %zu: %s\n", commits, es_last_error());
        assert_int_equal(s, ES_OK);
        inverted++;
        for (size_t i = 0; i < c.count; i++)
            actions[c.ops[i].action]++;
        if (!crafted_done && c.count == 1 && c.ops[0].action == ESI_ATP_CREATE) {
            crafted(&c);
            crafted_done = 1;
        }
        uint8_t *keep = malloc(len);
        assert_non_null(keep);
        memcpy(keep, frame, len);
        assert_true(nframes < 512);
        frames[nframes] = keep;
        lens[nframes++] = len;
    }
    es_atp_capture_close(cap);
    printf("corpus: %zu commits, %zu with prevData, all %zu invert (%zu without prevData); "
           "ops: %zu create, %zu update, %zu delete\n",
           commits, commits - no_prev, inverted, no_prev, actions[ESI_ATP_CREATE],
           actions[ESI_ATP_UPDATE], actions[ESI_ATP_DELETE]);
    assert_true(inverted > 0);
    assert_true(crafted_done);

    int rounds = getenv("ES_INVERT_ROUNDS") ? atoi(getenv("ES_INVERT_ROUNDS")) : 20;
    size_t done = 0;
    double parse = 0, t0 = now_s();
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < nframes; i++) {
            es_arena_reset(a);
            commit c;
            double p0 = now_s();
            assert_true(read_commit(frames[i], lens[i], a, &c));
            parse += now_s() - p0;
            esi_atp_refusal why;
            assert_int_equal(esi_atp_invert(&c.car, c.data, c.data_len, c.prev_data,
                                            c.prev_data_len, c.ops, c.count, &why),
                             ES_OK);
            done++;
        }
    }
    double total = now_s() - t0;
    printf("bench: %zu inversions in %.3f s (%.0f/s including frame decode; %.0f/s inversion "
           "alone)\n",
           done, total, (double)done / total, (double)done / (total - parse));
    for (size_t i = 0; i < nframes; i++)
        free((void *)frames[i]);
    es_arena_destroy(a);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_heights),
        cmocka_unit_test(common_prefix),
        cmocka_unit_test(order_independent),
        cmocka_unit_test(matches_bottom_up_build),
        cmocka_unit_test(commit_proofs),
        cmocka_unit_test(bounds),
        cmocka_unit_test(node_reached_twice),
        cmocka_unit_test(out_of_memory),
        cmocka_unit_test(corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
