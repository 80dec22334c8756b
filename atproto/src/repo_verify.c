/* Whole-repository verification (es_atp_verify_repo): a getRepo CAR is
 * trusted only when the repository's key signed its commit and the MST
 * below it is the one canonical tree of its keys, every block hashing to
 * its CID. The walk (mst.c) checks the tree; this file checks the commit
 * and each record, with the decoder's own signature check (verify.c) and
 * its rule for records that break the data model (frame.c: kept, flagged). */
#include <string.h>

#include <es/cid.h>

#include "atp_internal.h"
#include "mapping.h"
#include "mst_walk.h"
#include "verify.h"

#define DEFAULT_MAX_DEPTH 64
#define SCRATCH_LIMIT     ((size_t)32 << 20) /* one record's decoded tree (as the decoder) */

typedef struct verifier {
    const es_atp_repo_verify_options *o;
    es_arena *scratch;
    es_atp_record_fn fn;
    void *user;
    es_atp_repo_verdict v;
    esi_mst_check check;
    es_status status; /* a record's refusal (the walk then returns ES_ERR_ABORTED) */
} verifier;

void es_atp_repo_verify_options_init(es_atp_repo_verify_options *o)
{
    if (o != NULL)
        *o = (es_atp_repo_verify_options){.max_depth = DEFAULT_MAX_DEPTH};
}

/* A record refused: stop the walk with its kind, at its key. */
static int record_refused(verifier *vf, const es_atp_record *rec, es_atp_error why, es_status s)
{
    vf->check.why = why;
    memcpy(vf->check.key, rec->key, rec->key_len);
    vf->check.key[rec->key_len] = '\0';
    vf->check.key_len = rec->key_len;
    vf->status = s;
    return 1;
}

/* Strict DAG-CBOR of a hash-verified record block (mapping.h): not a map is
 * flagged, not the repository's fault as a whole; bounds and memory refuse. */
static es_status decode_record(verifier *vf, const es_car_block *b, const char **invalid)
{
    es_arena_reset(vf->scratch);
    return esi_atp_record_check(b->data, b->len,
                                vf->o->max_depth ? vf->o->max_depth : DEFAULT_MAX_DEPTH,
                                vf->scratch, invalid);
}

static int visit(const es_atp_record *rec, void *user)
{
    verifier *vf = user;
    es_cid cid;
    size_t collection_len;
    if (!esi_atp_record_key(rec->key, rec->key_len, &collection_len))
        return record_refused(vf, rec, ES_ATP_ERR_SYNTAX,
                              es_error(ES_ERR_DECODE, "MST key '%s' is not collection/rkey",
                                       rec->key));
    if (es_cid_parse(rec->cid, rec->cid_len, &cid) != ES_OK || cid.len != rec->cid_len ||
        cid.version != 1 || cid.codec != ES_CID_CODEC_DAG_CBOR)
        return record_refused(vf, rec, ES_ATP_ERR_RECORD,
                              es_error(ES_ERR_DECODE, "record %s: its CID is not a dag-cbor CIDv1",
                                       rec->key));
    if (rec->block == NULL)
        return record_refused(vf, rec, ES_ATP_ERR_MISSING_BLOCK,
                              es_error(ES_ERR_DECODE, "record %s: its block is absent", rec->key));
    es_atp_record r = *rec;
    es_status s = decode_record(vf, rec->block, &r.invalid);
    if (s == ES_ERR_NOMEM && es_arena_error(vf->scratch, "record") == ES_ERR_NOMEM) {
        vf->status = ES_ERR_NOMEM; /* memory ran out: not the record's fault */
        return 1;
    }
    if (s == ES_ERR_TOO_DEEP)
        return record_refused(vf, rec, ES_ATP_ERR_DEPTH,
                              esi_atp_error_wrap(ES_ERR_LIMIT, "record %s", rec->key));
    if (s != ES_OK)
        return record_refused(vf, rec, ES_ATP_ERR_LIMIT,
                              esi_atp_error_wrap(ES_ERR_LIMIT, "record %s", rec->key));
    vf->v.records++;
    vf->v.invalid_records += r.invalid != NULL;
    if (vf->fn(&r, vf->user) == 0)
        return 0;
    vf->status = es_error(ES_ERR_ABORTED, "repository verification stopped by the callback");
    return 1;
}

static es_status commit_refused(verifier *vf, es_atp_error why, es_status s)
{
    vf->v.error = why;
    return s;
}

/* The commit's fields and signature against what the caller expects. */
static es_status check_commit(verifier *vf, const es_car *car, es_arena *arena,
                              es_atp_commit_info *info)
{
    es_car_block *block;
    es_atp_error why;
    es_status s = esi_atp_read_commit(car, arena, info, &block, &why);
    if (s != ES_OK)
        return commit_refused(vf, why, s);
    if (strcmp(info->did, vf->o->did) != 0)
        return commit_refused(vf, ES_ATP_ERR_COMMIT,
                              es_error(ES_ERR_DECODE, "the commit's did %s is not %s", info->did,
                                       vf->o->did));
    if (info->version != 3)
        return commit_refused(vf, ES_ATP_ERR_COMMIT,
                              es_error(ES_ERR_DECODE, "commit version %lld, not 3",
                                       (long long)info->version));
    if (!es_atp_valid_tid(info->rev, strlen(info->rev)))
        return commit_refused(vf, ES_ATP_ERR_SYNTAX,
                              es_error(ES_ERR_DECODE, "the commit's rev is not a TID"));
    if (vf->o->skip_signature)
        return ES_OK;
    s = esi_atp_check_signature(vf->o->identity, info->did, strlen(info->did), block->data,
                                block->len, vf->scratch, &why);
    return s == ES_OK ? s : commit_refused(vf, why, s);
}

static es_status verify(verifier *vf, const es_car *car, es_arena *arena,
                        es_atp_commit_info *commit)
{
    es_atp_commit_info info;
    es_status s = check_commit(vf, car, arena, &info);
    if (s != ES_OK)
        return s;
    if (commit != NULL)
        *commit = info;
    vf->check.canonical = true;
    s = esi_mst_walk(car, info.data, info.data_len, &vf->check, visit, vf);
    if (s == ES_ERR_ABORTED && vf->status != ES_OK)
        s = vf->status;
    if (vf->check.why != ES_ATP_ERR_NONE) {
        vf->v.error = vf->check.why;
        vf->v.key = es_arena_strndup(arena, vf->check.key, vf->check.key_len);
    }
    return s;
}

es_status es_atp_verify_repo(const es_car *car, const es_atp_repo_verify_options *o,
                             es_arena *arena, es_atp_commit_info *commit, es_atp_record_fn fn,
                             void *user, es_atp_repo_verdict *verdict)
{
    if (verdict != NULL)
        *verdict = (es_atp_repo_verdict){0};
    if (car == NULL || o == NULL || arena == NULL || fn == NULL || o->did == NULL ||
        (o->identity == NULL && !o->skip_signature))
        return es_error(ES_ERR_INVALID, "es_atp_verify_repo: NULL argument, or no DID or key "
                                        "source");
    verifier *vf = es_calloc(1, sizeof *vf);
    if (vf == NULL)
        return es_error(ES_ERR_NOMEM, "repository verification: out of memory");
    *vf = (verifier){.o = o, .fn = fn, .user = user};
    es_status s = es_arena_create(SCRATCH_LIMIT, &vf->scratch);
    if (s == ES_OK)
        s = verify(vf, car, arena, commit);
    if (verdict != NULL)
        *verdict = vf->v;
    es_arena_destroy(vf->scratch);
    es_free(vf);
    return s;
}
