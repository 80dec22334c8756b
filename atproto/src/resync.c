/* A repository's full state applied to the store (es/atproto_resync.h).
 *
 * Three steps: read back the repository's record events and fold them into
 * its stored record set (sorted by key: the fold is a stable sort by key,
 * then the last event of each key); walk the CAR's MST, which yields the
 * records in the same key order; merge the two sorted sequences, each
 * difference becoming an event. Memory: the stored set (bounded by
 * max_events and max_bytes) and one batch; the CAR is the caller's.
 *
 * A batch is stored either as one atomic batch (o.atomic_batches) or, by
 * default, as plain publishes, most of them unacknowledged
 * (es_append_unacked): nats-server commits atomic batches one at a time per
 * stream, each with fsyncs of its staging store (~60 ms under load), and
 * an acknowledgement per event costs the server and the client about as
 * much as storing it. Nothing in a snapshot needs atomicity: what got in is
 * read back by the next call. What does need care is another writer of the
 * repository, and an event the server did not store: the first event of
 * each batch expects the repository's last event, and at the end the
 * repository's event count must be what was read back plus what this call
 * appended. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/append.h>
#include <es/atproto.h>
#include <es/atproto_resync.h>
#include <es/cid.h>
#include <es/inspect.h>
#include <es/read.h>

#include "atp_internal.h"
#include "audit_internal.h"
#include "mapping.h"

#define MAX_EVENTS_DEFAULT  ((size_t)4000000)
#define MAX_BYTES_DEFAULT   ((size_t)512 << 20)
#define MAX_DEPTH_DEFAULT   64
#define BATCH_ARENA_LIMIT   ((size_t)64 << 20) /* one batch's ids and metadata */
#define SCRATCH_LIMIT       ((size_t)64 << 20) /* one record's decode */
#define COMMIT_DEPTH        4                  /* a commit is a flat map */
#define META_MAX            11                 /* the most metadata one event carries */

void es_atp_resync_options_init(es_atp_resync_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->max_events = MAX_EVENTS_DEFAULT;
    o->batch_max = ES_BATCH_MAX;
    o->max_depth = MAX_DEPTH_DEFAULT;
    o->max_bytes = MAX_BYTES_DEFAULT;
    o->atomic_batches = false;
}

/* One record the store holds (after the fold), or one record event (before). */
typedef struct held {
    const char *key; /* "<collection>/<rkey>" */
    size_t key_len;
    const char *cid; /* CID text; NULL for a delete event */
    uint64_t seq;
} held;

typedef struct resync {
    es_store *store;
    es_atp_resync_options o;
    es_atp_resync_result *r;
    const char *did;
    size_t did_len;
    const char *eid; /* the events' entity id (mapping.h) */
    size_t eid_len;
    const char *did_meta; /* metadata `did` for a long DID, or NULL */
    es_filter scope;      /* every entity of the repository: the expectation's */
    /* the fetched commit, as text for the metadata */
    const char *rev, *commit_text, *data_text, *sig_text, *commit_prev_text;
    /* what the store holds, sorted by key; next = the merge's position */
    es_arena *held_arena;
    held *items;
    size_t count, cap, next;
    uint64_t last_seq; /* the repository's last event (any entity): the expectation */
    uint64_t read_seq; /* ... as read back: part of the events' ids */
    uint64_t read_events; /* the repository's events read back (any entity, any kind) */
    uint64_t appended;    /* events this call appended (or found appended under its ids) */
    /* the batch being built, and its counts until it is stored */
    es_arena *batch_arena, *scratch;
    es_event_spec *events;
    size_t n;
    uint64_t pending[3]; /* created, updated, deleted */
    es_status failed;    /* why the walk stopped ... */
    int failed_code;     /* ... with the server's err_code */
    char failed_text[512]; /* ... and the text, which the walk's own error replaces */
} resync;

enum { CREATED, UPDATED, DELETED };
static const char *const action_names[] = {"create", "update", "delete"};

/* ---- the fetched commit ----------------------------------------------------- */

static const char *text_field(resync *x, const es_value *c, const char *key)
{
    const es_value *v = es_value_get(c, key);
    if (v == NULL || v->kind != ES_VALUE_STRING)
        return NULL;
    return es_arena_strndup(x->held_arena, v->u.str.ptr, v->u.str.len);
}

/* The commit's fields the events carry: rev, its CID, data, sig and the
 * legacy prev (audit metadata), and its DID, which must be o.did. */
static es_status read_commit(resync *x, const es_car *car)
{
    if (car->root_count == 0)
        return es_error(ES_ERR_DECODE, "the repository CAR has no root");
    es_car_block *b = es_car_find(car, car->roots[0], car->root_lens[0]);
    if (b == NULL)
        return es_error(ES_ERR_DECODE, "the commit block (roots[0]) is absent");
    es_status s = es_car_verify(b);
    es_value *c = NULL;
    if (s == ES_OK &&
        (s = esi_atp_decode_exact(b->data, b->len, COMMIT_DEPTH, x->held_arena, &c)) != ES_OK)
        return esi_atp_error_wrap(s, "commit block");
    if (s != ES_OK)
        return s;
    const es_value *did = es_value_get(c, "did"), *data = es_value_get(c, "data");
    const es_value *sig = es_value_get(c, "sig"), *prev = es_value_get(c, "prev");
    x->rev = text_field(x, c, "rev");
    if (did == NULL || did->kind != ES_VALUE_STRING || data == NULL ||
        data->kind != ES_VALUE_LINK || sig == NULL || sig->kind != ES_VALUE_BYTES ||
        x->rev == NULL || !es_atp_valid_tid(x->rev, strlen(x->rev)))
        return es_error(ES_ERR_DECODE, "the commit is not {did, rev, data, sig, ...}");
    if (did->u.str.len != x->did_len || memcmp(did->u.str.ptr, x->did, x->did_len) != 0)
        return es_error(ES_ERR_DECODE, "the repository is of %.*s, not of the DID asked for",
                        (int)(did->u.str.len > 256 ? 256 : did->u.str.len), did->u.str.ptr);
    char *sig_text = es_arena_alloc(x->held_arena, ESI_ATP_AUDIT_SIG_TEXT_MAX);
    x->commit_text = esi_atp_cid_text(x->held_arena, car->roots[0], car->root_lens[0]);
    x->data_text = esi_atp_cid_text(x->held_arena, data->u.bytes.ptr, data->u.bytes.len);
    if (prev != NULL && prev->kind == ES_VALUE_LINK)
        x->commit_prev_text = esi_atp_cid_text(x->held_arena, prev->u.bytes.ptr, prev->u.bytes.len);
    if (sig_text == NULL || x->commit_text == NULL || x->data_text == NULL ||
        (prev != NULL && prev->kind == ES_VALUE_LINK && x->commit_prev_text == NULL))
        return es_error(ES_ERR_NOMEM, "resync: out of memory");
    if ((s = esi_atp_audit_sig_text(sig->u.bytes.ptr, sig->u.bytes.len, sig_text)) != ES_OK)
        return esi_atp_error_wrap(s, "the commit");
    x->sig_text = sig_text;
    if (data->u.bytes.len > sizeof x->r->data || strlen(x->rev) > ES_ATP_REPO_REV_MAX)
        return es_error(ES_ERR_DECODE, "the commit's data CID or rev is too long");
    memcpy(x->r->rev, x->rev, strlen(x->rev) + 1);
    memcpy(x->r->data, data->u.bytes.ptr, data->u.bytes.len);
    x->r->data_len = data->u.bytes.len;
    return ES_OK;
}

/* ---- what the store holds ------------------------------------------------------ */

static es_status grow(resync *x)
{
    if (x->count < x->cap)
        return ES_OK;
    if (x->count >= x->o.max_events)
        return es_error(ES_ERR_LIMIT, "the repository has more than %zu record events stored",
                        x->o.max_events);
    size_t cap = x->cap ? x->cap * 2 : 1024;
    if (cap > x->o.max_events)
        cap = x->o.max_events;
    held *items = es_realloc(x->items, cap * sizeof *items);
    if (items == NULL)
        return es_error(ES_ERR_NOMEM, "resync: out of memory");
    x->items = items;
    x->cap = cap;
    return ES_OK;
}

/* The record key of a record event: its entity type back to the collection
 * ('_' -> '.', mapping.h) and its metadata rkey. */
static char *record_key(resync *x, const char *type, const char *rkey, size_t *len)
{
    esi_atp_part parts[] = {{type, strlen(type)}, {"/", 1}, {rkey, strlen(rkey)}};
    char *key = esi_atp_join(x->held_arena, parts, 3, len);
    for (size_t i = 0; key != NULL && i < parts[0].n; i++)
        if (key[i] == '_')
            key[i] = '.';
    return key;
}

static es_status on_stored(const es_event *ev, void *closure)
{
    resync *x = closure;
    x->last_seq = es_event_seq(ev);
    x->read_events++;
    const char *type = es_event_entity_type(ev), *action = es_event_event_type(ev);
    const char *rkey = es_event_meta(ev, "rkey"), *cid = es_event_meta(ev, "cid");
    bool deleted = strcmp(action, "delete") == 0;
    /* repo events (#identity, #account, #sync) and anything not a record op */
    if (strcmp(type, "repo") == 0 || rkey == NULL || (!deleted && cid == NULL) ||
        (!deleted && strcmp(action, "create") != 0 && strcmp(action, "update") != 0))
        return ES_OK;
    es_status s = grow(x);
    if (s != ES_OK)
        return s;
    held *h = &x->items[x->count];
    h->key = record_key(x, type, rkey, &h->key_len);
    h->cid = deleted ? NULL : es_arena_strndup(x->held_arena, cid, strlen(cid));
    h->seq = es_event_seq(ev);
    if (h->key == NULL || (!deleted && h->cid == NULL))
        return es_error(ES_ERR_LIMIT, "the repository's stored keys exceed %zu bytes",
                        x->o.max_bytes);
    x->count++;
    x->r->stored_events++;
    return ES_OK;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int held_cmp(const void *pa, const void *pb)
{
    const held *a = pa, *b = pb;
    int c = key_cmp(a->key, a->key_len, b->key, b->key_len);
    return c != 0 ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sorted by key then stream order, each key's last event says what is
 * held: its CID, or nothing after a delete. */
static void fold(resync *x)
{
    if (x->count > 1) /* (qsort must not see the NULL of an empty set) */
        qsort(x->items, x->count, sizeof *x->items, held_cmp);
    size_t out = 0;
    for (size_t i = 0; i < x->count; i++) {
        bool last = i + 1 == x->count ||
                    key_cmp(x->items[i].key, x->items[i].key_len, x->items[i + 1].key,
                            x->items[i + 1].key_len) != 0;
        if (last && x->items[i].cid != NULL)
            x->items[out++] = x->items[i];
    }
    x->count = out;
}

static es_status read_stored(resync *x)
{
    es_status s = es_evolve(x->store, &x->scope, NULL, on_stored, x, NULL);
    x->read_seq = x->last_seq;
    return s;
}

/* ---- the events ------------------------------------------------------------------ */

/* The expectation a batch's first event carries: the repository's last
 * event is the one this call knows of (none: ES_EXPECT_NEW). */
static void expect_last(resync *x, es_event_spec *first)
{
    first->expect = x->last_seq ? ES_EXPECT_SEQ : ES_EXPECT_NEW;
    first->expect_seq = x->last_seq;
    first->expect_filter = &x->scope;
}

static es_status append_atomic(resync *x)
{
    es_append_result res;
    es_status s = es_append_batch(x->store, x->events, x->n, &res);
    if (s == ES_OK)
        x->last_seq = res.last_seq;
    return s;
}

/* The batch's first event alone and acknowledged (its expectation holds or
 * nothing of the batch is sent), the middle ones unacknowledged, the last
 * acknowledged: the server handles a connection's publishes in order, so
 * that answer says every event before it was handled (stored, or refused:
 * check_alone counts), and gives the next batch's expectation. */
static es_status append_pipelined(resync *x)
{
    es_append_result res;
    es_status s = es_append_batch(x->store, x->events, 1, &res);
    if (s == ES_OK && x->n > 2)
        s = es_append_unacked(x->store, x->events + 1, x->n - 2);
    if (s == ES_OK && x->n > 1)
        s = es_append_batch(x->store, x->events + x->n - 1, 1, &res);
    if (s == ES_OK)
        x->last_seq = res.last_seq;
    return s;
}

/* The batch's entity types into the index, before the batch: the index
 * never lags the stream (its readers widen their watches from it). */
static es_status index_types(resync *x)
{
    es_status s = ES_OK;
    for (size_t i = 0; x->o.types != NULL && s == ES_OK && i < x->n; i++)
        s = es_entity_types_add(x->o.types, NULL, x->events[i].entity_type);
    return s;
}

static es_status flush(resync *x)
{
    if (x->n == 0)
        return ES_OK;
    expect_last(x, &x->events[0]);
    es_status s = index_types(x);
    if (s == ES_OK)
        s = x->o.atomic_batches ? append_atomic(x) : append_pipelined(x);
    if (s != ES_OK)
        return s;
    x->appended += x->n;
    x->r->last_seq = x->last_seq;
    x->r->batches++;
    x->r->created += x->pending[CREATED];
    x->r->updated += x->pending[UPDATED];
    x->r->deleted += x->pending[DELETED];
    memset(x->pending, 0, sizeof x->pending);
    x->n = 0;
    es_arena_reset(x->batch_arena);
    return x->o.on_batch ? x->o.on_batch(x->o.closure, x->r) : ES_OK;
}

static es_status count_events(const es_subject_count *c, void *closure)
{
    *(uint64_t *)closure += c->events;
    return ES_OK;
}

/* After pipelined publishes: the repository holds what was read back and
 * what this call appended, nothing else. Each batch's first event checked
 * that nobody had appended before it; this catches an event stored among a
 * batch's publishes or after the last, and an unacknowledged event the
 * server did not store. (Atomic batches need no check: each is all or
 * nothing behind its expectation.) */
static es_status check_alone(resync *x)
{
    if (x->o.atomic_batches || x->appended == 0)
        return ES_OK;
    uint64_t now = 0, expected = x->read_events + x->appended;
    es_status s = es_store_subject_counts(x->store, &x->scope, count_events, &now, NULL);
    if (s != ES_OK || now == expected)
        return s;
    int len = (int)(x->did_len > 256 ? 256 : x->did_len);
    if (now > expected)
        return es_error(ES_ERR_CONFLICT,
                        "resync of %.*s: the repository has %" PRIu64 " events, %" PRIu64
                        " expected (%" PRIu64 " read back, %" PRIu64
                        " appended): another writer appended meanwhile",
                        len, x->did, now, expected, x->read_events, x->appended);
    return es_error(ES_ERR_SERVER,
                    "resync of %.*s: the repository has %" PRIu64 " events, %" PRIu64
                    " expected (%" PRIu64 " read back, %" PRIu64
                    " appended): the server did not store some (a limit, a permission?) or "
                    "they were removed meanwhile",
                    len, x->did, now, expected, x->read_events, x->appended);
}

/* The metadata of a resync event: the record's, the commit's (as a live op
 * carries them, so es-atproto-verify checks it the same way), live=false. */
static size_t event_meta(const resync *x, es_meta *m, const char *rkey, const char *cid,
                         const char *prev)
{
    size_t n = 0;
    m[n++] = (es_meta){"rkey", rkey};
    if (cid != NULL)
        m[n++] = (es_meta){"cid", cid};
    if (prev != NULL)
        m[n++] = (es_meta){"prev", prev};
    m[n++] = (es_meta){"rev", x->rev};
    m[n++] = (es_meta){"commit", x->commit_text};
    m[n++] = (es_meta){"sig", x->sig_text};
    m[n++] = (es_meta){"data", x->data_text};
    if (x->commit_prev_text != NULL)
        m[n++] = (es_meta){"commitprev", x->commit_prev_text};
    if (x->did_meta != NULL)
        m[n++] = (es_meta){"did", x->did_meta};
    m[n++] = (es_meta){"live", "false"};
    return n;
}

/* A resync event's id: "<did>/<rev>/<collection>/<rkey>@<seq>", seq the
 * repository's last stored event when this call read it back. The same
 * difference computed from the same stored state gets the same ids (two
 * resyncs racing: the duplicate window keeps one); a difference computed
 * later never collides with an earlier one, even for the same rev and key
 * (a record deleted since the last resync of this rev is created again). */
static const char *event_id(resync *x, const char *key, size_t key_len)
{
    char seq[24];
    int n = snprintf(seq, sizeof seq, "@%" PRIu64, x->read_seq);
    esi_atp_part id[] = {{x->did, x->did_len}, {"/", 1}, {x->rev, strlen(x->rev)},
                         {"/", 1},             {key, key_len}, {seq, (size_t)n}};
    return esi_atp_event_id(x->batch_arena, id, sizeof id / sizeof id[0]);
}

/* An event for the record `key` (collection/rkey, split at `slash`): its
 * new record (NULL for a delete), the CID it replaces (NULL for a create). */
static es_status emit(resync *x, int action, const char *key, size_t key_len, size_t slash,
                      const es_atp_record *rec, const char *prev)
{
    es_status s = x->n == x->o.batch_max ? flush(x) : ES_OK;
    if (s != ES_OK)
        return s;
    es_arena *a = x->batch_arena;
    const es_car_block *block = rec ? rec->block : NULL;
    const char *cid = rec ? esi_atp_cid_text(a, rec->cid, rec->cid_len) : NULL;
    es_event_spec *e = &x->events[x->n];
    es_event_spec_init(e);
    const char *rkey = es_arena_strndup(a, key + slash + 1, key_len - slash - 1);
    es_meta *m = es_arena_calloc(a, META_MAX, sizeof *m);
    e->entity_type = esi_atp_entity_type(a, key, slash);
    e->entity_id = x->eid;
    e->entity_id_len = x->eid_len;
    e->event_type = action_names[action];
    e->event_id = event_id(x, key, key_len);
    e->time_ns = x->o.time_ns;
    if (rkey == NULL || m == NULL || e->entity_type == NULL || e->event_id == NULL ||
        (rec != NULL && cid == NULL))
        return es_error(ES_ERR_NOMEM, "resync: a batch's metadata exceeds its arena");
    const char *invalid = NULL;
    if (block != NULL) {
        s = esi_atp_record_decode(block->data, block->len, x->o.max_depth, x->scratch, &invalid);
        if (s != ES_OK)
            return esi_atp_error_wrap(s, "record %.*s", (int)key_len, key);
        e->codec = invalid ? "binary" : "dag-cbor";
        e->data = block->data;
        e->data_len = block->len;
    }
    size_t n = event_meta(x, m, rkey, cid, prev);
    if (invalid != NULL)
        m[n++] = (es_meta){"invalid", invalid};
    e->meta = m;
    e->meta_count = n;
    x->pending[action]++;
    x->n++;
    return ES_OK;
}

static es_status emit_delete(resync *x, const held *h)
{
    const char *slash = memchr(h->key, '/', h->key_len);
    return emit(x, DELETED, h->key, h->key_len, (size_t)(slash - h->key), NULL, h->cid);
}

/* ---- the merge --------------------------------------------------------------------- */

/* Deletes every held record whose key sorts before `key` (all of them
 * when key is NULL): the repository no longer has them. */
static es_status delete_before(resync *x, const char *key, size_t key_len)
{
    es_status s = ES_OK;
    while (s == ES_OK && x->next < x->count &&
           (key == NULL ||
            key_cmp(x->items[x->next].key, x->items[x->next].key_len, key, key_len) < 0))
        s = emit_delete(x, &x->items[x->next++]);
    return s;
}

static es_status take_record(resync *x, const es_atp_record *rec)
{
    size_t at;
    if (esi_atp_repo_path_problem(rec->key, rec->key_len, &at) != NULL)
        return es_error(ES_ERR_DECODE, "MST key '%.*s' is not <collection>/<record key>",
                        (int)(rec->key_len > 512 ? 512 : rec->key_len), rec->key);
    if (rec->block == NULL)
        return es_error(ES_ERR_DECODE, "record %.*s: its block is absent from the CAR",
                        (int)rec->key_len, rec->key);
    x->r->records++;
    es_status s = delete_before(x, rec->key, rec->key_len);
    if (s != ES_OK)
        return s;
    char cid[ES_CID_STRING_MAX];
    if (es_cid_to_string(rec->cid, rec->cid_len, cid, sizeof cid) != ES_OK)
        return es_error(ES_ERR_DECODE, "record %.*s: its CID is not a CIDv1", (int)rec->key_len,
                        rec->key);
    const held *h = x->next < x->count ? &x->items[x->next] : NULL;
    if (h != NULL && key_cmp(h->key, h->key_len, rec->key, rec->key_len) == 0) {
        x->next++;
        if (strcmp(h->cid, cid) == 0) {
            x->r->unchanged++;
            return ES_OK;
        }
        return emit(x, UPDATED, rec->key, rec->key_len, at, rec, h->cid);
    }
    return emit(x, CREATED, rec->key, rec->key_len, at, rec, NULL);
}

static int on_record(const es_atp_record *rec, void *user)
{
    resync *x = user;
    x->failed = take_record(x, rec);
    if (x->failed != ES_OK) {
        x->failed_code = es_last_error_code();
        snprintf(x->failed_text, sizeof x->failed_text, "%s", es_last_error());
    }
    return x->failed != ES_OK;
}

static es_status walk(resync *x, const es_car *car)
{
    es_arena *a;
    es_status s = es_arena_create(SCRATCH_LIMIT, &a);
    if (s != ES_OK)
        return s;
    x->failed = ES_OK;
    s = es_atp_walk_repo(car, a, NULL, on_record, x);
    es_arena_destroy(a);
    if (s == ES_ERR_ABORTED) /* the callback's failure, with its own text */
        s = es_error_code(x->failed, x->failed_code, "%s", x->failed_text);
    if (s == ES_OK)
        s = delete_before(x, NULL, 0);
    return s == ES_OK ? flush(x) : s;
}

/* ---- the call ------------------------------------------------------------------------ */

static es_status check_args(es_store *store, const es_car *car, const es_atp_resync_options *o)
{
    if (store == NULL || car == NULL || o == NULL || o->did == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_resync_apply: NULL argument");
    size_t len = o->did_len ? o->did_len : strlen(o->did);
    if (!es_atp_valid_did(o->did, len))
        return es_error(ES_ERR_INVALID, "es_atp_resync_apply: '%.*s' is not a DID",
                        (int)(len > 256 ? 256 : len), o->did);
    if (o->batch_max == 0 || o->batch_max > ES_BATCH_MAX)
        return es_error(ES_ERR_INVALID, "es_atp_resync_apply: batch_max must be 1..%d",
                        ES_BATCH_MAX);
    return ES_OK;
}

static es_status open_resync(resync *x)
{
    es_status s = es_arena_create(x->o.max_bytes, &x->held_arena);
    if (s == ES_OK)
        s = es_arena_create(BATCH_ARENA_LIMIT, &x->batch_arena);
    if (s == ES_OK)
        s = es_arena_create(SCRATCH_LIMIT, &x->scratch);
    if (s == ES_OK && (x->events = es_calloc(x->o.batch_max, sizeof *x->events)) == NULL)
        s = es_error(ES_ERR_NOMEM, "resync: out of memory");
    if (s == ES_OK)
        s = esi_atp_did_entity_id(x->held_arena, x->did, x->did_len, &x->eid, &x->eid_len,
                                  &x->did_meta);
    es_filter_init(&x->scope);
    x->scope.entity_id = x->eid;
    x->scope.entity_id_len = x->eid_len;
    return s;
}

static void close_resync(resync *x)
{
    es_free(x->items);
    es_free(x->events);
    es_arena_destroy(x->held_arena);
    es_arena_destroy(x->batch_arena);
    es_arena_destroy(x->scratch);
}

es_status es_atp_resync_apply(es_store *store, const es_car *car, const es_atp_resync_options *o,
                              es_atp_resync_result *out)
{
    es_atp_resync_result ignored;
    es_atp_resync_result *r = out ? out : &ignored;
    memset(r, 0, sizeof *r);
    es_status s = check_args(store, car, o);
    if (s != ES_OK)
        return s;
    resync x = {.store = store, .o = *o, .r = r, .did = o->did};
    x.did_len = o->did_len ? o->did_len : strlen(o->did);
    if (x.o.max_events == 0)
        x.o.max_events = MAX_EVENTS_DEFAULT;
    if (x.o.max_depth == 0)
        x.o.max_depth = MAX_DEPTH_DEFAULT;
    if (x.o.max_bytes == 0)
        x.o.max_bytes = MAX_BYTES_DEFAULT;
    s = open_resync(&x);
    if (s == ES_OK)
        s = read_commit(&x, car);
    if (s == ES_OK)
        s = read_stored(&x);
    if (s == ES_OK) {
        fold(&x);
        s = walk(&x, car);
    }
    if (s == ES_OK)
        s = check_alone(&x);
    close_resync(&x);
    return s;
}
