/* DID documents, only as far as signature checks need them: the atproto
 * signing key (atproto identity spec: the `verificationMethod` entry whose
 * id ends with "#atproto", its `publicKeyMultibase`). Resolution and caching
 * of documents belong elsewhere; this file is where document parsing grows. */
#include "atp_sig.h"

#include <string.h>

#include "atp_internal.h"

#define ATPROTO_FRAGMENT "#atproto"

static bool is_atproto_method(const es_value *method)
{
    const es_value *id = es_value_get(method, "id");
    size_t n = sizeof ATPROTO_FRAGMENT - 1;
    return id != NULL && id->kind == ES_VALUE_STRING && id->u.str.len >= n &&
           memcmp(id->u.str.ptr + id->u.str.len - n, ATPROTO_FRAGMENT, n) == 0;
}

es_status esi_atp_diddoc_signing_key(const es_value *doc, esi_atp_key **out)
{
    if (doc == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "DID document: NULL argument");
    const es_value *methods = es_value_get(doc, "verificationMethod");
    if (methods == NULL || methods->kind != ES_VALUE_ARRAY)
        return es_error(ES_ERR_NOT_FOUND, "DID document: no verificationMethod array");
    for (size_t i = 0; i < methods->u.array.count; i++) {
        const es_value *m = &methods->u.array.items[i];
        if (!is_atproto_method(m))
            continue;
        const es_value *mb = es_value_get(m, "publicKeyMultibase");
        if (mb == NULL || mb->kind != ES_VALUE_STRING)
            return es_error(ES_ERR_DECODE, "DID document: #atproto has no publicKeyMultibase");
        es_status s = esi_atp_key_from_multikey(mb->u.str.ptr, mb->u.str.len, out);
        return s == ES_OK ? s : esi_atp_error_wrap(s, "DID document #atproto key");
    }
    return es_error(ES_ERR_NOT_FOUND, "DID document: no #atproto verification method");
}
