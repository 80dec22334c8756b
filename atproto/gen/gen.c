/* The synthetic firehose: a few accounts whose repositories evolve by
 * commits of 1-3 ops (posts, likes, follows, reposts, profile updates,
 * deletes), each frame built exactly as a PDS would: records and MST nodes as
 * DAG-CBOR blocks, a commit object over the new tree, a CAR of the new
 * blocks, and the #commit body around it. */
#include "gen_internal.h"

#include <es/cbor.h>

#include <jansson.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "gen_sign.h"

#define DEFAULT_REPOS    50
#define DEFAULT_START_MS 1748779200000LL /* 2025-06-01T12:00:00Z */
#define MAX_RECORDS      200             /* per repo: beyond this, deletes win */
#define FRAME_ARENA      ((size_t)4 << 20)

typedef uint8_t cid_t[ES_CID_SHA256_LEN];

typedef struct record {
    char *key; /* collection/rkey */
    cid_t cid;
    uint8_t *bytes;
    size_t len;
} record;

typedef struct repo {
    char did[40];
    char handle[64];         /* the handle of its DID document */
    es_atp_gen_key *key;     /* its current signing key; derived when first needed */
    unsigned key_generation; /* 0, then 1 after a rotation */
    bool identity_seen;      /* an #identity was emitted: no rotation after it */
    char rev[14]; /* "" before the first commit */
    cid_t data;   /* MST root of the last commit */
    cid_t commit;
    uint8_t *commit_bytes; /* the block of `commit`: what getRepo serves (malloc'ed) */
    size_t commit_len;
    bool records_changed; /* records added since `commit` (es_atp_gen_fill_repo) */
    record *recs; /* sorted by key */
    size_t count, cap;
    cid_t *nodes; /* the current tree's node CIDs, sorted */
    size_t node_count;
    bool active;
} repo;

typedef struct block {
    cid_t cid;
    uint8_t *bytes;
    size_t len;
    bool covered; /* an MST node on the paths of the commit's ops */
} block;

typedef struct block_list {
    block *items;
    size_t count, cap;
} block_list;

struct es_atp_gen {
    es_atp_gen_options o;
    uint64_t rng;
    uint64_t seq;
    int64_t now_us;
    repo *repos;
    es_arena *arena; /* one frame's values */
    es_buf scratch;
    cid_t empty_root; /* the empty MST: prevData of a repo's first commit */
    es_atp_gen_counts counts;
};

/* ---- small pieces -------------------------------------------------------- */

static uint64_t next_random(es_atp_gen *g)
{
    uint64_t z = (g->rng += 0x9E3779B97F4A7C15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t pick(es_atp_gen *g, size_t n)
{
    return n ? (size_t)(next_random(g) % n) : 0;
}

static const char base32_sortable[] = "234567abcdefghijklmnopqrstuvwxyz";

/* A TID: microseconds since the epoch and a 10-bit clock id, 13 characters. */
static void make_tid(uint64_t micros, unsigned clock_id, char out[14])
{
    uint64_t v = (micros << 10 | (clock_id & 1023)) & ~(1ull << 63);
    for (int i = 0; i < 13; i++)
        out[i] = base32_sortable[(v >> (60 - 5 * i)) & 31];
    out[13] = '\0';
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of a time in microseconds (after 1970). */
static void format_time(int64_t us, char out[48])
{
    int64_t ms = us / 1000, secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    /* civil from days (days since 1970-01-01, non-negative here) */
    int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)y, (int)m, (int)d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)(ms % 1000));
}

static es_status block_add(block_list *l, const cid_t cid, const uint8_t *bytes, size_t len)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        block *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL)
            return ES_ERR_NOMEM;
        l->items = items;
        l->cap = cap;
    }
    block *b = &l->items[l->count];
    b->bytes = malloc(len ? len : 1);
    if (b->bytes == NULL)
        return ES_ERR_NOMEM;
    memcpy(b->cid, cid, sizeof b->cid);
    memcpy(b->bytes, bytes, len);
    b->len = len;
    b->covered = false;
    l->count++;
    return ES_OK;
}

static void block_list_free(block_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].bytes);
    free(l->items);
    *l = (block_list){0};
}

static es_status collect_node(const cid_t cid, const uint8_t *bytes, size_t len, void *user)
{
    return block_add(user, cid, bytes, len);
}

/* ---- CAR ----------------------------------------------------------------- */

static es_status car_section(es_buf *car, const cid_t cid, const uint8_t *bytes, size_t len)
{
    uint8_t varint[10];
    size_t n = es_varint_encode(ES_CID_SHA256_LEN + len, varint);
    es_status s = es_buf_append(car, varint, n);
    if (s == ES_OK)
        s = es_buf_append(car, cid, ES_CID_SHA256_LEN);
    return s == ES_OK ? es_buf_append(car, bytes, len) : s;
}

/* A CAR whose root is `root`, holding `blocks`. */
static es_status write_car(es_atp_gen *g, const cid_t root, const block_list *blocks, es_buf *car)
{
    es_arena *a = g->arena;
    es_value *root_link = gv_link(a, root);
    es_value *header = gv_map(a, 2, "roots", gv_array(a, 1, &root_link), "version", gv_int(a, 1));
    es_buf_clear(&g->scratch);
    es_status s = header ? es_cbor_encode(header, NULL, &g->scratch) : ES_ERR_NOMEM;
    uint8_t varint[10];
    size_t n = es_varint_encode(g->scratch.len, varint);
    if (s == ES_OK)
        s = es_buf_append(car, varint, n);
    if (s == ES_OK)
        s = es_buf_append(car, g->scratch.data, g->scratch.len);
    for (size_t i = 0; s == ES_OK && i < blocks->count; i++)
        s = car_section(car, blocks->items[i].cid, blocks->items[i].bytes, blocks->items[i].len);
    return s;
}

/* ---- records ------------------------------------------------------------- */

static const char *const words[] = {
    "the",   "event", "store", "keeps", "every",  "record", "firehose", "relay",  "sky",
    "blue",  "today", "again", "small", "fast",   "stream", "replay",   "merkle", "tree",
    "hello", "world", "note",  "river", "garden", "light",  "coffee",   "train"};

static es_value *post_text(es_atp_gen *g)
{
    char text[300];
    size_t len = 0, n = 3 + pick(g, 25);
    for (size_t i = 0; i < n; i++) {
        const char *w = words[pick(g, ES_ARRAY_LEN(words))];
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? " " : "", w);
    }
    return gv_strn(g->arena, text, len);
}

static size_t find_record(const repo *r, const char *key, bool *found)
{
    size_t lo = 0, hi = r->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->recs[mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* A random existing post of any repo, for likes and reposts. */
static const record *some_post(es_atp_gen *g, const repo **owner)
{
    for (int tries = 0; tries < 8; tries++) {
        const repo *r = &g->repos[pick(g, g->o.repos)];
        if (r->count == 0)
            continue;
        const record *rec = &r->recs[pick(g, r->count)];
        if (strncmp(rec->key, "app.bsky.feed.post/", 19) == 0) {
            *owner = r;
            return rec;
        }
    }
    return NULL;
}

/* A strongRef to some post, or NULL when there is none yet. */
static es_value *post_ref(es_atp_gen *g)
{
    const repo *owner;
    const record *post = some_post(g, &owner);
    if (post == NULL)
        return NULL;
    char uri[160], cid[ES_CID_STRING_MAX];
    snprintf(uri, sizeof uri, "at://%s/%s", owner->did, post->key);
    if (es_cid_to_string(post->cid, ES_CID_SHA256_LEN, cid, sizeof cid) != ES_OK)
        return NULL;
    return gv_map(g->arena, 2, "cid", gv_str(g->arena, cid), "uri", gv_str(g->arena, uri));
}

/* The value of a new record of `collection` (NULL when it cannot be made now). */
static es_value *new_record(es_atp_gen *g, const char *collection, const char *created)
{
    es_arena *a = g->arena;
    if (strcmp(collection, "app.bsky.feed.post") == 0)
        return gv_map(a, 4, "$type", gv_str(a, collection), "createdAt", gv_str(a, created),
                      "langs", gv_array(a, 1, (es_value *[]){gv_str(a, "en")}), "text",
                      post_text(g));
    if (strcmp(collection, "app.bsky.graph.follow") == 0)
        return gv_map(a, 3, "$type", gv_str(a, collection), "createdAt", gv_str(a, created),
                      "subject", gv_str(a, g->repos[pick(g, g->o.repos)].did));
    if (strcmp(collection, "app.bsky.actor.profile") == 0)
        return gv_map(a, 3, "$type", gv_str(a, collection), "description", post_text(g),
                      "displayName", gv_str(a, words[pick(g, ES_ARRAY_LEN(words))]));
    es_value *ref = post_ref(g); /* likes and reposts */
    return ref ? gv_map(a, 3, "$type", gv_str(a, collection), "createdAt", gv_str(a, created),
                        "subject", ref)
               : NULL;
}

static es_status store_record(repo *r, size_t at, bool replace, const char *key, const cid_t cid,
                              const es_buf *bytes)
{
    uint8_t *copy = malloc(bytes->len);
    if (copy == NULL)
        return ES_ERR_NOMEM;
    memcpy(copy, bytes->data, bytes->len);
    if (replace) {
        free(r->recs[at].bytes);
    } else {
        if (r->count == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            record *recs = realloc(r->recs, cap * sizeof *recs);
            if (recs == NULL) {
                free(copy);
                return ES_ERR_NOMEM;
            }
            r->recs = recs;
            r->cap = cap;
        }
        char *k = malloc(strlen(key) + 1);
        if (k == NULL) {
            free(copy);
            return ES_ERR_NOMEM;
        }
        strcpy(k, key);
        memmove(&r->recs[at + 1], &r->recs[at], (r->count - at) * sizeof *r->recs);
        r->recs[at].key = k;
        r->count++;
    }
    memcpy(r->recs[at].cid, cid, sizeof(cid_t));
    r->recs[at].bytes = copy;
    r->recs[at].len = bytes->len;
    return ES_OK;
}

static void remove_record(repo *r, size_t at)
{
    free(r->recs[at].key);
    free(r->recs[at].bytes);
    memmove(&r->recs[at], &r->recs[at + 1], (r->count - at - 1) * sizeof *r->recs);
    r->count--;
}

/* ---- ops ----------------------------------------------------------------- */

typedef struct op_info {
    const char *action;
    char path[96];
    bool has_cid, has_prev;
    cid_t cid, prev;
} op_info;

/* Whether one of the commit's earlier ops touched `path`: the ops of a commit
 * are a diff, one per path at most. */
static bool touched(const op_info *earlier, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(earlier[i].path, path) == 0)
            return true;
    return false;
}

/* Delete a random record the commit has not touched yet; false when the
 * tries all hit touched ones. */
static bool op_delete(es_atp_gen *g, repo *r, op_info *op, const op_info *earlier, size_t n)
{
    for (int tries = 0; tries < 8; tries++) {
        size_t at = pick(g, r->count);
        if (touched(earlier, n, r->recs[at].key))
            continue;
        op->action = "delete";
        snprintf(op->path, sizeof op->path, "%s", r->recs[at].key);
        op->has_prev = true;
        memcpy(op->prev, r->recs[at].cid, sizeof(cid_t));
        remove_record(r, at);
        g->counts.deletes++;
        return true;
    }
    return false;
}

/* Create a record (or update the profile), adding its block to `blocks`. */
static es_status op_write(es_atp_gen *g, repo *r, op_info *op, block_list *blocks,
                          const op_info *earlier, size_t n)
{
    static const char *const kinds[] = {"app.bsky.feed.post",   "app.bsky.feed.like",
                                        "app.bsky.feed.like",   "app.bsky.graph.follow",
                                        "app.bsky.feed.repost", "app.bsky.actor.profile"};
    const char *collection = kinds[pick(g, ES_ARRAY_LEN(kinds))];
    char created[48], rkey[14];
    format_time(g->now_us, created);
    if (strcmp(collection, "app.bsky.actor.profile") == 0 &&
        touched(earlier, n, "app.bsky.actor.profile/self"))
        collection = "app.bsky.feed.post";
    es_value *v = new_record(g, collection, created);
    if (v == NULL) { /* nothing to like yet */
        collection = "app.bsky.feed.post";
        v = new_record(g, collection, created);
    }
    /* TIDs of one commit share the time; the clock id's low bits keep them apart */
    if (strcmp(collection, "app.bsky.actor.profile") == 0)
        strcpy(rkey, "self");
    else
        make_tid((uint64_t)g->now_us, (unsigned)(pick(g, 256) << 2 | n), rkey);
    snprintf(op->path, sizeof op->path, "%s/%s", collection, rkey);
    cid_t cid;
    es_status s = gv_block(v, &g->scratch, cid);
    if (s != ES_OK)
        return s;
    bool found;
    size_t at = find_record(r, op->path, &found);
    op->action = found ? "update" : "create";
    op->has_cid = true;
    memcpy(op->cid, cid, sizeof cid);
    if (found) {
        op->has_prev = true;
        memcpy(op->prev, r->recs[at].cid, sizeof cid);
    }
    if (found)
        g->counts.updates++;
    else
        g->counts.creates++;
    s = store_record(r, at, found, op->path, cid, &g->scratch);
    return s == ES_OK ? block_add(blocks, cid, g->scratch.data, g->scratch.len) : s;
}

static es_value *op_value(es_arena *a, const op_info *op)
{
    es_value *cid = op->has_cid ? gv_link(a, op->cid) : gv_null(a);
    if (op->has_prev)
        return gv_map(a, 4, "action", gv_str(a, op->action), "cid", cid, "path",
                      gv_str(a, op->path), "prev", gv_link(a, op->prev));
    return gv_map(a, 3, "action", gv_str(a, op->action), "cid", cid, "path", gv_str(a, op->path));
}

/* ---- commits ------------------------------------------------------------- */

static int cid_cmp(const void *x, const void *y)
{
    return memcmp(x, y, sizeof(cid_t));
}

static es_status collect_covered(const cid_t cid, const uint8_t *bytes, size_t len, bool covered,
                                 void *user)
{
    block_list *l = user;
    es_status s = block_add(l, cid, bytes, len);
    if (s == ES_OK)
        l->items[l->count - 1].covered = covered;
    return s;
}

/* Rebuild the repo's MST; add to `diff` the nodes the previous tree lacked
 * and those on the paths of the ops' keys (`keys`): the blocks a Sync 1.1
 * verifier needs to invert the commit, as a PDS sends them. */
static es_status rebuild_tree(repo *r, const char *const *keys, size_t nkeys, block_list *diff)
{
    es_atp_gen_leaf *leaves = calloc(r->count + 1, sizeof *leaves);
    block_list nodes = {0};
    if (leaves == NULL)
        return ES_ERR_NOMEM;
    for (size_t i = 0; i < r->count; i++) {
        leaves[i].key = r->recs[i].key;
        memcpy(leaves[i].cid, r->recs[i].cid, sizeof(cid_t));
    }
    es_status s = gen_mst_cover(leaves, r->count, keys, nkeys, collect_covered, &nodes, r->data);
    free(leaves);
    cid_t *ids = s == ES_OK ? calloc(nodes.count + 1, sizeof *ids) : NULL;
    if (s == ES_OK && ids == NULL)
        s = ES_ERR_NOMEM;
    for (size_t i = 0; s == ES_OK && i < nodes.count; i++) {
        block *b = &nodes.items[i];
        memcpy(ids[i], b->cid, sizeof(cid_t));
        if (b->covered || r->node_count == 0 ||
            bsearch(b->cid, r->nodes, r->node_count, sizeof(cid_t), cid_cmp) == NULL)
            s = block_add(diff, b->cid, b->bytes, b->len);
    }
    if (s == ES_OK) {
        qsort(ids, nodes.count, sizeof *ids, cid_cmp);
        free(r->nodes);
        r->nodes = ids;
        r->node_count = nodes.count;
    } else {
        free(ids);
    }
    block_list_free(&nodes);
    return s;
}

/* ---- keys and signatures ------------------------------------------------ */

static esi_atp_curve repo_curve(const es_atp_gen *g, const repo *r)
{
    if (g->o.curves == ES_ATP_GEN_CURVES_K256)
        return ESI_ATP_K256;
    if (g->o.curves == ES_ATP_GEN_CURVES_P256)
        return ESI_ATP_P256;
    return (r - g->repos) % 2 == 0 ? ESI_ATP_K256 : ESI_ATP_P256; /* mixed: they alternate */
}

/* The repo's current key: derived from the seed, the repo's number and its
 * key generation (not from the frame stream, so that signing or not, and
 * rotating or not, draws the same random numbers for everything else). */
static es_status repo_key(es_atp_gen *g, repo *r, const es_atp_gen_key **out)
{
    if (r->key == NULL) {
        uint8_t seed[14 + 8 + 8 + 4];
        uint64_t index = (uint64_t)(r - g->repos);
        memcpy(seed, "es-atproto-gen", 14);
        for (int i = 0; i < 8; i++) {
            seed[14 + i] = (uint8_t)(g->o.seed >> (8 * i));
            seed[22 + i] = (uint8_t)(index >> (8 * i));
        }
        for (int i = 0; i < 4; i++)
            seed[30 + i] = (uint8_t)(r->key_generation >> (8 * i));
        es_status s = es_atp_gen_key_derive(repo_curve(g, r), seed, sizeof seed, &r->key);
        if (s != ES_OK)
            return s;
    }
    *out = r->key;
    return ES_OK;
}

/* The signature of a commit: over the DAG-CBOR of the commit without `sig`
 * (atproto repository spec, "Commit Objects"). */
static es_status sign_commit(es_atp_gen *g, repo *r, const es_value *bare, uint8_t sig[64])
{
    const es_atp_gen_key *key = NULL;
    es_status s = bare ? repo_key(g, r, &key) : ES_ERR_NOMEM;
    es_buf_clear(&g->scratch);
    if (s == ES_OK)
        s = es_cbor_encode(bare, NULL, &g->scratch);
    return s == ES_OK ? es_atp_gen_sign(key, g->scratch.data, g->scratch.len, sig) : s;
}

/* Remember the repo's newest commit block: es_atp_gen_repo_car serves that
 * very commit (rev, data, sig), as a PDS does after it. */
static es_status keep_commit(repo *r, const es_buf *bytes)
{
    uint8_t *copy = realloc(r->commit_bytes, bytes->len);
    if (copy == NULL)
        return ES_ERR_NOMEM;
    memcpy(copy, bytes->data, bytes->len);
    r->commit_bytes = copy;
    r->commit_len = bytes->len;
    r->records_changed = false;
    return ES_OK;
}

/* The commit object (version 3, prev null) of the repo's current tree and
 * `rev`, signed with the repo's key (or 64 random bytes when unsigned). */
static es_status commit_block(es_atp_gen *g, repo *r, const char *rev, block_list *blocks)
{
    es_arena *a = g->arena;
    uint8_t sig[64];
    /* drawn even when signing: the rest of the stream stays the same */
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (uint8_t)next_random(g);
    es_value *bare = gv_map(a, 5, "data", gv_link(a, r->data), "did", gv_str(a, r->did), "prev",
                            gv_null(a), "rev", gv_str(a, rev), "version", gv_int(a, 3));
    es_status s = g->o.unsigned_commits ? ES_OK : sign_commit(g, r, bare, sig);
    es_value *c = es_value_new_map(a, 6);
    bool ok = bare != NULL && c != NULL;
    for (size_t i = 0; ok && i < 5; i++)
        c->u.map.entries[i] = bare->u.map.entries[i];
    ok = ok && gv_put(c, 5, "sig", gv_bytes(a, sig, sizeof sig));
    if (s == ES_OK && !ok)
        s = ES_ERR_NOMEM;
    if (s == ES_OK)
        s = gv_block(c, &g->scratch, r->commit);
    if (s == ES_OK)
        s = keep_commit(r, &g->scratch);
    return s == ES_OK ? block_add(blocks, r->commit, g->scratch.data, g->scratch.len) : s;
}

static es_status encode_frame(es_atp_gen *g, const char *type, const es_value *body, es_buf *frame)
{
    es_arena *a = g->arena;
    es_value *header = gv_map(a, 2, "op", gv_int(a, 1), "t", gv_str(a, type));
    if (header == NULL || body == NULL)
        return ES_ERR_NOMEM;
    es_status s = es_cbor_encode(header, NULL, frame);
    return s == ES_OK ? es_cbor_encode(body, NULL, frame) : s;
}

static es_status make_commit(es_atp_gen *g, repo *r, es_buf *frame)
{
    es_arena *a = g->arena;
    size_t n_ops;
    if (g->o.multi_op_permille == 0) /* the default mix: ~19% of commits have 2-3 ops */
        n_ops = 1 + (size_t)(pick(g, 100) >= 85) + (size_t)(pick(g, 100) >= 95);
    else
        n_ops = pick(g, 1000) < g->o.multi_op_permille ? 2 + (size_t)(pick(g, 100) >= 75) : 1;
    op_info ops[3] = {0};
    block_list blocks = {0}, records = {0};
    cid_t prev_data;
    bool had_commit = r->rev[0] != '\0';
    memcpy(prev_data, r->data, sizeof prev_data);
    es_status s = ES_OK;
    for (size_t i = 0; s == ES_OK && i < n_ops; i++) {
        bool del = r->count > 0 && (r->count >= MAX_RECORDS || pick(g, 100) < 10);
        if (!del || !op_delete(g, r, &ops[i], ops, i))
            s = op_write(g, r, &ops[i], &records, ops, i);
    }
    char rev[14], since[14], time[48];
    memcpy(since, r->rev, sizeof since);
    make_tid((uint64_t)g->now_us, 0, rev);
    format_time(g->now_us, time);
    if (s == ES_OK)
        s = rebuild_tree(r, (const char *[]){ops[0].path, ops[1].path, ops[2].path}, n_ops,
                         &records);
    if (s == ES_OK)
        s = commit_block(g, r, rev, &blocks);
    for (size_t i = 0; s == ES_OK && i < records.count; i++)
        s = block_add(&blocks, records.items[i].cid, records.items[i].bytes, records.items[i].len);
    es_buf car = ES_BUF_INIT;
    if (s == ES_OK)
        s = write_car(g, r->commit, &blocks, &car);
    es_value *op_values[3];
    for (size_t i = 0; i < n_ops; i++)
        op_values[i] = op_value(a, &ops[i]);
    /* Sync 1.1: prevData is the tree this commit starts from (the empty tree
     * for a repo's first commit), since the previous rev (null at first) */
    es_value *body = es_value_new_map(a, 12);
    bool ok = gv_put(body, 0, "ops", gv_array(a, n_ops, op_values)) &&
              gv_put(body, 1, "rev", gv_str(a, rev)) &&
              gv_put(body, 2, "seq", gv_int(a, (int64_t)g->seq)) &&
              gv_put(body, 3, "repo", gv_str(a, r->did)) &&
              gv_put(body, 4, "time", gv_str(a, time)) &&
              gv_put(body, 5, "blobs", gv_array(a, 0, NULL)) &&
              gv_put(body, 6, "since", had_commit ? gv_str(a, since) : gv_null(a)) &&
              gv_put(body, 7, "blocks", gv_bytes(a, car.data, car.len)) &&
              gv_put(body, 8, "commit", gv_link(a, r->commit)) &&
              gv_put(body, 9, "rebase", gv_bool(a, false)) &&
              gv_put(body, 10, "tooBig", gv_bool(a, false)) &&
              gv_put(body, 11, "prevData", gv_link(a, prev_data));
    if (s == ES_OK && !ok)
        s = ES_ERR_NOMEM;
    if (s == ES_OK)
        s = encode_frame(g, "#commit", body, frame);
    memcpy(r->rev, rev, sizeof rev);
    es_buf_free(&car);
    block_list_free(&blocks);
    block_list_free(&records);
    g->counts.commits++;
    return s;
}

/* ---- repo events --------------------------------------------------------- */

/* An #identity carrying the repo's handle: its DID document changed (a new
 * handle, or a new signing key). */
static es_status identity_frame(es_atp_gen *g, repo *r, es_buf *frame)
{
    es_arena *a = g->arena;
    char time[48];
    format_time(g->now_us, time);
    es_value *body = gv_map(a, 4, "did", gv_str(a, r->did), "handle", gv_str(a, r->handle), "seq",
                            gv_int(a, (int64_t)g->seq), "time", gv_str(a, time));
    r->identity_seen = true;
    g->counts.identity++;
    return encode_frame(g, "#identity", body, frame);
}

/* A handle change. */
static es_status make_identity(es_atp_gen *g, repo *r, es_buf *frame)
{
    snprintf(r->handle, sizeof r->handle, "%s.gen.example", words[pick(g, ES_ARRAY_LEN(words))]);
    return identity_frame(g, r, frame);
}

/* A key rotation: the repo gets its next key, announced by an #identity;
 * its later commits are signed with the new key. Only a repo that has had no
 * #identity yet rotates (at most once each), so that a repo's key is the
 * one of the initial documents before its first #identity and the one of the
 * final documents after it (es_atp_gen_did_docs). NULL: every repo has had
 * an #identity. */
static repo *rotation_candidate(es_atp_gen *g)
{
    size_t start = pick(g, g->o.repos);
    for (size_t i = 0; i < g->o.repos; i++) {
        repo *r = &g->repos[(start + i) % g->o.repos];
        if (!r->identity_seen)
            return r;
    }
    return NULL;
}

static es_status make_rotation(es_atp_gen *g, repo *r, es_buf *frame)
{
    es_atp_gen_key_destroy(r->key);
    r->key = NULL;
    r->key_generation++;
    const es_atp_gen_key *key;
    es_status s = repo_key(g, r, &key);
    g->counts.rotations++;
    return s == ES_OK ? identity_frame(g, r, frame) : s;
}

static es_status make_account(es_atp_gen *g, repo *r, es_buf *frame)
{
    es_arena *a = g->arena;
    char time[48];
    format_time(g->now_us, time);
    r->active = !r->active;
    es_value *body = r->active ? gv_map(a, 4, "active", gv_bool(a, true), "did", gv_str(a, r->did),
                                        "seq", gv_int(a, (int64_t)g->seq), "time", gv_str(a, time))
                               : gv_map(a, 5, "active", gv_bool(a, false), "did", gv_str(a, r->did),
                                        "seq", gv_int(a, (int64_t)g->seq), "status",
                                        gv_str(a, "deactivated"), "time", gv_str(a, time));
    g->counts.account++;
    return encode_frame(g, "#account", body, frame);
}

static es_status make_sync(es_atp_gen *g, repo *r, es_buf *frame)
{
    es_arena *a = g->arena;
    char rev[14], time[48];
    make_tid((uint64_t)g->now_us, 0, rev);
    format_time(g->now_us, time);
    block_list blocks = {0};
    es_buf car = ES_BUF_INIT;
    es_status s = commit_block(g, r, rev, &blocks);
    if (s == ES_OK)
        s = write_car(g, r->commit, &blocks, &car);
    es_value *body =
        gv_map(a, 5, "blocks", gv_bytes(a, car.data, car.len), "did", gv_str(a, r->did), "rev",
               gv_str(a, rev), "seq", gv_int(a, (int64_t)g->seq), "time", gv_str(a, time));
    if (s == ES_OK)
        s = encode_frame(g, "#sync", body, frame);
    memcpy(r->rev, rev, sizeof rev);
    es_buf_free(&car);
    block_list_free(&blocks);
    g->counts.sync++;
    return s;
}

/* ---- DID documents ------------------------------------------------------- */

#define PDS_ENDPOINT "https://pds.gen.example" /* without es_atp_gen_options.pds_url */

/* The JSON-LD contexts a PLC directory lists for a Multikey of each curve. */
static json_t *doc_contexts(esi_atp_curve curve)
{
    return json_pack("[sss]", "https://www.w3.org/ns/did/v1",
                     "https://w3id.org/security/multikey/v1",
                     curve == ESI_ATP_K256 ? "https://w3id.org/security/suites/secp256k1-2019/v1"
                                           : "https://w3id.org/security/suites/ecdsa-2019/v1");
}

/* The repo's document as a PLC directory serves it. */
static es_status repo_doc(es_atp_gen *g, repo *r, json_t **out)
{
    const es_atp_gen_key *key;
    char multikey[ES_ATP_GEN_MULTIKEY_MAX], method[64], aka[80];
    es_status s = repo_key(g, r, &key);
    if (s == ES_OK)
        s = es_atp_gen_key_multikey(key, multikey);
    if (s != ES_OK)
        return s;
    snprintf(method, sizeof method, "%s#atproto", r->did);
    snprintf(aka, sizeof aka, "at://%s", r->handle);
    *out = json_pack("{s:o,s:s,s:[s],s:[{s:s,s:s,s:s,s:s}],s:[{s:s,s:s,s:s}]}", "@context",
                     doc_contexts(es_atp_gen_key_curve(key)), "id", r->did, "alsoKnownAs", aka,
                     "verificationMethod", "id", method, "type", "Multikey", "controller", r->did,
                     "publicKeyMultibase", multikey, "service", "id", "#atproto_pds", "type",
                     "AtprotoPersonalDataServer", "serviceEndpoint",
                     g->o.pds_url ? g->o.pds_url : PDS_ENDPOINT);
    return *out ? ES_OK : ES_ERR_NOMEM;
}

es_status es_atp_gen_did_docs(es_atp_gen *g, es_buf *out)
{
    if (g == NULL || out == NULL)
        return ES_ERR_INVALID;
    json_t *all = json_object();
    es_status s = all ? ES_OK : ES_ERR_NOMEM;
    for (size_t i = 0; s == ES_OK && i < g->o.repos; i++) {
        json_t *doc = NULL;
        s = repo_doc(g, &g->repos[i], &doc);
        if (s == ES_OK && json_object_set_new(all, g->repos[i].did, doc) != 0)
            s = ES_ERR_NOMEM;
    }
    char *text = s == ES_OK ? json_dumps(all, JSON_INDENT(1)) : NULL;
    if (s == ES_OK && text == NULL)
        s = ES_ERR_NOMEM;
    if (s == ES_OK)
        s = es_buf_append(out, text, strlen(text));
    if (s == ES_OK)
        s = es_buf_append(out, "\n", 1);
    free(text);
    json_decref(all);
    return s;
}

/* ---- a commit at a chosen path ----------------------------------------- */

/* The first commit of repo `did`: one record created at `collection/rkey`,
 * in a real one-leaf MST. */
static es_status make_commit_at(es_atp_gen *g, const char *did, const char *collection,
                                const char *rkey, es_buf *frame)
{
    es_arena *a = g->arena;
    char rev[14], time[48];
    make_tid((uint64_t)g->now_us, 0, rev);
    format_time(g->now_us, time);
    char *path = es_arena_alloc(a, strlen(collection) + strlen(rkey) + 2);
    if (path == NULL)
        return ES_ERR_NOMEM;
    sprintf(path, "%s/%s", collection, rkey);
    block_list blocks = {0};
    es_buf car = ES_BUF_INIT;
    es_atp_gen_leaf leaf = {.key = path};
    cid_t data, commit;
    uint8_t sig[64] = {0};
    es_value *rec = gv_map(a, 3, "$type", gv_str(a, collection), "createdAt", gv_str(a, time),
                           "text", post_text(g));
    es_status s = rec ? gv_block(rec, &g->scratch, leaf.cid) : ES_ERR_NOMEM;
    if (s == ES_OK)
        s = block_add(&blocks, leaf.cid, g->scratch.data, g->scratch.len);
    if (s == ES_OK)
        s = es_atp_gen_mst(&leaf, 1, collect_node, &blocks, data);
    es_value *c =
        gv_map(a, 6, "data", gv_link(a, data), "did", gv_str(a, did), "prev", gv_null(a), "rev",
               gv_str(a, rev), "sig", gv_bytes(a, sig, sizeof sig), "version", gv_int(a, 3));
    if (s == ES_OK)
        s = c ? gv_block(c, &g->scratch, commit) : ES_ERR_NOMEM;
    if (s == ES_OK)
        s = block_add(&blocks, commit, g->scratch.data, g->scratch.len);
    if (s == ES_OK)
        s = write_car(g, commit, &blocks, &car);
    es_value *op = gv_map(a, 3, "action", gv_str(a, "create"), "cid", gv_link(a, leaf.cid), "path",
                          gv_str(a, path));
    es_value *body =
        gv_map(a, 12, "ops", gv_array(a, 1, &op), "rev", gv_str(a, rev), "seq",
               gv_int(a, (int64_t)g->seq), "repo", gv_str(a, did), "time", gv_str(a, time), "blobs",
               gv_array(a, 0, NULL), "since", gv_null(a), "blocks", gv_bytes(a, car.data, car.len),
               "commit", gv_link(a, commit), "rebase", gv_bool(a, false), "tooBig",
               gv_bool(a, false), "prevData", gv_link(a, g->empty_root));
    if (s == ES_OK)
        s = encode_frame(g, "#commit", body, frame);
    es_buf_free(&car);
    block_list_free(&blocks);
    return s;
}

/* ---- public -------------------------------------------------------------- */

es_status es_atp_gen_create(const es_atp_gen_options *o, es_atp_gen **out)
{
    es_atp_gen *g = calloc(1, sizeof *g);
    if (g == NULL)
        return ES_ERR_NOMEM;
    g->o = o ? *o : (es_atp_gen_options){0};
    if (g->o.repos == 0)
        g->o.repos = DEFAULT_REPOS;
    if (g->o.first_seq == 0)
        g->o.first_seq = 1;
    if (g->o.start_ms == 0)
        g->o.start_ms = DEFAULT_START_MS;
    g->rng = g->o.seed;
    g->seq = g->o.first_seq;
    g->now_us = g->o.start_ms * 1000;
    g->repos = calloc(g->o.repos, sizeof *g->repos);
    es_status s = g->repos ? es_arena_create(FRAME_ARENA, &g->arena) : ES_ERR_NOMEM;
    if (s == ES_OK)
        s = es_atp_gen_mst(NULL, 0, NULL, NULL, g->empty_root);
    for (size_t i = 0; s == ES_OK && i < g->o.repos; i++) {
        repo *r = &g->repos[i];
        strcpy(r->did, "did:plc:");
        for (int k = 0; k < 24; k++)
            r->did[8 + k] = base32_sortable[pick(g, 32)];
        r->did[32] = '\0';
        r->active = true;
        snprintf(r->handle, sizeof r->handle, "u%zu.gen.example", i);
        memcpy(r->data, g->empty_root, sizeof r->data);
    }
    if (s != ES_OK) {
        es_atp_gen_destroy(g);
        return s;
    }
    *out = g;
    return ES_OK;
}

void es_atp_gen_destroy(es_atp_gen *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; g->repos && i < g->o.repos; i++) {
        repo *r = &g->repos[i];
        while (r->count > 0)
            remove_record(r, r->count - 1);
        free(r->recs);
        free(r->nodes);
        free(r->commit_bytes);
        es_atp_gen_key_destroy(r->key);
    }
    free(g->repos);
    es_arena_destroy(g->arena);
    es_buf_free(&g->scratch);
    free(g);
}

es_status es_atp_gen_next(es_atp_gen *g, es_buf *frame)
{
    es_arena_reset(g->arena);
    g->now_us += 500 + (int64_t)pick(g, 2500);
    /* drawn only when asked for: without rotations the stream is unchanged */
    repo *rotating = g->o.rotate_permille > 0 && pick(g, 1000) < g->o.rotate_permille
                         ? rotation_candidate(g)
                         : NULL;
    repo *r = &g->repos[pick(g, g->o.repos)];
    size_t dice = pick(g, 1000);
    es_status s;
    if (rotating != NULL)
        s = make_rotation(g, rotating, frame);
    else if (dice < 20)
        s = make_identity(g, r, frame);
    else if (dice < 30 || !r->active) /* an inactive account commits nothing: back first */
        s = make_account(g, r, frame);
    else if (dice < 35 && r->rev[0] != '\0')
        s = make_sync(g, r, frame);
    else
        s = make_commit(g, r, frame);
    g->seq++;
    g->counts.frames++;
    return s;
}

es_status es_atp_gen_commit_at(es_atp_gen *g, const char *did, const char *collection,
                               const char *rkey, es_buf *frame)
{
    if (g == NULL || did == NULL || collection == NULL || rkey == NULL || frame == NULL)
        return ES_ERR_INVALID;
    es_arena_reset(g->arena);
    g->now_us += 1000;
    es_status s = make_commit_at(g, did, collection, rkey, frame);
    g->seq++;
    g->counts.frames++;
    g->counts.commits++;
    g->counts.creates++;
    return s;
}

const es_atp_gen_counts *es_atp_gen_counts_of(const es_atp_gen *g)
{
    return &g->counts;
}
size_t es_atp_gen_repo_count(const es_atp_gen *g)
{
    return g->o.repos;
}
size_t es_atp_gen_repo_records(const es_atp_gen *g, size_t index)
{
    return g->repos[index].count;
}
const char *es_atp_gen_record_key(const es_atp_gen *g, size_t index, size_t i)
{
    return g->repos[index].recs[i].key;
}
const uint8_t *es_atp_gen_record_cid(const es_atp_gen *g, size_t index, size_t i)
{
    return g->repos[index].recs[i].cid;
}

/* The repo's commit for a full-repository CAR: its newest one, unless
 * records changed since (es_atp_gen_fill_repo: then a new commit with a new
 * rev) or it has none yet (a commit of the empty tree). */
static es_status current_commit(es_atp_gen *g, repo *r, block_list *blocks)
{
    if (r->commit_len > 0 && !r->records_changed)
        return block_add(blocks, r->commit, r->commit_bytes, r->commit_len);
    char rev[14];
    if (r->records_changed) {
        g->now_us += 1000;
        make_tid((uint64_t)g->now_us, 0, rev);
        memcpy(r->rev, rev, sizeof rev);
    } else {
        memcpy(rev, "2222222222222", sizeof rev);
    }
    return commit_block(g, r, rev, blocks);
}

es_status es_atp_gen_repo_car(es_atp_gen *g, size_t index, es_buf *car, const char **did)
{
    repo *r = &g->repos[index];
    es_arena_reset(g->arena);
    block_list blocks = {0}, nodes = {0};
    es_atp_gen_leaf *leaves = calloc(r->count + 1, sizeof *leaves);
    es_status s = leaves ? ES_OK : ES_ERR_NOMEM;
    for (size_t i = 0; s == ES_OK && i < r->count; i++) {
        leaves[i].key = r->recs[i].key;
        memcpy(leaves[i].cid, r->recs[i].cid, sizeof(cid_t));
    }
    if (s == ES_OK)
        s = es_atp_gen_mst(leaves, r->count, collect_node, &nodes, r->data);
    free(leaves);
    if (s == ES_OK)
        s = current_commit(g, r, &blocks);
    for (size_t i = 0; s == ES_OK && i < nodes.count; i++)
        s = block_add(&blocks, nodes.items[i].cid, nodes.items[i].bytes, nodes.items[i].len);
    for (size_t i = 0; s == ES_OK && i < r->count; i++)
        s = block_add(&blocks, r->recs[i].cid, r->recs[i].bytes, r->recs[i].len);
    if (s == ES_OK)
        s = write_car(g, r->commit, &blocks, car);
    block_list_free(&blocks);
    block_list_free(&nodes);
    if (did != NULL)
        *did = r->did;
    return s;
}

es_status es_atp_gen_fill_repo(es_atp_gen *g, size_t index, size_t n)
{
    repo *r = &g->repos[index];
    char created[48], key[96];
    es_status s = ES_OK;
    for (size_t i = 0; s == ES_OK && i < n; i++) {
        es_arena_reset(g->arena);
        g->now_us += 1;
        format_time(g->now_us, created);
        char rkey[14];
        make_tid((uint64_t)g->now_us, 0, rkey);
        snprintf(key, sizeof key, "app.bsky.feed.post/%s", rkey);
        es_value *v = new_record(g, "app.bsky.feed.post", created);
        cid_t cid;
        s = v ? gv_block(v, &g->scratch, cid) : ES_ERR_NOMEM;
        bool found;
        size_t at = find_record(r, key, &found);
        if (s == ES_OK)
            s = store_record(r, at, found, key, cid, &g->scratch);
    }
    r->records_changed = true;
    return s;
}

es_status es_atp_gen_repo_tsv(const es_atp_gen *g, size_t index, es_buf *out)
{
    const repo *r = &g->repos[index];
    es_status s = ES_OK;
    for (size_t i = 0; s == ES_OK && i < r->count; i++) {
        char cid[ES_CID_STRING_MAX];
        s = es_cid_to_string(r->recs[i].cid, sizeof(cid_t), cid, sizeof cid);
        if (s == ES_OK)
            s = es_buf_append_str(out, r->recs[i].key);
        if (s == ES_OK)
            s = es_buf_append_byte(out, '\t');
        if (s == ES_OK)
            s = es_buf_append_str(out, cid);
        if (s == ES_OK)
            s = es_buf_append_byte(out, '\n');
    }
    return s;
}
