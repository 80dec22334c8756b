/* Names: what the library accepts as a store name, and as an entity type,
 * event type, tenant or metadata key. Names travel as NATS subject tokens and
 * KV bucket names, so they are restricted to [A-Za-z0-9_-]; arbitrary bytes
 * (entity ids) are escaped instead (es/subject.h, es/kvkey.h). */
#ifndef ES_NAMES_H
#define ES_NAMES_H

#include <stdbool.h>

#include <es/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ES_STORE_NAME_MAX 32  /* store name */
#define ES_NAME_MAX       128 /* entity type, event type, tenant */

/* True for a valid store name: [A-Za-z0-9_-]{1,32}. */
ES_API bool es_valid_store_name(const char *name);
/* True for a valid entity type, event type or tenant: [A-Za-z0-9_-]{1,128}. */
ES_API bool es_valid_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif
