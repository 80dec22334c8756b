/* Stored ATProto events in Bluesky Jetstream's JSON (its v1 /subscribe
 * form), for servers and readers that hand the store to applications
 * written for Jetstream (docs/atproto.md, "Serving: Jetstream-compatible
 * /subscribe").
 *
 *   es_atp_jetstream_event d;
 *   if (es_atp_jetstream_describe(ev, &d) == ES_OK && d.kind != ES_ATP_JS_NONE
 *       && wanted(d.did, d.did_len, d.collection)) {
 *       es_buf json = ES_BUF_INIT;
 *       es_atp_jetstream_encode(ev, &d, arena, &json);   // one JSON object
 *   }
 *
 * What an event becomes (the mapping of docs/atproto.md, read backwards):
 *   record op   {"did", "time_us", "kind": "commit", "commit": {"rev",
 *               "operation", "collection", "rkey", "record", "cid"}}: the
 *               record in the atproto JSON form ($link, $bytes); a delete
 *               has neither record nor cid; an invalid record (metadata
 *               `invalid`) or one that cannot be read (shredded) has no
 *               record
 *   #identity   {"did", "time_us", "kind": "identity", "identity": {...}}
 *   #account    {"did", "time_us", "kind": "account", "account": {...}}
 *               the frame body as received ({did, handle, seq, time},
 *               {active, did, seq, time, status})
 *   #sync, and events this adapter did not write: no Jetstream form
 *               (Jetstream v1 does not send #sync either).
 * `time_us` is when the server stored the event (es_event_stored_ns), in
 * microseconds: like Jetstream's, the time the service took the event in,
 * increasing in stream order. */
#ifndef ES_ATPROTO_JETSTREAM_H
#define ES_ATPROTO_JETSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/buf.h>
#include <es/event.h>
#include <es/names.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum es_atp_js_kind {
    ES_ATP_JS_NONE = 0, /* no Jetstream form: skip the event */
    ES_ATP_JS_COMMIT,
    ES_ATP_JS_IDENTITY,
    ES_ATP_JS_ACCOUNT,
} es_atp_js_kind;

/* What a subscriber's filter needs, without decoding the payload. */
typedef struct es_atp_jetstream_event {
    es_atp_js_kind kind;
    const char *did; /* the repository's DID (the entity id, or metadata `did`
                        for a long DID); points into the event */
    size_t did_len;
    char collection[ES_ENTITY_TYPE_MAX + 1]; /* commits: the NSID; else "" */
    int64_t time_us;                         /* stored time, Unix microseconds */
} es_atp_jetstream_event;

/* Describes `ev` (valid during an es_event_cb). ES_OK with kind NONE for an
 * event that has no Jetstream form. */
ES_API es_status es_atp_jetstream_describe(const es_event *ev, es_atp_jetstream_event *out);

/* Appends the Jetstream JSON of `ev` (described by `d`, kind not NONE) to
 * `out`, without a newline. The record is decoded in `arena` (reset by the
 * caller between events; its limit bounds one record's memory:
 * ES_ERR_LIMIT past it). ES_ERR_DECODE when a repo event's payload is not
 * DAG-CBOR. */
ES_API es_status es_atp_jetstream_encode(const es_event *ev, const es_atp_jetstream_event *d,
                                         es_arena *arena, es_buf *out);

#ifdef __cplusplus
}
#endif
#endif
