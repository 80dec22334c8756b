/* Rendering events for replay (render.h). The JSON line is built as a value
 * of the common value model and written by the codecs' JSON writer, so
 * payloads keep the atproto JSON form ($link, $bytes) and one writer escapes
 * every string. */
#include "render.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/codec.h>
#include <es/json.h>

#include "estool.h"
#include "idtext.h"

#define ARENA_LIMIT (256u << 20) /* decoded payload trees: bounded, reset per event */
#define FIELDS_MAX  16

#define C_RESET  "\033[0m"
#define C_BOLD   "\033[1m"
#define C_DIM    "\033[2m"
#define C_RED    "\033[31m"
#define C_GREEN  "\033[32m"
#define C_YELLOW "\033[33m"
#define C_BLUE   "\033[34m"
#define C_CYAN   "\033[36m"

struct tool_renderer {
    tool_format format;
    bool colour;
    es_arena *arena;
    es_buf line;    /* what is written for one event */
    es_buf scratch; /* JSON text of the payload, for pretty */
};

bool tool_format_parse(const char *text, tool_format *out)
{
    static const struct {
        const char *name;
        tool_format format;
    } formats[] = {{"jsonl", FORMAT_JSONL},
                   {"json", FORMAT_JSONL},
                   {"pretty", FORMAT_PRETTY},
                   {"raw", FORMAT_RAW}};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(text, formats[i].name) == 0) {
            *out = formats[i].format;
            return true;
        }
    return false;
}

es_status tool_renderer_create(tool_format format, bool colour, tool_renderer **out)
{
    tool_renderer *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ES_ERR_NOMEM;
    r->format = format;
    r->colour = colour && format == FORMAT_PRETTY;
    es_status s = es_arena_create(ARENA_LIMIT, &r->arena);
    if (s != ES_OK) {
        free(r);
        return s;
    }
    *out = r;
    return ES_OK;
}

void tool_renderer_destroy(tool_renderer *r)
{
    if (r == NULL)
        return;
    es_arena_destroy(r->arena);
    es_buf_free(&r->line);
    es_buf_free(&r->scratch);
    free(r);
}

/* ---- the JSON line --------------------------------------------------------- */

/* Text as a JSON string when it is valid UTF-8, else as {"$bytes": ...}:
 * ids and header values are bytes, and nothing may be lost or mangled. */
static es_value *text_value(tool_renderer *r, const char *s, size_t len)
{
    es_value *v = es_value_new_string(r->arena, s, len);
    if (v == NULL)
        return NULL;
    size_t mark = r->scratch.len;
    es_status st = es_json_encode(v, NULL, &r->scratch);
    r->scratch.len = mark;
    return st == ES_OK ? v : es_value_new_bytes(r->arena, s, len);
}

es_status tool_json_append_text(es_buf *out, const char *s, size_t len)
{
    es_value v = {.kind = ES_VALUE_STRING};
    v.u.str.ptr = s;
    v.u.str.len = len;
    size_t mark = out->len;
    es_status st = es_json_encode(&v, NULL, out);
    if (st != ES_ERR_ENCODE)
        return st;
    out->len = mark;
    v.kind = ES_VALUE_BYTES;
    v.u.bytes.ptr = (const uint8_t *)s;
    v.u.bytes.len = len;
    return es_json_encode(&v, NULL, out);
}

static es_value *str_value(tool_renderer *r, const char *s)
{
    return text_value(r, s ? s : "", s ? strlen(s) : 0);
}

typedef struct fields {
    es_value *map;
    bool failed;
} fields;

static void put(fields *f, const char *key, es_value *v)
{
    if (v == NULL || f->map->u.map.count >= FIELDS_MAX) {
        f->failed = true;
        return;
    }
    es_value_entry *e = &f->map->u.map.entries[f->map->u.map.count++];
    e->key = key;
    e->key_len = strlen(key);
    e->value = *v;
}

static es_value *meta_value(tool_renderer *r, const es_event *ev)
{
    size_t n = es_event_meta_count(ev);
    es_value *m = es_value_new_map(r->arena, n);
    for (size_t i = 0; m != NULL && i < n; i++) {
        const char *k = NULL, *v = NULL;
        es_event_meta_at(ev, i, &k, &v);
        es_value *val = str_value(r, v);
        if (val == NULL)
            return NULL;
        m->u.map.entries[i].key = k ? k : "";
        m->u.map.entries[i].key_len = k ? strlen(k) : 0;
        m->u.map.entries[i].value = *val;
    }
    return m;
}

/* The payload decoded by its codec, or why it cannot be (*status, *error). */
static es_value *data_value(tool_renderer *r, const es_event *ev, es_status *status,
                            const char **error)
{
    es_value *v = NULL;
    *status = es_event_decode(ev, r->arena, &v);
    *error = *status == ES_OK ? NULL : es_last_error();
    return v;
}

static es_value *seq_value(tool_renderer *r, uint64_t seq)
{
    return es_value_new_int(r->arena, seq > INT64_MAX ? INT64_MAX : (int64_t)seq);
}

/* `encode_error`: NULL to decode the payload into "data"; else the reason
 * the decoded payload could not be written as JSON, shown instead. */
static es_status build_line(tool_renderer *r, const es_event *ev, const char *encode_error)
{
    fields f = {es_value_new_map(r->arena, FIELDS_MAX), false};
    if (f.map == NULL)
        return ES_ERR_NOMEM;
    f.map->u.map.count = 0;
    size_t id_len = 0;
    const char *id = es_event_entity_id(ev, &id_len);
    put(&f, "seq", seq_value(r, es_event_seq(ev)));
    put(&f, "subject", str_value(r, es_event_subject(ev)));
    if (es_event_tenant(ev) != NULL)
        put(&f, "tenant", str_value(r, es_event_tenant(ev)));
    put(&f, "type", str_value(r, es_event_entity_type(ev)));
    put(&f, "id", text_value(r, id, id_len));
    put(&f, "event", str_value(r, es_event_event_type(ev)));
    put(&f, "event_id", str_value(r, es_event_event_id(ev)));
    put(&f, "time", str_value(r, es_event_time(ev)));
    put(&f, "codec", str_value(r, es_event_codec(ev)));
    put(&f, "meta", meta_value(r, ev));
    es_status ds = ES_ERR_ENCODE;
    const char *err = encode_error;
    es_value *data = encode_error ? NULL : data_value(r, ev, &ds, &err);
    if (ds == ES_OK) {
        put(&f, "data", data);
    } else {
        put(&f, "data_status", str_value(r, es_status_text(ds)));
        put(&f, "data_error", str_value(r, err));
    }
    if (f.failed)
        return ES_ERR_NOMEM;
    es_buf_clear(&r->line);
    return es_json_encode(f.map, NULL, &r->line);
}

static es_status render_jsonl(tool_renderer *r, const es_event *ev)
{
    es_status s = build_line(r, ev, NULL);
    if (s == ES_ERR_ENCODE) { /* a payload value JSON cannot hold (NaN...): say so instead */
        char why[256];
        snprintf(why, sizeof why, "%s", es_last_error());
        es_arena_reset(r->arena);
        s = build_line(r, ev, why);
    }
    if (s == ES_OK)
        s = es_buf_append_byte(&r->line, '\n');
    return s;
}

/* ---- pretty ---------------------------------------------------------------- */

static void pcolour(tool_renderer *r, es_buf *b, const char *code)
{
    if (r->colour)
        es_buf_append_str(b, code);
}


static void append_plain(es_buf *b, const char *s)
{
    for (; s && *s; s++)
        es_buf_append_byte(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : (uint8_t)*s);
}

static es_status render_pretty(tool_renderer *r, const es_event *ev)
{
    es_buf *b = &r->line;
    es_buf_clear(b);
    size_t id_len = 0;
    const char *id = es_event_entity_id(ev, &id_len);
    pcolour(r, b, C_BOLD C_YELLOW);
    es_cli_buf_printf(b, "#%" PRIu64, es_event_seq(ev));
    pcolour(r, b, C_RESET);
    es_cli_buf_printf(b, "  %s  ", es_event_time(ev));
    if (es_event_tenant(ev) != NULL)
        es_cli_buf_printf(b, "%s/", es_event_tenant(ev));
    pcolour(r, b, C_CYAN);
    es_cli_buf_printf(b, "%s ", es_event_entity_type(ev));
    tool_append_display_id(b, id, id_len);
    pcolour(r, b, C_RESET);
    es_buf_append_str(b, "  ");
    pcolour(r, b, C_BOLD C_GREEN);
    es_cli_buf_printf(b, "%s", es_event_event_type(ev));
    pcolour(r, b, C_RESET);
    pcolour(r, b, C_DIM);
    es_cli_buf_printf(b, "  (%s, id %s)", es_event_codec(ev), es_event_event_id(ev));
    pcolour(r, b, C_RESET);
    es_buf_append_byte(b, '\n');
    size_t nmeta = es_event_meta_count(ev);
    if (nmeta > 0) {
        es_buf_append_str(b, "  meta:");
        for (size_t i = 0; i < nmeta; i++) {
            const char *k = NULL, *v = NULL;
            es_event_meta_at(ev, i, &k, &v);
            es_buf_append_byte(b, ' ');
            append_plain(b, k);
            es_buf_append_byte(b, '=');
            append_plain(b, v);
        }
        es_buf_append_byte(b, '\n');
    }
    es_status ds;
    const char *err;
    es_value *data = data_value(r, ev, &ds, &err);
    es_buf_clear(&r->scratch);
    if (ds == ES_OK)
        ds = es_json_encode(data, NULL, &r->scratch);
    es_buf_append_str(b, "  data: ");
    if (ds == ES_OK) {
        tool_json_indent((const char *)r->scratch.data, r->scratch.len, 2, r->colour, b);
    } else {
        pcolour(r, b, C_RED);
        es_cli_buf_printf(b, "(%s", es_status_text(ds));
        if (err && *err) {
            es_buf_append_str(b, ": ");
            append_plain(b, err);
        }
        es_buf_append_byte(b, ')');
        pcolour(r, b, C_RESET);
    }
    return es_buf_append_str(b, "\n\n");
}

/* ---- raw ------------------------------------------------------------------- */

static es_status render_raw(tool_renderer *r, const es_event *ev)
{
    const void *data = NULL;
    size_t len = 0;
    es_buf_clear(&r->line);
    es_status s = es_event_data(ev, &data, &len);
    if (s != ES_OK) {
        es_cli_error("event %" PRIu64 ": no data to write: %s", es_event_seq(ev),
                     es_status_text(s));
        return ES_OK;
    }
    return es_buf_append(&r->line, data, len);
}

es_status tool_render(tool_renderer *r, const es_event *ev)
{
    es_arena_reset(r->arena);
    es_status s;
    switch (r->format) {
    case FORMAT_PRETTY: s = render_pretty(r, ev); break;
    case FORMAT_RAW: s = render_raw(r, ev); break;
    default: s = render_jsonl(r, ev); break;
    }
    if (s != ES_OK)
        return s;
    return tool_write(r->line.data, r->line.len) ? ES_OK : ES_ERR_IO;
}

/* ---- JSON indentation ------------------------------------------------------- */

static void newline(es_buf *out, int margin, int depth)
{
    es_buf_append_byte(out, '\n');
    for (int i = 0; i < margin + 2 * depth; i++)
        es_buf_append_byte(out, ' ');
}

/* The end of the JSON string starting at json[i] (its opening quote). */
static size_t string_end(const char *json, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (json[i] == '\\')
            i++;
        else if (json[i] == '"')
            return i + 1;
    }
    return len;
}

es_status tool_json_indent(const char *json, size_t len, int margin, bool colour, es_buf *out)
{
    int depth = 0;
    size_t i = 0;
    while (i < len) {
        char c = json[i];
        if (c == '"') {
            size_t end = string_end(json, len, i);
            bool key = end < len && json[end] == ':';
            if (colour)
                es_buf_append_str(out, key ? C_BLUE : C_GREEN);
            es_buf_append(out, json + i, end - i);
            if (colour)
                es_buf_append_str(out, C_RESET);
            i = end;
        } else if ((c == '{' || c == '[') && i + 1 < len &&
                   (json[i + 1] == '}' || json[i + 1] == ']')) {
            es_buf_append(out, json + i, 2); /* {} and [] stay as they are */
            i += 2;
        } else if (c == '{' || c == '[') {
            es_buf_append_byte(out, (uint8_t)c);
            newline(out, margin, ++depth);
            i++;
            continue;
        } else if (c == ',') {
            es_buf_append_byte(out, ',');
            newline(out, margin, depth);
            i++;
            continue;
        } else if (c == ':') {
            es_buf_append_str(out, ": ");
            i++;
            continue;
        } else {
            es_buf_append_byte(out, (uint8_t)c); /* a scalar's character, or a closing bracket */
            i++;
        }
        /* After a value: its container may close next. */
        if (i < len && (json[i] == '}' || json[i] == ']') && depth > 0)
            newline(out, margin, --depth);
    }
    return ES_OK;
}
