/* Sync 1.1 commit inversion: a #commit carries the MST nodes its ops
 * touched, so undoing the ops on the new tree must give back the previous
 * tree's root, `prevData`, exactly. That proves the ops are the whole
 * difference between the two signed roots: an op added, dropped or altered
 * by a relay makes the roots differ.
 *
 * An op's `prev` states what the key held before: a create has none; an
 * update and a delete must have one. The new tree must hold each op's `cid`
 * (or, for a delete, nothing) under its path before the op is undone. */
#include "invert.h"

#include <string.h>

#include "atp_internal.h"

static const char *const refusal_names[ESI_ATP_REFUSAL_COUNT] = {
    [ESI_ATP_REFUSAL_NONE] = "none",
    [ESI_ATP_REFUSAL_NO_PREV_DATA] = "no_prev_data",
    [ESI_ATP_REFUSAL_OP_PREV] = "op_prev",
    [ESI_ATP_REFUSAL_BAD_OP] = "bad_op",
    [ESI_ATP_REFUSAL_OP_MISMATCH] = "op_mismatch",
    [ESI_ATP_REFUSAL_MISSING_BLOCK] = "missing_block",
    [ESI_ATP_REFUSAL_BAD_NODE] = "bad_node",
    [ESI_ATP_REFUSAL_LIMIT] = "limit",
    [ESI_ATP_REFUSAL_PREV_DATA] = "prev_data_mismatch",
};

const char *esi_atp_refusal_name(esi_atp_refusal r)
{
    return (unsigned)r < ESI_ATP_REFUSAL_COUNT ? refusal_names[r] : "unknown";
}

static es_status refuse(esi_atp_refusal *why, esi_atp_refusal r, const char *what, size_t op)
{
    *why = r;
    return es_error(r == ESI_ATP_REFUSAL_LIMIT ? ES_ERR_LIMIT : ES_ERR_DECODE,
                    "inversion refused (%s), op %zu: %s", esi_atp_refusal_name(r), op, what);
}

/* The refusal for a failed tree operation, from the tree's fault. */
static es_status tree_refusal(const esi_mst *t, es_status s, esi_atp_refusal *why)
{
    switch (esi_mst_last_fault(t)) {
    case ESI_MST_FAULT_MISSING_BLOCK: *why = ESI_ATP_REFUSAL_MISSING_BLOCK; break;
    case ESI_MST_FAULT_BAD_NODE: *why = ESI_ATP_REFUSAL_BAD_NODE; break;
    case ESI_MST_FAULT_KEY: *why = ESI_ATP_REFUSAL_OP_MISMATCH; break;
    case ESI_MST_FAULT_LIMIT:
        *why = ESI_ATP_REFUSAL_LIMIT;
        return esi_atp_error_wrap(ES_ERR_LIMIT, "inversion");
    case ESI_MST_FAULT_NONE: *why = ESI_ATP_REFUSAL_NONE; return s; /* out of memory */
    }
    return esi_atp_error_wrap(ES_ERR_DECODE, "inversion");
}

static bool same_cid(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* The op's own shape: which CIDs it must and must not carry. */
static es_status check_op(const esi_atp_op *op, size_t i, esi_atp_refusal *why)
{
    bool has_cid = op->cid != NULL && op->cid_len > 0;
    bool has_prev = op->prev != NULL && op->prev_len > 0;
    if (op->path == NULL || op->path_len == 0 || op->path_len > ESI_MST_KEY_MAX)
        return refuse(why, ESI_ATP_REFUSAL_BAD_OP, "no path, or one too long", i);
    if ((op->action == ESI_ATP_DELETE) == has_cid || (unsigned)op->action > ESI_ATP_DELETE)
        return refuse(why, ESI_ATP_REFUSAL_BAD_OP,
                      "a cid where none belongs, or none where one must be", i);
    if ((op->action == ESI_ATP_CREATE) == has_prev)
        return refuse(why, ESI_ATP_REFUSAL_OP_PREV,
                      "a create with prev, or an update or delete without", i);
    return ES_OK;
}

/* Undo one op on the new tree, after checking the tree holds its result. */
static es_status undo(esi_mst *t, const esi_atp_op *op, size_t i, esi_atp_refusal *why)
{
    const uint8_t *held;
    size_t held_len;
    bool found;
    es_status s = esi_mst_get(t, op->path, op->path_len, &held, &held_len, &found);
    if (s != ES_OK)
        return tree_refusal(t, s, why);
    bool holds = op->action == ESI_ATP_DELETE
                     ? !found
                     : found && same_cid(held, held_len, op->cid, op->cid_len);
    if (!holds)
        return refuse(why, ESI_ATP_REFUSAL_OP_MISMATCH,
                      "the new tree does not hold the op's result", i);
    if (op->action == ESI_ATP_CREATE)
        s = esi_mst_delete(t, op->path, op->path_len);
    else if (op->action == ESI_ATP_UPDATE)
        s = esi_mst_update(t, op->path, op->path_len, op->prev, op->prev_len);
    else
        s = esi_mst_insert(t, op->path, op->path_len, op->prev, op->prev_len);
    return s == ES_OK ? ES_OK : tree_refusal(t, s, why);
}

es_status esi_atp_invert(const es_car *blocks, const uint8_t *data, size_t data_len,
                         const uint8_t *prev_data, size_t prev_data_len, const esi_atp_op *ops,
                         size_t count, esi_atp_refusal *why)
{
    *why = ESI_ATP_REFUSAL_NONE;
    if (data == NULL || (ops == NULL && count > 0))
        return es_error(ES_ERR_INVALID, "esi_atp_invert: NULL argument");
    if (prev_data == NULL || prev_data_len == 0)
        return refuse(why, ESI_ATP_REFUSAL_NO_PREV_DATA, "the commit has no prevData", 0);
    if (count > ESI_INVERT_MAX_OPS)
        return refuse(why, ESI_ATP_REFUSAL_LIMIT, "more ops than the bound", count);
    for (size_t i = 0; i < count; i++) {
        es_status s = check_op(&ops[i], i, why);
        if (s != ES_OK)
            return s;
    }
    esi_mst *t;
    es_status s = esi_mst_open(blocks, data, data_len, &t);
    if (s != ES_OK)
        return s == ES_ERR_NOMEM ? s : refuse(why, ESI_ATP_REFUSAL_LIMIT, "bad data root", 0);
    for (size_t i = count; s == ES_OK && i > 0; i--)
        s = undo(t, &ops[i - 1], i - 1, why);
    uint8_t root[ES_CID_SHA256_LEN];
    if (s == ES_OK && (s = esi_mst_root(t, NULL, NULL, root)) != ES_OK)
        s = tree_refusal(t, s, why);
    if (s == ES_OK && !same_cid(root, sizeof root, prev_data, prev_data_len))
        s = refuse(why, ESI_ATP_REFUSAL_PREV_DATA, "undoing the ops does not give prevData", count);
    esi_mst_destroy(t);
    return s;
}
