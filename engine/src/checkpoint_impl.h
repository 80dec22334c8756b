/* The stored form of a checkpoint (private, exposed for unit tests):
 *   {"position":123,"time":"2026-01-02T03:04:05.000000000Z","data":{...}}
 * JSON so that `nats kv get` shows something a person can read. */
#ifndef ES_CHECKPOINT_IMPL_H
#define ES_CHECKPOINT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/checkpoint.h>

#include "wire.h"

/* The value bucket entries are refused beyond, before parsing. */
#define ES_CHECKPOINT_VALUE_MAX (ES_CHECKPOINT_DATA_MAX + 256)

/* Appends the stored form to `out`. `json` (may be NULL) is checked and
 * written compact. */
es_status esi_checkpoint_encode(uint64_t position, const char *json, int64_t time_ns, es_buf *out);

/* Parses a stored value (hostile input) into `cp` (revision untouched);
 * ES_ERR_DECODE with a clear text when it is not one. */
es_status esi_checkpoint_decode(const void *value, size_t len, es_checkpoint *cp);

/* True for a valid checkpoint name, or (patterns) a name whose dot-separated
 * tokens may also be '*' or a final '>'. */
bool esi_checkpoint_name_valid(const char *name, bool pattern);

/* Opens a bucket of the store's (of `kind`, keeping `history` revisions per
 * key) as a checkpoint set: what es_checkpoints_open_bucket does for the
 * public sets, and es/entity_types.h for its index. */
es_status esi_checkpoints_open_kind(es_store *store, esi_bucket_kind kind, int history,
                                    es_checkpoints **out);

#endif
