/* The export/import format (backup.h). Lines are built and read as values
 * of the common value model with the codecs' JSON writer and reader, which
 * already speak the {"$bytes": ...} form. */
#include "backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/json.h>

#include "config.h"

#define SUBJECT_MAX (2 * ES_NAME_MAX + ES_ENTITY_TYPE_MAX + ES_ID_TOKEN_MAX + 8)

es_status backup_write_start(es_buf *out, const es_store_config *cfg)
{
    json_t *j = json_pack("{s:i, s:b, s:o}", "es_export", BACKUP_VERSION, "tenancy", cfg->tenancy,
                          "config", tool_config_json(cfg));
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    es_status s = text ? es_buf_append_str(out, text) : es_error(ES_ERR_NOMEM, "out of memory");
    free(text);
    return s == ES_OK ? es_buf_append_byte(out, '\n') : s;
}

es_status backup_write_end(es_buf *out, uint64_t events)
{
    char line[64];
    snprintf(line, sizeof line, "{\"end\":true,\"events\":%llu}\n", (unsigned long long)events);
    return es_buf_append_str(out, line);
}

/* ---- writing ------------------------------------------------------------------ */

/* A header's place in the event, to sort by name keeping values in order. */
typedef struct header_ref {
    const es_header *h;
    size_t index;
} header_ref;

static int by_name(const void *a, const void *b)
{
    const header_ref *x = a, *y = b;
    int c = strcmp(x->h->name, y->h->name);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* A header value: text when it is valid UTF-8, else bytes. */
static es_status text_or_bytes(es_arena *arena, const char *s, es_value *out)
{
    size_t len = strlen(s);
    es_value probe = {.kind = ES_VALUE_STRING};
    probe.u.str.ptr = s;
    probe.u.str.len = len;
    es_buf scratch = ES_BUF_INIT;
    es_status st = es_json_encode(&probe, NULL, &scratch);
    es_buf_free(&scratch);
    es_value *v =
        st == ES_OK ? es_value_new_string(arena, s, len) : es_value_new_bytes(arena, s, len);
    if (v == NULL)
        return es_error(ES_ERR_NOMEM, "export: out of memory");
    *out = *v;
    return ES_OK;
}

/* The values of refs[0..n), all of one name, as an array. */
static es_status values_value(es_arena *arena, const header_ref *refs, size_t n, es_value *out)
{
    es_value *arr = es_value_new_array(arena, n);
    es_status s = arr ? ES_OK : es_error(ES_ERR_NOMEM, "export: out of memory");
    for (size_t v = 0; v < n && s == ES_OK; v++)
        s = text_or_bytes(arena, refs[v].h->value, &arr->u.array.items[v]);
    if (s == ES_OK)
        *out = *arr;
    return s;
}

/* {"name": [values...], ...}, names sorted, values in their order. */
static es_status headers_value(es_arena *arena, const es_raw_event *ev, es_value **out)
{
    size_t n = ev->header_count, names = 0;
    header_ref *refs = n ? es_arena_calloc(arena, n, sizeof *refs) : NULL;
    if (n > 0 && refs == NULL)
        return es_error(ES_ERR_NOMEM, "export: out of memory");
    for (size_t i = 0; i < n; i++)
        refs[i] = (header_ref){&ev->headers[i], i};
    if (n > 0)
        qsort(refs, n, sizeof *refs, by_name);
    for (size_t i = 0; i < n; i++)
        names += i == 0 || strcmp(refs[i].h->name, refs[i - 1].h->name) != 0;
    es_value *map = es_value_new_map(arena, names);
    es_status s = map ? ES_OK : es_error(ES_ERR_NOMEM, "export: out of memory");
    for (size_t i = 0, k = 0; i < n && s == ES_OK; k++) {
        size_t end = i + 1;
        while (end < n && strcmp(refs[end].h->name, refs[i].h->name) == 0)
            end++;
        es_value_entry *e = &map->u.map.entries[k];
        e->key_len = strlen(refs[i].h->name);
        e->key = es_arena_strndup(arena, refs[i].h->name, e->key_len);
        s = e->key ? values_value(arena, refs + i, end - i, &e->value)
                   : es_error(ES_ERR_NOMEM, "export: out of memory");
        i = end;
    }
    *out = map;
    return s;
}

es_status backup_write_event(es_arena *arena, const es_raw_event *ev, es_buf *out)
{
    es_value *line = es_value_new_map(arena, 3);
    es_value *subject = es_value_new_string(arena, ev->subject, strlen(ev->subject));
    es_value *data = es_value_new_bytes(arena, ev->payload, ev->payload_len);
    if (line == NULL || subject == NULL || data == NULL)
        return es_error(ES_ERR_NOMEM, "export: out of memory");
    es_value *headers = NULL;
    es_status s = headers_value(arena, ev, &headers);
    if (s != ES_OK)
        return s;
    es_value_entry *e = line->u.map.entries;
    e[0] = (es_value_entry){"subject", 7, *subject};
    e[1] = (es_value_entry){"headers", 7, *headers};
    e[2] = (es_value_entry){"data", 4, *data};
    s = es_json_encode(line, NULL, out);
    if (s == ES_OK)
        s = es_buf_append_byte(out, '\n');
    return s;
}

/* ---- reading ------------------------------------------------------------------ */

/* Exactly the keys named, each once (duplicates the JSON reader refuses). */
static es_status only_keys(const es_value *o, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < o->u.map.count; i++) {
        bool known = false;
        for (size_t k = 0; k < n && !known; k++)
            known = strcmp(o->u.map.entries[i].key, keys[k]) == 0;
        if (!known)
            return es_error(ES_ERR_DECODE, "unknown field \"%.40s\"", o->u.map.entries[i].key);
    }
    return ES_OK;
}

static es_status out_of_memory(void)
{
    return es_error(ES_ERR_NOMEM, "import: out of memory");
}

/* A text of the line as a C string: no NUL inside, at most `max` bytes. */
static es_status c_string(es_arena *arena, const char *p, size_t len, size_t max, const char **out)
{
    if (len > max || (len > 0 && memchr(p, '\0', len) != NULL))
        return ES_ERR_DECODE;
    *out = es_arena_strndup(arena, p ? p : "", len);
    return *out ? ES_OK : out_of_memory();
}

static es_status subject_of(const es_value *v, es_arena *arena, const char **out)
{
    if (v == NULL || v->kind != ES_VALUE_STRING || v->u.str.len == 0)
        return es_error(ES_ERR_DECODE, "\"subject\" must be a non-empty string");
    es_status s = c_string(arena, v->u.str.ptr, v->u.str.len, SUBJECT_MAX, out);
    if (s == ES_ERR_DECODE)
        return es_error(s, "\"subject\" must be one string of at most %d bytes without NUL",
                        SUBJECT_MAX);
    return s;
}

/* One header value: text or bytes, one C string of at most BACKUP_VALUE_MAX. */
static es_status header_value(es_arena *arena, const char *name, const es_value *v,
                              const char **out)
{
    es_status s = ES_ERR_DECODE;
    if (v->kind == ES_VALUE_STRING)
        s = c_string(arena, v->u.str.ptr, v->u.str.len, BACKUP_VALUE_MAX, out);
    else if (v->kind == ES_VALUE_BYTES)
        s = c_string(arena, (const char *)v->u.bytes.ptr, v->u.bytes.len, BACKUP_VALUE_MAX, out);
    if (s == ES_ERR_DECODE)
        return es_error(s, "header %.40s: a value is a string of at most %d bytes without NUL",
                        name, BACKUP_VALUE_MAX);
    return s;
}

/* {"name": [values...]} into the event's header list (names may repeat). */
static es_status parse_headers(const es_value *h, es_arena *arena, es_raw_event *ev)
{
    if (h == NULL || h->kind != ES_VALUE_MAP || h->u.map.count > BACKUP_HEADERS_MAX)
        return es_error(ES_ERR_DECODE, "\"headers\" must be an object of at most %d names",
                        BACKUP_HEADERS_MAX);
    size_t pairs = 0;
    for (size_t i = 0; i < h->u.map.count; i++) {
        const es_value_entry *e = &h->u.map.entries[i];
        if (e->value.kind != ES_VALUE_ARRAY || e->value.u.array.count == 0 ||
            e->value.u.array.count > BACKUP_VALUES_MAX)
            return es_error(ES_ERR_DECODE,
                            "header %.40s: values must be a non-empty array of "
                            "at most %d",
                            e->key, BACKUP_VALUES_MAX);
        if (strlen(e->key) != e->key_len)
            return es_error(ES_ERR_DECODE, "a header name holds a NUL byte");
        pairs += e->value.u.array.count;
    }
    es_header *list = pairs ? es_arena_calloc(arena, pairs, sizeof *list) : NULL;
    if (pairs > 0 && list == NULL)
        return out_of_memory();
    size_t k = 0;
    es_status s = ES_OK;
    for (size_t i = 0; i < h->u.map.count && s == ES_OK; i++) {
        const es_value_entry *e = &h->u.map.entries[i];
        for (size_t v = 0; v < e->value.u.array.count && s == ES_OK; v++) {
            list[k].name = e->key;
            s = header_value(arena, e->key, &e->value.u.array.items[v], &list[k++].value);
        }
    }
    ev->headers = list;
    ev->header_count = k;
    return s;
}

static es_status parse_event(const es_value *o, bool tenancy, es_arena *arena, backup_line *out)
{
    static const char *const keys[] = {"subject", "headers", "data"};
    es_raw_event *ev = &out->event;
    memset(ev, 0, sizeof *ev);
    const es_value *data = es_value_get(o, "data");
    es_status s = only_keys(o, keys, 3);
    if (s == ES_OK)
        s = subject_of(es_value_get(o, "subject"), arena, &ev->subject);
    if (s == ES_OK)
        s = parse_headers(es_value_get(o, "headers"), arena, ev);
    if (s == ES_OK && (data == NULL || data->kind != ES_VALUE_BYTES))
        s = es_error(ES_ERR_DECODE, "\"data\" must be {\"$bytes\": base64}");
    if (s != ES_OK)
        return s;
    ev->payload = data->u.bytes.ptr;
    ev->payload_len = data->u.bytes.len;
    /* The store's own rules: subject shape and names, header names, one-line
     * values, no control header. */
    s = es_import_check(ev, tenancy);
    if (s != ES_OK)
        return s;
    out->kind = BACKUP_EVENT;
    return ES_OK;
}

static es_status parse_start(const es_value *o, backup_line *out)
{
    static const char *const keys[] = {"es_export", "tenancy", "config"};
    const es_value *version = es_value_get(o, "es_export"), *tenancy = es_value_get(o, "tenancy");
    const es_value *config = es_value_get(o, "config");
    es_status s = only_keys(o, keys, 3);
    if (s != ES_OK)
        return s;
    if (version->kind != ES_VALUE_INT || version->u.i < 1 || version->u.i > BACKUP_VERSION)
        return es_error(
            ES_ERR_DECODE, "export format version %lld is not 1 to %d (a newer es-tool?)",
            version->kind == ES_VALUE_INT ? (long long)version->u.i : -1LL, BACKUP_VERSION);
    if (tenancy == NULL || tenancy->kind != ES_VALUE_BOOL)
        return es_error(ES_ERR_DECODE, "\"tenancy\" must be true or false");
    if ((version->u.i >= 2) != (config != NULL))
        return es_error(ES_ERR_DECODE, "version %lld of the format %s \"config\"",
                        (long long)version->u.i, config ? "has no" : "requires");
    memset(out, 0, sizeof *out);
    if (config != NULL) {
        s = tool_config_from_value(config, &out->config);
        if (s != ES_OK)
            return s;
        if (out->config.tenancy != tenancy->u.b)
            return es_error(ES_ERR_DECODE, "\"tenancy\" and the config's tenancy differ");
        out->has_config = true;
    }
    out->kind = BACKUP_START;
    out->tenancy = tenancy->u.b;
    return ES_OK;
}

static es_status parse_end(const es_value *o, backup_line *out)
{
    static const char *const keys[] = {"end", "events"};
    const es_value *events = es_value_get(o, "events");
    es_status s = only_keys(o, keys, 2);
    if (s != ES_OK)
        return s;
    if (events == NULL || events->kind != ES_VALUE_INT || events->u.i < 0)
        return es_error(ES_ERR_DECODE, "\"events\" must be a count");
    out->kind = BACKUP_END;
    out->events = (uint64_t)events->u.i;
    return ES_OK;
}

es_status backup_parse_line(const char *text, size_t len, bool tenancy, es_arena *arena,
                            backup_line *out)
{
    es_value *o = NULL;
    es_status s = es_json_decode(text, len, NULL, arena, &o);
    if (s != ES_OK)
        return s;
    if (o->kind != ES_VALUE_MAP)
        return es_error(ES_ERR_DECODE, "a line is one JSON object");
    if (es_value_get(o, "es_export") != NULL)
        return parse_start(o, out);
    if (es_value_get(o, "end") != NULL)
        return parse_end(o, out);
    return parse_event(o, tenancy, arena, out);
}
