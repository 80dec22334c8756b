/* JSON <-> value, with the atproto "$link"/"$bytes" forms.
 *
 * Reading goes through jansson (a complete, well-tested parser: escapes,
 * surrogate pairs, number syntax, duplicate keys), then the json_t tree is
 * copied into the arena. Writing does not build a json_t tree: values are
 * written straight into the output buffer, which avoids one allocation per
 * node and is what the firehose mapping path needs. */
#include <es/json.h>

#include <es/base.h>
#include <es/cid.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "base/alloc.h"
#include "base/internal.h"

#define LINK_KEY  "$link"
#define BYTES_KEY "$bytes"
/* A CID of at most 128 digest bytes is at most 155 binary bytes: 250 base32
 * characters plus the multibase prefix and a NUL. */
#define CID_TEXT_MAX 256

void es_json_options_init(es_json_options *o)
{
    if (o == NULL)
        return;
    o->atproto = false;
    o->max_depth = 0;
}

static es_status check_depth_option(const es_json_options *o, const char *fn)
{
    if (o->max_depth > ES_JSON_MAX_DEPTH)
        return es_error(ES_ERR_INVALID, "%s: max_depth %zu above %d", fn, o->max_depth,
                        ES_JSON_MAX_DEPTH);
    return ES_OK;
}

/* ---- writing -------------------------------------------------------------- */

typedef struct writer {
    es_buf *out;
    size_t max_depth;
    bool atproto;
} writer;

static es_status put(writer *w, const char *s, size_t n)
{
    return es_buf_append(w->out, s, n);
}

static es_status put_text(writer *w, const char *s, size_t len)
{
    if (len > 0 && s == NULL)
        return es_error(ES_ERR_ENCODE, "json: text with NULL data");
    if (!esi_utf8_valid((const uint8_t *)s, len, NULL))
        return es_error(ES_ERR_ENCODE, "json: text is not valid UTF-8");
    es_status st = es_buf_append_byte(w->out, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < len && st == ES_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        st = put(w, s + run, i - run);
        char esc[8];
        int n;
        switch (c) {
        case '"': n = snprintf(esc, sizeof esc, "\\\""); break;
        case '\\': n = snprintf(esc, sizeof esc, "\\\\"); break;
        case '\n': n = snprintf(esc, sizeof esc, "\\n"); break;
        case '\r': n = snprintf(esc, sizeof esc, "\\r"); break;
        case '\t': n = snprintf(esc, sizeof esc, "\\t"); break;
        default: n = snprintf(esc, sizeof esc, "\\u%04x", c); break;
        }
        if (st == ES_OK)
            st = put(w, esc, (size_t)n);
        run = i + 1;
    }
    if (st == ES_OK)
        st = put(w, s + run, len - run);
    return st != ES_OK ? st : es_buf_append_byte(w->out, '"');
}

static es_status put_uint(writer *w, uint64_t u, bool negative)
{
    char digits[21];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (negative)
        digits[--n] = '-';
    return put(w, digits + n, sizeof digits - n);
}

static es_status put_float(writer *w, double f)
{
    if (w->atproto)
        return es_error(ES_ERR_ENCODE, "json: float %g not allowed in the atproto data model", f);
    if (!isfinite(f))
        return es_error(ES_ERR_ENCODE, "json: NaN or infinite float has no JSON form");
    char text[40];
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, f);
        if (strtod(text, NULL) == f)
            break;
    }
    if (strpbrk(text, ".e") == NULL)
        strcat(text, ".0"); /* keep it a float when read back */
    return put(w, text, strlen(text));
}

/* {"<key>":" then the caller's payload, then "}: the $link/$bytes wrapper. */
static es_status put_wrapped(writer *w, const char *key, const char *payload, size_t n)
{
    es_status st = put(w, "{\"", 2);
    if (st == ES_OK)
        st = put(w, key, strlen(key));
    if (st == ES_OK)
        st = put(w, "\":\"", 3);
    if (st == ES_OK)
        st = put(w, payload, n);
    return st != ES_OK ? st : put(w, "\"}", 2);
}

static es_status put_link(writer *w, const es_value *v)
{
    char text[CID_TEXT_MAX];
    if (es_cid_to_string(v->u.bytes.ptr, v->u.bytes.len, text, sizeof text) != ES_OK)
        return es_error(ES_ERR_ENCODE, "json: LINK has no CID string form: %s", es_last_error());
    return put_wrapped(w, LINK_KEY, text, strlen(text));
}

static es_status put_bytes(writer *w, const es_value *v)
{
    size_t n = es_base64_encoded_len(v->u.bytes.len);
    if (v->u.bytes.len > 0 && v->u.bytes.ptr == NULL)
        return es_error(ES_ERR_ENCODE, "json: bytes with NULL data");
    char *text = esi_malloc(n ? n : 1);
    if (text == NULL)
        return es_error(ES_ERR_NOMEM, "json: out of memory for %zu base64 characters", n);
    es_status st = es_base64_encode(v->u.bytes.ptr, v->u.bytes.len, text, n, &n);
    if (st == ES_OK)
        st = put_wrapped(w, BYTES_KEY, text, n);
    esi_free(text);
    return st;
}

static es_status put_value(writer *w, const es_value *v, size_t depth);

static es_status put_container(writer *w, const es_value *v, size_t depth)
{
    if (depth >= w->max_depth)
        return es_error(ES_ERR_TOO_DEEP, "json: value nested deeper than %zu", w->max_depth);
    bool is_map = v->kind == ES_VALUE_MAP;
    size_t n = is_map ? v->u.map.count : v->u.array.count;
    if (n > 0 && (is_map ? (void *)v->u.map.entries : (void *)v->u.array.items) == NULL)
        return es_error(ES_ERR_ENCODE, "json: container with NULL elements");
    es_status st = es_buf_append_byte(w->out, is_map ? '{' : '[');
    for (size_t i = 0; i < n && st == ES_OK; i++) {
        if (i > 0)
            st = es_buf_append_byte(w->out, ',');
        if (st == ES_OK && is_map) {
            const es_value_entry *e = &v->u.map.entries[i];
            st = put_text(w, e->key, e->key_len);
            if (st == ES_OK)
                st = es_buf_append_byte(w->out, ':');
            if (st == ES_OK)
                st = put_value(w, &e->value, depth + 1);
        } else if (st == ES_OK) {
            st = put_value(w, &v->u.array.items[i], depth + 1);
        }
    }
    return st != ES_OK ? st : es_buf_append_byte(w->out, is_map ? '}' : ']');
}

static es_status put_value(writer *w, const es_value *v, size_t depth)
{
    switch (v->kind) {
    case ES_VALUE_NULL: return put(w, "null", 4);
    case ES_VALUE_BOOL: return v->u.b ? put(w, "true", 4) : put(w, "false", 5);
    case ES_VALUE_INT:
        return put_uint(w, v->u.i < 0 ? ~(uint64_t)v->u.i + 1 : (uint64_t)v->u.i, v->u.i < 0);
    case ES_VALUE_UINT: return put_uint(w, v->u.u, false);
    case ES_VALUE_FLOAT: return put_float(w, v->u.f);
    case ES_VALUE_STRING: return put_text(w, v->u.str.ptr, v->u.str.len);
    case ES_VALUE_BYTES: return put_bytes(w, v);
    case ES_VALUE_LINK: return put_link(w, v);
    case ES_VALUE_ARRAY:
    case ES_VALUE_MAP: return put_container(w, v, depth);
    }
    return es_error(ES_ERR_ENCODE, "json: unknown value kind %d", (int)v->kind);
}

es_status es_json_encode(const es_value *v, const es_json_options *o, es_buf *out)
{
    es_json_options defaults;
    if (o == NULL) {
        es_json_options_init(&defaults);
        o = &defaults;
    }
    if (v == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_json_encode: NULL argument");
    es_status st = check_depth_option(o, "es_json_encode");
    if (st != ES_OK)
        return st;
    writer w = {out, o->max_depth ? o->max_depth : ES_JSON_DEFAULT_DEPTH, o->atproto};
    return put_value(&w, v, 0);
}

/* ---- reading -------------------------------------------------------------- */

typedef struct reader {
    es_arena *arena;
    size_t max_depth;
    bool atproto;
} reader;

__attribute__((cold)) static es_status arena_full(const reader *r)
{
    return es_arena_error(r->arena, "json");
}

static es_status read_value(reader *r, json_t *j, es_value *out, size_t depth);

/* {"$link": "<cid>"} or {"$bytes": "<base64>"}: the only key, a string. */
static es_status read_special(reader *r, json_t *obj, const char *key, es_value *out)
{
    json_t *s = json_object_get(obj, key);
    if (json_object_size(obj) != 1)
        return es_error(ES_ERR_DECODE, "json: a \"%s\" object with other keys", key);
    if (!json_is_string(s))
        return es_error(ES_ERR_DECODE, "json: \"%s\" is not a string", key);
    const char *text = json_string_value(s);
    size_t len = json_string_length(s);
    bool link = strcmp(key, LINK_KEY) == 0;
    size_t cap = link ? es_base32_decoded_max(len) : es_base64_decoded_max(len);
    uint8_t *bin = es_arena_alloc(r->arena, cap ? cap : 1);
    if (bin == NULL)
        return arena_full(r);
    size_t n = 0;
    es_status st = link ? es_cid_from_string(text, len, bin, cap, &n)
                        : es_base64_decode(text, len, bin, cap, &n);
    if (st != ES_OK)
        return es_error(ES_ERR_DECODE, "json: bad \"%s\" value: %s", key, es_last_error());
    out->kind = link ? ES_VALUE_LINK : ES_VALUE_BYTES;
    out->u.bytes.ptr = bin;
    out->u.bytes.len = n;
    return ES_OK;
}

static es_status read_object(reader *r, json_t *obj, es_value *out, size_t depth)
{
    if (json_object_get(obj, LINK_KEY) != NULL)
        return read_special(r, obj, LINK_KEY, out);
    if (json_object_get(obj, BYTES_KEY) != NULL)
        return read_special(r, obj, BYTES_KEY, out);
    size_t n = json_object_size(obj);
    es_value_entry *entries = n ? es_arena_calloc(r->arena, n, sizeof *entries) : NULL;
    if (n && entries == NULL)
        return arena_full(r);
    size_t i = 0;
    for (void *it = json_object_iter(obj); it != NULL && i < n;
         it = json_object_iter_next(obj, it), i++) {
        size_t klen = json_object_iter_key_len(it);
        char *key = es_arena_strndup(r->arena, json_object_iter_key(it), klen);
        if (key == NULL)
            return arena_full(r);
        entries[i].key = key;
        entries[i].key_len = klen;
        es_status st = read_value(r, json_object_iter_value(it), &entries[i].value, depth + 1);
        if (st != ES_OK)
            return st;
    }
    out->kind = ES_VALUE_MAP;
    out->u.map.entries = entries;
    out->u.map.count = i;
    return ES_OK;
}

static es_status read_array(reader *r, json_t *arr, es_value *out, size_t depth)
{
    size_t n = json_array_size(arr);
    es_value *items = n ? es_arena_calloc(r->arena, n, sizeof *items) : NULL;
    if (n && items == NULL)
        return arena_full(r);
    for (size_t i = 0; i < n; i++) {
        es_status st = read_value(r, json_array_get(arr, i), &items[i], depth + 1);
        if (st != ES_OK)
            return st;
    }
    out->kind = ES_VALUE_ARRAY;
    out->u.array.items = items;
    out->u.array.count = n;
    return ES_OK;
}

static es_status read_real(reader *r, double f, es_value *out)
{
    /* ±2^63 are exact doubles: inside them the cast is defined */
    bool in_range = f >= -9223372036854775808.0 && f < 9223372036854775808.0;
    bool integral = in_range && (double)(int64_t)f == f;
    if (r->atproto && !integral)
        return es_error(ES_ERR_DECODE, "json: number %g is not an integer (atproto data model)", f);
    if (r->atproto) {
        out->kind = ES_VALUE_INT;
        out->u.i = (int64_t)f;
    } else {
        out->kind = ES_VALUE_FLOAT;
        out->u.f = f;
    }
    return ES_OK;
}

static es_status read_value(reader *r, json_t *j, es_value *out, size_t depth)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth >= r->max_depth)
            return es_error(ES_ERR_TOO_DEEP, "json: nesting deeper than %zu", r->max_depth);
        return json_is_object(j) ? read_object(r, j, out, depth) : read_array(r, j, out, depth);
    case JSON_STRING: {
        size_t len = json_string_length(j);
        char *s = es_arena_strndup(r->arena, json_string_value(j), len);
        if (s == NULL)
            return arena_full(r);
        out->kind = ES_VALUE_STRING;
        out->u.str.ptr = s;
        out->u.str.len = len;
        return ES_OK;
    }
    case JSON_INTEGER:
        out->kind = ES_VALUE_INT;
        out->u.i = (int64_t)json_integer_value(j);
        return ES_OK;
    case JSON_REAL: return read_real(r, json_real_value(j), out);
    case JSON_TRUE:
    case JSON_FALSE:
        out->kind = ES_VALUE_BOOL;
        out->u.b = json_is_true(j);
        return ES_OK;
    case JSON_NULL: out->kind = ES_VALUE_NULL; return ES_OK;
    }
    return es_error(ES_ERR_DECODE, "json: unknown jansson type");
}

es_status es_json_decode(const char *text, size_t len, const es_json_options *o, es_arena *arena,
                         es_value **out)
{
    es_json_options defaults;
    if (o == NULL) {
        es_json_options_init(&defaults);
        o = &defaults;
    }
    if (out != NULL)
        *out = NULL;
    if ((text == NULL && len > 0) || arena == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_json_decode: NULL argument");
    es_status st = check_depth_option(o, "es_json_decode");
    if (st != ES_OK)
        return st;
    json_error_t err;
    json_t *root = json_loadb(text ? text : "", len,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (root == NULL)
        return es_error(ES_ERR_DECODE, "json: %s at line %d, column %d", err.text, err.line,
                        err.column);
    reader r = {arena, o->max_depth ? o->max_depth : ES_JSON_DEFAULT_DEPTH, o->atproto};
    es_value *v = es_arena_alloc(arena, sizeof *v);
    st = v ? read_value(&r, root, v, 0) : arena_full(&r);
    json_decref(root);
    if (st == ES_OK)
        *out = v;
    return st;
}
