/* Stored ATProto events in the JSON of Bluesky's Tap (indigo's cmd/tap),
 * for servers that hand the store to applications written for Tap's
 * /channel or its webhooks (docs/serve.md, "/channel (Tap-style)").
 *
 *   es_atp_tap_event d;
 *   if (es_atp_tap_describe(ev, &d) == ES_OK && d.kind != ES_ATP_TAP_NONE) {
 *       es_buf json = ES_BUF_INIT;
 *       es_atp_tap_encode(ev, &d, arena, &json);   // one JSON object
 *   }
 *
 * What an event becomes:
 *   record op   {"id", "type": "record", "record": {"live", "did", "rev",
 *               "collection", "rkey", "action", "record", "cid"}}: the record
 *               in the atproto JSON form ($link, $bytes); a delete has
 *               neither record nor cid; an invalid record (metadata
 *               `invalid`) or one that cannot be read (shredded) has no record
 *   #identity   {"id", "type": "identity", "identity": {"did", "handle"}}
 *               (handle when the frame has one)
 *   #account    {"id", "type": "identity", "identity": {"did", "is_active",
 *               "status"}} (status "active" when active and none is given)
 *   #sync, and events this adapter did not write: no Tap form (Tap sends
 *               no #sync either).
 * `id` is the event's stream sequence: unique, increasing in stream order,
 * what the client acknowledges. `live` is false for the events of a backfill
 * or a resync (metadata `live=false`, docs/atproto.md), true for commits
 * seen on the firehose. Tap keeps each repository's handle and status in
 * its database and sends both in every identity event; the store has only
 * the frames, so an identity event says what its frame said. */
#ifndef ES_ATPROTO_TAP_H
#define ES_ATPROTO_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/buf.h>
#include <es/event.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum es_atp_tap_kind {
    ES_ATP_TAP_NONE = 0, /* no Tap form: skip the event */
    ES_ATP_TAP_RECORD,
    ES_ATP_TAP_IDENTITY,
} es_atp_tap_kind;

/* What a dispatcher needs, without decoding the payload. */
typedef struct es_atp_tap_event {
    es_atp_tap_kind kind;
    uint64_t id;     /* Tap's event id: the stream sequence */
    const char *did; /* the repository (the entity id, or metadata `did` for a
                        long DID); points into the event, did_len bytes */
    size_t did_len;
    bool live; /* records: not from a backfill or resync. Identity events are
                  never live: as in Tap, they are no barrier to a repo's order */
} es_atp_tap_event;

/* Describes `ev` (valid during an es_event_cb). ES_OK with kind NONE for an
 * event that has no Tap form. */
ES_API es_status es_atp_tap_describe(const es_event *ev, es_atp_tap_event *out);

/* Appends the Tap JSON of `ev` (described by `d`, kind not NONE) to `out`,
 * without a newline. The record is decoded in `arena` (reset by the caller
 * between events; its limit bounds one record's memory: ES_ERR_LIMIT past
 * it). ES_ERR_DECODE when a payload is not the DAG-CBOR it should be. */
ES_API es_status es_atp_tap_encode(const es_event *ev, const es_atp_tap_event *d, es_arena *arena,
                                   es_buf *out);

#ifdef __cplusplus
}
#endif
#endif
