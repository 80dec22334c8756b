/* The XRPC client (es/atproto_xrpc.h) against a PDS stand-in on loopback
 * (http_standin.h): getRepo streamed, buffered and into a temporary file
 * (the real repo.car walked from it), every outcome (RepoNotFound,
 * takedowns, 429/503 with Retry-After, 5xx, every Nth request failing, a
 * body cut short, a stall past the timeout), the size bound enforced while
 * receiving, URL-encoding of hostile parameters, listRepos over three pages
 * and listReposByCollection, malformed pages, service URL checks and the SSRF
 * guard, and the PDS endpoint of DID documents (good, missing, hostile). */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include <es/atproto_xrpc.h>

#include "../src/atp_internal.h"
#include "fixtures.h"
#include "http_standin.h"

#define DID      "did:plc:abc234"
#define GET_REPO "/xrpc/com.atproto.sync.getRepo?did=did%3Aplc%3Aabc234"

typedef struct fixture {
    standin http;
    char url[64]; /* http://127.0.0.1:<port> */
    es_atp_xrpc *x;
} fixture;

/* The defaults, plain http allowed (the stand-in). */
static es_atp_xrpc_options test_options(void)
{
    es_atp_xrpc_options o;
    es_atp_xrpc_options_init(&o);
    o.allow_insecure = true;
    return o;
}

static es_atp_xrpc *create(const es_atp_xrpc_options *o)
{
    es_atp_xrpc *x = NULL;
    assert_int_equal(es_atp_xrpc_create(o, &x), ES_OK);
    return x;
}

static es_atp_xrpc *client(int64_t timeout_ms, uint64_t max_repo_bytes)
{
    es_atp_xrpc_options o = test_options();
    o.timeout_ms = timeout_ms;
    o.max_repo_bytes = max_repo_bytes;
    return create(&o);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (standin_start(&f->http) != 0)
        return -1;
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->http.port);
    f->x = client(2000, 1 << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    es_atp_xrpc_destroy(f->x);
    standin_stop(&f->http);
    free(f);
    return 0;
}

/* A binary body (NUL bytes and all) of `len` bytes. */
static uint8_t *pattern(size_t len)
{
    uint8_t *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 131 + (i >> 9));
    return b;
}

static void serve(fixture *f, const char *path, int status, const void *body, size_t len,
                  const char *headers)
{
    standin_answer a = {status, body, len, 0, headers, STANDIN_LENGTH_TRUE, 0};
    standin_route_answer(&f->http, path, &a);
}

/* Collects the chunks of a streamed body, up to a bound. */
typedef struct collector {
    uint8_t *buf;
    size_t len, cap, calls;
} collector;

static es_status collect(void *ctx, const uint8_t *data, size_t len)
{
    collector *c = ctx;
    c->calls++;
    if (len > c->cap - c->len)
        return es_error(ES_ERR_LIMIT, "collector full");
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return ES_OK;
}

static void expect(es_status got, es_status want)
{
    if (got != want)
        fail_msg("%s, wanted %s (%s)", es_status_text(got), es_status_text(want), es_last_error());
}

static void expect_text(const char *text)
{
    if (strstr(es_last_error(), text) == NULL)
        fail_msg("error text '%s' lacks '%s'", es_last_error(), text);
}

/* ---- getRepo ---------------------------------------------------------------- */

/* The same binary body streamed, buffered and into an unlinked file. */
static void get_repo_three_ways(void **state)
{
    fixture *f = *state;
    size_t n = 300000;
    uint8_t *body = pattern(n);
    serve(f, GET_REPO, 200, body, n, NULL);
    es_atp_xrpc_result res;
    collector c = {malloc(n), 0, n, 0};
    expect(es_atp_xrpc_get_repo(f->x, f->url, DID, strlen(DID), collect, &c, &res), ES_OK);
    assert_int_equal(c.len, n);
    assert_memory_equal(c.buf, body, n);
    assert_true(c.calls > 1); /* streamed: more than one chunk */
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.bytes, n);
    assert_int_equal(res.retry_after_ms, -1);
    assert_null(res.repo_status);

    memset(c.buf, 0, n);
    size_t len = 0;
    expect(es_atp_xrpc_get_repo_buf(f->x, f->url, DID, strlen(DID), c.buf, n, &len, &res), ES_OK);
    assert_int_equal(len, n);
    assert_memory_equal(c.buf, body, n);

    int fd = -1;
    uint64_t size = 0;
    expect(es_atp_xrpc_get_repo_file(f->x, f->url, DID, strlen(DID), NULL, &fd, &size, &res),
           ES_OK);
    assert_int_equal(size, n);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, (off_t)n);
    assert_int_equal(st.st_nlink, 0); /* unlinked: nothing left behind */
    memset(c.buf, 0, n);
    assert_int_equal(read(fd, c.buf, n), (ssize_t)n); /* from offset 0 */
    assert_memory_equal(c.buf, body, n);
    close(fd);
    assert_int_equal(standin_requests(&f->http), 3);
    free(c.buf);
    free(body);
}

static int count_record(const es_atp_record *rec, void *user)
{
    (void)rec;
    (*(size_t *)user)++;
    return 0;
}

/* The real repo.car of the corpus, served as a PDS would, fetched into a
 * temporary file, mapped and walked: every record of car_expected_records.tsv. */
static void real_repo_through_file(void **state)
{
    fixture *f = *state;
    const char *path = fixture_path("firehose-corpus/repo.car");
    if (path == NULL)
        skip();
    size_t n = 0;
    unsigned char *car = read_whole_file(path, &n);
    assert_non_null(car);
    const char *did = "did:plc:53iucmf5ldftgqyf2ac7hmhd";
    serve(f, "/xrpc/com.atproto.sync.getRepo?did=did%3Aplc%3A53iucmf5ldftgqyf2ac7hmhd", 200, car, n,
          NULL);
    int fd = -1;
    uint64_t size = 0;
    expect(es_atp_xrpc_get_repo_file(f->x, f->url, did, strlen(did), NULL, &fd, &size, NULL),
           ES_OK);
    assert_int_equal(size, n);
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    assert_true(map != MAP_FAILED);
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_car parsed;
    assert_int_equal(es_car_parse(map, size, NULL, arena, &parsed), ES_OK);
    es_atp_commit_info commit;
    size_t records = 0;
    assert_int_equal(es_atp_walk_repo(&parsed, arena, &commit, count_record, &records), ES_OK);
    assert_string_equal(commit.did, did);
    assert_string_equal(commit.rev, "3migo7fijwi2k");
    assert_int_equal(records, 23); /* the lines of car_expected_records.tsv */
    es_arena_destroy(arena);
    munmap(map, size);
    close(fd);
    free(car);
}

/* RepoNotFound (as 404, and as the 400 the reference PDS sends) is
 * ES_ERR_NOT_FOUND; takedown, suspension, deactivation ES_ERR_PERMISSION with
 * the status to record; the body never reaches the callback. */
static void repo_refusals(void **state)
{
    fixture *f = *state;
    static const struct {
        int http;
        const char *error;
        es_status want;
        const char *repo_status;
    } cases[] = {
        {404, "RepoNotFound", ES_ERR_NOT_FOUND, NULL},
        {400, "RepoNotFound", ES_ERR_NOT_FOUND, NULL},
        {404, "", ES_ERR_NOT_FOUND, NULL}, /* no XRPC body: the status says it */
        {400, "RepoTakendown", ES_ERR_PERMISSION, "takendown"},
        {400, "RepoSuspended", ES_ERR_PERMISSION, "suspended"},
        {400, "RepoDeactivated", ES_ERR_PERMISSION, "deactivated"},
        {400, "InvalidRequest", ES_ERR_PROTOCOL, NULL},
        {302, "", ES_ERR_PROTOCOL, NULL}, /* redirects are not followed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        if (cases[i].error[0] != '\0')
            snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"Repo\\nis %s\"}",
                     cases[i].error, cases[i].error);
        else
            snprintf(body, sizeof body, "not json");
        serve(f, GET_REPO, cases[i].http, body, strlen(body), NULL);
        es_atp_xrpc_result res;
        collector c = {malloc(1024), 0, 1024, 0};
        expect(es_atp_xrpc_get_repo(f->x, f->url, DID, strlen(DID), collect, &c, &res),
               cases[i].want);
        assert_int_equal(c.calls, 0);
        assert_int_equal(res.http_status, cases[i].http);
        assert_string_equal(res.error, cases[i].error);
        if (cases[i].repo_status != NULL)
            assert_string_equal(res.repo_status, cases[i].repo_status);
        else
            assert_null(res.repo_status);
        if (cases[i].error[0] != '\0') {
            assert_non_null(strstr(res.message, "Repo?is")); /* control bytes masked */
            expect_text(cases[i].error);
        }
        free(c.buf);
    }
}

/* 429 and 503 are ES_ERR_AGAIN with the server's Retry-After, in seconds
 * or as an HTTP date; absurd values are clamped; none is -1. */
static void retry_after(void **state)
{
    fixture *f = *state;
    const char *err = "{\"error\":\"RateLimitExceeded\"}";
    es_atp_xrpc_result res;
    uint8_t buf[64];
    size_t len;
    serve(f, GET_REPO, 429, err, strlen(err), "Retry-After: 7\r\n");
    expect(es_atp_xrpc_get_repo_buf(f->x, f->url, DID, strlen(DID), buf, sizeof buf, &len, &res),
           ES_ERR_AGAIN);
    assert_int_equal(res.retry_after_ms, 7000);
    assert_string_equal(res.error, "RateLimitExceeded");

    char date[128], header[160];
    time_t at = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(header, sizeof header, "Retry-After: %s\r\n", date);
    serve(f, GET_REPO, 503, "", 0, header);
    expect(es_atp_xrpc_get_repo_buf(f->x, f->url, DID, strlen(DID), buf, sizeof buf, &len, &res),
           ES_ERR_AGAIN);
    assert_true(res.retry_after_ms > 110000 && res.retry_after_ms <= 120000);

    serve(f, GET_REPO, 429, "", 0, "Retry-After: 99999999999999999999\r\n");
    expect(es_atp_xrpc_get_repo_buf(f->x, f->url, DID, strlen(DID), buf, sizeof buf, &len, &res),
           ES_ERR_AGAIN);
    assert_int_equal(res.retry_after_ms, (int64_t)24 * 3600 * 1000);

    serve(f, GET_REPO, 429, "", 0, NULL);
    expect(es_atp_xrpc_get_repo_buf(f->x, f->url, DID, strlen(DID), buf, sizeof buf, &len, &res),
           ES_ERR_AGAIN);
    assert_int_equal(res.retry_after_ms, -1);

    /* a Retry-After on another status is not an invitation to wait */
    serve(f, GET_REPO, 500, "", 0, "Retry-After: 5\r\n");
    expect(es_atp_xrpc_get_repo_buf(f->x, f->url, DID, strlen(DID), buf, sizeof buf, &len, &res),
           ES_ERR_SERVER);
    assert_int_equal(res.retry_after_ms, -1);
}

/* 5xx are ES_ERR_SERVER; a server failing every 2nd request fails exactly
 * those. */
static void server_errors(void **state)
{
    fixture *f = *state;
    uint8_t buf[64];
    size_t len;
    serve(f, GET_REPO, 502, "", 0, NULL);
    expect(es_atp_xrpc_get_repo_buf(f->x, f->url, DID, strlen(DID), buf, sizeof buf, &len, NULL),
           ES_ERR_SERVER);
    expect_text("HTTP 502");
    standin_answer a = {200, "car!", 4, 0, NULL, STANDIN_LENGTH_TRUE, 2};
    standin_route_answer(&f->http, GET_REPO, &a);
    for (int i = 1; i <= 6; i++) {
        es_atp_xrpc_result res;
        es_status s =
            es_atp_xrpc_get_repo_buf(f->x, f->url, DID, strlen(DID), buf, sizeof buf, &len, &res);
        expect(s, i % 2 == 0 ? ES_ERR_SERVER : ES_OK);
        assert_int_equal(res.http_status, i % 2 == 0 ? 500 : 200);
        if (s == ES_OK)
            assert_memory_equal(buf, "car!", 4);
    }
}

/* A body that stops short of its Content-Length (the server closed):
 * ES_ERR_CONNECTION, retryable, not a short CAR taken for whole. */
static void truncated_body(void **state)
{
    fixture *f = *state;
    size_t n = 100000;
    uint8_t *body = pattern(n);
    standin_answer a = {200, body, n - 1000, 0, NULL, (long long)n, 0};
    standin_route_answer(&f->http, GET_REPO, &a);
    collector c = {malloc(n), 0, n, 0};
    expect(es_atp_xrpc_get_repo(f->x, f->url, DID, strlen(DID), collect, &c, NULL),
           ES_ERR_CONNECTION);
    expect_text("short of its length");
    int fd = 7;
    uint64_t size = 1;
    expect(es_atp_xrpc_get_repo_file(f->x, f->url, DID, strlen(DID), NULL, &fd, &size, NULL),
           ES_ERR_CONNECTION);
    assert_int_equal(fd, -1);
    assert_int_equal(size, 0);
    free(c.buf);
    free(body);
}

/* A body over the bound is refused while it arrives, never held whole:
 * without a Content-Length the callback sees at most the bound; with one
 * announcing more, nothing; the caller's buffer is never overrun. */
static void size_limit(void **state)
{
    fixture *f = *state;
    size_t bound = 64 * 1024, n = 4 << 20;
    es_atp_xrpc *x = client(5000, bound);
    uint8_t *body = pattern(n);
    standin_answer a = {200, body, n, 0, NULL, STANDIN_LENGTH_NONE, 0};
    standin_route_answer(&f->http, GET_REPO, &a);
    collector c = {malloc(n), 0, n, 0};
    es_atp_xrpc_result res;
    expect(es_atp_xrpc_get_repo(x, f->url, DID, strlen(DID), collect, &c, &res), ES_ERR_LIMIT);
    expect_text("bound");
    assert_true(c.len <= bound);
    assert_true(res.bytes <= bound);

    a.announce = STANDIN_LENGTH_TRUE; /* announced over the bound: refused at once */
    standin_route_answer(&f->http, GET_REPO, &a);
    c.len = 0;
    expect(es_atp_xrpc_get_repo(x, f->url, DID, strlen(DID), collect, &c, NULL), ES_ERR_LIMIT);
    assert_int_equal(c.len, 0);

    /* the caller's buffer bounds it too: 1,000 bytes asked, 2,000 sent */
    a.len = 2000;
    a.announce = STANDIN_LENGTH_NONE;
    standin_route_answer(&f->http, GET_REPO, &a);
    uint8_t *buf = malloc(1016);
    memset(buf, 0xee, 1016);
    size_t len = 99;
    expect(es_atp_xrpc_get_repo_buf(x, f->url, DID, strlen(DID), buf, 1000, &len, NULL),
           ES_ERR_LIMIT);
    assert_int_equal(len, 0);
    for (size_t i = 1000; i < 1016; i++)
        assert_int_equal(buf[i], 0xee);

    /* a refusal's body is not the CAR: its head is read for the error name,
     * the rest not at all, whatever its size */
    char *refusal = malloc(n);
    memset(refusal, ' ', n);
    memcpy(refusal, "{\"error\":\"RateLimitExceeded\"}", 29);
    standin_answer slow_down = {429, refusal, n, 0, NULL, STANDIN_LENGTH_NONE, 0};
    standin_route_answer(&f->http, GET_REPO, &slow_down);
    es_atp_xrpc_result res2;
    expect(es_atp_xrpc_get_repo(x, f->url, DID, strlen(DID), collect, &c, &res2), ES_ERR_AGAIN);
    assert_string_equal(res2.error, "RateLimitExceeded");
    assert_int_equal(res2.bytes, 0);
    free(refusal);

    int fd = 7;
    uint64_t size = 1;
    a.len = n;
    standin_route_answer(&f->http, GET_REPO, &a);
    expect(es_atp_xrpc_get_repo_file(x, f->url, DID, strlen(DID), NULL, &fd, &size, NULL),
           ES_ERR_LIMIT);
    assert_int_equal(fd, -1);
    free(buf);
    free(c.buf);
    free(body);
    es_atp_xrpc_destroy(x);
}

/* A server that stalls past the timeout: ES_ERR_TIMEOUT in about the timeout. */
static void stalled_server(void **state)
{
    fixture *f = *state;
    es_atp_xrpc *x = client(300, 1 << 20);
    standin_answer a = {200, "car", 3, 1500, NULL, STANDIN_LENGTH_TRUE, 0};
    standin_route_answer(&f->http, GET_REPO, &a);
    uint8_t buf[16];
    size_t len;
    int64_t t0 = esi_atp_monotonic_ms();
    expect(es_atp_xrpc_get_repo_buf(x, f->url, DID, strlen(DID), buf, sizeof buf, &len, NULL),
           ES_ERR_TIMEOUT);
    int64_t took = esi_atp_monotonic_ms() - t0;
    assert_true(took >= 250 && took < 1400);
    expect_text("did not answer within 300 ms");
    es_atp_xrpc_destroy(x);
}

/* Parameters are percent-encoded: a DID's ':' and '%', a hostile cursor's
 * '&', '=', '#', space, '/', non-ASCII; an invalid DID is refused unsent. */
static void url_encoding(void **state)
{
    fixture *f = *state;
    const char *did = "did:web:example.com%3A8080";
    serve(f, "/xrpc/com.atproto.sync.getRepo?did=did%3Aweb%3Aexample.com%253A8080", 200, "ok", 2,
          NULL);
    uint8_t buf[16];
    size_t len = 0;
    expect(es_atp_xrpc_get_repo_buf(f->x, f->url, did, strlen(did), buf, sizeof buf, &len, NULL),
           ES_OK);
    assert_int_equal(len, 2);
    const char *bad[] = {"did:plc:a&did=did:plc:b", "did:plc:a b", "did:plc:a#x", "not a did"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect(es_atp_xrpc_get_repo_buf(f->x, f->url, bad[i], strlen(bad[i]), buf, sizeof buf, &len,
                                        NULL),
               ES_ERR_INVALID);
    assert_int_equal(standin_requests(&f->http), 1);
}

/* ---- listings --------------------------------------------------------------- */

typedef struct seen {
    char dids[16][64];
    bool active[16];
    char status[16][16];
    size_t n;
    size_t stop_at; /* stop (ES_ERR_ABORTED) when n reaches it; 0: never */
} seen;

static es_status on_repo(void *ctx, const es_atp_xrpc_repo *r)
{
    seen *s = ctx;
    assert_int_equal(r->did_len, strlen(r->did));
    snprintf(s->dids[s->n], sizeof s->dids[0], "%s", r->did);
    s->active[s->n] = r->active;
    snprintf(s->status[s->n], sizeof s->status[0], "%s", r->status ? r->status : "");
    assert_non_null(r->head);
    assert_non_null(r->rev);
    s->n++;
    return s->stop_at != 0 && s->n == s->stop_at ? es_error(ES_ERR_ABORTED, "enough") : ES_OK;
}

#define HEAD "bafyreidigqr65jj2zsmitco3fcuag6pi7std6quxa2bcp2xrpin44ikzsy"
#define REPO(did, extra)                                                                           \
    "{\"did\":\"" did "\",\"head\":\"" HEAD "\",\"rev\":\"3migo7fijwi2k\"" extra "}"
#define LIST "/xrpc/com.atproto.sync.listRepos?limit=1000"

/* A hostile cursor (from the network) is percent-encoded whole: it cannot
 * add parameters nor cut the URL. */
static void cursor_encoding(void **state)
{
    fixture *f = *state;
    const char *page = "{\"repos\":[" REPO("did:plc:one", "") "]}";
    serve(f, LIST "&cursor=a%26limit%3D1%23x%20y%2F%C3%A9%3F", 200, page, strlen(page), NULL);
    seen s = {0};
    es_atp_xrpc_result res;
    expect(es_atp_xrpc_list_repos(f->x, f->url, "a&limit=1#x y/\xc3\xa9?", on_repo, &s, &res),
           ES_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(res.cursor, "");
}

static void serve_three_pages(fixture *f)
{
    const char *p1 = "{\"cursor\":\"c1\",\"repos\":[" REPO("did:plc:one", "") "," REPO(
        "did:plc:two", ",\"active\":true") "]}";
    /* a malformed entry (a rev that is not a TID) is skipped, not fatal */
    const char *p2 = "{\"cursor\":\"c 2/&\",\"repos\":[" REPO(
        "did:plc:three", ",\"active\":false,\"status\":\"takendown\"") ",{\"did\":\"did:plc:bad\","
                                                                       "\"head\":\"" HEAD
                                                                       "\",\"rev\":\"nope\"}," REPO(
                                                                           "did:plc:four", "") "]}";
    const char *p3 = "{\"repos\":[" REPO("did:plc:five", ",\"status\":null") "]}";
    serve(f, LIST, 200, p1, strlen(p1), NULL);
    serve(f, LIST "&cursor=c1", 200, p2, strlen(p2), NULL);
    serve(f, LIST "&cursor=c%202%2F%26", 200, p3, strlen(p3), NULL);
}

/* Three pages followed through their cursors (one needing encoding), every
 * good entry delivered in order, the malformed one counted skipped. */
static void list_repos_pages(void **state)
{
    fixture *f = *state;
    serve_three_pages(f);
    seen s = {0};
    es_atp_xrpc_result res;
    expect(es_atp_xrpc_list_repos(f->x, f->url, NULL, on_repo, &s, &res), ES_OK);
    assert_int_equal(res.pages, 3);
    assert_int_equal(res.items, 5);
    assert_int_equal(res.skipped, 1);
    assert_string_equal(res.cursor, "");
    assert_int_equal(s.n, 5);
    const char *want[] = {"did:plc:one", "did:plc:two", "did:plc:three", "did:plc:four",
                          "did:plc:five"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(s.dids[i], want[i]);
    assert_true(s.active[0] && s.active[1] && !s.active[2] && s.active[4]);
    assert_string_equal(s.status[2], "takendown");
    assert_string_equal(s.status[4], "");
    assert_int_equal(standin_requests(&f->http), 3);
}

/* max_pages bounds one call; the cursor it returns continues the listing.
 * A callback that stops leaves the cursor on the page it was reading. */
static void list_repos_resumes(void **state)
{
    fixture *f = *state;
    serve_three_pages(f);
    es_atp_xrpc_options o = test_options();
    o.max_pages = 2;
    es_atp_xrpc *x = create(&o);
    seen s = {0};
    es_atp_xrpc_result res;
    expect(es_atp_xrpc_list_repos(x, f->url, NULL, on_repo, &s, &res), ES_OK);
    assert_int_equal(res.pages, 2);
    assert_string_equal(res.cursor, "c 2/&");
    assert_int_equal(s.n, 4);
    expect(es_atp_xrpc_list_repos(x, f->url, res.cursor, on_repo, &s, &res), ES_OK);
    assert_int_equal(res.pages, 1);
    assert_string_equal(res.cursor, "");
    assert_int_equal(s.n, 5);

    seen stop = {.stop_at = 3}; /* the first entry of page 2 */
    expect(es_atp_xrpc_list_repos(x, f->url, NULL, on_repo, &stop, &res), ES_ERR_ABORTED);
    assert_string_equal(res.cursor, "c1");
    assert_int_equal(res.pages, 1);
    es_atp_xrpc_destroy(x);
}

/* Pages that are not the lexicon's, a cursor that does not move, one over
 * its bound, a page over max_page_bytes, a failing page keeping its cursor. */
static void list_repos_hostile(void **state)
{
    fixture *f = *state;
    seen s = {0};
    es_atp_xrpc_result res;
    const char *bodies[] = {"[]", "{\"repos\":{}}", "{\"repos\":[],\"cursor\":7}", "{\"repos\":["};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        serve(f, LIST, 200, bodies[i], strlen(bodies[i]), NULL);
        expect(es_atp_xrpc_list_repos(f->x, f->url, NULL, on_repo, &s, &res), ES_ERR_DECODE);
    }
    /* entries with a field missing or of the wrong type are skipped, one by one */
    const char *odd =
        "{\"repos\":[{\"head\":\"" HEAD "\",\"rev\":\"3migo7fijwi2k\"},"
        "{\"did\":\"did:plc:a\",\"head\":\"not a cid\",\"rev\":\"3migo7fijwi2k\"}," REPO(
            "did:plc:b",
            ",\"active\":\"yes\"") "," REPO("did:plc:c",
                                            ",\"status\":5") "," REPO("did:plc:d",
                                                                      ",\"status\":"
                                                                      "\"deactivated\"") ",7]}";
    serve(f, LIST, 200, odd, strlen(odd), NULL);
    seen few = {0};
    expect(es_atp_xrpc_list_repos(f->x, f->url, NULL, on_repo, &few, &res), ES_OK);
    assert_int_equal(res.skipped, 5);
    assert_int_equal(res.items, 1);
    assert_string_equal(few.dids[0], "did:plc:d");
    const char *loop = "{\"cursor\":\"c1\",\"repos\":[" REPO("did:plc:one", "") "]}";
    serve(f, LIST "&cursor=c1", 200, loop, strlen(loop), NULL);
    expect(es_atp_xrpc_list_repos(f->x, f->url, "c1", on_repo, &s, &res), ES_ERR_PROTOCOL);
    expect_text("same cursor");

    char *big = malloc(2000);
    int n = snprintf(big, 2000, "{\"cursor\":\"");
    memset(big + n, 'c', 1100);
    snprintf(big + n + 1100, 2000 - 1100 - (size_t)n,
             "\",\"repos\":[" REPO("did:plc:one", "") "]}");
    serve(f, LIST, 200, big, strlen(big), NULL);
    expect(es_atp_xrpc_list_repos(f->x, f->url, NULL, on_repo, &s, &res), ES_ERR_LIMIT);
    free(big);

    es_atp_xrpc_options o = test_options();
    o.max_page_bytes = 100;
    es_atp_xrpc *x = create(&o);
    serve(f, LIST, 200, loop, strlen(loop), NULL);
    expect(es_atp_xrpc_list_repos(x, f->url, NULL, on_repo, &s, &res), ES_ERR_LIMIT);
    es_atp_xrpc_destroy(x);

    serve_three_pages(f);
    standin_answer fail = {503, "", 0, 0, "Retry-After: 1\r\n", STANDIN_LENGTH_TRUE, 0};
    standin_route_answer(&f->http, LIST "&cursor=c1", &fail);
    seen t = {0};
    expect(es_atp_xrpc_list_repos(f->x, f->url, NULL, on_repo, &t, &res), ES_ERR_AGAIN);
    assert_string_equal(res.cursor, "c1"); /* retry from there */
    assert_int_equal(res.retry_after_ms, 1000);
    assert_int_equal(t.n, 2);
}

static es_status on_did(void *ctx, const char *did, size_t len)
{
    seen *s = ctx;
    assert_int_equal(len, strlen(did));
    snprintf(s->dids[s->n++], sizeof s->dids[0], "%s", did);
    return ES_OK;
}

static void list_by_collection(void **state)
{
    fixture *f = *state;
    const char *p1 = "{\"cursor\":\"k\",\"repos\":[{\"did\":\"did:plc:one\"},{\"did\":\"x\"}]}";
    const char *p2 = "{\"repos\":[{\"did\":\"did:web:two.example\"}]}";
    const char *base = "/xrpc/com.atproto.sync.listReposByCollection?collection=app.bsky.feed.post"
                       "&limit=1000";
    char path[256];
    serve(f, base, 200, p1, strlen(p1), NULL);
    snprintf(path, sizeof path, "%s&cursor=k", base);
    serve(f, path, 200, p2, strlen(p2), NULL);
    seen s = {0};
    es_atp_xrpc_result res;
    expect(es_atp_xrpc_list_repos_by_collection(f->x, f->url, "app.bsky.feed.post", NULL, on_did,
                                                &s, &res),
           ES_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.dids[0], "did:plc:one");
    assert_string_equal(s.dids[1], "did:web:two.example");
    assert_int_equal(res.skipped, 1);
    assert_int_equal(res.pages, 2);
    expect(
        es_atp_xrpc_list_repos_by_collection(f->x, f->url, "app.bsky&x=1", NULL, on_did, &s, &res),
        ES_ERR_INVALID);
    assert_int_equal(standin_requests(&f->http), 2);
}

/* ---- service URLs and the SSRF guard ---------------------------------------- */

static void service_urls(void **state)
{
    fixture *f = *state;
    uint8_t buf[16];
    size_t len;
    char url[128];
    const char *bad[] = {"ftp://h.example",          "https://user:pw@h.example",
                         "https://h.example/#x",     "https://h.example/?a=b",
                         "https://h.example/a b",    "https://",
                         "https://h.example\\@evil", "javascript:alert(1)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_status s =
            es_atp_xrpc_get_repo_buf(f->x, bad[i], DID, strlen(DID), buf, sizeof buf, &len, NULL);
        if (s != ES_ERR_INVALID)
            fail_msg("%s: %s (%s)", bad[i], es_status_text(s), es_last_error());
    }
    /* a trailing '/' is fine */
    serve(f, GET_REPO, 200, "ok", 2, NULL);
    snprintf(url, sizeof url, "%s/", f->url);
    expect(es_atp_xrpc_get_repo_buf(f->x, url, DID, strlen(DID), buf, sizeof buf, &len, NULL),
           ES_OK);
    assert_int_equal(standin_requests(&f->http), 1);

    /* Without the test switch: http is refused, and https to a loopback or
     * private address is never connected to (a DID document names the PDS). */
    es_atp_xrpc *x = create(NULL);
    expect(es_atp_xrpc_get_repo_buf(x, f->url, DID, strlen(DID), buf, sizeof buf, &len, NULL),
           ES_ERR_INVALID);
    const char *hosts[] = {"127.0.0.1",       "localhost", "10.0.0.1", "192.168.1.1",
                           "169.254.169.254", "[::1]",     "0.0.0.0"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        snprintf(url, sizeof url, "https://%s:%d", hosts[i], f->http.port);
        expect(es_atp_xrpc_get_repo_buf(x, url, DID, strlen(DID), buf, sizeof buf, &len, NULL),
               ES_ERR_CONNECTION);
        expect_text("no public address");
    }
    es_atp_xrpc_destroy(x);
    /* allow_private_addresses: connected, but the stand-in speaks no TLS
     * (it waits for a request head that never comes: a timeout) */
    es_atp_xrpc_options o;
    es_atp_xrpc_options_init(&o);
    o.allow_private_addresses = true;
    o.timeout_ms = 300;
    x = create(&o);
    snprintf(url, sizeof url, "https://127.0.0.1:%d", f->http.port);
    es_status s = es_atp_xrpc_get_repo_buf(x, url, DID, strlen(DID), buf, sizeof buf, &len, NULL);
    assert_true(s == ES_ERR_TIMEOUT || s == ES_ERR_CONNECTION);
    assert_null(strstr(es_last_error(), "no public address"));
    es_atp_xrpc_destroy(x);
    assert_int_equal(standin_requests(&f->http), 1);
}

static void bad_arguments(void **state)
{
    (void)state;
    es_atp_xrpc_options o;
    es_atp_xrpc_options_init(&o);
    es_atp_xrpc *x = NULL;
    o.page_limit = 1001;
    assert_int_equal(es_atp_xrpc_create(&o, &x), ES_ERR_INVALID);
    es_atp_xrpc_options_init(&o);
    o.timeout_ms = 0;
    assert_int_equal(es_atp_xrpc_create(&o, &x), ES_ERR_INVALID);
    assert_null(x);
    es_atp_xrpc_destroy(NULL);
    es_atp_xrpc_result res;
    assert_int_equal(es_atp_xrpc_list_repos(NULL, "https://h", NULL, on_repo, NULL, &res),
                     ES_ERR_INVALID);
    assert_int_equal(es_atp_xrpc_get_repo(NULL, "https://h", DID, strlen(DID), collect, NULL, &res),
                     ES_ERR_INVALID);
    assert_int_equal(res.retry_after_ms, -1);
}

/* ---- the PDS of a DID ------------------------------------------------------- */

static void serve_doc(fixture *f, const char *did, const char *services)
{
    char path[128], body[2048];
    snprintf(path, sizeof path, "/%s", did);
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"service\":%s}", did, services);
    standin_route_set(&f->http, path, 200, body, 0);
}

#define PDS_SERVICE(type, url)                                                                     \
    "[{\"id\":\"#atproto_pds\",\"type\":\"" type "\",\"serviceEndpoint\":\"" url "\"}]"
#define PDS_AT(url) PDS_SERVICE("AtprotoPersonalDataServer", url)

static void pds_endpoint(void **state)
{
    fixture *f = *state;
    es_atp_identity_options o;
    es_atp_identity_options_init(&o);
    o.plc_url = f->url;
    o.allow_insecure = true;
    o.timeout_ms = 2000;
    es_atp_identity *id = NULL;
    assert_int_equal(es_atp_identity_create(&o, &id), ES_OK);
    static const struct {
        const char *did, *services;
        es_status want;
        const char *pds;
    } cases[] = {
        {"did:plc:good", PDS_AT("https://pds.example.com/"), ES_OK, "https://pds.example.com"},
        {"did:plc:plain", PDS_AT("http://pds.example.com"), ES_OK, "http://pds.example.com"},
        {"did:plc:none", "[]", ES_ERR_NOT_FOUND, NULL},
        {"did:plc:othertype", PDS_SERVICE("Other", "https://pds.example.com"), ES_ERR_NOT_FOUND,
         NULL},
        {"did:plc:script", PDS_AT("javascript:alert(1)"), ES_ERR_NOT_FOUND, NULL},
        {"did:plc:userinfo", PDS_AT("https://u:p@10.0.0.1"), ES_ERR_DECODE, NULL},
        {"did:plc:fragment", PDS_AT("https://pds.example#x"), ES_ERR_DECODE, NULL},
        {"did:plc:query", PDS_AT("https://pds.example?x=1"), ES_ERR_DECODE, NULL},
        {"did:plc:space", PDS_AT("https://pds.example\\n/x"), ES_ERR_DECODE, NULL},
        {"did:plc:nohost", PDS_AT("https:///path"), ES_ERR_DECODE, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        serve_doc(f, cases[i].did, cases[i].services);
        char pds[ES_ATP_XRPC_URL_MAX + 1];
        es_status s = es_atp_identity_pds(id, cases[i].did, strlen(cases[i].did), pds, sizeof pds);
        if (s != cases[i].want)
            fail_msg("%s: %s, wanted %s (%s)", cases[i].did, es_status_text(s),
                     es_status_text(cases[i].want), es_last_error());
        if (cases[i].pds != NULL)
            assert_string_equal(pds, cases[i].pds);
        else
            assert_string_equal(pds, "");
    }
    char small[8];
    assert_int_equal(es_atp_identity_pds(id, "did:plc:good", 12, small, sizeof small),
                     ES_ERR_LIMIT);
    assert_int_equal(es_atp_identity_pds(id, "did:plc:unknown", 15, small, sizeof small),
                     ES_ERR_NOT_FOUND); /* no document at all */
    es_atp_identity_destroy(id);
}

/* The whole path a resync takes: the DID's document names the PDS (the
 * stand-in itself), and the repository is fetched from there. */
static void pds_then_get_repo(void **state)
{
    fixture *f = *state;
    char services[256];
    snprintf(services, sizeof services,
             "[{\"id\":\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
             "\"serviceEndpoint\":\"%s\"}]",
             f->url);
    serve_doc(f, DID, services);
    serve(f, GET_REPO, 200, "CAR", 3, NULL);
    es_atp_identity_options o;
    es_atp_identity_options_init(&o);
    o.plc_url = f->url;
    o.allow_insecure = true;
    es_atp_identity *id = NULL;
    assert_int_equal(es_atp_identity_create(&o, &id), ES_OK);
    char pds[ES_ATP_XRPC_URL_MAX + 1];
    assert_int_equal(es_atp_identity_pds(id, DID, strlen(DID), pds, sizeof pds), ES_OK);
    assert_string_equal(pds, f->url);
    uint8_t buf[16];
    size_t len = 0;
    expect(es_atp_xrpc_get_repo_buf(f->x, pds, DID, strlen(DID), buf, sizeof buf, &len, NULL),
           ES_OK);
    assert_memory_equal(buf, "CAR", 3);
    es_atp_identity_destroy(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_repo_three_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(real_repo_through_file, setup, teardown),
        cmocka_unit_test_setup_teardown(repo_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(server_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_body, setup, teardown),
        cmocka_unit_test_setup_teardown(size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(stalled_server, setup, teardown),
        cmocka_unit_test_setup_teardown(url_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(cursor_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(list_repos_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(list_repos_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(list_repos_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(list_by_collection, setup, teardown),
        cmocka_unit_test_setup_teardown(service_urls, setup, teardown),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test_setup_teardown(pds_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(pds_then_get_repo, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
