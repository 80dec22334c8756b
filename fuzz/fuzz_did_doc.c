/* Target `did_doc`: DID documents, as a PLC directory, a did:web host or a
 * `--did-docs` file hands them over (atproto/src/identity.h). The input is
 * the JSON text, in a buffer of exactly its length.
 *
 * Properties: what a parsed document keeps is what the rules allow — a valid
 * DID, a valid lower-case handle, a base58btc key with a known type, an
 * http(s) PDS — and a copy holds the same. */
#include <string.h>

#include "atproto/src/atp_internal.h"
#include "atproto/src/identity.h"
#include "fuzz.h"

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check(const esi_atp_did_doc *d)
{
    FUZZ_CHECK(d->did != NULL && es_atp_valid_did(d->did, strlen(d->did)));
    if (d->handle != NULL) {
        FUZZ_CHECK(es_atp_valid_handle(d->handle, strlen(d->handle)));
        for (const char *p = d->handle; *p; p++)
            FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
    }
    FUZZ_CHECK((d->signing_key == NULL) == (d->key_type == NULL));
    if (d->signing_key != NULL)
        FUZZ_CHECK(d->signing_key[0] == 'z');
    if (d->pds != NULL)
        FUZZ_CHECK(strncmp(d->pds, "https://", 8) == 0 || strncmp(d->pds, "http://", 7) == 0);
    esi_atp_did_doc *c = NULL;
    if (esi_atp_did_doc_copy(d, &c) != ES_OK)
        return;
    FUZZ_CHECK(same(c->did, d->did) && same(c->handle, d->handle) &&
               same(c->signing_key, d->signing_key) && same(c->key_type, d->key_type) &&
               same(c->pds, d->pds));
    esi_atp_did_doc_destroy(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = (char *)fuzz_copy(data, size);
    esi_atp_did_doc *d = NULL;
    if (esi_atp_did_doc_parse(text, size, &d) == ES_OK) {
        check(d);
        esi_atp_did_doc_destroy(d);
    }
    free(text);
    return 0;
}
