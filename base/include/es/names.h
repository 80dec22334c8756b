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
#define ES_NAME_MAX       128 /* event type, tenant, metadata key */
/* Entity type: as long as the longest valid ATProto NSID (317 characters), so
 * that every collection maps to an entity type. Its subject still fits the
 * server's 4096-byte control line: see docs/wire-format.md, "Limits". */
#define ES_ENTITY_TYPE_MAX 317

/* True for a valid store name: [A-Za-z0-9_-]{1,32}. */
ES_API bool es_valid_store_name(const char *name);
/* True for a valid event type, tenant or metadata key: [A-Za-z0-9_-]{1,128}. */
ES_API bool es_valid_name(const char *name);
/* True for a valid entity type: [A-Za-z0-9_-]{1,317}. */
ES_API bool es_valid_entity_type(const char *name);

#ifdef __cplusplus
}
#endif
#endif
