/* CAR v1 parsing: one validating pass that counts the sections, one that
 * indexes them, and the blocks sorted by CID when there are enough of them
 * for linear search to cost more than sorting. Nothing is copied.
 *
 * Why sorted rather than hashed: the CIDs of a CAR are whatever its sender
 * wrote (only the blocks a reader uses get verified), so a sender can make
 * all of them collide in any unkeyed hash; 10,000 colliding blocks made one
 * 380 KB CAR cost a second and a half to index. Sorting is O(n log n)
 * whatever the CIDs.
 *
 * A lookup in a repository of 100,000 records walks ~17 steps of the
 * search; each step reading a CID in the CAR buffer was a cache miss (the
 * lookups were a fifth of a backfill's CPU). So the index keeps, beside
 * each block, a key of its CID's last 8 bytes (for an honest CID, bytes of
 * its SHA-256 digest), and the order is (length, key, bytes): a step
 * compares the key in the index, and reads the CID only when the keys are
 * equal. Hostile CIDs with equal keys cost that read, not more steps. */
#include <es/car.h>

#include <stdlib.h>
#include <string.h>

#include <es/cbor.h>
#include <es/cid.h>

#include "atp_internal.h"

#define DEFAULT_MAX_BYTES  ((size_t)2000000)
#define DEFAULT_MAX_BLOCKS ((size_t)10000)
#define DEFAULT_MAX_ROOTS  ((size_t)16)
#define HEADER_MAX         ((size_t)64 << 10) /* a header holds a few roots: far below this */
#define HEADER_DEPTH       4
#define LINEAR_LOOKUP_MAX  16 /* below this many blocks, a scan beats a search */

enum { BLOCK_UNVERIFIED = 0, BLOCK_VERIFIED = 1 };

typedef struct car_entry {
    uint64_t key; /* cid_key */
    es_car_block *block;
} car_entry;

typedef struct car_index {
    car_entry *sorted; /* by CID (length, key, bytes), duplicates in section order */
    size_t count;
} car_index;

void es_car_limits_defaults(es_car_limits *l)
{
    if (l->max_bytes == 0)
        l->max_bytes = DEFAULT_MAX_BYTES;
    if (l->max_blocks == 0)
        l->max_blocks = DEFAULT_MAX_BLOCKS;
    if (l->max_roots == 0)
        l->max_roots = DEFAULT_MAX_ROOTS;
}

/* A varint length at buf[*pos] that must fit in what remains. */
static es_status read_length(const uint8_t *buf, size_t len, size_t *pos, size_t *out,
                             const char *what)
{
    uint64_t v;
    size_t used;
    *out = 0; /* defined on every path: es_error's result is opaque to the compiler */
    if (es_varint_decode(buf + *pos, len - *pos, &v, &used) != ES_OK)
        return es_error(ES_ERR_DECODE, "CAR: bad %s length varint at offset %zu", what, *pos);
    *pos += used;
    if (v > len - *pos)
        return es_error(ES_ERR_DECODE,
                        "CAR: %s at offset %zu claims %llu bytes, only %zu remain (truncated)",
                        what, *pos, (unsigned long long)v, len - *pos);
    *out = (size_t)v;
    return ES_OK;
}

static es_status parse_header(const uint8_t *buf, size_t len, const es_car_limits *lim,
                              es_arena *arena, es_car *out, size_t *pos)
{
    size_t hlen;
    es_status s = read_length(buf, len, pos, &hlen, "header");
    if (s != ES_OK)
        return s;
    if (hlen == 0 || hlen > HEADER_MAX)
        return es_error(ES_ERR_DECODE, "CAR: header length %zu is out of range", hlen);
    es_value *h;
    s = esi_atp_decode_exact(buf + *pos, hlen, HEADER_DEPTH, arena, &h);
    if (s == ES_ERR_NOMEM)
        return esi_atp_error_wrap(s, "CAR header");
    if (s != ES_OK)
        return esi_atp_error_wrap(
            s == ES_ERR_LIMIT || s == ES_ERR_TOO_DEEP ? ES_ERR_LIMIT : ES_ERR_DECODE, "CAR header");
    *pos += hlen;
    const es_value *version = es_value_get(h, "version");
    const es_value *roots = es_value_get(h, "roots");
    if (version == NULL || version->kind != ES_VALUE_INT || version->u.i != 1)
        return es_error(ES_ERR_DECODE, "CAR header: version is not 1");
    if (roots == NULL || roots->kind != ES_VALUE_ARRAY)
        return es_error(ES_ERR_DECODE, "CAR header: roots is not an array");
    size_t n = roots->u.array.count;
    if (n > lim->max_roots)
        return es_error(ES_ERR_LIMIT, "CAR header: %zu roots, limit %zu", n, lim->max_roots);
    const uint8_t **cids = es_arena_calloc(arena, n ? n : 1, sizeof *cids);
    size_t *lens = es_arena_calloc(arena, n ? n : 1, sizeof *lens);
    if (cids == NULL || lens == NULL)
        return es_arena_error(arena, "CAR");
    for (size_t i = 0; i < n; i++) {
        const es_value *r = &roots->u.array.items[i];
        if (r->kind != ES_VALUE_LINK)
            return es_error(ES_ERR_DECODE, "CAR header: root %zu is not a CID link", i);
        cids[i] = r->u.bytes.ptr;
        lens[i] = r->u.bytes.len;
    }
    out->roots = cids;
    out->root_lens = lens;
    out->root_count = n;
    return ES_OK;
}

/* Walk the sections from `pos`; with `blocks` NULL only validate and count. */
static es_status scan_sections(const uint8_t *buf, size_t len, size_t pos, const es_car_limits *lim,
                               es_car_block *blocks, size_t *count)
{
    size_t n = 0;
    while (pos < len) {
        if (n == lim->max_blocks)
            return es_error(ES_ERR_LIMIT, "CAR: more than %zu blocks", lim->max_blocks);
        size_t slen;
        es_status s = read_length(buf, len, &pos, &slen, "section");
        if (s != ES_OK)
            return s;
        es_cid cid;
        if (es_cid_parse(buf + pos, slen, &cid) != ES_OK)
            return esi_atp_error_wrap(ES_ERR_DECODE, "CAR: section %zu at offset %zu", n, pos);
        if (blocks != NULL) {
            blocks[n].cid = buf + pos;
            blocks[n].cid_len = cid.len;
            blocks[n].data = buf + pos + cid.len;
            blocks[n].len = slen - cid.len;
            blocks[n].state = BLOCK_UNVERIFIED;
        }
        pos += slen;
        n++;
    }
    *count = n;
    return ES_OK;
}

/* The CID's last (up to) 8 bytes, big-endian. */
static uint64_t cid_key(const uint8_t *cid, size_t len)
{
    uint64_t k = 0;
    for (size_t i = len > 8 ? len - 8 : 0; i < len; i++)
        k = k << 8 | cid[i];
    return k;
}

/* The index's order: length, key, then bytes. */
static int cid_cmp(uint64_t akey, const uint8_t *a, size_t alen, const car_entry *b)
{
    if (alen != b->block->cid_len)
        return alen < b->block->cid_len ? -1 : 1;
    if (akey != b->key)
        return akey < b->key ? -1 : 1;
    return memcmp(a, b->block->cid, alen);
}

/* By CID, then by position: the first of duplicates sorts first, and is the
 * one a lookup finds, as the scan would. */
static int entry_cmp(const void *x, const void *y)
{
    const car_entry *a = x, *b = y;
    int c = cid_cmp(a->key, a->block->cid, a->block->cid_len, b);
    return c != 0 ? c : (a->block > b->block) - (a->block < b->block);
}

static es_status build_index(es_car *car, es_arena *arena)
{
    car->index = NULL;
    if (car->count <= LINEAR_LOOKUP_MAX)
        return ES_OK;
    car_index *ix = es_arena_alloc(arena, sizeof *ix);
    car_entry *sorted = es_arena_calloc(arena, car->count, sizeof *sorted);
    if (ix == NULL || sorted == NULL)
        return es_arena_error(arena, "CAR");
    for (size_t b = 0; b < car->count; b++)
        sorted[b] = (car_entry){cid_key(car->blocks[b].cid, car->blocks[b].cid_len),
                                &car->blocks[b]};
    qsort(sorted, car->count, sizeof *sorted, entry_cmp);
    ix->sorted = sorted;
    ix->count = car->count;
    car->index = ix;
    return ES_OK;
}

es_status es_car_parse(const uint8_t *buf, size_t len, const es_car_limits *limits, es_arena *arena,
                       es_car *out)
{
    if (buf == NULL || arena == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_car_parse: NULL argument");
    memset(out, 0, sizeof *out);
    es_car_limits lim = limits ? *limits : (es_car_limits){0};
    es_car_limits_defaults(&lim);
    if (len > lim.max_bytes)
        return es_error(ES_ERR_LIMIT, "CAR of %zu bytes exceeds the %zu limit", len, lim.max_bytes);
    size_t pos = 0, count = 0;
    es_status s = parse_header(buf, len, &lim, arena, out, &pos);
    if (s == ES_OK)
        s = scan_sections(buf, len, pos, &lim, NULL, &count);
    if (s != ES_OK)
        return s;
    out->blocks = es_arena_calloc(arena, count ? count : 1, sizeof *out->blocks);
    if (out->blocks == NULL)
        return es_arena_error(arena, "CAR");
    s = scan_sections(buf, len, pos, &lim, out->blocks, &count);
    out->count = count;
    return s != ES_OK ? s : build_index(out, arena);
}

es_car_block *es_car_find(const es_car *car, const uint8_t *cid, size_t cid_len)
{
    if (car == NULL || cid == NULL || cid_len == 0)
        return NULL;
    const car_index *ix = car->index;
    if (ix == NULL) {
        for (size_t b = 0; b < car->count; b++)
            if (car->blocks[b].cid_len == cid_len && memcmp(car->blocks[b].cid, cid, cid_len) == 0)
                return &car->blocks[b];
        return NULL;
    }
    uint64_t key = cid_key(cid, cid_len);
    size_t lo = 0, hi = ix->count; /* the first block whose CID is not below `cid` */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cid_cmp(key, cid, cid_len, &ix->sorted[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ix->count && cid_cmp(key, cid, cid_len, &ix->sorted[lo]) == 0)
        return ix->sorted[lo].block;
    return NULL;
}

es_status es_car_verify(es_car_block *block)
{
    if (block == NULL)
        return es_error(ES_ERR_INVALID, "es_car_verify: NULL block");
    if (block->state == BLOCK_VERIFIED)
        return ES_OK;
    es_cid cid;
    if (es_cid_parse(block->cid, block->cid_len, &cid) != ES_OK)
        return esi_atp_error_wrap(ES_ERR_DECODE, "block CID");
    if (cid.hash != ES_MULTIHASH_SHA2_256)
        return es_error(ES_ERR_DECODE, "block CID uses hash 0x%llx, not sha2-256",
                        (unsigned long long)cid.hash);
    if (!es_cid_matches(&cid, block->data, block->len)) {
        char text[ES_CID_STRING_MAX];
        if (es_cid_to_string(block->cid, block->cid_len, text, sizeof text) != ES_OK)
            strcpy(text, "(CIDv0)");
        return es_error(ES_ERR_DECODE, "block %s: SHA-256 of its %zu bytes differs from the CID",
                        text, block->len);
    }
    block->state = BLOCK_VERIFIED;
    return ES_OK;
}

bool es_car_block_verified(const es_car_block *block)
{
    return block != NULL && block->state == BLOCK_VERIFIED;
}
