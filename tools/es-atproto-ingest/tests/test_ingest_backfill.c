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

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/car.h>
#include <es/cid.h>
#include <es/es.h>

#include "fixtures.h"
#include "http_standin.h"
#include "record_fold.h"

#define REPOS 6

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

static repo repos[REPOS];
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
             "'%s' --out '%s' --frames 900 --repos %d --seed 5 --repos-out '%s' "
             "--did-docs-out '%s' --pds-url http://127.0.0.1:%d >/dev/null",
             gen_bin, capture, REPOS, dir, docs, pds.port);
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
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (nrepos > 0)
        standin_stop(&pds);
    for (size_t i = 0; i < nrepos; i++)
        free(repos[i].car), free(repos[i].tsv);
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

/* The store holds exactly r's records (each once, not live) and its chain
 * state is r's rev. Returns the record events of r (all live=false). */
static size_t assert_repo_stored(conn *c, const repo *r)
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
    assert_int_equal(f.not_live, f.events); /* every record event came from a backfill */
    es_atp_repo_state st;
    assert_int_equal(es_atp_repos_get(c->repos, r->did, strlen(r->did), &st), ES_OK);
    assert_string_equal(st.rev, r->rev);
    assert_false(st.desynced);
    return f.events;
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
        cmocka_unit_test(real_repo_car),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return failed;
}
