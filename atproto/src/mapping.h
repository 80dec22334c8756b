/* How repository content becomes entity events (docs/atproto.md, "Mapping"):
 * the rules the firehose decoder (frame.c) and the resync (resync.c) share,
 * so that a record stored from a live commit and the same record stored
 * from a fetched repository land on the same entity, under the same id. */
#ifndef ES_ATP_MAPPING_H
#define ES_ATP_MAPPING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/arena.h>
#include <es/status.h>

/* One piece of a joined string. */
typedef struct esi_atp_part {
    const char *p;
    size_t n;
} esi_atp_part;

/* The concatenation of `parts`, NUL-terminated, in `a` (*len may be NULL);
 * NULL when the arena is full. */
char *esi_atp_join(es_arena *a, const esi_atp_part *parts, size_t count, size_t *len);

/* The base32 string of a binary CID, in `a`; NULL when the arena is full or
 * the bytes are not a CIDv1. */
const char *esi_atp_cid_text(es_arena *a, const uint8_t *cid, size_t len);

/* The event id of `parts` joined. Ids longer than the core accepts
 * (ES_ATP_EVENT_ID_MAX) are replaced by the CID string (raw, sha2-256) of
 * the full id: as stable across relays and ingesters, and short. NULL when
 * the arena is full. */
const char *esi_atp_event_id(es_arena *a, const esi_atp_part *parts, size_t count);

/* The id of a record op's event: "<did>/<rev>/<collection>/<rkey>" (or its
 * CID, above). */
const char *esi_atp_op_event_id(es_arena *a, const char *did, size_t did_len, const char *rev,
                                size_t rev_len, const char *collection, size_t collection_len,
                                const char *rkey, size_t rkey_len);

/* The entity type of a collection: '.' becomes '_' (NSIDs never hold '_',
 * so the mapping is reversible). NULL when the arena is full. */
char *esi_atp_entity_type(es_arena *a, const char *collection, size_t len);

/* The collection of an entity type, '_' back to '.', into out[size];
 * false when it does not fit or is empty. */
bool esi_atp_collection(const char *entity_type, char *out, size_t size);

/* The events' entity id for a DID: the DID itself, or for a DID over
 * ES_ID_MAX bytes (an escaped id that long would not fit the server's
 * control line) the CID string of the DID, which is as stable; *did_meta
 * then gets the DID as text for the metadata `did`, else NULL.
 * ES_ERR_NOMEM when the arena is full, ES_ERR_LIMIT when hashing fails. */
es_status esi_atp_did_entity_id(es_arena *a, const char *did, size_t did_len, const char **id,
                                size_t *id_len, const char **did_meta);

#endif
