/* A unit's events kept by the sink (private): one allocation holding the
 * specs, their metadata, every string and payload they point to, and the
 * unit's key, so that a retry sends exactly the same append. */
#ifndef ES_SINK_COPY_H
#define ES_SINK_COPY_H

#include <stddef.h>

#include <es/event.h>

typedef struct esi_sink_copy {
    es_event_spec *events; /* the start of the allocation: esi_free(events) frees it all */
    size_t count;
    const char *key; /* key_len bytes, NUL-terminated */
    size_t key_len;
    size_t bytes; /* the allocation's size */
} esi_sink_copy;

/* Copies events[0..n) and the key. Events without an id get a new one and
 * events without a time get `now_ns`; NULL strings stay NULL and
 * inconsistent lengths (data NULL with data_len > 0, meta NULL with
 * meta_count > 0) are kept as they are, for the store to refuse. */
es_status esi_sink_copy_make(const es_event_spec *events, size_t n, const char *key, size_t key_len,
                             int64_t now_ns, esi_sink_copy *out);

#endif
