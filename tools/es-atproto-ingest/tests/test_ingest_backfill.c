/* End-to-end backfill: es-atproto-gen writes a signed capture, each
 * account's final repository as a getRepo CAR with its record list
 * (--repos-out) and DID documents naming a PDS (--pds-url) — a stand-in on
 * loopback (atproto/tests/http_standin.h) that serves the CARs. Then
 * `es-atproto-ingest --backfill`:
 *
 *  - stores exactly each repository's records (the store's events folded
 *    per DID equal the record lists), all marked live=false, and moves each
 *    chain state to the repository's rev; the older live capture ingested
 *    afterwards adds no record event;
 *  - gives up on a repository whose PDS keeps failing (500) or does not
 *    have it (RepoNotFound) — exit 6, the repository marked desynchronized
 *    — and backfills it on the next run once the PDS serves it;
 *  - killed (exit 99, nothing flushed) after a few batches of a few events
 *    and run again, ends with the store equal to the PDS and no record
 *    event stored twice;
 *  - with a live source: a forged commit is refused, its repository is
 *    resynced from the PDS (which serves it as of an earlier frame: a second
 *    es-atproto-gen run, the same seed, fewer frames — a prefix of the
 *    capture), and the live commits that came meanwhile are stored after
 *    the snapshot, in order, when newer; --backfill DID beside a live
 *    source stores the repository's history before any of its live events;
 *  - the real repo.car of ../shared (firehose-corpus) served for the DID of
 *    its commit stores exactly the records of car_expected_records.tsv. Its
 *    author's DID document is not in the corpus, so the test's document
 *    names another account's key: the backfill refuses the CAR (signature)
 *    until the test hook ES_INGEST_TEST_SKIP_REPO_SIGNATURE=1 turns off that
 *    one check (every block hash, the MST and the commit's fields are still
 *    verified). Skipped when ../shared is absent.
 *
 * Binaries from the environment (ES_INGEST_BIN, ES_GEN_BIN), the server at
 * NATS_URL; skipped without them. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <regex.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/car.h>
#include <es/cid.h>
#include <es/es.h>

#include "children.h"
#include "fixtures.h"
#include "forge.h"
#include "http_standin.h"
#include "record_fold.h"

#define REPOS        6
#define FRAMES       900
#define EARLY_FRAMES 400 /* the PDS's state in the resync cases: after this frame */
#define FIRST_PART   250 /* the resync case's first run: the frames before this */

static const char *ingest_bin, *gen_bin, *server;
static char tmp[64];

/* One generated repository: its DID, CAR, rev and record list. */
typedef struct repo {
    char did[128];
    unsigned char *car;
    size_t car_len;
    char rev[32];
    char *tsv; /* "collection/rkey\tcid\n"... */
    size_t records;
} repo;

static repo repos[REPOS];       /* after the last frame */
static repo early[REPOS];       /* after EARLY_FRAMES, in the order of repos[] */
static size_t nrepos;
static char capture[128], docs[128];
static standin pds;

/* ---- the generated world ------------------------------------------------------- */

static int count_record(const es_atp_record *rec, void *user)
{
    (void)rec;
    (*(size_t *)user)++;
    return 0;
}

static void load_repo(repo *r, const char *dir, const char *car_name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, car_name);
    r->car = read_whole_file(path, &r->car_len);
    assert_non_null(r->car);
    size_t n = strlen(path);
    memcpy(path + n - 4, ".tsv", 5);
    size_t len;
    r->tsv = (char *)read_whole_file(path, &len);
    assert_non_null(r->tsv);
    /* the DID and rev from the CAR's commit */
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_car car;
    es_car_limits lim = {.max_bytes = r->car_len, .max_blocks = r->car_len / 38 + 1};
    assert_int_equal(es_car_parse(r->car, r->car_len, &lim, a, &car), ES_OK);
    es_atp_commit_info info;
    size_t records = 0;
    assert_int_equal(es_atp_walk_repo(&car, a, &info, count_record, &records), ES_OK);
    snprintf(r->did, sizeof r->did, "%s", info.did);
    snprintf(r->rev, sizeof r->rev, "%s", info.rev);
    r->records = records;
    es_arena_destroy(a);
}

/* getRepo of r served as the stand-in answers it: `a` (NULL: the CAR). */
static void serve_repo(const repo *r, const standin_answer *a)
{
    char route[512];
    standin_get_repo_path(r->did, route, sizeof route);
    standin_answer ok = {.status = 200, .body = r->car, .len = r->car_len,
                         .announce = STANDIN_LENGTH_TRUE};
    standin_route_answer(&pds, route, a ? a : &ok);
}

static int setup(void **state)
{
    (void)state;
    if (ingest_bin == NULL || gen_bin == NULL || server == NULL)
        return 0;
    assert_int_equal(standin_start(&pds), 0);
    char dir[128], cmd[1024];
    snprintf(dir, sizeof dir, "%s/repos", tmp);
    snprintf(capture, sizeof capture, "%s/live.bin", tmp);
    snprintf(docs, sizeof docs, "%s/docs.json", tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(cmd, sizeof cmd,
             "'%s' --out '%s' --frames %d --repos %d --seed 5 --repos-out '%s' "
             "--did-docs-out '%s' --pds-url http://127.0.0.1:%d >/dev/null",
             gen_bin, capture, FRAMES, REPOS, dir, docs, pds.port);
    assert_int_equal(system(cmd), 0);
    /* The same world after fewer frames: the capture's prefix, and each
     * repository as it was then. */
    char early_dir[128];
    snprintf(early_dir, sizeof early_dir, "%s/early", tmp);
    assert_int_equal(mkdir(early_dir, 0700), 0);
    snprintf(cmd, sizeof cmd,
             "'%s' --out '%s/early.bin' --frames %d --repos %d --seed 5 --repos-out '%s' "
             "--pds-url http://127.0.0.1:%d >/dev/null",
             gen_bin, tmp, EARLY_FRAMES, REPOS, early_dir, pds.port);
    assert_int_equal(system(cmd), 0);
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".car") == 0) {
            assert_true(nrepos < REPOS);
            load_repo(&repos[nrepos], dir, e->d_name);
            serve_repo(&repos[nrepos], NULL);
            nrepos++;
        }
    }
    closedir(d);
    assert_int_equal(nrepos, REPOS);
    for (size_t i = 0; i < nrepos; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s.car", repos[i].did);
        for (char *c = name; *c; c++)
            *c = *c == ':' ? '_' : *c;
        load_repo(&early[i], early_dir, name);
        assert_string_equal(early[i].did, repos[i].did);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (nrepos > 0)
        standin_stop(&pds);
    for (size_t i = 0; i < nrepos; i++)
        free(repos[i].car), free(repos[i].tsv), free(early[i].car), free(early[i].tsv);
    return 0;
}

/* ---- running and looking ------------------------------------------------------ */

/* es-atproto-ingest with `args` (and `env` before it) into `store`, the DID
 * documents of `did_docs`; its log in <tmp>/<store>.log. */
static int ingest_with(const char *env, const char *did_docs, const char *store, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "%s ES_ATPROTO_TEST_INSECURE_IDENTITY=1 '%s' --server '%s' --store '%s' "
             "--did-docs '%s' --offline --exit-at-end --stats-interval 0 %s >>'%s/%s.log' 2>&1",
             env ? env : "", ingest_bin, server, store, did_docs, args, tmp, store);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* ... with the generated repositories' documents. */
static int ingest(const char *env, const char *store, const char *args)
{
    return ingest_with(env, docs, store, args);
}

/* "--backfill did1,did2,..." of every repository. */
static void all_dids(char *out, size_t size)
{
    size_t at = (size_t)snprintf(out, size, "--backfill ");
    for (size_t i = 0; i < nrepos; i++)
        at += (size_t)snprintf(out + at, size - at, "%s%s", i ? "," : "", repos[i].did);
}

typedef struct conn {
    natsConnection *nc;
    es_store *store;
    es_atp_repos *repos;
} conn;

static void open_store(conn *c, const char *store)
{
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = server;
    assert_int_equal(es_connect(&co, &c->nc), ES_OK);
    assert_int_equal(es_store_open(c->nc, store, NULL, &c->store), ES_OK);
    assert_int_equal(es_atp_repos_open(c->store, &c->repos), ES_OK);
}

/* Closes, and deletes the store with its buckets. */
static void close_store(conn *c, const char *store)
{
    es_atp_repos_destroy(c->repos);
    es_store_destroy(c->store);
    es_store_delete(c->nc, store, NULL);
    es_connection_close(c->nc);
}

/* The store holds exactly r's records and its chain state is r's rev, not
 * desynchronized. Returns the fold (static: the next call overwrites it). */
static const record_fold *assert_records(conn *c, const repo *r)
{
    static record_fold f;
    record_fold_read(c->store, r->did, &f);
    if (f.count != r->records)
        fail_msg("%s: %zu records stored, %zu in the repository", r->did, f.count, r->records);
    for (size_t i = 0; i < f.count; i++) {
        char line[RECORD_FOLD_KEY_MAX + ES_CID_STRING_MAX + 2];
        snprintf(line, sizeof line, "%s\t%s\n", f.keys[i], f.cids[i]);
        if (strstr(r->tsv, line) == NULL)
            fail_msg("%s: stored %s is not in the repository", r->did, f.keys[i]);
    }
    es_atp_repo_state st;
    assert_int_equal(es_atp_repos_get(c->repos, r->did, strlen(r->did), &st), ES_OK);
    assert_string_equal(st.rev, r->rev);
    assert_false(st.desynced);
    return &f;
}

/* The store holds exactly r's records (each once, not live) and its chain
 * state is r's rev. Returns the record events of r (all live=false). */
static size_t assert_repo_stored(conn *c, const repo *r)
{
    const record_fold *f = assert_records(c, r);
    assert_int_equal(f->not_live, f->events); /* every record event came from a backfill */
    return f->events;
}

static void store_name(char *out, size_t size, const char *what)
{
    snprintf(out, size, "bf_%s_%ld", what, (long)getpid());
}

/* ---- the cases ------------------------------------------------------------------- */

static void backfill_then_live(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    char store[64], args[4096];
    store_name(store, sizeof store, "all");
    all_dids(args, sizeof args);
    assert_int_equal(ingest(NULL, store, args), 0);
    conn c;
    open_store(&c, store);
    size_t events[REPOS], total = 0;
    for (size_t i = 0; i < nrepos; i++) {
        events[i] = assert_repo_stored(&c, &repos[i]);
        assert_int_equal(events[i], repos[i].records); /* one create each, nothing else */
        total += repos[i].records;
    }
    /* The live capture is older than every repository: no record event more. */
    char live[512];
    snprintf(live, sizeof live, "--from-file '%s' --name live", capture);
    assert_int_equal(ingest(NULL, store, live), 0);
    for (size_t i = 0; i < nrepos; i++)
        assert_int_equal(assert_repo_stored(&c, &repos[i]), events[i]);
    close_store(&c, store);
    printf("  %zu repositories, %zu records backfilled; the live capture after them added no "
           "record event\n",
           nrepos, total);
}

static void failures_then_recovery(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    standin_answer broken = {.status = 500, .body = "oops", .len = 4,
                             .announce = STANDIN_LENGTH_TRUE};
    const char *missing_body = "{\"error\":\"RepoNotFound\",\"message\":\"no such repo\"}";
    standin_answer missing = {.status = 400, .body = missing_body, .len = strlen(missing_body),
                              .announce = STANDIN_LENGTH_TRUE};
    serve_repo(&repos[0], &broken);
    serve_repo(&repos[1], &missing);
    char store[64], args[4096];
    store_name(store, sizeof store, "fail");
    all_dids(args, sizeof args);
    strcat(args, " --backfill-attempts 2 --backfill-retry-min 10ms --backfill-retry-max 20ms");
    assert_int_equal(ingest(NULL, store, args), 6);
    conn c;
    open_store(&c, store);
    es_atp_repo_state st;
    assert_int_equal(es_atp_repos_get(c.repos, repos[0].did, strlen(repos[0].did), &st), ES_OK);
    assert_true(st.desynced);
    assert_string_equal(st.reason, "fetch");
    assert_int_equal(es_atp_repos_get(c.repos, repos[1].did, strlen(repos[1].did), &st), ES_OK);
    assert_true(st.desynced);
    assert_string_equal(st.reason, "not_found");
    for (size_t i = 2; i < nrepos; i++)
        assert_repo_stored(&c, &repos[i]);

    /* The PDS serves them again: --resync-desynced fetches those two only. */
    serve_repo(&repos[0], NULL);
    serve_repo(&repos[1], NULL);
    unsigned before = standin_requests(&pds);
    assert_int_equal(ingest(NULL, store, "--resync-desynced"), 0);
    assert_int_equal(standin_requests(&pds) - before, 2);
    for (size_t i = 0; i < nrepos; i++)
        assert_int_equal(assert_repo_stored(&c, &repos[i]), repos[i].records);
    close_store(&c, store);
}

static void killed_mid_backfill(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    char store[64], args[4096];
    store_name(store, sizeof store, "kill");
    all_dids(args, sizeof args);
    strcat(args, " --backfill-parallelism 1");
    int rc = ingest("ES_INGEST_TEST_RESYNC_BATCH=7 ES_INGEST_TEST_EXIT_AFTER_BATCHES=5", store,
                    args);
    assert_int_equal(rc, 99);
    rc = ingest("ES_INGEST_TEST_RESYNC_BATCH=7", store, args);
    assert_int_equal(rc, 0);
    conn c;
    open_store(&c, store);
    for (size_t i = 0; i < nrepos; i++) /* no record event twice */
        assert_int_equal(assert_repo_stored(&c, &repos[i]), repos[i].records);
    close_store(&c, store);
}

/* The real repo.car: a DID document for its author naming the stand-in as
 * its PDS, with a key that is not the author's (another account's of the
 * corpus: the real one is unknown offline). */
static void write_corpus_doc(const char *did, const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"%s\": {\"id\": \"%s\", \"verificationMethod\": [{\"id\": \"%s#atproto\", "
            "\"type\": \"Multikey\", \"controller\": \"%s\", \"publicKeyMultibase\": "
            "\"zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj\"}], \"service\": [{\"id\": "
            "\"#atproto_pds\", \"type\": \"AtprotoPersonalDataServer\", \"serviceEndpoint\": "
            "\"http://127.0.0.1:%d\"}]}}\n",
            did, did, did, did, pds.port);
    assert_int_equal(fclose(f), 0);
}

static void real_repo_car(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    corpus_repo cr;
    if (!corpus_repo_load(&cr)) {
        printf("SKIP: the real repo.car needs ../shared/fixtures/firehose-corpus\n");
        skip();
    }
    repo r = {.car = cr.car, .car_len = cr.car_len};
    snprintf(r.did, sizeof r.did, "%s", cr.did);
    snprintf(r.rev, sizeof r.rev, "%s", cr.rev);
    serve_repo(&r, NULL);
    char doc[128], store[64], args[256];
    snprintf(doc, sizeof doc, "%s/corpus-doc.json", tmp);
    write_corpus_doc(r.did, doc);
    store_name(store, sizeof store, "car");
    snprintf(args, sizeof args, "--backfill %s --backfill-attempts 1", r.did);

    /* the signature is checked: with a key that is not the author's, refused */
    assert_int_equal(ingest_with(NULL, doc, store, args), 6);
    conn c;
    open_store(&c, store);
    es_atp_repo_state st;
    assert_int_equal(es_atp_repos_get(c.repos, r.did, strlen(r.did), &st), ES_OK);
    assert_true(st.desynced);
    assert_string_equal(st.reason, "signature");
    static record_fold f;
    record_fold_read(c.store, r.did, &f);
    assert_int_equal(f.events, 0);

    /* that check alone off: exactly the records of car_expected_records.tsv */
    assert_int_equal(ingest_with("ES_INGEST_TEST_SKIP_REPO_SIGNATURE=1", doc, store, args), 0);
    record_fold_read(c.store, r.did, &f);
    record_fold_assert_tsv(&f, (const char *)cr.tsv);
    assert_int_equal(f.events, f.count); /* one create each */
    assert_int_equal(f.not_live, f.events);
    assert_int_equal(es_atp_repos_get(c.repos, r.did, strlen(r.did), &st), ES_OK);
    assert_string_equal(st.rev, r.rev);
    assert_false(st.desynced);
    close_store(&c, store);
    printf("  repo.car of %s: %zu records stored, equal to car_expected_records.tsv\n", r.did,
           f.count);
    corpus_repo_free(&cr);
}

/* listRepos in two pages: every repository, and one taken down. */
static void serve_listing(void)
{
    char page[8192];
    const char *head = "bafyreia3zwwmogntyn7zhsr6kyzvelma2l77axbldfja6jwcqbjq5e5tj4";
    for (int p = 0; p < 2; p++) {
        size_t at = (size_t)snprintf(page, sizeof page, "{%s\"repos\":[",
                                     p == 0 ? "\"cursor\":\"page2\"," : "");
        for (size_t i = p == 0 ? 0 : 3; i < (p == 0 ? 3 : nrepos); i++)
            at += (size_t)snprintf(page + at, sizeof page - at,
                                   "%s{\"did\":\"%s\",\"head\":\"%s\",\"rev\":\"%s\","
                                   "\"active\":true}",
                                   i == (p == 0 ? 0 : 3) ? "" : ",", repos[i].did, head,
                                   repos[i].rev);
        if (p == 1)
            at += (size_t)snprintf(page + at, sizeof page - at,
                                   ",{\"did\":\"did:plc:takendownaaaaaaaaaaaaaaa\",\"head\":"
                                   "\"%s\",\"rev\":\"3lbaaaaaaaa22\",\"active\":false,"
                                   "\"status\":\"takendown\"}",
                                   head);
        snprintf(page + at, sizeof page - at, "]}");
        standin_route_set(&pds,
                          p == 0 ? "/xrpc/com.atproto.sync.listRepos?limit=1000"
                                 : "/xrpc/com.atproto.sync.listRepos?limit=1000&cursor=page2",
                          200, page, 0);
    }
    char by[1024];
    snprintf(by, sizeof by, "{\"repos\":[{\"did\":\"%s\"},{\"did\":\"%s\"}]}",
             repos[2].did, repos[4].did);
    standin_route_set(&pds,
                      "/xrpc/com.atproto.sync.listReposByCollection?collection=app.bsky.feed.post"
                      "&limit=1000",
                      200, by, 0);
}

static void backfill_all_lists_the_host(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    serve_listing();
    char store[64], args[512];
    store_name(store, sizeof store, "list");
    snprintf(args, sizeof args, "--backfill-all --backfill-host http://127.0.0.1:%d", pds.port);
    assert_int_equal(ingest(NULL, store, args), 0);
    conn c;
    open_store(&c, store);
    for (size_t i = 0; i < nrepos; i++)
        assert_repo_stored(&c, &repos[i]);
    es_atp_repo_state st;
    const char *gone = "did:plc:takendownaaaaaaaaaaaaaaa";
    assert_int_equal(es_atp_repos_get(c.repos, gone, strlen(gone), &st), ES_OK);
    assert_string_equal(st.status, "takendown");
    /* Listed again: every rev is the store's, nothing is fetched. */
    unsigned before = standin_requests(&pds);
    assert_int_equal(ingest(NULL, store, args), 0);
    assert_int_equal(standin_requests(&pds) - before, 2); /* the two pages */
    close_store(&c, store);

    /* The collection signal: only the repositories listed for it. */
    store_name(store, sizeof store, "signal");
    snprintf(args, sizeof args,
             "--collection-signal app.bsky.feed.post --backfill-host http://127.0.0.1:%d",
             pds.port);
    assert_int_equal(ingest(NULL, store, args), 0);
    open_store(&c, store);
    for (size_t i = 0; i < nrepos; i++) {
        if (i == 2 || i == 4)
            assert_repo_stored(&c, &repos[i]);
        else
            assert_int_equal(es_atp_repos_get(c.repos, repos[i].did, strlen(repos[i].did), &st),
                             ES_ERR_NOT_FOUND);
    }
    close_store(&c, store);
}


/* ---- live resync ------------------------------------------------------------------ */

#define CAPTURE_MAX (FRAMES + 8)

static sample frames[CAPTURE_MAX];
static size_t nframes;

/* The capture's frames, copied. */
static void load_capture(void)
{
    if (nframes > 0)
        return;
    es_atp_capture *cap = NULL;
    assert_int_equal(es_atp_capture_open(capture, 0, &cap), ES_OK);
    const uint8_t *f;
    size_t len;
    while (es_atp_capture_next(cap, &f, &len) == ES_OK) {
        assert_true(nframes < CAPTURE_MAX);
        frames[nframes].bytes = malloc(len);
        assert_non_null(frames[nframes].bytes);
        memcpy(frames[nframes].bytes, f, len);
        frames[nframes++].len = len;
    }
    es_atp_capture_close(cap);
    assert_int_equal(nframes, FRAMES);
}

/* A frame's kind and DID, decoded without verification. */
static es_atp_kind frame_did(const sample *f, char *did, size_t size)
{
    es_atp_options o = {.filter = NULL};
    es_atp_limits_defaults(&o.limits);
    es_atp_decoder *dec = NULL;
    es_arena *a = NULL;
    assert_int_equal(es_atp_decoder_create(&o, &dec), ES_OK);
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_atp_batch b;
    assert_int_equal(es_atp_decode(dec, f->bytes, f->len, a, &b), ES_OK);
    snprintf(did, size, "%.*s", (int)(b.did ? b.did_len : 0), b.did ? b.did : "");
    es_atp_kind k = b.kind;
    es_arena_destroy(a);
    es_atp_decoder_destroy(dec);
    return k;
}

static void write_capture(const char *path, const sample *list, size_t n)
{
    es_atp_capture_writer *w = NULL;
    assert_int_equal(es_atp_capture_create(path, 0, &w), ES_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(es_atp_capture_write(w, list[i].bytes, list[i].len), ES_OK);
    assert_int_equal(es_atp_capture_finish(w), ES_OK);
}

/* The PDS serves every repository as it was after EARLY_FRAMES. */
static void serve_early(void)
{
    for (size_t i = 0; i < nrepos; i++) {
        standin_answer a = {.status = 200, .body = early[i].car, .len = early[i].car_len,
                            .announce = STANDIN_LENGTH_TRUE};
        serve_repo(&repos[i], &a);
    }
}

static void serve_final(void)
{
    for (size_t i = 0; i < nrepos; i++)
        serve_repo(&repos[i], NULL);
}

/* A repository's record events in stream order: live or not, and rev. */
typedef struct history {
    size_t n;
    bool live[4 * RECORD_FOLD_MAX];
    char rev[4 * RECORD_FOLD_MAX][16];
} history;

static es_status history_event(const es_event *ev, void *closure)
{
    history *h = closure;
    if (strcmp(es_event_entity_type(ev), "repo") == 0)
        return ES_OK;
    const char *live = es_event_meta(ev, "live"), *rev = es_event_meta(ev, "rev");
    assert_true(h->n < 4 * RECORD_FOLD_MAX);
    assert_non_null(rev);
    h->live[h->n] = live == NULL || strcmp(live, "false") != 0;
    snprintf(h->rev[h->n], sizeof h->rev[0], "%s", rev);
    h->n++;
    return ES_OK;
}

/* Per repository, nothing live before the history it follows: the events
 * are live ones older than the snapshot (stored before the resync), then
 * the snapshot's (not live), then live ones newer than `snapshot_rev`, in
 * rev order. Returns how many live events follow the snapshot. */
static size_t assert_history_first(conn *c, const char *did, const char *snapshot_rev,
                                   bool live_before_allowed)
{
    static history h;
    memset(&h, 0, sizeof h);
    es_filter flt;
    es_filter_init(&flt);
    flt.entity_id = did;
    assert_int_equal(es_evolve(c->store, &flt, NULL, history_event, &h, NULL), ES_OK);
    size_t i = 0, snapshot = 0, after = 0;
    while (i < h.n && h.live[i]) {
        assert_true(live_before_allowed);
        assert_true(strcmp(h.rev[i], snapshot_rev) <= 0);
        i++;
    }
    for (; i < h.n && !h.live[i]; i++, snapshot++)
        assert_string_equal(h.rev[i], snapshot_rev);
    assert_true(snapshot > 0);
    for (const char *prev = snapshot_rev; i < h.n; i++, after++) {
        if (!h.live[i])
            fail_msg("%s: an event of a second snapshot after live ones", did);
        assert_true(strcmp(h.rev[i], prev) >= 0);
        assert_true(strcmp(h.rev[i], snapshot_rev) > 0);
        prev = h.rev[i];
    }
    return after;
}

static const repo *repo_of(const char *did, const repo *set)
{
    for (size_t i = 0; i < nrepos; i++)
        if (strcmp(set[i].did, did) == 0)
            return &set[i];
    fail_msg("no repository %s", did);
    return NULL;
}

static size_t log_count(const char *store, const char *needle)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.log", tmp, store);
    size_t len;
    char *text = (char *)read_whole_file(path, &len);
    assert_non_null(text);
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

/* Writes part1 (frames before FIRST_PART) and part2 (the rest, the first
 * commit among them forged: a signature that does not verify); the forged
 * commit's DID into `did`, its index returned. */
static size_t split_with_forgery(char *part1, char *part2, size_t size, char *did, size_t did_size)
{
    load_capture();
    size_t forged_at = FIRST_PART;
    while (frame_did(&frames[forged_at], did, did_size) != ES_ATP_KIND_COMMIT)
        forged_at++;
    assert_true(forged_at < EARLY_FRAMES); /* the PDS's snapshot covers it */
    uint8_t sig[64];
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (uint8_t)(i * 37 + 11);
    sig[32] = 0x10;
    sample forged = with_signature(&frames[forged_at], sig, sizeof sig);
    sample original = frames[forged_at];
    frames[forged_at] = forged;
    snprintf(part1, size, "%s/part1.bin", tmp);
    snprintf(part2, size, "%s/part2.bin", tmp);
    write_capture(part1, frames, FIRST_PART);
    write_capture(part2, frames + FIRST_PART, FRAMES - FIRST_PART);
    frames[forged_at] = original;
    free(forged.bytes);
    return forged_at;
}

/* Every repository ends as the PDS has it now; the victim's events are
 * history first; the others were never resynced. Returns the victim's
 * live record events after its snapshot. */
static size_t assert_resynced(const char *store, const char *did)
{
    conn c;
    open_store(&c, store);
    for (size_t i = 0; i < nrepos; i++) {
        const record_fold *f = assert_records(&c, &repos[i]);
        if (strcmp(repos[i].did, did) != 0)
            assert_int_equal(f->not_live, 0);
    }
    size_t after = assert_history_first(&c, did, repo_of(did, early)->rev, true);
    assert_true(after > 0); /* live commits newer than the snapshot came, and were kept */
    close_store(&c, store);
    return after;
}

static void forged_commit_is_resynced(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    char did[128] = "", part1[128], part2[128];
    size_t forged_at = split_with_forgery(part1, part2, sizeof part1, did, sizeof did);
    serve_early();
    char store[64], args[512];
    store_name(store, sizeof store, "resync");
    snprintf(args, sizeof args, "--from-file '%s' --name live", part1);
    assert_int_equal(ingest(NULL, store, args), 0);
    unsigned before = standin_requests(&pds);
    snprintf(args, sizeof args, "--from-file '%s' --name live", part2);
    assert_int_equal(ingest(NULL, store, args), 0);
    assert_int_equal(standin_requests(&pds) - before, 1); /* the victim only */
    assert_int_equal(log_count(store, "frame refused"), 1);
    assert_int_equal(log_count(store, "repository backfilled"), 1);
    size_t after = assert_resynced(store, did);
    serve_final();
    printf("  forged commit at frame %zu: %s resynced from the PDS's snapshot, then %zu live "
           "record events newer than it\n",
           forged_at, did, after);
}

/* Killed in the middle of the snapshot (frames held, the cursor before
 * them): the next run replays them, resyncs again (resuming the snapshot)
 * and ends the same — nothing lost, no record event twice. */
static void killed_mid_resync(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    char did[128] = "", part1[128], part2[128];
    split_with_forgery(part1, part2, sizeof part1, did, sizeof did);
    serve_early();
    char store[64], args[512];
    store_name(store, sizeof store, "resynckill");
    snprintf(args, sizeof args, "--from-file '%s' --name live", part1);
    assert_int_equal(ingest(NULL, store, args), 0);
    snprintf(args, sizeof args, "--from-file '%s' --name live", part2);
    assert_int_equal(
        ingest("ES_INGEST_TEST_RESYNC_BATCH=5 ES_INGEST_TEST_EXIT_AFTER_BATCHES=3", store, args),
        99);
    assert_int_equal(ingest("ES_INGEST_TEST_RESYNC_BATCH=5", store, args), 0);
    assert_int_equal(log_count(store, "repository backfilled"), 1); /* the second run's */
    assert_resynced(store, did);
    serve_final();
}

static void backfill_beside_a_live_source(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    serve_early();
    const repo *r = &repos[1];
    char store[64], args[1024];
    store_name(store, sizeof store, "beside");
    snprintf(args, sizeof args, "--from-file '%s' --backfill %s", capture, r->did);
    assert_int_equal(ingest(NULL, store, args), 0);
    conn c;
    open_store(&c, store);
    for (size_t i = 0; i < nrepos; i++)
        assert_records(&c, &repos[i]);
    /* its history first, though its live frames came from the start */
    size_t after = assert_history_first(&c, r->did, repo_of(r->did, early)->rev, false);
    assert_true(after > 0);
    close_store(&c, store);
    serve_final();
}

/* --backfill-all beside a live source (the listing on its own thread): every
 * repository ends exact, no record event twice, whichever came first — a
 * repository is held only from the moment it is listed, so its live events
 * may precede its snapshot (then the snapshot is older: nothing applied),
 * or follow it. */
static void listing_beside_a_live_source(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    serve_early();
    serve_listing();
    char store[64], args[1024];
    store_name(store, sizeof store, "listlive");
    snprintf(args, sizeof args, "--from-file '%s' --backfill-all --backfill-host http://127.0.0.1:%d",
             capture, pds.port);
    assert_int_equal(ingest(NULL, store, args), 0);
    conn c;
    open_store(&c, store);
    for (size_t i = 0; i < nrepos; i++)
        assert_records(&c, &repos[i]);
    es_atp_repo_state st;
    const char *gone = "did:plc:takendownaaaaaaaaaaaaaaa";
    assert_int_equal(es_atp_repos_get(c.repos, gone, strlen(gone), &st), ES_OK);
    assert_string_equal(st.status, "takendown");
    close_store(&c, store);
    assert_int_equal(log_count(store, "repository not backfilled"), 0);
    serve_final();
}

/* --require-backfill: each repository the store does not know is
 * backfilled at its first frame, its frames held meanwhile — every one's
 * history first, then its live events newer than the snapshot. */
static void require_backfill_holds_unknown_repositories(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    serve_early();
    char store[64], args[1024];
    store_name(store, sizeof store, "require");
    snprintf(args, sizeof args, "--from-file '%s' --require-backfill", capture);
    unsigned before = standin_requests(&pds);
    assert_int_equal(ingest(NULL, store, args), 0);
    assert_int_equal(standin_requests(&pds) - before, nrepos); /* one getRepo each */
    conn c;
    open_store(&c, store);
    for (size_t i = 0; i < nrepos; i++) {
        assert_records(&c, &repos[i]);
        assert_true(assert_history_first(&c, repos[i].did, early[i].rev, false) > 0);
    }
    close_store(&c, store);
    serve_final();
}


/* GET http://127.0.0.1:port/path: the body (malloc'ed), the status in *status. */
static char *http_get(int port, const char *path, int *status)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (ssize_t r; len < cap && (r = read(fd, buf + len, cap - len)) > 0;)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", status), 1);
    char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

/* Every line of `text` is Prometheus' exposition format (0.0.4): HELP,
 * TYPE, or a sample; returns the value of sample `name` (-1: absent). */
static double prom_check(const char *text, const char *name)
{
    regex_t line_re, comment;
    assert_int_equal(regcomp(&line_re,
                             "^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|"
                             "\\\\.)*\"\\})? -?[0-9][0-9.e+-]*$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regcomp(&comment, "^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE "
                                       "[a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge))$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    double value = -1;
    size_t lines = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends */
        char one[512];
        snprintf(one, sizeof one, "%.*s", (int)(nl - line), line);
        if (regexec(one[0] == '#' ? &comment : &line_re, one, 0, NULL, 0) != 0)
            fail_msg("not the exposition format: '%s'", one);
        size_t n = strlen(name);
        if (strncmp(one, name, n) == 0 && one[n] == ' ')
            value = strtod(one + n + 1, NULL);
        lines++;
        line = nl + 1;
    }
    assert_true(lines > 20);
    regfree(&line_re);
    regfree(&comment);
    return value;
}

/* `es-atproto-ingest repos add|remove` on `store`. */
static void repos_edit(const char *store, const char *verb, const char *did)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' repos %s %s --server '%s' --store '%s' >>'%s/%s.log' 2>&1",
             ingest_bin, verb, did, server, store, tmp, store);
    assert_int_equal(system(cmd), 0);
}

/* --tracked-only: two tracked repositories are backfilled (history first)
 * and stored live, the others not at all; a third added while the ingester
 * runs is backfilled without a restart. */
static void tracked_only_follows_the_set(void **state)
{
    (void)state;
    if (nrepos == 0)
        skip();
    serve_early();
    char store[64], cmd[2048];
    store_name(store, sizeof store, "tracked");
    { /* the set is edited before the ingester ever ran: the store must exist */
        es_connect_options co;
        es_connect_options_init(&co);
        co.servers = server;
        natsConnection *nc;
        es_store *st = NULL;
        assert_int_equal(es_connect(&co, &nc), ES_OK);
        assert_int_equal(es_store_create(nc, store, NULL, NULL, &st), ES_OK);
        es_store_destroy(st);
        es_connection_close(nc);
    }
    repos_edit(store, "add", repos[0].did);
    repos_edit(store, "add", repos[3].did);
    char pidfile[128];
    snprintf(pidfile, sizeof pidfile, "%s/tracked.pid", tmp);
    int metrics_port = children_free_port();
    /* no --exit-at-end: after the capture it waits for a signal, following the set */
    snprintf(cmd, sizeof cmd,
             "ES_ATPROTO_TEST_INSECURE_IDENTITY=1 '%s' --server '%s' --store '%s' --did-docs '%s' "
             "--offline --stats-interval 0 --from-file '%s' --tracked-only "
             "--metrics-listen 127.0.0.1:%d >>'%s/%s.log' 2>&1 & echo $! >'%s'",
             ingest_bin, server, store, docs, capture, metrics_port, tmp, store, pidfile);
    assert_int_equal(system(cmd), 0);
    size_t len;
    char *pid_text = (char *)read_whole_file(pidfile, &len);
    assert_non_null(pid_text);
    pid_t pid = (pid_t)atol(pid_text);
    free(pid_text);
    conn c;
    open_store(&c, store);
    es_atp_repo_state st;
    /* the capture is in once the tracked ones are at their final revs */
    for (int i = 0; i < 600; i++) {
        if (es_atp_repos_get(c.repos, repos[0].did, strlen(repos[0].did), &st) == ES_OK &&
            strcmp(st.rev, repos[0].rev) == 0 &&
            es_atp_repos_get(c.repos, repos[3].did, strlen(repos[3].did), &st) == ES_OK &&
            strcmp(st.rev, repos[3].rev) == 0)
            break;
        usleep(50 * 1000);
    }
    /* added while it runs: backfilled (the PDS's state), nothing live came after */
    repos_edit(store, "add", repos[1].did);
    bool backfilled = false;
    for (int i = 0; i < 600 && !backfilled; i++) {
        backfilled = es_atp_repos_get(c.repos, repos[1].did, strlen(repos[1].did), &st) == ES_OK &&
                     strcmp(st.rev, early[1].rev) == 0;
        if (!backfilled)
            usleep(50 * 1000);
    }
    /* its metrics, while it runs (rendered every second) */
    usleep(1200 * 1000);
    int status = 0;
    char *text = http_get(metrics_port, "/metrics", &status);
    assert_int_equal(status, 200);
    assert_true(prom_check(text, "es_ingest_frames_total{kind=\"commit\"}") > 0);
    assert_true(prom_check(text, "es_ingest_events_total") > 0);
    assert_true(prom_check(text, "es_ingest_skipped_untracked_total") > 0);
    assert_int_equal((int)prom_check(text, "es_ingest_tracked_repos"), 3);
    assert_true(prom_check(text, "es_ingest_resyncs_total{outcome=\"applied\"}") >= 3);
    free(text);
    text = http_get(metrics_port, "/nothing", &status);
    assert_int_equal(status, 404);
    free(text);
    kill(pid, SIGTERM);
    for (int i = 0; i < 600 && kill(pid, 0) == 0; i++)
        usleep(50 * 1000);
    assert_int_not_equal(kill(pid, 0), 0);
    assert_true(backfilled);
    assert_records(&c, &repos[0]);
    assert_records(&c, &repos[3]);
    assert_true(assert_history_first(&c, repos[0].did, early[0].rev, false) > 0);
    assert_true(assert_history_first(&c, repos[3].did, early[3].rev, false) > 0);
    assert_records(&c, &early[1]);
    for (size_t i = 0; i < nrepos; i++) {
        if (i == 0 || i == 1 || i == 3)
            continue;
        static record_fold f;
        record_fold_read(c.store, repos[i].did, &f);
        assert_int_equal(f.events, 0); /* not tracked: nothing stored */
    }
    close_store(&c, store);
    serve_final();
}

int main(void)
{
    ingest_bin = getenv("ES_INGEST_BIN");
    gen_bin = getenv("ES_GEN_BIN");
    server = getenv("NATS_URL");
    if (ingest_bin == NULL || gen_bin == NULL || server == NULL)
        printf("SKIP: ES_INGEST_BIN, ES_GEN_BIN and NATS_URL are needed\n");
    snprintf(tmp, sizeof tmp, "/tmp/es-ingest-bf-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backfill_then_live),
        cmocka_unit_test(failures_then_recovery),
        cmocka_unit_test(killed_mid_backfill),
        cmocka_unit_test(backfill_all_lists_the_host),
        cmocka_unit_test(forged_commit_is_resynced),
        cmocka_unit_test(killed_mid_resync),
        cmocka_unit_test(backfill_beside_a_live_source),
        cmocka_unit_test(listing_beside_a_live_source),
        cmocka_unit_test(require_backfill_holds_unknown_repositories),
        cmocka_unit_test(tracked_only_follows_the_set),
        cmocka_unit_test(real_repo_car),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    for (size_t i = 0; i < nframes; i++)
        free(frames[i].bytes);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return failed;
}
