/* Importing events exactly as another store (or a backup) keeps them: the
 * subject within the store, every header and the stored payload, byte for
 * byte (es_raw_event, es/event.h). This is how a store is restored or
 * copied: what es_event_raw hands out of one store, es_import_async puts
 * into another, and exporting both gives the same bytes. Unlike an append,
 * an import adds no header and opens no envelope: a sealed payload stays
 * sealed (it reads back only where its keys and dictionaries are). */
#ifndef ES_IMPORT_H
#define ES_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/event.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Checks an event for an import into a store with or without tenancy,
 * without I/O: the subject has the event shape, with valid names and a
 * valid escaped id; header names are tokens (printable ASCII, no ':'),
 * values one line without NUL, and none is a JetStream control header
 * (Nats-* other than Nats-Msg-Id: expectations, batches, rollups, TTLs
 * would change how the server stores it). ES_ERR_INVALID saying what is
 * wrong. es_import_async checks the same, and the payload's size. */
ES_API es_status es_import_check(const es_raw_event *event, bool tenancy);

/* The outcome of one import, handed to its callback; valid during the call. */
typedef struct es_import_result {
    es_status status;  /* ES_OK: stored (or known: see duplicate) */
    uint64_t seq;      /* the stream sequence it was stored at */
    bool duplicate;    /* the store had its Nats-Msg-Id within its duplicate window:
                          nothing new was stored */
    int err_code;      /* the server's JetStream err_code when it refused, else 0 */
    const char *error; /* why, when status is not ES_OK; "" otherwise */
} es_import_result;

/* Called once per import, on a library thread. Keep it short: it delays
 * other acknowledgements. */
typedef void (*es_import_cb)(const es_import_result *result, void *closure);

/* Publishes `event` into `store` as it is, on the subject
 * "$ES.<store>.<event->subject>" and only into the store's stream
 * (Nats-Expected-Stream), without waiting for the acknowledgement: imports
 * share the store's window with asynchronous appends (max_inflight of
 * es_store_options) and block while it is full. The event is copied before
 * the call returns. A status other than ES_OK means nothing was sent and
 * `cb` will not be called (ES_ERR_INVALID as es_import_check says,
 * ES_ERR_TOO_LARGE beyond es_store_max_payload, ES_ERR_TIMEOUT when the
 * window stayed full); ES_OK means `cb` will be called exactly once. An
 * event whose id the store has seen within its duplicate window is not
 * stored again (result->duplicate), so an interrupted import can be run
 * again. es_append_flush waits for imports too. Thread-safe. */
ES_API es_status es_import_async(es_store *store, const es_raw_event *event, es_import_cb cb,
                                 void *closure);

#ifdef __cplusplus
}
#endif
#endif
