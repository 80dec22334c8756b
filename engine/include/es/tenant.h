/* Tenant handles: a view of a store with tenancy that every call made
 * through it confines to one tenant's subjects, $ES.<store>.<tenant>.> (as
 * Rita's EventStore.Tenant). Appends, reads, watches, projections, imports
 * and the store's inspection through it fill in the tenant where a spec or
 * filter leaves it NULL, and refuse another tenant with ES_ERR_INVALID
 * before anything is sent. docs/api.md ("Tenants") lists the NATS
 * permissions that confine a tenant's user on the server as well. */
#ifndef ES_TENANT_H
#define ES_TENANT_H

#include <es/export.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A handle on `store` confined to `tenant` (a name, es/names.h). `store`
 * may itself be a tenant handle: the new one is then of the same store,
 * for `tenant` alone (re-scoping replaces, it does not nest). The new
 * handle shares the store's connection, publisher and keys, is as
 * thread-safe as the store, and must be destroyed (es_store_destroy, which
 * frees the view only) before the store it was made from. It keeps the
 * store's configuration as it was when made: an es_store_update made
 * afterwards (through the store handle) is not seen by it. ES_ERR_INVALID
 * for a store without tenancy or a bad name. The caller owns *out. */
ES_API es_status es_store_tenant(es_store *store, const char *tenant, es_store **out);

/* The tenant a handle is confined to, or NULL for a store handle. The
 * string belongs to the handle. */
ES_API const char *es_store_tenant_name(const es_store *store);

#ifdef __cplusplus
}
#endif
#endif
