/* One firehose frame -> one batch of entity events (docs/atproto.md).
 *
 * A commit is checked completely before a single event is produced: every op
 * is parsed and every block it uses is found and hash-verified first, so a
 * damaged commit yields an error and no events, never a partial batch. */
#include "atp_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <es/base.h>
#include <es/cid.h>
#include <es/subject.h>

#include "decoder.h"
#include "mapping.h"
#include "verify.h"

#define HEADER_DEPTH 2

typedef struct frame {
    es_atp_decoder *d;
    es_arena *arena;
    es_atp_batch *out;
    const es_value *body;
    const uint8_t *body_bytes;
    size_t body_len;
    const char *seq_text; /* decimal seq, for the metadata */
    /* The events' entity id: the DID, or for a DID over ES_ID_MAX bytes the
     * CID string of the DID, which then also goes into metadata `did`. */
    const char *entity_id;
    size_t entity_id_len;
    const char *did_text; /* the NUL-terminated DID for metadata `did`, or NULL */
    /* The signed commit (check_commit_block): its block, and for the audit
     * metadata its `sig` (base64url), `data` and legacy `prev` (CID text;
     * NULL when absent or null). */
    const es_car_block *commit_block;
    const char *sig_text, *data_text, *commit_prev_text;
} frame;

typedef enum action { ACTION_CREATE, ACTION_UPDATE, ACTION_DELETE } action;

static const char *const action_names[] = {"create", "update", "delete"};

/* One op of a commit, checked and ready to map. */
typedef struct op {
    action act;
    const char *collection, *rkey;
    size_t collection_len, rkey_len;
    const uint8_t *cid, *prev; /* binary CIDs or NULL */
    size_t cid_len, prev_len;
    const es_car_block *block; /* the record (create/update) */
    const char *invalid;       /* why the record is not a DAG-CBOR map, or NULL */
} parsed_op;

/* ---- errors -------------------------------------------------------------- */

ES_PRINTF(5, 0)
static es_status refuse_v(frame *f, es_atp_error kind, es_status s, bool wrap, const char *fmt,
                          va_list ap) ES_PRINTF(5, 0);
static es_status refuse_v(frame *f, es_atp_error kind, es_status s, bool wrap, const char *fmt,
                          va_list ap)
{
    char detail[384], previous[512] = "";
    if (wrap)
        snprintf(previous, sizeof previous, ": %s", es_last_error());
    vsnprintf(detail, sizeof detail, fmt, ap);
    char where[64] = "frame";
    if (f->out->has_seq)
        snprintf(where, sizeof where, "frame seq %" PRIu64, f->out->seq);
    f->out->error = kind;
    return es_error(s, "%s: %s: %s%s", where, es_atp_error_name(kind), detail, previous);
}

/* Refuse the frame as `kind`, with a detail message. */
static es_status refuse(frame *f, es_atp_error kind, es_status s, const char *fmt, ...)
    ES_PRINTF(4, 5);
static es_status refuse(frame *f, es_atp_error kind, es_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s = refuse_v(f, kind, s, false, fmt, ap);
    va_end(ap);
    return s;
}

/* The same, appending the error the failed call left behind. */
static es_status refuse_wrap(frame *f, es_atp_error kind, es_status s, const char *fmt, ...)
    ES_PRINTF(4, 5);
static es_status refuse_wrap(frame *f, es_atp_error kind, es_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s = refuse_v(f, kind, s, true, fmt, ap);
    va_end(ap);
    return s;
}

/* Memory ran out: the frame is not at fault, so it is not refused (no
 * out->error) and may be decoded again. */
static es_status no_memory(frame *f, const char *what)
{
    if (f->out->has_seq)
        return esi_atp_error_wrap(ES_ERR_NOMEM, "frame seq %" PRIu64 ": %s", f->out->seq, what);
    return esi_atp_error_wrap(ES_ERR_NOMEM, "frame: %s", what);
}

/* A failed strict decode of part of the frame, refused as `kind` unless the
 * decoder hit one of its bounds or ran out of memory. */
static es_status refuse_decode(frame *f, es_status s, es_atp_error kind, const char *what)
{
    if (s == ES_ERR_NOMEM)
        return no_memory(f, what);
    if (s == ES_ERR_TOO_DEEP)
        return refuse_wrap(f, ES_ATP_ERR_DEPTH, ES_ERR_LIMIT, "%s", what);
    if (s == ES_ERR_LIMIT)
        return refuse_wrap(f, ES_ATP_ERR_LIMIT, ES_ERR_LIMIT, "%s", what);
    return refuse_wrap(f, kind, ES_ERR_DECODE, "%s", what);
}

/* An allocation from the frame's arena failed: its limit (the frame is
 * refused), or memory. */
static es_status arena_full(frame *f)
{
    if (es_arena_error(f->arena, "the frame's arena") == ES_ERR_NOMEM)
        return no_memory(f, "mapping");
    return refuse(f, ES_ATP_ERR_LIMIT, ES_ERR_LIMIT, "the frame's arena is full");
}

/* ---- fields -------------------------------------------------------------- */

typedef enum presence { REQUIRED, OPTIONAL } presence;

/* The field `key` of the body as `kind`, or NULL when an OPTIONAL field is
 * absent or null. A wrong kind, or a missing REQUIRED one, refuses the frame. */
static es_status field(frame *f, const es_value *map, const char *key, es_value_kind kind,
                       presence p, const es_value **out)
{
    const es_value *v = es_value_get(map, key);
    *out = NULL;
    if (v == NULL || v->kind == ES_VALUE_NULL) {
        if (p == REQUIRED)
            return refuse(f, ES_ATP_ERR_SCHEMA, ES_ERR_DECODE, "field '%s' is missing", key);
        return ES_OK;
    }
    if (v->kind != kind)
        return refuse(f, ES_ATP_ERR_SCHEMA, ES_ERR_DECODE, "field '%s' has the wrong type", key);
    *out = v;
    return ES_OK;
}

static es_status string_field(frame *f, const es_value *map, const char *key, presence p,
                              const char **s, size_t *len)
{
    const es_value *v;
    es_status st = field(f, map, key, ES_VALUE_STRING, p, &v);
    *s = v ? v->u.str.ptr : NULL;
    *len = v ? v->u.str.len : 0;
    return st;
}

static es_status link_field(frame *f, const es_value *map, const char *key, presence p,
                            const uint8_t **cid, size_t *len)
{
    const es_value *v;
    es_status st = field(f, map, key, ES_VALUE_LINK, p, &v);
    *cid = v ? v->u.bytes.ptr : NULL;
    *len = v ? v->u.bytes.len : 0;
    return st;
}

/* seq: a non-negative integer (uint64 on the wire). */
static bool seq_value(const es_value *body, uint64_t *seq)
{
    const es_value *v = es_value_get(body, "seq");
    if (v != NULL && v->kind == ES_VALUE_INT && v->u.i >= 0)
        *seq = (uint64_t)v->u.i;
    else if (v != NULL && v->kind == ES_VALUE_UINT)
        *seq = v->u.u;
    else
        return false;
    return true;
}

static es_status read_seq(frame *f)
{
    if (!seq_value(f->body, &f->out->seq))
        return refuse(f, ES_ATP_ERR_SCHEMA, ES_ERR_DECODE, "field 'seq' is missing or negative");
    f->out->has_seq = true;
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, f->out->seq);
    f->seq_text = es_arena_strndup(f->arena, text, (size_t)n);
    return f->seq_text ? ES_OK : arena_full(f);
}

/* Sets the events' entity id from the DID (mapping.h: the DID, or for a
 * DID too long to be an entity id its CID string, the DID then going into
 * metadata `did`; docs/atproto.md, "Long DIDs"). */
static es_status long_did_entity_id(frame *f)
{
    es_status s = esi_atp_did_entity_id(f->arena, f->out->did, f->out->did_len, &f->entity_id,
                                        &f->entity_id_len, &f->did_text);
    if (s == ES_ERR_NOMEM)
        return arena_full(f);
    return s == ES_OK ? ES_OK : refuse_wrap(f, ES_ATP_ERR_LIMIT, ES_ERR_LIMIT, "DID hash");
}

/* The DID field (`repo` in commits, `did` elsewhere), checked. */
static es_status read_did(frame *f, const char *key)
{
    const char *did;
    size_t len;
    es_status s = string_field(f, f->body, key, REQUIRED, &did, &len);
    if (s != ES_OK)
        return s;
    if (!es_atp_valid_did(did, len))
        return refuse(f, ES_ATP_ERR_SYNTAX, ES_ERR_DECODE, "'%s' is not a valid DID", key);
    f->out->did = did;
    f->out->did_len = len;
    return long_did_entity_id(f);
}

static es_status read_time(frame *f)
{
    es_atp_batch *out = f->out;
    es_status s = string_field(f, f->body, "time", REQUIRED, &out->time, &out->time_len);
    if (s != ES_OK)
        return s;
    if (!es_atp_parse_datetime(out->time, out->time_len, &out->time_ns))
        return refuse(f, ES_ATP_ERR_SYNTAX, ES_ERR_DECODE, "'time' is not a valid datetime");
    return ES_OK;
}

static es_status read_rev(frame *f, const char **rev, size_t *len)
{
    es_status s = string_field(f, f->body, "rev", REQUIRED, rev, len);
    if (s == ES_OK && !es_atp_valid_tid(*rev, *len))
        return refuse(f, ES_ATP_ERR_SYNTAX, ES_ERR_DECODE, "'rev' is not a valid TID");
    return s;
}

/* ---- output helpers ------------------------------------------------------ */

typedef esi_atp_part part;

static const char *cid_text(frame *f, const uint8_t *cid, size_t len)
{
    return esi_atp_cid_text(f->arena, cid, len);
}

static const char *event_id(frame *f, const part *parts, size_t count)
{
    return esi_atp_event_id(f->arena, parts, count);
}

/* Metadata `did` at `m` for a DID too long to be the entity id: the number
 * of entries written (0 or 1). */
static size_t did_meta(const frame *f, es_meta *m)
{
    if (f->did_text == NULL)
        return 0;
    *m = (es_meta){"did", f->did_text};
    return 1;
}

/* A new event for this frame: the DID (or its stand-in) as entity id, the
 * frame's time. */
static es_event_spec *new_event(frame *f)
{
    es_event_spec *e = &f->out->events[f->out->count++];
    es_event_spec_init(e);
    e->entity_id = f->entity_id;
    e->entity_id_len = f->entity_id_len;
    e->time_ns = f->out->time_ns;
    return e;
}

static es_status alloc_events(frame *f, size_t count)
{
    f->out->events = es_arena_calloc(f->arena, count ? count : 1, sizeof *f->out->events);
    return f->out->events ? ES_OK : arena_full(f);
}

/* ---- blocks -------------------------------------------------------------- */

static es_status parse_car(frame *f, const es_value *blocks, es_car *car)
{
    es_status s = es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, &f->d->opts.limits.car,
                               f->arena, car);
    if (s == ES_ERR_NOMEM)
        return no_memory(f, "blocks");
    if (s == ES_ERR_LIMIT)
        return refuse_wrap(f, ES_ATP_ERR_LIMIT, ES_ERR_LIMIT, "blocks");
    if (s != ES_OK)
        return refuse_wrap(f, ES_ATP_ERR_CAR, ES_ERR_DECODE, "blocks");
    return ES_OK;
}

static es_status verify(frame *f, es_car_block *b, const char *what)
{
    if (es_car_block_verified(b))
        return ES_OK;
    if (es_car_verify(b) != ES_OK)
        return refuse_wrap(f, ES_ATP_ERR_HASH, ES_ERR_DECODE, "%s", what);
    f->d->stats.blocks_verified++;
    return ES_OK;
}

static es_status verify_all(frame *f, es_car *car)
{
    for (size_t i = 0; i < car->count; i++) {
        es_status s = verify(f, &car->blocks[i], "block");
        if (s != ES_OK)
            return s;
    }
    return ES_OK;
}

/* The commit's signature as metadata text (base64url without padding), in
 * the arena; NULL when the arena is full. */
static char *sig_text(frame *f, const es_value *sig)
{
    size_t cap = es_base64_encoded_len(sig->u.bytes.len) + 1;
    char *t = es_arena_alloc(f->arena, cap);
    if (t == NULL || esi_atp_base64url_encode(sig->u.bytes.ptr, sig->u.bytes.len, t, cap) != ES_OK)
        return NULL;
    return t;
}

/* What the audit metadata keeps of the commit block (docs/atproto.md,
 * "Audit metadata"); a missing or malformed sig or prev is left out here
 * (verification refuses such a commit). */
static es_status keep_commit_fields(frame *f, const es_value *c, const es_value *data)
{
    const es_value *sig = es_value_get(c, "sig"), *prev = es_value_get(c, "prev");
    if (sig != NULL && sig->kind == ES_VALUE_BYTES && (f->sig_text = sig_text(f, sig)) == NULL)
        return arena_full(f);
    f->data_text = cid_text(f, data->u.bytes.ptr, data->u.bytes.len);
    if (f->data_text == NULL)
        return refuse(f, ES_ATP_ERR_COMMIT, ES_ERR_DECODE, "the commit's data is not a CIDv1");
    if (prev != NULL && prev->kind == ES_VALUE_LINK &&
        (f->commit_prev_text = cid_text(f, prev->u.bytes.ptr, prev->u.bytes.len)) == NULL)
        return refuse(f, ES_ATP_ERR_COMMIT, ES_ERR_DECODE, "the commit's prev is not a CIDv1");
    return ES_OK;
}

/* The commit object named by roots[0]: present, verified, and agreeing with
 * the frame's DID and rev. */
static es_status check_commit_block(frame *f, const es_car *car, const uint8_t *commit,
                                    size_t commit_len, const char *rev, size_t rev_len)
{
    if (car->root_count == 0 || car->root_lens[0] != commit_len ||
        memcmp(car->roots[0], commit, commit_len) != 0)
        return refuse(f, ES_ATP_ERR_CAR_ROOT, ES_ERR_DECODE,
                      "the CAR's first root is not the commit");
    es_car_block *b = es_car_find(car, commit, commit_len);
    if (b == NULL)
        return refuse(f, ES_ATP_ERR_MISSING_BLOCK, ES_ERR_DECODE, "the commit block is absent");
    es_status s = verify(f, b, "commit block");
    if (s != ES_OK)
        return s;
    es_arena_reset(f->d->scratch);
    es_value *c;
    s = esi_atp_decode_exact(b->data, b->len, f->d->opts.limits.max_depth, f->d->scratch, &c);
    if (s != ES_OK)
        return refuse_decode(f, s, ES_ATP_ERR_COMMIT, "commit block");
    const es_value *did = es_value_get(c, "did"), *crev = es_value_get(c, "rev");
    const es_value *version = es_value_get(c, "version"), *data = es_value_get(c, "data");
    if (did == NULL || did->kind != ES_VALUE_STRING || did->u.str.len != f->out->did_len ||
        memcmp(did->u.str.ptr, f->out->did, f->out->did_len) != 0)
        return refuse(f, ES_ATP_ERR_COMMIT, ES_ERR_DECODE, "the commit's did is not the repo");
    if (crev == NULL || crev->kind != ES_VALUE_STRING || crev->u.str.len != rev_len ||
        memcmp(crev->u.str.ptr, rev, rev_len) != 0)
        return refuse(f, ES_ATP_ERR_COMMIT, ES_ERR_DECODE, "the commit's rev is not the frame's");
    if (version == NULL || version->kind != ES_VALUE_INT || version->u.i != 3)
        return refuse(f, ES_ATP_ERR_COMMIT, ES_ERR_DECODE, "the commit's version is not 3");
    if (data == NULL || data->kind != ES_VALUE_LINK)
        return refuse(f, ES_ATP_ERR_COMMIT, ES_ERR_DECODE, "the commit has no data link");
    /* scratch is reset by the record checks: the chain fields live in the arena */
    uint8_t *data_cid = es_arena_alloc(f->arena, data->u.bytes.len ? data->u.bytes.len : 1);
    if (data_cid == NULL)
        return arena_full(f);
    memcpy(data_cid, data->u.bytes.ptr, data->u.bytes.len);
    f->out->data_cid = data_cid;
    f->out->data_cid_len = data->u.bytes.len;
    f->out->commit_cid = commit;
    f->out->commit_cid_len = commit_len;
    f->commit_block = b;
    return keep_commit_fields(f, c, data);
}

/* ---- ops ----------------------------------------------------------------- */

static es_status parse_path(frame *f, const es_value *o, parsed_op *out)
{
    const char *path;
    size_t len;
    es_status s = string_field(f, o, "path", REQUIRED, &path, &len);
    if (s != ES_OK)
        return s;
    const char *problem = esi_atp_repo_path_problem(path, len, &out->collection_len);
    if (problem != NULL)
        return refuse(f, ES_ATP_ERR_SYNTAX, ES_ERR_DECODE, "op %s", problem);
    out->collection = path;
    out->rkey = path + out->collection_len + 1;
    out->rkey_len = len - out->collection_len - 1;
    return ES_OK;
}

static es_status parse_action(frame *f, const es_value *o, parsed_op *out)
{
    const char *a;
    size_t len;
    es_status s = string_field(f, o, "action", REQUIRED, &a, &len);
    if (s != ES_OK)
        return s;
    for (size_t i = 0; i < ES_ARRAY_LEN(action_names); i++)
        if (len == strlen(action_names[i]) && memcmp(a, action_names[i], len) == 0) {
            out->act = (action)i;
            return ES_OK;
        }
    return refuse(f, ES_ATP_ERR_OP, ES_ERR_DECODE, "unknown op action '%.*s'",
                  (int)(len > 32 ? 32 : len), a);
}

/* The earlier op of the commit that already checked block `b`, or NULL. */
static const parsed_op *checked_before(const es_car_block *b, const parsed_op *earlier, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (earlier[i].block == b)
            return &earlier[i];
    return NULL;
}

/* Decodes a hash-verified record block strictly. A block that is not a
 * DAG-CBOR map is not the frame's fault as a whole (the commit named it and
 * its hash matches): the op keeps it, marked invalid, and the commit's other
 * ops are still stored. The decoder's bounds and memory still refuse. */
static es_status decode_record(frame *f, parsed_op *o)
{
    es_status s = esi_atp_record_decode(o->block->data, o->block->len, f->d->opts.limits.max_depth,
                                        f->d->scratch, &o->invalid);
    return s == ES_OK ? ES_OK : refuse_decode(f, s, ES_ATP_ERR_RECORD, "record block");
}

/* The record block of a create or update: a dag-cbor CID, present in the
 * CAR, hash-verified, and (unless skipped) strict DAG-CBOR map. A block that
 * several ops name is decoded once: otherwise max_ops ops naming one large
 * record would decode it max_ops times. */
static es_status check_record(frame *f, const es_car *car, parsed_op *o, const parsed_op *earlier,
                              size_t n_earlier)
{
    if (!esi_atp_record_cid_ok(o->cid, o->cid_len))
        return refuse(f, ES_ATP_ERR_RECORD, ES_ERR_DECODE,
                      "record %.*s/%.*s: its CID is not a dag-cbor CIDv1", (int)o->collection_len,
                      o->collection, (int)o->rkey_len, o->rkey);
    es_car_block *b = es_car_find(car, o->cid, o->cid_len);
    if (b == NULL)
        return refuse(f, ES_ATP_ERR_MISSING_BLOCK, ES_ERR_DECODE,
                      "record %.*s/%.*s: its block is absent", (int)o->collection_len,
                      o->collection, (int)o->rkey_len, o->rkey);
    es_status s = verify(f, b, "record block");
    if (s != ES_OK)
        return s;
    o->block = b;
    const parsed_op *same = checked_before(b, earlier, n_earlier);
    if (same != NULL) {
        o->invalid = same->invalid;
        return ES_OK;
    }
    return f->d->opts.skip_record_decode ? ES_OK : decode_record(f, o);
}

/* Op `o` of the commit, after the `n_earlier` ops before it. */
static es_status parse_op(frame *f, const es_value *v, const es_car *car, parsed_op *o,
                          const parsed_op *earlier, size_t n_earlier)
{
    if (v->kind != ES_VALUE_MAP)
        return refuse(f, ES_ATP_ERR_SCHEMA, ES_ERR_DECODE, "an op is not a map");
    es_status s = parse_action(f, v, o);
    if (s == ES_OK)
        s = parse_path(f, v, o);
    if (s == ES_OK)
        s = link_field(f, v, "cid", OPTIONAL, &o->cid, &o->cid_len);
    if (s == ES_OK)
        s = link_field(f, v, "prev", OPTIONAL, &o->prev, &o->prev_len);
    if (s != ES_OK)
        return s;
    if ((o->act == ACTION_DELETE) != (o->cid == NULL))
        return refuse(f, ES_ATP_ERR_OP, ES_ERR_DECODE, "%s op %s a cid", action_names[o->act],
                      o->cid ? "with" : "without");
    return o->act == ACTION_DELETE ? ES_OK : check_record(f, car, o, earlier, n_earlier);
}

static bool same_path(const parsed_op *a, const parsed_op *b)
{
    return a->collection_len == b->collection_len && a->rkey_len == b->rkey_len &&
           memcmp(a->rkey, b->rkey, a->rkey_len) == 0 &&
           memcmp(a->collection, b->collection, a->collection_len) == 0;
}

/* A commit's ops are a diff: one per path. Two on one path would also give
 * two events the same id in one batch, which the server refuses. */
static es_status check_unique_paths(frame *f, const parsed_op *ops, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (same_path(&ops[i], &ops[j]))
                return refuse(f, ES_ATP_ERR_OP, ES_ERR_DECODE, "two ops on %.*s/%.*s",
                              (int)ops[i].collection_len, ops[i].collection, (int)ops[i].rkey_len,
                              ops[i].rkey);
    return ES_OK;
}

typedef struct commit_text {
    const char *rev, *commit; /* NUL-terminated */
    size_t rev_len;
    const char *prev_data; /* CID text of prevData, or NULL */
} commit_text;

/* The audit metadata of an op event (docs/atproto.md, "Audit metadata"):
 * with did, rev and commit, enough to rebuild the signed commit block and
 * check it offline. Returns the entries written (at most 5). */
static size_t audit_meta(const frame *f, const commit_text *ct, es_meta *m)
{
    size_t n = 0;
    if (f->sig_text != NULL)
        m[n++] = (es_meta){"sig", f->sig_text};
    m[n++] = (es_meta){"data", f->data_text};
    if (ct->prev_data != NULL)
        m[n++] = (es_meta){"prevdata", ct->prev_data};
    if (f->out->since != NULL)
        m[n++] = (es_meta){"since", f->out->since};
    if (f->commit_prev_text != NULL)
        m[n++] = (es_meta){"commitprev", f->commit_prev_text};
    return n;
}

static es_status map_op(frame *f, const parsed_op *o, const commit_text *ct)
{
    es_event_spec *e = new_event(f);
    e->entity_type = esi_atp_entity_type(f->arena, o->collection, o->collection_len);
    e->event_type = action_names[o->act];
    e->event_id = esi_atp_op_event_id(f->arena, f->out->did, f->out->did_len, ct->rev, ct->rev_len,
                                      o->collection, o->collection_len, o->rkey, o->rkey_len);
    es_meta *m = es_arena_calloc(f->arena, 13, sizeof *m);
    const char *rkey = es_arena_strndup(f->arena, o->rkey, o->rkey_len);
    if (e->entity_type == NULL || e->event_id == NULL || m == NULL || rkey == NULL)
        return arena_full(f);
    size_t n = 0;
    m[n++] = (es_meta){"rkey", rkey};
    if (o->cid != NULL) {
        if ((m[n++] = (es_meta){"cid", cid_text(f, o->cid, o->cid_len)}).value == NULL)
            return arena_full(f);
        e->codec = o->invalid ? "binary" : "dag-cbor";
        e->data = o->block->data;
        e->data_len = o->block->len;
    }
    if (o->invalid != NULL) {
        m[n++] = (es_meta){"invalid", o->invalid};
        f->out->invalid_records++;
    }
    m[n++] = (es_meta){"rev", ct->rev};
    m[n++] = (es_meta){"seq", f->seq_text};
    m[n++] = (es_meta){"commit", ct->commit};
    if (o->prev != NULL &&
        (m[n++] = (es_meta){"prev", cid_text(f, o->prev, o->prev_len)}).value == NULL)
        return refuse(f, ES_ATP_ERR_OP, ES_ERR_DECODE, "op prev is not a CIDv1");
    n += did_meta(f, m + n);
    n += audit_meta(f, ct, m + n);
    e->meta = m;
    e->meta_count = n;
    return ES_OK;
}

/* ---- verification -------------------------------------------------------- */

/* The outcome of a check of verify.h: a refusal of its kind, or memory. */
static es_status checked(frame *f, es_status s, es_atp_error why, const char *what)
{
    if (s == ES_OK || why == ES_ATP_ERR_NONE)
        return s == ES_ERR_NOMEM ? no_memory(f, what) : s;
    return refuse_wrap(f, why, s == ES_ERR_LIMIT ? ES_ERR_LIMIT : ES_ERR_DECODE, "%s", what);
}

static es_status check_signature(frame *f)
{
    es_atp_error why;
    es_status s = esi_atp_check_signature(f->d->opts.identity, f->out->did, f->out->did_len,
                                          f->commit_block->data, f->commit_block->len,
                                          f->d->scratch, &why);
    return checked(f, s, why, "verification");
}

/* A #commit, once its blocks and ops passed: a rev not ahead of the clock
 * (the cheapest check first), the repo's signature, then inversion. */
static es_status verify_commit(frame *f, const es_car *car, const parsed_op *parsed, size_t n)
{
    es_atp_error why;
    es_status s = esi_atp_check_rev_time(f->out->rev, f->out->rev_len,
                                         f->d->opts.max_future_rev_ms, &why);
    if (s != ES_OK)
        return checked(f, s, why, "verification");
    if ((s = check_signature(f)) != ES_OK)
        return s;
    esi_atp_op *ops = es_arena_calloc(f->arena, n ? n : 1, sizeof *ops);
    if (ops == NULL)
        return arena_full(f);
    static const esi_atp_action actions[] = {ESI_ATP_CREATE, ESI_ATP_UPDATE, ESI_ATP_DELETE};
    for (size_t i = 0; i < n; i++) /* the path is "<collection>/<rkey>" as in the frame */
        ops[i] = (esi_atp_op){actions[parsed[i].act],
                              parsed[i].collection,
                              parsed[i].collection_len + 1 + parsed[i].rkey_len,
                              parsed[i].cid,
                              parsed[i].cid_len,
                              parsed[i].prev,
                              parsed[i].prev_len};
    s = esi_atp_check_inversion(car, f->out->data_cid, f->out->data_cid_len, f->out->prev_data,
                                f->out->prev_data_len, ops, n, &why);
    return checked(f, s, why, "verification");
}

/* ---- message types ------------------------------------------------------- */

/* #commit `since` (the rev this commit follows, or null) and `prevData` (the
 * MST root before it; absent from commits of relays before Sync 1.1). */
static es_status read_chain_links(frame *f)
{
    const char *since;
    size_t since_len;
    es_status s = string_field(f, f->body, "since", OPTIONAL, &since, &since_len);
    if (s == ES_OK)
        s = link_field(f, f->body, "prevData", OPTIONAL, &f->out->prev_data,
                       &f->out->prev_data_len);
    if (s != ES_OK)
        return s;
    if (since != NULL) {
        if (!es_atp_valid_tid(since, since_len))
            return refuse(f, ES_ATP_ERR_SYNTAX, ES_ERR_DECODE, "'since' is not a valid TID");
        if ((f->out->since = es_arena_strndup(f->arena, since, since_len)) == NULL)
            return arena_full(f);
        f->out->since_len = since_len;
    }
    return ES_OK;
}

static es_status map_commit(frame *f)
{
    es_atp_batch *out = f->out;
    es_status s = read_seq(f);
    if (s == ES_OK)
        s = read_did(f, "repo");
    if (s != ES_OK)
        return s;
    if (!es_atp_filter_keeps_did(f->d->opts.filter, out->did, out->did_len)) {
        f->d->stats.filtered_frames++;
        return ES_OK;
    }
    commit_text ct;
    const uint8_t *commit;
    size_t commit_len;
    const es_value *blocks, *ops;
    if ((s = link_field(f, f->body, "commit", REQUIRED, &commit, &commit_len)) != ES_OK ||
        (s = read_rev(f, &ct.rev, &ct.rev_len)) != ES_OK || (s = read_time(f)) != ES_OK ||
        (s = field(f, f->body, "blocks", ES_VALUE_BYTES, REQUIRED, &blocks)) != ES_OK ||
        (s = field(f, f->body, "ops", ES_VALUE_ARRAY, REQUIRED, &ops)) != ES_OK)
        return s;
    size_t n = ops->u.array.count;
    if (n > f->d->opts.limits.max_ops)
        return refuse(f, ES_ATP_ERR_LIMIT, ES_ERR_LIMIT, "%zu ops, limit %zu", n,
                      f->d->opts.limits.max_ops);
    es_car car;
    if ((s = parse_car(f, blocks, &car)) != ES_OK ||
        (s = check_commit_block(f, &car, commit, commit_len, ct.rev, ct.rev_len)) != ES_OK ||
        (f->d->opts.verify_all_blocks && (s = verify_all(f, &car)) != ES_OK))
        return s;
    parsed_op *parsed = es_arena_calloc(f->arena, n ? n : 1, sizeof *parsed);
    if (parsed == NULL)
        return arena_full(f);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if ((s = parse_op(f, &ops->u.array.items[i], &car, &parsed[i], parsed, i)) != ES_OK)
            return s;
        kept += es_atp_filter_keeps_collection(f->d->opts.filter, parsed[i].collection,
                                               parsed[i].collection_len);
    }
    if ((s = check_unique_paths(f, parsed, n)) != ES_OK)
        return s;
    out->ops = n;
    if ((ct.commit = cid_text(f, commit, commit_len)) == NULL)
        return refuse(f, ES_ATP_ERR_SCHEMA, ES_ERR_DECODE, "'commit' is not a CIDv1");
    if ((ct.rev = es_arena_strndup(f->arena, ct.rev, ct.rev_len)) == NULL)
        return arena_full(f);
    out->rev = ct.rev;
    out->rev_len = ct.rev_len;
    if ((s = read_chain_links(f)) != ES_OK)
        return s;
    ct.prev_data = NULL;
    if (out->prev_data != NULL &&
        (ct.prev_data = cid_text(f, out->prev_data, out->prev_data_len)) == NULL)
        return refuse(f, ES_ATP_ERR_SCHEMA, ES_ERR_DECODE, "'prevData' is not a CIDv1");
    if (f->d->opts.identity != NULL && (s = verify_commit(f, &car, parsed, n)) != ES_OK)
        return s;
    if ((s = alloc_events(f, kept)) != ES_OK)
        return s;
    for (size_t i = 0; i < n; i++) {
        const parsed_op *o = &parsed[i];
        if (es_atp_filter_keeps_collection(f->d->opts.filter, o->collection, o->collection_len) &&
            (s = map_op(f, o, &ct)) != ES_OK)
            return s;
    }
    return ES_OK;
}

/* A repo event (#identity, #account, #sync) as its one event, with the id
 * <did>/#<event type>/<id_tail>. */
static es_status map_repo_event(frame *f, const char *event_type, const char *id_tail,
                                size_t id_tail_len, const es_meta *extra, size_t extra_count)
{
    es_status s = alloc_events(f, 1);
    es_meta *m = es_arena_calloc(f->arena, 2 + extra_count, sizeof *m);
    if (s != ES_OK || m == NULL)
        return arena_full(f);
    es_event_spec *e = new_event(f);
    e->entity_type = "repo";
    e->event_type = event_type;
    e->codec = "dag-cbor";
    e->data = f->body_bytes;
    e->data_len = f->body_len;
    part id[] = {{f->out->did, f->out->did_len},
                 {"/#", 2},
                 {event_type, strlen(event_type)},
                 {"/", 1},
                 {id_tail, id_tail_len}};
    if ((e->event_id = event_id(f, id, ES_ARRAY_LEN(id))) == NULL)
        return arena_full(f);
    m[0] = (es_meta){"seq", f->seq_text};
    if (extra_count)
        memcpy(m + 1, extra, extra_count * sizeof *m);
    e->meta = m;
    e->meta_count = 1 + extra_count + did_meta(f, m + 1 + extra_count);
    return ES_OK;
}

/* The common head of #identity, #account and #sync; false when the DID
 * filter drops the frame. */
static es_status repo_event_head(frame *f, bool *keep)
{
    es_status s = read_seq(f);
    if (s == ES_OK)
        s = read_did(f, "did");
    if (s == ES_OK)
        s = read_time(f);
    *keep = s == ES_OK && es_atp_filter_keeps_did(f->d->opts.filter, f->out->did, f->out->did_len);
    if (s == ES_OK && !*keep)
        f->d->stats.filtered_frames++;
    return s;
}

static es_status map_identity(frame *f)
{
    bool keep;
    const char *handle;
    size_t handle_len;
    es_status s = repo_event_head(f, &keep);
    if (s == ES_OK)
        s = string_field(f, f->body, "handle", OPTIONAL, &handle, &handle_len);
    if (s != ES_OK || !keep)
        return s;
    if (handle != NULL && !es_atp_valid_handle(handle, handle_len))
        return refuse(f, ES_ATP_ERR_SYNTAX, ES_ERR_DECODE, "'handle' is not a valid handle");
    if (handle != NULL &&
        (f->out->handle = es_arena_strndup(f->arena, handle, handle_len)) == NULL)
        return arena_full(f);
    /* the identity changed: its key may have too */
    es_atp_identity_invalidate(f->d->opts.identity, f->out->did, f->out->did_len);
    return map_repo_event(f, "identity", f->out->time, f->out->time_len, NULL, 0);
}

static es_status map_account(frame *f)
{
    bool keep;
    const es_value *active;
    const char *status;
    size_t status_len;
    es_status s = repo_event_head(f, &keep);
    if (s == ES_OK)
        s = field(f, f->body, "active", ES_VALUE_BOOL, REQUIRED, &active);
    if (s == ES_OK)
        s = string_field(f, f->body, "status", OPTIONAL, &status, &status_len);
    if (s != ES_OK || !keep)
        return s;
    f->out->active = active->u.b;
    if (status != NULL &&
        (f->out->status = es_arena_strndup(f->arena, status, status_len)) == NULL)
        return arena_full(f);
    return map_repo_event(f, "account", f->out->time, f->out->time_len, NULL, 0);
}

static es_status map_sync(frame *f)
{
    bool keep;
    const char *rev;
    size_t rev_len;
    const es_value *blocks;
    es_status s = repo_event_head(f, &keep);
    if (s == ES_OK)
        s = read_rev(f, &rev, &rev_len);
    if (s == ES_OK)
        s = field(f, f->body, "blocks", ES_VALUE_BYTES, REQUIRED, &blocks);
    if (s != ES_OK || !keep)
        return s;
    es_car car;
    if ((s = parse_car(f, blocks, &car)) != ES_OK)
        return s;
    if (car.root_count == 0)
        return refuse(f, ES_ATP_ERR_CAR_ROOT, ES_ERR_DECODE, "the CAR has no root");
    if ((s = check_commit_block(f, &car, car.roots[0], car.root_lens[0], rev, rev_len)) != ES_OK ||
        (f->d->opts.identity != NULL && (s = check_signature(f)) != ES_OK))
        return s;
    f->out->rev = es_arena_strndup(f->arena, rev, rev_len);
    f->out->rev_len = rev_len;
    es_meta extra[2] = {{"rev", f->out->rev},
                        {"commit", cid_text(f, car.roots[0], car.root_lens[0])}};
    if (extra[0].value == NULL)
        return arena_full(f);
    if (extra[1].value == NULL)
        return refuse(f, ES_ATP_ERR_CAR_ROOT, ES_ERR_DECODE, "the CAR root is not a CIDv1");
    return map_repo_event(f, "sync", rev, rev_len, extra, 2);
}

/* #info and error frames: a name and an optional message, no events. */
static es_status read_notice(frame *f, const char *name_key)
{
    const char *name, *message;
    size_t name_len, message_len;
    es_status s = string_field(f, f->body, name_key, REQUIRED, &name, &name_len);
    if (s == ES_OK)
        s = string_field(f, f->body, "message", OPTIONAL, &message, &message_len);
    if (s != ES_OK)
        return s;
    f->out->name = es_arena_strndup(f->arena, name, name_len);
    f->out->message = message ? es_arena_strndup(f->arena, message, message_len) : NULL;
    if (f->out->name == NULL || (message != NULL && f->out->message == NULL))
        return arena_full(f);
    return ES_OK;
}

/* ---- frame --------------------------------------------------------------- */

static const struct {
    const char *t;
    es_atp_kind kind;
    es_status (*map)(frame *f);
} message_types[] = {
    {"#commit", ES_ATP_KIND_COMMIT, map_commit},
    {"#identity", ES_ATP_KIND_IDENTITY, map_identity},
    {"#account", ES_ATP_KIND_ACCOUNT, map_account},
    {"#sync", ES_ATP_KIND_SYNC, map_sync},
};

/* Read the header; on success `used` is where the body starts. */
static es_status read_header(frame *f, const uint8_t *buf, size_t len, size_t *used)
{
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    o.max_depth = HEADER_DEPTH;
    es_value *h;
    es_status s = es_cbor_decode(buf, len, &o, f->arena, &h, used);
    if (s != ES_OK)
        return refuse_decode(f, s, ES_ATP_ERR_CBOR, "header");
    const es_value *op = es_value_get(h, "op"), *t = es_value_get(h, "t");
    if (h->kind != ES_VALUE_MAP || op == NULL || op->kind != ES_VALUE_INT)
        return refuse(f, ES_ATP_ERR_HEADER, ES_ERR_DECODE, "the header has no integer 'op'");
    if (op->u.i == -1) {
        f->out->kind = ES_ATP_KIND_ERROR;
        return ES_OK;
    }
    if (op->u.i != 1 || t == NULL || t->kind != ES_VALUE_STRING)
        return refuse(f, ES_ATP_ERR_HEADER, ES_ERR_DECODE, "the header is not {op: 1, t: string}");
    if ((f->out->type = es_arena_strndup(f->arena, t->u.str.ptr, t->u.str.len)) == NULL)
        return arena_full(f);
    f->out->kind = ES_ATP_KIND_UNKNOWN;
    return ES_OK;
}

static es_status read_body(frame *f, const uint8_t *buf, size_t len)
{
    es_value *body;
    es_status s = esi_atp_decode_exact(buf, len, f->d->opts.limits.max_depth, f->arena, &body);
    if (s != ES_OK)
        return refuse_decode(f, s, ES_ATP_ERR_CBOR, "body");
    if (body->kind != ES_VALUE_MAP)
        return refuse(f, ES_ATP_ERR_SCHEMA, ES_ERR_DECODE, "the body is not a map");
    f->body = body;
    f->body_bytes = buf;
    f->body_len = len;
    return ES_OK;
}

static es_status decode_frame(frame *f, const uint8_t *buf, size_t len)
{
    if (len > f->d->opts.limits.max_frame_bytes)
        return refuse(f, ES_ATP_ERR_LIMIT, ES_ERR_LIMIT, "%zu bytes, limit %zu", len,
                      f->d->opts.limits.max_frame_bytes);
    size_t used;
    es_status s = read_header(f, buf, len, &used);
    if (s == ES_OK)
        s = read_body(f, buf + used, len - used);
    if (s != ES_OK)
        return s;
    if (f->out->kind == ES_ATP_KIND_ERROR)
        return read_notice(f, "error");
    for (size_t i = 0; i < ES_ARRAY_LEN(message_types); i++)
        if (strcmp(f->out->type, message_types[i].t) == 0) {
            f->out->kind = message_types[i].kind;
            return message_types[i].map(f);
        }
    if (strcmp(f->out->type, "#info") == 0) {
        f->out->kind = ES_ATP_KIND_INFO;
        return read_notice(f, "name");
    }
    f->out->has_seq = seq_value(f->body, &f->out->seq); /* unknown type: skipped, seq if any */
    return ES_OK;
}

static void count(es_atp_decoder *d, const es_atp_batch *b, es_status s)
{
    if (s != ES_OK) {
        if (s != ES_ERR_NOMEM) /* out of memory: not a refused frame */
            d->stats.errors[b->error]++;
        return;
    }
    d->stats.by_kind[b->kind]++;
    d->stats.ops += b->ops;
    d->stats.events += b->count;
    d->stats.invalid_records += b->invalid_records;
    if (b->kind == ES_ATP_KIND_COMMIT)
        d->stats.filtered_ops += b->ops - b->count;
}

es_status es_atp_decode(es_atp_decoder *d, const uint8_t *buf, size_t len, es_arena *arena,
                        es_atp_batch *out)
{
    if (d == NULL || (buf == NULL && len > 0) || arena == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_decode: NULL argument");
    memset(out, 0, sizeof *out);
    d->stats.frames++;
    d->stats.bytes += len;
    frame f = {.d = d, .arena = arena, .out = out};
    es_status s = decode_frame(&f, buf ? buf : (const uint8_t *)"", len);
    if (s != ES_OK) {
        if (out->error == ES_ATP_ERR_NONE && s != ES_ERR_NOMEM) /* count it as a limit */
            out->error = ES_ATP_ERR_LIMIT;
        out->events = NULL; /* never a partial batch */
        out->count = 0;
    }
    count(d, out, s);
    return s;
}
