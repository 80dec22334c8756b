/* The export/import format (backup.h). Lines are built and read as values
 * of the common value model with the codecs' JSON writer and reader, which
 * already speak the {"$bytes": ...} form. */
#include "backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <es/json.h>

#include "base/internal.h"

#define SUBJECT_MAX (3 * ES_NAME_MAX + ES_ID_TOKEN_MAX + 8)

bool backup_keeps_header(const char *name)
{
    return strncasecmp(name, "Nats-", 5) != 0 || strcasecmp(name, "Nats-Msg-Id") == 0;
}

es_status backup_write_start(es_buf *out, bool tenancy)
{
    char line[64];
    snprintf(line, sizeof line, "{\"es_export\":%d,\"tenancy\":%s}\n", BACKUP_VERSION,
             tenancy ? "true" : "false");
    return es_buf_append_str(out, line);
}

es_status backup_write_end(es_buf *out, uint64_t events)
{
    char line[64];
    snprintf(line, sizeof line, "{\"end\":true,\"events\":%llu}\n", (unsigned long long)events);
    return es_buf_append_str(out, line);
}

/* ---- writing ------------------------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
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

static es_status headers_value(es_arena *arena, natsMsg *msg, es_value **out)
{
    const char **keys = NULL;
    int nkeys = 0;
    natsStatus ns = natsMsgHeader_Keys(msg, &keys, &nkeys);
    if (ns == NATS_NOT_FOUND)
        nkeys = 0;
    else if (ns != NATS_OK)
        return es_error(ES_ERR_PROTOCOL, "export: cannot read a message's headers");
    qsort(keys, (size_t)nkeys, sizeof *keys, by_name);
    size_t kept = 0;
    for (int i = 0; i < nkeys; i++)
        kept += backup_keeps_header(keys[i]);
    es_value *map = es_value_new_map(arena, kept);
    es_status s = map ? ES_OK : es_error(ES_ERR_NOMEM, "export: out of memory");
    size_t k = 0;
    for (int i = 0; i < nkeys && s == ES_OK; i++) {
        if (!backup_keeps_header(keys[i]))
            continue;
        const char **values = NULL;
        int nvalues = 0;
        if (natsMsgHeader_Values(msg, keys[i], &values, &nvalues) != NATS_OK)
            nvalues = 0;
        es_value *arr = es_value_new_array(arena, (size_t)nvalues);
        s = arr ? ES_OK : es_error(ES_ERR_NOMEM, "export: out of memory");
        for (int v = 0; v < nvalues && s == ES_OK; v++)
            s = text_or_bytes(arena, values[v], &arr->u.array.items[v]);
        free((void *)values);
        if (s == ES_OK) {
            map->u.map.entries[k].key = es_arena_strndup(arena, keys[i], strlen(keys[i]));
            map->u.map.entries[k].key_len = strlen(keys[i]);
            map->u.map.entries[k].value = *arr;
            k++;
        }
    }
    free((void *)keys);
    *out = map;
    return s;
}

es_status backup_write_event(es_arena *arena, natsMsg *msg, const char *rel_subject, es_buf *out)
{
    es_value *line = es_value_new_map(arena, 3);
    es_value *subject = es_value_new_string(arena, rel_subject, strlen(rel_subject));
    es_value *data =
        es_value_new_bytes(arena, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    if (line == NULL || subject == NULL || data == NULL)
        return es_error(ES_ERR_NOMEM, "export: out of memory");
    es_value *headers = NULL;
    es_status s = headers_value(arena, msg, &headers);
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

/* "<type>.<id-token>.<event>", with a tenant first when the store has tenancy. */
static es_status check_subject(const es_value *v, bool tenancy)
{
    if (v == NULL || v->kind != ES_VALUE_STRING || v->u.str.len == 0 || v->u.str.len > SUBJECT_MAX)
        return es_error(ES_ERR_DECODE, "\"subject\" must be a non-empty string");
    char copy[SUBJECT_MAX + 1];
    memcpy(copy, v->u.str.ptr, v->u.str.len);
    copy[v->u.str.len] = '\0';
    if (strlen(copy) != v->u.str.len)
        return es_error(ES_ERR_DECODE, "\"subject\" holds a NUL byte");
    char *tokens[4];
    int want = tenancy ? 4 : 3, n = 0;
    bool shaped = true;
    for (char *p = copy; shaped;) {
        char *dot = strchr(p, '.');
        shaped = n < want && dot != p && *p != '\0';
        if (!shaped)
            break;
        tokens[n++] = p;
        if (dot == NULL)
            break;
        *dot = '\0';
        p = dot + 1;
    }
    if (!shaped || n != want)
        return es_error(ES_ERR_DECODE, "subject '%.80s' does not have the shape %s", v->u.str.ptr,
                        tenancy ? "<tenant>.<type>.<id>.<event>" : "<type>.<id>.<event>");
    int i = 0;
    if (tenancy && !es_valid_name(tokens[i++]))
        return es_error(ES_ERR_DECODE, "subject '%.80s': invalid tenant", v->u.str.ptr);
    if (!es_valid_name(tokens[i++]))
        return es_error(ES_ERR_DECODE, "subject '%.80s': invalid entity type", v->u.str.ptr);
    char id[ES_ID_MAX + 1];
    if (es_id_unescape(tokens[i], strlen(tokens[i]), id, sizeof id, NULL) != ES_OK)
        return es_error(ES_ERR_DECODE, "subject '%.80s': invalid escaped id", v->u.str.ptr);
    if (!es_valid_name(tokens[i + 1]))
        return es_error(ES_ERR_DECODE, "subject '%.80s': invalid event type", v->u.str.ptr);
    return ES_OK;
}

static bool valid_header_name(const char *k, size_t len)
{
    if (len == 0 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] >= 0x7f || k[i] == ':')
            return false;
    return true;
}

static bool valid_header_value(const es_value *v)
{
    const void *p = v->kind == ES_VALUE_STRING ? (const void *)v->u.str.ptr : v->u.bytes.ptr;
    size_t len = v->kind == ES_VALUE_STRING ? v->u.str.len : v->u.bytes.len;
    if (v->kind != ES_VALUE_STRING && v->kind != ES_VALUE_BYTES)
        return false;
    return len <= BACKUP_VALUE_MAX &&
           (len == 0 || (memchr(p, '\0', len) == NULL && memchr(p, '\r', len) == NULL &&
                         memchr(p, '\n', len) == NULL));
}

static es_status check_headers(const es_value *h, backup_line *out)
{
    if (h == NULL || h->kind != ES_VALUE_MAP || h->u.map.count > BACKUP_HEADERS_MAX)
        return es_error(ES_ERR_DECODE, "\"headers\" must be an object of at most %d names",
                        BACKUP_HEADERS_MAX);
    for (size_t i = 0; i < h->u.map.count; i++) {
        const es_value_entry *e = &h->u.map.entries[i];
        if (!valid_header_name(e->key, e->key_len) || strlen(e->key) != e->key_len)
            return es_error(ES_ERR_DECODE, "invalid header name \"%.40s\"", e->key);
        if (!backup_keeps_header(e->key))
            return es_error(ES_ERR_INVALID,
                            "header %.40s is a JetStream control header: not part of an event",
                            e->key);
        if (e->value.kind != ES_VALUE_ARRAY || e->value.u.array.count == 0 ||
            e->value.u.array.count > BACKUP_VALUES_MAX)
            return es_error(ES_ERR_DECODE, "header %.40s: values must be a non-empty array",
                            e->key);
        for (size_t v = 0; v < e->value.u.array.count; v++)
            if (!valid_header_value(&e->value.u.array.items[v]))
                return es_error(ES_ERR_DECODE,
                                "header %.40s: a value must be one line of at most %d bytes",
                                e->key, BACKUP_VALUE_MAX);
        out->headers[i] = (backup_header){e->key, &e->value};
    }
    out->n_headers = h->u.map.count;
    return ES_OK;
}

static es_status parse_event(const es_value *o, bool tenancy, backup_line *out)
{
    static const char *const keys[] = {"subject", "headers", "data"};
    es_status s = only_keys(o, keys, 3);
    const es_value *subject = es_value_get(o, "subject"), *data = es_value_get(o, "data");
    if (s == ES_OK)
        s = check_subject(subject, tenancy);
    if (s == ES_OK)
        s = check_headers(es_value_get(o, "headers"), out);
    if (s == ES_OK && (data == NULL || data->kind != ES_VALUE_BYTES))
        s = es_error(ES_ERR_DECODE, "\"data\" must be {\"$bytes\": base64}");
    if (s != ES_OK)
        return s;
    out->kind = BACKUP_EVENT;
    out->rel_subject = subject->u.str.ptr;
    out->data = data->u.bytes.ptr;
    out->data_len = data->u.bytes.len;
    return ES_OK;
}

static es_status parse_start(const es_value *o, backup_line *out)
{
    static const char *const keys[] = {"es_export", "tenancy"};
    const es_value *version = es_value_get(o, "es_export"), *tenancy = es_value_get(o, "tenancy");
    es_status s = only_keys(o, keys, 2);
    if (s != ES_OK)
        return s;
    if (version->kind != ES_VALUE_INT || version->u.i != BACKUP_VERSION)
        return es_error(ES_ERR_DECODE, "export format version %lld is not %d (a newer es-tool?)",
                        version->kind == ES_VALUE_INT ? (long long)version->u.i : -1LL,
                        BACKUP_VERSION);
    if (tenancy == NULL || tenancy->kind != ES_VALUE_BOOL)
        return es_error(ES_ERR_DECODE, "\"tenancy\" must be true or false");
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
    out->n_headers = 0;
    if (es_value_get(o, "es_export") != NULL)
        return parse_start(o, out);
    if (es_value_get(o, "end") != NULL)
        return parse_end(o, out);
    return parse_event(o, tenancy, out);
}

/* ---- publishing --------------------------------------------------------------- */

static es_status set_header(natsMsg *m, const char *name, const es_value *v, bool first)
{
    const char *p = v->kind == ES_VALUE_STRING ? v->u.str.ptr : (const char *)v->u.bytes.ptr;
    size_t len = v->kind == ES_VALUE_STRING ? v->u.str.len : v->u.bytes.len;
    char *value = strndup(p ? p : "", len);
    if (value == NULL)
        return es_error(ES_ERR_NOMEM, "import: out of memory");
    natsStatus ns = first ? natsMsgHeader_Set(m, name, value) : natsMsgHeader_Add(m, name, value);
    free(value);
    return ns == NATS_OK ? ES_OK : es_error(ES_ERR_INVALID, "import: header %.40s refused", name);
}

es_status backup_event_msg(const backup_line *ev, const char *store, natsMsg **out)
{
    char subject[SUBJECT_MAX + 48];
    snprintf(subject, sizeof subject, "$ES.%s.%s", store, ev->rel_subject);
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subject, NULL, (const char *)ev->data, (int)ev->data_len) != NATS_OK)
        return es_error(ES_ERR_NOMEM, "import: out of memory");
    es_status s = ES_OK;
    for (size_t i = 0; i < ev->n_headers && s == ES_OK; i++) {
        const es_value *values = ev->headers[i].values;
        for (size_t v = 0; v < values->u.array.count && s == ES_OK; v++)
            s = set_header(m, ev->headers[i].name, &values->u.array.items[v], v == 0);
    }
    if (s != ES_OK) {
        natsMsg_Destroy(m);
        return s;
    }
    *out = m;
    return ES_OK;
}
