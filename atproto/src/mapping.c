/* The mapping rules shared by the firehose decoder and the resync
 * (mapping.h). */
#include "mapping.h"

#include <string.h>

#include <es/atproto.h>
#include <es/cid.h>
#include <es/subject.h>

#include "atp_internal.h"

char *esi_atp_join(es_arena *a, const esi_atp_part *parts, size_t count, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += parts[i].n;
    char *s = es_arena_alloc(a, total + 1);
    if (s == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(s + at, parts[i].p, parts[i].n);
        at += parts[i].n;
    }
    s[at] = '\0';
    if (len != NULL)
        *len = at;
    return s;
}

const char *esi_atp_cid_text(es_arena *a, const uint8_t *cid, size_t len)
{
    char *s = es_arena_alloc(a, ES_CID_STRING_MAX);
    if (s == NULL || es_cid_to_string(cid, len, s, ES_CID_STRING_MAX) != ES_OK)
        return NULL;
    return s;
}

const char *esi_atp_event_id(es_arena *a, const esi_atp_part *parts, size_t count)
{
    size_t len;
    char *id = esi_atp_join(a, parts, count, &len);
    if (id == NULL || len <= ES_ATP_EVENT_ID_MAX)
        return id;
    uint8_t cid[ES_CID_SHA256_LEN];
    if (es_cid_sha256(ES_CID_CODEC_RAW, id, len, cid) != ES_OK)
        return NULL;
    return esi_atp_cid_text(a, cid, sizeof cid);
}

const char *esi_atp_op_event_id(es_arena *a, const char *did, size_t did_len, const char *rev,
                                size_t rev_len, const char *collection, size_t collection_len,
                                const char *rkey, size_t rkey_len)
{
    esi_atp_part id[] = {{did, did_len},       {"/", 1}, {rev, rev_len},   {"/", 1},
                         {collection, collection_len}, {"/", 1}, {rkey, rkey_len}};
    return esi_atp_event_id(a, id, sizeof id / sizeof id[0]);
}

char *esi_atp_entity_type(es_arena *a, const char *collection, size_t len)
{
    esi_atp_part p = {collection, len};
    char *t = esi_atp_join(a, &p, 1, NULL);
    for (char *c = t; c && *c; c++)
        if (*c == '.')
            *c = '_';
    return t;
}

bool esi_atp_collection(const char *entity_type, char *out, size_t size)
{
    size_t len = strlen(entity_type);
    if (len == 0 || len >= size)
        return false;
    for (size_t i = 0; i <= len; i++)
        out[i] = entity_type[i] == '_' ? '.' : entity_type[i];
    return true;
}

es_status esi_atp_did_entity_id(es_arena *a, const char *did, size_t did_len, const char **id,
                                size_t *id_len, const char **did_meta)
{
    *id = did;
    *id_len = did_len;
    *did_meta = NULL;
    if (did_len <= ES_ID_MAX)
        return ES_OK;
    uint8_t cid[ES_CID_SHA256_LEN];
    if (es_cid_sha256(ES_CID_CODEC_RAW, did, did_len, cid) != ES_OK)
        return es_error(ES_ERR_LIMIT, "cannot hash a DID of %zu bytes", did_len);
    const char *text = esi_atp_cid_text(a, cid, sizeof cid);
    *did_meta = es_arena_strndup(a, did, did_len);
    if (text == NULL || *did_meta == NULL)
        return ES_ERR_NOMEM;
    *id = text;
    *id_len = strlen(text);
    return ES_OK;
}
