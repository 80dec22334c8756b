/* Test helper shared by the adapter's tests that craft frames from real
 * ones (test_atproto_hostile.c, test_atproto_verify.c): decode a frame into
 * editable values, change fields, rebuild its CAR, encode it again as
 * canonical DAG-CBOR. Failures are cmocka assertions. */
#ifndef ES_ATP_TEST_FRAME_EDIT_H
#define ES_ATP_TEST_FRAME_EDIT_H

#include <stdint.h>
#include <string.h>

#include <es/atproto.h>
#include <es/buf.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>

/* A frame's bytes, malloc'ed (the owner frees `bytes`). */
typedef struct sample {
    uint8_t *bytes;
    size_t len;
} sample;

/* A frame decoded (with copies) for editing, then encoded again. */
typedef struct edit {
    es_arena *a;
    es_value *header, *body;
} edit;

static inline void edit_open(edit *e, const sample *s)
{
    assert_int_equal(es_arena_create(0, &e->a), ES_OK);
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    o.copy = true;
    size_t used, used2;
    assert_int_equal(es_cbor_decode(s->bytes, s->len, &o, e->a, &e->header, &used), ES_OK);
    assert_int_equal(es_cbor_decode(s->bytes + used, s->len - used, &o, e->a, &e->body, &used2),
                     ES_OK);
}

static inline es_value *slot(es_value *map, const char *key)
{
    for (size_t i = 0; i < map->u.map.count; i++)
        if (strcmp(map->u.map.entries[i].key, key) == 0)
            return &map->u.map.entries[i].value;
    fail_msg("no field %s", key);
    return NULL;
}

static inline es_value str_value(edit *e, const char *s)
{
    return *es_value_new_string(e->a, s, strlen(s));
}

static inline sample edit_close(edit *e)
{
    es_buf out = ES_BUF_INIT;
    assert_int_equal(es_cbor_encode(e->header, NULL, &out), ES_OK);
    assert_int_equal(es_cbor_encode(e->body, NULL, &out), ES_OK);
    es_arena_destroy(e->a);
    return (sample){out.data, out.len};
}

/* A CAR rebuilt from `car` with changes: the block with CID `drop` left out,
 * `extra` appended, the first root replaced by `root` (when not NULL). */
static inline es_value car_value(edit *e, const es_car *car, const uint8_t *drop, const uint8_t *root,
                          const uint8_t *extra_cid, const es_buf *extra)
{
    es_buf out = ES_BUF_INIT;
    es_value *h = es_value_new_map(e->a, 2);
    es_value *roots = es_value_new_array(e->a, 1);
    roots->u.array.items[0] = *es_value_new_bytes(e->a, root ? root : car->roots[0],
                                                  root ? ES_CID_SHA256_LEN : car->root_lens[0]);
    roots->u.array.items[0].kind = ES_VALUE_LINK;
    h->u.map.entries[0] = (es_value_entry){"roots", 5, *roots};
    h->u.map.entries[1] = (es_value_entry){"version", 7, *es_value_new_int(e->a, 1)};
    es_buf hb = ES_BUF_INIT;
    assert_int_equal(es_cbor_encode(h, NULL, &hb), ES_OK);
    uint8_t v[10];
    es_buf_append(&out, v, es_varint_encode(hb.len, v));
    es_buf_append(&out, hb.data, hb.len);
    for (size_t i = 0; i <= car->count; i++) {
        const uint8_t *cid = i < car->count ? car->blocks[i].cid : extra_cid;
        size_t cid_len = i < car->count ? car->blocks[i].cid_len : ES_CID_SHA256_LEN;
        const uint8_t *data = i < car->count ? car->blocks[i].data : extra ? extra->data : NULL;
        size_t len = i < car->count ? car->blocks[i].len : extra ? extra->len : 0;
        if (cid == NULL || (drop != NULL && memcmp(cid, drop, cid_len) == 0))
            continue;
        es_buf_append(&out, v, es_varint_encode(cid_len + len, v));
        es_buf_append(&out, cid, cid_len);
        es_buf_append(&out, data, len);
    }
    es_value r = *es_value_new_bytes(e->a, out.data, out.len);
    es_buf_free(&out);
    es_buf_free(&hb);
    return r;
}

static inline void parse_blocks(edit *e, es_car *car)
{
    es_value *blocks = slot(e->body, "blocks");
    assert_int_equal(es_car_parse(blocks->u.bytes.ptr, blocks->u.bytes.len, NULL, e->a, car),
                     ES_OK);
}

static inline es_value *op_at(edit *e, size_t i)
{
    return &slot(e->body, "ops")->u.array.items[i];
}

#endif
