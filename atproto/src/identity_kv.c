/* DID documents kept in the store's KV bucket ES_<store>_identity (the
 * checkpoint set ES_CHECKPOINTS_IDENTITY): the resolver's second level
 * (identity.h, esi_atp_doc_store), so that a restarted ingester, or another
 * one on the same store, does not ask the PLC directory again for every
 * repository it meets. One entry per DID, under its repository key
 * (es_atp_repo_key: the same DID-to-key mapping as the chain state); the
 * position is the time of the fetch (Unix ms, the writer's clock), the data
 * the document as the directory served it. */
#include <string.h>

#include <es/atproto_repos.h>
#include <es/checkpoint.h>
#include <es/time.h>

#include "atp_internal.h"
#include "identity.h"

es_status esi_atp_doc_kv_load(void *ctx, const char *did, esi_atp_did_doc **out, int64_t *age_ms)
{
    *out = NULL;
    char key[ES_ATP_REPO_KEY_MAX + 1];
    es_status s = es_atp_repo_key(did, strlen(did), key);
    es_checkpoint cp = {0};
    if (s == ES_OK)
        s = es_checkpoint_get(ctx, key, &cp);
    if (s == ES_OK && (cp.data == NULL || cp.position > (uint64_t)INT64_MAX))
        s = es_error(ES_ERR_DECODE, "identity %s: the kept entry is not a document", key);
    if (s == ES_OK)
        s = esi_atp_did_doc_parse(cp.data, cp.data_len, out);
    if (s == ES_OK && strcmp((*out)->did, did) != 0) { /* another DID's: written by something else */
        esi_atp_did_doc_destroy(*out);
        *out = NULL;
        s = es_error(ES_ERR_DECODE, "identity %s: the kept document is another DID's", key);
    }
    if (s == ES_OK)
        *age_ms = es_now_ns() / 1000000 - (int64_t)cp.position;
    es_checkpoint_clear(&cp);
    return s;
}

es_status esi_atp_doc_kv_save(void *ctx, const char *did, const char *json, size_t len)
{
    char key[ES_ATP_REPO_KEY_MAX + 1];
    es_status s = es_atp_repo_key(did, strlen(did), key);
    if (s != ES_OK)
        return s;
    char *text = es_malloc(len + 1); /* checkpoint data is a C string */
    if (text == NULL)
        return es_error(ES_ERR_NOMEM, "identity %s: out of memory", key);
    memcpy(text, json, len);
    text[len] = '\0';
    s = es_checkpoint_set(ctx, key, (uint64_t)(es_now_ns() / 1000000), text, ES_CHECKPOINT_ANY,
                          NULL);
    es_free(text);
    return s;
}

es_status esi_atp_doc_kv_forget(void *ctx, const char *did)
{
    char key[ES_ATP_REPO_KEY_MAX + 1];
    es_status s = es_atp_repo_key(did, strlen(did), key);
    if (s == ES_OK)
        s = es_checkpoint_delete(ctx, key, ES_CHECKPOINT_ANY);
    return s == ES_ERR_NOT_FOUND ? ES_OK : s;
}
