/* Which expectations of a conflicting append fail (private). */
#ifndef ES_CONFLICTS_H
#define ES_CONFLICTS_H

#include <nats/nats.h>

#include <es/append.h>

typedef struct es_store es_store;
typedef struct esi_conflicts esi_conflicts;

/* The expectations among the unit's messages that fail: a single event's
 * by the server's answer (`server_actual`), a batch's by looking up the last
 * sequence of every subject its events expect (JetStream answers a batch at
 * its first failing message only). *out (freed with esi_conflicts_free)
 * lists them in event order. */
es_status esi_conflicts_find(const es_store *st, natsMsg *const *msgs, size_t n,
                             uint64_t server_actual, esi_conflicts **out);

/* An empty list with room for n conflicts (ES_ERR_NOMEM). */
es_status esi_conflicts_new(size_t n, esi_conflicts **out);

/* Adds a copy of *k (its strings too); at most the n of esi_conflicts_new. */
es_status esi_conflicts_add(esi_conflicts *c, const es_append_conflict *k);

/* Sets result->conflicts and conflict_count from `c` (may be NULL: none). */
void esi_conflicts_to_result(const esi_conflicts *c, es_append_result *result);

/* Up to `size` bytes of "account/a1 expected 3, found 5; ..." for an error text. */
void esi_conflicts_describe(const esi_conflicts *c, char *out, size_t size);

/* Keeps `c` as the calling thread's last conflicts (what a synchronous
 * append's result points to), freeing the ones before; NULL frees them. */
void esi_conflicts_keep(esi_conflicts *c);

/* Accepts NULL. */
void esi_conflicts_free(esi_conflicts *c);

#endif
