/* Work bounds on crafted input, found while writing the fuzz targets
 * (docs/fuzzing.md): a repository walk, a frame or a CAR index must never
 * do more work than its bytes justify.
 *
 * The inputs are built here from values (es_cbor_encode, es_cid_sha256), so
 * every block hashes to its CID and every rule but the attacked one holds.
 * With ES_FUZZ_REGRESSIONS_OUT=<dir> the test also writes them to
 * <dir>/car/ and <dir>/frame/: that is how fuzz/regressions/ got them. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <es/atproto.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>

static const char did[] = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
static const char rev[] = "3jzfcijpj2z2a";

/* ---- building blocks ----------------------------------------------------- */

typedef struct builder {
    es_arena *arena; /* the values */
    es_buf blocks;   /* CAR sections, header excluded */
} builder;

static void put_varint(es_buf *b, uint64_t v)
{
    uint8_t t[10];
    assert_int_equal(es_buf_append(b, t, es_varint_encode(v, t)), ES_OK);
}

/* Encode v as a block of the CAR being built; its CID into cid. */
static void add_block(builder *b, const es_value *v, uint8_t cid[ES_CID_SHA256_LEN])
{
    es_buf data = ES_BUF_INIT;
    assert_int_equal(es_cbor_encode(v, NULL, &data), ES_OK);
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, data.data, data.len, cid), ES_OK);
    put_varint(&b->blocks, ES_CID_SHA256_LEN + data.len);
    assert_int_equal(es_buf_append(&b->blocks, cid, ES_CID_SHA256_LEN), ES_OK);
    assert_int_equal(es_buf_append(&b->blocks, data.data, data.len), ES_OK);
    es_buf_free(&data);
}

static es_value *link(builder *b, const uint8_t cid[ES_CID_SHA256_LEN])
{
    es_value *v = es_value_new_bytes(b->arena, cid, ES_CID_SHA256_LEN);
    assert_non_null(v);
    v->kind = ES_VALUE_LINK;
    return v;
}

static es_value *text(builder *b, const char *s)
{
    es_value *v = es_value_new_string(b->arena, s, strlen(s));
    assert_non_null(v);
    return v;
}

/* Entry i of map m (keys must be given in DAG-CBOR order). */
static void set(es_value *m, size_t i, const char *key, const es_value *v)
{
    m->u.map.entries[i].key = key;
    m->u.map.entries[i].key_len = strlen(key);
    m->u.map.entries[i].value = *v;
}

static es_value *map(builder *b, size_t n)
{
    es_value *m = es_value_new_map(b->arena, n);
    assert_non_null(m);
    return m;
}

/* An array of n zeros: n bytes of DAG-CBOR, n values to decode. */
static es_value *zeros(builder *b, size_t n)
{
    es_value *a = es_value_new_array(b->arena, n);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++)
        a->u.array.items[i].kind = ES_VALUE_INT;
    return a;
}

/* The commit {did, rev, data, version: 3}. */
static void add_commit(builder *b, const uint8_t data[ES_CID_SHA256_LEN],
                       uint8_t cid[ES_CID_SHA256_LEN])
{
    es_value *c = map(b, 4);
    set(c, 0, "did", text(b, did));
    set(c, 1, "rev", text(b, rev));
    set(c, 2, "data", link(b, data));
    set(c, 3, "version", es_value_new_int(b->arena, 3));
    add_block(b, c, cid);
}

/* The CAR: header {roots: [root], version: 1}, then the blocks. */
static void finish_car(builder *b, const uint8_t root[ES_CID_SHA256_LEN], es_buf *car)
{
    es_value *h = map(b, 2), *roots = es_value_new_array(b->arena, 1);
    assert_non_null(roots);
    roots->u.array.items[0] = *link(b, root);
    set(h, 0, "roots", roots);
    set(h, 1, "version", es_value_new_int(b->arena, 1));
    es_buf head = ES_BUF_INIT;
    assert_int_equal(es_cbor_encode(h, NULL, &head), ES_OK);
    put_varint(car, head.len);
    assert_int_equal(es_buf_append(car, head.data, head.len), ES_OK);
    assert_int_equal(es_buf_append(car, b->blocks.data, b->blocks.len), ES_OK);
    es_buf_free(&head);
}

static void builder_init(builder *b)
{
    assert_int_equal(es_arena_create(0, &b->arena), ES_OK);
    b->blocks = (es_buf)ES_BUF_INIT;
}

static void builder_free(builder *b)
{
    es_arena_destroy(b->arena);
    es_buf_free(&b->blocks);
}

/* With ES_FUZZ_REGRESSIONS_OUT set, keep the input for fuzz/regressions/. */
static void keep(const char *target, const char *name, const es_buf *input)
{
    const char *dir = getenv("ES_FUZZ_REGRESSIONS_OUT");
    if (dir == NULL || *dir == '\0')
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(input->data, 1, input->len, f), input->len);
    assert_int_equal(fclose(f), 0);
}

/* ---- a node reached from many entries ------------------------------------ */

#define SHARED_REFS  40
#define SHARED_ZEROS 4000

static int count_record(const es_atp_record *rec, void *user)
{
    (void)rec;
    (*(size_t *)user)++;
    return 0;
}

/* A root node whose SHARED_REFS entries all have the same subtree: a node
 * with no entries (so the key order never objects to meeting it again) and
 * a large ignored field. The walk decoded it once per entry: a 1.3 MB CAR
 * of this shape took 12 s. Now the node bytes decoded are bounded by the
 * CAR's size. */
static void build_shared_node_car(es_buf *car)
{
    builder b;
    builder_init(&b);
    es_value *shared = map(&b, 2);
    set(shared, 0, "e", es_value_new_array(b.arena, 0));
    set(shared, 1, "x", zeros(&b, SHARED_ZEROS));
    uint8_t shared_cid[ES_CID_SHA256_LEN], record[ES_CID_SHA256_LEN], root[ES_CID_SHA256_LEN],
        commit[ES_CID_SHA256_LEN];
    add_block(&b, shared, shared_cid);
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, "r", 1, record), ES_OK);
    es_value *entries = es_value_new_array(b.arena, SHARED_REFS);
    assert_non_null(entries);
    for (size_t i = 0; i < SHARED_REFS; i++) {
        char key[64];
        int n = snprintf(key, sizeof key, "app.bsky.feed.like/k%04zu", i);
        es_value *e = map(&b, 4); /* full keys: prefix 0 */
        set(e, 0, "k", es_value_new_bytes(b.arena, key, (size_t)n));
        set(e, 1, "p", es_value_new_int(b.arena, 0));
        set(e, 2, "t", link(&b, shared_cid));
        set(e, 3, "v", link(&b, record));
        entries->u.array.items[i] = *e;
    }
    es_value *node = map(&b, 2);
    set(node, 0, "e", entries);
    set(node, 1, "l", es_value_new_null(b.arena));
    add_block(&b, node, root);
    for (int64_t i = 0; i < SHARED_REFS; i++) { /* blocks enough for the visits */
        uint8_t filler[ES_CID_SHA256_LEN];
        add_block(&b, es_value_new_int(b.arena, i), filler);
    }
    add_commit(&b, root, commit);
    finish_car(&b, commit, car);
    builder_free(&b);
}

static void walk_decodes_no_more_than_the_car(void **state)
{
    (void)state;
    es_buf input = ES_BUF_INIT;
    build_shared_node_car(&input);
    keep("car", "mst-node-shared-by-every-entry", &input);
    es_arena *arena;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_car car;
    assert_int_equal(es_car_parse(input.data, input.len, NULL, arena, &car), ES_OK);
    size_t records = 0;
    assert_int_equal(es_atp_walk_repo(&car, arena, NULL, count_record, &records), ES_ERR_LIMIT);
    assert_non_null(strstr(es_last_error(), "reached twice"));
    assert_true(records < SHARED_REFS);
    es_arena_destroy(arena);
    es_buf_free(&input);
}

/* ---- ops that name one record -------------------------------------------- */

/* Large enough that a decode fills more than half of the decoder's 32 MiB
 * scratch arena: decoding it twice in one frame fails (the arena keeps its
 * largest block across resets), which is how this test sees a second decode. */
#define RECORD_ZEROS 700000
#define SHARING_OPS  3
/* The input kept for fuzz/regressions/frame: small, and every op shares. */
#define KEPT_ZEROS 2000
#define KEPT_OPS   200

/* A #commit whose ops all create records with the same CID (legal: two
 * paths may hold equal records). Each op decoded the record again: 200 ops
 * naming a 0.5 MB record took 2 s. Now a record block is decoded once per
 * frame. */
static void build_sharing_frame(es_buf *frame, size_t n_zeros, size_t n_ops)
{
    builder b;
    builder_init(&b);
    es_value *rec = map(&b, 1);
    set(rec, 0, "a", zeros(&b, n_zeros));
    uint8_t record[ES_CID_SHA256_LEN], commit[ES_CID_SHA256_LEN];
    add_block(&b, rec, record);
    add_commit(&b, record, commit);
    es_buf car = ES_BUF_INIT;
    finish_car(&b, commit, &car);
    es_value *ops = es_value_new_array(b.arena, n_ops);
    assert_non_null(ops);
    for (size_t i = 0; i < n_ops; i++) {
        char path[64];
        snprintf(path, sizeof path, "app.bsky.feed.like/k%04zu", i);
        es_value *op = map(&b, 3);
        set(op, 0, "cid", link(&b, record));
        set(op, 1, "path", text(&b, path));
        set(op, 2, "action", text(&b, "create"));
        ops->u.array.items[i] = *op;
    }
    es_value *body = map(&b, 7), *header = map(&b, 2);
    set(body, 0, "ops", ops);
    set(body, 1, "rev", text(&b, rev));
    set(body, 2, "seq", es_value_new_int(b.arena, 1));
    set(body, 3, "repo", text(&b, did));
    set(body, 4, "time", text(&b, "2024-01-01T00:00:00Z"));
    set(body, 5, "blocks", es_value_new_bytes(b.arena, car.data, car.len));
    set(body, 6, "commit", link(&b, commit));
    set(header, 0, "t", text(&b, "#commit"));
    set(header, 1, "op", es_value_new_int(b.arena, 1));
    assert_int_equal(es_cbor_encode(header, NULL, frame), ES_OK);
    assert_int_equal(es_cbor_encode(body, NULL, frame), ES_OK);
    es_buf_free(&car);
    builder_free(&b);
}

/* Decode the frame with a fresh decoder: every op becomes an event with the
 * one record as its data. */
static void decode_sharing_frame(const es_buf *frame, size_t n_ops)
{
    es_atp_decoder *d;
    es_arena *arena;
    assert_int_equal(es_atp_decoder_create(NULL, &d), ES_OK);
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_atp_batch out;
    es_status s = es_atp_decode(d, frame->data, frame->len, arena, &out);
    if (s != ES_OK)
        print_error("%s\n", es_last_error());
    assert_int_equal(s, ES_OK);
    assert_int_equal(out.count, n_ops);
    for (size_t i = 1; i < out.count; i++)
        assert_ptr_equal(out.events[i].data, out.events[0].data);
    es_arena_destroy(arena);
    es_atp_decoder_destroy(d);
}

static void ops_naming_one_record_decode_it_once(void **state)
{
    (void)state;
    es_buf frame = ES_BUF_INIT;
    build_sharing_frame(&frame, RECORD_ZEROS, SHARING_OPS);
    decode_sharing_frame(&frame, SHARING_OPS);
    es_buf_clear(&frame);
    build_sharing_frame(&frame, KEPT_ZEROS, KEPT_OPS);
    keep("frame", "ops-naming-one-record", &frame);
    decode_sharing_frame(&frame, KEPT_OPS);
    es_buf_free(&frame);
}

/* ---- CIDs chosen to collide --------------------------------------------- */

#define MANY_BLOCKS 10000 /* the default max_blocks */

/* A CAR of MANY_BLOCKS one-byte blocks with random CIDs (never verified),
 * their last 8 bytes all equal when `collide`: the index hashed those
 * bytes, so every block fell in one chain and indexing took 1.5 s. The
 * last block repeats the first one's CID. */
static void build_many_blocks(es_buf *car, bool collide)
{
    static const uint8_t header[] = {0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80, 0x67,
                                     'v',  'e',  'r', 's', 'i', 'o', 'n', 0x01};
    put_varint(car, sizeof header);
    assert_int_equal(es_buf_append(car, header, sizeof header), ES_OK);
    uint32_t x = 12345;
    uint8_t first[ES_CID_SHA256_LEN];
    for (size_t i = 0; i < MANY_BLOCKS; i++) {
        uint8_t cid[ES_CID_SHA256_LEN] = {1, ES_CID_CODEC_DAG_CBOR, ES_MULTIHASH_SHA2_256, 32};
        for (size_t k = 4; k < sizeof cid; k++) {
            x = x * 1103515245u + 12345u;
            cid[k] = collide && k >= sizeof cid - 8 ? 0xab : (uint8_t)(x >> 16);
        }
        if (i == 0)
            memcpy(first, cid, sizeof cid);
        if (i == MANY_BLOCKS - 1)
            memcpy(cid, first, sizeof cid);
        put_varint(car, sizeof cid + 1);
        assert_int_equal(es_buf_append(car, cid, sizeof cid), ES_OK);
        assert_int_equal(es_buf_append_byte(car, (uint8_t)i), ES_OK);
    }
}

/* Seconds to parse `car` (the best of three) and check its lookups. */
static double parse_seconds(const es_buf *car)
{
    double best = 1e9;
    for (int round = 0; round < 3; round++) {
        es_arena *arena;
        assert_int_equal(es_arena_create(0, &arena), ES_OK);
        es_car c;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(es_car_parse(car->data, car->len, NULL, arena, &c), ES_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double t = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        best = t < best ? t : best;
        assert_int_equal(c.count, MANY_BLOCKS);
        for (size_t i = 0; i < c.count; i += 97) /* the first of duplicates, as a scan */
            assert_ptr_equal(es_car_find(&c, c.blocks[i].cid, c.blocks[i].cid_len),
                             i == c.count - 1 ? &c.blocks[0] : &c.blocks[i]);
        assert_ptr_equal(es_car_find(&c, c.blocks[c.count - 1].cid, ES_CID_SHA256_LEN),
                         &c.blocks[0]);
        es_arena_destroy(arena);
    }
    return best;
}

/* Colliding CIDs cost about what random ones do (the old index: 36 times
 * as much). A ratio, so that it holds on a slow or loaded machine. */
static void car_index_has_no_worst_case(void **state)
{
    (void)state;
    es_buf plain = ES_BUF_INIT, colliding = ES_BUF_INIT;
    build_many_blocks(&plain, false);
    build_many_blocks(&colliding, true);
    double t_plain = parse_seconds(&plain), t_colliding = parse_seconds(&colliding);
    print_message("parse: %.4f s random CIDs, %.4f s colliding\n", t_plain, t_colliding);
    assert_true(t_colliding < 8 * t_plain + 0.02);
    es_buf_free(&plain);
    es_buf_free(&colliding);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(car_index_has_no_worst_case),
        cmocka_unit_test(walk_decodes_no_more_than_the_car),
        cmocka_unit_test(ops_naming_one_record_decode_it_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
