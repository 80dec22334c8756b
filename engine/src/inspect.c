/* Looking into a server and a store (es/inspect.h): JetStream's listings
 * (transport/streams.h) read with the store's wire layout (wire.h). */
#include <es/inspect.h>

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "store_impl.h"
#include "transport/directget.h"
#include "transport/kv.h"
#include "transport/streams.h"
#include "wire.h"

/* ---- stores -------------------------------------------------------------- */

typedef struct store_walk {
    es_store_list_cb cb;
    void *closure;
} store_walk;

static es_status each_store(json_t *info, void *closure)
{
    store_walk *w = closure;
    json_t *config = json_object_get(info, "config");
    char name[ES_STORE_NAME_MAX + 1];
    if (!esi_wire_store_of_stream(json_string_value(json_object_get(config, "name")), name))
        return ES_OK;
    if (esi_store_check_stream(config, name) != ES_OK) { /* a stream we did not make */
        es_error_clear();
        return ES_OK;
    }
    es_store_info si;
    esi_store_info_from_json(info, &si);
    return w->cb(name, &si, w->closure);
}

es_status es_store_list(natsConnection *nc, const es_store_options *opts, es_store_list_cb cb,
                        void *closure)
{
    if (nc == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_store_list: connection and callback are required");
    esi_js *js = NULL;
    es_status s = esi_store_js(nc, opts, &js);
    store_walk w = {cb, closure};
    if (s == ES_OK)
        s = esi_stream_list(js, esi_wire_all_stores_subjects(), each_store, &w);
    esi_js_destroy(js);
    return s;
}

/* ---- KV buckets ---------------------------------------------------------- */

es_status es_store_buckets(es_store *st, es_bucket_cb cb, void *closure)
{
    if (st == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_store_buckets: store and callback are required");
    /* By name: the kinds sorted by what they keep. */
    esi_bucket_kind kinds[ES_BUCKET_KINDS];
    for (int k = 0; k < ES_BUCKET_KINDS; k++) {
        int at = k;
        for (; at > 0 && strcmp(esi_bucket_kind_name(kinds[at - 1]),
                                esi_bucket_kind_name((esi_bucket_kind)k)) > 0;
             at--)
            kinds[at] = kinds[at - 1];
        kinds[at] = (esi_bucket_kind)k;
    }
    es_status s = ES_OK;
    for (int k = 0; k < ES_BUCKET_KINDS && s == ES_OK; k++) {
        char bucket[ESI_KV_BUCKET_MAX];
        es_bucket_info b = {bucket, esi_bucket_kind_name(kinds[k]), 0, 0};
        s = esi_bucket_name(st->name, kinds[k], bucket);
        if (s == ES_OK)
            s = esi_kv_bucket_size(st->js, bucket, &b.values, &b.bytes);
        if (s == ES_ERR_NOT_FOUND) { /* never made, or deleted meanwhile */
            es_error_clear();
            s = ES_OK;
            continue;
        }
        if (s == ES_OK)
            s = cb(&b, closure);
    }
    return s;
}

/* ---- walking the subjects ------------------------------------------------ */

/* One subject, parsed. */
typedef struct parsed {
    char copy[ES_SUBJECT_MAX]; /* the parts point into it */
    esi_subject_parts p;
    char id[ES_ID_MAX + 1];
    size_t id_len;
    bool first_of_entity;
} parsed;

/* A walk over the store's subjects, for counts (on_count) or entities
 * (on_entity). */
typedef struct walk {
    es_store *st;
    es_subject_count_cb on_count;
    es_entity_cb on_entity;
    void *closure;
    char entity[ES_SUBJECT_MAX]; /* the last entity's subject up to its id token */
    uint64_t skipped;
    parsed one;
    /* the entity being counted, which may go on in the next page */
    bool open;
    char tenant[ES_NAME_MAX + 1], type[ES_ENTITY_TYPE_MAX + 1], id[ES_ID_MAX + 1];
    es_entity_info e;
} walk;

/* Parses one subject of the walk into w->one: false (and counted) for one
 * that is not an event subject of the store. */
static bool parse(walk *w, const char *subject)
{
    parsed *out = &w->one;
    size_t len = strlen(subject);
    bool ok = len < sizeof out->copy;
    if (ok) {
        memcpy(out->copy, subject, len + 1);
        ok = esi_subject_split(out->copy, w->st->name, w->st->config.tenancy, &out->p) == ES_OK &&
             esi_subject_parts_check(&out->p, out->id, &out->id_len) == ES_OK;
    }
    if (!ok) {
        es_error_clear();
        w->skipped++;
        return false;
    }
    size_t entity_len = (size_t)(out->p.event - out->copy) - 1; /* up to the id token's end */
    out->first_of_entity =
        strncmp(w->entity, subject, entity_len) != 0 || w->entity[entity_len] != '\0';
    if (out->first_of_entity) {
        memcpy(w->entity, subject, entity_len);
        w->entity[entity_len] = '\0';
    }
    return true;
}

/* ---- per subject ---------------------------------------------------------- */

static es_status count_page(const char *const *subjects, const uint64_t *counts, size_t n,
                            void *closure)
{
    walk *w = closure;
    const parsed *p = &w->one;
    es_status s = ES_OK;
    for (size_t i = 0; i < n && s == ES_OK; i++) {
        if (!parse(w, subjects[i]))
            continue;
        es_subject_count sc = {.tenant = p->p.tenant,
                               .entity_type = p->p.type,
                               .entity_id = p->id,
                               .entity_id_len = p->id_len,
                               .event_type = p->p.event,
                               .events = counts[i],
                               .first_of_entity = p->first_of_entity};
        s = w->on_count(&sc, w->closure);
    }
    return s;
}

/* ---- per entity ------------------------------------------------------------ */

static es_status emit(walk *w)
{
    if (!w->open)
        return ES_OK;
    w->open = false;
    w->e.entity_type = w->type;
    w->e.entity_id = w->id;
    return w->on_entity(&w->e, w->closure);
}

/* Starts the entity of w->one (after emitting the previous one). */
static es_status start(walk *w)
{
    const parsed *p = &w->one;
    es_status s = emit(w);
    w->open = true;
    snprintf(w->tenant, sizeof w->tenant, "%s", p->p.tenant ? p->p.tenant : "");
    snprintf(w->type, sizeof w->type, "%s", p->p.type);
    memcpy(w->id, p->id, p->id_len + 1);
    memset(&w->e, 0, sizeof w->e);
    w->e.tenant = p->p.tenant ? w->tenant : NULL;
    w->e.entity_id_len = p->id_len;
    return s;
}

static es_status entity_page(const char *const *subjects, const uint64_t *counts, size_t n,
                             void *closure)
{
    walk *w = closure;
    uint64_t *seqs = esi_calloc(n, sizeof *seqs);
    es_status s = seqs ? ES_OK : es_error(ES_ERR_NOMEM, "out of memory");
    if (s == ES_OK)
        s = esi_direct_last_seqs(w->st->js, w->st->stream, subjects, n, seqs);
    for (size_t i = 0; i < n && s == ES_OK; i++) {
        if (!parse(w, subjects[i]))
            continue;
        if (w->one.first_of_entity || !w->open)
            s = start(w);
        w->e.events += counts[i];
        if (seqs[i] > w->e.last_seq)
            w->e.last_seq = seqs[i];
    }
    esi_free(seqs);
    return s;
}

/* ---- the walks -------------------------------------------------------------- */

/* Walks the subjects `filter` (NULL: all) matches, with one of the two
 * callbacks. */
static es_status run_walk(es_store *st, const es_filter *filter, es_subject_count_cb on_count,
                          es_entity_cb on_entity, void *closure, uint64_t *skipped)
{
    if (st == NULL)
        return es_error(ES_ERR_INVALID, "store is NULL");
    char subject[ES_SUBJECT_MAX];
    es_status s = es_filter_subject(st, filter, subject, sizeof subject);
    walk *w = s == ES_OK ? esi_calloc(1, sizeof *w) : NULL;
    if (s == ES_OK && w == NULL)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    if (s != ES_OK)
        return s;
    *w = (walk){.st = st, .on_count = on_count, .on_entity = on_entity, .closure = closure};
    s = esi_stream_subjects(st->js, st->stream, subject, on_count ? count_page : entity_page, w);
    if (s == ES_OK && on_entity)
        s = emit(w);
    if (skipped)
        *skipped = w->skipped;
    esi_free(w);
    return s;
}

es_status es_store_subject_counts(es_store *st, const es_filter *filter, es_subject_count_cb cb,
                                  void *closure, uint64_t *skipped)
{
    if (skipped)
        *skipped = 0;
    if (cb == NULL)
        return es_error(ES_ERR_INVALID, "es_store_subject_counts: a callback is required");
    return run_walk(st, filter, cb, NULL, closure, skipped);
}

es_status es_store_entities(es_store *st, const es_filter *filter, es_entity_cb cb, void *closure)
{
    if (cb == NULL)
        return es_error(ES_ERR_INVALID, "es_store_entities: a callback is required");
    if (st != NULL && st->opts.confined) /* the listing would name every tenant's subjects */
        return es_error(ES_ERR_UNSUPPORTED,
                        "es_store_entities: listing entities needs the stream's subjects and "
                        "batched direct gets, which a confined user is not granted (docs/api.md, "
                        "\"NATS permissions for a tenant's user\")");
    return run_walk(st, filter, NULL, cb, closure, NULL);
}
