/* The public identity handle (es/atproto.h): the resolver of resolver.c
 * behind ES_API names, with its `--did-docs` seeding. A verifying decoder
 * borrows it (es_atp_options.identity). */
#include <string.h>

#include <es/checkpoint.h>

#include "atp_internal.h"
#include "identity.h"
#include "verify.h"

struct es_atp_identity {
    esi_atp_resolver *resolver;
    es_checkpoints *kv; /* ES_<store>_identity, or NULL */
    bool offline;
};

void es_atp_identity_options_init(es_atp_identity_options *o)
{
    if (o == NULL)
        return;
    esi_atp_resolver_options r;
    esi_atp_resolver_options_init(&r);
    memset(o, 0, sizeof *o);
    o->plc_url = r.plc_url;
    o->timeout_ms = r.timeout_ms;
    o->ttl_ms = r.ttl_ms;
    o->max_entries = r.max_entries;
    o->negative_ttl_ms = r.negative_ttl_ms;
}

es_status es_atp_identity_create(const es_atp_identity_options *o, es_atp_identity **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_identity_create: out is NULL");
    *out = NULL;
    es_atp_identity_options defaults;
    es_atp_identity_options_init(&defaults);
    if (o == NULL)
        o = &defaults;
    esi_atp_resolver_options r;
    esi_atp_resolver_options_init(&r);
    r.plc_url = o->plc_url;
    r.timeout_ms = o->timeout_ms;
    r.ttl_ms = o->ttl_ms;
    r.max_entries = o->max_entries;
    r.negative_ttl_ms = o->negative_ttl_ms;
    r.allow_insecure = o->allow_insecure;
    r.offline = o->offline;
    es_atp_identity *id = es_calloc(1, sizeof *id);
    if (id == NULL)
        return es_error(ES_ERR_NOMEM, "es_atp_identity_create: out of memory");
    id->offline = o->offline;
    es_status s = esi_atp_resolver_create(&r, &id->resolver);
    if (s != ES_OK) {
        es_free(id);
        return s;
    }
    *out = id;
    return ES_OK;
}

void es_atp_identity_destroy(es_atp_identity *id)
{
    if (id == NULL)
        return;
    esi_atp_resolver_destroy(id->resolver);
    es_checkpoints_destroy(id->kv);
    es_free(id);
}

es_status es_atp_identity_attach_store(es_atp_identity *id, es_store *store)
{
    if (id == NULL || store == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_identity_attach_store: NULL argument");
    if (id->kv != NULL)
        return es_error(ES_ERR_INVALID, "es_atp_identity_attach_store: a store is attached");
    if (id->offline) /* seeded documents are all there is */
        return ES_OK;
    es_status s = es_checkpoints_open_bucket(store, ES_CHECKPOINTS_IDENTITY, &id->kv);
    if (s != ES_OK)
        return s;
    esi_atp_doc_store kv = {esi_atp_doc_kv_load, esi_atp_doc_kv_save, esi_atp_doc_kv_forget,
                            id->kv};
    esi_atp_resolver_set_store(id->resolver, &kv);
    return ES_OK;
}

static es_status seed_one(void *ctx, esi_atp_did_doc *doc)
{
    return esi_atp_resolver_seed(ctx, doc);
}

es_status es_atp_identity_seed_file(es_atp_identity *id, const char *path, size_t *count)
{
    if (count != NULL)
        *count = 0;
    if (id == NULL || path == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_identity_seed_file: NULL argument");
    return esi_atp_did_docs_load(path, seed_one, id->resolver, count);
}

/* The DID as a C string in `buf` (ESI_ATP_DID_MAX + 1 bytes); false when it
 * cannot be one (too long, or holding a NUL). */
static bool did_string(const char *did, size_t len, char *buf)
{
    if (did == NULL || len > ESI_ATP_DID_MAX || memchr(did, '\0', len) != NULL)
        return false;
    memcpy(buf, did, len);
    buf[len] = '\0';
    return true;
}

void es_atp_identity_invalidate(es_atp_identity *id, const char *did, size_t len)
{
    char buf[ESI_ATP_DID_MAX + 1];
    if (id != NULL && did_string(did, len, buf))
        esi_atp_resolver_invalidate(id->resolver, buf);
}

void es_atp_identity_stats_get(const es_atp_identity *id, es_atp_identity_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (id == NULL)
        return;
    esi_atp_resolver_stats r;
    esi_atp_resolver_stats_get(id->resolver, &r);
    *out = (es_atp_identity_stats){r.hits,          r.fetches,    r.failures,    r.cached,
                                   r.negative_hits, r.store_hits, r.store_errors};
}

es_status esi_atp_identity_key(es_atp_identity *id, const char *did, size_t len,
                               esi_atp_key **key)
{
    char buf[ESI_ATP_DID_MAX + 1];
    if (!did_string(did, len, buf))
        return es_error(ES_ERR_INVALID, "a DID over %d bytes does not resolve", ESI_ATP_DID_MAX);
    return esi_atp_resolve_key(id->resolver, buf, key);
}

es_status esi_atp_identity_refresh(es_atp_identity *id, const char *did, size_t len,
                                   const esi_atp_key *failed)
{
    char buf[ESI_ATP_DID_MAX + 1];
    if (!did_string(did, len, buf))
        return es_error(ES_ERR_INVALID, "a DID over %d bytes does not resolve", ESI_ATP_DID_MAX);
    return esi_atp_resolver_refresh(id->resolver, buf, failed);
}
