/* In-memory stand-ins, for the envelope's tests, of what an event store
 * keeps in KV: a keyring backend (records with their history), a dictionary
 * source, and the es_envelope_event of an event subject. Test-only: nothing
 * here is fast or bounded, everything is thread-safe. */
#ifndef ES_TEST_MEMSTORE_H
#define ES_TEST_MEMSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/envelope.h>
#include <es/keyring.h>

/* ---- keyring backend ----------------------------------------------------- */

/* Records by name, each with every version written to it, oldest first, the
 * way a KV bucket with unlimited history would keep them: `create` adds the
 * first version, mem_keys_put adds one more, `replace` leaves exactly one. */
typedef struct mem_keys mem_keys;

/* A backend with one reference, the test's. */
mem_keys *mem_keys_create(void);
/* Drops one reference; the last frees the records. */
void mem_keys_release(mem_keys *m);
/* A backend for es_keyring_create: takes a reference, which the keyring's
 * destroy hook drops. Several keyrings may share one mem_keys, as several
 * processes share one bucket. */
es_keyring_backend mem_keys_backend(mem_keys *m);
/* References held (the test's plus one per live keyring). */
int mem_keys_refs(mem_keys *m);

/* How many versions `entity`'s record has (0: none). */
size_t mem_keys_versions(mem_keys *m, const char *entity);
/* Copies version `i` (0: oldest) of `entity`'s record; false when absent. */
bool mem_keys_version(mem_keys *m, const char *entity, size_t i, uint8_t *rec, size_t cap,
                      size_t *len);
/* Whether any version of any record holds these bytes. */
bool mem_keys_holds(mem_keys *m, const uint8_t *bytes, size_t len);
/* The same by record name (e.g. ES_KEYRING_CHECK_NAME). */
size_t mem_keys_named_versions(mem_keys *m, const char *name);
/* Versions of all records together: what has been written. */
size_t mem_keys_total(mem_keys *m);
/* Adds a version to the record `name`, as a writer outside es might. */
void mem_keys_put_named(mem_keys *m, const char *name, const uint8_t *rec, size_t len);
/* Adds a version to `entity`'s record, as a writer outside es might (up to
 * 2 * ES_KEYRING_RECORD_MAX bytes, so that oversized records can be made). */
void mem_keys_put(mem_keys *m, const char *entity, const uint8_t *rec, size_t len);

typedef enum mem_op { MEM_GET, MEM_CREATE, MEM_REPLACE, MEM_SCAN, MEM_OPS } mem_op;

typedef struct mem_keys_stats {
    unsigned calls[MEM_OPS];  /* every call, failed ones included */
    unsigned creates_refused; /* ES_ERR_EXISTS: another writer was first */
} mem_keys_stats;
void mem_keys_stats_get(mem_keys *m, mem_keys_stats *out);

/* The next `times` calls of `op` fail with `s` (a KV outage), changing
 * nothing. */
void mem_keys_fail(mem_keys *m, mem_op op, es_status s, unsigned times);

/* The next `n` creates wait for each other (up to 10 s) before any of them
 * runs: n writers that all found no key then race on creating it. */
void mem_keys_gate_creates(mem_keys *m, unsigned n);

/* ---- dictionary source --------------------------------------------------- */

typedef struct mem_dicts mem_dicts;
mem_dicts *mem_dicts_create(void);
void mem_dicts_free(mem_dicts *d);
/* The source for es_envelope_options.dicts (borrows d). */
es_dict_source mem_dicts_source(mem_dicts *d);
/* Stores `bytes` under `id` (replacing what was there): the id need not be
 * the dictionary's own, so that a mislabelled one can be made. */
void mem_dicts_put(mem_dicts *d, uint32_t id, const uint8_t *bytes, size_t len);
/* Times `get` was called. */
unsigned mem_dicts_gets(mem_dicts *d);
/* Every later `get` fails with `s` (ES_OK: stop failing). */
void mem_dicts_fail(mem_dicts *d, es_status s);

/* ---- events -------------------------------------------------------------- */

/* The event published on `subject` (e.g. "$ES.shop.order.42.created"),
 * split from the end as the engine lays subjects out: the entity is all but
 * the last token, the event type the last token, the entity type the third
 * from the end. Points into `subject`, which must outlive it. Fails the test
 * when the subject has fewer than four non-empty tokens at the end. */
es_envelope_event mem_event(const char *subject);

#endif
