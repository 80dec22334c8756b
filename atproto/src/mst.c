/* Walking a repository's Merkle Search Tree (atproto repository spec, v3).
 *
 * A node is {l: link|null, e: [{p: prefix length, k: key suffix bytes,
 * v: record link, t: link|null}]}: keys are compressed against the previous
 * key of the same node, `l` holds the keys before the first entry and each
 * `t` those between its entry and the next. An in-order walk therefore yields
 * the records sorted by key, which the walker checks: keys must strictly
 * increase, so neither a malicious cycle nor a duplicate can make it loop.
 * Each node is decoded into a scratch arena, copied into a compact array
 * (pointers into the CAR), and the scratch is reset, so memory holds only
 * the path from the root. The bytes of nodes decoded are bounded by the
 * CAR's, so the walk's work is linear in its input. */
#include "mst_walk.h"

#include "atp_internal.h"

#include <stdlib.h>
#include <string.h>

#define MST_MAX_DEPTH  64   /* 4-way fanout: 64 levels is 2^128 keys */
#define NODE_MAX_DEPTH 6    /* node -> e -> entry -> value: a few levels */
#define SCRATCH_LIMIT  ((size_t)4 << 20)

typedef esi_mst_entry entry;
typedef esi_mst_node node;

typedef struct walk {
    const es_car *car;
    esi_mst_check *check; /* the canonical checks and the refusal, or NULL */
    es_arena *scratch;
    es_atp_record_fn fn;
    void *user;
    size_t visits, max_visits;
    /* Node bytes that may still be decoded. A tree decodes each of its
     * nodes once, so this starts at the bytes of all the CAR's blocks: a
     * node that many links reach (only an empty one gets past the key
     * order) cannot make the walk decode more than the CAR holds. */
    size_t budget;
    char last_key[ESI_MST_KEY_MAX + 1];
    size_t last_len;
    bool have_last;
} walk;

/* A refusal of kind `why` (when the walk reports kinds) at the key `key`,
 * or at the last key visited when `key` is NULL. */
static es_status refuse(walk *w, es_atp_error why, const char *key, size_t key_len, es_status s)
{
    if (w->check == NULL || w->check->why != ES_ATP_ERR_NONE)
        return s;
    w->check->why = why;
    if (key == NULL) {
        key = w->have_last ? w->last_key : "";
        key_len = w->have_last ? w->last_len : 0;
    }
    memcpy(w->check->key, key, key_len);
    w->check->key[key_len] = '\0';
    w->check->key_len = key_len;
    return s;
}

/* A link or null; anything else clears *ok. */
static void optional_link(const es_value *v, const uint8_t **ptr, size_t *len, bool *ok)
{
    *ptr = NULL;
    *len = 0;
    if (v == NULL || v->kind == ES_VALUE_NULL)
        return;
    if (v->kind != ES_VALUE_LINK) {
        *ok = false;
        return;
    }
    *ptr = v->u.bytes.ptr;
    *len = v->u.bytes.len;
}

/* Copy what the walk needs out of a decoded node value. */
es_status esi_mst_read_node(const es_value *v, node *n)
{
    const es_value *l = es_value_get(v, "l"), *e = es_value_get(v, "e");
    bool ok = v->kind == ES_VALUE_MAP && e != NULL && e->kind == ES_VALUE_ARRAY;
    if (!ok)
        return es_error(ES_ERR_DECODE, "MST node is not {l, e: [...]}");
    optional_link(l, &n->left, &n->left_len, &ok);
    n->count = e->u.array.count;
    n->entries = es_calloc(n->count ? n->count : 1, sizeof *n->entries);
    if (n->entries == NULL)
        return es_error(ES_ERR_NOMEM, "MST walk: out of memory");
    for (size_t i = 0; ok && i < n->count; i++) {
        const es_value *it = &e->u.array.items[i];
        const es_value *p = es_value_get(it, "p"), *k = es_value_get(it, "k");
        const es_value *val = es_value_get(it, "v");
        entry *en = &n->entries[i];
        ok = p != NULL && p->kind == ES_VALUE_INT && p->u.i >= 0 && k != NULL &&
             k->kind == ES_VALUE_BYTES && val != NULL && val->kind == ES_VALUE_LINK;
        if (!ok)
            break;
        en->prefix = (size_t)p->u.i;
        en->suffix = k->u.bytes.ptr;
        en->suffix_len = k->u.bytes.len;
        en->value = val->u.bytes.ptr;
        en->value_len = val->u.bytes.len;
        optional_link(es_value_get(it, "t"), &en->tree, &en->tree_len, &ok);
    }
    if (!ok) {
        es_free(n->entries);
        return es_error(ES_ERR_DECODE, "MST node entry is not {p, k, v, t}");
    }
    return ES_OK;
}

static es_status load_node(walk *w, const uint8_t *cid, size_t cid_len, node *n)
{
    if (++w->visits > w->max_visits)
        return refuse(w, ES_ATP_ERR_LIMIT, NULL, 0,
                      es_error(ES_ERR_LIMIT, "MST walk: more nodes than blocks in the CAR"));
    es_car_block *b = es_car_find(w->car, cid, cid_len);
    if (b == NULL)
        return refuse(w, ES_ATP_ERR_MISSING_BLOCK, NULL, 0,
                      es_error(ES_ERR_DECODE, "MST node block is absent from the CAR"));
    if (b->len > w->budget)
        return refuse(w, ES_ATP_ERR_LIMIT, NULL, 0,
                      es_error(ES_ERR_LIMIT, "MST walk: more node bytes than the CAR holds (a "
                                             "node reached twice)"));
    w->budget -= b->len;
    es_status s = es_car_verify(b);
    if (s != ES_OK)
        return refuse(w, ES_ATP_ERR_HASH, NULL, 0, s);
    es_arena_reset(w->scratch);
    es_value *v;
    s = esi_atp_decode_exact(b->data, b->len, NODE_MAX_DEPTH, w->scratch, &v);
    if (s == ES_OK)
        s = esi_mst_read_node(v, n);
    else
        s = esi_atp_error_wrap(s, "MST node");
    return s == ES_OK || s == ES_ERR_NOMEM ? s : refuse(w, ES_ATP_ERR_MST, NULL, 0, s);
}

static es_status visit_record(walk *w, const char *key, size_t key_len, const entry *en)
{
    if (w->have_last) {
        size_t common = key_len < w->last_len ? key_len : w->last_len;
        int c = memcmp(w->last_key, key, common);
        if (c > 0 || (c == 0 && w->last_len >= key_len))
            return refuse(w, ES_ATP_ERR_MST, key, key_len,
                          es_error(ES_ERR_DECODE, "MST keys out of order at '%.*s'", (int)key_len,
                                   key));
    }
    memcpy(w->last_key, key, key_len);
    w->last_key[key_len] = '\0';
    w->last_len = key_len;
    w->have_last = true;
    es_car_block *b = es_car_find(w->car, en->value, en->value_len);
    if (b != NULL) {
        es_status s = es_car_verify(b);
        if (s != ES_OK)
            return refuse(w, ES_ATP_ERR_HASH, NULL, 0, s);
    }
    es_atp_record rec = {w->last_key, key_len, en->value, en->value_len, b, NULL};
    return w->fn(&rec, w->user) ? es_error(ES_ERR_ABORTED, "MST walk stopped by the callback")
                                : ES_OK;
}

static es_status walk_node(walk *w, const uint8_t *cid, size_t cid_len, size_t depth, int layer);

/* The canonical shape (atproto repository spec, v3) of a node at `layer`
 * (-1: the root, whose layer is its first key's height): the one tree its
 * keys make. No node is empty but the root of an empty repository, a root
 * holds at least one key, and nothing hangs below layer 0. Sets *layer. */
static es_status check_shape(walk *w, const node *n, size_t depth, int *layer)
{
    bool has_sub = n->left != NULL;
    for (size_t i = 0; i < n->count; i++)
        has_sub = has_sub || n->entries[i].tree != NULL;
    if (*layer < 0) /* the first entry's prefix is 0 (checked by the walk): its key is whole */
        *layer = n->count ? esi_mst_key_height((const char *)n->entries[0].suffix,
                                               n->entries[0].suffix_len)
                          : 0;
    const char *why = NULL;
    if (n->count == 0 && depth == 0 && n->left != NULL)
        why = "a root with no entries (not the canonical tree)";
    else if (n->count == 0 && depth > 0 && n->left == NULL)
        why = "an empty node below the root";
    else if (*layer == 0 && has_sub)
        why = "a subtree below layer 0";
    if (why == NULL)
        return ES_OK;
    const char *key = n->count ? (const char *)n->entries[0].suffix : NULL;
    return refuse(w, ES_ATP_ERR_MST, key, n->count ? n->entries[0].suffix_len : 0,
                  es_error(ES_ERR_DECODE, "MST: %s", why));
}

/* A canonical entry: its key's height is its node's layer, and its prefix
 * is the whole prefix it shares with the previous key (`maximal`: one
 * encoding per tree). */
static es_status check_entry(walk *w, const char *key, size_t key_len, bool maximal, int layer)
{
    int h = esi_mst_key_height(key, key_len);
    if (h != layer)
        return refuse(w, ES_ATP_ERR_MST, key, key_len,
                      es_error(ES_ERR_DECODE, "MST key '%.*s' of height %d sits at layer %d",
                               (int)key_len, key, h, layer));
    if (!maximal)
        return refuse(w, ES_ATP_ERR_MST, key, key_len,
                      es_error(ES_ERR_DECODE, "MST key '%.*s': its prefix length is not the "
                                              "shared prefix",
                               (int)key_len, key));
    return ES_OK;
}

static es_status walk_entries(walk *w, const node *n, size_t depth, int layer)
{
    char key[ESI_MST_KEY_MAX];
    size_t key_len = 0;
    bool canonical = w->check != NULL && w->check->canonical;
    es_status s = canonical ? check_shape(w, n, depth, &layer) : ES_OK;
    if (s == ES_OK && n->left != NULL)
        s = walk_node(w, n->left, n->left_len, depth + 1, layer - 1);
    for (size_t i = 0; s == ES_OK && i < n->count; i++) {
        const entry *en = &n->entries[i];
        if (en->prefix > key_len || (i == 0 && en->prefix != 0) ||
            en->suffix_len > ESI_MST_KEY_MAX - en->prefix)
            return refuse(w, ES_ATP_ERR_MST, NULL, 0,
                          es_error(ES_ERR_DECODE, "MST entry %zu has an impossible key prefix",
                                   i));
        /* the first `prefix` bytes are the previous key's: the prefix is
         * whole when the shared part ends there */
        bool maximal = en->prefix == key_len || en->suffix_len == 0 ||
                       (uint8_t)key[en->prefix] != en->suffix[0];
        memcpy(key + en->prefix, en->suffix, en->suffix_len);
        key_len = en->prefix + en->suffix_len;
        if (canonical)
            s = check_entry(w, key, key_len, maximal, layer);
        if (s == ES_OK)
            s = visit_record(w, key, key_len, en);
        if (s == ES_OK && en->tree != NULL)
            s = walk_node(w, en->tree, en->tree_len, depth + 1, layer - 1);
    }
    return s;
}

static es_status walk_node(walk *w, const uint8_t *cid, size_t cid_len, size_t depth, int layer)
{
    if (depth >= MST_MAX_DEPTH)
        return refuse(w, ES_ATP_ERR_LIMIT, NULL, 0,
                      es_error(ES_ERR_LIMIT, "MST deeper than %d levels", MST_MAX_DEPTH));
    node n;
    es_status s = load_node(w, cid, cid_len, &n);
    if (s != ES_OK)
        return s;
    s = walk_entries(w, &n, depth, layer);
    es_free(n.entries);
    return s;
}

static es_status commit_refused(es_atp_error *why, es_atp_error kind, es_status s)
{
    *why = kind;
    return s;
}

es_status esi_atp_read_commit(const es_car *car, es_arena *arena, es_atp_commit_info *info,
                              es_car_block **block, es_atp_error *why)
{
    *why = ES_ATP_ERR_NONE;
    if (car->root_count == 0)
        return commit_refused(why, ES_ATP_ERR_CAR_ROOT,
                              es_error(ES_ERR_DECODE, "repository CAR has no root"));
    es_car_block *b = es_car_find(car, car->roots[0], car->root_lens[0]);
    if (b == NULL)
        return commit_refused(why, ES_ATP_ERR_MISSING_BLOCK,
                              es_error(ES_ERR_DECODE, "the commit block (roots[0]) is absent"));
    es_status s = es_car_verify(b);
    if (s != ES_OK)
        return commit_refused(why, ES_ATP_ERR_HASH, s);
    es_value *c;
    if ((s = esi_atp_decode_exact(b->data, b->len, NODE_MAX_DEPTH, arena, &c)) != ES_OK)
        return s == ES_ERR_NOMEM ? esi_atp_error_wrap(s, "commit block")
                                 : commit_refused(why, ES_ATP_ERR_COMMIT,
                                                  esi_atp_error_wrap(s, "commit block"));
    const es_value *did = es_value_get(c, "did"), *rev = es_value_get(c, "rev");
    const es_value *version = es_value_get(c, "version"), *data = es_value_get(c, "data");
    if (did == NULL || did->kind != ES_VALUE_STRING || rev == NULL ||
        rev->kind != ES_VALUE_STRING || version == NULL || version->kind != ES_VALUE_INT ||
        data == NULL || data->kind != ES_VALUE_LINK)
        return commit_refused(why, ES_ATP_ERR_COMMIT,
                              es_error(ES_ERR_DECODE,
                                       "the commit is not {did, rev, version, data, ...}"));
    info->did = es_arena_strndup(arena, did->u.str.ptr, did->u.str.len);
    info->rev = es_arena_strndup(arena, rev->u.str.ptr, rev->u.str.len);
    info->version = version->u.i;
    info->data = data->u.bytes.ptr;
    info->data_len = data->u.bytes.len;
    if (info->did == NULL || info->rev == NULL)
        return es_arena_error(arena, "MST walk");
    if (block != NULL)
        *block = b;
    return ES_OK;
}

es_status esi_mst_walk(const es_car *car, const uint8_t *root, size_t root_len,
                       esi_mst_check *check, es_atp_record_fn fn, void *user)
{
    walk *w = es_calloc(1, sizeof *w);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "MST walk: out of memory");
    *w = (walk){.car = car, .check = check, .fn = fn, .user = user, .max_visits = car->count};
    for (size_t i = 0; i < car->count; i++)
        w->budget += car->blocks[i].len;
    es_status s = es_arena_create(SCRATCH_LIMIT, &w->scratch);
    if (s == ES_OK)
        s = walk_node(w, root, root_len, 0, -1);
    es_arena_destroy(w->scratch);
    es_free(w);
    return s;
}

es_status es_atp_walk_repo(const es_car *car, es_arena *arena, es_atp_commit_info *commit,
                           es_atp_record_fn fn, void *user)
{
    if (car == NULL || arena == NULL || fn == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_walk_repo: NULL argument");
    es_atp_commit_info info;
    es_atp_error why;
    es_status s = esi_atp_read_commit(car, arena, &info, NULL, &why);
    if (s != ES_OK)
        return s;
    if (commit != NULL)
        *commit = info;
    return esi_mst_walk(car, info.data, info.data_len, NULL, fn, user);
}
