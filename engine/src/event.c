/* Read-side accessors of es_event. */
#include "event_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <es/codec.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "base/clock.h"
#include "headers.h"
#include "store_impl.h"
#include "transport/msg.h"

void esi_event_wrap(es_event *ev, const es_store *st, natsMsg *msg, const char *subject,
                    uint64_t seq, int64_t stored_ns)
{
    ev->st = st;
    ev->msg = msg;
    ev->subject = subject;
    ev->seq = seq;
    ev->stored_ns = stored_ns;
    ev->pull = NULL;
    ev->split_done = ev->id_done = ev->keys_done = ev->data_done = false;
    ev->keys = NULL;
    ev->nkeys = 0;
    ev->nmeta = 0;
}

void esi_event_clear(es_event *ev)
{
    esi_free_foreign((void *)ev->keys); /* nats.c's */
    ev->keys = NULL;
    ev->keys_done = false;
}

void esi_event_release(es_event *ev)
{
    esi_event_clear(ev);
    es_opened_free(&ev->opened);
    es_buf_free(&ev->raw);
}

/* Accessors parse on first use; the event is private to one callback, so
 * caching through a const pointer is safe. */
static es_event *mut(const es_event *ev)
{
    return (es_event *)ev;
}

static const esi_subject_parts *parts(const es_event *cev)
{
    es_event *ev = mut(cev);
    if (!ev->split_done) {
        ev->split_done = true;
        size_t len = strlen(ev->subject);
        if (len >= sizeof ev->split) {
            memset(&ev->parts, 0, sizeof ev->parts);
            ev->split_status = ES_ERR_PROTOCOL;
        } else {
            memcpy(ev->split, ev->subject, len + 1);
            ev->split_status =
                esi_subject_split(ev->split, ev->st->name, ev->st->config.tenancy, &ev->parts);
            if (ev->split_status != ES_OK)
                memset(&ev->parts, 0, sizeof ev->parts);
        }
    }
    return &ev->parts;
}

const esi_subject_parts *esi_event_parts(const es_event *ev)
{
    const esi_subject_parts *p = parts(ev);
    return ev->split_status == ES_OK ? p : NULL;
}

bool esi_event_well_formed(const es_event *ev)
{
    parts(ev);
    return ev->split_status == ES_OK;
}

uint64_t es_event_seq(const es_event *ev)
{
    return ev ? ev->seq : 0;
}
const char *es_event_subject(const es_event *ev)
{
    return ev ? ev->subject : NULL;
}
const char *es_event_tenant(const es_event *ev)
{
    return ev ? parts(ev)->tenant : NULL;
}
const char *es_event_entity_type(const es_event *ev)
{
    return ev ? parts(ev)->type : NULL;
}
const char *es_event_event_type(const es_event *ev)
{
    return ev ? parts(ev)->event : NULL;
}

const char *es_event_entity_id(const es_event *cev, size_t *len)
{
    if (cev == NULL)
        return NULL;
    es_event *ev = mut(cev);
    if (!ev->id_done) {
        ev->id_done = true;
        const char *tok = parts(ev)->id_token;
        if (tok == NULL ||
            es_id_unescape(tok, strlen(tok), ev->id, sizeof ev->id, &ev->id_len) != ES_OK) {
            ev->id[0] = '\0';
            ev->id_len = 0;
        }
    }
    if (len)
        *len = ev->id_len;
    return ev->id;
}

static void load_keys(const es_event *cev);

/* Exact lookup first; then case-insensitively, since Go writers (Rita through
 * nats.go) canonicalise header names ("Rita-Meta-Userid"). */
const char *es_event_header(const es_event *ev, const char *name)
{
    if (ev == NULL || name == NULL)
        return NULL;
    const char *v = esi_msg_header(ev->msg, name);
    if (v != NULL)
        return v;
    load_keys(ev);
    for (int i = 0; i < ev->nkeys; i++)
        if (strcasecmp(ev->keys[i], name) == 0 && (v = esi_msg_header(ev->msg, ev->keys[i])))
            return v;
    return NULL;
}

static const char *header_or(const es_event *ev, const char *name, const char *fallback)
{
    const char *v = es_event_header(ev, name);
    return v ? v : fallback;
}

const char *es_event_event_id(const es_event *ev)
{
    return header_or(ev, ES_HDR_MSG_ID, "");
}
const char *es_event_codec(const es_event *ev)
{
    return header_or(ev, ES_HDR_CODEC, "binary");
}
const char *es_event_time(const es_event *ev)
{
    return header_or(ev, ES_HDR_TIME, "");
}

int64_t es_event_time_ns(const es_event *ev)
{
    int64_t ns = 0;
    const char *t = es_event_header(ev, ES_HDR_TIME);
    if (t == NULL || es_time_parse(t, &ns) != ES_OK)
        return 0;
    return ns;
}

int64_t es_event_stored_ns(const es_event *ev)
{
    return ev ? ev->stored_ns : 0;
}

const char *es_event_meta(const es_event *ev, const char *key)
{
    if (key == NULL || strlen(key) > ES_NAME_MAX)
        return NULL;
    char name[sizeof ES_HDR_META_PREFIX + ES_NAME_MAX];
    memcpy(name, ES_HDR_META_PREFIX, sizeof ES_HDR_META_PREFIX - 1);
    strcpy(name + sizeof ES_HDR_META_PREFIX - 1, key);
    return es_event_header(ev, name);
}

static bool is_meta_key(const char *k)
{
    return strncasecmp(k, ES_HDR_META_PREFIX, sizeof ES_HDR_META_PREFIX - 1) == 0;
}

/* Header keys with the metadata ones moved to the front, in order. */
static void load_keys(const es_event *cev)
{
    es_event *ev = mut(cev);
    if (ev->keys_done)
        return;
    ev->keys_done = true;
    if (esi_msg_header_keys(ev->msg, &ev->keys, &ev->nkeys) != ES_OK) {
        ev->keys = NULL;
        ev->nkeys = 0;
    }
    size_t m = 0;
    for (int i = 0; i < ev->nkeys; i++)
        if (is_meta_key(ev->keys[i])) {
            const char *k = ev->keys[i];
            memmove(&ev->keys[m + 1], &ev->keys[m], ((size_t)i - m) * sizeof *ev->keys);
            ev->keys[m++] = k;
        }
    ev->nmeta = m;
}

size_t es_event_meta_count(const es_event *ev)
{
    if (ev == NULL)
        return 0;
    load_keys(ev);
    return ev->nmeta;
}

void es_event_meta_at(const es_event *ev, size_t i, const char **key, const char **value)
{
    *key = *value = NULL;
    if (ev == NULL || i >= es_event_meta_count(ev))
        return;
    *key = ev->keys[i] + sizeof ES_HDR_META_PREFIX - 1;
    *value = es_event_header(ev, ev->keys[i]);
}

/* Opens the envelope once per event: decrypt, decompress, upcast. */
static es_status open_data(const es_event *cev)
{
    es_event *ev = mut(cev);
    if (ev->data_done)
        return ev->data_status;
    ev->data_done = true;
    const esi_subject_parts *p = parts(ev);
    if (ev->split_status != ES_OK)
        return ev->data_status = ev->split_status;
    es_envelope_event target;
    esi_subject_envelope_event(ev->subject, ev->split, p, &target);
    es_header h[ES_ENVELOPE_HEADER_COUNT];
    size_t n = 0;
    for (size_t i = 0; i < ES_ENVELOPE_HEADER_COUNT; i++) {
        const char *v = es_event_header(ev, es_envelope_header_names[i]);
        if (v != NULL)
            h[n++] = (es_header){es_envelope_header_names[i], v};
    }
    ev->data_status = es_envelope_open(ev->st->env, &target, es_event_header(ev, ES_HDR_MSG_ID), h,
                                       n, esi_msg_data(ev->msg), esi_msg_len(ev->msg), &ev->opened);
    return ev->data_status;
}

es_status es_event_data(const es_event *ev, const void **data, size_t *len)
{
    if (ev == NULL || data == NULL || len == NULL)
        return es_error(ES_ERR_INVALID, "es_event_data: event, data and len are required");
    if (ev->st->env == NULL) { /* no envelope: the payload is the data */
        *data = esi_msg_data(ev->msg);
        *len = esi_msg_len(ev->msg);
        return ES_OK;
    }
    es_status s = open_data(ev);
    *data = s == ES_OK ? ev->opened.data : NULL;
    *len = s == ES_OK ? ev->opened.len : 0;
    if (s != ES_OK)
        return es_error(s, "event %llu (%s): %s", (unsigned long long)ev->seq, ev->subject,
                        es_status_text(s));
    return ES_OK;
}

es_status es_event_decode(const es_event *ev, es_arena *arena, es_value **out)
{
    const void *data;
    size_t len;
    es_status s = es_event_data(ev, &data, &len);
    if (s != ES_OK)
        return s;
    return es_codec_decode(es_event_codec(ev), data, len, arena, out);
}

uint32_t es_event_schema(const es_event *ev)
{
    if (ev == NULL)
        return 0;
    if (ev->st->env != NULL && open_data(ev) == ES_OK)
        return ev->opened.schema;
    const char *v = es_event_header(ev, ES_HDR_SCHEMA);
    unsigned long n = v ? strtoul(v, NULL, 10) : 1;
    return n >= 1 && n <= UINT32_MAX ? (uint32_t)n : 1;
}

/* ---- as stored ---------------------------------------------------------- */

/* Every value of every header but the control ones, grouped by name. */
static es_status collect_raw_headers(es_event *ev)
{
    es_buf_clear(&ev->raw);
    load_keys(ev);
    es_status s = ES_OK;
    for (int k = 0; k < ev->nkeys && s == ES_OK; k++) {
        if (esi_header_is_control(ev->keys[k]))
            continue;
        const char **values = NULL;
        int n = 0;
        s = esi_msg_header_values(ev->msg, ev->keys[k], &values, &n);
        for (int i = 0; i < n && s == ES_OK; i++) {
            es_header h = {ev->keys[k], values[i]};
            s = es_buf_append(&ev->raw, &h, sizeof h);
        }
        esi_free_foreign((void *)values); /* nats.c's */
    }
    return s;
}

es_status es_event_raw(const es_event *cev, es_raw_event *out)
{
    if (cev == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_event_raw: event and out are required");
    es_event *ev = mut(cev);
    if (!esi_event_well_formed(ev))
        return es_error(ES_ERR_PROTOCOL, "'%.200s' is not an event subject of store '%s'",
                        ev->subject, ev->st->name);
    es_status s = collect_raw_headers(ev);
    if (s != ES_OK)
        return s;
    *out = (es_raw_event){.subject = ev->subject + esi_wire_store_prefix_len(ev->st->name),
                          .headers = (const es_header *)(const void *)ev->raw.data,
                          .header_count = ev->raw.len / sizeof(es_header),
                          .payload = esi_msg_data(ev->msg),
                          .payload_len = esi_msg_len(ev->msg)};
    return ES_OK;
}
