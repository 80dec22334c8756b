/* Helpers of the fuzz targets: input copies and re-sealing CAR hashes. */
#define _GNU_SOURCE /* memmem */
#include <string.h>

#include <es/arena.h>
#include <es/car.h>
#include <es/cid.h>

#include "fuzz.h"

/* A block's CID links are rewritten bottom-up, one level per round: MST
 * paths in frames are a few levels deep, and a cycle can never be sealed. */
#define RESEAL_ROUNDS 8

uint8_t *fuzz_copy(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    if (size)
        memcpy(copy, data, size);
    return copy;
}

es_arena *fuzz_arena(void)
{
    es_arena *a = NULL;
    if (es_arena_create(FUZZ_ARENA_LIMIT, &a) != ES_OK)
        abort();
    return a;
}

/* Replace every occurrence of `from` in buf by `to` (both n bytes). */
static void replace_all(uint8_t *buf, size_t len, const uint8_t *from, const uint8_t *to, size_t n)
{
    uint8_t *p = buf, *end = buf + len;
    while ((size_t)(end - p) >= n && (p = memmem(p, (size_t)(end - p), from, n)) != NULL) {
        memcpy(p, to, n);
        p += n;
    }
}

/* The CID the block should have, when it is a CIDv1 sha2-256 of the usual
 * 36-byte shape (the only ones worth sealing: others never verify). */
static bool wanted_cid(const es_car_block *b, uint8_t cid[ES_CID_SHA256_LEN])
{
    es_cid c;
    if (b->cid_len != ES_CID_SHA256_LEN || es_cid_parse(b->cid, b->cid_len, &c) != ES_OK ||
        c.version != 1 || c.hash != ES_MULTIHASH_SHA2_256 || c.codec >= 0x80)
        return false;
    return es_cid_sha256(c.codec, b->data, b->len, cid) == ES_OK;
}

/* One round; returns the number of CIDs rewritten, or 0 when the CAR does not
 * parse. */
static size_t reseal_round(uint8_t *buf, size_t len, size_t car_off, size_t car_len)
{
    es_arena *arena = fuzz_arena();
    es_car car;
    size_t changed = 0;
    if (es_car_parse(buf + car_off, car_len, NULL, arena, &car) == ES_OK) {
        for (size_t i = 0; i < car.count; i++) {
            uint8_t want[ES_CID_SHA256_LEN], old[ES_CID_SHA256_LEN];
            const es_car_block *b = &car.blocks[i];
            if (!wanted_cid(b, want) || memcmp(want, b->cid, sizeof want) == 0)
                continue;
            memcpy(old, b->cid, sizeof old); /* b->cid itself is rewritten below */
            replace_all(buf, len, old, want, sizeof want);
            changed++;
        }
    }
    es_arena_destroy(arena);
    return changed;
}

size_t fuzz_reseal_car(uint8_t *buf, size_t len, size_t car_off, size_t car_len)
{
    if (car_off > len || car_len > len - car_off)
        return 0;
    size_t total = 0;
    for (int round = 0; round < RESEAL_ROUNDS; round++) {
        size_t n = reseal_round(buf, len, car_off, car_len);
        if (n == 0)
            break;
        total += n;
    }
    return total;
}
