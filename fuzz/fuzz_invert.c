/* Target `invert`: a firehose #commit frame through Sync 1.1 inversion
 * (atproto/src/invert.h): the commit's MST loaded lazily from its CAR,
 * the ops undone, the root compared with prevData.
 *
 * The frame is read here with the strict DAG-CBOR decoder (not through
 * es_atp_decode, whose checks would stop most mutations first). A commit
 * refused for a bad MST node (usually a hash no longer matching) is tried a
 * second time after re-sealing its CAR (fuzz_reseal_car), so mutated nodes
 * reach the tree code. */
#include <string.h>

#include <es/car.h>
#include <es/cbor.h>

#include "fuzz.h"
#include "invert.h"

#define MAX_OPS 200 /* the lexicon's bound, as the decoder enforces */

static const uint8_t *link_of(const es_value *v, size_t *len)
{
    bool link = v != NULL && v->kind == ES_VALUE_LINK && v->u.bytes.len > 0;
    *len = link ? v->u.bytes.len : 0;
    return link ? v->u.bytes.ptr : NULL;
}

static bool read_op(const es_value *o, esi_atp_op *op)
{
    const es_value *action = es_value_get(o, "action"), *path = es_value_get(o, "path");
    if (action == NULL || action->kind != ES_VALUE_STRING || path == NULL ||
        path->kind != ES_VALUE_STRING)
        return false;
    if (action->u.str.len == 6 && memcmp(action->u.str.ptr, "create", 6) == 0)
        op->action = ESI_ATP_CREATE;
    else if (action->u.str.len == 6 && memcmp(action->u.str.ptr, "update", 6) == 0)
        op->action = ESI_ATP_UPDATE;
    else
        op->action = ESI_ATP_DELETE;
    op->path = path->u.str.ptr;
    op->path_len = path->u.str.len;
    op->cid = link_of(es_value_get(o, "cid"), &op->cid_len);
    op->prev = link_of(es_value_get(o, "prev"), &op->prev_len);
    return true;
}

/* Invert the frame's commit, if it is one; the refusal, or NONE. Where the
 * CAR lies is returned for re-sealing. */
static esi_atp_refusal invert_frame(const uint8_t *frame, size_t len, size_t *car_off,
                                    size_t *car_len)
{
    es_arena *a = NULL;
    if (es_arena_create(FUZZ_ARENA_LIMIT, &a) != ES_OK)
        abort();
    es_value *h, *b, *c;
    size_t used = 0;
    esi_atp_refusal why = ESI_ATP_REFUSAL_NONE;
    static esi_atp_op ops[MAX_OPS];
    es_car car;
    if (es_cbor_decode(frame, len, NULL, a, &h, &used) != ES_OK ||
        es_cbor_decode(frame + used, len - used, NULL, a, &b, NULL) != ES_OK)
        goto out;
    const es_value *blocks = es_value_get(b, "blocks"), *list = es_value_get(b, "ops");
    size_t commit_len, data_len, prev_len;
    const uint8_t *commit = link_of(es_value_get(b, "commit"), &commit_len);
    if (blocks == NULL || blocks->kind != ES_VALUE_BYTES || list == NULL ||
        list->kind != ES_VALUE_ARRAY || list->u.array.count > MAX_OPS || commit == NULL)
        goto out;
    *car_off = (size_t)(blocks->u.bytes.ptr - frame);
    *car_len = blocks->u.bytes.len;
    if (es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, NULL, a, &car) != ES_OK)
        goto out;
    es_car_block *cb = es_car_find(&car, commit, commit_len);
    if (cb == NULL || es_cbor_decode(cb->data, cb->len, NULL, a, &c, NULL) != ES_OK)
        goto out;
    const uint8_t *data = link_of(es_value_get(c, "data"), &data_len);
    const uint8_t *prev = link_of(es_value_get(b, "prevData"), &prev_len);
    size_t n = list->u.array.count;
    for (size_t i = 0; i < n; i++)
        if (!read_op(&list->u.array.items[i], &ops[i]))
            goto out;
    if (data == NULL)
        goto out;
    es_status s = esi_atp_invert(&car, data, data_len, prev, prev_len, ops, n, &why);
    /* Accepted with no reason, or refused with one: never anything else. */
    FUZZ_CHECK((s == ES_OK && why == ESI_ATP_REFUSAL_NONE) ||
               ((s == ES_ERR_DECODE || s == ES_ERR_LIMIT) && why != ESI_ATP_REFUSAL_NONE &&
                why < ESI_ATP_REFUSAL_COUNT));
out:
    es_arena_destroy(a);
    return why;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *frame = fuzz_copy(data, size);
    size_t off = 0, car_len = 0;
    if (invert_frame(frame, size, &off, &car_len) == ESI_ATP_REFUSAL_BAD_NODE &&
        fuzz_reseal_car(frame, size, off, car_len) > 0)
        (void)invert_frame(frame, size, &off, &car_len);
    free(frame);
    return 0;
}
