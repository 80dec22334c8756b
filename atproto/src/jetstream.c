/* Stored events in Jetstream's JSON (<es/atproto_jetstream.h>): the mapping
 * of docs/atproto.md read backwards. The envelope is built as a value tree
 * on the stack around the decoded record (value_tree.h), and written by the
 * codecs' JSON encoder, which owns the atproto JSON form ($link, $bytes)
 * and escaping. */
#include <string.h>

#include <es/atproto_jetstream.h>
#include <es/cbor.h>
#include <es/json.h>

#include "mapping.h"
#include "value_tree.h"

es_status es_atp_jetstream_describe(const es_event *ev, es_atp_jetstream_event *out)
{
    memset(out, 0, sizeof *out);
    const char *type = es_event_entity_type(ev), *action = es_event_event_type(ev);
    const char *long_did = es_event_meta(ev, "did");
    out->did = es_event_entity_id(ev, &out->did_len);
    if (long_did != NULL) {
        out->did = long_did;
        out->did_len = strlen(long_did);
    }
    out->time_us = es_event_stored_ns(ev) / 1000;
    if (strcmp(type, "repo") == 0) {
        if (strcmp(action, "identity") == 0)
            out->kind = ES_ATP_JS_IDENTITY;
        else if (strcmp(action, "account") == 0)
            out->kind = ES_ATP_JS_ACCOUNT;
        return ES_OK; /* #sync and anything else: no Jetstream form */
    }
    bool op = strcmp(action, "create") == 0 || strcmp(action, "update") == 0 ||
              strcmp(action, "delete") == 0;
    if (!op || es_event_meta(ev, "rkey") == NULL || es_event_meta(ev, "rev") == NULL ||
        !esi_atp_collection(type, out->collection, sizeof out->collection))
        return ES_OK; /* not a record op of this adapter */
    out->kind = ES_ATP_JS_COMMIT;
    return ES_OK;
}

es_value *esi_atp_payload_value(const es_event *ev, es_arena *arena, es_status *s)
{
    const void *data;
    size_t len;
    *s = ES_OK;
    if (strcmp(es_event_codec(ev), "dag-cbor") != 0 || es_event_data(ev, &data, &len) != ES_OK ||
        len == 0)
        return NULL;
    es_value *v = NULL;
    size_t used;
    *s = es_cbor_decode(data, len, NULL, arena, &v, &used);
    if (*s == ES_OK && used != len)
        *s = es_error(ES_ERR_DECODE, "bytes after the record's DAG-CBOR item");
    return *s == ES_OK ? v : NULL;
}

es_status es_atp_jetstream_encode(const es_event *ev, const es_atp_jetstream_event *d,
                                  es_arena *arena, es_buf *out)
{
    if (d->kind == ES_ATP_JS_NONE)
        return es_error(ES_ERR_INVALID, "the event has no Jetstream form");
    es_status s;
    es_value *payload = esi_atp_payload_value(ev, arena, &s);
    if (s != ES_OK)
        return s;
    es_value_entry inner[6], top[4];
    size_t ni = 0, nt = 0;
    es_value body = {.kind = ES_VALUE_MAP};
    const char *kind = d->kind == ES_ATP_JS_COMMIT     ? "commit"
                       : d->kind == ES_ATP_JS_IDENTITY ? "identity"
                                                       : "account";
    if (d->kind == ES_ATP_JS_COMMIT) {
        esi_atp_put_text(inner, &ni, "rev", es_event_meta(ev, "rev"));
        esi_atp_put_text(inner, &ni, "operation", es_event_event_type(ev));
        esi_atp_put_text(inner, &ni, "collection", d->collection);
        esi_atp_put_text(inner, &ni, "rkey", es_event_meta(ev, "rkey"));
        if (payload != NULL)
            esi_atp_put(inner, &ni, "record", *payload);
        esi_atp_put_text(inner, &ni, "cid", es_event_meta(ev, "cid"));
        body.u.map.entries = inner;
        body.u.map.count = ni;
    } else if (payload != NULL && payload->kind == ES_VALUE_MAP) {
        body = *payload; /* the frame body as received */
    } else {
        return es_error(ES_ERR_DECODE, "a repo event whose payload is not a DAG-CBOR map");
    }
    es_value time_us = {.kind = ES_VALUE_INT};
    time_us.u.i = d->time_us;
    esi_atp_put(top, &nt, "did", esi_atp_text_value(d->did, d->did_len));
    esi_atp_put(top, &nt, "time_us", time_us);
    esi_atp_put_text(top, &nt, "kind", kind);
    esi_atp_put(top, &nt, kind, body);
    return esi_atp_encode_map(top, nt, out);
}
