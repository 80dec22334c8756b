/* Target `sig`: the signature primitives of libes-atproto
 * (atproto/src/atp_sig.h) on hostile keys, signatures, commit blocks and DID
 * documents. The first byte picks what the rest is read as:
 *   0  base58btc text, decoded into a buffer of exactly 40 bytes
 *   1  a Multikey text        2  a did:key text
 *   3  a commit block, checked with a fixed K-256 key, then a P-256 one
 *   4  a DID document (JSON), its #atproto key
 *   5  64 bytes of signature then a message, checked with both fixed keys
 * Properties: an accepted key is on one of the two curves and its point
 * rebuilds the same key; base58 output never exceeds its buffer; nothing the
 * fuzzer builds verifies (it would have forged a signature), except by
 * re-signing, which it cannot do. */
#include <string.h>

#include <es/json.h>

#include "atp_sig.h"
#include "identity.h"
#include "fuzz.h"

/* The interop fixtures' did:keys (a K-256 and a P-256 public key). */
static const char k256_did[] = "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc";
static const char p256_did[] = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo";
static esi_atp_key *keys[2];

static void free_keys(void)
{
    esi_atp_key_destroy(keys[0]);
    esi_atp_key_destroy(keys[1]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (esi_atp_key_from_did_key(k256_did, strlen(k256_did), &keys[0]) != ES_OK ||
        esi_atp_key_from_did_key(p256_did, strlen(p256_did), &keys[1]) != ES_OK)
        abort();
    atexit(free_keys);
    return 0;
}

static void check_key(es_status s, esi_atp_key *k)
{
    if (s != ES_OK) {
        FUZZ_CHECK(k == NULL);
        return;
    }
    esi_atp_curve c = esi_atp_key_curve(k);
    FUZZ_CHECK(c == ESI_ATP_K256 || c == ESI_ATP_P256);
    esi_atp_key *again = NULL;
    FUZZ_CHECK(esi_atp_key_from_point(c, esi_atp_key_point(k), &again) == ES_OK);
    FUZZ_CHECK(memcmp(esi_atp_key_point(again), esi_atp_key_point(k), ESI_ATP_POINT_LEN) == 0);
    esi_atp_key_destroy(again);
    esi_atp_key_destroy(k);
}

static void check_commit(const uint8_t *data, size_t size)
{
    for (int i = 0; i < 2; i++) {
        es_arena *arena = fuzz_arena();
        es_status s = esi_atp_commit_verify(data, size, keys[i], arena);
        FUZZ_CHECK(s != ES_OK);
        es_arena_destroy(arena);
    }
}

static void check_did_doc(const uint8_t *data, size_t size)
{
    esi_atp_did_doc *doc = NULL;
    esi_atp_key *k = NULL;
    if (esi_atp_did_doc_parse((const char *)data, size, &doc) == ES_OK)
        check_key(esi_atp_did_doc_key(doc, &k), k);
    esi_atp_did_doc_destroy(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t *in = fuzz_copy(data + 1, size - 1);
    size_t n = size - 1;
    esi_atp_key *k = NULL;
    switch (data[0] % 6) {
    case 0: {
        uint8_t *out = malloc(40);
        size_t len = 0;
        if (out == NULL)
            abort();
        if (esi_atp_base58_decode((const char *)in, n, out, 40, &len) == ES_OK)
            FUZZ_CHECK(len <= 40);
        free(out);
        break;
    }
    case 1:
        check_key(esi_atp_key_from_multikey((const char *)in, n, &k), k);
        break;
    case 2:
        check_key(esi_atp_key_from_did_key((const char *)in, n, &k), k);
        break;
    case 3:
        check_commit(in, n);
        break;
    case 4:
        check_did_doc(in, n);
        break;
    default:
        for (int i = 0; i < 2 && n >= ESI_ATP_SIG_LEN; i++)
            FUZZ_CHECK(esi_atp_verify(keys[i], in + ESI_ATP_SIG_LEN, n - ESI_ATP_SIG_LEN, in,
                                      ESI_ATP_SIG_LEN) != ES_OK);
        break;
    }
    free(in);
    return 0;
}
