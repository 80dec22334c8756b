/* Snapshots over the store's KV bucket ES_<store>_snapshots. */
#include <es/snapshot.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/kvkey.h>
#include <es/subject.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "store_impl.h"
#include "transport/kv.h"
#include "snapshot_impl.h"
#include "base/clock.h"

#define SNAPSHOT_HISTORY 1
#define SAVE_ATTEMPTS    8
#define KEY_MAX          (ES_NAME_MAX + ES_ENTITY_TYPE_MAX + 2 + 3 * ES_ID_MAX + 1)

struct es_snapshots {
    es_store *st;
    esi_kv *kv;
};

static const uint8_t magic[4] = {'E', 'S', 'S', '1'};

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

es_status esi_snapshot_encode(uint64_t seq, uint32_t version, int64_t time_ns, const void *state,
                             size_t len, es_buf *out)
{
    if (seq == 0 || (state == NULL && len > 0))
        return es_error(ES_ERR_INVALID, "a snapshot needs a sequence above 0 and its state");
    uint8_t h[ES_SNAPSHOT_HEADER];
    memcpy(h, magic, 4);
    put_be(h + 4, version, 4);
    put_be(h + 8, seq, 8);
    put_be(h + 16, (uint64_t)time_ns, 8);
    es_status s = es_buf_reserve(out, sizeof h + len);
    if (s == ES_OK)
        s = es_buf_append(out, h, sizeof h);
    if (s == ES_OK && len > 0)
        s = es_buf_append(out, state, len);
    return s;
}

es_status esi_snapshot_decode(const void *value, size_t len, es_snapshot *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *p = value;
    if (p == NULL || len < ES_SNAPSHOT_HEADER || memcmp(p, magic, 4) != 0)
        return es_error(ES_ERR_DECODE, "not a snapshot (%zu bytes, no ESS1 header)", len);
    out->version = (uint32_t)get_be(p + 4, 4);
    out->seq = get_be(p + 8, 8);
    out->time_ns = (int64_t)get_be(p + 16, 8);
    if (out->seq == 0)
        return es_error(ES_ERR_DECODE, "snapshot at sequence 0");
    out->len = len - ES_SNAPSHOT_HEADER;
    out->data = esi_malloc(out->len ? out->len : 1);
    if (out->data == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory reading a snapshot of %zu bytes", out->len);
    memcpy(out->data, p + ES_SNAPSHOT_HEADER, out->len);
    return ES_OK;
}

void es_snapshot_clear(es_snapshot *snap)
{
    if (snap == NULL)
        return;
    esi_free(snap->data);
    memset(snap, 0, sizeof *snap);
}

es_status esi_snapshot_key(bool tenancy, const es_filter *f, char *out, size_t size)
{
    if (f == NULL || f->entity_type == NULL || f->entity_id == NULL || f->event_type != NULL ||
        !es_valid_entity_type(f->entity_type))
        return es_error(ES_ERR_INVALID, "a snapshot is of one entity: a valid entity type and an "
                                        "id, no event type");
    if (tenancy != (f->tenant != NULL) || (f->tenant && !es_valid_name(f->tenant)))
        return es_error(ES_ERR_INVALID, tenancy ? "this store has tenancy: name a valid tenant"
                                                : "this store has no tenancy: tenant must be NULL");
    size_t id_len = f->entity_id_len ? f->entity_id_len : strlen(f->entity_id);
    if (id_len == 0 || id_len > ES_ID_MAX)
        return es_error(ES_ERR_INVALID, "entity id of %zu bytes (1..%d)", id_len, ES_ID_MAX);
    int n = f->tenant ? snprintf(out, size, "%s.%s.", f->tenant, f->entity_type)
                      : snprintf(out, size, "%s.", f->entity_type);
    if (n < 0 || (size_t)n >= size)
        return es_error(ES_ERR_LIMIT, "snapshot key does not fit %zu bytes", size);
    return es_kv_key_escape(f->entity_id, id_len, out + n, size - (size_t)n, NULL);
}

es_status es_snapshots_open(es_store *store, es_snapshots **out)
{
    if (out == NULL || store == NULL)
        return es_error(ES_ERR_INVALID, "es_snapshots_open: store and out are required");
    *out = NULL;
    es_snapshots *sn = esi_calloc(1, sizeof *sn);
    if (sn == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    sn->st = store;
    es_status s = esi_store_kv_open(store, ES_BUCKET_SNAPSHOTS, SNAPSHOT_HISTORY, 0, &sn->kv);
    if (s != ES_OK) {
        esi_free(sn);
        return s;
    }
    *out = sn;
    es_error_clear();
    return ES_OK;
}

void es_snapshots_destroy(es_snapshots *sn)
{
    if (sn == NULL)
        return;
    esi_kv_close(sn->kv);
    esi_free(sn);
}

static es_status key_of(es_snapshots *sn, const es_filter *entity, char key[KEY_MAX])
{
    if (sn == NULL)
        return es_error(ES_ERR_INVALID, "snapshots handle is NULL");
    if (entity == NULL)
        return esi_snapshot_key(es_store_tenancy(sn->st), entity, key, KEY_MAX);
    es_filter f = *entity; /* through a tenant handle, of its tenant */
    es_status s = esi_store_tenant_of(sn->st, entity->tenant, &f.tenant);
    return s == ES_OK ? esi_snapshot_key(es_store_tenancy(sn->st), &f, key, KEY_MAX) : s;
}

/* The stored snapshot and its revision; ES_ERR_NOT_FOUND when none. */
static es_status read_snapshot(es_snapshots *sn, const char *key, es_snapshot *out)
{
    memset(out, 0, sizeof *out);
    esi_kv_entry e;
    es_status s = esi_kv_get(sn->kv, key, &e);
    if (s == ES_OK)
        s = esi_snapshot_decode(e.data, e.len, out);
    if (s == ES_OK)
        out->revision = e.revision;
    esi_kv_entry_clear(&e);
    return s;
}

es_status es_snapshot_get(es_snapshots *sn, const es_filter *entity, es_snapshot *out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_snapshot_get: out is NULL");
    memset(out, 0, sizeof *out);
    char key[KEY_MAX];
    es_status s = key_of(sn, entity, key);
    return s == ES_OK ? read_snapshot(sn, key, out) : s;
}

static es_status check_fits(es_snapshots *sn, size_t len)
{
    const esi_conn *conn = esi_js_conn(sn->st->js);
    int64_t max = conn->ops->max_payload(conn->ctx);
    if (max > 0 && len > (uint64_t)max)
        return es_error(ES_ERR_TOO_LARGE,
                        "snapshot of %zu bytes is over the server's max "
                        "payload (%lld)",
                        len, (long long)max);
    return ES_OK;
}

es_status es_snapshot_save(es_snapshots *sn, const es_filter *entity, uint64_t seq,
                           uint32_t version, const void *state, size_t len)
{
    char key[KEY_MAX];
    es_buf value = ES_BUF_INIT;
    es_status s = key_of(sn, entity, key);
    if (s == ES_OK)
        s = esi_snapshot_encode(seq, version, esi_now_ns(), state, len, &value);
    if (s == ES_OK)
        s = check_fits(sn, value.len);
    for (int i = 0; s == ES_OK && i < SAVE_ATTEMPTS; i++) {
        es_snapshot cur;
        s = read_snapshot(sn, key, &cur);
        uint64_t expect = s == ES_OK ? cur.revision : 0, cur_seq = cur.seq;
        es_snapshot_clear(&cur);
        if (s == ES_ERR_DECODE || s == ES_ERR_NOT_FOUND)
            s = ES_OK; /* nothing usable there: overwrite it (still by CAS) */
        if (s != ES_OK || cur_seq >= seq)
            break;
        if (expect == 0)
            expect = ESI_KV_ANY; /* replace an undecodable value */
        s = esi_kv_put(sn->kv, key, value.data, value.len, expect, NULL);
        if (s != ES_ERR_CONFLICT)
            break;
        s = ES_OK; /* someone saved meanwhile: look again */
    }
    es_buf_free(&value);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

es_status es_snapshot_delete(es_snapshots *sn, const es_filter *entity)
{
    char key[KEY_MAX];
    es_status s = key_of(sn, entity, key);
    return s == ES_OK ? esi_kv_delete(sn->kv, key, ESI_KV_ANY) : s;
}

/* Counts the replayed events on the way to the caller's callback. */
typedef struct tail_call {
    es_event_cb cb;
    void *closure;
    size_t replayed;
} tail_call;

static es_status on_tail(const es_event *ev, void *closure)
{
    tail_call *t = closure;
    t->replayed++;
    return t->cb(ev, t->closure);
}

es_status es_load_from_snapshot(es_snapshots *sn, const es_filter *entity, uint32_t version,
                                es_snapshot_restore_cb restore, es_event_cb cb, void *closure,
                                es_snapshot_load_result *result)
{
    es_snapshot_load_result ignored;
    if (result == NULL)
        result = &ignored;
    memset(result, 0, sizeof *result);
    if (restore == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_load_from_snapshot: restore and cb are required");
    char key[KEY_MAX];
    es_status s = key_of(sn, entity, key);
    es_snapshot snap = {0};
    if (s == ES_OK)
        s = read_snapshot(sn, key, &snap);
    if (s == ES_ERR_NOT_FOUND || s == ES_ERR_DECODE || (s == ES_OK && snap.version != version)) {
        es_snapshot_clear(&snap); /* no usable snapshot: replay everything */
        s = ES_OK;
    }
    if (s == ES_OK && snap.seq > 0) {
        s = restore(snap.data, snap.len, closure);
        result->snapshot_seq = snap.seq;
    }
    es_read_options ro = {.after_seq = snap.seq, .up_to_seq = 0};
    tail_call t = {cb, closure, 0};
    uint64_t last = 0;
    if (s == ES_OK)
        s = es_load(sn->st, entity, &ro, on_tail, &t, &last);
    result->replayed = t.replayed;
    result->last_seq = last ? last : snap.seq;
    es_snapshot_clear(&snap);
    return s;
}
