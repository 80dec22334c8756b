/* Building a small JSON envelope as an es_value tree on the stack, around
 * a stored record decoded into an arena: what the Jetstream and Tap
 * renderings (jetstream.c, tap.c) share. The codecs' JSON encoder then owns
 * the atproto JSON form ($link, $bytes) and escaping. */
#ifndef ES_ATP_VALUE_TREE_H
#define ES_ATP_VALUE_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <es/arena.h>
#include <es/buf.h>
#include <es/event.h>
#include <es/json.h>
#include <es/value.h>

static inline es_value esi_atp_text_value(const char *s, size_t len)
{
    es_value v = {.kind = ES_VALUE_STRING};
    v.u.str.ptr = s;
    v.u.str.len = len;
    return v;
}

/* entries[(*n)++] = {key, v}: the caller sized `entries` for every put. */
static inline void esi_atp_put(es_value_entry *entries, size_t *n, const char *key, es_value v)
{
    entries[*n].key = key;
    entries[*n].key_len = strlen(key);
    entries[*n].value = v;
    (*n)++;
}

/* A string entry; nothing when s is NULL (an absent field is left out). */
static inline void esi_atp_put_text(es_value_entry *entries, size_t *n, const char *key,
                                    const char *s)
{
    if (s != NULL)
        esi_atp_put(entries, n, key, esi_atp_text_value(s, strlen(s)));
}

static inline void esi_atp_put_bool(es_value_entry *entries, size_t *n, const char *key, bool b)
{
    es_value v = {.kind = ES_VALUE_BOOL};
    v.u.b = b;
    esi_atp_put(entries, n, key, v);
}

/* The JSON text of the map `entries[0..n)` appended to `out`. */
static inline es_status esi_atp_encode_map(es_value_entry *entries, size_t n, es_buf *out)
{
    es_value root = {.kind = ES_VALUE_MAP};
    root.u.map.entries = entries;
    root.u.map.count = n;
    return es_json_encode(&root, NULL, out);
}

/* The event's DAG-CBOR payload decoded in `arena`, or NULL when there is
 * none to show (a delete, an invalid record kept as bytes, a shredded one);
 * *s is set on failure (ES_ERR_DECODE, ES_ERR_LIMIT from the arena). */
es_value *esi_atp_payload_value(const es_event *ev, es_arena *arena, es_status *s);

#endif
