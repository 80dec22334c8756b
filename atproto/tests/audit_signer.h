/* Commits signed by the tests themselves (the corpus has one commit per
 * repository, so chains need more): a K-256 key of the capture generator's
 * signer (gen_sign.h), its DID document, and commits of CHAIN_DID over made-up MST roots, with the
 * audit metadata they would be stored with. Include after audit_corpus.h; link es_atproto_gen. Call
 * signer_start() first and signer_stop() at the end. */
#ifndef ES_ATP_TEST_AUDIT_SIGNER_H
#define ES_ATP_TEST_AUDIT_SIGNER_H

#include "audit_internal.h"
#include "gen_sign.h"

#define CHAIN_DID "did:plc:auditchaintestaaaaaaaaa"

static es_atp_gen_key *signer;

/* The test's K-256 key, from a fixed seed. */
static inline void signer_start(void)
{
    assert_int_equal(es_atp_gen_key_derive(ESI_ATP_K256, "audit", 5, &signer), ES_OK);
}

static inline void signer_stop(void)
{
    es_atp_gen_key_destroy(signer);
    signer = NULL;
}

/* CHAIN_DID's DID document with the test's key (static storage). */
static inline char *chain_did_doc(void)
{
    static char doc[512];
    char multikey[ES_ATP_GEN_MULTIKEY_MAX];
    assert_int_equal(es_atp_gen_key_multikey(signer, multikey), ES_OK);
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
    assert_int_equal(es_atp_gen_sign(signer, unsigned_block.data, unsigned_block.len, sig), ES_OK);
    es_buf_free(&unsigned_block);
    corpus_base64url(sig, sizeof sig, c->sig, sizeof c->sig);
    es_buf block = ES_BUF_INIT;
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_atp_audit_rebuild(&c->fields, &block, cid), ES_OK);
    es_buf_free(&block);
    assert_int_equal(es_cid_to_string(cid, sizeof cid, c->commit, sizeof c->commit), ES_OK);
}

#endif
