/* es-bench-sizing: how many bytes an ATProto event takes in a store, by
 * collection, and what a day of the firehose then takes. A program that
 * prints numbers (never run by ctest; docs/operations.md, "Sizing").
 *
 *   es-bench-sizing --ingest PATH --capture FILE [--did-docs FILE]
 *                   [--server URL] [--store-dir DIR] [--label TEXT]
 *                   [--variant plain|zstd|zstd_dict|s2|zstd_dict_s2] [--keep]
 *
 * For each variant — plain, the store's zstd compression (threshold 64 B),
 * the same with a dictionary trained on the capture's own records, and the
 * server's S2 block compression (stream option "compression": "s2") — a
 * fresh store "atprot<N>" is made (as long as the default "atproto"), the capture ingested into it by
 * es-atproto-ingest (a child process, exactly as in production), and then:
 *
 *   - every stored message is read back (an ordered consumer) and sized as
 *     nats-server's file store accounts it (fileStoreMsgSizeRaw: 22 bytes of
 *     record, the subject, 4 + the headers, the payload, an 8-byte hash),
 *     by collection (the entity type token of the subject); the sum must be
 *     the stream's own "bytes", or the program says so and fails;
 *   - with --store-dir (the server's -sd), the size on disk of the stream's
 *     message blocks, where S2 shows: the server compresses a block when it
 *     is full (8 MiB for a store without limits), so S2 is seen on captures
 *     that fill several blocks, the last one staying uncompressed; the full
 *     blocks' size against what they hold is S2's ratio, applied to the
 *     stream's bytes for the bytes per day (1.00 without S2: a check).
 *
 * Then bytes per day at the firehose's average and peak rates (600 and
 * 2,000 events/s) for R1 and R3 (each replica keeps a whole copy). The
 * stores are deleted afterwards. Examples may call nats.c (docs/
 * architecture.md): this one asks the server for S2 and reads raw messages. */
#define _POSIX_C_SOURCE 200809L
#include <es/es.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#define MAX_COLLECTIONS 256
#define MAX_SAMPLES     20000 /* records the dictionary is trained on */
#define DAY_S           86400.0

static const double rates[] = {600.0, 2000.0}; /* events/s: docs/operations.md says where from */

typedef struct variant {
    const char *name;
    size_t compress_threshold; /* the store's zstd; 0: off */
    bool dict;                 /* with a dictionary trained on the capture */
    bool s2;                   /* the server's block compression */
} variant;

static const variant variants[] = {
    {"plain", 0, false, false},
    {"zstd", 64, false, false},
    {"zstd_dict", 64, true, false},
    {"s2", 0, false, true},
    {"zstd_dict_s2", 64, true, true},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

typedef struct collection {
    char name[128];
    uint64_t events, bytes, payload;
} collection;

/* What the headers cost, by name (Nats-Msg-Id, the audit metadata, ...). */
#define MAX_HEADERS 64
typedef struct header_cost {
    char name[64];
    uint64_t bytes, count;
} header_cost;

typedef struct measure {
    collection cols[MAX_COLLECTIONS];
    size_t n_cols;
    uint64_t events, bytes;      /* read back, summed */
    uint64_t stream_bytes;       /* the stream's state */
    uint64_t disk_bytes;         /* message blocks on disk; 0: not measured */
    uint64_t last_block;         /* of which the last block (written to, never compressed) */
    uint64_t subject_bytes, header_bytes, payload_bytes;
    header_cost headers[MAX_HEADERS];
    size_t n_headers;
} measure;

typedef struct args {
    const char *ingest, *capture, *did_docs, *server, *store_dir, *label;
    const char *only; /* --variant NAME: that one alone */
    bool keep;        /* --keep: leave the stores for inspection */
} args;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "es-bench-sizing: %s: %s\n", what, detail ? detail : es_last_error());
    exit(1);
}

static void check_nats(natsStatus ns, const char *what)
{
    if (ns != NATS_OK)
        die(what, natsStatus_GetText(ns));
}

/* ---- the store ------------------------------------------------------------- */

/* A JetStream API request with a JSON body; the reply's JSON text (caller
 * frees) or death. */
static char *api(natsConnection *nc, const char *subject, const char *body)
{
    natsMsg *reply = NULL;
    check_nats(natsConnection_RequestString(&reply, nc, subject, body ? body : "", 5000), subject);
    char *text = strndup(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
    natsMsg_Destroy(reply);
    if (text == NULL || strstr(text, "\"error\"") != NULL)
        die(subject, text);
    return text;
}

/* The store's stream made again, empty, with "compression":"s2": its
 * config is read, the stream deleted and created with it. (nats-server
 * 2.15 takes "compression" in a stream update but its file store goes on
 * writing uncompressed blocks until restarted: measured here.) */
static void ask_s2(natsConnection *nc, const char *stream)
{
    char subject[128];
    snprintf(subject, sizeof subject, "$JS.API.STREAM.INFO.%s", stream);
    char *info = api(nc, subject, NULL);
    const char *c = strstr(info, "\"config\":");
    if (c == NULL)
        die("stream info", info);
    c += strlen("\"config\":");
    /* the config object: balanced braces (no braces inside its strings) */
    int depth = 0;
    const char *end = c;
    for (; *end; end++) {
        depth += *end == '{' ? 1 : *end == '}' ? -1 : 0;
        if (depth == 0)
            break;
    }
    size_t len = (size_t)(end - c); /* without the closing brace */
    char *body = malloc(len + 32);
    if (body == NULL)
        die("s2", "out of memory");
    snprintf(body, len + 32, "%.*s,\"compression\":\"s2\"}", (int)len, c);
    snprintf(subject, sizeof subject, "$JS.API.STREAM.DELETE.%s", stream);
    free(api(nc, subject, NULL));
    snprintf(subject, sizeof subject, "$JS.API.STREAM.CREATE.%s", stream);
    char *created = api(nc, subject, body);
    if (strstr(created, "\"compression\":\"s2\"") == NULL)
        die("the server did not take compression s2", created);
    free(created);
    free(body);
    free(info);
}

static void make_store(natsConnection *nc, const char *store, const variant *v, const es_buf *dict)
{
    es_status s = es_store_delete(nc, store, NULL);
    if (s != ES_OK && s != ES_ERR_NOT_FOUND)
        die("deleting the old store", NULL);
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.compress_threshold = v->compress_threshold;
    if (v->dict) {
        if (es_dict_put(nc, store, dict->data, dict->len, &cfg.compress_dict) != ES_OK)
            die("storing the dictionary", NULL);
    }
    es_store *st = NULL;
    if (es_store_create(nc, store, &cfg, NULL, &st) != ES_OK)
        die("creating the store", NULL);
    if (v->s2)
        ask_s2(nc, es_store_stream(st));
    es_store_destroy(st);
}

static void run_ingest(const args *a, const char *store)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = a->ingest;
    argv[n++] = "--from-file";
    argv[n++] = a->capture;
    argv[n++] = "--exit-at-end";
    argv[n++] = "--quiet";
    argv[n++] = "--store";
    argv[n++] = store;
    argv[n++] = "--server";
    argv[n++] = a->server;
    if (a->did_docs != NULL) {
        argv[n++] = "--did-docs";
        argv[n++] = a->did_docs;
        argv[n++] = "--offline";
    } else
        argv[n++] = "--no-verify"; /* sizes do not depend on it */
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        die("fork", "failed");
    if (pid == 0) {
        execv(a->ingest, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("es-atproto-ingest", "did not exit 0");
}

/* ---- measuring ------------------------------------------------------------- */

static void count_header(measure *ms, const char *key, size_t bytes)
{
    header_cost *h = NULL;
    for (size_t i = 0; i < ms->n_headers && h == NULL; i++)
        if (strcmp(ms->headers[i].name, key) == 0)
            h = &ms->headers[i];
    if (h == NULL && ms->n_headers < MAX_HEADERS) {
        h = &ms->headers[ms->n_headers++];
        snprintf(h->name, sizeof h->name, "%s", key);
    }
    if (h != NULL) {
        h->bytes += bytes;
        h->count++;
    }
}

/* The header block as nats.c sent it: "NATS/1.0\r\n", "Key: value\r\n" each,
 * "\r\n"; each line counted by name. */
static size_t header_len(natsMsg *m, measure *ms)
{
    const char **keys = NULL;
    int n_keys = 0;
    if (natsMsgHeader_Keys(m, &keys, &n_keys) != NATS_OK || n_keys == 0)
        return 0;
    size_t len = 10 + 2;
    for (int i = 0; i < n_keys; i++) {
        const char **values = NULL;
        int n_values = 0;
        if (natsMsgHeader_Values(m, keys[i], &values, &n_values) == NATS_OK)
            for (int j = 0; j < n_values; j++) {
                size_t line = strlen(keys[i]) + 2 + strlen(values[j]) + 2;
                len += line;
                count_header(ms, keys[i], line);
            }
        free((void *)values);
    }
    free((void *)keys);
    return len;
}

static collection *collection_of(measure *m, const char *subject)
{
    /* $ES.<store>.<type>.<id>.<event>: the entity type, the collection */
    const char *t = subject;
    for (int dots = 0; dots < 2 && t != NULL; dots++)
        t = strchr(t, '.') ? strchr(t, '.') + 1 : NULL;
    const char *end = t ? strchr(t, '.') : NULL;
    size_t len = end ? (size_t)(end - t) : 0;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1),
             t ? t : "?");
    for (size_t i = 0; i < m->n_cols; i++)
        if (strcmp(m->cols[i].name, name) == 0)
            return &m->cols[i];
    if (m->n_cols == MAX_COLLECTIONS)
        die("collections", "more than 256");
    collection *c = &m->cols[m->n_cols++];
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

/* Samples for the dictionary: the records' payloads, as stored plain. */
typedef struct samples {
    es_buf data;
    size_t sizes[MAX_SAMPLES];
    size_t n;
} samples;

static void read_back(natsConnection *nc, const char *store, measure *m, samples *keep)
{
    jsCtx *js = NULL;
    check_nats(natsConnection_JetStream(&js, nc, NULL), "JetStream");
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    char filter[64];
    snprintf(filter, sizeof filter, "$ES.%s.>", store);
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    check_nats(js_SubscribeSync(&sub, js, filter, NULL, &so, &jerr), "ordered consumer");
    for (;;) {
        natsMsg *msg = NULL;
        if (natsSubscription_NextMsg(&msg, sub, 5000) != NATS_OK)
            die("reading back", "no message in 5 s");
        size_t slen = strlen(natsMsg_GetSubject(msg)), hlen = header_len(msg, m);
        size_t dlen = (size_t)natsMsg_GetDataLength(msg);
        /* nats-server's fileStoreMsgSizeRaw */
        uint64_t size = 22 + slen + dlen + 8 + (hlen ? 4 + hlen : 0);
        collection *c = collection_of(m, natsMsg_GetSubject(msg));
        c->events++;
        c->bytes += size;
        c->payload += dlen;
        m->events++;
        m->bytes += size;
        m->subject_bytes += slen;
        m->header_bytes += hlen ? 4 + hlen : 0;
        m->payload_bytes += dlen;
        if (keep != NULL && keep->n < MAX_SAMPLES && dlen > 0) {
            es_buf_append(&keep->data, natsMsg_GetData(msg), dlen);
            keep->sizes[keep->n++] = dlen;
        }
        jsMsgMetaData *meta = NULL;
        bool last = natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta->NumPending == 0;
        jsMsgMetaData_Destroy(meta);
        natsMsg_Destroy(msg);
        if (last)
            break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
}

/* The stream's message blocks on disk: their total size, and that of the
 * last one (the highest number), which the server is still writing to and
 * never compresses. */
static void disk_bytes(const char *store_dir, const char *stream, measure *m)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jetstream/$G/streams/%s/msgs", store_dir, stream);
    DIR *d = opendir(dir);
    if (d == NULL)
        die("the stream's blocks (--store-dir)", dir);
    unsigned long last = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".blk") != 0)
            continue;
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0)
            continue;
        m->disk_bytes += (uint64_t)sb.st_size;
        unsigned long n = strtoul(e->d_name, NULL, 10);
        if (n >= last) {
            last = n;
            m->last_block = (uint64_t)sb.st_size;
        }
    }
    closedir(d);
}

/* What the full (sealed) blocks take on disk against what they hold: S2's
 * ratio (1 without it); 0 when there is no full block to tell. The last
 * block is uncompressed, so its size is what it holds. */
static double sealed_ratio(const measure *m)
{
    if (m->disk_bytes == 0 || m->stream_bytes <= m->last_block)
        return 0;
    return (double)(m->disk_bytes - m->last_block) / (double)(m->stream_bytes - m->last_block);
}

static void measure_variant(natsConnection *nc, const args *a, const variant *v,
                            const es_buf *dict, measure *m, samples *keep)
{
    /* seven characters, as the default store name "atproto": the name is in
     * every subject, so the sizes are those of production */
    char store[16];
    snprintf(store, sizeof store, "atprot%u", (unsigned)(v - variants));
    make_store(nc, store, v, dict);
    run_ingest(a, store);
    es_store *st = NULL;
    es_store_info info;
    if (es_store_open(nc, store, NULL, &st) != ES_OK || es_store_info_get(st, &info) != ES_OK)
        die("store info", NULL);
    m->stream_bytes = info.bytes;
    read_back(nc, store, m, keep);
    if (m->events != info.events)
        die("read back", "not every event of the stream");
    if (m->bytes != m->stream_bytes) {
        fprintf(stderr, "es-bench-sizing: %s: the messages add up to %llu bytes, the stream says "
                        "%llu\n",
                store, (unsigned long long)m->bytes, (unsigned long long)m->stream_bytes);
        exit(1);
    }
    if (a->store_dir != NULL) {
        nats_Sleep(200); /* the server writes its blocks out on its own time */
        disk_bytes(a->store_dir, es_store_stream(st), m);
    }
    es_store_destroy(st);
    if (!a->keep && es_store_delete(nc, store, NULL) != ES_OK)
        die("deleting the store", NULL);
}

/* ---- reporting ------------------------------------------------------------- */

static int by_events(const void *x, const void *y)
{
    const collection *a = x, *b = y;
    return a->events < b->events ? 1 : a->events > b->events ? -1 : strcmp(a->name, b->name);
}

static double per_event(uint64_t bytes, uint64_t events)
{
    return events ? (double)bytes / (double)events : 0.0;
}

static void print_collections(measure *ms)
{
    /* the plain run's collections, in order of events; others by name */
    qsort(ms[0].cols, ms[0].n_cols, sizeof ms[0].cols[0], by_events);
    printf("\n| collection | events | share | payload B/event | stored B/event |");
    for (size_t v = 1; v < N_VARIANTS; v++)
        if (variants[v].compress_threshold > 0 && !variants[v].s2)
            printf(" %s B/event |", variants[v].name);
    printf("\n|---|---:|---:|---:|---:|");
    for (size_t v = 1; v < N_VARIANTS; v++)
        if (variants[v].compress_threshold > 0 && !variants[v].s2)
            printf("---:|");
    printf("\n");
    for (size_t i = 0; i < ms[0].n_cols; i++) {
        const collection *c = &ms[0].cols[i];
        printf("| %s | %llu | %.1f %% | %.0f | %.0f |", c->name, (unsigned long long)c->events,
               100.0 * (double)c->events / (double)ms[0].events, per_event(c->payload, c->events),
               per_event(c->bytes, c->events));
        for (size_t v = 1; v < N_VARIANTS; v++) {
            if (variants[v].compress_threshold == 0 || variants[v].s2)
                continue;
            const collection *o = NULL;
            for (size_t j = 0; j < ms[v].n_cols; j++)
                if (strcmp(ms[v].cols[j].name, c->name) == 0)
                    o = &ms[v].cols[j];
            printf(" %.0f |", o ? per_event(o->bytes, o->events) : 0.0);
        }
        printf("\n");
    }
}

static int by_bytes(const void *x, const void *y)
{
    const header_cost *a = x, *b = y;
    return a->bytes < b->bytes ? 1 : a->bytes > b->bytes ? -1 : 0;
}

/* Where a stored event's bytes go (the plain run). */
static void print_breakdown(measure *m)
{
    double n = (double)m->events;
    printf("\n| part of a stored event (plain) | B/event |\n|---|---:|\n");
    printf("| record framing (nats-server: 22 + hash 8) | %.0f |\n", 30.0);
    printf("| subject | %.0f |\n", (double)m->subject_bytes / n);
    printf("| headers (all) | %.0f |\n", (double)m->header_bytes / n);
    qsort(m->headers, m->n_headers, sizeof m->headers[0], by_bytes);
    for (size_t i = 0; i < m->n_headers; i++)
        printf("| &nbsp; `%s` (on %.0f %% of events) | %.0f |\n", m->headers[i].name,
               100.0 * (double)m->headers[i].count / n, (double)m->headers[i].bytes / n);
    printf("| payload (the record) | %.0f |\n", (double)m->payload_bytes / n);
    printf("| total | %.0f |\n", (double)m->bytes / n);
}

static void print_totals(const args *a, const measure *ms)
{
    printf("\n| variant | events | stream bytes | B/event (stream) | on disk | full blocks on "
           "disk / held | B/event stored |");
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++)
        printf(" GB/day at %.0f/s R1 | R3 |", rates[r]);
    printf("\n|---|---:|---:|---:|---:|---:|---:|");
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++)
        printf("---:|---:|");
    printf("\n");
    for (size_t v = 0; v < N_VARIANTS; v++) {
        const measure *m = &ms[v];
        if (m->events == 0)
            continue; /* not run (--variant) */
        double stream = per_event(m->stream_bytes, m->events);
        /* S2 shows on disk only, in the full blocks: their ratio applied to
         * the stream's bytes is what a long-running store takes */
        double ratio = a->store_dir != NULL ? sealed_ratio(m) : 0;
        double stored = ratio > 0 ? stream * ratio : stream;
        char ratio_text[32];
        if (ratio > 0)
            snprintf(ratio_text, sizeof ratio_text, "%.2f", ratio);
        else
            snprintf(ratio_text, sizeof ratio_text, "%s", a->store_dir ? "n/a (one block)" : "-");
        printf("| %s | %llu | %llu | %.0f | %llu | %s | %.0f |", variants[v].name,
               (unsigned long long)m->events, (unsigned long long)m->stream_bytes, stream,
               (unsigned long long)m->disk_bytes, ratio_text, stored);
        for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
            double gb = stored * rates[r] * DAY_S / 1e9;
            printf(" %.1f | %.1f |", gb, 3 * gb);
        }
        printf("\n");
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: es-bench-sizing --ingest PATH --capture FILE [--did-docs FILE]\n"
                    "                       [--server URL] [--store-dir DIR] [--label TEXT]\n"
                    "                       [--variant NAME] [--keep]\n");
    exit(1);
}

static void parse(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->server = getenv("NATS_URL") ? getenv("NATS_URL") : "nats://127.0.0.1:4222";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keep") == 0) {
            a->keep = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(argv[i], "--ingest") == 0      ? &a->ingest
                            : strcmp(argv[i], "--capture") == 0   ? &a->capture
                            : strcmp(argv[i], "--did-docs") == 0  ? &a->did_docs
                            : strcmp(argv[i], "--server") == 0    ? &a->server
                            : strcmp(argv[i], "--store-dir") == 0 ? &a->store_dir
                            : strcmp(argv[i], "--label") == 0     ? &a->label
                            : strcmp(argv[i], "--variant") == 0   ? &a->only
                                                                  : NULL;
        if (slot == NULL || v == NULL)
            usage();
        *slot = v;
        i++;
    }
    if (a->ingest == NULL || a->capture == NULL)
        usage();
}

int main(int argc, char **argv)
{
    args a;
    parse(argc, argv, &a);
    natsConnection *nc = NULL;
    check_nats(natsConnection_ConnectTo(&nc, a.server), "connecting");
    static measure ms[N_VARIANTS];
    static samples keep;
    es_buf dict = ES_BUF_INIT;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        if (a.only != NULL && v > 0 && strcmp(a.only, variants[v].name) != 0)
            continue; /* the plain run always: the others are set against it */
        if (variants[v].dict && dict.len == 0) {
            uint32_t id = 0;
            if (es_dict_train(keep.data.data, keep.sizes, keep.n, 64 << 10, &dict, &id) != ES_OK)
                die("training the dictionary", NULL);
        }
        measure_variant(nc, &a, &variants[v], &dict, &ms[v], v == 0 ? &keep : NULL);
        fprintf(stderr, "es-bench-sizing: %s done\n", variants[v].name);
    }
    printf("%s: %s\n", a.label ? a.label : "capture", a.capture);
    print_collections(ms);
    print_breakdown(&ms[0]);
    print_totals(&a, ms);
    es_buf_free(&dict);
    es_buf_free(&keep.data);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
