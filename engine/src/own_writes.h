/* Reading one's own writes on a replicated store (private): the last event
 * a reader must see before it may say it has every event stored when it
 * began. read.c (es_evolve, es_load) and watch.c (es_watch's catch-up) ask
 * here. */
#ifndef ES_OWN_WRITES_H
#define ES_OWN_WRITES_H

#include <stdint.h>

#include <es/status.h>

#include "filters.h"
#include "store_impl.h"

/* The last event of `fs` in (after_seq, up_to_seq] (up_to_seq 0: no bound)
 * as the stream's leader has it, or 0 when the reader's own answers
 * suffice. On a replicated store neither a reader's answers are the
 * leader's: an R1 consumer is placed on any of the stream's peers and
 * counts what is pending from its replica, and a direct get may be answered
 * by any replica; a replica may not have applied the latest appends yet, so
 * a read right after an append could miss it. The leader says which event
 * is the filters' last (STREAM.MSG.GET with last_by_subj, one request per
 * filter subject, retried through an election): the reader goes on until it
 * has seen it. A confined user is not granted the leader's message API (its
 * subject does not carry the filter): its reads stay as the replicas
 * answer (0). */
es_status esi_own_writes_target(es_store *st, const esi_filter_set *fs, uint64_t after_seq,
                                uint64_t up_to_seq, uint64_t *target);

#endif
