/* Target `car`: a CAR v1 file (as from com.atproto.sync.getRepo, or the
 * `blocks` of a commit) through es_car_parse, es_car_find, es_car_verify and
 * es_atp_walk_repo, the walk of the repository's Merkle Search Tree.
 *
 * As in the frame target, a CAR whose blocks no longer hash to their CIDs is
 * walked a second time after re-sealing (fuzz_reseal_car), so that mutated
 * commits and MST nodes reach the walk instead of stopping at the hash. The
 * limits vary with the input's length. */
#include <string.h>

#include <es/atproto.h>
#include <es/car.h>

#include "fuzz.h"

#define MST_KEY_MAX 1024 /* mst.c's bound on a key */

typedef struct walk_state {
    char last[MST_KEY_MAX + 1];
    size_t last_len;
    size_t records;
} walk_state;

/* es/atproto.h: keys strictly increase, records point into the CAR. */
static int on_record(const es_atp_record *r, void *user)
{
    walk_state *w = user;
    FUZZ_CHECK(r->key != NULL && r->key_len <= MST_KEY_MAX && r->key[r->key_len] == '\0');
    FUZZ_CHECK(r->cid != NULL && r->cid_len > 0);
    if (w->records > 0) {
        size_t common = r->key_len < w->last_len ? r->key_len : w->last_len;
        int c = memcmp(w->last, r->key, common);
        FUZZ_CHECK(c < 0 || (c == 0 && w->last_len < r->key_len));
    }
    memcpy(w->last, r->key, r->key_len);
    w->last_len = r->key_len;
    w->records++;
    return 0;
}

/* Lookups agree with the section list: every block's CID finds a block with
 * that CID (the first one, for duplicates). Returns whether every block
 * verified. */
static bool check_blocks(es_car *car)
{
    bool all = true;
    for (size_t i = 0; i < car->count; i++) {
        es_car_block *b = &car->blocks[i];
        es_car_block *f = es_car_find(car, b->cid, b->cid_len);
        FUZZ_CHECK(f != NULL && f <= b && f->cid_len == b->cid_len &&
                   memcmp(f->cid, b->cid, b->cid_len) == 0);
        if (es_car_verify(b) != ES_OK)
            all = false;
        else
            FUZZ_CHECK(es_car_block_verified(b));
    }
    for (size_t i = 0; i < car->root_count; i++)
        (void)es_car_find(car, car->roots[i], car->root_lens[i]);
    return all;
}

/* Parse and walk; returns whether some block failed verification. */
static bool parse_and_walk(const uint8_t *buf, size_t len, const es_car_limits *lim)
{
    es_arena *arena = NULL;
    if (es_arena_create(FUZZ_ARENA_LIMIT, &arena) != ES_OK)
        abort();
    es_car car;
    bool bad_hash = false;
    if (es_car_parse(buf, len, lim, arena, &car) == ES_OK) {
        FUZZ_CHECK(lim == NULL || car.count <= lim->max_blocks);
        bad_hash = !check_blocks(&car);
        walk_state *w = calloc(1, sizeof *w);
        es_atp_commit_info info;
        if (w == NULL)
            abort();
        if (es_atp_walk_repo(&car, arena, &info, on_record, w) == ES_OK)
            FUZZ_CHECK(info.did != NULL && info.rev != NULL && info.data != NULL);
        free(w);
    }
    es_arena_destroy(arena);
    return bad_hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    es_car_limits small = {.max_bytes = 1 << 16, .max_blocks = 8, .max_roots = 1};
    const es_car_limits *lim = size % 3 == 1 ? &small : NULL;
    uint8_t *car = fuzz_copy(data, size);
    if (parse_and_walk(car, size, lim) && fuzz_reseal_car(car, size, 0, size) > 0)
        (void)parse_and_walk(car, size, lim);
    free(car);
    return 0;
}
