/* DID documents a test holds, read through the identity layer's loader (the
 * one parser of DID documents): doc_set_keep is esi_atp_did_docs_load's
 * callback. */
#ifndef ES_ATP_TEST_DOC_SET_H
#define ES_ATP_TEST_DOC_SET_H

#include <stddef.h>
#include <string.h>

#include "identity.h"

#define DOC_SET_MAX 1024

typedef struct doc_set {
    esi_atp_did_doc *doc[DOC_SET_MAX];
    size_t n;
} doc_set;

/* Keeps `doc` (taken); ES_ERR_LIMIT past DOC_SET_MAX documents. */
static inline es_status doc_set_keep(void *ctx, esi_atp_did_doc *doc)
{
    doc_set *d = ctx;
    if (d->n == DOC_SET_MAX) {
        esi_atp_did_doc_destroy(doc);
        return ES_ERR_LIMIT;
    }
    d->doc[d->n++] = doc;
    return ES_OK;
}

/* `did`'s document, or NULL. */
static inline const esi_atp_did_doc *doc_set_find(const doc_set *d, const char *did)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->doc[i]->did, did) == 0)
            return d->doc[i];
    return NULL;
}

static inline void doc_set_free(doc_set *d)
{
    for (size_t i = 0; i < d->n; i++)
        esi_atp_did_doc_destroy(d->doc[i]);
    d->n = 0;
}

#endif
