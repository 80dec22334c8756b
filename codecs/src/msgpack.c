/* MessagePack codec. Encoding uses msgpack-c's packer. Decoding does not use
 * msgpack-c's unpacker: it allocates an array or map of the announced size
 * before reading a single element, so five input bytes (0xdd + a 32-bit
 * count) can make it allocate gigabytes. This reader checks every count and
 * length against the bytes left first, allocates only from the arena and
 * bounds the depth, like the CBOR decoder. */
#include <es/msgpack.h>

#include <es/cid.h>

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"
#include "base/internal.h"

#define MAX_DEPTH_LIMIT 1024

/* ---- encoding ------------------------------------------------------------- */

typedef struct packer {
    msgpack_packer pk;
    es_buf *out;
    es_status failure; /* why the write callback refused, if it did */
    size_t max_depth;
} packer;

static int write_to_buf(void *data, const char *buf, size_t len)
{
    packer *p = data;
    p->failure = es_buf_append(p->out, buf, len);
    return p->failure == ES_OK ? 0 : -1;
}

static es_status packed(packer *p, int rc)
{
    if (rc == 0)
        return ES_OK;
    return p->failure != ES_OK ? p->failure : es_error(ES_ERR_ENCODE, "msgpack: packer failed");
}

static es_status pack_value(packer *p, const es_value *v, size_t depth);

static es_status pack_text(packer *p, const char *s, size_t len)
{
    if ((len > 0 && s == NULL) || !esi_utf8_valid((const uint8_t *)s, len, NULL))
        return es_error(ES_ERR_ENCODE, "msgpack: text is not valid UTF-8");
    es_status st = packed(p, msgpack_pack_str(&p->pk, len));
    return st != ES_OK ? st : packed(p, msgpack_pack_str_body(&p->pk, s, len));
}

static es_status pack_container(packer *p, const es_value *v, size_t depth)
{
    if (depth >= p->max_depth)
        return es_error(ES_ERR_TOO_DEEP, "msgpack: value nested deeper than %zu", p->max_depth);
    es_status st;
    if (v->kind == ES_VALUE_ARRAY) {
        st = packed(p, msgpack_pack_array(&p->pk, v->u.array.count));
        for (size_t i = 0; i < v->u.array.count && st == ES_OK; i++)
            st = pack_value(p, &v->u.array.items[i], depth + 1);
        return st;
    }
    st = packed(p, msgpack_pack_map(&p->pk, v->u.map.count));
    for (size_t i = 0; i < v->u.map.count && st == ES_OK; i++) {
        const es_value_entry *e = &v->u.map.entries[i];
        st = pack_text(p, e->key, e->key_len);
        if (st == ES_OK)
            st = pack_value(p, &e->value, depth + 1);
    }
    return st;
}

static es_status pack_value(packer *p, const es_value *v, size_t depth)
{
    msgpack_packer *pk = &p->pk;
    es_cid cid;
    switch (v->kind) {
    case ES_VALUE_NULL: return packed(p, msgpack_pack_nil(pk));
    case ES_VALUE_BOOL: return packed(p, v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    case ES_VALUE_INT: return packed(p, msgpack_pack_int64(pk, v->u.i));
    case ES_VALUE_UINT: return packed(p, msgpack_pack_uint64(pk, v->u.u));
    case ES_VALUE_FLOAT: return packed(p, msgpack_pack_double(pk, v->u.f));
    case ES_VALUE_STRING: return pack_text(p, v->u.str.ptr, v->u.str.len);
    case ES_VALUE_BYTES:
        if (v->u.bytes.len > 0 && v->u.bytes.ptr == NULL)
            return es_error(ES_ERR_ENCODE, "msgpack: bytes with NULL data");
        if (packed(p, msgpack_pack_bin(pk, v->u.bytes.len)) != ES_OK)
            return p->failure;
        return packed(p, msgpack_pack_bin_body(pk, v->u.bytes.ptr, v->u.bytes.len));
    case ES_VALUE_LINK:
        if (v->u.bytes.ptr == NULL || es_cid_parse(v->u.bytes.ptr, v->u.bytes.len, &cid) != ES_OK ||
            cid.len != v->u.bytes.len)
            return es_error(ES_ERR_ENCODE, "msgpack: a LINK value that is not one binary CID");
        if (packed(p, msgpack_pack_ext(pk, v->u.bytes.len, ES_MSGPACK_EXT_LINK)) != ES_OK)
            return p->failure;
        return packed(p, msgpack_pack_ext_body(pk, v->u.bytes.ptr, v->u.bytes.len));
    case ES_VALUE_ARRAY:
    case ES_VALUE_MAP: return pack_container(p, v, depth);
    }
    return es_error(ES_ERR_ENCODE, "msgpack: unknown value kind %d", (int)v->kind);
}

es_status es_msgpack_encode(const es_value *v, size_t max_depth, es_buf *out)
{
    if (v == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_msgpack_encode: NULL argument");
    if (max_depth > MAX_DEPTH_LIMIT)
        return es_error(ES_ERR_INVALID, "es_msgpack_encode: max_depth %zu above %d", max_depth,
                        MAX_DEPTH_LIMIT);
    packer p = {.out = out,
                .failure = ES_OK,
                .max_depth = max_depth ? max_depth : ES_MSGPACK_DEFAULT_DEPTH};
    msgpack_packer_init(&p.pk, &p, write_to_buf);
    return pack_value(&p, v, 0);
}

/* ---- decoding ------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *start, *p, *end;
    es_arena *arena;
    size_t max_depth;
} reader;

__attribute__((cold)) ES_PRINTF(3, 4) static es_status
    fail(const reader *r, size_t at, const char *fmt, ...)
{
    (void)r;
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return es_error(ES_ERR_DECODE, "msgpack: %s at offset %zu", what, at);
}

static size_t left(const reader *r)
{
    return (size_t)(r->end - r->p);
}

/* A big-endian unsigned integer of n (1, 2, 4 or 8) bytes. */
static es_status read_be(reader *r, size_t at, size_t n, uint64_t *v)
{
    if (left(r) < n)
        return fail(r, at, "truncated");
    uint64_t x = 0;
    for (size_t k = 0; k < n; k++)
        x = (x << 8) | r->p[k];
    r->p += n;
    *v = x;
    return ES_OK;
}

/* n bytes of payload, checked against the input, copied into the arena with
 * a NUL after them. */
static es_status read_payload(reader *r, size_t at, uint64_t n, const uint8_t **out)
{
    if (n > left(r))
        return fail(r, at, "%llu bytes announced, %zu left", (unsigned long long)n, left(r));
    char *copy = es_arena_strndup(r->arena, (const char *)r->p, (size_t)n);
    if (copy == NULL)
        return es_arena_error(r->arena, "msgpack");
    r->p += n;
    *out = (const uint8_t *)copy;
    return ES_OK;
}

static es_status read_value(reader *r, es_value *out, size_t depth);

static es_status read_str(reader *r, size_t at, uint64_t n, const char **s)
{
    const uint8_t *p = NULL;
    es_status st = read_payload(r, at, n, &p);
    if (st == ES_OK && !esi_utf8_valid(p, (size_t)n, NULL))
        return fail(r, at, "str is not valid UTF-8");
    *s = (const char *)p;
    return st;
}

static es_status read_container(reader *r, size_t at, uint64_t n, bool map, es_value *out,
                                size_t depth)
{
    if (depth >= r->max_depth)
        return es_error(ES_ERR_TOO_DEEP, "msgpack: nesting deeper than %zu at offset %zu",
                        r->max_depth, at);
    if (n > left(r) / (map ? 2 : 1))
        return fail(r, at, "%s of %llu entries cannot fit in the %zu bytes left",
                    map ? "map" : "array", (unsigned long long)n, left(r));
    size_t size = map ? sizeof(es_value_entry) : sizeof(es_value);
    void *elems = n ? es_arena_alloc(r->arena, (size_t)n * size) : NULL;
    if (n && elems == NULL)
        return es_arena_error(r->arena, "msgpack");
    for (size_t i = 0; i < n; i++) {
        es_status st;
        if (map) {
            es_value_entry *e = (es_value_entry *)elems + i;
            es_value key;
            size_t key_at = (size_t)(r->p - r->start);
            if ((st = read_value(r, &key, depth + 1)) != ES_OK)
                return st;
            if (key.kind != ES_VALUE_STRING)
                return fail(r, key_at, "map key not representable (keys must be str)");
            e->key = key.u.str.ptr;
            e->key_len = key.u.str.len;
            st = read_value(r, &e->value, depth + 1);
        } else {
            st = read_value(r, (es_value *)elems + i, depth + 1);
        }
        if (st != ES_OK)
            return st;
    }
    out->kind = map ? ES_VALUE_MAP : ES_VALUE_ARRAY;
    if (map) {
        out->u.map.entries = elems;
        out->u.map.count = (size_t)n;
    } else {
        out->u.array.items = elems;
        out->u.array.count = (size_t)n;
    }
    return ES_OK;
}

static es_status read_ext(reader *r, size_t at, uint64_t n, es_value *out)
{
    if (left(r) < 1)
        return fail(r, at, "truncated");
    int8_t type = (int8_t)*r->p++;
    if (type != ES_MSGPACK_EXT_LINK)
        return fail(r, at, "ext type %d not representable", type);
    const uint8_t *p = NULL;
    es_status st = read_payload(r, at, n, &p);
    if (st != ES_OK)
        return st;
    es_cid cid;
    if (es_cid_parse(p, (size_t)n, &cid) != ES_OK || cid.len != n)
        return fail(r, at, "ext 42 is not one binary CID");
    out->kind = ES_VALUE_LINK;
    out->u.bytes.ptr = p;
    out->u.bytes.len = (size_t)n;
    return ES_OK;
}

static void set_int(es_value *out, int64_t i)
{
    out->kind = ES_VALUE_INT;
    out->u.i = i;
}

static void set_uint(es_value *out, uint64_t u)
{
    if (u <= INT64_MAX) {
        set_int(out, (int64_t)u);
        return;
    }
    out->kind = ES_VALUE_UINT;
    out->u.u = u;
}

/* The signed integer of n bytes (two's complement, big-endian). */
static es_status read_signed(reader *r, size_t at, size_t n, es_value *out)
{
    uint64_t u = 0;
    es_status st = read_be(r, at, n, &u);
    if (st != ES_OK)
        return st;
    switch (n) {
    case 1: set_int(out, (int8_t)u); break;
    case 2: set_int(out, (int16_t)u); break;
    case 4: set_int(out, (int32_t)u); break;
    default: set_int(out, (int64_t)u); break;
    }
    return ES_OK;
}

static es_status read_float(reader *r, size_t at, bool wide, es_value *out)
{
    uint64_t bits = 0;
    es_status st = read_be(r, at, wide ? 8 : 4, &bits);
    if (st != ES_OK)
        return st;
    out->kind = ES_VALUE_FLOAT;
    if (wide) {
        memcpy(&out->u.f, &bits, sizeof out->u.f);
    } else {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        out->u.f = f;
    }
    return ES_OK;
}

static es_status read_value(reader *r, es_value *out, size_t depth)
{
    size_t at = (size_t)(r->p - r->start);
    if (r->p >= r->end)
        return fail(r, at, "truncated: an item was expected");
    uint8_t b = *r->p++;
    uint64_t n = 0;
    es_status st = ES_OK;
    if (b <= 0x7f || b >= 0xe0) {
        set_int(out, (int8_t)b); /* positive and negative fixint */
        return ES_OK;
    }
    if (b >= 0x80 && b <= 0x9f)
        return read_container(r, at, b & 0x0f, b < 0x90, out, depth); /* fixmap, fixarray */
    if (b >= 0xa0 && b <= 0xbf) {
        out->kind = ES_VALUE_STRING;
        out->u.str.len = b & 0x1f;
        return read_str(r, at, b & 0x1f, &out->u.str.ptr);
    }
    switch (b) {
    case 0xc0: out->kind = ES_VALUE_NULL; return ES_OK;
    case 0xc2:
    case 0xc3:
        out->kind = ES_VALUE_BOOL;
        out->u.b = b == 0xc3;
        return ES_OK;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        if ((st = read_be(r, at, (size_t)1 << (b - 0xc4), &n)) != ES_OK)
            return st;
        out->kind = ES_VALUE_BYTES;
        out->u.bytes.len = (size_t)n;
        return read_payload(r, at, n, &out->u.bytes.ptr);
    case 0xc7:
    case 0xc8:
    case 0xc9:
        if ((st = read_be(r, at, (size_t)1 << (b - 0xc7), &n)) != ES_OK)
            return st;
        return read_ext(r, at, n, out);
    case 0xca:
    case 0xcb: return read_float(r, at, b == 0xcb, out);
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if ((st = read_be(r, at, (size_t)1 << (b - 0xcc), &n)) != ES_OK)
            return st;
        set_uint(out, n);
        return ES_OK;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: return read_signed(r, at, (size_t)1 << (b - 0xd0), out);
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: return read_ext(r, at, (uint64_t)1 << (b - 0xd4), out);
    case 0xd9:
    case 0xda:
    case 0xdb:
        if ((st = read_be(r, at, (size_t)1 << (b - 0xd9), &n)) != ES_OK)
            return st;
        out->kind = ES_VALUE_STRING;
        out->u.str.len = (size_t)n;
        return read_str(r, at, n, &out->u.str.ptr);
    case 0xdc:
    case 0xdd:
    case 0xde:
    case 0xdf: {
        bool map = b >= 0xde;
        if ((st = read_be(r, at, (b & 1) ? 4 : 2, &n)) != ES_OK)
            return st;
        return read_container(r, at, n, map, out, depth);
    }
    default: return fail(r, at, "byte 0x%02x is never used", b);
    }
}

es_status es_msgpack_decode(const uint8_t *buf, size_t len, size_t max_depth, es_arena *arena,
                            es_value **out, size_t *consumed)
{
    if (out != NULL)
        *out = NULL;
    if (consumed != NULL)
        *consumed = 0;
    if ((buf == NULL && len > 0) || arena == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_msgpack_decode: NULL argument");
    if (max_depth > MAX_DEPTH_LIMIT)
        return es_error(ES_ERR_INVALID, "es_msgpack_decode: max_depth %zu above %d", max_depth,
                        MAX_DEPTH_LIMIT);
    static const uint8_t nothing[1];
    if (buf == NULL)
        buf = nothing;
    reader r = {buf, buf, buf + len, arena, max_depth ? max_depth : ES_MSGPACK_DEFAULT_DEPTH};
    es_value *v = es_arena_alloc(arena, sizeof *v);
    if (v == NULL)
        return es_arena_error(arena, "msgpack");
    es_status st = read_value(&r, v, 0);
    if (st != ES_OK)
        return st;
    *out = v;
    if (consumed != NULL)
        *consumed = (size_t)(r.p - r.start);
    return ES_OK;
}
