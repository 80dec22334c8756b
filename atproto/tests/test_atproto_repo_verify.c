/* es_atp_verify_repo: a getRepo CAR verified whole. The real repo.car of the
 * corpus, es-atproto-gen repositories signed with K-256 and P-256 keys
 * checked against their DID documents, and CARs tampered one way each,
 * every one refused with its reason and the key at fault. Forged trees are
 * hash-consistent (each node's CID is its bytes' hash): only the canonical
 * structure rule can refuse them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <es/atproto.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>

#include "atproto_gen.h"
#include "fixture_json.h"
#include "fixtures.h"
#include "gen_internal.h"
#include "http_standin.h"

typedef uint8_t cid_t[ES_CID_SHA256_LEN];

/* ---- blocks and CARs ----------------------------------------------------- */

typedef struct blk {
    cid_t cid;
    uint8_t *bytes;
    size_t len;
} blk;

typedef struct blocks {
    blk *items;
    size_t n, cap;
} blocks;

static void blocks_add(blocks *bs, const cid_t cid, const uint8_t *bytes, size_t len)
{
    if (bs->n == bs->cap) {
        bs->cap = bs->cap ? bs->cap * 2 : 64;
        bs->items = realloc(bs->items, bs->cap * sizeof *bs->items);
        assert_non_null(bs->items);
    }
    blk *b = &bs->items[bs->n++];
    memcpy(b->cid, cid, sizeof(cid_t));
    b->bytes = malloc(len ? len : 1);
    memcpy(b->bytes, bytes, len);
    b->len = len;
}

static void blocks_free(blocks *bs)
{
    for (size_t i = 0; i < bs->n; i++)
        free(bs->items[i].bytes);
    free(bs->items);
    *bs = (blocks){0};
}

/* Encode `v` as a block and add it; its CID into `cid`. */
static void add_value(blocks *bs, const es_value *v, cid_t cid)
{
    es_buf enc = ES_BUF_INIT;
    assert_non_null(v);
    assert_int_equal(gv_block(v, &enc, cid), ES_OK);
    blocks_add(bs, cid, enc.data, enc.len);
    es_buf_free(&enc);
}

static void append_section(es_buf *car, const uint8_t *cid, size_t cid_len, const uint8_t *data,
                           size_t len)
{
    uint8_t varint[10];
    size_t n = es_varint_encode(cid_len + len, varint);
    assert_int_equal(es_buf_append(car, varint, n), ES_OK);
    assert_int_equal(es_buf_append(car, cid, cid_len), ES_OK);
    assert_int_equal(es_buf_append(car, data, len), ES_OK);
}

/* A CAR v1 of `root` and the blocks (all but the one at index `skip`). */
static void write_car(const cid_t root, const blocks *bs, size_t skip, es_buf *car)
{
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_value *link = gv_link(a, root);
    es_value *header = gv_map(a, 2, "roots", gv_array(a, 1, &link), "version", gv_int(a, 1));
    es_buf h = ES_BUF_INIT;
    assert_non_null(header);
    assert_int_equal(es_cbor_encode(header, NULL, &h), ES_OK);
    uint8_t varint[10];
    size_t n = es_varint_encode(h.len, varint);
    es_buf_clear(car);
    assert_int_equal(es_buf_append(car, varint, n), ES_OK);
    assert_int_equal(es_buf_append(car, h.data, h.len), ES_OK);
    for (size_t i = 0; i < bs->n; i++)
        if (i != skip)
            append_section(car, bs->items[i].cid, sizeof(cid_t), bs->items[i].bytes,
                           bs->items[i].len);
    es_buf_free(&h);
    es_arena_destroy(a);
}

/* ---- verification -------------------------------------------------------- */

typedef struct run {
    es_status status;
    es_atp_repo_verdict verdict;
    es_atp_commit_info commit;
    char key[1100]; /* verdict.key, copied out of the arena */
    cid_t root;
    es_buf tsv; /* the records seen: "key<TAB>cid\n" */
    size_t invalid;
} run;

static int collect(const es_atp_record *rec, void *user)
{
    run *r = user;
    char cid[ES_CID_STRING_MAX];
    assert_int_equal(es_cid_to_string(rec->cid, rec->cid_len, cid, sizeof cid), ES_OK);
    assert_non_null(rec->block);
    r->invalid += rec->invalid != NULL;
    es_buf_append(&r->tsv, rec->key, rec->key_len);
    es_buf_append_byte(&r->tsv, '\t');
    es_buf_append_str(&r->tsv, cid);
    es_buf_append_byte(&r->tsv, '\n');
    return 0;
}

/* Parse and verify a CAR as `did` (with `id`, or skipping the signature). */
static void verify_car(const uint8_t *bytes, size_t len, const char *did, es_atp_identity *id,
                       run *r)
{
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_car_limits limits = {.max_bytes = (size_t)64 << 20, .max_blocks = 200000};
    es_car car;
    assert_int_equal(es_car_parse(bytes, len, &limits, a, &car), ES_OK);
    es_atp_repo_verify_options o;
    es_atp_repo_verify_options_init(&o);
    o.did = did;
    o.identity = id;
    o.skip_signature = id == NULL;
    es_buf_free(&r->tsv);
    *r = (run){0};
    r->status = es_atp_verify_repo(&car, &o, a, &r->commit, collect, r, &r->verdict);
    if (r->verdict.key != NULL)
        snprintf(r->key, sizeof r->key, "%s", r->verdict.key);
    r->commit = (es_atp_commit_info){0}; /* its strings lived in the arena */
    if (car.root_count > 0 && car.root_lens[0] == sizeof(cid_t))
        memcpy(r->root, car.roots[0], sizeof(cid_t));
    es_arena_destroy(a);
}

static void run_free(run *r)
{
    es_buf_free(&r->tsv);
}

/* The refusal `why`, with the key at fault `key` (NULL: not checked). */
static void assert_refused(const run *r, es_atp_error why, const char *key)
{
    if (r->status == ES_OK || r->verdict.error != why)
        fail_msg("expected a refusal '%s', got status %d kind '%s' (%s)", es_atp_error_name(why),
                 (int)r->status, es_atp_error_name(r->verdict.error), es_last_error());
    assert_true(r->status == ES_ERR_DECODE || r->status == ES_ERR_LIMIT);
    if (key != NULL)
        assert_string_equal(r->key, key);
}

/* ---- the real repo.car --------------------------------------------------- */

#define CORPUS_DID "did:plc:53iucmf5ldftgqyf2ac7hmhd"

/* The value of "<label>: value" in car_expected_commit.txt. */
static void commit_field(const char *text, const char *label, char *out, size_t cap)
{
    const char *at = strstr(text, label);
    assert_non_null(at);
    at += strlen(label);
    size_t n = strcspn(at, "\n");
    assert_true(n < cap);
    memcpy(out, at, n);
    out[n] = '\0';
}

static void real_repo_car_verifies(void **state)
{
    (void)state;
    const char *p = fixture_path("firehose-corpus/did_docs.json.zst");
    char *docs_path = p ? strdup(p) : NULL; /* fixture_path's storage is reused */
    p = fixture_path("firehose-corpus/repo.car");
    if (p == NULL || docs_path == NULL) {
        free(docs_path);
        skip();
    }
    size_t len, tsv_len, commit_len;
    unsigned char *bytes = read_whole_file(p, &len);
    unsigned char *tsv =
        read_whole_file(fixture_path("firehose-corpus/car_expected_records.tsv"), &tsv_len);
    unsigned char *commit =
        read_whole_file(fixture_path("firehose-corpus/car_expected_commit.txt"), &commit_len);
    assert_non_null(bytes);
    assert_non_null(tsv);
    assert_non_null(commit);

    /* its author's document is not among the corpus's: the signature cannot
     * be checked (IDENTITY), every other check can */
    es_atp_identity_options io;
    es_atp_identity_options_init(&io);
    io.offline = true;
    es_atp_identity *id = NULL;
    assert_int_equal(es_atp_identity_create(&io, &id), ES_OK);
    assert_int_equal(es_atp_identity_seed_file(id, docs_path, NULL), ES_OK);
    run r = {0};
    verify_car(bytes, len, CORPUS_DID, id, &r);
    assert_refused(&r, ES_ATP_ERR_IDENTITY, NULL);
    es_atp_identity_destroy(id);

    verify_car(bytes, len, CORPUS_DID, NULL, &r);
    if (r.status != ES_OK)
        fail_msg("repo.car: %s", es_last_error());
    assert_int_equal(r.verdict.error, ES_ATP_ERR_NONE);
    assert_int_equal(r.tsv.len, tsv_len);
    assert_memory_equal(r.tsv.data, tsv, tsv_len);
    assert_int_equal(r.verdict.records, 23);
    assert_int_equal(r.verdict.invalid_records, 0);

    /* the commit: car_expected_commit.txt, field by field */
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_car car;
    assert_int_equal(es_car_parse(bytes, len, NULL, a, &car), ES_OK);
    es_atp_repo_verify_options o;
    es_atp_repo_verify_options_init(&o);
    o.did = CORPUS_DID;
    o.skip_signature = true;
    es_atp_commit_info info;
    run sink = {0};
    assert_int_equal(es_atp_verify_repo(&car, &o, a, &info, collect, &sink, NULL), ES_OK);
    char want[128], data[ES_CID_STRING_MAX];
    commit_field((const char *)commit, "DID: ", want, sizeof want);
    assert_string_equal(info.did, want);
    commit_field((const char *)commit, "Revision: ", want, sizeof want);
    assert_string_equal(info.rev, want);
    commit_field((const char *)commit, "ATProto Repo Spec Version: ", want, sizeof want);
    assert_int_equal(info.version, atoi(want));
    commit_field((const char *)commit, "Data CID: ", want, sizeof want);
    assert_int_equal(es_cid_to_string(info.data, info.data_len, data, sizeof data), ES_OK);
    assert_string_equal(data, want);

    /* another DID: refused, whatever the tree */
    verify_car(bytes, len, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", NULL, &r);
    assert_refused(&r, ES_ATP_ERR_COMMIT, NULL);

    run_free(&sink);
    run_free(&r);
    es_arena_destroy(a);
    free(bytes);
    free(tsv);
    free(commit);
    free(docs_path);
}

/* ---- es-atproto-gen repositories ----------------------------------------- */

#define GEN_REPOS  6
#define GEN_FRAMES 1200

typedef struct last_commit {
    char did[64];
    char rev[16];
    cid_t commit;
} last_commit;

/* An identity seeded with `docs` (the generator's documents, JSON text):
 * offline, or resolving through the PLC stand-in at `plc`. */
static es_atp_identity *seeded_identity(const es_buf *docs, size_t count, const char *plc)
{
    char path[] = "/tmp/test_atproto_repo_verify.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, docs->data, docs->len), (ssize_t)docs->len);
    close(fd);
    es_atp_identity_options io;
    es_atp_identity_options_init(&io);
    io.offline = plc == NULL;
    if (plc != NULL) {
        io.plc_url = plc;
        io.allow_insecure = true; /* a stand-in on loopback */
    }
    io.timeout_ms = 2000;
    es_atp_identity *id = NULL;
    assert_int_equal(es_atp_identity_create(&io, &id), ES_OK);
    size_t n = 0;
    assert_int_equal(es_atp_identity_seed_file(id, path, &n), ES_OK);
    assert_int_equal(n, count);
    unlink(path);
    return id;
}

/* An identity seeded (offline) with the generator's current documents. */
static es_atp_identity *gen_identity(es_atp_gen *g)
{
    es_buf text = ES_BUF_INIT;
    assert_int_equal(es_atp_gen_did_docs(g, &text), ES_OK);
    es_atp_identity *id = seeded_identity(&text, es_atp_gen_repo_count(g), NULL);
    es_buf_free(&text);
    return id;
}

/* Generate a capture, remembering each repo's newest signed commit (#commit
 * or #sync) as the decoder reads it. */
static void generate_frames(es_atp_gen *g, last_commit *last);

static es_atp_gen *generate(es_atp_gen_curves curves, last_commit *last)
{
    es_atp_gen_options o = {.seed = 19, .repos = GEN_REPOS, .curves = curves};
    es_atp_gen *g = NULL;
    assert_int_equal(es_atp_gen_create(&o, &g), ES_OK);
    generate_frames(g, last);
    return g;
}

static void generate_frames(es_atp_gen *g, last_commit *last)
{
    es_atp_decoder *d = NULL;
    assert_int_equal(es_atp_decoder_create(NULL, &d), ES_OK);
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_buf frame = ES_BUF_INIT;
    for (size_t i = 0; i < GEN_FRAMES; i++) {
        es_buf_clear(&frame);
        es_arena_reset(a);
        assert_int_equal(es_atp_gen_next(g, &frame), ES_OK);
        es_atp_batch b;
        assert_int_equal(es_atp_decode(d, frame.data, frame.len, a, &b), ES_OK);
        if (b.kind != ES_ATP_KIND_COMMIT && b.kind != ES_ATP_KIND_SYNC)
            continue;
        size_t k = 0;
        while (k < GEN_REPOS && last[k].did[0] != '\0' &&
               (strlen(last[k].did) != b.did_len || memcmp(last[k].did, b.did, b.did_len) != 0))
            k++;
        assert_true(k < GEN_REPOS);
        memcpy(last[k].did, b.did, b.did_len);
        snprintf(last[k].rev, sizeof last[k].rev, "%s", b.rev);
        assert_int_equal(b.commit_cid_len, sizeof(cid_t));
        memcpy(last[k].commit, b.commit_cid, sizeof(cid_t));
    }
    es_buf_free(&frame);
    es_arena_destroy(a);
    es_atp_decoder_destroy(d);
}

static const last_commit *find_last(const last_commit *last, const char *did)
{
    for (size_t k = 0; k < GEN_REPOS; k++)
        if (strcmp(last[k].did, did) == 0)
            return &last[k];
    fail_msg("no commit of %s in the capture", did);
    return NULL;
}

/* Every repo's CAR verifies with its document and lists the generator's
 * records; its commit is the capture's newest of that repo. */
static void gen_repos_verify(es_atp_gen_curves curves)
{
    last_commit last[GEN_REPOS];
    memset(last, 0, sizeof last);
    es_atp_gen *g = generate(curves, last);
    es_atp_identity *id = gen_identity(g);
    es_buf car = ES_BUF_INIT, tsv = ES_BUF_INIT;
    run r = {0};
    for (size_t i = 0; i < es_atp_gen_repo_count(g); i++) {
        const char *did;
        es_buf_clear(&car);
        es_buf_clear(&tsv);
        assert_int_equal(es_atp_gen_repo_car(g, i, &car, &did), ES_OK);
        assert_int_equal(es_atp_gen_repo_tsv(g, i, &tsv), ES_OK);
        verify_car(car.data, car.len, did, id, &r);
        if (r.status != ES_OK)
            fail_msg("repo %zu (%s): %s", i, did, es_last_error());
        assert_true(r.verdict.records > 0);
        assert_int_equal(r.tsv.len, tsv.len);
        assert_memory_equal(r.tsv.data, tsv.data, tsv.len);
        const last_commit *lc = find_last(last, did);
        assert_memory_equal(r.root, lc->commit, sizeof(cid_t));

        /* the same CAR claimed for another repo: refused on its did */
        const char *other;
        assert_int_equal(es_atp_gen_repo_car(g, (i + 1) % GEN_REPOS, &tsv, &other), ES_OK);
        verify_car(car.data, car.len, other, id, &r);
        assert_refused(&r, ES_ATP_ERR_COMMIT, NULL);
    }
    run_free(&r);
    es_buf_free(&car);
    es_buf_free(&tsv);
    es_atp_identity_destroy(id);
    es_atp_gen_destroy(g);
}

static void gen_k256_repos_verify(void **state)
{
    (void)state;
    gen_repos_verify(ES_ATP_GEN_CURVES_K256);
}

static void gen_p256_repos_verify(void **state)
{
    (void)state;
    gen_repos_verify(ES_ATP_GEN_CURVES_P256);
}

/* A key rotated since the documents an identity was seeded with: the
 * signature fails with the seeded key, the document is resolved once more
 * (the PLC stand-in serving the current one), and the repository verifies.
 * Control: the stand-in serving the stale documents, those repositories are
 * refused `signature`, after the same one resolution each. */
static void rotated_keys_resolved_again(void **state)
{
    (void)state;
    es_atp_gen_options o = {.seed = 23, .repos = GEN_REPOS, .rotate_permille = 40};
    es_atp_gen *g = NULL;
    assert_int_equal(es_atp_gen_create(&o, &g), ES_OK);
    es_buf before = ES_BUF_INIT, after = ES_BUF_INIT, car = ES_BUF_INIT;
    assert_int_equal(es_atp_gen_did_docs(g, &before), ES_OK);
    last_commit last[GEN_REPOS];
    memset(last, 0, sizeof last);
    generate_frames(g, last);
    assert_true(es_atp_gen_counts_of(g)->rotations > 0);
    assert_int_equal(es_atp_gen_did_docs(g, &after), ES_OK);
    json_t *docs[2] = {json_loadb((const char *)after.data, after.len, 0, NULL),
                       json_loadb((const char *)before.data, before.len, 0, NULL)};
    assert_non_null(docs[0]);
    assert_non_null(docs[1]);
    unsigned resolved = 0;
    for (int pass = 0; pass < 2; pass++) { /* 0: current documents served; 1: stale ones */
        standin plc;
        assert_int_equal(standin_start(&plc), 0);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", plc.port);
        const char *did;
        json_t *doc;
        json_object_foreach(docs[pass], did, doc)
        {
            char route[128], *text = json_dumps(doc, JSON_COMPACT);
            snprintf(route, sizeof route, "/%s", did);
            standin_route_set(&plc, route, 200, text, 0);
            free(text);
        }
        es_atp_identity *id = seeded_identity(&before, GEN_REPOS, url);
        unsigned refused = 0;
        run r = {0};
        for (size_t i = 0; i < GEN_REPOS; i++) {
            es_buf_clear(&car);
            assert_int_equal(es_atp_gen_repo_car(g, i, &car, &did), ES_OK);
            verify_car(car.data, car.len, did, id, &r);
            if (pass == 0 && r.status != ES_OK)
                fail_msg("repo %zu (%s): %s", i, did, es_last_error());
            if (pass == 1 && r.status != ES_OK) {
                assert_refused(&r, ES_ATP_ERR_SIGNATURE, NULL);
                refused++;
            }
        }
        if (pass == 0) {
            resolved = standin_requests(&plc);
            assert_true(resolved > 0); /* some newest commits are under a new key */
        } else {
            assert_int_equal(refused, resolved);
            assert_int_equal(standin_requests(&plc), resolved);
        }
        run_free(&r);
        es_atp_identity_destroy(id);
        standin_stop(&plc);
    }
    json_decref(docs[0]);
    json_decref(docs[1]);
    es_buf_free(&before);
    es_buf_free(&after);
    es_buf_free(&car);
    es_atp_gen_destroy(g);
}

/* ---- tampering with a real, signed repository ---------------------------- */

typedef struct split {
    blocks bs;
    cid_t root;
    size_t commit; /* index of the commit block */
} split;

/* A generated repo's CAR, split into its blocks. */
static void split_car(const es_buf *car, split *sp)
{
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_car c;
    assert_int_equal(es_car_parse(car->data, car->len, NULL, a, &c), ES_OK);
    memset(sp, 0, sizeof *sp);
    memcpy(sp->root, c.roots[0], sizeof(cid_t));
    for (size_t i = 0; i < c.count; i++) {
        assert_int_equal(c.blocks[i].cid_len, sizeof(cid_t));
        if (memcmp(c.blocks[i].cid, sp->root, sizeof(cid_t)) == 0)
            sp->commit = sp->bs.n;
        blocks_add(&sp->bs, c.blocks[i].cid, c.blocks[i].data, c.blocks[i].len);
    }
    es_arena_destroy(a);
}

/* The index of the block whose CID is the string `cid`. */
static size_t block_of(const split *sp, const char *cid)
{
    uint8_t bin[64];
    size_t n;
    assert_int_equal(es_cid_from_string(cid, strlen(cid), bin, sizeof bin, &n), ES_OK);
    for (size_t i = 0; i < sp->bs.n; i++)
        if (n == sizeof(cid_t) && memcmp(sp->bs.items[i].cid, bin, n) == 0)
            return i;
    fail_msg("no block %s", cid);
    return 0;
}

/* Replace the commit block by `v` re-encoded (a new root). */
static void replace_commit(split *sp, const es_value *v)
{
    es_buf enc = ES_BUF_INIT;
    assert_int_equal(gv_block(v, &enc, sp->root), ES_OK);
    blk *b = &sp->bs.items[sp->commit];
    free(b->bytes);
    b->bytes = malloc(enc.len);
    memcpy(b->bytes, enc.data, enc.len);
    b->len = enc.len;
    memcpy(b->cid, sp->root, sizeof(cid_t));
    es_buf_free(&enc);
}

/* The commit block decoded, in `a`. */
static es_value *commit_value(const split *sp, es_arena *a)
{
    const blk *b = &sp->bs.items[sp->commit];
    es_value *v = NULL;
    assert_int_equal(es_cbor_decode(b->bytes, b->len, NULL, a, &v, NULL), ES_OK);
    return v;
}

static es_value *entry_value(es_value *map, const char *key)
{
    for (size_t i = 0; i < map->u.map.count; i++)
        if (map->u.map.entries[i].key_len == strlen(key) &&
            memcmp(map->u.map.entries[i].key, key, strlen(key)) == 0)
            return &map->u.map.entries[i].value;
    fail_msg("no %s", key);
    return NULL;
}

static void tampered_gen_cars(es_atp_gen_curves curves)
{
    last_commit last[GEN_REPOS];
    memset(last, 0, sizeof last);
    es_atp_gen *g = generate(curves, last);
    es_atp_identity *id = gen_identity(g);
    es_buf car = ES_BUF_INIT, tsv = ES_BUF_INIT, forged = ES_BUF_INIT;
    const char *did;
    assert_int_equal(es_atp_gen_repo_car(g, 0, &car, &did), ES_OK);
    assert_int_equal(es_atp_gen_repo_tsv(g, 0, &tsv), ES_OK);
    assert_int_equal(es_buf_append_byte(&tsv, '\0'), ES_OK); /* read as a string below */
    /* a record of the middle of the list: its key and CID */
    char key[256], cid[ES_CID_STRING_MAX];
    const char *line = (const char *)tsv.data;
    size_t lines = 0;
    for (size_t i = 0; i < tsv.len; i++)
        lines += tsv.data[i] == '\n';
    for (size_t i = 0; i < lines / 2; i++)
        line = strchr(line, '\n') + 1;
    assert_int_equal(sscanf(line, "%255[^\t]\t%127[^\n]", key, cid), 2);
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    split sp;
    run r = {0};

    /* signature bytes flipped */
    split_car(&car, &sp);
    es_value *c = commit_value(&sp, a);
    es_value *sig = entry_value(c, "sig");
    uint8_t flipped[64];
    assert_int_equal(sig->u.bytes.len, 64);
    memcpy(flipped, sig->u.bytes.ptr, 64);
    flipped[10] ^= 0x01;
    sig->u.bytes.ptr = flipped;
    replace_commit(&sp, c);
    write_car(sp.root, &sp.bs, SIZE_MAX, &forged);
    verify_car(forged.data, forged.len, did, id, &r);
    assert_refused(&r, ES_ATP_ERR_SIGNATURE, NULL);
    blocks_free(&sp.bs);

    /* the commit's did swapped for another repo's (claimed as that repo) */
    split_car(&car, &sp);
    c = commit_value(&sp, a);
    const char *other = last[1].did[0] && strcmp(last[1].did, did) != 0 ? last[1].did : last[0].did;
    es_value *d = entry_value(c, "did");
    d->u.str.ptr = other;
    d->u.str.len = strlen(other);
    replace_commit(&sp, c);
    write_car(sp.root, &sp.bs, SIZE_MAX, &forged);
    verify_car(forged.data, forged.len, did, id, &r);
    assert_refused(&r, ES_ATP_ERR_COMMIT, NULL);
    verify_car(forged.data, forged.len, other, id, &r); /* and the other's key did not sign it */
    assert_refused(&r, ES_ATP_ERR_SIGNATURE, NULL);
    blocks_free(&sp.bs);

    /* a record block altered, its CID kept */
    split_car(&car, &sp);
    sp.bs.items[block_of(&sp, cid)].bytes[3] ^= 0x20;
    write_car(sp.root, &sp.bs, SIZE_MAX, &forged);
    verify_car(forged.data, forged.len, did, id, &r);
    assert_refused(&r, ES_ATP_ERR_HASH, key);
    blocks_free(&sp.bs);

    /* a record block missing */
    split_car(&car, &sp);
    write_car(sp.root, &sp.bs, block_of(&sp, cid), &forged);
    verify_car(forged.data, forged.len, did, id, &r);
    assert_refused(&r, ES_ATP_ERR_MISSING_BLOCK, key);
    blocks_free(&sp.bs);

    /* control: the CAR rewritten by the same code, untouched, verifies */
    split_car(&car, &sp);
    write_car(sp.root, &sp.bs, SIZE_MAX, &forged);
    verify_car(forged.data, forged.len, did, id, &r);
    assert_int_equal(r.status, ES_OK);
    blocks_free(&sp.bs);

    run_free(&r);
    es_arena_destroy(a);
    es_buf_free(&car);
    es_buf_free(&tsv);
    es_buf_free(&forged);
    es_atp_identity_destroy(id);
    es_atp_gen_destroy(g);
}

static void tampered_k256(void **state)
{
    (void)state;
    tampered_gen_cars(ES_ATP_GEN_CURVES_K256);
}

static void tampered_p256(void **state)
{
    (void)state;
    tampered_gen_cars(ES_ATP_GEN_CURVES_P256);
}

/* ---- forged trees: hash-consistent, not canonical ------------------------ */

#define FORGE_DID "did:plc:forgedforgedforgedforged"

typedef struct forge {
    blocks bs;
    es_arena *a;
    cid_t record; /* the one record block every entry points to */
} forge;

typedef struct fentry {
    const char *key;
    const uint8_t *tree; /* the subtree after it, or NULL */
} fentry;

static void forge_init(forge *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(es_arena_create(0, &f->a), ES_OK);
    es_arena *a = f->a;
    add_value(&f->bs,
              gv_map(a, 2, "$type", gv_str(a, "app.bsky.feed.post"), "text", gv_str(a, "hi")),
              f->record);
}

static void forge_free(forge *f)
{
    blocks_free(&f->bs);
    es_arena_destroy(f->a);
}

/* A node {l, e}: keys compressed against the previous one (by their whole
 * shared prefix, or not at all when `whole_keys`). */
static void forge_node(forge *f, const uint8_t *left, const fentry *e, size_t n, bool whole_keys,
                       const uint8_t *value, cid_t out)
{
    es_arena *a = f->a;
    es_value *items[8];
    assert_true(n <= 8);
    const char *prev = "";
    for (size_t i = 0; i < n; i++) {
        size_t p = 0;
        while (!whole_keys && prev[p] != '\0' && prev[p] == e[i].key[p])
            p++;
        items[i] = gv_map(a, 4, "k", gv_bytes(a, e[i].key + p, strlen(e[i].key) - p), "p",
                          gv_int(a, (int64_t)p), "t", e[i].tree ? gv_link(a, e[i].tree) : gv_null(a),
                          "v", gv_link(a, value ? value : f->record));
        prev = e[i].key;
    }
    add_value(&f->bs,
              gv_map(a, 2, "e", gv_array(a, n, items), "l", left ? gv_link(a, left) : gv_null(a)),
              out);
}

/* A commit of `data` by FORGE_DID (unsigned: checked with skip_signature),
 * then the CAR, verified. */
static void forge_verify(forge *f, const cid_t data, run *r)
{
    es_arena *a = f->a;
    uint8_t sig[64] = {0};
    cid_t commit;
    add_value(&f->bs,
              gv_map(a, 6, "data", gv_link(a, data), "did", gv_str(a, FORGE_DID), "prev",
                     gv_null(a), "rev", gv_str(a, "3lqk7lk5t363p"), "sig", gv_bytes(a, sig, 64),
                     "version", gv_int(a, 3)),
              commit);
    es_buf car = ES_BUF_INIT;
    write_car(commit, &f->bs, SIZE_MAX, &car);
    verify_car(car.data, car.len, FORGE_DID, NULL, r);
    es_buf_free(&car);
    f->bs.n--; /* the commit block goes, the tree stays for the next forgery */
    free(f->bs.items[f->bs.n].bytes);
}

/* A valid repository key of MST height `h`, sorting after `after`. */
static void key_of_height(int h, const char *after, char *out, size_t cap)
{
    for (int i = 0; i < 1000000; i++) {
        snprintf(out, cap, "app.bsky.feed.post/k%06d", i);
        if (strcmp(out, after) > 0 && es_atp_gen_key_height(out, strlen(out)) == h)
            return;
    }
    fail_msg("no key of height %d", h);
}

static void forged_trees(void **state)
{
    (void)state;
    forge f;
    forge_init(&f);
    run r = {0};
    char k0[64], k0b[64], k1[64];
    key_of_height(0, "", k0, sizeof k0);
    key_of_height(1, k0, k1, sizeof k1);
    key_of_height(0, k1, k0b, sizeof k0b);
    cid_t n1, n2, root;

    /* controls: the canonical trees of these keys verify */
    forge_node(&f, NULL, (fentry[]){{k0, NULL}}, 1, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_int_equal(r.status, ES_OK);
    assert_int_equal(r.verdict.records, 1);
    forge_node(&f, NULL, (fentry[]){{k0, NULL}}, 1, false, NULL, n1);
    forge_node(&f, NULL, (fentry[]){{k0b, NULL}}, 1, false, NULL, n2);
    forge_node(&f, n1, (fentry[]){{k1, n2}}, 1, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_int_equal(r.status, ES_OK);
    assert_int_equal(r.verdict.records, 3);
    forge_node(&f, NULL, NULL, 0, false, NULL, root); /* the empty repository */
    forge_verify(&f, root, &r);
    assert_int_equal(r.status, ES_OK);
    assert_int_equal(r.verdict.records, 0);

    /* a key at the wrong layer: k1 (height 1) in a layer-0 node with k0 */
    forge_node(&f, NULL, (fentry[]){{k0, NULL}, {k1, NULL}}, 2, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_MST, k1);
    /* ... or k0 (height 0) lifted into the root of layer 1 beside k1 */
    forge_node(&f, NULL, (fentry[]){{k1, NULL}, {k0b, NULL}}, 2, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_MST, k0b);

    /* keys out of order (both of layer 0) */
    forge_node(&f, NULL, (fentry[]){{k0b, NULL}, {k0, NULL}}, 2, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_MST, k0);

    /* an empty intermediate node (no entries, no subtree) after k1 */
    forge_node(&f, NULL, NULL, 0, false, NULL, n2);
    forge_node(&f, n1, (fentry[]){{k1, n2}}, 1, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_MST, k1);

    /* a root with no entries over the real tree (not trimmed) */
    forge_node(&f, NULL, (fentry[]){{k0, NULL}}, 1, false, NULL, n1);
    forge_node(&f, n1, NULL, 0, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_MST, "");

    /* a subtree below layer 0 */
    forge_node(&f, NULL, (fentry[]){{k0b, NULL}}, 1, false, NULL, n2);
    forge_node(&f, NULL, (fentry[]){{k0, n2}}, 1, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_MST, k0);

    /* keys not compressed by their shared prefix: another encoding of the
     * same tree, another root CID */
    forge_node(&f, NULL, (fentry[]){{k0, NULL}, {k0b, NULL}}, 2, true, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_MST, k0b);

    /* an invalid record key (a space in the rkey), canonical otherwise */
    char bad[64];
    for (int i = 0;; i++) {
        snprintf(bad, sizeof bad, "app.bsky.feed.post/bad key%d", i);
        if (es_atp_gen_key_height(bad, strlen(bad)) == 0)
            break;
    }
    forge_node(&f, NULL, (fentry[]){{bad, NULL}}, 1, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_SYNTAX, bad);
    /* ... and no collection at all */
    forge_node(&f, NULL, (fentry[]){{"A0/374913", NULL}}, 1, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_SYNTAX, "A0/374913");

    /* a record CID of the raw codec */
    cid_t raw;
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_RAW, "x", 1, raw), ES_OK);
    blocks_add(&f.bs, raw, (const uint8_t *)"x", 1);
    forge_node(&f, NULL, (fentry[]){{k0, NULL}}, 1, false, raw, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_RECORD, k0);

    /* a missing MST node */
    forge_node(&f, NULL, (fentry[]){{k1, NULL}}, 1, false, NULL, n1);
    forge_node(&f, n1, (fentry[]){{k0b, NULL}}, 1, false, NULL, root); /* bogus but absent */
    f.bs.n--;
    free(f.bs.items[f.bs.n].bytes);
    cid_t top;
    forge_node(&f, root, (fentry[]){{k1, NULL}}, 1, false, NULL, top);
    forge_verify(&f, top, &r);
    assert_refused(&r, ES_ATP_ERR_MISSING_BLOCK, "");

    run_free(&r);
    forge_free(&f);
}

/* Records that break the data model are kept, flagged; one nested deeper
 * than the bound refuses the repository. */
static void invalid_records_kept(void **state)
{
    (void)state;
    forge f;
    forge_init(&f);
    run r = {0};
    char k0[64], k0b[64];
    key_of_height(0, "", k0, sizeof k0);
    key_of_height(0, k0, k0b, sizeof k0b);
    /* not DAG-CBOR (CBOR `undefined`), and a string, not a map */
    static const uint8_t undefined[] = {0xf7};
    static const uint8_t text[] = {0x62, 'h', 'i'};
    cid_t c1, c2, root;
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, undefined, 1, c1), ES_OK);
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, text, 3, c2), ES_OK);
    blocks_add(&f.bs, c1, undefined, 1);
    blocks_add(&f.bs, c2, text, 3);
    /* two keys of layer 0 in one node, each with its own value */
    es_arena *a = f.a;
    es_value *items[2] = {
        gv_map(a, 4, "k", gv_bytes(a, k0, strlen(k0)), "p", gv_int(a, 0), "t", gv_null(a), "v",
               gv_link(a, c1)),
        NULL};
    size_t p = 0;
    while (k0[p] == k0b[p])
        p++;
    items[1] = gv_map(a, 4, "k", gv_bytes(a, k0b + p, strlen(k0b) - p), "p", gv_int(a, (int64_t)p),
                      "t", gv_null(a), "v", gv_link(a, c2));
    add_value(&f.bs, gv_map(a, 2, "e", gv_array(a, 2, items), "l", gv_null(a)), root);
    forge_verify(&f, root, &r);
    assert_int_equal(r.status, ES_OK);
    assert_int_equal(r.verdict.records, 2);
    assert_int_equal(r.verdict.invalid_records, 2);
    assert_int_equal(r.invalid, 2);

    /* nested deeper than max_depth (65 arrays) */
    uint8_t deep[66];
    memset(deep, 0x81, 65);
    deep[65] = 0x01;
    cid_t c3;
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_DAG_CBOR, deep, sizeof deep, c3), ES_OK);
    blocks_add(&f.bs, c3, deep, sizeof deep);
    forge_node(&f, NULL, (fentry[]){{k0, NULL}}, 1, false, c3, root);
    forge_verify(&f, root, &r);
    assert_refused(&r, ES_ATP_ERR_DEPTH, k0);
    run_free(&r);
    forge_free(&f);
}

/* The generator's MST builder's nodes, kept. */
static es_status keep_node(const uint8_t cid[ES_CID_SHA256_LEN], const uint8_t *bytes, size_t len,
                           void *user)
{
    blocks_add(user, cid, bytes, len);
    return ES_OK;
}

/* The interop MST vectors whose keys are repository keys: a canonical tree
 * of each (beside a key of height 0 before it) verifies, and the same key
 * in the layer-0 node of that key is refused at it. */
static void interop_key_heights(void **state)
{
    (void)state;
    json_t *cases = fixture_json("atproto-interop/mst/key_heights.json");
    if (cases == NULL)
        skip();
    size_t applied = 0, i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *key = json_string_value(json_object_get(c, "key"));
        int height = (int)json_integer_value(json_object_get(c, "height"));
        const char *slash = strchr(key, '/');
        if (slash == NULL || !es_atp_valid_nsid(key, (size_t)(slash - key)) ||
            !es_atp_valid_rkey(slash + 1, strlen(slash + 1)))
            continue;
        assert_int_equal(es_atp_gen_key_height(key, strlen(key)), height);
        applied++;
        char low[64];
        snprintf(low, sizeof low, "app.bsky.feed.like/a");
        for (int j = 0; es_atp_gen_key_height(low, strlen(low)) != 0; j++)
            snprintf(low, sizeof low, "app.bsky.feed.like/a%d", j);
        assert_true(strcmp(low, key) < 0);
        es_atp_gen_leaf leaves[2] = {{.key = low}, {.key = key}};
        forge f;
        forge_init(&f);
        memcpy(leaves[0].cid, f.record, sizeof(cid_t));
        memcpy(leaves[1].cid, f.record, sizeof(cid_t));
        cid_t root;
        assert_int_equal(es_atp_gen_mst(leaves, 2, keep_node, &f.bs, root), ES_OK);
        run r = {0};
        forge_verify(&f, root, &r);
        if (r.status != ES_OK)
            fail_msg("%s (height %d): %s", key, height, es_last_error());
        assert_int_equal(r.verdict.records, 2);
        forge_node(&f, NULL, (fentry[]){{low, NULL}, {key, NULL}}, 2, false, NULL, root);
        forge_verify(&f, root, &r);
        assert_refused(&r, ES_ATP_ERR_MST, key);
        run_free(&r);
        forge_free(&f);
    }
    assert_true(applied >= 2);
    json_decref(cases);
}

/* Arguments and the callback's stop. */
static void arguments_and_abort(void **state)
{
    (void)state;
    forge f;
    forge_init(&f);
    run r = {0};
    char k0[64];
    key_of_height(0, "", k0, sizeof k0);
    cid_t root;
    forge_node(&f, NULL, (fentry[]){{k0, NULL}}, 1, false, NULL, root);
    forge_verify(&f, root, &r);
    assert_int_equal(r.status, ES_OK);
    es_car car = {0};
    es_atp_repo_verify_options o;
    es_atp_repo_verify_options_init(&o);
    assert_int_equal(o.max_depth, 64);
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    /* no DID; no key source without skip_signature */
    assert_int_equal(es_atp_verify_repo(&car, &o, a, NULL, collect, &r, NULL), ES_ERR_INVALID);
    o.did = FORGE_DID;
    assert_int_equal(es_atp_verify_repo(&car, &o, a, NULL, collect, &r, NULL), ES_ERR_INVALID);
    o.skip_signature = true;
    assert_int_equal(es_atp_verify_repo(NULL, &o, a, NULL, collect, &r, NULL), ES_ERR_INVALID);
    o.did = "did:plc:"; /* not a DID: no commit could be checked against it */
    assert_int_equal(es_atp_verify_repo(&car, &o, a, NULL, collect, &r, NULL), ES_ERR_INVALID);
    o.did = FORGE_DID;
    /* no root */
    es_atp_repo_verdict v;
    assert_int_equal(es_atp_verify_repo(&car, &o, a, NULL, collect, &r, &v), ES_ERR_DECODE);
    assert_int_equal(v.error, ES_ATP_ERR_CAR_ROOT);
    run_free(&r);
    es_arena_destroy(a);
    forge_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_repo_car_verifies),
        cmocka_unit_test(gen_k256_repos_verify),
        cmocka_unit_test(gen_p256_repos_verify),
        cmocka_unit_test(rotated_keys_resolved_again),
        cmocka_unit_test(tampered_k256),
        cmocka_unit_test(tampered_p256),
        cmocka_unit_test(forged_trees),
        cmocka_unit_test(invalid_records_kept),
        cmocka_unit_test(interop_key_heights),
        cmocka_unit_test(arguments_and_abort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
