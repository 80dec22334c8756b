/* es-fuzz-seed OUT [FIXTURES]: writes the seed corpora of the fuzz targets
 * into OUT/<target>/, from the shared fixtures (FIXTURES, usually
 * ../shared/fixtures: never copied into the repository), and from two
 * sources that need no fixture: the project's synthetic firehose generator
 * (atproto/gen: every message type, multi-op commits, updates, deletes,
 * full-repository CARs with deep trees) and the envelope world of
 * envelope_setup.h.
 *
 *   frame     every frame of firehose-corpus/frames.bin.zst; generated frames
 *   car       repo.car, and the CAR of every #commit frame; generated
 *             full-repository CARs
 *   dag_cbor  the interop data-model vectors, CAR blocks, a few frame bodies
 *   cbor      the same
 *   msgpack   the same values converted to MessagePack
 *   json      the interop data-model JSON, records as atproto JSON,
 *             Jetstream's lines for the same frames
 *   cid       interop CID strings, and CIDs in binary and text form
 *   syntax    every line of the interop syntax vectors
 *   envelope  payloads sealed by the envelope (plain, zstd, zstd with the
 *             dictionary, encrypted, with schema versions, streamed zstd)
 *   did_doc   every document of the corpus's did_docs.json.zst
 *   repo_verify  repo.car and the generated full-repository CARs */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include <es/atproto.h>
#include <es/base.h>
#include <es/car.h>
#include <es/cbor.h>
#include <es/cid.h>
#include <es/codec.h>

#include "atproto_gen.h"
#include "envelope_setup.h"
#include "fuzz.h"

#define MAX_BLOCK_SEEDS  400 /* of 1,500 blocks in the capture: enough variety */
#define MAX_BODY_SEEDS   8
#define MAX_JSONL_SEEDS  40
#define PATH_CAP         4096
#define ENVELOPE_PAYLOAD 3000
#define GEN_FRAMES       120
#define GEN_REPOS        4

static const char *const targets[] = {"frame",    "car",     "dag_cbor", "cbor",
                                      "msgpack",  "json",    "cid",      "syntax",
                                      "envelope", "did_doc", "invert",   "repo_verify"};

typedef struct seeder {
    const char *out;      /* OUT */
    const char *fixtures; /* FIXTURES, or NULL */
    size_t written;
    size_t blocks, bodies;
} seeder;

static void die(const char *what)
{
    fprintf(stderr, "es-fuzz-seed: %s\n", what);
    exit(1);
}

static void write_seed(seeder *s, const char *target, const char *name, const void *data,
                       size_t len)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s/%s", s->out, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        die(path);
    s->written++;
}

/* The same seed for several targets. */
static void write_seeds(seeder *s, const char *const *names, size_t n, const char *name,
                        const void *data, size_t len)
{
    for (size_t i = 0; i < n; i++)
        write_seed(s, names[i], name, data, len);
}

static char *fixture(const seeder *s, const char *rel)
{
    static char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", s->fixtures, rel);
    return path;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    es_buf b = ES_BUF_INIT;
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (es_buf_append(&b, chunk, n) != ES_OK)
            die("out of memory");
    fclose(f);
    if (es_buf_append_byte(&b, 0) != ES_OK) /* a NUL after the text files */
        die("out of memory");
    *len = b.len - 1;
    return b.data;
}

/* ---- values: one DAG-CBOR item to every value target --------------------- */

static void value_seeds(seeder *s, const char *name, const uint8_t *cbor, size_t len)
{
    static const char *const cbor_targets[] = {"dag_cbor", "cbor"};
    write_seeds(s, cbor_targets, 2, name, cbor, len);
    es_arena *a = fuzz_arena();
    es_buf out = ES_BUF_INIT;
    if (es_codec_convert("dag-cbor", cbor, len, "msgpack", a, &out) == ES_OK)
        write_seed(s, "msgpack", name, out.data, out.len);
    es_buf_clear(&out);
    if (es_codec_convert("dag-cbor", cbor, len, "json", a, &out) == ES_OK)
        write_seed(s, "json", name, out.data, out.len);
    es_buf_free(&out);
    es_arena_destroy(a);
}

/* ---- firehose capture ---------------------------------------------------- */

static void car_block_seeds(seeder *s, const uint8_t *car, size_t len, const char *prefix)
{
    es_arena *a = fuzz_arena();
    es_car c;
    if (es_car_parse(car, len, NULL, a, &c) == ES_OK)
        for (size_t i = 0; i < c.count && s->blocks < MAX_BLOCK_SEEDS; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s-block-%zu", prefix, i);
            value_seeds(s, name, c.blocks[i].data, c.blocks[i].len);
            s->blocks++;
        }
    es_arena_destroy(a);
}

/* The CAR of a #commit frame, its blocks, and a few bodies. */
static void frame_parts(seeder *s, const uint8_t *frame, size_t len, size_t index)
{
    es_arena *a = fuzz_arena();
    es_value *header, *body;
    size_t used = 0, body_len = 0;
    char name[64];
    if (es_cbor_decode(frame, len, NULL, a, &header, &used) == ES_OK &&
        es_cbor_decode(frame + used, len - used, NULL, a, &body, &body_len) == ES_OK) {
        const es_value *blocks = es_value_get(body, "blocks");
        if (blocks != NULL && blocks->kind == ES_VALUE_BYTES) {
            snprintf(name, sizeof name, "frame-%03zu", index);
            write_seed(s, "car", name, blocks->u.bytes.ptr, blocks->u.bytes.len);
            car_block_seeds(s, blocks->u.bytes.ptr, blocks->u.bytes.len, name);
        }
        if (s->bodies < MAX_BODY_SEEDS) {
            snprintf(name, sizeof name, "frame-%03zu-body", index);
            value_seeds(s, name, frame + used, body_len);
            s->bodies++;
        }
    }
    es_arena_destroy(a);
}

static void capture_seeds(seeder *s)
{
    es_atp_capture *c = NULL;
    if (es_atp_capture_open(fixture(s, "firehose-corpus/frames.bin.zst"), 0, &c) != ES_OK) {
        fprintf(stderr, "es-fuzz-seed: no capture: %s\n", es_last_error());
        return;
    }
    const uint8_t *frame;
    size_t len;
    for (size_t i = 0; es_atp_capture_next(c, &frame, &len) == ES_OK; i++) {
        char name[32];
        snprintf(name, sizeof name, "capture-%03zu", i);
        write_seed(s, "frame", name, frame, len);
        write_seed(s, "invert", name, frame, len);
        frame_parts(s, frame, len, i);
    }
    es_atp_capture_close(c);
}

static void repo_car_seeds(seeder *s)
{
    size_t len;
    uint8_t *car = read_file(fixture(s, "firehose-corpus/repo.car"), &len);
    if (car == NULL)
        return;
    write_seed(s, "car", "repo.car", car, len);
    write_seed(s, "repo_verify", "repo.car", car, len);
    car_block_seeds(s, car, len, "repo");
    free(car);
}

static void jsonl_seeds(seeder *s)
{
    size_t len;
    char *text = (char *)read_file(fixture(s, "firehose-corpus/expected_v1.jsonl"), &len);
    if (text == NULL)
        return;
    char *save = NULL;
    size_t n = 0;
    for (char *line = strtok_r(text, "\n", &save); line && n < MAX_JSONL_SEEDS;
         line = strtok_r(NULL, "\n", &save), n++) {
        char name[32];
        snprintf(name, sizeof name, "jetstream-%02zu", n);
        write_seed(s, "json", name, line, strlen(line));
    }
    free(text);
}

/* ---- the synthetic generator -------------------------------------------- */

static void generated_seeds(seeder *s)
{
    es_atp_gen_options o = {.seed = 7, .repos = GEN_REPOS, .multi_op_permille = 250};
    es_atp_gen *g = NULL;
    if (es_atp_gen_create(&o, &g) != ES_OK)
        die(es_last_error());
    es_buf b = ES_BUF_INIT;
    char name[32];
    for (size_t i = 0; i < GEN_FRAMES; i++) {
        es_buf_clear(&b);
        if (es_atp_gen_next(g, &b) != ES_OK)
            die(es_last_error());
        snprintf(name, sizeof name, "gen-%03zu", i);
        write_seed(s, "frame", name, b.data, b.len);
        frame_parts(s, b.data, b.len, i + 1000); /* the capture's are 0..149 */
    }
    for (size_t r = 0; r < es_atp_gen_repo_count(g); r++) {
        es_buf_clear(&b);
        if (es_atp_gen_repo_car(g, r, &b, NULL) != ES_OK)
            die(es_last_error());
        snprintf(name, sizeof name, "gen-repo-%zu", r);
        write_seed(s, "car", name, b.data, b.len);
        write_seed(s, "repo_verify", name, b.data, b.len);
    }
    es_buf_free(&b);
    es_atp_gen_destroy(g);
}

/* ---- interop vectors ----------------------------------------------------- */

static void cid_seeds(seeder *s, const char *name, const char *text)
{
    write_seed(s, "cid", name, text, strlen(text));
    uint8_t bin[ES_CID_STRING_MAX];
    size_t n = 0;
    if (es_cid_from_string(text, strlen(text), bin, sizeof bin, &n) == ES_OK) {
        char bname[64];
        snprintf(bname, sizeof bname, "%s-bin", name);
        write_seed(s, "cid", bname, bin, n);
    }
}

static void data_model_fixtures(seeder *s)
{
    json_error_t err;
    json_t *all =
        json_load_file(fixture(s, "atproto-interop/data-model/data-model-fixtures.json"), 0, &err);
    size_t i;
    json_t *item;
    json_array_foreach(all, i, item)
    {
        char name[64];
        snprintf(name, sizeof name, "interop-%02zu", i);
        char *json = json_dumps(json_object_get(item, "json"), JSON_COMPACT | JSON_ENCODE_ANY);
        if (json != NULL)
            write_seed(s, "json", name, json, strlen(json));
        free(json);
        const char *b64 = json_string_value(json_object_get(item, "cbor_base64"));
        size_t cap = b64 ? es_base64_decoded_max(strlen(b64)) : 0, n = 0;
        uint8_t *cbor = malloc(cap ? cap : 1);
        if (cbor != NULL && b64 && es_base64_decode(b64, strlen(b64), cbor, cap, &n) == ES_OK)
            value_seeds(s, name, cbor, n);
        free(cbor);
        const char *cid = json_string_value(json_object_get(item, "cid"));
        if (cid != NULL)
            cid_seeds(s, name, cid);
    }
    json_decref(all);
}

static void data_model_json(seeder *s, const char *file, const char *prefix)
{
    json_error_t err;
    char rel[256];
    snprintf(rel, sizeof rel, "atproto-interop/data-model/%s", file);
    json_t *all = json_load_file(fixture(s, rel), 0, &err);
    size_t i;
    json_t *item;
    json_array_foreach(all, i, item)
    {
        char name[64];
        snprintf(name, sizeof name, "%s-%02zu", prefix, i);
        char *json = json_dumps(json_object_get(item, "json"), JSON_COMPACT | JSON_ENCODE_ANY);
        if (json != NULL)
            write_seed(s, "json", name, json, strlen(json));
        free(json);
    }
    json_decref(all);
}

/* Every line of every syntax vector file, and CID strings for `cid`. */
static void syntax_file(seeder *s, const char *dir, const char *file)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t len;
    char *text = (char *)read_file(path, &len);
    if (text == NULL)
        return;
    bool cids = strncmp(file, "cid_", 4) == 0;
    char *save = NULL;
    size_t n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char name[300];
        snprintf(name, sizeof name, "%.*s-%03zu", (int)(strlen(file) - 4), file, n++);
        write_seed(s, cids ? "cid" : "syntax", name, line, strlen(line));
    }
    free(text);
}

static void syntax_seeds(seeder *s)
{
    const char *dir = fixture(s, "atproto-interop/syntax");
    char copy[PATH_CAP];
    snprintf(copy, sizeof copy, "%s", dir);
    DIR *d = opendir(copy);
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".txt") == 0)
            syntax_file(s, copy, e->d_name);
    }
    closedir(d);
}

/* ---- envelope ------------------------------------------------------------ */

static void payload(es_buf *b, size_t len)
{
    for (size_t i = 0; b->len < len; i++) {
        char s[96];
        int n =
            snprintf(s, sizeof s, "{\"account\":\"acc-%zu\",\"amount\":%zu,\"currency\":\"EUR\"}",
                     i % 11, i * 31 % 1000);
        if (es_buf_append(b, s, (size_t)n) != ES_OK)
            die("out of memory");
    }
    b->len = len;
}

/* Seal `len` bytes with these settings and write the input that opens them. */
static void sealed_seed(seeder *s, const char *name, uint8_t flags, bool compress, bool dict,
                        uint32_t schema, size_t len)
{
    fuzz_env *w = fuzz_env_create(flags, NULL, 0, compress, dict);
    es_buf plain = ES_BUF_INIT, input = ES_BUF_INIT;
    payload(&plain, len);
    es_sealed sealed = ES_SEALED_INIT;
    if (es_envelope_seal(fuzz_env_envelope(w), &fuzz_env_event, FUZZ_ENV_EVENT_ID, schema,
                         plain.data, plain.len, &sealed) != ES_OK)
        die(es_last_error());
    size_t rec_len;
    const uint8_t *rec = fuzz_env_record(w, &rec_len);
    fuzz_env_input_write(&input, flags, sealed.headers, sealed.n_headers, rec, rec_len, sealed.data,
                         sealed.len);
    write_seed(s, "envelope", name, input.data, input.len);
    es_sealed_free(&sealed);
    es_buf_free(&plain);
    es_buf_free(&input);
    fuzz_env_destroy(w);
}

/* A zstd frame that does not declare its size: the streaming path. */
static void streamed_seed(seeder *s)
{
    es_buf plain = ES_BUF_INIT, input = ES_BUF_INIT;
    payload(&plain, ENVELOPE_PAYLOAD);
    size_t cap = ZSTD_compressBound(plain.len);
    uint8_t *z = malloc(cap);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (z == NULL || c == NULL)
        die("out of memory");
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    ZSTD_outBuffer out = {z, cap, 0};
    ZSTD_inBuffer in = {plain.data, plain.len, 0};
    if (ZSTD_compressStream2(c, &out, &in, ZSTD_e_end) != 0)
        die("zstd streaming compression did not finish");
    es_header h[] = {{ES_HDR_COMPRESSION, "zstd"}, {ES_HDR_SCHEMA, "2"}};
    fuzz_env_input_write(&input, 0, h, 2, NULL, 0, z, out.pos);
    write_seed(s, "envelope", "zstd-streamed", input.data, input.len);
    ZSTD_freeCCtx(c);
    free(z);
    es_buf_free(&plain);
    es_buf_free(&input);
}

static void envelope_seeds(seeder *s)
{
    const uint8_t enc = FUZZ_ENV_ENCRYPT | FUZZ_ENV_KEYRING;
    sealed_seed(s, "plain", 0, false, false, 0, 64);
    sealed_seed(s, "plain-schema-2", 0, false, false, 2, 64);
    sealed_seed(s, "zstd", 0, true, false, 0, ENVELOPE_PAYLOAD);
    sealed_seed(s, "zstd-small-bound", FUZZ_ENV_SMALL, true, false, 1, ENVELOPE_PAYLOAD);
    sealed_seed(s, "zstd-dict", 0, true, true, 0, ENVELOPE_PAYLOAD);
    sealed_seed(s, "encrypted", enc, false, false, 0, 64);
    sealed_seed(s, "encrypted-zstd-dict", enc, true, true, 1, ENVELOPE_PAYLOAD);
    sealed_seed(s, "encrypted-accept-plain", enc | FUZZ_ENV_ACCEPT_PLAIN, true, false, 2,
                ENVELOPE_PAYLOAD);
    streamed_seed(s);
}

/* ---- main ---------------------------------------------------------------- */

static void make_dirs(const seeder *s)
{
    if (mkdir(s->out, 0755) != 0 && errno != EEXIST)
        die(s->out);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char path[PATH_CAP];
        snprintf(path, sizeof path, "%s/%s", s->out, targets[i]);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            die(path);
    }
}

/* Every DID document of the corpus, one seed each. */
static void did_doc_seeds(seeder *s)
{
    size_t zlen;
    uint8_t *z = read_file(fixture(s, "firehose-corpus/did_docs.json.zst"), &zlen);
    if (z == NULL)
        return;
    unsigned long long n = ZSTD_getFrameContentSize(z, zlen);
    char *text = n < ((size_t)64 << 20) ? malloc((size_t)n) : NULL;
    json_t *all = NULL;
    if (text != NULL && ZSTD_decompress(text, (size_t)n, z, zlen) == n)
        all = json_loadb(text, (size_t)n, 0, NULL);
    const char *did;
    json_t *doc;
    int i = 0;
    json_object_foreach(all, did, doc)
    {
        char name[32], *body = json_dumps(doc, JSON_COMPACT);
        snprintf(name, sizeof name, "corpus-%03d", i++);
        if (body != NULL)
            write_seed(s, "did_doc", name, body, strlen(body));
        free(body);
    }
    json_decref(all);
    free(text);
    free(z);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: es-fuzz-seed OUT [FIXTURES]\n");
        return 2;
    }
    seeder s = {.out = argv[1], .fixtures = argc == 3 ? argv[2] : NULL};
    make_dirs(&s);
    envelope_seeds(&s);
    if (s.fixtures != NULL) {
        capture_seeds(&s);
        repo_car_seeds(&s);
        jsonl_seeds(&s);
        data_model_fixtures(&s);
        data_model_json(&s, "data-model-valid.json", "valid");
        data_model_json(&s, "data-model-invalid.json", "invalid");
        syntax_seeds(&s);
        did_doc_seeds(&s);
    }
    generated_seeds(&s); /* after the capture: real blocks come first */
    printf("es-fuzz-seed: %zu seeds in %s\n", s.written, s.out);
    return 0;
}
