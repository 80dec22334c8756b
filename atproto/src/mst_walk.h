/* The in-order walk of a repository's MST (mst.c), shared by
 * es_atp_walk_repo and the whole-repository verification (repo_verify.c).
 * Internal to libes-atproto; not installed. */
#ifndef ES_ATP_MST_WALK_H
#define ES_ATP_MST_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/arena.h>
#include <es/atproto.h>
#include <es/car.h>

#include "invert.h"

/* What a walk checks beyond hashes, key order and bounds, and why it
 * refused. `canonical` also requires the one tree the keys make (atproto
 * repository spec, v3): every key at the layer of its height, subtrees one
 * layer down, no empty node but an empty repository's root, a root holding
 * a key, each entry's prefix the whole prefix it shares with the previous
 * key. On a refusal `why` gets its kind and `key` the key at fault (for a
 * node that cannot be read, the last key visited before it; "" when none). */
typedef struct esi_mst_check {
    bool canonical;
    es_atp_error why;
    char key[ESI_MST_KEY_MAX + 1];
    size_t key_len;
} esi_mst_check;

/* Visit every record of the tree rooted at `root` in key order (see
 * es_atp_walk_repo for the bounds). `check` may be NULL (no kinds, no
 * canonical checks). */
es_status esi_mst_walk(const es_car *car, const uint8_t *root, size_t root_len,
                       esi_mst_check *check, es_atp_record_fn fn, void *user);

/* Decode the commit named by roots[0] into *info (strings in `arena`);
 * *block (may be NULL) receives its block. A refusal sets *why: CAR_ROOT
 * (no root), MISSING_BLOCK, HASH, COMMIT (not a commit map). */
es_status esi_atp_read_commit(const es_car *car, es_arena *arena, es_atp_commit_info *info,
                              es_car_block **block, es_atp_error *why);

#endif
