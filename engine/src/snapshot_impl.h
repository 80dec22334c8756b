/* The stored form of a snapshot (private, exposed for unit tests): a 24-byte
 * header — "ESS1", version (u32), seq (u64), time (i64), all big-endian —
 * then the state bytes as the caller gave them. */
#ifndef ES_SNAPSHOT_IMPL_H
#define ES_SNAPSHOT_IMPL_H

#include <es/buf.h>
#include <es/snapshot.h>

#define ES_SNAPSHOT_HEADER 24

es_status esi_snapshot_encode(uint64_t seq, uint32_t version, int64_t time_ns, const void *state,
                             size_t len, es_buf *out);

/* Parses a stored value (hostile input); out->data is a copy the caller
 * owns. ES_ERR_DECODE when it is not a snapshot. */
es_status esi_snapshot_decode(const void *value, size_t len, es_snapshot *out);

/* The KV key of an entity: [<tenant>.]<type>.<escaped id> (the tenant is
 * required with tenancy and refused without). */
es_status esi_snapshot_key(bool tenancy, const es_filter *entity, char *out, size_t size);

#endif
