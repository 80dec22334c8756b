/* es-bench-append-check: what checking payloads against their codec costs
 * an append (es_store_options.skip_payload_validation). Against the server
 * at --server (default $NATS_URL), in one run, alternating rounds and
 * keeping the best of each: pipelined single appends and atomic batches of
 * 100, with a 256-byte JSON document and a DAG-CBOR record like the
 * firehose's, through a handle that validates and one that skips; then the
 * decoding alone, without a server. Prints numbers and asserts nothing
 * (docs/performance.md). Creates and deletes the store bench_check. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <es/codec.h>
#include <es/connect.h>
#include <es/es.h>
#include <es/json.h>

#define STORE "bench_check"

typedef struct payload {
    const char *name;
    const char *codec;
    es_buf bytes;
} payload;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "es-bench-append-check: %s: %s\n", what, es_last_error());
    exit(1);
}

/* A post record as the firehose carries them, about 250 bytes of JSON. */
static const char *const record_json =
    "{\"$type\":\"app.bsky.feed.post\",\"createdAt\":\"2024-05-01T12:00:00.000Z\","
    "\"langs\":[\"en\"],\"text\":\"A post of ordinary length, the kind the firehose carries "
    "by the thousand every second, with a link and a mention.\",\"reply\":{\"root\":"
    "{\"uri\":\"at://did:plc:abc/app.bsky.feed.post/3k\",\"cid\":\"bafyrei\"}}}";

static void make_payload(payload *p, const char *name, const char *codec)
{
    es_arena *a = NULL;
    es_value *v = NULL;
    p->name = name;
    p->codec = codec;
    p->bytes = (es_buf)ES_BUF_INIT;
    if (es_arena_create(0, &a) != ES_OK ||
        es_json_decode(record_json, strlen(record_json), NULL, a, &v) != ES_OK ||
        es_codec_encode(codec, v, &p->bytes) != ES_OK)
        die("making the payload");
    es_arena_destroy(a);
}

static es_event_spec event_of(const payload *p)
{
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = "post";
    e.entity_id = "p1";
    e.event_type = "created";
    e.codec = p->codec;
    e.data = p->bytes.data;
    e.data_len = p->bytes.len;
    return e;
}

static _Atomic long failed;

static void done(es_status s, const es_append_result *r, void *closure)
{
    (void)r;
    (void)closure;
    if (s != ES_OK)
        failed++;
}

static double singles(es_store *st, const payload *p, long n)
{
    es_event_spec e = event_of(p);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (es_append_batch_async(st, &e, 1, done, NULL) != ES_OK)
            die("append");
    if (es_append_flush(st, 60000) != ES_OK || failed)
        die("appends");
    return (double)n / (now_s() - t0);
}

static double batches(es_store *st, const payload *p, long n)
{
    es_event_spec b[100];
    for (int i = 0; i < 100; i++)
        b[i] = event_of(p);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (es_append_batch(st, b, 100, NULL) != ES_OK)
            die("batch");
    return (double)n * 100 / (now_s() - t0);
}

typedef double (*workload)(es_store *st, const payload *p, long n);

static void row(natsConnection *nc, const char *what, workload w, const payload *p, long n,
                int rounds)
{
    double best[2] = {0, 0};
    for (int r = 0; r < rounds; r++)
        for (int skip = 0; skip < 2; skip++) { /* alternate, so drift hits both alike */
            es_store_delete(nc, STORE, NULL);
            es_store_options o;
            es_store_options_init(&o);
            o.max_inflight = 4096;
            o.timeout_ms = 30000;
            o.skip_payload_validation = skip;
            es_store *st = NULL;
            if (es_store_create(nc, STORE, NULL, &o, &st) != ES_OK)
                die("create store");
            double v = w(st, p, n);
            best[skip] = v > best[skip] ? v : best[skip];
            es_store_destroy(st);
        }
    printf("| %-30s | %-8s | %10.0f | %10.0f | %5.3f |\n", what, p->name, best[0], best[1],
           best[0] / best[1]);
    fflush(stdout);
}

/* The decoding alone: what validation adds per event, in nanoseconds. */
static void decode_alone(const payload *p, long n)
{
    es_arena *a = NULL;
    if (es_arena_create(0, &a) != ES_OK)
        die("arena");
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        es_value *v = NULL;
        es_arena_reset(a);
        if (es_codec_decode(p->codec, p->bytes.data, p->bytes.len, a, &v) != ES_OK)
            die("decode");
    }
    double t = now_s() - t0;
    printf("| decoding alone, no server      | %-8s | %10.0f ns per event (%zu bytes)\n", p->name,
           t / (double)n * 1e9, p->bytes.len);
    es_arena_destroy(a);
}

int main(int argc, char **argv)
{
    const char *url = getenv("NATS_URL");
    long singles_n = 100000, batches_n = 300;
    int rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--server") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--appends") == 0)
            singles_n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--batches") == 0)
            batches_n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
    }
    if (singles_n < 1 || batches_n < 1 || rounds < 1) {
        fprintf(stderr, "usage: es-bench-append-check [--server URL] [--appends N] "
                        "[--batches N] [--rounds N]\n");
        return 2;
    }
    payload json, dag;
    make_payload(&json, "json", "json");
    make_payload(&dag, "dag-cbor", "dag-cbor");
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = url;
    co.name = "es-bench-append-check";
    natsConnection *nc = NULL;
    if (es_connect(&co, &nc) != ES_OK)
        die("connect");
    printf("file storage, R1; best of %d alternating rounds\n\n", rounds);
    printf("| %-30s | %-8s | %10s | %10s | %5s |\n", "workload (events/s)", "codec", "validated",
           "skipped", "ratio");
    printf("|--------------------------------|----------|------------|------------|-------|\n");
    char what[64];
    snprintf(what, sizeof what, "pipelined single appends (%ld)", singles_n);
    row(nc, what, singles, &json, singles_n, rounds);
    row(nc, what, singles, &dag, singles_n, rounds);
    snprintf(what, sizeof what, "atomic batches of 100 (%ld)", batches_n);
    row(nc, what, batches, &json, batches_n, rounds);
    row(nc, what, batches, &dag, batches_n, rounds);
    decode_alone(&json, 1000000);
    decode_alone(&dag, 1000000);
    es_store_delete(nc, STORE, NULL);
    es_buf_free(&json.bytes);
    es_buf_free(&dag.bytes);
    es_connection_close(nc);
    es_shutdown(2000);
    return 0;
}
