/* bench_codecs: encode/decode throughput of every built-in codec on the
 * records of the real firehose corpus, and DAG-CBOR decoding of the raw
 * firehose frames as the atproto ingester does it (frame, then every CAR
 * block, with and without SHA-256 CID verification), next to libcbor's
 * streaming tokenizer on the same bytes. Prints numbers; asserts nothing.
 *
 *   ES_SHARED_DIR=../shared build/codecs/value/bench_codecs [seconds per figure]
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <es/cbor.h>
#include <es/cid.h>
#include <es/codec.h>

#include <cbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests/corpus.h"

static double min_seconds = 0.5;

/* CPU time of this thread, not wall time: on a shared machine the process
 * is descheduled often, and the figures are meant per core. */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_codecs: %s: %s\n", what, es_last_error());
    exit(1);
}

/* Run `pass` repeatedly for at least min_seconds of CPU, three times, and
 * keep the fastest: the least disturbed by other work on a shared machine
 * (caches, frequency). */
typedef void (*pass_fn)(void *ctx);

static double best_pass_seconds(pass_fn pass, void *ctx)
{
    double best = 1e30;
    for (int run = 0; run < 3; run++) {
        size_t passes = 0;
        double t0 = now(), t;
        do {
            pass(ctx);
            passes++;
            t = now() - t0;
        } while (t < min_seconds);
        if (t / (double)passes < best)
            best = t / (double)passes;
    }
    return best;
}

static void report(const char *what, double seconds, size_t bytes, size_t items, const char *unit)
{
    printf("  %-44s %9.1f MB/s %12.0f %s/s\n", what, (double)bytes / seconds / 1e6,
           (double)items / seconds, unit);
}

/* ---- the corpus ------------------------------------------------------------ */

typedef struct corpus {
    uint8_t *frames;
    size_t frames_len, frame_count, frame_bytes;
    es_arena *values_arena;
    es_value *records; /* every DAG-CBOR block of every commit, decoded (copied) */
    size_t record_count, record_cap, record_bytes;
    es_value *block_bytes; /* the same blocks as BYTES values, for "binary" */
} corpus;

/* the raw blocks, pointing into corpus.frames */
static const es_value *raw_blocks(const corpus *c)
{
    return c->block_bytes;
}

static int collect_block(void *ctx, const uint8_t *cid, size_t cid_len, const uint8_t *block,
                         size_t block_len)
{
    (void)cid;
    (void)cid_len;
    corpus *c = ctx;
    if (c->record_count == c->record_cap) {
        c->record_cap = c->record_cap ? c->record_cap * 2 : 1024;
        c->records = realloc(c->records, c->record_cap * sizeof *c->records);
        c->block_bytes = realloc(c->block_bytes, c->record_cap * sizeof *c->block_bytes);
        if (c->records == NULL || c->block_bytes == NULL)
            die("out of memory");
    }
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    o.copy = true;
    es_value *v = NULL;
    if (es_cbor_decode(block, block_len, &o, c->values_arena, &v, NULL) != ES_OK)
        die("corpus block");
    c->records[c->record_count] = *v;
    /* points into the frames, which outlive every run */
    c->block_bytes[c->record_count] =
        (es_value){.kind = ES_VALUE_BYTES, .u.bytes = {block, block_len}};
    c->record_count++;
    c->record_bytes += block_len;
    return 0;
}

static void load_corpus(corpus *c)
{
    if (corpus_load_frames(&c->frames, &c->frames_len) != ES_OK) {
        fprintf(stderr, "bench_codecs: set ES_SHARED_DIR to the shared folder "
                        "(firehose-corpus/frames.bin.zst not found)\n");
        exit(2);
    }
    if (es_arena_create((size_t)256 << 20, &c->values_arena) != ES_OK)
        die("arena");
    es_arena *scratch = NULL;
    es_arena_create(0, &scratch);
    size_t pos = 0;
    const uint8_t *f;
    size_t flen;
    while (corpus_next_frame(c->frames, c->frames_len, &pos, &f, &flen) == 1) {
        es_arena_reset(scratch);
        es_value *header, *body;
        size_t used;
        if (es_cbor_decode(f, flen, NULL, scratch, &header, &used) != ES_OK ||
            es_cbor_decode(f + used, flen - used, NULL, scratch, &body, NULL) != ES_OK)
            die("frame");
        const es_value *blocks = es_value_get(body, "blocks");
        if (blocks != NULL && blocks->kind == ES_VALUE_BYTES)
            corpus_car_blocks(blocks->u.bytes.ptr, blocks->u.bytes.len, collect_block, c);
        c->frame_count++;
        c->frame_bytes += flen;
    }
    es_arena_destroy(scratch);
}

/* ---- per-codec encode / decode ---------------------------------------------- */

typedef struct codec_run {
    const es_codec *codec;
    const es_value *values;
    size_t count;
    es_buf out;      /* encode: scratch output */
    es_buf encoded;  /* decode: every value encoded back to back */
    size_t *offsets; /* count + 1 offsets into encoded */
    es_arena *arena;
} codec_run;

static void encode_pass(void *ctx)
{
    codec_run *r = ctx;
    for (size_t i = 0; i < r->count; i++) {
        es_buf_clear(&r->out);
        if (r->codec->encode(r->codec, &r->values[i], &r->out) != ES_OK)
            die(r->codec->name);
    }
}

static void decode_pass(void *ctx)
{
    codec_run *r = ctx;
    for (size_t i = 0; i < r->count; i++) {
        es_arena_reset(r->arena);
        es_value *v;
        if (r->codec->decode(r->codec, r->encoded.data + r->offsets[i],
                             r->offsets[i + 1] - r->offsets[i], r->arena, &v) != ES_OK)
            die(r->codec->name);
    }
}

static void bench_codec(const char *name, const es_value *values, size_t count)
{
    codec_run r = {.codec = es_codec_find(name), .values = values, .count = count};
    r.offsets = malloc((count + 1) * sizeof *r.offsets);
    es_arena_create(0, &r.arena);
    r.offsets[0] = 0;
    for (size_t i = 0; i < count; i++) {
        if (r.codec->encode(r.codec, &values[i], &r.encoded) != ES_OK)
            die(name);
        r.offsets[i + 1] = r.encoded.len;
    }
    char what[64];
    snprintf(what, sizeof what, "%s encode", name);
    report(what, best_pass_seconds(encode_pass, &r), r.encoded.len, count, "values");
    snprintf(what, sizeof what, "%s decode", name);
    report(what, best_pass_seconds(decode_pass, &r), r.encoded.len, count, "values");
    printf("  %-44s %9.1f bytes per value\n", "", (double)r.encoded.len / (double)count);
    es_buf_free(&r.out);
    es_buf_free(&r.encoded);
    free(r.offsets);
    es_arena_destroy(r.arena);
}

/* ---- the firehose path -------------------------------------------------------- */

enum frame_work { FRAMES_ONLY, FRAMES_AND_BLOCKS, FRAMES_BLOCKS_VERIFIED, FRAMES_COPIED };

typedef struct frame_run {
    const corpus *c;
    enum frame_work work;
    es_arena *arena;
    es_cbor_options o;
} frame_run;

static int decode_block(void *ctx, const uint8_t *cid_bytes, size_t cid_len, const uint8_t *block,
                        size_t block_len)
{
    frame_run *r = ctx;
    if (r->work == FRAMES_BLOCKS_VERIFIED) {
        es_cid cid;
        if (es_cid_parse(cid_bytes, cid_len, &cid) != ES_OK ||
            !es_cid_matches(&cid, block, block_len))
            die("CID mismatch");
    }
    es_value *v;
    if (es_cbor_decode(block, block_len, &r->o, r->arena, &v, NULL) != ES_OK)
        die("block");
    return 0;
}

static void frame_pass(void *ctx)
{
    frame_run *r = ctx;
    size_t pos = 0;
    const uint8_t *f;
    size_t flen;
    while (corpus_next_frame(r->c->frames, r->c->frames_len, &pos, &f, &flen) == 1) {
        es_arena_reset(r->arena);
        es_value *header, *body;
        size_t used;
        if (es_cbor_decode(f, flen, &r->o, r->arena, &header, &used) != ES_OK ||
            es_cbor_decode(f + used, flen - used, &r->o, r->arena, &body, NULL) != ES_OK)
            die("frame");
        if (r->work == FRAMES_ONLY || r->work == FRAMES_COPIED)
            continue;
        const es_value *blocks = es_value_get(body, "blocks");
        if (blocks != NULL && blocks->kind == ES_VALUE_BYTES)
            corpus_car_blocks(blocks->u.bytes.ptr, blocks->u.bytes.len, decode_block, r);
    }
}

/* The same blocks three ways: our decoder building values with every
 * DAG-CBOR rule checked; libcbor's streaming tokenizer with no-op callbacks
 * (the least a libcbor-based decoder would spend: no tree, no rules); and
 * libcbor's cbor_load building its own item tree. */
enum block_work { OURS, LIBCBOR_TOKENS, LIBCBOR_TREE };

typedef struct block_run {
    const corpus *c;
    enum block_work work;
    es_arena *arena;
} block_run;

static void libcbor_tokens(const uint8_t *p, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        struct cbor_decoder_result res =
            cbor_stream_decode(p + pos, len - pos, &cbor_empty_callbacks, NULL);
        if (res.status != CBOR_DECODER_FINISHED || res.read == 0)
            die("libcbor tokenizer");
        pos += res.read;
    }
}

static void block_pass(void *ctx)
{
    block_run *r = ctx;
    const es_value *blocks = raw_blocks(r->c);
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    for (size_t i = 0; i < r->c->record_count; i++) {
        const uint8_t *p = blocks[i].u.bytes.ptr;
        size_t len = blocks[i].u.bytes.len;
        if (r->work == OURS) {
            es_arena_reset(r->arena);
            es_value *v;
            if (es_cbor_decode(p, len, &o, r->arena, &v, NULL) != ES_OK)
                die("block");
        } else if (r->work == LIBCBOR_TOKENS) {
            libcbor_tokens(p, len);
        } else {
            struct cbor_load_result res;
            cbor_item_t *item = cbor_load(p, len, &res);
            if (item == NULL)
                die("cbor_load");
            cbor_decref(&item);
        }
    }
}

static void bench_blocks(const corpus *c)
{
    static const struct {
        enum block_work work;
        const char *what;
    } runs[] = {
        {OURS, "es_cbor_decode (dag-cbor, values, all rules)"},
        {LIBCBOR_TOKENS, "libcbor cbor_stream_decode (tokens only)"},
        {LIBCBOR_TREE, "libcbor cbor_load (its own item tree)"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        block_run r = {c, runs[i].work, NULL};
        es_arena_create(0, &r.arena);
        report(runs[i].what, best_pass_seconds(block_pass, &r), c->record_bytes, c->record_count,
               "blocks");
        es_arena_destroy(r.arena);
    }
}

static void bench_firehose(const corpus *c)
{
    static const struct {
        enum frame_work work;
        bool copy;
        const char *what;
    } runs[] = {
        {FRAMES_ONLY, false, "frames (header+body), zero copy"},
        {FRAMES_COPIED, true, "frames (header+body), copying"},
        {FRAMES_AND_BLOCKS, false, "frames + every CAR block"},
        {FRAMES_BLOCKS_VERIFIED, false, "frames + every block + SHA-256 CID check"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        frame_run r = {.c = c, .work = runs[i].work};
        es_cbor_options_init(&r.o, true);
        r.o.copy = runs[i].copy;
        es_arena_create(0, &r.arena);
        double s = best_pass_seconds(frame_pass, &r);
        report(runs[i].what, s, c->frame_bytes, c->frame_count, "frames");
        es_arena_destroy(r.arena);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        min_seconds = atof(argv[1]) > 0 ? atof(argv[1]) : min_seconds;
    corpus c = {0};
    load_corpus(&c);
    printf("corpus: %zu frames, %.1f KB average; %zu DAG-CBOR blocks (records, MST nodes, "
           "commits), %.0f bytes average\n",
           c.frame_count, (double)c.frame_bytes / (double)c.frame_count / 1e3, c.record_count,
           (double)c.record_bytes / (double)c.record_count);

    printf("\nDAG-CBOR over the firehose frames (MB/s of frame bytes):\n");
    bench_firehose(&c);

    printf("\nDecoding the corpus blocks alone (why not libcbor; MB/s of block bytes):\n");
    bench_blocks(&c);

    printf("\ncodecs on the corpus blocks as values (MB/s of encoded bytes):\n");
    static const char *const names[] = {"dag-cbor", "cbor", "msgpack", "json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        bench_codec(names[i], c.records, c.record_count);
    bench_codec("binary", c.block_bytes, c.record_count);

    free(c.records);
    free(c.block_bytes);
    free(c.frames);
    es_arena_destroy(c.values_arena);
    return 0;
}
