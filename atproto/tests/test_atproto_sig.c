/* Signature primitives (atproto/src/atp_sig.h): base58btc, Multikey and
 * did:key parsing against the W3C did:key vectors, ECDSA verification against
 * the atproto interop signature fixtures (high-S and DER refused), and the
 * commit signature of every #commit / #sync of the real firehose corpus
 * checked with its author's key from did_docs.json.zst. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <zstd.h>

#include <es/time.h>
#include <es/atproto.h>
#include <es/base.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>
#include <es/json.h>

#include "atp_sig.h"
#include "identity.h"
#include "doc_set.h"
#include "fixtures.h"

/* ---- helpers ------------------------------------------------------------ */

/* A fixture file decoded as JSON into `arena`, or NULL (skip) when absent. */
static es_value *load_json(const char *rel, es_arena *arena)
{
    const char *path = fixture_path(rel);
    if (path == NULL)
        return NULL;
    size_t len = 0;
    unsigned char *text = read_whole_file(path, &len);
    assert_non_null(text);
    es_value *v = NULL;
    assert_int_equal(es_json_decode((const char *)text, len, NULL, arena, &v), ES_OK);
    free(text);
    return v;
}

static const char *str_of(const es_value *map, const char *key, size_t *len)
{
    const es_value *v = es_value_get(map, key);
    assert_non_null(v);
    assert_int_equal(v->kind, ES_VALUE_STRING);
    *len = v->u.str.len;
    return v->u.str.ptr;
}

static size_t base64_field(const es_value *c, const char *key, uint8_t *out, size_t cap)
{
    size_t slen = 0, n = 0;
    const char *s = str_of(c, key, &slen);
    assert_int_equal(es_base64_decode(s, slen, out, cap, &n), ES_OK);
    return n;
}

/* ---- base58btc ---------------------------------------------------------- */

static void base58_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *bytes;
        size_t len;
    } cases[] = {
        {"", "", 0},
        {"1", "\0", 1},
        {"11", "\0\0", 2},
        {"2g", "a", 1},
        {"a3gV", "bbb", 3},
        {"1112g", "\0\0\0a", 4},
        {"StV1DL6CwTryKyV", "hello world", 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[32];
        size_t n = 99;
        assert_int_equal(
            esi_atp_base58_decode(cases[i].text, strlen(cases[i].text), out, sizeof out, &n), ES_OK);
        assert_int_equal(n, cases[i].len);
        assert_memory_equal(out, cases[i].bytes, n);
    }
    uint8_t out[4];
    size_t n;
    /* 0, O, I and l are not in the alphabet. */
    assert_int_equal(esi_atp_base58_decode("2g0", 3, out, sizeof out, &n), ES_ERR_DECODE);
    assert_int_equal(esi_atp_base58_decode("2gl", 3, out, sizeof out, &n), ES_ERR_DECODE);
    assert_int_equal(esi_atp_base58_decode("StV1DL6CwTryKyV", 15, out, sizeof out, &n),
                     ES_ERR_TOO_LARGE);
    assert_int_equal(esi_atp_base58_decode("11111", 5, out, sizeof out, &n), ES_ERR_TOO_LARGE);
}

/* ---- did:key vectors ---------------------------------------------------- */

/* The compressed public point of a private scalar, computed by OpenSSL. */
static void public_point(int nid, const uint8_t *priv, size_t priv_len,
                         uint8_t out[ESI_ATP_POINT_LEN])
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
    EC_POINT *p = EC_POINT_new(g);
    BIGNUM *d = BN_bin2bn(priv, (int)priv_len, NULL);
    assert_int_equal(EC_POINT_mul(g, p, d, NULL, NULL, NULL), 1);
    assert_int_equal(EC_POINT_point2oct(g, p, POINT_CONVERSION_COMPRESSED, out, ESI_ATP_POINT_LEN,
                                        NULL),
                     ESI_ATP_POINT_LEN);
    BN_free(d);
    EC_POINT_free(p);
    EC_GROUP_free(g);
}

static size_t hex_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    assert_true(len % 2 == 0 && len / 2 <= cap);
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return len / 2;
}

/* Each vector's did:key parses to the public key of its private key. */
static size_t check_didkey_vectors(const char *rel, esi_atp_curve curve)
{
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_value *vectors = load_json(rel, arena);
    size_t checked = 0;
    for (size_t i = 0; vectors != NULL && i < vectors->u.array.count; i++) {
        const es_value *v = &vectors->u.array.items[i];
        uint8_t priv[48], expect[ESI_ATP_POINT_LEN];
        size_t plen = 0, slen = 0;
        if (es_value_get(v, "privateKeyBytesHex") != NULL) {
            const char *hex = str_of(v, "privateKeyBytesHex", &slen);
            plen = hex_decode(hex, slen, priv, sizeof priv);
        } else {
            const char *b58 = str_of(v, "privateKeyBytesBase58", &slen);
            assert_int_equal(esi_atp_base58_decode(b58, slen, priv, sizeof priv, &plen), ES_OK);
        }
        public_point(curve == ESI_ATP_K256 ? NID_secp256k1 : NID_X9_62_prime256v1, priv, plen,
                     expect);
        const char *did = str_of(v, "publicDidKey", &slen);
        esi_atp_key *key = NULL;
        assert_int_equal(esi_atp_key_from_did_key(did, slen, &key), ES_OK);
        assert_int_equal(esi_atp_key_curve(key), curve);
        assert_memory_equal(esi_atp_key_point(key), expect, ESI_ATP_POINT_LEN);
        esi_atp_key_destroy(key);
        checked++;
    }
    es_arena_destroy(arena);
    return checked;
}

static void didkey_vectors(void **state)
{
    (void)state;
    size_t k = check_didkey_vectors("atproto-interop/crypto/w3c_didkey_K256.json", ESI_ATP_K256);
    size_t p = check_didkey_vectors("atproto-interop/crypto/w3c_didkey_P256.json", ESI_ATP_P256);
    if (k + p == 0)
        skip();
    printf("did:key vectors: %zu K-256, %zu P-256\n", k, p);
    assert_true(k >= 1 && p >= 1);
}

static void multikey_refusals(void **state)
{
    (void)state;
    esi_atp_key *key = NULL;
    /* A valid K-256 multikey (the signature fixtures' did:key), then variants. */
    const char *good = "zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc";
    assert_int_equal(esi_atp_key_from_multikey(good, strlen(good), &key), ES_OK);
    esi_atp_key_destroy(key);
    esi_atp_key_destroy(NULL);
    key = NULL;
    /* Not base58btc multibase ('m' is base64). */
    assert_int_equal(esi_atp_key_from_multikey("m25z9DTps", 9, &key), ES_ERR_DECODE);
    /* An Ed25519 did:key (multicodec 0xed): not an atproto signing key. */
    const char *ed = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    assert_int_equal(esi_atp_key_from_did_key(ed, strlen(ed), &key), ES_ERR_DECODE);
    /* Not a did:key at all. */
    assert_int_equal(esi_atp_key_from_did_key("did:plc:abc", 11, &key), ES_ERR_DECODE);
    /* A truncated key (one character less: 34 bytes, not 35). */
    assert_int_equal(esi_atp_key_from_multikey(good, strlen(good) - 1, &key), ES_ERR_DECODE);
    /* Over-long text is refused before the quadratic decode. */
    char longer[200];
    memset(longer, 'z', sizeof longer);
    assert_int_equal(esi_atp_key_from_multikey(longer, sizeof longer, &key), ES_ERR_DECODE);
    /* A point not on the curve: x = 5 has no K-256 y (5^3 + 7 = 132 is
     * not a square mod p), encoded as 0xe7 0x01 0x02 || x. */
    uint8_t raw[35] = {0xe7, 0x01, 0x02};
    raw[34] = 5;
    /* base58 of raw, built with the test's own encoder below. */
    char text[64] = "z";
    size_t digits[64], nd = 0;
    for (size_t i = 0; i < sizeof raw; i++) {
        unsigned carry = raw[i];
        for (size_t k = 0; k < nd; k++) {
            carry += (unsigned)digits[k] << 8;
            digits[k] = carry % 58;
            carry /= 58;
        }
        while (carry) {
            digits[nd++] = carry % 58;
            carry /= 58;
        }
    }
    static const char alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    for (size_t k = 0; k < nd; k++)
        text[1 + k] = alpha[digits[nd - 1 - k]];
    assert_int_equal(esi_atp_key_from_multikey(text, 1 + nd, &key), ES_ERR_DECODE);
    assert_null(key);
}

/* ---- interop signature fixtures ----------------------------------------- */

static void signature_fixtures(void **state)
{
    (void)state;
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_value *cases = load_json("atproto-interop/crypto/signature-fixtures.json", arena);
    if (cases == NULL) {
        es_arena_destroy(arena);
        skip();
    }
    size_t valid = 0, refused = 0;
    for (size_t i = 0; i < cases->u.array.count; i++) {
        const es_value *c = &cases->u.array.items[i];
        size_t len = 0;
        const char *comment = str_of(c, "comment", &len);
        uint8_t msg[256], sig[128];
        size_t msg_len = base64_field(c, "messageBase64", msg, sizeof msg);
        size_t sig_len = base64_field(c, "signatureBase64", sig, sizeof sig);
        /* The fixtures' publicKeyMultibase is the legacy form (the bare
         * point, its curve named by didDocSuite), which Multikey parsing
         * refuses; it must hold the did:key's point. */
        esi_atp_key *from_mb = NULL;
        const char *did = str_of(c, "publicKeyDid", &len);
        assert_int_equal(esi_atp_key_from_did_key(did, len, &from_mb), ES_OK);
        const char *mb = str_of(c, "publicKeyMultibase", &len);
        uint8_t legacy[48];
        size_t legacy_len = 0;
        assert_int_equal(esi_atp_base58_decode(mb + 1, len - 1, legacy, sizeof legacy, &legacy_len),
                         ES_OK);
        assert_int_equal(legacy_len, ESI_ATP_POINT_LEN);
        assert_memory_equal(esi_atp_key_point(from_mb), legacy, ESI_ATP_POINT_LEN);
        esi_atp_key *from_legacy = NULL;
        assert_int_equal(esi_atp_key_from_multikey(mb, len, &from_legacy), ES_ERR_DECODE);
        esi_atp_curve want = es_value_is_string(es_value_get(c, "algorithm"), "ES256K")
                                 ? ESI_ATP_K256
                                 : ESI_ATP_P256;
        assert_int_equal(esi_atp_key_curve(from_mb), want);

        bool expect_valid = es_value_get(c, "validSignature")->u.b;
        es_status s = esi_atp_verify(from_mb, msg, msg_len, sig, sig_len);
        printf("%-80s %s\n", comment, s == ES_OK ? "valid" : es_last_error());
        assert_int_equal(s, expect_valid ? ES_OK : ES_ERR_CRYPTO);
        const es_value *tags = es_value_get(c, "tags");
        if (tags->u.array.count == 1 && es_value_is_string(&tags->u.array.items[0], "high-s")) {
            /* Mathematically valid (OpenSSL, which does not enforce low-S,
             * accepts it): it is the low-S rule that refuses it. */
            uint8_t cid[ES_CID_SHA256_LEN];
            assert_int_equal(es_cid_sha256(ES_CID_CODEC_RAW, msg, msg_len, cid), ES_OK);
            assert_int_equal(sig_len, ESI_ATP_SIG_LEN);
            assert_int_equal(esi_atp_verify_digest_openssl(from_mb, cid + 4, sig), ES_OK);
        }
        valid += expect_valid;
        refused += !expect_valid;
        esi_atp_key_destroy(from_mb);
    }
    printf("signature fixtures: %zu valid, %zu refused\n", valid, refused);
    assert_true(valid >= 2 && refused >= 4);
    es_arena_destroy(arena);
}

/* ---- the real corpus ---------------------------------------------------- */

/* The corpus' DID documents (did_docs.json.zst), or false (skip). */
static bool load_did_docs(doc_set *d)
{
    const char *path = fixture_path("firehose-corpus/did_docs.json.zst");
    if (path == NULL)
        return false;
    assert_int_equal(esi_atp_did_docs_load(path, doc_set_keep, d, NULL), ES_OK);
    return true;
}

typedef struct signed_commit {
    const char *kind; /* "#commit" or "#sync" */
    char did[256];
    const uint8_t *block; /* in the frame */
    size_t len;
} signed_commit;

/* The commit block and author of a #commit or #sync frame; false for other
 * frames. The CAR's blocks are located, not verified (frame.c does that). */
static bool signed_commit_of(const uint8_t *frame, size_t len, es_arena *arena, signed_commit *out)
{
    es_value *header = NULL, *body = NULL;
    size_t used = 0;
    assert_int_equal(es_cbor_decode(frame, len, NULL, arena, &header, &used), ES_OK);
    assert_int_equal(es_cbor_decode(frame + used, len - used, NULL, arena, &body, NULL), ES_OK);
    const es_value *t = es_value_get(header, "t");
    bool commit = es_value_is_string(t, "#commit"), sync = es_value_is_string(t, "#sync");
    if (!commit && !sync)
        return false;
    out->kind = commit ? "#commit" : "#sync";
    const es_value *did = es_value_get(body, commit ? "repo" : "did");
    const es_value *blocks = es_value_get(body, "blocks");
    assert_true(did != NULL && did->kind == ES_VALUE_STRING && did->u.str.len < sizeof out->did);
    memcpy(out->did, did->u.str.ptr, did->u.str.len);
    out->did[did->u.str.len] = '\0';
    es_car car;
    assert_int_equal(es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, NULL, arena, &car),
                     ES_OK);
    const es_value *cid = commit ? es_value_get(body, "commit") : NULL;
    const es_car_block *b = cid != NULL ? es_car_find(&car, cid->u.bytes.ptr, cid->u.bytes.len)
                                        : es_car_find(&car, car.roots[0], car.root_lens[0]);
    assert_non_null(b);
    out->block = b->data;
    out->len = b->len;
    return true;
}

/* The commit block's canonical encoding round-trips, its signature verifies
 * with the author's key, and one flipped bit in `sig` or in the signed
 * fields makes it fail. */
static void check_commit(const signed_commit *c, const esi_atp_key *key, es_arena *arena)
{
    es_value *decoded = NULL;
    assert_int_equal(es_cbor_decode(c->block, c->len, NULL, arena, &decoded, NULL), ES_OK);
    es_buf again = ES_BUF_INIT;
    assert_int_equal(es_cbor_encode(decoded, NULL, &again), ES_OK);
    assert_int_equal(again.len, c->len);
    assert_memory_equal(again.data, c->block, c->len);
    es_buf_free(&again);

    if (esi_atp_commit_verify(c->block, c->len, key, arena) != ES_OK)
        fail_msg("%s of %s: %s", c->kind, c->did, es_last_error());

    uint8_t *copy = malloc(c->len);
    assert_non_null(copy);
    const es_value *sig = es_value_get(decoded, "sig");
    const es_value *data = es_value_get(decoded, "data");
    size_t at_sig = (size_t)(sig->u.bytes.ptr - c->block) + 17;
    size_t at_data = (size_t)(data->u.bytes.ptr - c->block) + data->u.bytes.len - 1;
    size_t flips[] = {at_sig, at_data};
    for (size_t i = 0; i < 2; i++) {
        memcpy(copy, c->block, c->len);
        copy[flips[i]] ^= 0x01;
        assert_int_equal(esi_atp_commit_verify(copy, c->len, key, arena), ES_ERR_CRYPTO);
    }
    free(copy);
}

static double now_s(void)
{
    return (double)es_monotonic_ns() / 1e9;
}

static void corpus_commits_verify(void **state)
{
    (void)state;
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    static doc_set docs;
    es_atp_capture *frames = load_did_docs(&docs) ? corpus_frames_open() : NULL;
    if (frames == NULL) {
        doc_set_free(&docs);
        es_arena_destroy(arena);
        skip();
    }
    const uint8_t *frame;
    size_t len, commits = 0, syncs = 0;
    double verify_s = 0;
    while (es_atp_capture_next(frames, &frame, &len) == ES_OK) {
        es_arena_reset(arena);
        signed_commit c;
        if (!signed_commit_of(frame, len, arena, &c))
            continue;
        esi_atp_key *key = NULL;
        const esi_atp_did_doc *doc = doc_set_find(&docs, c.did);
        if (doc == NULL)
            fail_msg("no DID document for %s", c.did);
        assert_int_equal(esi_atp_did_doc_key(doc, &key), ES_OK);
        double t0 = now_s();
        assert_int_equal(esi_atp_commit_verify(c.block, c.len, key, arena), ES_OK);
        verify_s += now_s() - t0;
        check_commit(&c, key, arena);
        esi_atp_key_destroy(key);
        commits += c.kind[1] == 'c';
        syncs += c.kind[1] == 's';
    }
    es_atp_capture_close(frames);
    printf("corpus: %zu #commit and %zu #sync signatures verified (%.0f commits/s, decode + "
           "re-encode + verify, Debug build)\n",
           commits, syncs, (double)(commits + syncs) / verify_s);
    assert_int_equal(commits, 148);
    doc_set_free(&docs);
    es_arena_destroy(arena);
}

/* A parsed document's key: none, of a legacy type, unparseable, good. */
static void did_doc_keys(void **state)
{
    (void)state;
    static const char *no_method = "{\"id\":\"did:plc:x\"}";
    static const char *other_only =
        "{\"id\":\"did:plc:x\",\"verificationMethod\":[{\"id\":\"did:plc:x#other\","
        "\"type\":\"Multikey\",\"publicKeyMultibase\":"
        "\"zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc\"}]}";
    static const char *legacy =
        "{\"id\":\"did:plc:x\",\"verificationMethod\":[{\"id\":\"did:plc:x#atproto\","
        "\"type\":\"EcdsaSecp256k1VerificationKey2019\",\"publicKeyMultibase\":"
        "\"zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc\"}]}";
    static const char *bad_key =
        "{\"id\":\"did:plc:x\",\"verificationMethod\":[{\"id\":\"did:plc:x#atproto\","
        "\"type\":\"Multikey\",\"publicKeyMultibase\":\"zz\"}]}";
    static const char *good =
        "{\"id\":\"did:plc:x\",\"verificationMethod\":[{\"id\":\"#other\"},{\"id\":"
        "\"did:plc:x#atproto\",\"type\":\"Multikey\",\"publicKeyMultibase\":"
        "\"zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc\"}]}";
    struct {
        const char *json;
        es_status want;
    } cases[] = {{no_method, ES_ERR_NOT_FOUND},
                 {other_only, ES_ERR_NOT_FOUND},
                 {legacy, ES_ERR_UNSUPPORTED},
                 {bad_key, ES_ERR_DECODE},
                 {good, ES_OK}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        esi_atp_did_doc *doc = NULL;
        assert_int_equal(esi_atp_did_doc_parse(cases[i].json, strlen(cases[i].json), &doc), ES_OK);
        esi_atp_key *key = NULL;
        assert_int_equal(esi_atp_did_doc_key(doc, &key), cases[i].want);
        assert_true((key != NULL) == (cases[i].want == ES_OK));
        esi_atp_key_destroy(key);
        esi_atp_did_doc_destroy(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base58_vectors),        cmocka_unit_test(didkey_vectors),
        cmocka_unit_test(multikey_refusals),     cmocka_unit_test(signature_fixtures),
        cmocka_unit_test(corpus_commits_verify), cmocka_unit_test(did_doc_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
