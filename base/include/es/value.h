/* The common value model every codec decodes into and encodes from: the
 * atproto data model (null, bool, integer, string, bytes, CID link, array,
 * map with string keys) plus floats and 64-bit unsigned integers for the
 * general-purpose codecs.
 *
 * A value tree lives in an es_arena: it is freed with the arena, never piece
 * by piece. Decoders may point strings and bytes straight into the input
 * buffer (zero copy) when asked to; such a tree is valid only while that
 * buffer is. The struct is public and read-only by convention: walk it
 * directly, build new trees with the es_value_* constructors. */
#ifndef ES_VALUE_H
#define ES_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/arena.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum es_value_kind {
    ES_VALUE_NULL = 0,
    ES_VALUE_BOOL,
    ES_VALUE_INT,    /* int64_t */
    ES_VALUE_UINT,   /* uint64_t above INT64_MAX only; smaller ones are ES_VALUE_INT */
    ES_VALUE_FLOAT,  /* double; refused in atproto (strict DAG-CBOR) mode */
    ES_VALUE_STRING, /* UTF-8 text, not NUL-terminated in general */
    ES_VALUE_BYTES,
    ES_VALUE_LINK, /* a CID, in its binary form (no multibase prefix) */
    ES_VALUE_ARRAY,
    ES_VALUE_MAP, /* string keys, kept in the order decoded or built */
} es_value_kind;

typedef struct es_value es_value;
typedef struct es_value_entry es_value_entry;

struct es_value {
    es_value_kind kind;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double f;
        struct {
            const char *ptr;
            size_t len;
        } str; /* STRING */
        struct {
            const uint8_t *ptr;
            size_t len;
        } bytes; /* BYTES and LINK */
        struct {
            es_value *items;
            size_t count;
        } array; /* ARRAY */
        struct {
            es_value_entry *entries;
            size_t count;
        } map; /* MAP */
    } u;
};

struct es_value_entry {
    const char *key;
    size_t key_len;
    es_value value;
};

/* The entry of `map` whose key equals the NUL-terminated `key`, or NULL
 * (also when `map` is NULL or not a map). */
ES_API const es_value *es_value_get(const es_value *map, const char *key);

/* True when `v` is a STRING equal to the NUL-terminated `s`. */
ES_API bool es_value_is_string(const es_value *v, const char *s);

/* Deep equality (same kinds, same contents; maps compared key by key in
 * order-independent fashion — with duplicate keys, as multisets of
 * entries; floats by bit pattern). Reflexive and symmetric. */
ES_API bool es_value_equal(const es_value *a, const es_value *b);

/* es_value_equal, and every map's entries in the same order: what a codec's
 * round trip must give back. */
ES_API bool es_value_identical(const es_value *a, const es_value *b);

/* Constructors: each allocates in `arena` and returns NULL when it is full. */
ES_API es_value *es_value_new_null(es_arena *arena);
ES_API es_value *es_value_new_bool(es_arena *arena, bool b);
ES_API es_value *es_value_new_int(es_arena *arena, int64_t i);
ES_API es_value *es_value_new_string(es_arena *arena, const char *s, size_t len); /* copies */
ES_API es_value *es_value_new_bytes(es_arena *arena, const void *p, size_t len);  /* copies */
/* An array or map of `count` zeroed slots (NULL values, NULL keys) to fill in. */
ES_API es_value *es_value_new_array(es_arena *arena, size_t count);
ES_API es_value *es_value_new_map(es_arena *arena, size_t count);

#ifdef __cplusplus
}
#endif
#endif
