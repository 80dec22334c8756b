#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/atproto.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>

#include "fixtures.h"

typedef struct listing {
    char lines[256][160]; /* "key\tcid" */
    size_t count;
    size_t with_block;
} listing;

static int list_record(const es_atp_record *rec, void *user)
{
    listing *l = user;
    char cid[ES_CID_STRING_MAX];
    assert_int_equal(es_cid_to_string(rec->cid, rec->cid_len, cid, sizeof cid), ES_OK);
    assert_true(l->count < 256);
    snprintf(l->lines[l->count++], sizeof l->lines[0], "%s\t%s", rec->key, cid);
    l->with_block += rec->block != NULL;
    return 0;
}

/* A fixture that must read when it is there (NULL: absent, already said). */
static unsigned char *load(const char *rel, size_t *len)
{
    unsigned char *buf = fixture_load(rel, len);
    assert_true(buf != NULL || fixture_path(rel) == NULL);
    return buf;
}

static void repo_car_lists_expected_records(void **state)
{
    (void)state;
    size_t car_len, tsv_len, commit_len;
    unsigned char *car_bytes = load("firehose-corpus/repo.car", &car_len);
    unsigned char *tsv = load("firehose-corpus/car_expected_records.tsv", &tsv_len);
    unsigned char *commit = load("firehose-corpus/car_expected_commit.txt", &commit_len);
    if (car_bytes == NULL || tsv == NULL || commit == NULL) {
        free(car_bytes), free(tsv), free(commit);
        skip();
    }
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_car car;
    assert_int_equal(es_car_parse(car_bytes, car_len, NULL, a, &car), ES_OK);
    assert_int_equal(car.root_count, 1);
    for (size_t i = 0; i < car.count; i++) /* every block of a getRepo CAR is sound */
        assert_int_equal(es_car_verify(&car.blocks[i]), ES_OK);

    static listing l;
    memset(&l, 0, sizeof l);
    es_atp_commit_info info;
    assert_int_equal(es_atp_walk_repo(&car, a, &info, list_record, &l), ES_OK);

    /* exactly the lines of the TSV, in its (key) order */
    size_t expected = 0;
    for (char *line = (char *)tsv; *line;) {
        size_t n = strcspn(line, "\n");
        if (n > 0) {
            assert_true(expected < l.count);
            assert_int_equal(strlen(l.lines[expected]), n);
            assert_memory_equal(l.lines[expected], line, n);
            expected++;
        }
        line += n + (line[n] == '\n');
    }
    assert_int_equal(expected, l.count);
    assert_int_equal(l.with_block, l.count);

    char did[128], data[128], rev[32], data_text[ES_CID_STRING_MAX];
    assert_true(fixture_field((char *)commit, "DID: ", did, sizeof did));
    assert_true(fixture_field((char *)commit, "Data CID: ", data, sizeof data));
    assert_true(fixture_field((char *)commit, "Revision: ", rev, sizeof rev));
    assert_string_equal(info.did, did);
    assert_string_equal(info.rev, rev);
    assert_int_equal(info.version, 3);
    assert_int_equal(es_cid_to_string(info.data, info.data_len, data_text, sizeof data_text),
                     ES_OK);
    assert_string_equal(data_text, data);

    /* lookups through the index find every block */
    assert_true(car.count > 16);
    for (size_t i = 0; i < car.count; i++)
        assert_ptr_equal(es_car_find(&car, car.blocks[i].cid, car.blocks[i].cid_len),
                         &car.blocks[i]);
    assert_null(es_car_find(&car, car.blocks[0].cid, car.blocks[0].cid_len - 1));
    es_arena_destroy(a);
    free(car_bytes), free(tsv), free(commit);
}

static int count_records(const es_atp_record *rec, void *user)
{
    (void)rec;
    (*(size_t *)user)++;
    return 0;
}

/* Parse and walk; never crash, and anything that succeeds is consistent. */
static es_status parse_and_walk(const uint8_t *buf, size_t len, es_arena *a, size_t *records)
{
    es_arena_reset(a);
    es_car car;
    *records = 0;
    es_status s = es_car_parse(buf, len, NULL, a, &car);
    if (s != ES_OK) {
        assert_true(s == ES_ERR_DECODE || s == ES_ERR_LIMIT);
        assert_true(strlen(es_last_error()) > 0);
        return s;
    }
    for (size_t i = 0; i < car.count; i++) {
        assert_true(car.blocks[i].data >= buf &&
                    car.blocks[i].data + car.blocks[i].len <= buf + len);
        (void)es_car_verify(&car.blocks[i]);
    }
    return es_atp_walk_repo(&car, a, NULL, count_records, records);
}

static void damaged_repo_cars(void **state)
{
    (void)state;
    size_t len;
    unsigned char *orig = load("firehose-corpus/repo.car", &len);
    if (orig == NULL)
        skip();
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    size_t full = 0, n;
    assert_int_equal(parse_and_walk(orig, len, a, &full), ES_OK);

    /* every truncation: an error, or (cut at a section boundary) a CAR that
     * lacks blocks, which the walk then reports */
    uint8_t *copy = malloc(len);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(copy, orig, cut);
        es_status s = parse_and_walk(copy, cut, a, &n);
        assert_true(s != ES_OK || n <= full);
        assert_true(s == ES_OK || s == ES_ERR_DECODE || s == ES_ERR_LIMIT);
    }
    assert_int_not_equal(parse_and_walk(orig, len - 1, a, &n), ES_OK);

    /* every single-bit flip: never a crash; a flip inside a block the walk
     * uses is always caught by its hash */
    size_t caught = 0;
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, orig, len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        es_status s = parse_and_walk(copy, len, a, &n);
        caught += s != ES_OK;
    }
    assert_true(caught > len * 9 / 10);
    free(copy);
    es_arena_destroy(a);
    free(orig);
}

/* A CAR from raw pieces: header, then sections given as (cid, data). */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    return es_varint_encode(v, p);
}

static void absurd_lengths_and_limits(void **state)
{
    (void)state;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(1 << 20, &a), ES_OK);
    es_car car;
    /* a header length varint far beyond the buffer */
    uint8_t buf[256];
    size_t n = put_varint(buf, (uint64_t)1 << 62);
    assert_int_equal(es_car_parse(buf, n, NULL, a, &car), ES_ERR_DECODE);
    /* a non-minimal, over-long varint */
    memset(buf, 0xFF, 16);
    assert_int_equal(es_car_parse(buf, 16, NULL, a, &car), ES_ERR_DECODE);
    /* an empty buffer, a zero-length header */
    assert_int_equal(es_car_parse(buf, 0, NULL, a, &car), ES_ERR_DECODE);
    buf[0] = 0;
    assert_int_equal(es_car_parse(buf, 1, NULL, a, &car), ES_ERR_DECODE);

    /* a valid header {roots: [], version: 1} followed by sections */
    static const uint8_t header[] = {0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x80, 0x67,
                                     'v',  'e',  'r', 's', 'i', 'o', 'n', 0x01};
    n = put_varint(buf, sizeof header);
    memcpy(buf + n, header, sizeof header);
    n += sizeof header;
    assert_int_equal(es_car_parse(buf, n, NULL, a, &car), ES_OK);
    assert_int_equal(car.count, 0);
    /* a section claiming more bytes than remain */
    size_t m = n + put_varint(buf + n, 1000);
    assert_int_equal(es_car_parse(buf, m, NULL, a, &car), ES_ERR_DECODE);
    /* a section of garbage instead of a CID */
    m = n + put_varint(buf + n, 3);
    memcpy(buf + m, "\x07\x07\x07", 3);
    assert_int_equal(es_car_parse(buf, m + 3, NULL, a, &car), ES_ERR_DECODE);
    /* sections of a real CID and no data, many of them: bounded by max_blocks */
    uint8_t cid[ES_CID_SHA256_LEN];
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_RAW, "", 0, cid), ES_OK);
    m = n;
    for (int i = 0; i < 5; i++) {
        m += put_varint(buf + m, sizeof cid);
        memcpy(buf + m, cid, sizeof cid);
        m += sizeof cid;
    }
    assert_int_equal(es_car_parse(buf, m, NULL, a, &car), ES_OK);
    assert_int_equal(car.count, 5);
    assert_ptr_equal(es_car_find(&car, cid, sizeof cid), &car.blocks[0]); /* first duplicate */
    assert_int_equal(es_car_verify(&car.blocks[0]), ES_OK);
    assert_true(es_car_block_verified(&car.blocks[0]));
    es_car_limits lim = {.max_blocks = 4};
    assert_int_equal(es_car_parse(buf, m, &lim, a, &car), ES_ERR_LIMIT);
    lim = (es_car_limits){.max_bytes = m - 1};
    assert_int_equal(es_car_parse(buf, m, &lim, a, &car), ES_ERR_LIMIT);
    /* a block whose bytes do not hash to its CID */
    m = n + put_varint(buf + n, sizeof cid + 1);
    memcpy(buf + m, cid, sizeof cid);
    buf[m + sizeof cid] = 'x';
    assert_int_equal(es_car_parse(buf, m + sizeof cid + 1, NULL, a, &car), ES_OK);
    assert_int_equal(es_car_verify(&car.blocks[0]), ES_ERR_DECODE);
    assert_false(es_car_block_verified(&car.blocks[0]));
    assert_non_null(strstr(es_last_error(), "SHA-256"));
    es_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(absurd_lengths_and_limits),
        cmocka_unit_test(repo_car_lists_expected_records),
        cmocka_unit_test(damaged_repo_cars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
