/* The signature of a commit block (atproto repository spec, "Commit
 * Objects"): `sig` signs the DAG-CBOR encoding of the commit map without its
 * `sig` entry. The strict decoder refuses any non-canonical encoding, so
 * re-encoding the remaining entries yields the one byte string a signer can
 * have produced. */
#include "atp_sig.h"

#include <es/buf.h>
#include <es/cbor.h>

#include <string.h>

#include "atp_internal.h"

#define COMMIT_MAX_DEPTH 4 /* a commit is a flat map: deeper nesting is not a commit */

/* The commit map without its `sig` entry, in `arena` (entries shared). */
static es_status unsigned_commit(const es_value *commit, const es_value *sig, es_arena *arena,
                                 es_value **out)
{
    es_value *copy = es_value_new_map(arena, commit->u.map.count - 1);
    if (copy == NULL)
        return es_error(ES_ERR_NOMEM, "commit: arena full");
    size_t n = 0;
    for (size_t i = 0; i < commit->u.map.count; i++)
        if (&commit->u.map.entries[i].value != sig)
            copy->u.map.entries[n++] = commit->u.map.entries[i];
    copy->u.map.count = n;
    *out = copy;
    return ES_OK;
}

es_status esi_atp_commit_verify(const uint8_t *block, size_t len, const esi_atp_key *key,
                                es_arena *arena)
{
    if (block == NULL || key == NULL || arena == NULL)
        return es_error(ES_ERR_INVALID, "commit signature: NULL argument");
    es_value *commit = NULL;
    es_status s = esi_atp_decode_exact(block, len, COMMIT_MAX_DEPTH, arena, &commit);
    if (s != ES_OK) /* out of memory stays itself: not the block's fault */
        return esi_atp_error_wrap(s == ES_ERR_NOMEM ? s : ES_ERR_DECODE, "commit block");
    const es_value *sig = es_value_get(commit, "sig");
    if (sig == NULL || sig->kind != ES_VALUE_BYTES)
        return es_error(ES_ERR_DECODE, "commit block: no `sig` byte string");
    if (commit->u.map.count < 2)
        return es_error(ES_ERR_DECODE, "commit block: nothing but `sig`");
    es_value *bare = NULL;
    if ((s = unsigned_commit(commit, sig, arena, &bare)) != ES_OK)
        return s;
    es_buf unsigned_bytes = ES_BUF_INIT;
    s = es_cbor_encode(bare, NULL, &unsigned_bytes);
    if (s == ES_OK)
        s = esi_atp_verify(key, unsigned_bytes.data, unsigned_bytes.len, sig->u.bytes.ptr,
                           sig->u.bytes.len);
    es_buf_free(&unsigned_bytes);
    return s;
}
