/* Building a Merkle Search Tree bottom-up from sorted keys (atproto
 * repository spec). A key's height is the number of leading zero bit pairs
 * of its SHA-256; a node at layer L holds the keys of height L in its range,
 * with the runs between them as subtrees at layer L-1 (possibly nodes with no
 * entries of their own, only a left link, when no key of a run sits on L-1). */
#include "gen_internal.h"

#include "atproto/src/invert.h"

#include <stdlib.h>
#include <string.h>

#define NODE_ARENA ((size_t)1 << 20)

/* The library's own rule (atproto/src/mst_edit.c), so the generator and the
 * verifier cannot disagree. */
int es_atp_gen_key_height(const char *key, size_t len)
{
    return esi_mst_key_height(key, len);
}

typedef struct builder {
    const es_atp_gen_leaf *leaves;
    size_t n;
    int *heights;
    gen_cover_fn fn;
    void *user;
    const char *const *cover; /* keys whose covering nodes are flagged */
    size_t cover_count;
    es_arena *arena;
    es_buf enc;
} builder;

typedef uint8_t cid_t[ES_CID_SHA256_LEN];

static es_status build(builder *b, size_t lo, size_t hi, int layer, cid_t out);

/* Whether the node holding the keys [lo, hi) covers one of b->cover: its
 * range is bounded by the keys just outside it (the entries of its
 * ancestors), bounds included. An inversion touching a key reads exactly
 * such nodes: the path to the key, and for a key it removes, the subtrees on
 * both sides of it down to the bottom (their outer spines end at the key). */
static bool covers(const builder *b, size_t lo, size_t hi)
{
    const char *low = lo > 0 ? b->leaves[lo - 1].key : NULL;
    const char *high = hi < b->n ? b->leaves[hi].key : NULL;
    for (size_t i = 0; i < b->cover_count; i++)
        if ((low == NULL || strcmp(low, b->cover[i]) <= 0) &&
            (high == NULL || strcmp(b->cover[i], high) <= 0))
            return true;
    return false;
}

/* The subtree of [lo, hi) at `layer`, or no link when the range is empty. */
static es_status subtree(builder *b, size_t lo, size_t hi, int layer, cid_t out, bool *present)
{
    *present = lo < hi;
    return *present ? build(b, lo, hi, layer, out) : ES_OK;
}

/* Encode the node whose entries are `idx[0..count)` with the given links. */
static es_status encode_node(builder *b, const size_t *idx, size_t count, const cid_t left,
                             bool has_left, cid_t *trees, const bool *has_tree, bool covered,
                             cid_t out)
{
    es_arena *a = b->arena;
    es_value **entries = es_arena_calloc(a, count ? count : 1, sizeof *entries);
    if (entries == NULL)
        return ES_ERR_NOMEM;
    const char *prev = "";
    for (size_t j = 0; j < count; j++) {
        const char *key = b->leaves[idx[j]].key;
        size_t p = esi_mst_common_prefix(prev, strlen(prev), key, strlen(key));
        entries[j] =
            gv_map(a, 4, "k", gv_bytes(a, key + p, strlen(key) - p), "p", gv_int(a, (int64_t)p),
                   "t", has_tree[j] ? gv_link(a, trees[j]) : gv_null(a), "v",
                   gv_link(a, b->leaves[idx[j]].cid));
        prev = key;
    }
    es_value *node = gv_map(a, 2, "e", gv_array(a, count, entries), "l",
                            has_left ? gv_link(a, left) : gv_null(a));
    es_status s = gv_block(node, &b->enc, out);
    if (s == ES_OK && b->fn != NULL)
        s = b->fn(out, b->enc.data, b->enc.len, covered, b->user);
    es_arena_reset(a);
    return s;
}

static es_status build(builder *b, size_t lo, size_t hi, int layer, cid_t out)
{
    size_t count = 0;
    for (size_t i = lo; i < hi; i++)
        count += b->heights[i] == layer;
    size_t *idx = calloc(count + 1, sizeof *idx);
    cid_t *trees = calloc(count + 1, sizeof *trees);
    bool *has_tree = calloc(count + 1, sizeof *has_tree);
    if (idx == NULL || trees == NULL || has_tree == NULL) {
        free(idx), free(trees), free(has_tree);
        return ES_ERR_NOMEM;
    }
    for (size_t i = lo, j = 0; i < hi; i++)
        if (b->heights[i] == layer)
            idx[j++] = i;
    cid_t left;
    bool has_left;
    es_status s = subtree(b, lo, count ? idx[0] : hi, layer - 1, left, &has_left);
    for (size_t j = 0; s == ES_OK && j < count; j++)
        s = subtree(b, idx[j] + 1, j + 1 < count ? idx[j + 1] : hi, layer - 1, trees[j],
                    &has_tree[j]);
    if (s == ES_OK)
        s = encode_node(b, idx, count, left, has_left, trees, has_tree, covers(b, lo, hi), out);
    free(idx), free(trees), free(has_tree);
    return s;
}

es_status gen_mst_cover(const es_atp_gen_leaf *leaves, size_t n, const char *const *cover,
                        size_t cover_count, gen_cover_fn fn, void *user,
                        uint8_t root[ES_CID_SHA256_LEN])
{
    builder b = {.leaves = leaves,
                 .n = n,
                 .fn = fn,
                 .user = user,
                 .cover = cover,
                 .cover_count = cover_count};
    b.heights = calloc(n + 1, sizeof *b.heights);
    es_status s = b.heights ? es_arena_create(NODE_ARENA, &b.arena) : ES_ERR_NOMEM;
    int top = 0;
    for (size_t i = 0; s == ES_OK && i < n; i++) {
        b.heights[i] = es_atp_gen_key_height(leaves[i].key, strlen(leaves[i].key));
        if (b.heights[i] > top)
            top = b.heights[i];
    }
    if (s == ES_OK)
        s = build(&b, 0, n, top, root);
    es_buf_free(&b.enc);
    es_arena_destroy(b.arena);
    free(b.heights);
    return s;
}

typedef struct plain_fn {
    es_atp_gen_node_fn fn;
    void *user;
} plain_fn;

static es_status every_node(const uint8_t cid[ES_CID_SHA256_LEN], const uint8_t *bytes, size_t len,
                            bool covered, void *user)
{
    (void)covered;
    const plain_fn *p = user;
    return p->fn(cid, bytes, len, p->user);
}

es_status es_atp_gen_mst(const es_atp_gen_leaf *leaves, size_t n, es_atp_gen_node_fn fn, void *user,
                         uint8_t root[ES_CID_SHA256_LEN])
{
    plain_fn p = {fn, user};
    return gen_mst_cover(leaves, n, NULL, 0, fn ? every_node : NULL, &p, root);
}
