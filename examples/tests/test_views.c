/* End-to-end test of the view examples: fill a store with the ATProto
 * adapter's events, run like-indexer and record-kv to completion, and
 * compare what they answer with the likes and records computed directly
 * from the events.
 *
 *   test-views --like-indexer PATH --record-kv PATH [--server URL] [--store NAME]
 *              [--capture FILE [--ingest PATH]]
 *
 * Without --capture the events are made here, in the adapter's exact shape
 * (DAG-CBOR like records, Rita-Meta-rkey, ...), in two rounds so that the
 * second run must resume where the first stopped, with a few hostile events
 * in between. With --capture (a firehose capture, e.g. es-atproto-gen's) the
 * frames are decoded and mapped by the adapter to compute the expected
 * views, and stored by es-atproto-ingest (--ingest, verifying against the DID
 * documents of --did-docs) — or, without it,
 * appended here as atomic batches. Exit 0 when everything matches, 77
 * (skipped) when the capture file is absent. */
#include <es/atproto.h>
#include <es/cbor.h>
#include <es/es.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIKES            20000
#define MAX_RECORDS          60000
#define MAX_SUBJECTS_CHECKED 150

typedef struct like {
    char did[128], rkey[64], uri[300];
    bool live;
} like;

typedef struct model {
    like *likes;
    size_t nlikes;
    char (*records)[400];
    bool *record_live;
    size_t nrecords;
} model;

static const char *server = NULL, *store_name = "test_views", *indexer_bin, *recordkv_bin;
static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAILED: " __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- the model: what the views must answer ---------------------------------- */

static bool like_subject(const void *data, size_t len, char *uri, size_t n)
{
    es_arena *a = NULL;
    es_value *v = NULL;
    bool ok = es_arena_create(1 << 22, &a) == ES_OK &&
              es_cbor_decode(data, len, NULL, a, &v, NULL) == ES_OK;
    const es_value *u = ok ? es_value_get(es_value_get(v, "subject"), "uri") : NULL;
    ok = u != NULL && u->kind == ES_VALUE_STRING && u->u.str.len < n &&
         strncmp(u->u.str.ptr, "at://", 5) == 0;
    if (ok)
        snprintf(uri, n, "%.*s", (int)u->u.str.len, u->u.str.ptr);
    es_arena_destroy(a);
    return ok;
}

static const char *meta(const es_event_spec *e, const char *key)
{
    for (size_t i = 0; i < e->meta_count; i++)
        if (strcmp(e->meta[i].key, key) == 0)
            return e->meta[i].value;
    return NULL;
}

static void set_record(model *m, const char *uri, bool live)
{
    for (size_t i = 0; i < m->nrecords; i++)
        if (strcmp(m->records[i], uri) == 0) {
            m->record_live[i] = live;
            return;
        }
    if (m->nrecords < MAX_RECORDS) {
        snprintf(m->records[m->nrecords], sizeof m->records[0], "%s", uri);
        m->record_live[m->nrecords++] = live;
    }
}

static like *find_like(model *m, const char *did, const char *rkey)
{
    for (size_t i = 0; i < m->nlikes; i++)
        if (strcmp(m->likes[i].did, did) == 0 && strcmp(m->likes[i].rkey, rkey) == 0)
            return &m->likes[i];
    if (m->nlikes == MAX_LIKES)
        return NULL;
    like *l = &m->likes[m->nlikes++];
    memset(l, 0, sizeof *l);
    snprintf(l->did, sizeof l->did, "%s", did);
    snprintf(l->rkey, sizeof l->rkey, "%s", rkey);
    return l;
}

/* Applies one event as the adapter stores it. */
static void apply(model *m, const es_event_spec *e)
{
    const char *rkey = meta(e, "rkey");
    if (rkey == NULL || strcmp(e->entity_type, "repo") == 0)
        return;
    char did[128], nsid[128], uri[400];
    size_t id_len = e->entity_id_len ? e->entity_id_len : strlen(e->entity_id);
    snprintf(did, sizeof did, "%.*s", (int)id_len, e->entity_id);
    snprintf(nsid, sizeof nsid, "%s", e->entity_type);
    for (char *p = nsid; *p; p++)
        *p = *p == '_' ? '.' : *p;
    snprintf(uri, sizeof uri, "at://%s/%s/%s", did, nsid, rkey);
    bool live = strcmp(e->event_type, "delete") != 0;
    set_record(m, uri, live);
    if (strcmp(e->entity_type, "app_bsky_feed_like") != 0)
        return;
    like *l = find_like(m, did, rkey);
    if (l == NULL)
        return;
    if (!live)
        l->live = false;
    else
        l->live = like_subject(e->data, e->data_len, l->uri, sizeof l->uri);
}

/* ---- making events --------------------------------------------------------------- */

static es_status like_record(const char *uri, es_buf *out)
{
    es_arena *a = NULL;
    es_status s = es_arena_create(1 << 16, &a);
    es_value *rec = s == ES_OK ? es_value_new_map(a, 3) : NULL;
    es_value *subj = rec ? es_value_new_map(a, 2) : NULL;
    if (subj == NULL) {
        es_arena_destroy(a);
        return ES_ERR_NOMEM;
    }
    const char *cid = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";
    subj->u.map.entries[0] = (es_value_entry){"cid", 3, *es_value_new_string(a, cid, strlen(cid))};
    subj->u.map.entries[1] = (es_value_entry){"uri", 3, *es_value_new_string(a, uri, strlen(uri))};
    const char *when = "2024-11-24T05:33:36.037Z";
    rec->u.map.entries[0] =
        (es_value_entry){"$type", 5, *es_value_new_string(a, "app.bsky.feed.like", 18)};
    rec->u.map.entries[1] = (es_value_entry){"subject", 7, *subj};
    rec->u.map.entries[2] =
        (es_value_entry){"createdAt", 9, *es_value_new_string(a, when, strlen(when))};
    s = es_cbor_encode(rec, NULL, out);
    es_arena_destroy(a);
    return s;
}

typedef struct made {
    es_event_spec spec;
    es_meta meta[3];
    char did[64], rkey[32], rev[32], seq[24];
    es_buf data;
} made;

/* The event the adapter would store for one op. */
static void make_op(made *e, const char *type, int user, const char *event, int rkey_n,
                    const char *subject_uri, uint64_t seq)
{
    memset(e, 0, sizeof *e);
    snprintf(e->did, sizeof e->did, "did:plc:user%02d", user);
    snprintf(e->rkey, sizeof e->rkey, "3l%08d", rkey_n);
    snprintf(e->rev, sizeof e->rev, "3m%010llu", (unsigned long long)seq);
    snprintf(e->seq, sizeof e->seq, "%llu", (unsigned long long)seq);
    es_event_spec_init(&e->spec);
    e->spec.entity_type = type;
    e->spec.entity_id = e->did;
    e->spec.event_type = event;
    e->meta[0] = (es_meta){"rkey", e->rkey};
    e->meta[1] = (es_meta){"rev", e->rev};
    e->meta[2] = (es_meta){"seq", e->seq};
    e->spec.meta = e->meta;
    e->spec.meta_count = 3;
    if (strcmp(event, "delete") != 0) {
        if (subject_uri != NULL)
            like_record(subject_uri, &e->data);
        else
            es_buf_append_str(&e->data, "\xa1\x64text\x62hi"); /* {"text":"hi"} */
        e->spec.data = e->data.data;
        e->spec.data_len = e->data.len;
        e->spec.codec = "dag-cbor";
    }
}

static void append_ops(es_store *st, model *m, made *ops, size_t n)
{
    es_event_spec specs[8];
    for (size_t i = 0; i < n; i++) {
        specs[i] = ops[i].spec;
        apply(m, &ops[i].spec);
    }
    es_status s = es_append_batch(st, specs, n, NULL);
    CHECK(s == ES_OK, "append: %s", es_last_error());
    for (size_t i = 0; i < n; i++)
        es_buf_free(&ops[i].data);
}

/* A round of traffic: likes of 40 posts by 20 users, some unliked again, an
 * update that changes a like's subject, posts, and a repo event. */
static void synthetic_round(es_store *st, model *m, int round, uint64_t *seq)
{
    made ops[3];
    for (int i = 0; i < 300; i++) {
        int user = (i * 7 + round) % 20, n = round * 1000 + i;
        char uri[128];
        snprintf(uri, sizeof uri, "at://did:plc:author%d/app.bsky.feed.post/3p%04d", i % 13,
                 (i * 31 + round) % 40);
        make_op(&ops[0], "app_bsky_feed_like", user, "create", n, uri, ++*seq);
        make_op(&ops[1], "app_bsky_feed_post", user, "create", n, NULL, *seq);
        size_t count = 2;
        if (i % 4 == 3) /* unlike one made earlier in this round */
            make_op(&ops[count++], "app_bsky_feed_like", user, "delete", n - 2, NULL, *seq);
        else if (i % 9 == 5) /* and now and then, change a like's subject */
            make_op(&ops[count++], "app_bsky_feed_like", (i * 7 + round - 14) % 20, "update", n - 2,
                    "at://did:plc:author99/app.bsky.feed.post/3pzz", *seq);
        append_ops(st, m, ops, count);
    }
    /* Hostile: a like whose payload is not DAG-CBOR, one without an rkey,
     * and a deletion of a like never made. None may show. */
    made bad;
    make_op(&bad, "app_bsky_feed_like", 1, "create", round * 1000 + 999, NULL, ++*seq);
    es_buf_clear(&bad.data);
    es_buf_append_str(&bad.data, "\xff\x00garbage");
    bad.spec.data = bad.data.data;
    bad.spec.data_len = bad.data.len;
    /* appends refuse it (ES_ERR_DECODE); a writer that skips the check may not */
    CHECK(es_append(st, &bad.spec, NULL) == ES_ERR_DECODE, "append: %s", es_last_error());
    es_store_options unchecked;
    es_store_options_init(&unchecked);
    unchecked.skip_payload_validation = true;
    es_store *raw = NULL;
    CHECK(es_store_open(es_store_connection(st), es_store_name(st), &unchecked, &raw) == ES_OK,
          "open: %s", es_last_error());
    CHECK(es_append(raw, &bad.spec, NULL) == ES_OK, "append: %s", es_last_error());
    es_store_destroy(raw);
    apply(m, &bad.spec); /* a record all the same: record-kv keeps its bytes */
    es_buf_free(&bad.data);
    make_op(&bad, "app_bsky_feed_like", 2, "delete", 424242, NULL, ++*seq);
    bad.spec.meta_count = 0;
    CHECK(es_append(st, &bad.spec, NULL) == ES_OK, "append: %s", es_last_error());
    make_op(&bad, "app_bsky_feed_like", 3, "delete", 434343, NULL, ++*seq);
    append_ops(st, m, &bad, 1);
    make_op(&bad, "repo", 4, "identity", 0, NULL, ++*seq);
    bad.spec.meta_count = 2; /* no rkey on repo events */
    bad.meta[0] = bad.meta[2];
    append_ops(st, m, &bad, 1);
}

/* The capture, decoded and mapped by the adapter: the expected views come
 * from here. Without an ingester the events are appended from here too,
 * batch by batch; with one, es-atproto-ingest stores them (run_ingester). */
static void load_capture(es_store *st, model *m, const char *path, bool append)
{
    es_atp_capture *cap = NULL;
    es_atp_decoder *dec = NULL;
    es_arena *arena = NULL;
    es_status s = es_atp_capture_open(path, 0, &cap);
    if (s == ES_OK)
        s = es_atp_decoder_create(NULL, &dec);
    if (s == ES_OK)
        s = es_arena_create(32u << 20, &arena);
    size_t frames = 0, events = 0;
    while (s == ES_OK) {
        const uint8_t *frame;
        size_t len;
        s = es_atp_capture_next(cap, &frame, &len);
        if (s != ES_OK)
            break;
        es_atp_batch b;
        es_arena_reset(arena);
        frames++;
        if (es_atp_decode(dec, frame, len, arena, &b) != ES_OK || b.count == 0)
            continue;
        for (size_t i = 0; i < b.count; i++)
            apply(m, &b.events[i]);
        if (append)
            s = es_append_batch(st, b.events, b.count, NULL);
        events += b.count;
    }
    CHECK(s == ES_ERR_NOT_FOUND, "loading %s: %s", path, es_last_error());
    fprintf(stderr, "test-views: %zu frames, %zu events from %s\n", frames, events, path);
    es_arena_destroy(arena);
    es_atp_decoder_destroy(dec);
    es_atp_capture_close(cap);
}

/* ---- running the tools ------------------------------------------------------------ */

/* The capture stored by the ingester itself, as an operator would. */
static void run_ingester(const char *ingest, const char *path, const char *did_docs)
{
    char cmd[3072];
    snprintf(cmd, sizeof cmd,
             "'%s' --from-file '%s' --did-docs '%s' --offline --exit-at-end --server '%s' "
             "--store '%s' "
             "--name test-views --stats-interval 0 >/dev/null 2>&1",
             ingest, path, did_docs, server, store_name);
    int rc = system(cmd);
    CHECK(rc == 0, "es-atproto-ingest on %s exited with %d", path, rc);
}

/* Runs `bin args...` with --server/--store; its stdout in a malloc'd string. */
static char *run(const char *bin, const char *args, int *status)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s --server '%s' --store '%s'", bin, args, server, store_name);
    FILE *f = popen(cmd, "r");
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    for (size_t got; f && (got = fread(out + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n < 2)
            out = realloc(out, cap *= 2);
    }
    out[n] = '\0';
    *status = f ? pclose(f) : -1;
    return out;
}

static void run_to_completion(const char *bin)
{
    int status;
    free(run(bin, "--exit-when-caught-up --partitions 3", &status));
    CHECK(status == 0, "%s --exit-when-caught-up exited with %d", bin, status);
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int compare_likes_by_rkey(const void *a, const void *b)
{
    return strcmp((*(like *const *)a)->rkey, (*(like *const *)b)->rkey);
}

static void check_likes_by(model *m, const char *did)
{
    char expected[1 << 16] = "", args[256];
    like *mine[MAX_LIKES];
    size_t n = 0;
    for (size_t i = 0; i < m->nlikes; i++)
        if (m->likes[i].live && strcmp(m->likes[i].did, did) == 0)
            mine[n++] = &m->likes[i];
    qsort(mine, n, sizeof *mine, compare_likes_by_rkey);
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(expected);
        snprintf(expected + used, sizeof expected - used, "{\"rkey\":\"%s\",\"subject\":\"%s\"}\n",
                 mine[i]->rkey, mine[i]->uri);
    }
    snprintf(args, sizeof args, "get-likes-by '%s'", did);
    int status;
    char *got = run(indexer_bin, args, &status);
    CHECK(status == 0 && strcmp(got, expected) == 0, "get-likes-by %s:\n got:\n%s expected:\n%s",
          did, got, expected);
    free(got);
}

static void check_likers(model *m, const char *uri)
{
    const char *dids[MAX_LIKES];
    size_t n = 0;
    for (size_t i = 0; i < m->nlikes; i++)
        if (m->likes[i].live && strcmp(m->likes[i].uri, uri) == 0)
            dids[n++] = m->likes[i].did;
    qsort(dids, n, sizeof *dids, compare_str);
    char expected[1 << 16] = "", args[512];
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(dids[i], dids[i - 1]) != 0) {
            size_t used = strlen(expected);
            snprintf(expected + used, sizeof expected - used, "%s\n", dids[i]);
        }
    snprintf(args, sizeof args, "get-likers '%s'", uri);
    int status;
    char *got = run(indexer_bin, args, &status);
    CHECK(status == 0 && strcmp(got, expected) == 0, "get-likers %s:\n got:\n%s expected:\n%s", uri,
          got, expected);
    free(got);
}

static void check_records(model *m)
{
    char **live = malloc(m->nrecords * sizeof *live + 1);
    size_t n = 0, len = 1;
    for (size_t i = 0; i < m->nrecords; i++)
        if (m->record_live[i]) {
            live[n++] = m->records[i];
            len += strlen(m->records[i]) + 1;
        }
    qsort(live, n, sizeof *live, compare_str);
    char *expected = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(expected, live[i]);
        strcat(expected, "\n");
    }
    int status;
    char *got = run(recordkv_bin, "uris", &status);
    CHECK(status == 0 && strcmp(got, expected) == 0,
          "record-kv uris differs: %zu bytes, expected %zu (%zu records)", strlen(got),
          strlen(expected), n);
    free(got);
    /* One live like, read back as atproto JSON. */
    for (size_t i = 0; i < m->nlikes; i++)
        if (m->likes[i].live) {
            char args[512];
            snprintf(args, sizeof args, "get 'at://%s/app.bsky.feed.like/%s'", m->likes[i].did,
                     m->likes[i].rkey);
            got = run(recordkv_bin, args, &status);
            CHECK(status == 0 && strstr(got, "\"$type\":\"app.bsky.feed.like\"") &&
                      strstr(got, m->likes[i].uri),
                  "record-kv %s: %s", args, got);
            free(got);
            break;
        }
    free(expected);
    free(live);
}

static void check_views(model *m)
{
    run_to_completion(indexer_bin);
    run_to_completion(recordkv_bin);
    const char *dids[MAX_LIKES], *uris[MAX_LIKES];
    size_t nd = 0, nu = 0, live = 0;
    for (size_t i = 0; i < m->nlikes; i++) {
        dids[nd++] = m->likes[i].did;
        if (m->likes[i].uri[0])
            uris[nu++] = m->likes[i].uri;
        live += m->likes[i].live;
    }
    qsort(dids, nd, sizeof *dids, compare_str);
    qsort(uris, nu, sizeof *uris, compare_str);
    size_t checked_dids = 0, checked_uris = 0;
    for (size_t i = 0; i < nd; i++)
        if (i == 0 || strcmp(dids[i], dids[i - 1]) != 0) {
            check_likes_by(m, dids[i]);
            checked_dids++;
        }
    size_t distinct = 0;
    for (size_t i = 0; i < nu; i++)
        distinct += i == 0 || strcmp(uris[i], uris[i - 1]) != 0;
    size_t step = distinct / MAX_SUBJECTS_CHECKED + 1;
    for (size_t i = 0, k = 0; i < nu; i++)
        if ((i == 0 || strcmp(uris[i], uris[i - 1]) != 0) && k++ % step == 0) {
            check_likers(m, uris[i]);
            checked_uris++;
        }
    check_records(m);
    fprintf(stderr,
            "test-views: %zu live likes of %zu; likes of %zu DIDs and likers of %zu subjects "
            "compared; %zu records\n",
            live, m->nlikes, checked_dids, checked_uris, m->nrecords);
}

int main(int argc, char **argv)
{
    const char *capture = NULL, *ingest = NULL, *did_docs = NULL;
    server = getenv("NATS_URL");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--like-indexer") == 0)
            indexer_bin = argv[i + 1];
        else if (strcmp(argv[i], "--record-kv") == 0)
            recordkv_bin = argv[i + 1];
        else if (strcmp(argv[i], "--server") == 0)
            server = argv[i + 1];
        else if (strcmp(argv[i], "--store") == 0)
            store_name = argv[i + 1];
        else if (strcmp(argv[i], "--capture") == 0)
            capture = argv[i + 1];
        else if (strcmp(argv[i], "--ingest") == 0)
            ingest = argv[i + 1];
        else if (strcmp(argv[i], "--did-docs") == 0)
            did_docs = argv[i + 1];
    }
    if (indexer_bin == NULL || recordkv_bin == NULL || server == NULL ||
        (ingest != NULL && did_docs == NULL)) {
        fprintf(stderr, "usage: test-views --like-indexer PATH --record-kv PATH [--server URL] "
                        "[--store NAME] [--capture FILE [--ingest ES-ATPROTO-INGEST --did-docs "
                        "FILE]]\n");
        return 2;
    }
    FILE *probe = capture ? fopen(capture, "rb") : NULL;
    if (capture != NULL && probe == NULL) {
        printf("test-views: skipped: the capture %s is absent\n", capture);
        return 77; /* ctest's SKIP_RETURN_CODE */
    }
    if (probe != NULL)
        fclose(probe);
    natsConnection *nc = NULL;
    es_store *st = NULL;
    if (natsConnection_ConnectTo(&nc, server) != NATS_OK) {
        fprintf(stderr, "test-views: cannot connect to %s\n", server);
        return 1;
    }
    es_store_delete(nc, store_name, NULL);
    es_status s = es_store_create(nc, store_name, NULL, NULL, &st);
    jsCtx *js = NULL;
    natsConnection_JetStream(&js, nc, NULL);
    char bucket[128];
    snprintf(bucket, sizeof bucket, "%s_likes", store_name);
    js_DeleteKeyValue(js, bucket);
    snprintf(bucket, sizeof bucket, "%s_records", store_name);
    js_DeleteKeyValue(js, bucket);
    model m = {.likes = calloc(MAX_LIKES, sizeof(like)),
               .records = calloc(MAX_RECORDS, sizeof *m.records),
               .record_live = calloc(MAX_RECORDS, sizeof(bool))};
    if (s != ES_OK) {
        fprintf(stderr, "test-views: %s\n", es_last_error());
        return 1;
    }
    if (capture != NULL) {
        load_capture(st, &m, capture, ingest == NULL);
        if (ingest != NULL)
            run_ingester(ingest, capture, did_docs);
        check_views(&m);
    } else {
        uint64_t seq = 0;
        synthetic_round(st, &m, 0, &seq);
        check_views(&m);
        synthetic_round(st, &m, 1, &seq); /* the views resume where they stopped */
        check_views(&m);
    }
    es_store_destroy(st);
    es_store_delete(nc, store_name, NULL);
    js_DeleteKeyValue(js, bucket);
    snprintf(bucket, sizeof bucket, "%s_likes", store_name);
    js_DeleteKeyValue(js, bucket);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(m.likes);
    free(m.records);
    free(m.record_live);
    printf("test-views: %s\n", failures ? "FAILED" : "all views match");
    return failures ? 1 : 0;
}
