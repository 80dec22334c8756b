/* es-atproto-verify against a live server (NATS_URL; skipped without one or
 * without ../shared): stores built here from the real corpus, each commit's
 * op events carrying the audit metadata es-atproto-ingest writes
 * (audit_corpus.h), then the program run on them ($ES_VERIFY_BIN):
 *   - the corpus as stored: 148 commits, all ok, exit 0;
 *   - one commit's `sig` altered: that commit fails `signature`, exit 5;
 *     --did narrows the read to one repository;
 *   - one event of a multi-op commit altered: the commit fails once;
 *   - one commit stored without audit metadata: `no_audit_metadata`;
 *   - chains through events, with commits the test signs (audit_signer.h):
 *     a gap fails `since_mismatch`, a #sync (its commit block checked too)
 *     restarts the chain, a replay fails `rev_order`. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include <es/time.h>
#include <es/atproto.h>
#include <es/cbor.h>
#include <es/cid.h>
#include <es/es.h>

#include "fixtures.h"
#include "audit_corpus.h"
#include "audit_signer.h"

typedef enum tamper {
    TAMPER_NONE,
    TAMPER_SIG,        /* the sig of every event of one single-op commit */
    TAMPER_MEMBER_SIG, /* the sig of the second event of a multi-op commit */
    TAMPER_STRIP,      /* one commit stored without audit metadata */
} tamper;

typedef struct ctx {
    natsConnection *nc;
    const char *url, *bin;
    char docs[4096];
} ctx;

static int setup(void **state)
{
    static ctx c;
    *state = NULL;
    c.url = getenv("NATS_URL");
    c.bin = getenv("ES_VERIFY_BIN");
    const char *docs = fixture_path("firehose-corpus/did_docs.json.zst");
    if (c.url == NULL || *c.url == '\0' || c.bin == NULL || docs == NULL)
        return 0;
    snprintf(c.docs, sizeof c.docs, "%s", docs);
    if (natsConnection_ConnectTo(&c.nc, c.url) != NATS_OK)
        return -1;
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c != NULL)
        natsConnection_Destroy(c->nc);
    return 0;
}

/* ---- building a store ---------------------------------------------------------- */

#define META_MAX 16
#define OPS_MAX  200 /* the decoder's default max_ops */

static bool audit_key(const char *k)
{
    static const char *const keys[] = {"sig", "data", "prevdata", "since", "commitprev"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

/* The event's metadata with the commit's audit metadata (replacing any the
 * decoder already wrote), `sig` given separately so that it can be forged;
 * `sig` NULL: none at all, as stored before the audit metadata existed. */
static size_t with_audit_meta(const es_event_spec *e, const corpus_commit *c, const char *sig,
                              es_meta *m)
{
    size_t n = 0;
    for (size_t i = 0; i < e->meta_count; i++)
        if (!audit_key(e->meta[i].key)) {
            assert_true(n < META_MAX - 5);
            m[n++] = e->meta[i];
        }
    if (sig == NULL) /* stored as before the audit metadata existed */
        return n;
    m[n++] = (es_meta){"sig", sig};
    m[n++] = (es_meta){"data", c->data};
    if (c->fields.prevdata != NULL)
        m[n++] = (es_meta){"prevdata", c->prevdata};
    if (c->fields.since != NULL)
        m[n++] = (es_meta){"since", c->since};
    if (c->fields.commitprev != NULL)
        m[n++] = (es_meta){"commitprev", c->commitprev};
    return n;
}

typedef struct built {
    size_t events, commits;
    char did[CORPUS_TEXT_MAX];   /* the repository of the tampered commit */
    char other[CORPUS_TEXT_MAX]; /* another repository */
} built;

/* Appends the corpus to a new store `name`, tampering as told; `copies`
 * times (the copies with event ids of their own, so that the store keeps
 * them: their commits then fail rev_order, after the full check). */
static void build_store(ctx *c, const char *name, tamper how, long copies, built *out)
{
    memset(out, 0, sizeof *out);
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.memory_storage = true;
    es_store *st = NULL;
    es_store_delete(c->nc, name, NULL);
    assert_int_equal(es_store_create(c->nc, name, &cfg, NULL, &st), ES_OK);
    es_atp_capture *frames = corpus_frames_open();
    assert_non_null(frames);
    es_atp_decoder *d = NULL;
    es_arena *arena = NULL, *scratch = NULL;
    assert_int_equal(es_atp_decoder_create(NULL, &d), ES_OK);
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    assert_int_equal(es_arena_create(0, &scratch), ES_OK);
    static corpus_commit cc;
    static char forged[sizeof cc.sig]; /* outlives the block: the append reads it */
    static es_meta meta[OPS_MAX][META_MAX];
    bool tampered = false;
    const uint8_t *frame;
    size_t len;
    for (long copy = 0; copy < copies; copy++) {
        if (copy > 0) {
            es_atp_capture_close(frames);
            frames = corpus_frames_open();
        }
        while (es_atp_capture_next(frames, &frame, &len) == ES_OK) {
            es_arena_reset(arena);
            es_arena_reset(scratch);
            es_atp_batch b;
            assert_int_equal(es_atp_decode(d, frame, len, arena, &b), ES_OK);
            if (b.count == 0)
                continue;
            if (b.kind == ES_ATP_KIND_COMMIT) {
                assert_true(corpus_commit_of(frame, len, scratch, &cc));
                assert_true(b.count <= OPS_MAX);
                memcpy(forged, cc.sig, sizeof forged);
                forged[7] = forged[7] == 'A' ? 'B' : 'A';
                bool here = !tampered && ((how == TAMPER_SIG && b.count == 1) ||
                                          (how == TAMPER_MEMBER_SIG && b.count >= 2) ||
                                          (how == TAMPER_STRIP && out->commits == 20));
                for (size_t i = 0; i < b.count; i++) {
                    bool forge = here && (how == TAMPER_SIG || i == 1);
                    bool strip = here && how == TAMPER_STRIP; /* the decoder's own removed too */
                    b.events[i].meta_count = with_audit_meta(
                        &b.events[i], &cc, strip ? NULL : forge ? forged : cc.sig, meta[i]);
                    b.events[i].meta = meta[i];
                }
                if (here) {
                    tampered = true;
                    snprintf(out->did, sizeof out->did, "%s", cc.did);
                } else if (out->other[0] == '\0') {
                    snprintf(out->other, sizeof out->other, "%s", cc.did);
                }
                out->commits++;
            }
            for (size_t i = 0; i < b.count && copy > 0; i++)
                b.events[i].event_id = NULL; /* a generated one */
            es_append_result r;
            if (es_append_batch(st, b.events, b.count, &r) != ES_OK)
                fail_msg("seq %llu: %s", (unsigned long long)b.seq, es_last_error());
            out->events += b.count;
        }
    }
    if (how != TAMPER_NONE && !tampered) {
        print_message("SKIP: the corpus has no commit to tamper that way\n");
        skip();
    }
    es_arena_destroy(scratch);
    es_arena_destroy(arena);
    es_atp_decoder_destroy(d);
    es_atp_capture_close(frames);
    es_store_destroy(st);
}

/* ---- running the program ------------------------------------------------------- */

/* Runs es-atproto-verify --json on store `name` (and --did when given);
 * returns its exit status and its parsed output in *out (the caller
 * json_decref's it). */
/* Runs es-atproto-verify on store `name` with `docs` (and --did when given,
 * and --json when `json`); its standard output in *out (NUL-terminated,
 * the caller's to es_buf_free). Returns its exit status. */
static int run_tool(ctx *c, const char *docs, const char *name, const char *did, bool json,
                    es_buf *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        char *argv[12] = {(char *)c->bin, "--server",   (char *)c->url, "--store",
                          (char *)name,   "--did-docs", (char *)docs};
        int n = 7;
        if (json)
            argv[n++] = "--json";
        if (did != NULL) {
            argv[n++] = "--did";
            argv[n++] = (char *)did;
        }
        execv(c->bin, argv);
        _exit(127);
    }
    close(fds[1]);
    *out = (es_buf)ES_BUF_INIT;
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0)
        assert_int_equal(es_buf_append(out, chunk, (size_t)n), ES_OK);
    assert_int_equal(es_buf_append_byte(out, 0), ES_OK);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The program with --json: its exit status, its output parsed in *out (the
 * caller json_decref's it). */
static int verify_with(ctx *c, const char *docs, const char *name, const char *did, json_t **out)
{
    es_buf text;
    int rc = run_tool(c, docs, name, did, true, &text);
    json_error_t err;
    *out = json_loadb((const char *)text.data, text.len - 1, 0, &err);
    if (*out == NULL)
        fail_msg("not JSON (%s): %s", err.text, (const char *)text.data);
    es_buf_free(&text);
    return rc;
}

static int verify(ctx *c, const char *name, const char *did, json_t **out)
{
    return verify_with(c, c->docs, name, did, out);
}

static json_int_t summary_int(json_t *doc, const char *key)
{
    json_t *v = json_object_get(json_object_get(doc, "summary"), key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static json_int_t failures_of(json_t *doc, const char *reason)
{
    json_t *f = json_object_get(json_object_get(doc, "summary"), "failures");
    return json_integer_value(json_object_get(f, reason));
}

/* The one failed commit of `doc`: its DID and reason. */
static void one_failure(json_t *doc, const char *did, const char *reason)
{
    json_t *list = json_object_get(doc, "failures");
    assert_int_equal(json_array_size(list), 1);
    json_t *f = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(f, "did")), did);
    assert_string_equal(json_string_value(json_object_get(f, "reason")), reason);
    assert_int_equal(summary_int(doc, "failed"), 1);
    assert_int_equal(failures_of(doc, reason), 1);
}

#define SKIP_WITHOUT_SERVER(c)                                                                     \
    do {                                                                                           \
        if ((c) == NULL) {                                                                         \
            print_message("SKIP: needs NATS_URL, ES_VERIFY_BIN and ../shared\n");                  \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void the_stored_corpus_verifies(void **state)
{
    ctx *c = *state;
    SKIP_WITHOUT_SERVER(c);
    char name[32];
    snprintf(name, sizeof name, "audit_ok_%ld", (long)getpid());
    built b;
    build_store(c, name, TAMPER_NONE, 1, &b);
    json_t *doc = NULL;
    assert_int_equal(verify(c, name, NULL, &doc), 0);
    assert_int_equal(b.commits, 148);
    assert_int_equal(summary_int(doc, "events"), (json_int_t)b.events);
    assert_int_equal(summary_int(doc, "commits"), 148); /* multi-op commits counted once */
    assert_int_equal(summary_int(doc, "ok"), 148);
    assert_int_equal(summary_int(doc, "failed"), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "failures")), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "dids")), summary_int(doc, "dids"));
    printf("verified: %lld events, %lld commits, %lld repositories\n",
           (long long)summary_int(doc, "events"), (long long)summary_int(doc, "commits"),
           (long long)summary_int(doc, "dids"));
    json_decref(doc);
    es_store_delete(c->nc, name, NULL);
}

/* A store of the corpus tampered as told, verified whole: exit 5, one
 * commit failed with `reason`, every commit counted once. The caller
 * json_decref's *doc and deletes store `name`. */
static void verify_tampered(ctx *c, tamper how, const char *reason, char name[32], built *b,
                            json_t **doc)
{
    snprintf(name, 32, "audit_t%d_%ld", (int)how, (long)getpid());
    build_store(c, name, how, 1, b);
    assert_int_equal(verify(c, name, NULL, doc), 5);
    one_failure(*doc, b->did, reason);
    assert_int_equal(summary_int(*doc, "commits"), 148);
    assert_int_equal(summary_int(*doc, "ok"), 147);
}

static void an_altered_signature_is_reported(void **state)
{
    ctx *c = *state;
    SKIP_WITHOUT_SERVER(c);
    char name[32];
    built b;
    json_t *doc = NULL;
    verify_tampered(c, TAMPER_SIG, "signature", name, &b, &doc);
    json_decref(doc);
    /* The same in text: the failed commit's line and the summary. */
    es_buf text;
    assert_int_equal(run_tool(c, c->docs, name, NULL, false, &text), 5);
    char want[CORPUS_TEXT_MAX + 16];
    snprintf(want, sizeof want, "FAIL %s rev ", b.did);
    const char *out = (const char *)text.data;
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, ": signature\n"));
    assert_non_null(strstr(out, "148 commits checked in 148 repositories"));
    assert_non_null(strstr(out, ", 147 ok, 1 failed (signature 1)\n"));
    es_buf_free(&text);
    /* --did: that repository alone, then another one, which verifies. */
    assert_int_equal(verify(c, name, b.did, &doc), 5);
    one_failure(doc, b.did, "signature");
    assert_int_equal(summary_int(doc, "commits"), 1);
    assert_int_equal(summary_int(doc, "dids"), 1);
    json_decref(doc);
    assert_string_not_equal(b.other, b.did);
    assert_int_equal(verify(c, name, b.other, &doc), 0);
    assert_int_equal(summary_int(doc, "failed"), 0);
    assert_true(summary_int(doc, "commits") >= 1);
    json_decref(doc);
    es_store_delete(c->nc, name, NULL);
}

/* One event of a multi-op commit altered: the commit fails, once; a commit
 * stored without audit metadata (as before it existed). */
static void a_commit_fails_once_whatever_its_events_say(void **state)
{
    ctx *c = *state;
    SKIP_WITHOUT_SERVER(c);
    char name[32];
    built b;
    json_t *doc = NULL;
    verify_tampered(c, TAMPER_MEMBER_SIG, "signature", name, &b, &doc);
    json_t *f = json_array_get(json_object_get(doc, "failures"), 0);
    assert_true(json_integer_value(json_object_get(f, "events")) >= 2);
    json_decref(doc);
    es_store_delete(c->nc, name, NULL);
    verify_tampered(c, TAMPER_STRIP, "no_audit_metadata", name, &b, &doc);
    json_decref(doc);
    es_store_delete(c->nc, name, NULL);
}

/* ---- chains through events ------------------------------------------------------ */

/* Commit `k` as `ops` delete events (rkeys a, b, ...) in one atomic batch. */
static void append_commit(es_store *st, const corpus_commit *k, size_t ops)
{
    static const char *const rkeys[] = {"a", "b", "c"};
    es_event_spec e[3];
    es_meta m[3][8];
    assert_true(ops <= 3);
    for (size_t i = 0; i < ops; i++) {
        size_t n = 0;
        m[i][n++] = (es_meta){"rkey", rkeys[i]};
        m[i][n++] = (es_meta){"rev", k->rev};
        m[i][n++] = (es_meta){"commit", k->commit};
        m[i][n++] = (es_meta){"sig", k->sig};
        m[i][n++] = (es_meta){"data", k->data};
        if (k->since[0] != '\0')
            m[i][n++] = (es_meta){"since", k->since};
        if (k->prevdata[0] != '\0')
            m[i][n++] = (es_meta){"prevdata", k->prevdata};
        es_event_spec_init(&e[i]);
        e[i].entity_type = "app_bsky_feed_post";
        e[i].entity_id = CHAIN_DID;
        e[i].event_type = "delete";
        e[i].meta = m[i];
        e[i].meta_count = n;
    }
    es_append_result r;
    assert_int_equal(es_append_batch(st, e, ops, &r), ES_OK);
}

/* The #sync frame body of commit `k` into `out`: {did, rev, seq, time,
 * blocks}, blocks a CAR whose root is k's commit block. */
static void sync_body(const corpus_commit *k, es_buf *out)
{
    es_buf block = ES_BUF_INIT, header = ES_BUF_INIT, car = ES_BUF_INIT;
    uint8_t cid[ES_CID_SHA256_LEN], varint[10];
    assert_int_equal(es_atp_audit_rebuild(&k->fields, &block, cid), ES_OK);
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_value *h = es_value_new_map(arena, 2), *roots = es_value_new_array(arena, 1);
    roots->u.array.items[0] =
        (es_value){.kind = ES_VALUE_LINK, .u.bytes = {.ptr = cid, .len = sizeof cid}};
    h->u.map.entries[0] = (es_value_entry){.key = "roots", .key_len = 5, .value = *roots};
    h->u.map.entries[1] =
        (es_value_entry){.key = "version", .key_len = 7, .value = *es_value_new_int(arena, 1)};
    assert_int_equal(es_cbor_encode(h, NULL, &header), ES_OK);
    assert_int_equal(es_buf_append(&car, varint, es_varint_encode(header.len, varint)), ES_OK);
    assert_int_equal(es_buf_append(&car, header.data, header.len), ES_OK);
    assert_int_equal(es_buf_append(&car, varint, es_varint_encode(sizeof cid + block.len, varint)),
                     ES_OK);
    assert_int_equal(es_buf_append(&car, cid, sizeof cid), ES_OK);
    assert_int_equal(es_buf_append(&car, block.data, block.len), ES_OK);
    es_value *body = es_value_new_map(arena, 5);
    const char *keys[] = {"did", "rev", "seq", "time", "blocks"};
    es_value *values[] = {es_value_new_string(arena, k->did, strlen(k->did)),
                          es_value_new_string(arena, k->rev, strlen(k->rev)),
                          es_value_new_int(arena, 1),
                          es_value_new_string(arena, "2026-12-01T00:00:00.000Z", 24),
                          es_value_new_bytes(arena, car.data, car.len)};
    for (size_t i = 0; i < 5; i++)
        body->u.map.entries[i] =
            (es_value_entry){.key = keys[i], .key_len = strlen(keys[i]), .value = *values[i]};
    assert_int_equal(es_cbor_encode(body, NULL, out), ES_OK);
    es_arena_destroy(arena);
    es_buf_free(&block);
    es_buf_free(&header);
    es_buf_free(&car);
}

/* A #sync of CHAIN_DID at commit `k`, as the decoder maps it (the body as
 * data, rev and commit in metadata); `commit` NULL: k's own. */
static void append_sync(es_store *st, const corpus_commit *k, const char *commit)
{
    es_meta m[] = {{"seq", "1"}, {"rev", k->rev}, {"commit", commit ? commit : k->commit}};
    es_buf body = ES_BUF_INIT;
    sync_body(k, &body);
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = "repo";
    e.entity_id = CHAIN_DID;
    e.event_type = "sync";
    e.codec = "dag-cbor";
    e.data = body.data;
    e.data_len = body.len;
    e.meta = m;
    e.meta_count = 3;
    assert_int_equal(es_append(st, &e, NULL), ES_OK);
    es_buf_free(&body);
}

static es_store *new_store(ctx *c, const char *name)
{
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.memory_storage = true;
    es_store *st = NULL;
    es_store_delete(c->nc, name, NULL);
    assert_int_equal(es_store_create(c->nc, name, &cfg, NULL, &st), ES_OK);
    return st;
}

/* One stored commit of CHAIN_DID (`ops` events), or a #sync at it. */
typedef struct item {
    const corpus_commit *k;
    size_t ops;         /* 0: a #sync */
    const char *commit; /* a #sync's metadata `commit`, when not k's (forged) */
} item;

/* Stores `items` in a new store `name`, runs the program on it with the
 * DID documents `docs`, checks its exit status; the caller json_decref's
 * the result. */
static json_t *verify_items(ctx *c, const char *docs, const char *name, const item *items, size_t n,
                            int want_exit)
{
    es_store *st = new_store(c, name);
    for (size_t i = 0; i < n; i++)
        if (items[i].ops == 0)
            append_sync(st, items[i].k, items[i].commit);
        else
            append_commit(st, items[i].k, items[i].ops);
    es_store_destroy(st);
    json_t *doc = NULL;
    assert_int_equal(verify_with(c, docs, name, NULL, &doc), want_exit);
    return doc;
}

static void chains_are_followed_through_events(void **state)
{
    ctx *c = *state;
    SKIP_WITHOUT_SERVER(c);
    signer_start();
    static corpus_commit k1, k2, k3;
    chain_commit(&k1, "3lbaaaaaaaa22", NULL);
    chain_commit(&k2, "3lbaaaaaaab22", &k1);
    chain_commit(&k3, "3lbaaaaaaac22", &k2);
    char docs[64], name[32];
    snprintf(docs, sizeof docs, "/tmp/audit_docs_%ld.json", (long)getpid());
    snprintf(name, sizeof name, "audit_chain_%ld", (long)getpid());
    FILE *f = fopen(docs, "w");
    assert_non_null(f);
    fprintf(f, "{\"%s\": %s}\n", CHAIN_DID, chain_did_doc());
    fclose(f);

    /* k1 (two ops, one commit), k2, k3 (three ops): one chain. */
    const item chain[] = {{&k1, 2, NULL}, {&k2, 1, NULL}, {&k3, 3, NULL}};
    json_t *doc = verify_items(c, docs, name, chain, 3, 0);
    assert_int_equal(summary_int(doc, "events"), 6);
    assert_int_equal(summary_int(doc, "commits"), 3);
    assert_int_equal(summary_int(doc, "ok"), 3);
    json_decref(doc);
    /* k2 missing: k3 names a since and prevData the store never saw... */
    const item gap[] = {{&k1, 1, NULL}, {&k3, 1, NULL}};
    doc = verify_items(c, docs, name, gap, 2, 5);
    one_failure(doc, CHAIN_DID, "since_mismatch");
    json_decref(doc);
    /* ... unless a #sync at k2 restarted the chain between them: its
     * commit block (in the event's data) is checked as a commit. */
    const item sync[] = {{&k1, 1, NULL}, {&k2, 0, NULL}, {&k3, 1, NULL}};
    doc = verify_items(c, docs, name, sync, 3, 0);
    assert_int_equal(summary_int(doc, "syncs"), 1);
    assert_int_equal(summary_int(doc, "commits"), 3);
    assert_int_equal(summary_int(doc, "ok"), 3);
    json_decref(doc);
    /* A #sync whose metadata names another commit than the block it holds. */
    const item forged_sync[] = {{&k1, 1, NULL}, {&k2, 0, k1.commit}, {&k3, 1, NULL}};
    doc = verify_items(c, docs, name, forged_sync, 3, 5);
    one_failure(doc, CHAIN_DID, "commit_cid_mismatch");
    json_decref(doc);
    /* A replayed commit (stored again after the others). */
    const item replay[] = {{&k1, 1, NULL}, {&k2, 1, NULL}, {&k1, 1, NULL}};
    doc = verify_items(c, docs, name, replay, 3, 5);
    one_failure(doc, CHAIN_DID, "rev_order");
    json_decref(doc);

    es_store_delete(c->nc, name, NULL);
    unlink(docs);
    signer_stop();
}

/* Not a timed test: with ES_AUDIT_BENCH=N, the program's rate end to end
 * (read through the server, check, report) over the corpus stored N times. */
static void bench_end_to_end(void **state)
{
    ctx *c = *state;
    const char *env = getenv("ES_AUDIT_BENCH");
    long copies = env != NULL ? atol(env) : 0;
    if (c == NULL || copies <= 0) {
        print_message("SKIP: set ES_AUDIT_BENCH=N (and NATS_URL) to measure\n");
        skip();
    }
    char name[32];
    snprintf(name, sizeof name, "audit_bench_%ld", (long)getpid());
    built b;
    build_store(c, name, TAMPER_NONE, copies, &b);
    int64_t t0 = es_monotonic_ns();
    json_t *doc = NULL;
    assert_int_equal(verify(c, name, NULL, &doc), 5); /* the copies fail rev_order */
    double s = (double)(es_monotonic_ns() - t0) / 1e9;
    json_int_t commits = summary_int(doc, "commits");
    assert_int_equal(commits, 148 * copies);
    assert_int_equal(failures_of(doc, "rev_order"), 148 * (copies - 1));
    printf("bench: es-atproto-verify read %lld events, checked %lld commits in %.2f s: %.0f "
           "commits/s\n",
           (long long)summary_int(doc, "events"), (long long)commits, s, (double)commits / s);
    json_decref(doc);
    es_store_delete(c->nc, name, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_stored_corpus_verifies),
        cmocka_unit_test(an_altered_signature_is_reported),
        cmocka_unit_test(a_commit_fails_once_whatever_its_events_say),
        cmocka_unit_test(chains_are_followed_through_events),
        cmocka_unit_test(bench_end_to_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
