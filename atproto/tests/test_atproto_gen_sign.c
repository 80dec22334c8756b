/* The generator's signer and its signed captures: the signer against RFC
 * 6979 and the atproto did:key vectors, checked by the library's own
 * verifier; captures of each curve, with key rotation, whose every commit
 * verifies against the right DID document (the initial ones before the
 * account's first #identity, the rotated ones after) and inverts. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include <es/atproto.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>

#include "atp_sig.h"
#include "atproto_gen.h"
#include "doc_set.h"
#include "fixture_json.h"
#include "fixtures.h"
#include "gen_digest.h"
#include "gen_sign.h"
#include "identity.h"
#include "invert.h"

static void from_hex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(h), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* Whether the signature's s is in the lower half of the curve's order
 * (computed here with OpenSSL, independently of the verifier's constants). */
static bool low_s(esi_atp_curve curve, const uint8_t sig[ESI_ATP_SIG_LEN])
{
    EC_GROUP *g =
        EC_GROUP_new_by_curve_name(curve == ESI_ATP_K256 ? NID_secp256k1 : NID_X9_62_prime256v1);
    BIGNUM *half = BN_new(), *s = BN_bin2bn(sig + 32, 32, NULL);
    assert_non_null(g);
    assert_non_null(half);
    assert_non_null(s);
    assert_int_equal(BN_rshift1(half, EC_GROUP_get0_order(g)), 1);
    bool low = BN_cmp(s, half) <= 0 && !BN_is_zero(s);
    BN_free(half);
    BN_free(s);
    EC_GROUP_free(g);
    return low;
}

/* The library's verifier over the signer's public key. */
static es_status verify_with_point(const es_atp_gen_key *k, const uint8_t *msg, size_t len,
                                   const uint8_t sig[ESI_ATP_SIG_LEN])
{
    esi_atp_key *pub = NULL;
    assert_int_equal(esi_atp_key_from_point(es_atp_gen_key_curve(k), es_atp_gen_key_point(k), &pub),
                     ES_OK);
    es_status s = esi_atp_verify(pub, msg, len, sig, ESI_ATP_SIG_LEN);
    esi_atp_key_destroy(pub);
    return s;
}

/* ---- the signer ------------------------------------------------------------ */

/* RFC 6979 A.2.5 (P-256, SHA-256): the same r, and s or its low-S twin
 * n - s ("sample" has a high s, so the normalisation is exercised). */
static void rfc6979_p256_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *msg, *r, *s;
    } cases[] = {
        {"sample", "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
         /* n - F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8 */
         "0834E36AD29A83BF2BC9385E491D6099C8FDF9D1ED67AA7EA5F51F93782857A9"},
        {"test", "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
         "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"},
    };
    uint8_t secret[32], ux[32];
    from_hex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721", secret, 32);
    from_hex("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6", ux, 32);
    es_atp_gen_key *k = NULL;
    assert_int_equal(es_atp_gen_key_from_secret(ESI_ATP_P256, secret, &k), ES_OK);
    /* the public key's x, and y odd (Uy ends in 0x99): prefix 03 */
    assert_int_equal(es_atp_gen_key_point(k)[0], 0x03);
    assert_memory_equal(es_atp_gen_key_point(k) + 1, ux, 32);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t sig[ESI_ATP_SIG_LEN], r[32], s[32];
        from_hex(cases[i].r, r, 32);
        from_hex(cases[i].s, s, 32);
        const uint8_t *msg = (const uint8_t *)cases[i].msg;
        assert_int_equal(es_atp_gen_sign(k, msg, strlen(cases[i].msg), sig), ES_OK);
        assert_memory_equal(sig, r, 32);
        assert_memory_equal(sig + 32, s, 32);
        assert_true(low_s(ESI_ATP_P256, sig));
        assert_int_equal(verify_with_point(k, msg, strlen(cases[i].msg), sig), ES_OK);
    }
    es_atp_gen_key_destroy(k);
}

/* A private key of the vectors gives their did:key, and what it signs the
 * library verifies under that did:key. */
static void check_did_key(esi_atp_curve curve, const uint8_t secret[32], const char *did_key)
{
    es_atp_gen_key *k = NULL;
    assert_int_equal(es_atp_gen_key_from_secret(curve, secret, &k), ES_OK);
    char multikey[ES_ATP_GEN_MULTIKEY_MAX], text[ES_ATP_GEN_MULTIKEY_MAX + 8];
    assert_int_equal(es_atp_gen_key_multikey(k, multikey), ES_OK);
    snprintf(text, sizeof text, "did:key:%s", multikey);
    assert_string_equal(text, did_key);
    static const uint8_t msg[] = "\xa1\x65hello\x65world"; /* the fixtures' message */
    uint8_t sig[ESI_ATP_SIG_LEN];
    assert_int_equal(es_atp_gen_sign(k, msg, sizeof msg - 1, sig), ES_OK);
    assert_true(low_s(curve, sig));
    esi_atp_key *pub = NULL;
    assert_int_equal(esi_atp_key_from_did_key(did_key, strlen(did_key), &pub), ES_OK);
    assert_int_equal(esi_atp_verify(pub, msg, sizeof msg - 1, sig, sizeof sig), ES_OK);
    sig[5] ^= 1;
    assert_int_equal(esi_atp_verify(pub, msg, sizeof msg - 1, sig, sizeof sig), ES_ERR_CRYPTO);
    esi_atp_key_destroy(pub);
    es_atp_gen_key_destroy(k);
}

static void did_key_vectors(void **state)
{
    (void)state;
    json_t *k256 = fixture_json("atproto-interop/crypto/w3c_didkey_K256.json");
    json_t *p256 = fixture_json("atproto-interop/crypto/w3c_didkey_P256.json");
    if (k256 == NULL || p256 == NULL)
        skip();
    size_t i, n = 0;
    json_t *c;
    json_array_foreach(k256, i, c)
    {
        uint8_t secret[32];
        from_hex(json_string_value(json_object_get(c, "privateKeyBytesHex")), secret, 32);
        check_did_key(ESI_ATP_K256, secret, json_string_value(json_object_get(c, "publicDidKey")));
        n++;
    }
    json_array_foreach(p256, i, c)
    {
        const char *b58 = json_string_value(json_object_get(c, "privateKeyBytesBase58"));
        uint8_t secret[32];
        size_t len = 0;
        assert_int_equal(esi_atp_base58_decode(b58, strlen(b58), secret, sizeof secret, &len),
                         ES_OK);
        assert_int_equal(len, 32);
        check_did_key(ESI_ATP_P256, secret, json_string_value(json_object_get(c, "publicDidKey")));
        n++;
    }
    assert_int_equal(n, 6);
    json_decref(k256);
    json_decref(p256);
}

/* Many messages on both curves: every signature low-S, verified by the
 * library, the same on a second run (RFC 6979), refused for another message. */
static void low_s_deterministic_verified(void **state)
{
    (void)state;
    for (int curve = ESI_ATP_K256; curve <= ESI_ATP_P256; curve++) {
        es_atp_gen_key *k = NULL, *again = NULL;
        assert_int_equal(es_atp_gen_key_derive((esi_atp_curve)curve, "seed", 4, &k), ES_OK);
        assert_int_equal(es_atp_gen_key_derive((esi_atp_curve)curve, "seed", 4, &again), ES_OK);
        assert_memory_equal(es_atp_gen_key_point(k), es_atp_gen_key_point(again),
                            ESI_ATP_POINT_LEN);
        for (uint32_t i = 0; i < 300; i++) {
            uint8_t msg[4] = {(uint8_t)i, (uint8_t)(i >> 8), 0x5a, (uint8_t)curve};
            uint8_t sig[ESI_ATP_SIG_LEN], sig2[ESI_ATP_SIG_LEN];
            assert_int_equal(es_atp_gen_sign(k, msg, sizeof msg, sig), ES_OK);
            assert_int_equal(es_atp_gen_sign(again, msg, sizeof msg, sig2), ES_OK);
            assert_memory_equal(sig, sig2, sizeof sig);
            assert_true(low_s((esi_atp_curve)curve, sig));
            assert_int_equal(verify_with_point(k, msg, sizeof msg, sig), ES_OK);
            msg[2] ^= 1;
            assert_int_equal(verify_with_point(k, msg, sizeof msg, sig), ES_ERR_CRYPTO);
        }
        es_atp_gen_key_destroy(k);
        es_atp_gen_key_destroy(again);
    }
    /* a secret that is not below the order is refused */
    uint8_t ones[32];
    memset(ones, 0xff, sizeof ones);
    es_atp_gen_key *k = NULL;
    assert_int_equal(es_atp_gen_key_from_secret(ESI_ATP_P256, ones, &k), ES_ERR_INVALID);
    assert_int_equal(es_atp_gen_key_from_secret(ESI_ATP_K256, ones, &k), ES_ERR_INVALID);
    memset(ones, 0, sizeof ones);
    assert_int_equal(es_atp_gen_key_from_secret(ESI_ATP_P256, ones, &k), ES_ERR_INVALID);
    assert_null(k);
}

/* ---- signed captures ------------------------------------------------------- */

#define REPOS  12
#define FRAMES 1500

/* The generator's documents as they are now, through a file and the
 * identity layer's loader (as es-atproto-ingest --did-docs reads them). */
static void load_docs(es_atp_gen *g, doc_set *d)
{
    es_buf text = ES_BUF_INIT;
    assert_int_equal(es_atp_gen_did_docs(g, &text), ES_OK);
    char path[] = "/tmp/test_atproto_gen_sign.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text.data, text.len), (ssize_t)text.len);
    close(fd);
    size_t count = 0;
    d->n = 0;
    assert_int_equal(esi_atp_did_docs_load(path, doc_set_keep, d, &count), ES_OK);
    unlink(path);
    assert_int_equal(count, es_atp_gen_repo_count(g));
    es_buf_free(&text);
}

/* The signing key of `did`'s document (the caller destroys it). */
static esi_atp_key *doc_key(const doc_set *d, const char *did)
{
    const esi_atp_did_doc *doc = doc_set_find(d, did);
    if (doc == NULL)
        fail_msg("no document for %s", did);
    esi_atp_key *k = NULL;
    assert_int_equal(esi_atp_did_doc_key(doc, &k), ES_OK);
    return k;
}

static const es_value *field(const es_value *map, const char *key)
{
    const es_value *v = es_value_get(map, key);
    if (v == NULL)
        fail_msg("no `%s`", key);
    return v;
}

static bool str_is(const es_value *v, const char *s)
{
    return v->kind == ES_VALUE_STRING && v->u.str.len == strlen(s) &&
           memcmp(v->u.str.ptr, s, v->u.str.len) == 0;
}

static const uint8_t *link_of(const es_value *v, size_t *len)
{
    *len = v != NULL && v->kind == ES_VALUE_LINK ? v->u.bytes.len : 0;
    return *len ? v->u.bytes.ptr : NULL;
}

/* What one account's history shows about its key: the last commit signed
 * before its first #identity and the first after it. */
typedef struct account {
    char did[64];
    bool identity_seen;
    es_buf before, after; /* commit blocks */
    char rev[16];         /* of its last #commit or #sync; "" before */
    uint8_t data[ES_CID_SHA256_LEN]; /* MST root of its last commit */
} account;

typedef struct capture_check {
    account acct[REPOS];
    size_t accounts, commits, syncs, inverted, curves[3];
} capture_check;

static account *account_of(capture_check *c, const char *did, size_t len)
{
    for (size_t i = 0; i < c->accounts; i++)
        if (strlen(c->acct[i].did) == len && memcmp(c->acct[i].did, did, len) == 0)
            return &c->acct[i];
    assert_true(c->accounts < REPOS && len < sizeof c->acct[0].did);
    account *a = &c->acct[c->accounts++];
    memcpy(a->did, did, len);
    a->did[len] = '\0';
    return a;
}

/* The commit block's signature verifies with the key of the document that
 * holds at this point of the account's history, and is low-S. */
static void check_signature(capture_check *c, account *acct, const es_car_block *b,
                            const doc_set *initial, const doc_set *rotated, es_arena *a)
{
    esi_atp_key *key = doc_key(acct->identity_seen ? rotated : initial, acct->did);
    es_status s = esi_atp_commit_verify(b->data, b->len, key, a);
    if (s != ES_OK)
        fail_msg("%s: %s", acct->did, es_last_error());
    es_value *commit = NULL;
    assert_int_equal(es_cbor_decode(b->data, b->len, NULL, a, &commit, NULL), ES_OK);
    assert_int_equal(field(commit, "version")->u.i, 3);
    assert_int_equal(field(commit, "prev")->kind, ES_VALUE_NULL);
    const es_value *sig = field(commit, "sig");
    assert_int_equal(sig->u.bytes.len, ESI_ATP_SIG_LEN);
    assert_true(low_s(esi_atp_key_curve(key), sig->u.bytes.ptr));
    c->curves[esi_atp_key_curve(key)]++;
    es_buf *keep = acct->identity_seen ? &acct->after : &acct->before;
    if (!acct->identity_seen || keep->len == 0) {
        es_buf_clear(keep);
        assert_int_equal(es_buf_append(keep, b->data, b->len), ES_OK);
    }
    esi_atp_key_destroy(key);
}

/* Sync 1.1: the commit's ops undone on its new tree give prevData. */
static void check_inverts(capture_check *c, const es_value *body, const es_car *car,
                          const es_car_block *commit_block, es_arena *a)
{
    es_value *commit = NULL;
    assert_int_equal(es_cbor_decode(commit_block->data, commit_block->len, NULL, a, &commit, NULL),
                     ES_OK);
    const es_value *ops = field(body, "ops");
    esi_atp_op op[4];
    size_t n = ops->u.array.count, data_len, prev_len;
    assert_true(n >= 1 && n <= 4);
    for (size_t i = 0; i < n; i++) {
        const es_value *o = &ops->u.array.items[i];
        const es_value *action = field(o, "action"), *path = field(o, "path");
        op[i].action = str_is(action, "create")   ? ESI_ATP_CREATE
                       : str_is(action, "update") ? ESI_ATP_UPDATE
                                                  : ESI_ATP_DELETE;
        op[i].path = path->u.str.ptr;
        op[i].path_len = path->u.str.len;
        op[i].cid = link_of(es_value_get(o, "cid"), &op[i].cid_len);
        op[i].prev = link_of(es_value_get(o, "prev"), &op[i].prev_len);
    }
    const uint8_t *data = link_of(field(commit, "data"), &data_len);
    const uint8_t *prev_data = link_of(field(body, "prevData"), &prev_len);
    esi_atp_refusal why = ESI_ATP_REFUSAL_NONE;
    es_status s = esi_atp_invert(car, data, data_len, prev_data, prev_len, op, n, &why);
    if (s != ES_OK)
        fail_msg("commit does not invert: %s (%s)", esi_atp_refusal_name(why), es_last_error());
    c->inverted++;
}

/* The chain a relay checks (Sync 1.1): a #commit's `since` is the
 * account's previous rev (null at first) and its prevData the previous MST
 * root (the empty tree's at first); the commit block names the account, the
 * frame's rev and the tree. */
static void check_chain(account *acct, const es_value *body, const es_car_block *b, bool sync,
                        es_arena *a)
{
    static const char empty_tree[] = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
    es_value *commit = NULL;
    assert_int_equal(es_cbor_decode(b->data, b->len, NULL, a, &commit, NULL), ES_OK);
    assert_true(str_is(field(commit, "did"), acct->did));
    const es_value *rev = field(body, "rev");
    assert_true(rev->kind == ES_VALUE_STRING && rev->u.str.len < sizeof acct->rev);
    assert_int_equal(field(commit, "rev")->u.str.len, rev->u.str.len);
    assert_memory_equal(field(commit, "rev")->u.str.ptr, rev->u.str.ptr, rev->u.str.len);
    size_t data_len, prev_len;
    const uint8_t *data = link_of(field(commit, "data"), &data_len);
    assert_int_equal(data_len, ES_CID_SHA256_LEN);
    if (!sync) {
        const uint8_t *prev = link_of(field(body, "prevData"), &prev_len);
        char text[ES_CID_STRING_MAX];
        assert_int_equal(prev_len, ES_CID_SHA256_LEN);
        assert_int_equal(es_cid_to_string(prev, prev_len, text, sizeof text), ES_OK);
        if (acct->rev[0] == '\0') {
            assert_int_equal(field(body, "since")->kind, ES_VALUE_NULL);
            assert_string_equal(text, empty_tree);
        } else {
            assert_true(str_is(field(body, "since"), acct->rev));
            assert_memory_equal(prev, acct->data, ES_CID_SHA256_LEN);
        }
        assert_true(strncmp(acct->rev, rev->u.str.ptr, rev->u.str.len) < 0); /* revs increase */
    } else {
        assert_memory_equal(data, acct->data, ES_CID_SHA256_LEN); /* a #sync keeps the tree */
    }
    memcpy(acct->rev, rev->u.str.ptr, rev->u.str.len);
    acct->rev[rev->u.str.len] = '\0';
    memcpy(acct->data, data, ES_CID_SHA256_LEN);
}

/* One frame: #identity marks the account, #commit and #sync are checked. */
static void check_frame(capture_check *c, const es_buf *frame, const doc_set *initial,
                        const doc_set *rotated, es_arena *a)
{
    es_value *header = NULL, *body = NULL;
    size_t used = 0;
    assert_int_equal(es_cbor_decode(frame->data, frame->len, NULL, a, &header, &used), ES_OK);
    assert_int_equal(es_cbor_decode(frame->data + used, frame->len - used, NULL, a, &body, NULL),
                     ES_OK);
    const es_value *t = field(header, "t");
    bool commit = str_is(t, "#commit"), sync = str_is(t, "#sync");
    if (str_is(t, "#identity")) {
        const es_value *did = field(body, "did");
        account_of(c, did->u.str.ptr, did->u.str.len)->identity_seen = true;
    }
    if (!commit && !sync)
        return;
    const es_value *did = field(body, commit ? "repo" : "did"), *blocks = field(body, "blocks");
    account *acct = account_of(c, did->u.str.ptr, did->u.str.len);
    es_car car;
    assert_int_equal(es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, NULL, a, &car), ES_OK);
    assert_int_equal(car.root_count, 1);
    const es_car_block *b = es_car_find(&car, car.roots[0], car.root_lens[0]);
    assert_non_null(b);
    check_signature(c, acct, b, initial, rotated, a);
    check_chain(acct, body, b, sync, a);
    if (sync) {
        c->syncs++;
        return;
    }
    c->commits++;
    check_inverts(c, body, &car, b, a);
}

/* A commit signed with the old key fails against the rotated document, and
 * one signed with the new key against the initial document. */
static size_t check_rotations(capture_check *c, const doc_set *initial, const doc_set *rotated,
                              es_arena *a)
{
    size_t proven = 0;
    for (size_t i = 0; i < c->accounts; i++) {
        account *acct = &c->acct[i];
        esi_atp_key *old = doc_key(initial, acct->did), *cur = doc_key(rotated, acct->did);
        bool rotated_key =
            memcmp(esi_atp_key_point(old), esi_atp_key_point(cur), ESI_ATP_POINT_LEN) != 0;
        if (rotated_key && acct->before.len > 0 && acct->after.len > 0) {
            assert_int_equal(esi_atp_commit_verify(acct->before.data, acct->before.len, cur, a),
                             ES_ERR_CRYPTO);
            assert_int_equal(esi_atp_commit_verify(acct->after.data, acct->after.len, old, a),
                             ES_ERR_CRYPTO);
            assert_int_equal(esi_atp_commit_verify(acct->before.data, acct->before.len, old, a),
                             ES_OK);
            assert_int_equal(esi_atp_commit_verify(acct->after.data, acct->after.len, cur, a),
                             ES_OK);
            proven++;
        }
        assert_true(rotated_key ? acct->identity_seen : true);
        esi_atp_key_destroy(old);
        esi_atp_key_destroy(cur);
        es_buf_free(&acct->before);
        es_buf_free(&acct->after);
    }
    return proven;
}

/* FRAMES frames of `curves` with rotations; everything checked; the decoder
 * takes every frame too. */
static void signed_capture(es_atp_gen_curves curves)
{
    es_atp_gen *g = NULL;
    es_atp_gen_options o = {.seed = 5, .repos = REPOS, .curves = curves, .rotate_permille = 10};
    assert_int_equal(es_atp_gen_create(&o, &g), ES_OK);
    doc_set initial = {0}, rotated = {0};
    load_docs(g, &initial);
    es_buf frames[FRAMES];
    for (size_t i = 0; i < FRAMES; i++) {
        frames[i] = (es_buf)ES_BUF_INIT;
        assert_int_equal(es_atp_gen_next(g, &frames[i]), ES_OK);
    }
    load_docs(g, &rotated);
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_atp_decoder *d = NULL;
    es_atp_options opts = {.verify_all_blocks = true};
    assert_int_equal(es_atp_decoder_create(&opts, &d), ES_OK);
    capture_check c = {0};
    for (size_t i = 0; i < FRAMES; i++) {
        es_arena_reset(a);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(d, frames[i].data, frames[i].len, a, &b), ES_OK);
        es_arena_reset(a);
        check_frame(&c, &frames[i], &initial, &rotated, a);
        es_buf_free(&frames[i]);
    }
    es_arena_reset(a);
    size_t proven = check_rotations(&c, &initial, &rotated, a);
    const es_atp_gen_counts *n = es_atp_gen_counts_of(g);
    printf("curves %d: %zu commits and %zu #sync verified (K-256 %zu, P-256 %zu), %zu inverted, "
           "%zu rotations, %zu proven by old/new key\n",
           (int)curves, c.commits, c.syncs, c.curves[ESI_ATP_K256], c.curves[ESI_ATP_P256],
           c.inverted, n->rotations, proven);
    assert_int_equal(c.commits, n->commits);
    assert_int_equal(c.syncs, n->sync);
    assert_int_equal(c.inverted, n->commits);
    assert_true(n->sync > 0 && n->rotations > 0 && proven > 0);
    if (curves != ES_ATP_GEN_CURVES_P256)
        assert_true(c.curves[ESI_ATP_K256] > 0);
    if (curves != ES_ATP_GEN_CURVES_K256)
        assert_true(c.curves[ESI_ATP_P256] > 0);
    if (curves == ES_ATP_GEN_CURVES_K256)
        assert_int_equal(c.curves[ESI_ATP_P256], 0);
    if (curves == ES_ATP_GEN_CURVES_P256)
        assert_int_equal(c.curves[ESI_ATP_K256], 0);
    es_atp_decoder_destroy(d);
    es_arena_destroy(a);
    doc_set_free(&initial);
    doc_set_free(&rotated);
    es_atp_gen_destroy(g);
}

static void capture_k256(void **state)
{
    (void)state;
    signed_capture(ES_ATP_GEN_CURVES_K256);
}

static void capture_p256(void **state)
{
    (void)state;
    signed_capture(ES_ATP_GEN_CURVES_P256);
}

static void capture_mixed(void **state)
{
    (void)state;
    signed_capture(ES_ATP_GEN_CURVES_MIXED);
}

/* The same options give the same bytes, signatures and documents included,
 * on every curve; another seed other bytes. Signing does not change the
 * traffic: the unsigned capture of the same seed has the same ops. */
static void deterministic(void **state)
{
    (void)state;
    for (int curves = ES_ATP_GEN_CURVES_MIXED; curves <= ES_ATP_GEN_CURVES_P256; curves++) {
        es_atp_gen_options o = {
            .seed = 9, .repos = 8, .curves = (es_atp_gen_curves)curves, .rotate_permille = 20};
        uint8_t a[ES_CID_SHA256_LEN], b[ES_CID_SHA256_LEN], c[ES_CID_SHA256_LEN];
        es_atp_gen_counts ca, cb, cc;
        gen_digest(o, 400, a, &ca);
        gen_digest(o, 400, b, &cb);
        assert_memory_equal(a, b, sizeof a);
        assert_true(ca.rotations > 0);
        o.seed = 10;
        gen_digest(o, 400, c, &cc);
        assert_memory_not_equal(a, c, sizeof a);
    }
    es_atp_gen_options o = {.seed = 9, .repos = 8};
    uint8_t a[ES_CID_SHA256_LEN], b[ES_CID_SHA256_LEN];
    es_atp_gen_counts ca, cb;
    gen_digest(o, 400, a, &ca);
    o.unsigned_commits = true;
    gen_digest(o, 400, b, &cb);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_equal(&ca, &cb, sizeof ca);
}

/* An unsigned capture's commits do not verify: `sig` is random bytes. */
static void unsigned_capture(void **state)
{
    (void)state;
    es_atp_gen *g = NULL;
    es_atp_gen_options o = {.seed = 3, .repos = REPOS, .unsigned_commits = true};
    assert_int_equal(es_atp_gen_create(&o, &g), ES_OK);
    doc_set d = {0};
    es_buf frame = ES_BUF_INIT;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    size_t refused = 0;
    for (int i = 0; i < 50; i++) {
        es_buf_clear(&frame);
        assert_int_equal(es_atp_gen_next(g, &frame), ES_OK);
        es_arena_reset(a);
        es_value *h = NULL, *body = NULL;
        size_t used = 0;
        assert_int_equal(es_cbor_decode(frame.data, frame.len, NULL, a, &h, &used), ES_OK);
        if (!str_is(field(h, "t"), "#commit"))
            continue;
        assert_int_equal(es_cbor_decode(frame.data + used, frame.len - used, NULL, a, &body, NULL),
                         ES_OK);
        const es_value *blocks = field(body, "blocks"), *did = field(body, "repo");
        es_car car;
        assert_int_equal(es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, NULL, a, &car),
                         ES_OK);
        const es_car_block *b = es_car_find(&car, car.roots[0], car.root_lens[0]);
        if (d.n == 0)
            load_docs(g, &d);
        char did_text[64];
        snprintf(did_text, sizeof did_text, "%.*s", (int)did->u.str.len, did->u.str.ptr);
        esi_atp_key *k = doc_key(&d, did_text);
        assert_int_equal(esi_atp_commit_verify(b->data, b->len, k, a), ES_ERR_CRYPTO);
        esi_atp_key_destroy(k);
        refused++;
    }
    assert_true(refused > 10);
    doc_set_free(&d);
    es_buf_free(&frame);
    es_arena_destroy(a);
    es_atp_gen_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6979_p256_vectors),
        cmocka_unit_test(did_key_vectors),
        cmocka_unit_test(low_s_deterministic_verified),
        cmocka_unit_test(capture_k256),
        cmocka_unit_test(capture_p256),
        cmocka_unit_test(capture_mixed),
        cmocka_unit_test(deterministic),
        cmocka_unit_test(unsigned_capture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
