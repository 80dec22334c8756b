/* Tenant-scoped handles (es_store_tenant) and a NATS user confined to one
 * tenant's subjects. */
#include "harness.h"

int conf_run_tenant(void)
{
    return 0;
}
