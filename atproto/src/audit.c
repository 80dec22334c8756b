/* Offline audit of a stored repository history (es/atproto_audit.h): each
 * commit's signature and CID from its op events' metadata, and each
 * repository's chain in stream order. Memory: the DID documents, a small
 * state per repository (bounded by max_dids), and one commit group. */
#include "audit_internal.h"

#include <string.h>

#include <es/alloc.h>
#include <es/arena.h>

#include "atp_internal.h"
#include "identity.h"
#include "mapping.h"

#define MAX_DIDS_DEFAULT  ((size_t)1000000)
#define REV_MAX           32                 /* a rev is a TID, 13 characters */
#define FIELD_MAX         256                /* a CID text, a rev or a signature is far shorter */
#define GROUP_ARENA_MAX   ((size_t)16 << 10) /* one group's copies: a DID and 7 fields */
#define SYNC_ARENA_MAX    ((size_t)64 << 20) /* a #sync's body and CAR index (frames <= 5 MiB) */
#define SYNC_COMMIT_DEPTH 4                  /* a commit is a flat map */

static const char *const reason_names[ES_ATP_AUDIT_REASON_COUNT] = {
    "ok",
    "no_audit_metadata",
    "no_key",
    "signature",
    "commit_cid_mismatch",
    "rev_order",
    "since_mismatch",
    "prev_data_mismatch",
};

const char *es_atp_audit_reason_name(es_atp_audit_reason r)
{
    return (unsigned)r < ES_ATP_AUDIT_REASON_COUNT ? reason_names[r] : "?";
}

/* ---- string-keyed tables ----------------------------------------------------- */

/* The head both kinds of entry start with. */
typedef struct node {
    struct node *next;
    uint64_t hash;
    char *did; /* es_malloc'ed, the key */
} node;

typedef struct table {
    node **buckets;
    size_t nbuckets, count;
} table;

static node **table_slot(const table *t, const char *did, uint64_t h)
{
    node **p = &t->buckets[h % t->nbuckets];
    while (*p != NULL && ((*p)->hash != h || strcmp((*p)->did, did) != 0))
        p = &(*p)->next;
    return p;
}

static node *table_find(const table *t, const char *did)
{
    return t->nbuckets == 0 ? NULL : *table_slot(t, did, esi_atp_hash(did, strlen(did)));
}

/* Doubles the buckets when the table is as full as it has buckets. */
static es_status table_grow(table *t)
{
    if (t->count < t->nbuckets)
        return ES_OK;
    size_t n = t->nbuckets == 0 ? 256 : t->nbuckets * 2;
    node **b = es_calloc(n, sizeof *b);
    if (b == NULL)
        return es_error(ES_ERR_NOMEM, "audit: out of memory");
    for (size_t i = 0; i < t->nbuckets; i++)
        for (node *e = t->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash % n];
            b[e->hash % n] = e;
        }
    es_free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
    return ES_OK;
}

/* Files `e` (its did set) under its DID; the DID must not be in the table. */
static es_status table_add(table *t, node *e)
{
    es_status s = table_grow(t);
    if (s != ES_OK)
        return s;
    e->hash = esi_atp_hash(e->did, strlen(e->did));
    node **p = &t->buckets[e->hash % t->nbuckets];
    e->next = *p;
    *p = e;
    t->count++;
    return ES_OK;
}

static void table_free(table *t, void (*free_entry)(node *))
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (node *e = t->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free_entry(e);
        }
    es_free(t->buckets);
    memset(t, 0, sizeof *t);
}

/* ---- the audit --------------------------------------------------------------- */

typedef struct doc_entry {
    node head;
    esi_atp_did_doc *doc;
    esi_atp_key *key; /* parsed when first needed */
    bool key_tried;
} doc_entry;

/* A repository: the newest commit of its chain, and its tally. */
typedef struct repo {
    node head;
    struct repo *next_in_order; /* in the order first met */
    bool has_rev;
    char rev[REV_MAX];
    uint8_t data[ESI_ATP_AUDIT_CID_MAX];
    size_t data_len; /* 0: unknown (none yet, or a #sync restarted the chain) */
    uint64_t commits;
    uint32_t by_reason[ES_ATP_AUDIT_REASON_COUNT];
} repo;

/* One commit group: the first event's metadata (copied), its predecessor's
 * chain state, and the verdict so far. */
typedef struct group {
    bool open;
    es_arena *arena; /* the copied strings */
    es_atp_audit_commit fields;
    es_atp_audit_reason reason;
    bool had_prev;
    char prev_rev[REV_MAX];
    uint8_t prev_data[ESI_ATP_AUDIT_CID_MAX];
    size_t prev_data_len;
    size_t events;
    uint64_t first_seq, last_seq;
} group;

struct es_atp_audit {
    es_atp_audit_options opts;
    table docs, repos;
    repo *first, *last;   /* the order repositories were met */
    group cur, done;      /* the open group and the one last reported */
    es_buf scratch;       /* encodings */
    es_arena *sync_arena; /* a #sync's decoded body */
    es_atp_audit_stats stats;
};

void es_atp_audit_options_init(es_atp_audit_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_dids = MAX_DIDS_DEFAULT;
}

es_status es_atp_audit_create(const es_atp_audit_options *o, es_atp_audit **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_audit_create: NULL argument");
    *out = NULL;
    es_atp_audit *a = es_calloc(1, sizeof *a);
    if (a == NULL)
        return es_error(ES_ERR_NOMEM, "audit: out of memory");
    if (o != NULL)
        a->opts = *o;
    else
        es_atp_audit_options_init(&a->opts);
    if (a->opts.max_dids == 0)
        a->opts.max_dids = MAX_DIDS_DEFAULT;
    a->scratch = (es_buf)ES_BUF_INIT;
    es_status s = es_arena_create(GROUP_ARENA_MAX, &a->cur.arena);
    if (s == ES_OK)
        s = es_arena_create(GROUP_ARENA_MAX, &a->done.arena);
    if (s == ES_OK)
        s = es_arena_create(SYNC_ARENA_MAX, &a->sync_arena);
    if (s != ES_OK) {
        es_atp_audit_destroy(a);
        return s;
    }
    *out = a;
    return ES_OK;
}

static void free_doc(node *n)
{
    doc_entry *d = (doc_entry *)n;
    esi_atp_key_destroy(d->key);
    esi_atp_did_doc_destroy(d->doc);
    es_free(d->head.did);
    es_free(d);
}

static void free_repo(node *n)
{
    es_free(n->did);
    es_free(n);
}

void es_atp_audit_destroy(es_atp_audit *a)
{
    if (a == NULL)
        return;
    table_free(&a->docs, free_doc);
    table_free(&a->repos, free_repo);
    es_arena_destroy(a->cur.arena);
    es_arena_destroy(a->done.arena);
    es_arena_destroy(a->sync_arena);
    es_buf_free(&a->scratch);
    es_free(a);
}

/* ---- DID documents ----------------------------------------------------------- */

/* Takes `doc`, replacing an earlier document of its DID. */
static es_status keep_doc(void *ctx, esi_atp_did_doc *doc)
{
    es_atp_audit *a = ctx;
    doc_entry *d = (doc_entry *)table_find(&a->docs, doc->did);
    if (d != NULL) {
        esi_atp_key_destroy(d->key);
        esi_atp_did_doc_destroy(d->doc);
        d->key = NULL;
        d->key_tried = false;
        d->doc = doc;
        return ES_OK;
    }
    d = es_calloc(1, sizeof *d);
    char *did = esi_atp_strdup(doc->did);
    es_status s = d != NULL && did != NULL ? ES_OK : es_error(ES_ERR_NOMEM, "audit: out of memory");
    if (s == ES_OK) {
        d->head.did = did;
        d->doc = doc;
        s = table_add(&a->docs, &d->head);
    }
    if (s != ES_OK) {
        es_free(did);
        es_free(d);
        esi_atp_did_doc_destroy(doc);
        return s;
    }
    a->stats.did_docs++;
    return ES_OK;
}

es_status es_atp_audit_load_did_docs(es_atp_audit *a, const char *path, size_t *count)
{
    if (a == NULL || path == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_audit_load_did_docs: NULL argument");
    return esi_atp_did_docs_load(path, keep_doc, a, count);
}

es_status es_atp_audit_add_did_doc(es_atp_audit *a, const char *json, size_t len)
{
    if (a == NULL || json == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_audit_add_did_doc: NULL argument");
    esi_atp_did_doc *doc = NULL;
    es_status s = esi_atp_did_doc_parse(json, len, &doc);
    return s == ES_OK ? keep_doc(a, doc) : s;
}

/* The signing key of `did` in *key, NULL when there is none (no document,
 * or no usable key). Only running out of memory is an error: it is not
 * remembered as a missing key. */
static es_status key_of(es_atp_audit *a, const char *did, const esi_atp_key **key)
{
    *key = NULL;
    doc_entry *d = (doc_entry *)table_find(&a->docs, did);
    if (d == NULL)
        return ES_OK;
    if (!d->key_tried) {
        es_status s = esi_atp_did_doc_key(d->doc, &d->key);
        if (s == ES_ERR_NOMEM)
            return s;
        d->key_tried = true;
        if (s != ES_OK)
            d->key = NULL;
    }
    *key = d->key;
    return ES_OK;
}

/* ---- repositories ------------------------------------------------------------ */

static es_status repo_of(es_atp_audit *a, const char *did, repo **out)
{
    repo *r = (repo *)table_find(&a->repos, did);
    if (r != NULL) {
        *out = r;
        return ES_OK;
    }
    if (a->repos.count >= a->opts.max_dids)
        return es_error(ES_ERR_LIMIT, "audit: more than %zu repositories (max_dids)",
                        a->opts.max_dids);
    r = es_calloc(1, sizeof *r);
    char *copy = esi_atp_strdup(did);
    es_status s =
        r != NULL && copy != NULL ? ES_OK : es_error(ES_ERR_NOMEM, "audit: out of memory");
    if (s == ES_OK) {
        r->head.did = copy;
        s = table_add(&a->repos, &r->head);
    }
    if (s != ES_OK) {
        es_free(copy);
        es_free(r);
        return s;
    }
    if (a->last != NULL)
        a->last->next_in_order = r;
    else
        a->first = r;
    a->last = r;
    a->stats.dids++;
    *out = r;
    return ES_OK;
}

/* ---- checks ------------------------------------------------------------------ */

/* Signature and CID of one commit's metadata: the verdict in *r. An error
 * status only when memory ran out. */
static es_status check_signed(es_atp_audit *a, const es_atp_audit_commit *c,
                              esi_atp_audit_fields *f, es_atp_audit_reason *r)
{
    *r = ES_ATP_AUDIT_NO_AUDIT_METADATA;
    if (c->did == NULL || c->rev == NULL || c->commit == NULL || strlen(c->rev) >= REV_MAX ||
        esi_atp_audit_parse(c, f) != ES_OK)
        return ES_OK;
    const esi_atp_key *key = NULL;
    es_status s = key_of(a, c->did, &key);
    *r = ES_ATP_AUDIT_NO_KEY;
    if (s != ES_OK || key == NULL)
        return s;
    a->scratch.len = 0;
    if ((s = esi_atp_audit_encode(c, f, false, &a->scratch)) != ES_OK)
        return s;
    *r = ES_ATP_AUDIT_SIGNATURE;
    if (esi_atp_verify(key, a->scratch.data, a->scratch.len, f->sig, ESI_ATP_SIG_LEN) != ES_OK)
        return ES_OK;
    uint8_t cid[ES_CID_SHA256_LEN];
    a->scratch.len = 0;
    if ((s = esi_atp_audit_encode(c, f, true, &a->scratch)) != ES_OK ||
        (s = es_cid_sha256(ES_CID_CODEC_DAG_CBOR, a->scratch.data, a->scratch.len, cid)) != ES_OK)
        return s;
    bool same = f->commit_len == sizeof cid && memcmp(f->commit, cid, sizeof cid) == 0;
    *r = same ? ES_ATP_AUDIT_OK : ES_ATP_AUDIT_COMMIT_CID_MISMATCH;
    return ES_OK;
}

/* The chain: this commit against its repository's previous one, as the
 * group recorded it. */
static es_atp_audit_reason check_chain(const es_atp_audit *a, const group *g,
                                       const es_atp_audit_commit *c, const esi_atp_audit_fields *f)
{
    if (a->opts.no_chain || !g->had_prev)
        return ES_ATP_AUDIT_OK;
    if (c->snapshot) /* a resync: the chain restarts at it */
        return strcmp(c->rev, g->prev_rev) < 0 ? ES_ATP_AUDIT_REV_ORDER : ES_ATP_AUDIT_OK;
    if (strcmp(c->rev, g->prev_rev) <= 0)
        return ES_ATP_AUDIT_REV_ORDER;
    if (c->since == NULL || strcmp(c->since, g->prev_rev) != 0)
        return ES_ATP_AUDIT_SINCE_MISMATCH;
    if (g->prev_data_len != 0 && (f->prevdata_len != g->prev_data_len ||
                                  memcmp(f->prevdata, g->prev_data, g->prev_data_len) != 0))
        return ES_ATP_AUDIT_PREV_DATA_MISMATCH;
    return ES_ATP_AUDIT_OK;
}

static es_status check(es_atp_audit *a, const group *g, const es_atp_audit_commit *c,
                       es_atp_audit_reason *r)
{
    esi_atp_audit_fields f;
    es_status s = check_signed(a, c, &f, r);
    if (s == ES_OK && *r == ES_ATP_AUDIT_OK)
        *r = check_chain(a, g, c, &f);
    return s;
}

/* ---- groups ------------------------------------------------------------------ */

static bool same_text(const char *x, const char *y)
{
    return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

static bool same_fields(const es_atp_audit_commit *x, const es_atp_audit_commit *y)
{
    return same_text(x->did, y->did) && same_text(x->rev, y->rev) && same_text(x->data, y->data) &&
           same_text(x->commitprev, y->commitprev) && same_text(x->sig, y->sig) &&
           same_text(x->commit, y->commit) && same_text(x->since, y->since) &&
           same_text(x->prevdata, y->prevdata) && x->snapshot == y->snapshot;
}

static es_status copy_text(es_arena *arena, const char *s, const char **out)
{
    *out = NULL;
    if (s == NULL)
        return ES_OK;
    if ((*out = es_arena_strndup(arena, s, strlen(s))) == NULL)
        return es_arena_error(arena, "audit: a commit's metadata");
    return ES_OK;
}

static es_status copy_fields(es_arena *arena, const es_atp_audit_commit *c, es_atp_audit_commit *o)
{
    es_status s = copy_text(arena, c->did, &o->did);
    if (s == ES_OK)
        s = copy_text(arena, c->rev, &o->rev);
    if (s == ES_OK)
        s = copy_text(arena, c->data, &o->data);
    if (s == ES_OK)
        s = copy_text(arena, c->commitprev, &o->commitprev);
    if (s == ES_OK)
        s = copy_text(arena, c->sig, &o->sig);
    if (s == ES_OK)
        s = copy_text(arena, c->commit, &o->commit);
    if (s == ES_OK)
        s = copy_text(arena, c->since, &o->since);
    if (s == ES_OK)
        s = copy_text(arena, c->prevdata, &o->prevdata);
    o->snapshot = c->snapshot;
    return s;
}

/* Moves the chain of `r` past the commit `c` (the newest of its repository
 * when its rev is newer; a commit whose rev is not newer leaves the chain
 * where it was, so one stray old commit is reported once). */
static void extend_chain(repo *r, const es_atp_audit_commit *c, es_atp_audit_reason reason)
{
    if (reason == ES_ATP_AUDIT_NO_AUDIT_METADATA || reason == ES_ATP_AUDIT_REV_ORDER)
        return;
    if (r->has_rev && strcmp(c->rev, r->rev) <= 0)
        return;
    esi_atp_audit_fields f;
    if (esi_atp_audit_parse(c, &f) != ES_OK)
        return;
    r->has_rev = true;
    memcpy(r->rev, c->rev, strlen(c->rev) + 1);
    memcpy(r->data, f.data, f.data_len);
    r->data_len = f.data_len;
}

/* `s`, or NULL (absent) when it is longer than any value of its field: the
 * group copies what it keeps, and a hostile store must not make it big. */
static const char *bounded(const char *s, size_t max)
{
    return s != NULL && strnlen(s, max + 1) <= max ? s : NULL;
}

static bool text_is(const es_value *v, const char *s)
{
    return v != NULL && v->kind == ES_VALUE_STRING && v->u.str.len == strlen(s) &&
           memcmp(v->u.str.ptr, s, v->u.str.len) == 0;
}

/* A link's CID text in `arena` (mapping.h), or NULL. */
static const char *cid_text(es_arena *arena, const es_value *link)
{
    return esi_atp_cid_text(arena, link->u.bytes.ptr, link->u.bytes.len);
}

/* The rest of a #sync's commit (data, sig, commitprev), read from the commit
 * block its event's data carries into *c (texts in the sync arena). *reason:
 * ES_ATP_AUDIT_OK, no_audit_metadata when there is no commit block to read,
 * signature when it is the commit of another repository or rev. */
static es_status sync_commit(es_atp_audit *a, const es_event *ev, es_atp_audit_commit *c,
                             es_atp_audit_reason *reason)
{
    *reason = ES_ATP_AUDIT_NO_AUDIT_METADATA;
    const void *body = NULL;
    size_t len = 0;
    if (c->did == NULL || c->rev == NULL || es_event_data(ev, &body, &len) != ES_OK || body == NULL)
        return ES_OK;
    es_arena *arena = a->sync_arena;
    es_arena_reset(arena);
    const uint8_t *block = NULL;
    size_t block_len = 0;
    es_value *v = NULL;
    es_status s = esi_atp_audit_sync_block(body, len, arena, &block, &block_len);
    if (s == ES_OK)
        s = esi_atp_decode_exact(block, block_len, SYNC_COMMIT_DEPTH, arena, &v);
    if (s != ES_OK)
        return s == ES_ERR_NOMEM ? s : ES_OK;
    const es_value *data = es_value_get(v, "data"), *prev = es_value_get(v, "prev"),
                   *sig = es_value_get(v, "sig");
    if (data == NULL || data->kind != ES_VALUE_LINK || sig == NULL || sig->kind != ES_VALUE_BYTES)
        return ES_OK;
    *reason = ES_ATP_AUDIT_SIGNATURE; /* signed, but not this event's commit */
    if (!text_is(es_value_get(v, "did"), c->did) || !text_is(es_value_get(v, "rev"), c->rev))
        return ES_OK;
    char *sig_text = es_arena_alloc(arena, ESI_ATP_AUDIT_SIG_TEXT_MAX);
    if (sig_text == NULL || (c->data = cid_text(arena, data)) == NULL)
        return es_arena_error(arena, "audit: a #sync's commit");
    c->commitprev = NULL;
    if (prev != NULL && prev->kind == ES_VALUE_LINK &&
        (c->commitprev = cid_text(arena, prev)) == NULL)
        return es_arena_error(arena, "audit: a #sync's commit");
    if (esi_atp_audit_sig_text(sig->u.bytes.ptr, sig->u.bytes.len, sig_text) != ES_OK)
        return ES_OK; /* longer than any signature: it does not verify */
    c->sig = sig_text;
    *reason = ES_ATP_AUDIT_OK;
    return ES_OK;
}

/* The verdict on a #sync: its commit block, carried whole in the event's
 * data, checked as an op event's metadata is (key, signature, CID), and its
 * rev not older than the chain's. The chain then restarts at it (since and
 * prevData do not apply: a #sync announces a new state of the repository). */
static es_status sync_verdict(es_atp_audit *a, const group *g, const es_event *ev,
                              const es_atp_audit_commit *meta, repo *r, es_atp_audit_reason *out)
{
    es_atp_audit_commit c = *meta;
    es_status s = sync_commit(a, ev, &c, out);
    if (s != ES_OK || *out != ES_ATP_AUDIT_OK)
        return s;
    esi_atp_audit_fields f;
    if ((s = check_signed(a, &c, &f, out)) != ES_OK)
        return s;
    if (*out == ES_ATP_AUDIT_OK && !a->opts.no_chain && g->had_prev &&
        strcmp(c.rev, g->prev_rev) < 0)
        *out = ES_ATP_AUDIT_REV_ORDER;
    if (r != NULL && *out != ES_ATP_AUDIT_NO_AUDIT_METADATA && *out != ES_ATP_AUDIT_REV_ORDER) {
        r->has_rev = true;
        memcpy(r->rev, c.rev, strlen(c.rev) + 1);
        memcpy(r->data, f.data, f.data_len);
        r->data_len = f.data_len;
    }
    return ES_OK;
}

/* Opens a group with its first commit (from an op event's metadata, or the
 * #sync event `sync`): copies it, records the chain before it, checks it
 * and moves the chain on. */
static es_status group_open(es_atp_audit *a, const es_atp_audit_commit *first, uint64_t seq,
                            size_t events, const es_event *sync)
{
    const es_atp_audit_commit bc = {
        .did = bounded(first->did, ESI_ATP_DID_MAX),
        .rev = bounded(first->rev, FIELD_MAX),
        .data = bounded(first->data, FIELD_MAX),
        .commitprev = bounded(first->commitprev, FIELD_MAX),
        .sig = bounded(first->sig, FIELD_MAX),
        .commit = bounded(first->commit, FIELD_MAX),
        .since = bounded(first->since, FIELD_MAX),
        .prevdata = bounded(first->prevdata, FIELD_MAX),
        .snapshot = first->snapshot,
    };
    const es_atp_audit_commit *c = &bc;
    group *g = &a->cur;
    es_arena_reset(g->arena);
    memset(&g->fields, 0, sizeof g->fields);
    es_status s = copy_fields(g->arena, c, &g->fields);
    if (s != ES_OK)
        return s;
    repo *r = NULL;
    if (c->did != NULL && (s = repo_of(a, c->did, &r)) != ES_OK)
        return s;
    g->had_prev = r != NULL && r->has_rev;
    if (g->had_prev) {
        memcpy(g->prev_rev, r->rev, sizeof g->prev_rev);
        memcpy(g->prev_data, r->data, r->data_len);
    }
    g->prev_data_len = g->had_prev ? r->data_len : 0;
    if (sync != NULL)
        s = sync_verdict(a, g, sync, c, r, &g->reason);
    else if ((s = check(a, g, c, &g->reason)) == ES_OK && r != NULL)
        extend_chain(r, c, g->reason);
    if (s != ES_OK)
        return s;
    g->events = events;
    g->first_seq = g->last_seq = seq;
    g->open = true;
    return ES_OK;
}

/* Completes the open group: tallies it and hands its result out. */
static void group_close(es_atp_audit *a, es_atp_audit_result *out)
{
    group *g = &a->cur;
    a->stats.commits++;
    a->stats.by_reason[g->reason]++;
    repo *r = g->fields.did != NULL ? (repo *)table_find(&a->repos, g->fields.did) : NULL;
    if (r != NULL) {
        r->commits++;
        r->by_reason[g->reason]++;
    }
    *out = (es_atp_audit_result){.reason = g->reason,
                                 .did = g->fields.did,
                                 .rev = g->fields.rev,
                                 .commit = g->fields.commit,
                                 .events = g->events,
                                 .first_seq = g->first_seq,
                                 .last_seq = g->last_seq};
    /* The reported group's strings must outlive the next group's opening. */
    group done = a->done;
    a->done = a->cur;
    a->cur = done;
    a->cur.open = false;
}

es_status es_atp_audit_check(es_atp_audit *a, const es_atp_audit_commit *c,
                             es_atp_audit_result *out)
{
    if (a == NULL || c == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_audit_check: NULL argument");
    if (a->cur.open)
        return es_error(ES_ERR_INVALID, "es_atp_audit_check: a group of events is open "
                                        "(es_atp_audit_finish it first)");
    es_status s = group_open(a, c, 0, 0, NULL);
    if (s == ES_OK)
        group_close(a, out);
    return s;
}

es_status es_atp_audit_finish(es_atp_audit *a, es_atp_audit_result *out, bool *ready)
{
    if (a == NULL || out == NULL || ready == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_audit_finish: NULL argument");
    *ready = a->cur.open;
    if (*ready)
        group_close(a, out);
    return ES_OK;
}

/* ---- events ------------------------------------------------------------------ */

/* The repository an event belongs to: metadata `did` (a DID too long for an
 * entity id), else the entity id. NULL for an id with a NUL byte. */
static const char *event_did(const es_event *ev)
{
    const char *did = es_event_meta(ev, "did");
    if (did != NULL)
        return did;
    size_t len = 0;
    const char *id = es_event_entity_id(ev, &len);
    return id != NULL && strlen(id) == len ? id : NULL;
}

static bool is_op(const char *event_type)
{
    return strcmp(event_type, "create") == 0 || strcmp(event_type, "update") == 0 ||
           strcmp(event_type, "delete") == 0;
}

static void event_fields(const es_event *ev, es_atp_audit_commit *c)
{
    c->did = event_did(ev);
    c->rev = es_event_meta(ev, "rev");
    c->data = es_event_meta(ev, "data");
    c->commitprev = es_event_meta(ev, "commitprev");
    c->sig = es_event_meta(ev, "sig");
    c->commit = es_event_meta(ev, "commit");
    c->since = es_event_meta(ev, "since");
    c->prevdata = es_event_meta(ev, "prevdata");
    const char *live = es_event_meta(ev, "live");
    c->snapshot = live != NULL && strcmp(live, "false") == 0;
}

es_status es_atp_audit_event(es_atp_audit *a, const es_event *ev, es_atp_audit_result *out,
                             bool *ready)
{
    if (a == NULL || ev == NULL || out == NULL || ready == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_audit_event: NULL argument");
    *ready = false;
    a->stats.events++;
    const char *type = es_event_entity_type(ev), *event_type = es_event_event_type(ev);
    es_atp_audit_commit c = {0};
    event_fields(ev, &c);
    bool repo_event = strcmp(type, "repo") == 0;
    if (repo_event && strcmp(event_type, "sync") == 0) {
        a->stats.syncs++;
        es_status s = es_atp_audit_finish(a, out, ready); /* the sync follows the open group */
        return s == ES_OK ? group_open(a, &c, es_event_seq(ev), 1, ev) : s;
    }
    if (repo_event || !is_op(event_type) || (c.rev == NULL && c.commit == NULL)) {
        a->stats.skipped_events++; /* #identity, #account, other applications' events */
        return ES_OK;
    }
    group *g = &a->cur;
    uint64_t seq = es_event_seq(ev);
    if (g->open && c.commit != NULL && same_text(c.did, g->fields.did) &&
        same_text(c.commit, g->fields.commit)) {
        g->events++;
        g->last_seq = seq;
        if (!same_fields(&c, &g->fields) && g->reason == ES_ATP_AUDIT_OK)
            return check(a, g, &c, &g->reason); /* a member that tells another story */
        return ES_OK;
    }
    es_atp_audit_finish(a, out, ready);
    return group_open(a, &c, seq, 1, NULL);
}

/* ---- reports ----------------------------------------------------------------- */

void es_atp_audit_stats_get(const es_atp_audit *a, es_atp_audit_stats *out)
{
    if (a == NULL || out == NULL)
        return;
    *out = a->stats;
}

void es_atp_audit_each_did(const es_atp_audit *a, es_atp_audit_did_fn fn, void *ctx)
{
    if (a == NULL || fn == NULL)
        return;
    for (const repo *r = a->first; r != NULL; r = r->next_in_order) {
        uint64_t by_reason[ES_ATP_AUDIT_REASON_COUNT];
        for (size_t i = 0; i < ES_ATP_AUDIT_REASON_COUNT; i++)
            by_reason[i] = r->by_reason[i];
        if (fn(ctx, r->head.did, r->commits, by_reason) != 0)
            return;
    }
}
