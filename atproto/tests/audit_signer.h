/* Commits signed by the tests themselves (the corpus has one commit per
 * repository, so chains need more): a K-256 key of libsecp256k1, its DID
 * document, and commits of CHAIN_DID over made-up MST roots, with the audit
 * metadata they would be stored with. Include after audit_corpus.h; link
 * libsecp256k1. Call signer_start() first and signer_stop() at the end. */
#ifndef ES_ATP_TEST_AUDIT_SIGNER_H
#define ES_ATP_TEST_AUDIT_SIGNER_H

#include <secp256k1.h>

#include "audit_internal.h"

#define CHAIN_DID "did:plc:auditchaintestaaaaaaaaa"

static secp256k1_context *signer;

static inline void signer_start(void)
{
    signer = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    assert_non_null(signer);
}

static inline void signer_stop(void)
{
    secp256k1_context_destroy(signer);
    signer = NULL;
}
static const uint8_t secret[32] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                                   0xcc, 0xdd, 0xee, 0xf0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                   0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11};

static inline void base58btc(const uint8_t *in, size_t n, char *out, size_t size)
{
    static const char alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    uint8_t digits[64] = {0};
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned carry = in[i];
        for (size_t k = 0; k < used; k++) {
            carry += 256u * digits[k];
            digits[k] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        while (carry != 0) {
            digits[used++] = (uint8_t)(carry % 58);
            carry /= 58;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < n && in[i] == 0; i++)
        out[o++] = '1';
    while (used > 0 && o + 1 < size)
        out[o++] = alphabet[digits[--used]];
    out[o] = '\0';
}

static inline char *chain_did_doc(void)
{
    static char doc[512];
    secp256k1_pubkey pub;
    uint8_t key[2 + 33] = {0xe7, 0x01};
    size_t len = 33;
    assert_int_equal(secp256k1_ec_pubkey_create(signer, &pub, secret), 1);
    assert_int_equal(
        secp256k1_ec_pubkey_serialize(signer, key + 2, &len, &pub, SECP256K1_EC_COMPRESSED), 1);
    char multikey[80] = "z";
    base58btc(key, sizeof key, multikey + 1, sizeof multikey - 1);
    snprintf(doc, sizeof doc,
             "{\"id\":\"%s\",\"verificationMethod\":[{\"id\":\"%s#atproto\",\"type\":"
             "\"Multikey\",\"controller\":\"%s\",\"publicKeyMultibase\":\"%s\"}]}",
             CHAIN_DID, CHAIN_DID, CHAIN_DID, multikey);
    return doc;
}

/* Commit `rev` of CHAIN_DID over an MST root made up from `rev`, following
 * `prev` (NULL: the first), signed; since and prevdata as a relay sends them. */
static inline void chain_commit(corpus_commit *c, const char *rev, const corpus_commit *prev)
{
    memset(c, 0, sizeof *c);
    snprintf(c->did, sizeof c->did, "%s", CHAIN_DID);
    snprintf(c->rev, sizeof c->rev, "%s", rev);
    uint8_t root[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, rev, strlen(rev), root), ES_OK);
    assert_int_equal(es_cid_to_string(root, sizeof root, c->data, sizeof c->data), ES_OK);
    if (prev != NULL) {
        snprintf(c->since, sizeof c->since, "%s", prev->rev);
        snprintf(c->prevdata, sizeof c->prevdata, "%s", prev->data);
    }
    uint8_t sig[64] = {0};
    corpus_base64url(sig, sizeof sig, c->sig, sizeof c->sig); /* a placeholder, not signed */
    corpus_fields(c);
    /* The signed bytes: the block without `sig`, as the audit encodes it. */
    esi_atp_audit_fields f;
    es_buf unsigned_block = ES_BUF_INIT;
    assert_int_equal(esi_atp_audit_parse(&c->fields, &f), ES_OK);
    assert_int_equal(esi_atp_audit_encode(&c->fields, &f, false, &unsigned_block), ES_OK);
    uint8_t hash[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_RAW, unsigned_block.data, unsigned_block.len, hash),
                     ES_OK);
    es_buf_free(&unsigned_block);
    secp256k1_ecdsa_signature s;
    assert_int_equal(secp256k1_ecdsa_sign(signer, &s, hash + 4, secret, NULL, NULL), 1);
    assert_int_equal(secp256k1_ecdsa_signature_serialize_compact(signer, sig, &s), 1);
    corpus_base64url(sig, sizeof sig, c->sig, sizeof c->sig);
    es_buf block = ES_BUF_INIT;
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_atp_audit_rebuild(&c->fields, &block, cid), ES_OK);
    es_buf_free(&block);
    assert_int_equal(es_cid_to_string(cid, sizeof cid, c->commit, sizeof c->commit), ES_OK);
}

#endif
