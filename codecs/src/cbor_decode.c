/* CBOR / DAG-CBOR decoder into the common value model.
 *
 * Why not libcbor: the issue names libcbor for these codecs, so both of its
 * decoders were measured against this one on the 1,549 DAG-CBOR blocks of
 * the real firehose corpus (bench_codecs, docs/codecs.md): this decoder,
 * building values and checking every DAG-CBOR rule, runs faster than
 * libcbor's streaming tokenizer (cbor_stream_decode) doing nothing but
 * tokenizing (~1.5 vs ~1.2 GB/s), and about 9 times faster than cbor_load,
 * which builds libcbor's own malloc'd item tree (~0.16 GB/s). A decoder on
 * top of the tokenizer would add tree building through callbacks and an
 * explicit stack, and still could not check shortest forms (callbacks get
 * decoded arguments, not head bytes) nor point strings into the input for
 * zero copy. So this is a direct recursive-descent reader over (bytes,
 * length); libcbor is used only as the measured baseline.
 *
 * Every length is compared with the bytes left before anything is
 * allocated, recursion is bounded by max_depth, and chains of tags are
 * walked iteratively, so no input can make this use more than the arena's
 * limit or max_depth stack frames. */
#include <es/cbor.h>

#include <es/cid.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "codec_internal.h"

enum {
    MAJOR_UINT = 0,
    MAJOR_NEGINT = 1,
    MAJOR_BYTES = 2,
    MAJOR_TEXT = 3,
    MAJOR_ARRAY = 4,
    MAJOR_MAP = 5,
    MAJOR_TAG = 6,
    MAJOR_SIMPLE = 7,
};

#define INFO_ONE_BYTE        24
#define INFO_EIGHT_BYTE      27
#define INFO_INDEFINITE      31
#define BREAK_BYTE           0xff
#define TAG_CID              42
#define SIMPLE_FALSE         20
#define SIMPLE_TRUE          21
#define SIMPLE_NULL          22
#define SIMPLE_UNDEF         23
#define FLOAT16              25
#define FLOAT32              26
#define FLOAT64              27
#define INDEFINITE_FIRST_CAP 8

void es_cbor_options_init(es_cbor_options *o, bool dag_cbor)
{
    if (o == NULL)
        return;
    o->strict = dag_cbor;
    o->allow_floats = !dag_cbor;
    o->max_depth = 0;
    o->copy = false;
}

typedef struct decoder {
    const uint8_t *start, *p, *end;
    es_arena *arena;
    const char *mode; /* "dag-cbor" or "cbor", for messages */
    size_t max_depth;
    bool strict, floats, copy;
} decoder;

typedef struct head {
    uint8_t major, info;
    uint64_t arg; /* the integer, length, count, tag or float bits */
    size_t at;    /* offset of the head, for messages */
} head;

__attribute__((cold)) ES_PRINTF(3, 4) static es_status
    fail(const decoder *d, size_t at, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return es_error(ES_ERR_DECODE, "%s: %s at offset %zu", d->mode, what, at);
}

__attribute__((cold)) static es_status arena_full(const decoder *d)
{
    char what[64];
    snprintf(what, sizeof what, "%s at offset %zu", d->mode, (size_t)(d->p - d->start));
    return es_arena_error(d->arena, what);
}

static size_t left(const decoder *d)
{
    return (size_t)(d->end - d->p);
}

static bool shortest(uint8_t info, uint64_t v)
{
    switch (info) {
    case 24: return v >= 24;
    case 25: return v > 0xff;
    case 26: return v > 0xffff;
    case 27: return v > 0xffffffffu;
    default: return true;
    }
}

__attribute__((always_inline)) static inline es_status read_head(decoder *d, head *h)
{
    *h = (head){.at = (size_t)(d->p - d->start)};
    if (d->p >= d->end)
        return fail(d, h->at, "truncated: an item was expected");
    uint8_t initial = *d->p++;
    h->major = initial >> 5;
    h->info = initial & 31;
    h->arg = h->info;
    if (h->info < INFO_ONE_BYTE || h->info == INFO_INDEFINITE)
        return ES_OK;
    if (h->info > INFO_EIGHT_BYTE)
        return fail(d, h->at, "reserved additional information %u", h->info);
    size_t n = (size_t)1 << (h->info - INFO_ONE_BYTE);
    if (left(d) < n)
        return fail(d, h->at, "truncated: %zu-byte argument, %zu bytes left", n, left(d));
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v = (v << 8) | d->p[k];
    d->p += n;
    h->arg = v;
    if (d->strict && h->major != MAJOR_SIMPLE && !shortest(h->info, v))
        return fail(d, h->at, "integer or length %llu not in its shortest form",
                    (unsigned long long)v);
    return ES_OK;
}

/* Arena memory for n elements of size bytes; n was checked against the input
 * left, so the product only overflows on absurd inputs, still refused. */
static void *alloc_n(decoder *d, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    if (n > SIZE_MAX / size)
        return NULL;
    return es_arena_alloc(d->arena, n * size);
}

static es_status decode_with_head(decoder *d, head *h, es_value *out, size_t depth);

static es_status decode_item(decoder *d, es_value *out, size_t depth)
{
    head h;
    es_status s = read_head(d, &h);
    return s != ES_OK ? s : decode_with_head(d, &h, out, depth);
}

/* ---- integers ------------------------------------------------------------ */

static es_status decode_uint(decoder *d, const head *h, es_value *out)
{
    if (h->arg <= INT64_MAX) {
        out->kind = ES_VALUE_INT;
        out->u.i = (int64_t)h->arg;
        return ES_OK;
    }
    if (d->strict)
        return fail(d, h->at, "integer %llu outside the int64 range of the atproto data model",
                    (unsigned long long)h->arg);
    out->kind = ES_VALUE_UINT;
    out->u.u = h->arg;
    return ES_OK;
}

static es_status decode_negint(decoder *d, const head *h, es_value *out)
{
    if (h->arg > INT64_MAX)
        return fail(d, h->at, "negative integer -1-%llu not representable (below int64)",
                    (unsigned long long)h->arg);
    out->kind = ES_VALUE_INT;
    out->u.i = -1 - (int64_t)h->arg;
    return ES_OK;
}

/* ---- strings --------------------------------------------------------------- */

static es_status check_text(const decoder *d, const head *h, const uint8_t *s, size_t n)
{
    size_t bad = 0;
    if (h->major == MAJOR_TEXT && !esi_utf8_valid(s, n, &bad))
        return fail(d, (size_t)(s - d->start) + bad, "invalid UTF-8 in a text string");
    return ES_OK;
}

/* An indefinite-length string: definite chunks of the same major type up to
 * a break. One pass checks and measures, a second copies. */
static es_status chunked_string(decoder *d, const head *h, const uint8_t **ptr, size_t *len)
{
    if (d->strict)
        return fail(d, h->at, "indefinite-length string");
    const uint8_t *first = d->p;
    size_t total = 0;
    for (;;) {
        if (d->p < d->end && *d->p == BREAK_BYTE)
            break;
        head c;
        es_status s = read_head(d, &c);
        if (s != ES_OK)
            return s;
        if (c.major != h->major || c.info == INFO_INDEFINITE)
            return fail(d, c.at, "string chunk of another type");
        if (c.arg > left(d))
            return fail(d, c.at, "string chunk of %llu bytes, %zu left", (unsigned long long)c.arg,
                        left(d));
        s = check_text(d, h, d->p, (size_t)c.arg);
        if (s != ES_OK)
            return s;
        d->p += c.arg;
        total += (size_t)c.arg;
    }
    const uint8_t *after = d->p + 1;
    uint8_t *copy = es_arena_alloc(d->arena, total + 1);
    if (copy == NULL)
        return arena_full(d);
    size_t at = 0;
    for (d->p = first; d->p < after - 1;) {
        head c;
        (void)read_head(d, &c); /* already checked above */
        memcpy(copy + at, d->p, (size_t)c.arg);
        at += (size_t)c.arg;
        d->p += c.arg;
    }
    copy[total] = '\0';
    d->p = after;
    *ptr = copy;
    *len = total;
    return ES_OK;
}

/* The bytes of a string item whose head is h: zero copy or copied (with a NUL
 * after, so copied text is a C string). */
static es_status string_body(decoder *d, const head *h, const uint8_t **ptr, size_t *len)
{
    if (h->info == INFO_INDEFINITE)
        return chunked_string(d, h, ptr, len);
    if (h->arg > left(d))
        return fail(d, h->at, "string of %llu bytes, %zu left", (unsigned long long)h->arg,
                    left(d));
    const uint8_t *src = d->p;
    size_t n = (size_t)h->arg;
    d->p += n;
    es_status s = check_text(d, h, src, n);
    if (s != ES_OK)
        return s;
    if (d->copy) {
        char *copy = es_arena_strndup(d->arena, (const char *)src, n);
        if (copy == NULL)
            return arena_full(d);
        src = (const uint8_t *)copy;
    }
    *ptr = src;
    *len = n;
    return ES_OK;
}

static es_status decode_string(decoder *d, const head *h, es_value *out)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    es_status s = string_body(d, h, &p, &n);
    if (s != ES_OK)
        return s;
    if (h->major == MAJOR_TEXT) {
        out->kind = ES_VALUE_STRING;
        out->u.str.ptr = (const char *)p;
        out->u.str.len = n;
    } else {
        out->kind = ES_VALUE_BYTES;
        out->u.bytes.ptr = p;
        out->u.bytes.len = n;
    }
    return ES_OK;
}

/* ---- arrays and maps ------------------------------------------------------- */

/* Before items are read: the depth bound, and for definite lengths the
 * promise that `count` items of at least `min_bytes` each fit in the input. */
static es_status container_start(decoder *d, const head *h, size_t depth, size_t min_bytes,
                                 const char *what)
{
    if (depth >= d->max_depth)
        return es_error(ES_ERR_TOO_DEEP, "%s: nesting deeper than %zu at offset %zu", d->mode,
                        d->max_depth, h->at);
    if (h->info == INFO_INDEFINITE) {
        if (d->strict)
            return fail(d, h->at, "indefinite-length %s", what);
        return ES_OK;
    }
    if (h->arg > left(d) / min_bytes)
        return fail(d, h->at, "%s of %llu entries cannot fit in the %zu bytes left", what,
                    (unsigned long long)h->arg, left(d));
    return ES_OK;
}

/* For a container whose length is known: whether another entry follows. For
 * an indefinite one: consume the break or say one more entry follows. */
static es_status more_entries(decoder *d, const head *h, size_t count, bool *more)
{
    if (h->info != INFO_INDEFINITE) {
        *more = count < h->arg;
        return ES_OK;
    }
    if (d->p >= d->end)
        return fail(d, h->at, "truncated: indefinite-length container without a break");
    *more = *d->p != BREAK_BYTE;
    if (!*more)
        d->p++;
    return ES_OK;
}

/* Make room for one more element in a full indefinite container by doubling.
 * The old block stays in the arena (the arena's bound still holds: the
 * elements are backed by input bytes, so doubling wastes at most 2x). */
static es_status grow(decoder *d, void **elems, size_t *cap, size_t count, size_t size)
{
    size_t ncap = *cap ? *cap * 2 : INDEFINITE_FIRST_CAP;
    void *n = alloc_n(d, ncap, size);
    if (n == NULL)
        return arena_full(d);
    if (count)
        memcpy(n, *elems, count * size);
    *elems = n;
    *cap = ncap;
    return ES_OK;
}

static es_status decode_array(decoder *d, const head *h, es_value *out, size_t depth)
{
    es_status s = container_start(d, h, depth, 1, "array");
    if (s != ES_OK)
        return s;
    size_t cap = h->info == INFO_INDEFINITE ? 0 : (size_t)h->arg;
    es_value *items = alloc_n(d, cap, sizeof *items);
    if (cap && items == NULL)
        return arena_full(d);
    size_t count = 0;
    for (bool more;;) {
        if ((s = more_entries(d, h, count, &more)) != ES_OK)
            return s;
        if (!more)
            break;
        if (count == cap && (s = grow(d, (void **)&items, &cap, count, sizeof *items)) != ES_OK)
            return s;
        if ((s = decode_item(d, &items[count], depth + 1)) != ES_OK)
            return s;
        count++;
    }
    out->kind = ES_VALUE_ARRAY;
    out->u.array.items = items;
    out->u.array.count = count;
    return ES_OK;
}

/* Each key must sort strictly after the one before; equal is a duplicate. */
static es_status check_key_order(const decoder *d, size_t at, const es_value_entry *prev,
                                 const es_value_entry *cur)
{
    int shown = (int)(cur->key_len > 64 ? 64 : cur->key_len);
    int cmp = esi_dag_key_cmp(prev->key, prev->key_len, cur->key, cur->key_len);
    if (cmp == 0)
        return fail(d, at, "duplicate map key \"%.*s\"", shown, cur->key);
    if (cmp > 0)
        return fail(d, at, "map key \"%.*s\" out of order (keys sort length-first, then bytewise)",
                    shown, cur->key);
    return ES_OK;
}

static es_status decode_key(decoder *d, es_value_entry *e)
{
    head k;
    es_status s = read_head(d, &k);
    if (s != ES_OK)
        return s;
    if (k.major != MAJOR_TEXT)
        return fail(d, k.at,
                    d->strict ? "map key of major type %u (keys must be text strings)"
                              : "map key of major type %u not representable (keys must be "
                                "text strings)",
                    k.major);
    const uint8_t *p = NULL;
    if ((s = string_body(d, &k, &p, &e->key_len)) != ES_OK)
        return s;
    e->key = (const char *)p;
    return ES_OK;
}

/* Nearly every key is a short ASCII text string: take those without the
 * general head and string machinery (measured: about 10% of block decoding).
 * Anything else, or copy mode, goes the general way. */
static inline bool short_ascii_key(decoder *d, es_value_entry *e)
{
    if (d->copy || d->p >= d->end)
        return false;
    uint8_t initial = *d->p;
    size_t n = initial & 31;
    if ((initial >> 5) != MAJOR_TEXT || n >= INFO_ONE_BYTE || n >= left(d))
        return false;
    const uint8_t *s = d->p + 1;
    uint8_t high = 0;
    for (size_t k = 0; k < n; k++)
        high |= s[k];
    if (high & 0x80)
        return false;
    e->key = (const char *)s;
    e->key_len = n;
    d->p += 1 + n;
    return true;
}

static es_status decode_map(decoder *d, const head *h, es_value *out, size_t depth)
{
    es_status s = container_start(d, h, depth, 2, "map");
    if (s != ES_OK)
        return s;
    size_t cap = h->info == INFO_INDEFINITE ? 0 : (size_t)h->arg;
    es_value_entry *entries = alloc_n(d, cap, sizeof *entries);
    if (cap && entries == NULL)
        return arena_full(d);
    size_t count = 0;
    for (bool more;;) {
        if ((s = more_entries(d, h, count, &more)) != ES_OK)
            return s;
        if (!more)
            break;
        if (count == cap && (s = grow(d, (void **)&entries, &cap, count, sizeof *entries)) != ES_OK)
            return s;
        es_value_entry *e = &entries[count];
        size_t key_at = (size_t)(d->p - d->start);
        if (!short_ascii_key(d, e) && (s = decode_key(d, e)) != ES_OK)
            return s;
        if (d->strict && count > 0 && (s = check_key_order(d, key_at, e - 1, e)) != ES_OK)
            return s;
        if ((s = decode_item(d, &e->value, depth + 1)) != ES_OK)
            return s;
        count++;
    }
    out->kind = ES_VALUE_MAP;
    out->u.map.entries = entries;
    out->u.map.count = count;
    return ES_OK;
}

/* ---- tags ------------------------------------------------------------------ */

/* Tag 42: a byte string of 0x00 then exactly one binary CID. */
static es_status decode_link(decoder *d, const head *tag, es_value *out)
{
    head b;
    es_status s = read_head(d, &b);
    if (s != ES_OK)
        return s;
    if (b.major != MAJOR_BYTES || b.info == INFO_INDEFINITE)
        return fail(d, b.at, "tag 42 (CID link) over something other than a byte string");
    if (b.arg > left(d))
        return fail(d, b.at, "CID link of %llu bytes, %zu left", (unsigned long long)b.arg,
                    left(d));
    const uint8_t *p = d->p;
    size_t n = (size_t)b.arg;
    if (n == 0 || p[0] != 0x00)
        return fail(d, b.at, "CID link without its leading 0x00 (identity multibase) byte");
    es_cid cid;
    if (es_cid_parse(p + 1, n - 1, &cid) != ES_OK)
        return fail(d, tag->at, "bad CID link (%s)", es_last_error());
    if (cid.len != n - 1)
        return fail(d, tag->at, "CID link with %zu trailing bytes", n - 1 - cid.len);
    d->p += n;
    const uint8_t *bin = p + 1;
    if (d->copy) {
        uint8_t *copy = es_arena_alloc(d->arena, n - 1);
        if (copy == NULL)
            return arena_full(d);
        memcpy(copy, bin, n - 1);
        bin = copy;
    }
    out->kind = ES_VALUE_LINK;
    out->u.bytes.ptr = bin;
    out->u.bytes.len = n - 1;
    return ES_OK;
}

static es_status decode_tag(decoder *d, head *h, es_value *out, size_t depth)
{
    /* General CBOR: tags other than 42 are dropped (their meaning is lost,
     * the content is kept), walked in a loop so a chain cannot recurse. */
    for (;;) {
        if (h->info == INFO_INDEFINITE)
            return fail(d, h->at, "tag with indefinite-length argument (not well-formed)");
        if (h->arg == TAG_CID)
            return decode_link(d, h, out);
        if (d->strict)
            return fail(d, h->at, "tag %llu (only tag 42, a CID link, is allowed)",
                        (unsigned long long)h->arg);
        if (h->arg >= 2 && h->arg <= 5)
            return fail(d, h->at, "tag %llu (bignum or decimal) not representable",
                        (unsigned long long)h->arg);
        es_status s = read_head(d, h);
        if (s != ES_OK)
            return s;
        if (h->major != MAJOR_TAG)
            return decode_with_head(d, h, out, depth);
    }
}

/* ---- simple values and floats ---------------------------------------------- */

static double half_to_double(uint16_t half)
{
    uint64_t sign = (uint64_t)(half >> 15) << 63;
    unsigned exp = (half >> 10) & 0x1f;
    uint64_t mant = half & 0x3ff;
    double v;
    if (exp == 0) {
        v = (double)mant / 16777216.0; /* subnormal: mant * 2^-24, exact */
        return sign ? -v : v;
    }
    uint64_t bits = sign | (exp == 31 ? (uint64_t)0x7ff << 52 : (uint64_t)(exp - 15 + 1023) << 52) |
                    (mant << 42);
    memcpy(&v, &bits, sizeof v);
    return v;
}

static es_status decode_float(decoder *d, const head *h, es_value *out)
{
    if (!d->floats)
        return fail(d, h->at, "float not allowed%s", d->strict ? " in the atproto data model" : "");
    double v;
    if (h->info == FLOAT16) {
        v = half_to_double((uint16_t)h->arg);
    } else if (h->info == FLOAT32) {
        uint32_t bits = (uint32_t)h->arg;
        float f;
        memcpy(&f, &bits, sizeof f);
        v = f;
    } else {
        memcpy(&v, &h->arg, sizeof v);
    }
    if (d->strict && h->info != FLOAT64)
        return fail(d, h->at, "float not in its 64-bit form (DAG-CBOR)");
    if (d->strict && !isfinite(v))
        return fail(d, h->at, "NaN or infinite float (DAG-CBOR)");
    out->kind = ES_VALUE_FLOAT;
    out->u.f = v;
    return ES_OK;
}

static es_status decode_simple(decoder *d, const head *h, es_value *out)
{
    switch (h->info) {
    case SIMPLE_FALSE:
    case SIMPLE_TRUE:
        out->kind = ES_VALUE_BOOL;
        out->u.b = h->info == SIMPLE_TRUE;
        return ES_OK;
    case SIMPLE_NULL: out->kind = ES_VALUE_NULL; return ES_OK;
    case SIMPLE_UNDEF:
        if (d->strict)
            return fail(d, h->at, "undefined (DAG-CBOR allows only false, true and null)");
        out->kind = ES_VALUE_NULL;
        return ES_OK;
    case FLOAT16:
    case FLOAT32:
    case FLOAT64: return decode_float(d, h, out);
    case INFO_INDEFINITE: return fail(d, h->at, "unexpected break");
    default:
        return fail(d, h->at, "simple value %llu not representable", (unsigned long long)h->arg);
    }
}

static es_status decode_with_head(decoder *d, head *h, es_value *out, size_t depth)
{
    switch (h->major) {
    case MAJOR_UINT:
    case MAJOR_NEGINT:
        if (h->info == INFO_INDEFINITE)
            return fail(d, h->at, "integer with indefinite-length argument (not well-formed)");
        return h->major == MAJOR_UINT ? decode_uint(d, h, out) : decode_negint(d, h, out);
    case MAJOR_BYTES:
    case MAJOR_TEXT: return decode_string(d, h, out);
    case MAJOR_ARRAY: return decode_array(d, h, out, depth);
    case MAJOR_MAP: return decode_map(d, h, out, depth);
    case MAJOR_TAG: return decode_tag(d, h, out, depth);
    default: return decode_simple(d, h, out);
    }
}

es_status es_cbor_decode(const uint8_t *buf, size_t len, const es_cbor_options *o, es_arena *arena,
                         es_value **out, size_t *consumed)
{
    es_cbor_options defaults;
    if (o == NULL) {
        es_cbor_options_init(&defaults, true);
        o = &defaults;
    }
    if (out != NULL)
        *out = NULL;
    if (consumed != NULL)
        *consumed = 0;
    if ((buf == NULL && len > 0) || arena == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_cbor_decode: NULL argument");
    static const uint8_t nothing[1];
    if (buf == NULL)
        buf = nothing; /* no arithmetic on NULL below */
    if (o->max_depth > ES_CBOR_MAX_DEPTH)
        return es_error(ES_ERR_INVALID, "es_cbor_decode: max_depth %zu above %d", o->max_depth,
                        ES_CBOR_MAX_DEPTH);
    decoder d = {
        .start = buf,
        .p = buf,
        .end = buf + len,
        .arena = arena,
        .mode = o->strict ? "dag-cbor" : "cbor",
        .max_depth = o->max_depth ? o->max_depth : ES_CBOR_DEFAULT_DEPTH,
        .strict = o->strict,
        .floats = o->allow_floats,
        .copy = o->copy,
    };
    es_value *v = es_arena_alloc(arena, sizeof *v);
    if (v == NULL)
        return arena_full(&d);
    es_status s = decode_item(&d, v, 0);
    if (s != ES_OK)
        return s;
    *out = v;
    if (consumed != NULL)
        *consumed = (size_t)(d.p - d.start);
    return ES_OK;
}
