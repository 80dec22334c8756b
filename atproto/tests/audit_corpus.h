/* The audit metadata of a real #commit frame, as es-atproto-ingest writes it
 * on the commit's op events (docs/atproto.md, "Audit metadata"): sig
 * (base64url, no padding), data, commitprev (when the block's prev is not
 * null), since, prevdata, with rev, commit and the DID. Read through the
 * public API only (frame body, CAR, commit block), for the audit's unit
 * test and its live test. Include after cmocka.h. */
#ifndef ES_ATP_TEST_AUDIT_CORPUS_H
#define ES_ATP_TEST_AUDIT_CORPUS_H

#include <stdbool.h>
#include <string.h>

#include <es/atproto_audit.h>
#include <es/base.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>

#define CORPUS_TEXT_MAX 2100 /* the longest DID (2,048) and room */

typedef struct corpus_commit {
    char did[CORPUS_TEXT_MAX];
    char rev[64], since[64];
    char data[ES_CID_STRING_MAX], commitprev[ES_CID_STRING_MAX], commit[ES_CID_STRING_MAX];
    char prevdata[ES_CID_STRING_MAX];
    char sig[128];
    const uint8_t *block; /* the commit block in the frame */
    size_t block_len;
    es_atp_audit_commit fields; /* pointing at the texts above */
} corpus_commit;

static inline void corpus_text(const es_value *v, char *out, size_t size)
{
    assert_true(v != NULL && v->kind == ES_VALUE_STRING && v->u.str.len < size);
    memcpy(out, v->u.str.ptr, v->u.str.len);
    out[v->u.str.len] = '\0';
}

static inline void corpus_cid(const es_value *v, char *out)
{
    assert_true(v != NULL && v->kind == ES_VALUE_LINK);
    assert_int_equal(es_cid_to_string(v->u.bytes.ptr, v->u.bytes.len, out, ES_CID_STRING_MAX),
                     ES_OK);
}

/* base64url without padding, as the metadata carries signatures. */
static inline void corpus_base64url(const uint8_t *b, size_t n, char *out, size_t size)
{
    size_t len = 0;
    assert_int_equal(es_base64_encode(b, n, out, size - 1, &len), ES_OK);
    out[len] = '\0';
    for (size_t i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

/* Points c->fields at c's texts (again, after c was copied). */
static inline void corpus_fields(corpus_commit *c)
{
    c->fields = (es_atp_audit_commit){
        .did = c->did,
        .rev = c->rev,
        .data = c->data,
        .commitprev = c->commitprev[0] != '\0' ? c->commitprev : NULL,
        .sig = c->sig,
        .commit = c->commit[0] != '\0' ? c->commit : NULL,
        .since = c->since[0] != '\0' ? c->since : NULL,
        .prevdata = c->prevdata[0] != '\0' ? c->prevdata : NULL,
    };
}

/* The audit fields of a #commit frame into *c; false for other frames. */
static inline bool corpus_commit_of(const uint8_t *frame, size_t len, es_arena *arena,
                                    corpus_commit *c)
{
    es_value *header = NULL, *body = NULL;
    size_t used = 0;
    memset(c, 0, sizeof *c);
    assert_int_equal(es_cbor_decode(frame, len, NULL, arena, &header, &used), ES_OK);
    if (!es_value_is_string(es_value_get(header, "t"), "#commit"))
        return false;
    assert_int_equal(es_cbor_decode(frame + used, len - used, NULL, arena, &body, NULL), ES_OK);
    corpus_text(es_value_get(body, "repo"), c->did, sizeof c->did);
    corpus_text(es_value_get(body, "rev"), c->rev, sizeof c->rev);
    corpus_cid(es_value_get(body, "commit"), c->commit);
    const es_value *since = es_value_get(body, "since"), *prevdata = es_value_get(body, "prevData");
    if (since != NULL && since->kind == ES_VALUE_STRING)
        corpus_text(since, c->since, sizeof c->since);
    if (prevdata != NULL && prevdata->kind == ES_VALUE_LINK)
        corpus_cid(prevdata, c->prevdata);
    const es_value *blocks = es_value_get(body, "blocks"), *cid = es_value_get(body, "commit");
    es_car car;
    assert_int_equal(es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, NULL, arena, &car),
                     ES_OK);
    const es_car_block *b = es_car_find(&car, cid->u.bytes.ptr, cid->u.bytes.len);
    assert_non_null(b);
    c->block = b->data;
    c->block_len = b->len;
    es_value *commit = NULL;
    assert_int_equal(es_cbor_decode(b->data, b->len, NULL, arena, &commit, NULL), ES_OK);
    corpus_cid(es_value_get(commit, "data"), c->data);
    const es_value *prev = es_value_get(commit, "prev"), *sig = es_value_get(commit, "sig");
    if (prev != NULL && prev->kind == ES_VALUE_LINK)
        corpus_cid(prev, c->commitprev);
    assert_true(sig != NULL && sig->kind == ES_VALUE_BYTES);
    corpus_base64url(sig->u.bytes.ptr, sig->u.bytes.len, c->sig, sizeof c->sig);
    corpus_fields(c);
    return true;
}

#endif
