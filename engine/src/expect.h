/* ES_EXPECT_EXISTS on JetStream (private). */
#ifndef ES_EXPECT_H
#define ES_EXPECT_H

#include <stdbool.h>
#include <stddef.h>

#include <es/append.h>

#include "conflicts.h"

typedef struct es_store es_store;
typedef struct esi_exists esi_exists;

/* Whether any event expects its entity (or filter) to exist. */
bool esi_expects_existence(const es_event_spec *events, size_t n);

/* `out` (n specs) becomes a copy of `events` where each ES_EXPECT_EXISTS is
 * an ES_EXPECT_SEQ JetStream can check: about the subject of the first event
 * that matches, at that subject's last sequence. *x (esi_exists_free, after
 * `out` is sent) holds what `out` points to. ES_ERR_CONFLICT when nothing
 * matches one of them: *missing (esi_conflicts_free) lists those. */
es_status esi_exists_resolve(const es_store *st, const es_event_spec *events, size_t n,
                             es_event_spec *out, esi_exists **x, esi_conflicts **missing);

void esi_exists_free(esi_exists *x);

/* After a conflict of the resolved events: true when every expectation that
 * failed is an ES_EXPECT_EXISTS (another writer moved the subject it was
 * checked on): resolving and sending again is right. */
bool esi_exists_moved_on(const es_event_spec *events, const es_append_result *r);

#endif
