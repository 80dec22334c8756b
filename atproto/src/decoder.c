/* The decoder object: options with their defaults, statistics, and the
 * scratch arena used to check record blocks without growing the caller's
 * per-frame arena. Frame decoding itself is in frame.c. */
#include "atp_internal.h"

#include <stdlib.h>
#include <string.h>

#include "decoder.h"

#define DEFAULT_MAX_FRAME ((size_t)5 << 20)
#define DEFAULT_MAX_OPS   200
#define DEFAULT_MAX_DEPTH 64
#define SCRATCH_LIMIT     ((size_t)32 << 20) /* one record's decoded tree */
#define DEFAULT_MAX_FUTURE_REV_MS ((int64_t)5 * 60 * 1000)

void es_atp_limits_defaults(es_atp_limits *l)
{
    if (l == NULL)
        return;
    if (l->max_frame_bytes == 0)
        l->max_frame_bytes = DEFAULT_MAX_FRAME;
    if (l->max_ops == 0)
        l->max_ops = DEFAULT_MAX_OPS;
    if (l->max_depth == 0)
        l->max_depth = DEFAULT_MAX_DEPTH;
    es_car_limits_defaults(&l->car);
}

es_status es_atp_decoder_create(const es_atp_options *opts, es_atp_decoder **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_decoder_create: out is NULL");
    *out = NULL;
    es_atp_decoder *d = es_calloc(1, sizeof *d);
    if (d == NULL)
        return es_error(ES_ERR_NOMEM, "es_atp_decoder_create: out of memory");
    if (opts != NULL)
        d->opts = *opts;
    es_atp_limits_defaults(&d->opts.limits);
    if (d->opts.max_future_rev_ms <= 0)
        d->opts.max_future_rev_ms = DEFAULT_MAX_FUTURE_REV_MS;
    size_t depth = d->opts.limits.max_depth;
    if (depth > ES_CBOR_MAX_DEPTH) {
        es_free(d);
        return es_error(ES_ERR_INVALID, "es_atp_decoder_create: max_depth %zu above %d", depth,
                        ES_CBOR_MAX_DEPTH);
    }
    es_status s = es_arena_create(SCRATCH_LIMIT, &d->scratch);
    if (s != ES_OK) {
        es_free(d);
        return s;
    }
    *out = d;
    return ES_OK;
}

void es_atp_decoder_destroy(es_atp_decoder *d)
{
    if (d == NULL)
        return;
    es_arena_destroy(d->scratch);
    es_free(d);
}

const es_atp_stats *es_atp_decoder_stats(const es_atp_decoder *d)
{
    return d ? &d->stats : NULL;
}

const char *es_atp_error_name(es_atp_error e)
{
    switch (e) {
    case ES_ATP_ERR_NONE: return "none";
    case ES_ATP_ERR_CBOR: return "cbor";
    case ES_ATP_ERR_DEPTH: return "depth";
    case ES_ATP_ERR_HEADER: return "header";
    case ES_ATP_ERR_SCHEMA: return "schema";
    case ES_ATP_ERR_SYNTAX: return "syntax";
    case ES_ATP_ERR_LIMIT: return "limit";
    case ES_ATP_ERR_CAR: return "car";
    case ES_ATP_ERR_CAR_ROOT: return "car_root";
    case ES_ATP_ERR_HASH: return "hash";
    case ES_ATP_ERR_MISSING_BLOCK: return "missing_block";
    case ES_ATP_ERR_RECORD: return "record";
    case ES_ATP_ERR_COMMIT: return "commit";
    case ES_ATP_ERR_OP: return "op";
    case ES_ATP_ERR_SIGNATURE: return "signature";
    case ES_ATP_ERR_IDENTITY: return "identity";
    case ES_ATP_ERR_NO_PREV_DATA: return "no_prev_data";
    case ES_ATP_ERR_PREV_DATA: return "prev_data";
    case ES_ATP_ERR_OP_PREV: return "op_prev";
    case ES_ATP_ERR_OP_MISMATCH: return "op_mismatch";
    case ES_ATP_ERR_MST: return "mst";
    case ES_ATP_ERR_FUTURE_REV: return "future_rev";
    case ES_ATP_ERR_COUNT: break;
    }
    return "unknown";
}

const char *es_atp_kind_name(es_atp_kind k)
{
    switch (k) {
    case ES_ATP_KIND_NONE: return "none";
    case ES_ATP_KIND_COMMIT: return "commit";
    case ES_ATP_KIND_SYNC: return "sync";
    case ES_ATP_KIND_IDENTITY: return "identity";
    case ES_ATP_KIND_ACCOUNT: return "account";
    case ES_ATP_KIND_INFO: return "info";
    case ES_ATP_KIND_ERROR: return "error";
    case ES_ATP_KIND_UNKNOWN: return "unknown";
    }
    return "?";
}
