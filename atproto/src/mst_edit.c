/* An editable Merkle Search Tree (atproto repository spec, v3).
 *
 * A node at layer H is a sequence of items, leaves (key, value) of height H
 * in key order, and subtrees (layer H-1) between them, never two subtrees
 * side by side. The spec's node {l, e: [{p, k, v, t}]} is that sequence:
 * `l` the subtree before the first leaf, each `t` the one after its leaf.
 *
 * Nodes are loaded lazily from the CAR, so only the paths an edit walks are
 * decoded (and hash-checked); the rest of the tree stays as CIDs. The tree
 * is a deterministic function of its keys, so each edit restores the
 * canonical shape: inserting a key of height H into layer H splits the
 * subtree that spanned it; deleting one merges the subtrees on its sides;
 * the root grows to the key's height and is trimmed of leafless top layers.
 *
 * All memory is in one arena bounded by ESI_MST_MEMORY: a node's item array
 * is replaced (not freed) when it grows, which an edit does a few times per
 * layer. */
#include "invert.h"

#include <string.h>

#include <es/arena.h>
#include <es/cbor.h>

#include "atp_internal.h"

#define NODE_DECODE_DEPTH 6
#define SCRATCH_LIMIT     ((size_t)4 << 20)

typedef struct mnode mnode;

typedef struct mitem {
    mnode *sub; /* a subtree, or NULL for a leaf */
    const char *key;
    size_t key_len;
    uint8_t val[ESI_MST_CID_MAX];
    size_t val_len;
} mitem;

struct mnode {
    bool loaded;
    uint8_t cid[ESI_MST_CID_MAX];
    size_t cid_len;
    mitem *items;
    size_t count, cap;
};

struct esi_mst {
    const es_car *car;
    es_arena *arena, *scratch;
    es_buf enc;
    mnode *root; /* NULL: the empty tree */
    int height;  /* the root's layer, once the root is loaded */
    bool root_loaded;
    size_t nodes;
    /* Node bytes that may still be decoded: the CAR's. A valid tree has no
     * two subtrees alike, so an edit decodes each block at most once; a
     * hostile tree that links one large node from many places cannot make
     * the work exceed its input. */
    size_t budget;
    esi_mst_fault fault;
};

static es_status fail(esi_mst *t, esi_mst_fault f, es_status s, const char *what)
{
    t->fault = f;
    return es_error(s, "MST: %s", what);
}

int esi_mst_key_height(const char *key, size_t len)
{
    uint8_t cid[ES_CID_SHA256_LEN];
    if (es_cid_sha256(ES_CID_CODEC_RAW, key, len, cid) != ES_OK)
        return 0;
    const uint8_t *digest = cid + ES_CID_SHA256_LEN - 32;
    int zeros = 0;
    for (int i = 0; i < 32; i++) {
        if (digest[i] == 0) {
            zeros += 4;
            continue;
        }
        zeros += (digest[i] < 0x40) + (digest[i] < 0x10) + (digest[i] < 0x04);
        break;
    }
    return zeros;
}

size_t esi_mst_common_prefix(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t p = 0;
    while (p < alen && p < blen && a[p] == b[p])
        p++;
    return p;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static mnode *new_node(esi_mst *t)
{
    if (t->nodes >= ESI_MST_MAX_NODES)
        return NULL;
    mnode *n = es_arena_calloc(t->arena, 1, sizeof *n);
    if (n != NULL) {
        n->loaded = true;
        t->nodes++;
    }
    return n;
}

static es_status no_memory(esi_mst *t)
{
    if (t->nodes >= ESI_MST_MAX_NODES)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "more nodes than the bound");
    es_status s = es_arena_error(t->arena, "MST");
    /* The arena's bound is the input's fault; memory running out is not. */
    t->fault = s == ES_ERR_LIMIT ? ESI_MST_FAULT_LIMIT : ESI_MST_FAULT_NONE;
    return s;
}

static mnode *stub(esi_mst *t, const uint8_t *cid, size_t len)
{
    mnode *n = new_node(t);
    if (n != NULL) {
        n->loaded = false;
        memcpy(n->cid, cid, len);
        n->cid_len = len;
    }
    return n;
}

/* Room for `more` items at position `at` (items after it shift right). */
static es_status open_gap(esi_mst *t, mnode *n, size_t at, size_t more)
{
    if (more == 0) /* a new node's items may still be NULL: no pointer arithmetic on it */
        return ES_OK;
    if (n->count + more > n->cap) {
        size_t cap = (n->count + more) * 2;
        mitem *items = es_arena_calloc(t->arena, cap, sizeof *items);
        if (items == NULL)
            return no_memory(t);
        if (n->count)
            memcpy(items, n->items, n->count * sizeof *items);
        n->items = items;
        n->cap = cap;
    }
    memmove(n->items + at + more, n->items + at, (n->count - at) * sizeof *n->items);
    n->count += more;
    return ES_OK;
}

static void close_gap(mnode *n, size_t at, size_t less)
{
    memmove(n->items + at, n->items + at + less, (n->count - at - less) * sizeof *n->items);
    n->count -= less;
}

/* ---- loading ------------------------------------------------------------ */

static es_status add_sub(esi_mst *t, mnode *n, const uint8_t *cid, size_t len)
{
    if (cid == NULL)
        return ES_OK;
    if (len > ESI_MST_CID_MAX)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "a subtree CID is too long");
    mnode *s = stub(t, cid, len);
    if (s == NULL)
        return no_memory(t);
    es_status st = open_gap(t, n, n->count, 1);
    if (st == ES_OK)
        n->items[n->count - 1] = (mitem){.sub = s};
    return st;
}

/* Expand the entries' keys, check their layer and order, and fill n->items. */
static es_status fill_items(esi_mst *t, mnode *n, const esi_mst_node *d, int height)
{
    char key[ESI_MST_KEY_MAX];
    size_t key_len = 0;
    es_status s = add_sub(t, n, d->left, d->left_len);
    for (size_t i = 0; s == ES_OK && i < d->count; i++) {
        const esi_mst_entry *e = &d->entries[i];
        if (e->prefix > key_len || (i == 0 && e->prefix != 0) ||
            e->suffix_len > ESI_MST_KEY_MAX - e->prefix)
            return fail(t, ESI_MST_FAULT_BAD_NODE, ES_ERR_DECODE, "impossible key prefix");
        if (e->value_len > ESI_MST_CID_MAX)
            return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "a record CID is too long");
        char prev[ESI_MST_KEY_MAX];
        size_t prev_len = key_len;
        memcpy(prev, key, key_len);
        if (e->suffix_len > 0)
            memcpy(key + e->prefix, e->suffix, e->suffix_len);
        key_len = e->prefix + e->suffix_len;
        if ((i > 0 && key_cmp(prev, prev_len, key, key_len) >= 0) ||
            esi_mst_key_height(key, key_len) != height)
            return fail(t, ESI_MST_FAULT_BAD_NODE, ES_ERR_DECODE,
                        "a key is out of order or not of its node's layer");
        const char *copy = es_arena_strndup(t->arena, key, key_len);
        if (copy == NULL || (s = open_gap(t, n, n->count, 1)) != ES_OK)
            return copy == NULL ? no_memory(t) : s;
        mitem *it = &n->items[n->count - 1];
        *it = (mitem){.key = copy, .key_len = key_len, .val_len = e->value_len};
        memcpy(it->val, e->value, e->value_len);
        s = add_sub(t, n, e->tree, e->tree_len);
    }
    return s;
}

/* Decode a node's block (height < 0: the root, whose layer its keys give). */
static es_status load(esi_mst *t, mnode *n, int height)
{
    if (n->loaded)
        return ES_OK;
    es_car_block *b = t->car ? es_car_find(t->car, n->cid, n->cid_len) : NULL;
    if (b == NULL)
        return fail(t, ESI_MST_FAULT_MISSING_BLOCK, ES_ERR_DECODE, "a node block is absent");
    if (b->len > t->budget)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT,
                    "more node bytes decoded than the CAR holds (a node reached twice)");
    t->budget -= b->len;
    es_value *v;
    es_status s = es_car_verify(b);
    if (s == ES_OK) {
        es_arena_reset(t->scratch);
        s = esi_atp_decode_exact(b->data, b->len, NODE_DECODE_DEPTH, t->scratch, &v);
    }
    esi_mst_node d = {0};
    if (s == ES_OK)
        s = esi_mst_read_node(v, &d);
    if (s != ES_OK) {
        t->fault = s == ES_ERR_NOMEM ? ESI_MST_FAULT_NONE : ESI_MST_FAULT_BAD_NODE;
        return esi_atp_error_wrap(s, "MST node");
    }
    if (height < 0) /* the root: the layer of its first key, 0 when it has none */
        height =
            d.count ? esi_mst_key_height((const char *)d.entries[0].suffix, d.entries[0].suffix_len)
                    : 0;
    if (height == 0 && (d.left != NULL || (d.count && d.entries[d.count - 1].tree)))
        s = fail(t, ESI_MST_FAULT_BAD_NODE, ES_ERR_DECODE, "a subtree below layer 0");
    else if (d.count == 0 && d.left == NULL && t->root != n)
        s = fail(t, ESI_MST_FAULT_BAD_NODE, ES_ERR_DECODE, "an empty node below the root");
    if (s == ES_OK)
        s = fill_items(t, n, &d, height);
    es_free(d.entries);
    if (s == ES_OK) {
        n->loaded = true;
        if (t->root == n && !t->root_loaded) {
            t->height = height;
            t->root_loaded = true;
        }
    }
    return s;
}

static es_status load_root(esi_mst *t)
{
    if (t->root == NULL || t->root_loaded)
        return ES_OK;
    es_status s = load(t, t->root, -1);
    if (s == ES_OK && t->height > ESI_MST_MAX_HEIGHT)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "the tree is too tall");
    if (s == ES_OK && t->root->count == 1 && t->root->items[0].sub)
        return fail(t, ESI_MST_FAULT_BAD_NODE, ES_ERR_DECODE, "a root with no entries");
    return s;
}

/* ---- lookup and edits --------------------------------------------------- */

/* The index of the first item after all leaves whose key is below `key`;
 * *equal when the leaf there is `key` itself. */
static size_t position(const mnode *n, const char *key, size_t len, bool *equal)
{
    *equal = false;
    for (size_t i = 0; i < n->count; i++) {
        const mitem *it = &n->items[i];
        if (it->sub != NULL)
            continue;
        int c = key_cmp(it->key, it->key_len, key, len);
        if (c >= 0) {
            *equal = c == 0;
            return i;
        }
    }
    return n->count;
}

/* The subtree just before position `pos`, or NULL. */
static mnode *sub_before(const mnode *n, size_t pos)
{
    return pos > 0 ? n->items[pos - 1].sub : NULL;
}

static es_status find(esi_mst *t, const char *key, size_t len, int kh, mitem **out)
{
    *out = NULL;
    mnode *n = t->root;
    for (int h = t->height; n != NULL && h >= kh; h--) {
        es_status s = load(t, n, h);
        if (s != ES_OK)
            return s;
        bool equal;
        size_t pos = position(n, key, len, &equal);
        if (equal) {
            *out = &n->items[pos];
            return ES_OK;
        }
        n = sub_before(n, pos);
    }
    return ES_OK;
}

static es_status check_key(esi_mst *t, const char *key, size_t len, int *kh)
{
    if (key == NULL || len == 0 || len > ESI_MST_KEY_MAX)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "a key is empty or too long");
    *kh = esi_mst_key_height(key, len);
    if (*kh > ESI_MST_MAX_HEIGHT)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "a key's layer is above the bound");
    return load_root(t);
}

es_status esi_mst_get(esi_mst *t, const char *key, size_t len, const uint8_t **cid, size_t *cid_len,
                      bool *found)
{
    int kh = 0;
    mitem *it = NULL;
    es_status s = check_key(t, key, len, &kh);
    if (s == ES_OK)
        s = find(t, key, len, kh, &it);
    *found = it != NULL;
    *cid = it ? it->val : NULL;
    *cid_len = it ? it->val_len : 0;
    return s;
}

es_status esi_mst_update(esi_mst *t, const char *key, size_t len, const uint8_t *cid,
                         size_t cid_len)
{
    int kh = 0;
    mitem *it = NULL;
    if (cid_len > ESI_MST_CID_MAX)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "a record CID is too long");
    es_status s = check_key(t, key, len, &kh);
    if (s == ES_OK)
        s = find(t, key, len, kh, &it);
    if (s == ES_OK && it == NULL)
        return fail(t, ESI_MST_FAULT_KEY, ES_ERR_NOT_FOUND, "update of an absent key");
    if (s == ES_OK) {
        memcpy(it->val, cid, cid_len);
        it->val_len = cid_len;
    }
    return s;
}

/* Split the subtree `n` (layer h) around `key`: *left takes what sorts
 * before it, *right what sorts after; either may end NULL (empty). */
static es_status split(esi_mst *t, mnode *n, int h, const char *key, size_t len, mnode **left,
                       mnode **right)
{
    es_status s = load(t, n, h);
    if (s != ES_OK)
        return s;
    bool equal;
    size_t pos = position(n, key, len, &equal);
    mnode *inner = sub_before(n, pos), *il = NULL, *ir = NULL;
    if (inner != NULL && (s = split(t, inner, h - 1, key, len, &il, &ir)) != ES_OK)
        return s;
    mnode *r = new_node(t);
    if (r == NULL)
        return no_memory(t);
    size_t tail = n->count - pos;
    if ((s = open_gap(t, r, 0, tail + (ir != NULL))) != ES_OK)
        return s;
    if (ir != NULL)
        r->items[0] = (mitem){.sub = ir};
    if (tail > 0)
        memcpy(r->items + (ir != NULL), n->items + pos, tail * sizeof *n->items);
    n->count = pos;
    if (inner != NULL) { /* the spanning subtree's left part replaces it */
        if (il != NULL)
            n->items[pos - 1].sub = il;
        else
            n->count--;
    }
    *left = n->count ? n : NULL;
    *right = r->count ? r : NULL;
    return ES_OK;
}

static es_status insert_at(esi_mst *t, mnode *n, int h, const char *key, size_t len, int kh,
                           const mitem *leaf)
{
    es_status s = load(t, n, h);
    if (s != ES_OK)
        return s;
    bool equal;
    size_t pos = position(n, key, len, &equal);
    if (equal)
        return fail(t, ESI_MST_FAULT_KEY, ES_ERR_EXISTS, "insert of a present key");
    mnode *sub = sub_before(n, pos);
    if (kh < h) {
        if (sub == NULL) {
            if ((sub = new_node(t)) == NULL || (s = open_gap(t, n, pos, 1)) != ES_OK)
                return sub == NULL ? no_memory(t) : s;
            n->items[pos] = (mitem){.sub = sub};
        }
        return insert_at(t, sub, h - 1, key, len, kh, leaf);
    }
    if (sub == NULL) {
        if ((s = open_gap(t, n, pos, 1)) == ES_OK)
            n->items[pos] = *leaf;
        return s;
    }
    mnode *l, *r;
    if ((s = split(t, sub, h - 1, key, len, &l, &r)) != ES_OK)
        return s;
    size_t at = pos - 1, parts = (size_t)(l != NULL) + 1 + (size_t)(r != NULL);
    if ((s = open_gap(t, n, at + 1, parts - 1)) != ES_OK)
        return s;
    if (l != NULL)
        n->items[at++] = (mitem){.sub = l};
    n->items[at++] = *leaf;
    if (r != NULL)
        n->items[at] = (mitem){.sub = r};
    return ES_OK;
}

es_status esi_mst_insert(esi_mst *t, const char *key, size_t len, const uint8_t *cid,
                         size_t cid_len)
{
    int kh = 0;
    if (cid_len == 0 || cid_len > ESI_MST_CID_MAX)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "a record CID is empty or too long");
    es_status s = check_key(t, key, len, &kh);
    if (s != ES_OK)
        return s;
    mitem leaf = {.key = es_arena_strndup(t->arena, key, len), .key_len = len, .val_len = cid_len};
    if (leaf.key == NULL)
        return no_memory(t);
    memcpy(leaf.val, cid, cid_len);
    if (t->root == NULL) {
        if ((t->root = new_node(t)) == NULL)
            return no_memory(t);
        t->root_loaded = true;
        t->height = kh;
    }
    while (t->height < kh) { /* grow: the old root becomes the new one's only subtree */
        mnode *top = new_node(t);
        if (top == NULL || (s = open_gap(t, top, 0, 1)) != ES_OK)
            return top == NULL ? no_memory(t) : s;
        top->items[0] = (mitem){.sub = t->root};
        if (t->root->count == 0)
            top->count = 0; /* an empty root holds nothing to keep */
        t->root = top;
        t->height++;
    }
    return insert_at(t, t->root, t->height, key, len, kh, &leaf);
}

/* Join two adjacent subtrees of layer h (a before b) into a. */
static es_status merge(esi_mst *t, mnode *a, mnode *b, int h)
{
    es_status s = load(t, a, h);
    if (s == ES_OK)
        s = load(t, b, h);
    if (s != ES_OK)
        return s;
    size_t skip = 0;
    if (a->count && b->count && a->items[a->count - 1].sub && b->items[0].sub) {
        if ((s = merge(t, a->items[a->count - 1].sub, b->items[0].sub, h - 1)) != ES_OK)
            return s;
        skip = 1;
    }
    size_t at = a->count;
    if ((s = open_gap(t, a, at, b->count - skip)) == ES_OK)
        memcpy(a->items + at, b->items + skip, (b->count - skip) * sizeof *b->items);
    return s;
}

static es_status delete_at(esi_mst *t, mnode *n, int h, const char *key, size_t len, int kh)
{
    es_status s = load(t, n, h);
    if (s != ES_OK)
        return s;
    bool equal;
    size_t pos = position(n, key, len, &equal);
    if (kh < h) {
        mnode *sub = sub_before(n, pos);
        if (sub == NULL)
            return fail(t, ESI_MST_FAULT_KEY, ES_ERR_NOT_FOUND, "delete of an absent key");
        if ((s = delete_at(t, sub, h - 1, key, len, kh)) == ES_OK && sub->count == 0)
            close_gap(n, pos - 1, 1);
        return s;
    }
    if (!equal)
        return fail(t, ESI_MST_FAULT_KEY, ES_ERR_NOT_FOUND, "delete of an absent key");
    close_gap(n, pos, 1);
    if (pos > 0 && pos < n->count && n->items[pos - 1].sub && n->items[pos].sub) {
        if ((s = merge(t, n->items[pos - 1].sub, n->items[pos].sub, h - 1)) != ES_OK)
            return s;
        close_gap(n, pos, 1);
    }
    return ES_OK;
}

es_status esi_mst_delete(esi_mst *t, const char *key, size_t len)
{
    int kh = 0;
    es_status s = check_key(t, key, len, &kh);
    if (s != ES_OK)
        return s;
    if (t->root == NULL || kh > t->height)
        return fail(t, ESI_MST_FAULT_KEY, ES_ERR_NOT_FOUND, "delete of an absent key");
    if ((s = delete_at(t, t->root, t->height, key, len, kh)) != ES_OK)
        return s;
    /* Trim leafless top layers: a root is never a lone subtree. */
    while (t->root->count == 1 && t->root->items[0].sub) {
        mnode *only = t->root->items[0].sub;
        if ((s = load(t, only, t->height - 1)) != ES_OK)
            return s;
        t->root = only;
        t->height--;
    }
    if (t->root->count == 0)
        t->height = 0;
    return ES_OK;
}

/* ---- encoding ----------------------------------------------------------- */

static es_status cbor_head(es_buf *b, uint8_t major, uint64_t v)
{
    uint8_t h[9];
    size_t n = 1;
    if (v < 24) {
        h[0] = (uint8_t)((unsigned)major << 5 | v);
    } else {
        int bytes = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
        unsigned info = bytes == 1 ? 24 : bytes == 2 ? 25 : bytes == 4 ? 26 : 27;
        h[0] = (uint8_t)((unsigned)major << 5 | info);
        for (int i = bytes; i > 0; i--)
            h[n++] = (uint8_t)(v >> (8 * (i - 1)));
    }
    return es_buf_append(b, h, n);
}

/* A DAG-CBOR link: tag 42 over the CID's bytes after a 0x00 prefix. */
static es_status cbor_link(es_buf *b, const uint8_t *cid, size_t len)
{
    if (cid == NULL)
        return es_buf_append_byte(b, 0xf6); /* null */
    static const uint8_t tag42[] = {0xd8, 0x2a};
    es_status s = es_buf_append(b, tag42, sizeof tag42);
    if (s == ES_OK)
        s = cbor_head(b, 2, len + 1);
    if (s == ES_OK)
        s = es_buf_append_byte(b, 0x00);
    return s == ES_OK ? es_buf_append(b, cid, len) : s;
}

static es_status cbor_text1(es_buf *b, char c)
{
    uint8_t t[2] = {0x61, (uint8_t)c};
    return es_buf_append(b, t, 2);
}

static size_t leaf_count(const mnode *n)
{
    size_t c = 0;
    for (size_t i = 0; i < n->count; i++)
        c += n->items[i].sub == NULL;
    return c;
}

static const uint8_t *sub_cid(const mitem *it, size_t *len)
{
    *len = it->sub ? it->sub->cid_len : 0;
    return it->sub ? it->sub->cid : NULL;
}

/* The node as canonical DAG-CBOR: map keys sorted ("e" < "l"; "k" < "p" <
 * "t" < "v"), each key stored as its suffix after the prefix it shares with
 * the previous key of the node. */
static es_status encode_node(es_buf *b, const mnode *n)
{
    es_buf_clear(b);
    es_status s = cbor_head(b, 5, 2);
    size_t first = n->count && n->items[0].sub ? 1 : 0, cl;
    const mitem *prev = NULL;
    if (s == ES_OK && (s = cbor_text1(b, 'e')) == ES_OK)
        s = cbor_head(b, 4, leaf_count(n));
    for (size_t i = first; s == ES_OK && i < n->count; i++) {
        const mitem *it = &n->items[i];
        if (it->sub)
            continue;
        size_t p = prev ? esi_mst_common_prefix(prev->key, prev->key_len, it->key, it->key_len) : 0;
        const mitem *next = i + 1 < n->count ? &n->items[i + 1] : NULL;
        const uint8_t *tree = next ? sub_cid(next, &cl) : NULL;
        if (tree == NULL)
            cl = 0;
        s = cbor_head(b, 5, 4);
        if (s == ES_OK && (s = cbor_text1(b, 'k')) == ES_OK &&
            (s = cbor_head(b, 2, it->key_len - p)) == ES_OK)
            s = es_buf_append(b, it->key + p, it->key_len - p);
        if (s == ES_OK && (s = cbor_text1(b, 'p')) == ES_OK)
            s = cbor_head(b, 0, p);
        if (s == ES_OK && (s = cbor_text1(b, 't')) == ES_OK)
            s = cbor_link(b, tree, cl);
        if (s == ES_OK && (s = cbor_text1(b, 'v')) == ES_OK)
            s = cbor_link(b, it->val, it->val_len);
        prev = it;
    }
    const uint8_t *left = first ? sub_cid(&n->items[0], &cl) : NULL;
    if (s == ES_OK && (s = cbor_text1(b, 'l')) == ES_OK)
        s = cbor_link(b, left, left ? cl : 0);
    return s;
}

/* Re-encode every loaded node below and including `n`, children first. */
static es_status seal(esi_mst *t, mnode *n, esi_mst_node_fn fn, void *user, size_t depth)
{
    if (!n->loaded)
        return ES_OK;
    if (depth > ESI_MST_MAX_HEIGHT + 1)
        return fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "the tree is too tall");
    es_status s = ES_OK;
    for (size_t i = 0; s == ES_OK && i < n->count; i++)
        if (n->items[i].sub)
            s = seal(t, n->items[i].sub, fn, user, depth + 1);
    if (s == ES_OK)
        s = encode_node(&t->enc, n);
    if (s == ES_OK)
        s = es_cid_sha256(ES_CID_CODEC_DAG_CBOR, t->enc.data, t->enc.len, n->cid);
    n->cid_len = ES_CID_SHA256_LEN;
    if (s == ES_OK && fn != NULL)
        s = fn(n->cid, n->cid_len, t->enc.data, t->enc.len, user);
    return s;
}

es_status esi_mst_root(esi_mst *t, esi_mst_node_fn fn, void *user, uint8_t out[ES_CID_SHA256_LEN])
{
    es_status s = load_root(t);
    if (s != ES_OK)
        return s;
    if (t->root == NULL && (t->root = new_node(t)) == NULL)
        return no_memory(t);
    if ((s = seal(t, t->root, fn, user, 0)) != ES_OK)
        return s;
    if (t->root->cid_len != ES_CID_SHA256_LEN)
        return fail(t, ESI_MST_FAULT_BAD_NODE, ES_ERR_DECODE, "the root CID is not sha2-256");
    memcpy(out, t->root->cid, ES_CID_SHA256_LEN);
    return ES_OK;
}

/* ---- lifetime ----------------------------------------------------------- */

es_status esi_mst_open(const es_car *car, const uint8_t *root, size_t root_len, esi_mst **out)
{
    *out = NULL;
    esi_mst *t = es_calloc(1, sizeof *t);
    if (t == NULL)
        return es_error(ES_ERR_NOMEM, "MST: out of memory");
    t->car = car;
    for (size_t i = 0; car != NULL && i < car->count; i++)
        t->budget += car->blocks[i].len;
    es_status s = es_arena_create(ESI_MST_MEMORY, &t->arena);
    if (s == ES_OK)
        s = es_arena_create(SCRATCH_LIMIT, &t->scratch);
    if (s == ES_OK && root != NULL) {
        if (root_len == 0 || root_len > ESI_MST_CID_MAX)
            s = fail(t, ESI_MST_FAULT_LIMIT, ES_ERR_LIMIT, "the root CID is empty or too long");
        else if ((t->root = stub(t, root, root_len)) == NULL)
            s = no_memory(t);
    }
    if (s != ES_OK) {
        esi_mst_destroy(t);
        return s;
    }
    *out = t;
    return ES_OK;
}

void esi_mst_destroy(esi_mst *t)
{
    if (t == NULL)
        return;
    es_arena_destroy(t->arena);
    es_arena_destroy(t->scratch);
    es_buf_free(&t->enc);
    es_free(t);
}

esi_mst_fault esi_mst_last_fault(const esi_mst *t)
{
    return t ? t->fault : ESI_MST_FAULT_NONE;
}
