/* What the components above base need of an arena beyond es/arena.h
 * (private): why an allocation from it returned NULL. */
#ifndef ES_BASE_ARENA_H
#define ES_BASE_ARENA_H

#include <es/arena.h>
#include <es/status.h>

/* The error for the first allocation from `a` that returned NULL since the
 * last call (or reset), recorded as the thread's last error prefixed with
 * `what`: ES_ERR_NOMEM when memory ran out, ES_ERR_LIMIT when the arena's
 * limit would have been exceeded. Callers that go on allocating after a
 * failure and check once still learn the first cause. */
es_status esi_arena_error(es_arena *a, const char *what);

#endif
