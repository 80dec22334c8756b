/* A store over the scripted server (transport/tests/fake_js.h), for the
 * engine's tests that need no real one. */
#ifndef ES_TEST_FAKE_STORE_H
#define ES_TEST_FAKE_STORE_H

#include <stdint.h>

#include <es/es.h>

#include "transport/tests/fake_conn.h"
#include "transport/tests/fake_js.h"

typedef struct fake_store {
    fake_conn *f;
    fake_js *fj; /* the store's stream, named as the wire format says */
    es_store *st;
} fake_store;

/* Opens the store `name` (requests time out after timeout_ms) on a fresh
 * server. The server's memory is libc's, not the library's allocator's. */
es_status fake_store_open(fake_store *fs, const char *name, int64_t timeout_ms);
void fake_store_close(fake_store *fs);

/* An event of entity "order"/`entity_id` with a small JSON payload;
 * event_id NULL: generated at append. */
es_event_spec fake_order_event(const char *entity_id, const char *event_type, const char *event_id);

#endif
