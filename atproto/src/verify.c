/* The checks of a verifying decoder (verify.h): a relay can forge anything
 * hash-consistent, but not the repository's signature over its MST root, and
 * inversion proves the ops are exactly the difference between the signed
 * root and prevData. */
#include "verify.h"

#include <es/time.h>

#include "atp_internal.h"

static es_status refused(es_atp_error *why, es_atp_error kind, es_status s)
{
    *why = kind;
    return s;
}

es_status esi_atp_check_rev_time(const char *rev, size_t len, int64_t max_future_ms,
                                 es_atp_error *why)
{
    *why = ES_ATP_ERR_NONE;
    if (rev == NULL || !es_atp_valid_tid(rev, len))
        return refused(why, ES_ATP_ERR_SYNTAX, es_error(ES_ERR_DECODE, "rev is not a TID"));
    int64_t ahead_us = esi_atp_tid_time_us(rev) - es_now_ns() / 1000;
    if (ahead_us > max_future_ms * 1000)
        return refused(why, ES_ATP_ERR_FUTURE_REV,
                       es_error(ES_ERR_DECODE, "rev %.13s is %lld s in the future (bound %lld ms)",
                                rev, (long long)(ahead_us / 1000000), (long long)max_future_ms));
    return ES_OK;
}

/* The key of `did` (a reference of the caller's), or an identity refusal. */
static es_status signing_key(es_atp_identity *id, const char *did, size_t len, esi_atp_key **key,
                             es_atp_error *why)
{
    es_status s = esi_atp_identity_key(id, did, len, key);
    if (s == ES_OK || s == ES_ERR_NOMEM)
        return s;
    return refused(why, ES_ATP_ERR_IDENTITY, esi_atp_error_wrap(ES_ERR_DECODE, "signing key"));
}

/* The signature check with `key`; on a signature that does not verify, one
 * fresh resolution (perhaps a rotated key) and a second check. *key is
 * released and replaced when the resolution brings another one. */
static es_status verify_or_refresh(es_atp_identity *id, const char *did, size_t did_len,
                                   const uint8_t *block, size_t len, es_arena *arena,
                                   esi_atp_key **key, es_atp_error *why)
{
    es_arena_reset(arena);
    es_status s = esi_atp_commit_verify(block, len, *key, arena);
    if (s != ES_ERR_CRYPTO)
        return s;
    es_status r = esi_atp_identity_refresh(id, did, did_len, *key);
    if (r == ES_ERR_NOMEM)
        return r;
    if (r != ES_OK)
        return refused(why, ES_ATP_ERR_SIGNATURE,
                       esi_atp_error_wrap(ES_ERR_DECODE, "commit signature does not verify, and "
                                                         "the document could not be resolved again"));
    esi_atp_key_destroy(*key);
    *key = NULL;
    if ((s = signing_key(id, did, did_len, key, why)) != ES_OK)
        return s;
    es_arena_reset(arena);
    return esi_atp_commit_verify(block, len, *key, arena);
}

es_status esi_atp_check_signature(es_atp_identity *id, const char *did, size_t did_len,
                                  const uint8_t *block, size_t len, es_arena *arena,
                                  es_atp_error *why)
{
    *why = ES_ATP_ERR_NONE;
    esi_atp_key *key = NULL;
    es_status s = signing_key(id, did, did_len, &key, why);
    if (s == ES_OK)
        s = verify_or_refresh(id, did, did_len, block, len, arena, &key, why);
    esi_atp_key_destroy(key);
    if (s == ES_OK || s == ES_ERR_NOMEM || *why != ES_ATP_ERR_NONE)
        return s;
    return refused(why, ES_ATP_ERR_SIGNATURE, esi_atp_error_wrap(ES_ERR_DECODE, "commit signature"));
}

static es_atp_error inversion_kind(esi_atp_refusal r)
{
    switch (r) {
    case ESI_ATP_REFUSAL_NO_PREV_DATA: return ES_ATP_ERR_NO_PREV_DATA;
    case ESI_ATP_REFUSAL_OP_PREV: return ES_ATP_ERR_OP_PREV;
    case ESI_ATP_REFUSAL_BAD_OP: return ES_ATP_ERR_OP;
    case ESI_ATP_REFUSAL_OP_MISMATCH: return ES_ATP_ERR_OP_MISMATCH;
    case ESI_ATP_REFUSAL_MISSING_BLOCK: return ES_ATP_ERR_MISSING_BLOCK;
    case ESI_ATP_REFUSAL_BAD_NODE: return ES_ATP_ERR_MST;
    case ESI_ATP_REFUSAL_LIMIT: return ES_ATP_ERR_LIMIT;
    case ESI_ATP_REFUSAL_PREV_DATA: return ES_ATP_ERR_PREV_DATA;
    case ESI_ATP_REFUSAL_NONE:
    case ESI_ATP_REFUSAL_COUNT: break;
    }
    return ES_ATP_ERR_NONE;
}

es_status esi_atp_check_inversion(const es_car *car, const uint8_t *data, size_t data_len,
                                  const uint8_t *prev_data, size_t prev_data_len,
                                  const esi_atp_op *ops, size_t count, es_atp_error *why)
{
    esi_atp_refusal r;
    es_status s = esi_atp_invert(car, data, data_len, prev_data, prev_data_len, ops, count, &r);
    *why = s == ES_OK ? ES_ATP_ERR_NONE : inversion_kind(r);
    return s;
}
