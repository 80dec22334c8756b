/* Schema upcasting: events carry an optional `Es-Schema` version (absent
 * means 1); users register functions turning an event's bytes at version N
 * into bytes at version N+1, and reads apply them in a chain until none
 * matches, so old events reach the application in today's shape. */
#ifndef ES_UPCAST_H
#define ES_UPCAST_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/buf.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Turns `in` (an event at version N) into its version N+1 form, appended to
 * `out` (empty on entry). A status other than ES_OK stops the read with that
 * status. Must not keep `in` or `out` beyond the call. May run on several
 * threads at once (it is called from reads). */
typedef es_status (*es_upcast_fn)(void *ctx, const uint8_t *in, size_t len, es_buf *out);

typedef struct es_upcasters es_upcasters;

/* An empty registry. A chain applies at most `max_chain` upcasters (0: 16);
 * one more match is ES_ERR_LIMIT. The caller owns *out. */
ES_API es_status es_upcasters_create(unsigned max_chain, es_upcasters **out);

/* Accepts NULL. */
ES_API void es_upcasters_destroy(es_upcasters *r);

/* Registers fn for events `event_type` of entities `entity_type` (both
 * names: [A-Za-z0-9_-]{1,128}) at `from_version` (1 .. UINT32_MAX-1).
 * ES_ERR_EXISTS when that triple has one already. Not thread-safe: register everything before
 * the registry is used for reading. `ctx` is passed to fn as is. */
ES_API es_status es_upcasters_add(es_upcasters *r, const char *entity_type, const char *event_type,
                           uint32_t from_version, es_upcast_fn fn, void *ctx);

/* Applies the chain to `in` at *version. `out` receives the final bytes
 * (a copy of `in` when nothing matched) and *version their version. Every
 * intermediate and final result is bounded by `max_len` (ES_ERR_LIMIT). */
ES_API es_status es_upcast(const es_upcasters *r, const char *entity_type, const char *event_type,
                    uint32_t *version, const uint8_t *in, size_t len, size_t max_len, es_buf *out);

#ifdef __cplusplus
}
#endif
#endif
