/* Private helpers of the generator: building value trees tersely and
 * encoding them as DAG-CBOR blocks. */
#ifndef ES_ATPROTO_GEN_INTERNAL_H
#define ES_ATPROTO_GEN_INTERNAL_H

#include <es/arena.h>
#include <es/buf.h>
#include <es/cid.h>
#include <es/value.h>

#include "atproto_gen.h"

/* Values in `a`; each returns NULL when the arena is full, and every
 * constructor accepts NULL children by returning NULL, so a tree can be
 * built in one expression and checked once at the top. */
es_value *gv_str(es_arena *a, const char *s);
es_value *gv_strn(es_arena *a, const char *s, size_t len);
es_value *gv_int(es_arena *a, int64_t i);
es_value *gv_bool(es_arena *a, bool b);
es_value *gv_null(es_arena *a);
es_value *gv_bytes(es_arena *a, const void *p, size_t len);
es_value *gv_link(es_arena *a, const uint8_t cid[ES_CID_SHA256_LEN]);
/* A map of `n` key/value pairs given as (const char *key, es_value *value)... */
es_value *gv_map(es_arena *a, size_t n, ...);
/* Set entry `i` of `map` (from es_value_new_map); false when either is NULL. */
bool gv_put(es_value *map, size_t i, const char *key, const es_value *value);
/* An array of `n` values. */
es_value *gv_array(es_arena *a, size_t n, es_value *const *items);

/* Called for every node of a tree built by gen_mst_cover, children before
 * parents; `covered`: the node's key range (bounds included) holds one of
 * the cover keys. */
typedef es_status (*gen_cover_fn)(const uint8_t cid[ES_CID_SHA256_LEN], const uint8_t *bytes,
                                  size_t len, bool covered, void *user);
/* es_atp_gen_mst, telling which nodes cover `cover` (the paths of a commit's
 * ops: what an inversion of the commit reads, Sync 1.1). */
es_status gen_mst_cover(const es_atp_gen_leaf *leaves, size_t n, const char *const *cover,
                        size_t cover_count, gen_cover_fn fn, void *user,
                        uint8_t root[ES_CID_SHA256_LEN]);

/* Encode `v` as strict DAG-CBOR into `out` (cleared first) and compute its
 * dag-cbor CID. */
es_status gv_block(const es_value *v, es_buf *out, uint8_t cid[ES_CID_SHA256_LEN]);

#endif
