/* A signed commit block rebuilt from the fields an op event carries in its
 * metadata (atproto repository spec, "Commit Objects"): {did, version: 3,
 * data, rev, prev, sig}. The strict DAG-CBOR encoder writes map keys in the
 * canonical order, so the rebuilt bytes are the ones the author signed (with
 * `sig` left out) and hashed into the commit's CID (with it). A #sync event
 * carries its commit block itself, in the frame body it keeps. */
#include "audit_internal.h"

#include <string.h>

#include <es/base.h>
#include <es/car.h>
#include <es/cbor.h>

#include "atp_internal.h"

#define SYNC_BODY_DEPTH 8 /* {did, rev, blocks, ...}: a flat map */

/* base64url without padding (RFC 4648 section 5) is the standard alphabet
 * with '-' for '+' and '_' for '/': translated, then decoded by the codecs'
 * one base64 decoder. The standard characters and padding are refused, so
 * each signature has one text form. */
static es_status sig_decode(const char *text, uint8_t sig[ESI_ATP_SIG_LEN])
{
    char std[ESI_ATP_AUDIT_SIG_TEXT_MAX];
    size_t n = strlen(text);
    if (n >= sizeof std)
        return es_error(ES_ERR_DECODE, "sig: %zu characters, longer than a signature", n);
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c == '+' || c == '/' || c == '=')
            return es_error(ES_ERR_DECODE, "sig: '%c' is not base64url without padding", c);
        std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    size_t len = 0;
    if (es_base64_decode(std, n, sig, ESI_ATP_SIG_LEN, &len) != ES_OK || len != ESI_ATP_SIG_LEN)
        return es_error(ES_ERR_DECODE, "sig: not the base64url of %d bytes", ESI_ATP_SIG_LEN);
    return ES_OK;
}

es_status esi_atp_audit_sig_text(const uint8_t *sig, size_t len,
                                 char out[ESI_ATP_AUDIT_SIG_TEXT_MAX])
{
    if (esi_atp_base64url_encode(sig, len, out, ESI_ATP_AUDIT_SIG_TEXT_MAX) != ES_OK)
        return es_error(ES_ERR_DECODE, "sig: %zu bytes, longer than a signature", len);
    return ES_OK;
}

static es_status cid_decode(const char *field, const char *text, uint8_t out[ESI_ATP_AUDIT_CID_MAX],
                            size_t *len)
{
    if (es_cid_from_string(text, strlen(text), out, ESI_ATP_AUDIT_CID_MAX, len) != ES_OK)
        return es_error(ES_ERR_DECODE, "%s: not a CID: %.80s", field, text);
    return ES_OK;
}

es_status esi_atp_audit_parse(const es_atp_audit_commit *c, esi_atp_audit_fields *f)
{
    if (c == NULL || f == NULL)
        return es_error(ES_ERR_INVALID, "audit: NULL argument");
    if (c->did == NULL || c->rev == NULL || c->data == NULL || c->sig == NULL)
        return es_error(ES_ERR_INVALID, "audit: the commit lacks %s",
                        c->did == NULL    ? "its DID"
                        : c->rev == NULL  ? "rev"
                        : c->data == NULL ? "data"
                                          : "sig");
    memset(f, 0, sizeof *f);
    es_status s = sig_decode(c->sig, f->sig);
    if (s == ES_OK)
        s = cid_decode("data", c->data, f->data, &f->data_len);
    if (s == ES_OK && c->commitprev != NULL)
        s = cid_decode("commitprev", c->commitprev, f->prev, &f->prev_len);
    if (s == ES_OK && c->commit != NULL)
        s = cid_decode("commit", c->commit, f->commit, &f->commit_len);
    if (s == ES_OK && c->prevdata != NULL)
        s = cid_decode("prevdata", c->prevdata, f->prevdata, &f->prevdata_len);
    return s;
}

static void link_value(es_value *v, const uint8_t *cid, size_t len)
{
    if (len == 0) {
        v->kind = ES_VALUE_NULL;
        return;
    }
    v->kind = ES_VALUE_LINK;
    v->u.bytes.ptr = cid;
    v->u.bytes.len = len;
}

static void entry(es_value_entry *e, const char *key)
{
    memset(e, 0, sizeof *e);
    e->key = key;
    e->key_len = strlen(key);
}

es_status esi_atp_audit_encode(const es_atp_audit_commit *c, const esi_atp_audit_fields *f,
                               bool with_sig, es_buf *out)
{
    es_value_entry e[6];
    entry(&e[0], "did");
    e[0].value.kind = ES_VALUE_STRING;
    e[0].value.u.str.ptr = c->did;
    e[0].value.u.str.len = strlen(c->did);
    entry(&e[1], "rev");
    e[1].value.kind = ES_VALUE_STRING;
    e[1].value.u.str.ptr = c->rev;
    e[1].value.u.str.len = strlen(c->rev);
    entry(&e[2], "data");
    link_value(&e[2].value, f->data, f->data_len);
    entry(&e[3], "prev");
    link_value(&e[3].value, f->prev, f->prev_len);
    entry(&e[4], "version");
    e[4].value.kind = ES_VALUE_INT;
    e[4].value.u.i = 3;
    entry(&e[5], "sig");
    e[5].value.kind = ES_VALUE_BYTES;
    e[5].value.u.bytes.ptr = f->sig;
    e[5].value.u.bytes.len = ESI_ATP_SIG_LEN;
    es_value map = {.kind = ES_VALUE_MAP};
    map.u.map.entries = e;
    map.u.map.count = with_sig ? 6 : 5;
    return es_cbor_encode(&map, NULL, out); /* strict: canonical key order */
}

es_status es_atp_audit_rebuild(const es_atp_audit_commit *c, es_buf *block,
                               uint8_t cid[ES_CID_SHA256_LEN])
{
    if (block == NULL || cid == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_audit_rebuild: NULL argument");
    if (c == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_audit_rebuild: NULL argument");
    es_atp_audit_commit signed_part = *c; /* what the block holds, nothing else */
    signed_part.commit = signed_part.since = signed_part.prevdata = NULL;
    esi_atp_audit_fields f;
    es_status s = esi_atp_audit_parse(&signed_part, &f);
    if (s != ES_OK)
        return s;
    size_t start = block->len;
    if ((s = esi_atp_audit_encode(c, &f, true, block)) != ES_OK)
        return s;
    return es_cid_sha256(ES_CID_CODEC_DAG_CBOR, block->data + start, block->len - start, cid);
}

/* The commit block of a #sync event's data (the frame body {did, rev,
 * blocks, ...}): the root of the CAR in `blocks`, whose hash is checked
 * against the root's CID. ES_ERR_DECODE when the body is not one; its
 * scratch memory comes from `arena`. */
es_status esi_atp_audit_sync_block(const uint8_t *body, size_t len, es_arena *arena,
                                   const uint8_t **block, size_t *block_len)
{
    es_value *v = NULL;
    es_status s = esi_atp_decode_exact(body, len, SYNC_BODY_DEPTH, arena, &v);
    if (s != ES_OK)
        return s == ES_ERR_NOMEM ? s : es_error(ES_ERR_DECODE, "#sync: the body is not DAG-CBOR");
    const es_value *blocks = es_value_get(v, "blocks");
    if (blocks == NULL || blocks->kind != ES_VALUE_BYTES)
        return es_error(ES_ERR_DECODE, "#sync: no `blocks`");
    es_car car;
    if ((s = es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, NULL, arena, &car)) != ES_OK)
        return s == ES_ERR_NOMEM ? s : es_error(ES_ERR_DECODE, "#sync: `blocks` is not a CAR");
    es_car_block *b = car.root_count > 0 ? es_car_find(&car, car.roots[0], car.root_lens[0]) : NULL;
    if (b == NULL || es_car_verify(b) != ES_OK)
        return es_error(ES_ERR_DECODE, "#sync: the CAR's root block is absent or damaged");
    *block = b->data;
    *block_len = b->len;
    return ES_OK;
}
