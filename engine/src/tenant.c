/* Tenant handles: a copy of a store handle's fields with a tenant, sharing
 * everything the store handle owns. */
#include <es/tenant.h>

#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "store_impl.h"

es_status es_store_tenant(es_store *st, const char *tenant, es_store **out)
{
    if (out != NULL)
        *out = NULL;
    if (st == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_store_tenant: store and out are required");
    if (!st->config.tenancy)
        return es_error(ES_ERR_INVALID, "store '%s' has no tenancy", st->name);
    if (!es_valid_name(tenant))
        return es_error(ES_ERR_INVALID, "invalid tenant '%.64s'", tenant ? tenant : "(null)");
    es_store *t = esi_malloc(sizeof *t);
    if (t == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    *t = *st; /* pointers to what the store owns; the store outlives the view */
    t->root = st->root ? st->root : st;
    memcpy(t->tenant, tenant, strlen(tenant) + 1); /* a valid name fits */
    *out = t;
    return ES_OK;
}

const char *es_store_tenant_name(const es_store *st)
{
    return st != NULL && st->root != NULL ? st->tenant : NULL;
}

es_status esi_store_tenant_of(const es_store *st, const char *given, const char **out)
{
    *out = given;
    if (st->root == NULL)
        return ES_OK;
    if (given != NULL && strcmp(given, st->tenant) != 0)
        return es_error(ES_ERR_INVALID, "this handle is confined to tenant '%s', not '%.64s'",
                        st->tenant, given);
    *out = st->tenant;
    return ES_OK;
}

es_status esi_tenant_check(const es_store *st, const char *given, size_t index)
{
    if (given != NULL && !st->config.tenancy)
        return es_error(ES_ERR_INVALID,
                        "event %zu: store '%s' has no tenancy but a tenant was given", index,
                        st->name);
    const char *tenant;
    if (esi_store_tenant_of(st, given, &tenant) != ES_OK)
        return es_error(ES_ERR_INVALID, "event %zu: %s", index, es_last_error());
    if (st->config.tenancy && !es_valid_name(tenant))
        return es_error(ES_ERR_INVALID,
                        "event %zu: store '%s' uses tenancy: a valid tenant is required", index,
                        st->name);
    return ES_OK;
}

es_status esi_store_whole(const es_store *st, const char *call)
{
    if (st != NULL && st->root != NULL)
        return es_error(ES_ERR_INVALID, "%s: a tenant handle ('%s') cannot change the whole store",
                        call, st->tenant);
    return ES_OK;
}
