/* Stored events in Tap's JSON (<es/atproto_tap.h>). Which events have a
 * form, their DID and collection are Jetstream's reading of the mapping
 * (es_atp_jetstream_describe); only the envelope differs. */
#include <string.h>

#include <es/atproto_jetstream.h>
#include <es/atproto_tap.h>
#include <es/json.h>
#include <es/value.h>

#include "value_tree.h"

es_status es_atp_tap_describe(const es_event *ev, es_atp_tap_event *out)
{
    memset(out, 0, sizeof *out);
    es_atp_jetstream_event js;
    es_status s = es_atp_jetstream_describe(ev, &js);
    if (s != ES_OK || js.kind == ES_ATP_JS_NONE)
        return s;
    out->kind = js.kind == ES_ATP_JS_COMMIT ? ES_ATP_TAP_RECORD : ES_ATP_TAP_IDENTITY;
    out->id = es_event_seq(ev);
    out->did = js.did;
    out->did_len = js.did_len;
    const char *live = es_event_meta(ev, "live");
    out->live = out->kind == ES_ATP_TAP_RECORD && (live == NULL || strcmp(live, "false") != 0);
    return ES_OK;
}

/* identity{did, handle} of an #identity, identity{did, is_active, status}
 * of an #account: what the frame body says in Tap's names. */
static es_status identity_body(const es_event *ev, const es_value *frame, const es_value *did,
                               es_value_entry *entries, size_t *n)
{
    if (frame == NULL || frame->kind != ES_VALUE_MAP)
        return es_error(ES_ERR_DECODE, "a repo event whose payload is not a DAG-CBOR map");
    esi_atp_put(entries, n, "did", *did);
    if (strcmp(es_event_event_type(ev), "identity") == 0) {
        const es_value *handle = es_value_get(frame, "handle");
        if (handle != NULL && handle->kind == ES_VALUE_STRING)
            esi_atp_put(entries, n, "handle", *handle);
        return ES_OK;
    }
    const es_value *active = es_value_get(frame, "active"), *status = es_value_get(frame, "status");
    bool is_active = active != NULL && active->kind == ES_VALUE_BOOL && active->u.b;
    esi_atp_put_bool(entries, n, "is_active", is_active);
    if (status != NULL && status->kind == ES_VALUE_STRING)
        esi_atp_put(entries, n, "status", *status);
    else if (is_active)
        esi_atp_put_text(entries, n, "status", "active");
    return ES_OK;
}

/* record{live, did, rev, collection, rkey, action, record, cid}. */
static void record_body(const es_event *ev, const es_atp_tap_event *d,
                        const es_atp_jetstream_event *js, const es_value *payload,
                        const es_value *did, es_value_entry *entries, size_t *n)
{
    esi_atp_put_bool(entries, n, "live", d->live);
    esi_atp_put(entries, n, "did", *did);
    esi_atp_put_text(entries, n, "rev", es_event_meta(ev, "rev"));
    esi_atp_put_text(entries, n, "collection", js->collection);
    esi_atp_put_text(entries, n, "rkey", es_event_meta(ev, "rkey"));
    esi_atp_put_text(entries, n, "action", es_event_event_type(ev));
    if (payload != NULL)
        esi_atp_put(entries, n, "record", *payload);
    esi_atp_put_text(entries, n, "cid", es_event_meta(ev, "cid"));
}

es_status es_atp_tap_encode(const es_event *ev, const es_atp_tap_event *d, es_arena *arena,
                            es_buf *out)
{
    es_atp_jetstream_event js;
    es_status s = es_atp_jetstream_describe(ev, &js);
    if (s == ES_OK && (d->kind == ES_ATP_TAP_NONE || js.kind == ES_ATP_JS_NONE))
        s = es_error(ES_ERR_INVALID, "the event has no Tap form");
    es_value *payload = s == ES_OK ? esi_atp_payload_value(ev, arena, &s) : NULL;
    if (s != ES_OK)
        return s;
    es_value did = esi_atp_text_value(d->did, d->did_len);
    es_value_entry inner[8], top[3];
    size_t ni = 0, nt = 0;
    const char *type = d->kind == ES_ATP_TAP_RECORD ? "record" : "identity";
    if (d->kind == ES_ATP_TAP_RECORD)
        record_body(ev, d, &js, payload, &did, inner, &ni);
    else if ((s = identity_body(ev, payload, &did, inner, &ni)) != ES_OK)
        return s;
    es_value id = {.kind = ES_VALUE_INT}, body = {.kind = ES_VALUE_MAP};
    id.u.i = (int64_t)d->id;
    body.u.map.entries = inner;
    body.u.map.count = ni;
    esi_atp_put(top, &nt, "id", id);
    esi_atp_put_text(top, &nt, "type", type);
    esi_atp_put(top, &nt, type, body);
    return esi_atp_encode_map(top, nt, out);
}
