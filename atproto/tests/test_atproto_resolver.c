/* The DID resolver against stand-ins on loopback (http_standin.h): a PLC
 * directory serving the corpus's documents, and a did:web host. Resolution,
 * HTTP errors, bad documents, a slow server, the TTL (an injected clock),
 * invalidation and seeding. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "../src/atp_internal.h"
#include "../src/identity.h"
#include "../src/verify.h"
#include "fixture_json.h"
#include "fixtures.h"
#include "http_standin.h"

#define KEY_A "zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj"
#define KEY_B "zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo"

typedef struct fixture {
    standin http;
    int64_t now_ms; /* the injected clock */
    esi_atp_resolver *r;
    char plc_url[64];
} fixture;

static int64_t test_clock(void *ctx)
{
    return ((fixture *)ctx)->now_ms;
}

static void doc_text(char *out, size_t cap, const char *did, const char *handle, const char *key)
{
    snprintf(out, cap,
             "{\"id\":\"%s\",\"alsoKnownAs\":[\"at://"
             "%s\"],\"verificationMethod\":[{\"id\":\"%s#atproto\","
             "\"type\":\"Multikey\",\"controller\":\"%s\",\"publicKeyMultibase\":\"%s\"}],"
             "\"service\":[{\"id\":\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
             "\"serviceEndpoint\":\"https://pds.test\"}]}",
             did, handle, did, did, key);
}

static void serve_doc(fixture *f, const char *did, const char *handle, const char *key)
{
    char path[256], body[2048];
    snprintf(path, sizeof path, "/%s", did);
    doc_text(body, sizeof body, did, handle, key);
    standin_route_set(&f->http, path, 200, body, 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (standin_start(&f->http) != 0)
        return -1;
    snprintf(f->plc_url, sizeof f->plc_url, "http://127.0.0.1:%d/", f->http.port);
    esi_atp_resolver_options o;
    esi_atp_resolver_options_init(&o);
    o.plc_url = f->plc_url;
    o.timeout_ms = 300;
    o.ttl_ms = 60000;
    o.allow_insecure = 1;
    o.clock = test_clock;
    o.clock_ctx = f;
    f->now_ms = 1000;
    if (esi_atp_resolver_create(&o, &f->r) != ES_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esi_atp_resolver_destroy(f->r);
    standin_stop(&f->http);
    free(f);
    return 0;
}

static esi_atp_did_doc *resolve_ok(fixture *f, const char *did)
{
    esi_atp_did_doc *d = NULL;
    if (esi_atp_resolve(f->r, did, &d) != ES_OK)
        fail_msg("resolve %s: %s", did, es_last_error());
    return d;
}

static void expect_failure(fixture *f, const char *did, es_status want, const char *text)
{
    esi_atp_did_doc *d = NULL;
    es_status s = esi_atp_resolve(f->r, did, &d);
    if (s != want)
        fail_msg("resolve %s: %s, wanted %s (%s)", did, es_status_text(s), es_status_text(want),
                 es_last_error());
    assert_null(d);
    if (strstr(es_last_error(), text) == NULL)
        fail_msg("error text '%s' lacks '%s'", es_last_error(), text);
}

/* Every document of the corpus, served by the PLC stand-in, resolves to the
 * key and handle the file holds; a second round is served from the cache. */
static void corpus_through_plc(void **state)
{
    fixture *f = *state;
    const char *path = fixture_path("firehose-corpus/did_docs.json.zst");
    if (path == NULL)
        skip();
    json_t *all = zst_json(path);
    const char *did;
    json_t *doc;
    size_t count = 0;
    json_object_foreach(all, did, doc)
    {
        char route[256];
        snprintf(route, sizeof route, "/%s", did);
        char *body = json_dumps(doc, JSON_COMPACT);
        standin_route_set(&f->http, route, 200, body, 0);
        free(body);
    }
    for (int round = 0; round < 2; round++) {
        json_object_foreach(all, did, doc)
        {
            esi_atp_did_doc *d = resolve_ok(f, did);
            json_t *vm = json_array_get(json_object_get(doc, "verificationMethod"), 0);
            assert_string_equal(d->signing_key,
                                json_string_value(json_object_get(vm, "publicKeyMultibase")));
            const char *aka =
                json_string_value(json_array_get(json_object_get(doc, "alsoKnownAs"), 0));
            assert_string_equal(d->handle, aka + 5);
            esi_atp_did_doc_destroy(d);
            count += round == 0;
        }
        assert_int_equal(standin_requests(&f->http), count); /* round 2: all hits */
    }
    esi_atp_resolver_stats st;
    esi_atp_resolver_stats_get(f->r, &st);
    assert_int_equal(st.fetches, count);
    assert_int_equal(st.hits, count);
    assert_int_equal(st.cached, count);
    printf("resolved %zu corpus DIDs through the PLC stand-in, then %zu from the cache\n", count,
           count);
    json_decref(all);
}

static void http_errors(void **state)
{
    fixture *f = *state;
    expect_failure(f, "did:plc:unknownunknownunknown", ES_ERR_NOT_FOUND, "HTTP 404");
    standin_route_set(&f->http, "/did:plc:gone", 410, "{}", 0);
    expect_failure(f, "did:plc:gone", ES_ERR_NOT_FOUND, "HTTP 410");
    standin_route_set(&f->http, "/did:plc:broken", 500, "{}", 0);
    expect_failure(f, "did:plc:broken", ES_ERR_SERVER, "HTTP 500");
    /* Redirects are not followed: a 302 is an answer like any other. */
    standin_route_set(&f->http, "/did:plc:moved", 302, "", 0);
    expect_failure(f, "did:plc:moved", ES_ERR_SERVER, "HTTP 302");
    /* A failure is remembered for a minute (negative_caching has more);
     * once served and past that, it resolves. */
    serve_doc(f, "did:plc:broken", "broken.test", KEY_A);
    expect_failure(f, "did:plc:broken", ES_ERR_SERVER, "HTTP 500");
    assert_int_equal(standin_requests(&f->http), 4);
    f->now_ms += 60000;
    esi_atp_did_doc_destroy(resolve_ok(f, "did:plc:broken"));
    esi_atp_resolver_stats st;
    esi_atp_resolver_stats_get(f->r, &st);
    assert_int_equal(st.failures, 5);
    assert_int_equal(st.negative_hits, 1);
    assert_int_equal(st.fetches, 5);
}

/* A DID that does not resolve costs one request per negative_ttl_ms, not one
 * per lookup (a stream of its commits): 404, a bad document and a timeout are
 * each remembered, answered with the same status and counted; after the
 * period it is asked again; an invalidation (#identity) forgets it at once. */
static void negative_caching(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 50; i++)
        expect_failure(f, "did:plc:nobodyhere", ES_ERR_NOT_FOUND, "HTTP 404");
    standin_route_set(&f->http, "/did:plc:garbled", 200, "{\"id\":", 0);
    for (int i = 0; i < 50; i++)
        expect_failure(f, "did:plc:garbled", ES_ERR_DECODE, "did:plc:garbled");
    assert_int_equal(standin_requests(&f->http), 2);
    esi_atp_resolver_stats st;
    esi_atp_resolver_stats_get(f->r, &st);
    assert_int_equal(st.fetches, 2);
    assert_int_equal(st.negative_hits, 98);
    assert_int_equal(st.failures, 100);
    assert_int_equal(st.hits, 0);
    /* the period runs from the failed request: asked again after it */
    f->now_ms += 59999;
    expect_failure(f, "did:plc:nobodyhere", ES_ERR_NOT_FOUND, "remembered");
    assert_int_equal(standin_requests(&f->http), 2);
    serve_doc(f, "did:plc:nobodyhere", "now.test", KEY_A); /* it was created meanwhile */
    f->now_ms += 1;
    esi_atp_did_doc_destroy(resolve_ok(f, "did:plc:nobodyhere"));
    assert_int_equal(standin_requests(&f->http), 3);
    /* an #identity for a DID that did not resolve: asked again at once */
    serve_doc(f, "did:plc:garbled", "fixed.test", KEY_A);
    esi_atp_resolver_invalidate(f->r, "did:plc:garbled");
    esi_atp_did_doc_destroy(resolve_ok(f, "did:plc:garbled"));
    assert_int_equal(standin_requests(&f->http), 4);
    /* a timeout too (the stand-in is slower than the 300 ms bound) */
    char body[2048];
    doc_text(body, sizeof body, "did:plc:sluggish", "slow.test", KEY_A);
    standin_route_set(&f->http, "/did:plc:sluggish", 200, body, 600);
    for (int i = 0; i < 5; i++)
        expect_failure(f, "did:plc:sluggish", ES_ERR_TIMEOUT, "did not answer");
    assert_int_equal(standin_requests(&f->http), 5);
}

/* negative_ttl_ms 0: nothing is remembered, every lookup asks. */
static void negative_caching_off(void **state)
{
    fixture *f = *state;
    esi_atp_resolver_options o;
    esi_atp_resolver_options_init(&o);
    assert_int_equal(o.negative_ttl_ms, 60000);
    o.plc_url = f->plc_url;
    o.allow_insecure = 1;
    o.negative_ttl_ms = 0;
    esi_atp_resolver *r = NULL;
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_OK);
    for (int i = 0; i < 3; i++) {
        esi_atp_did_doc *d = NULL;
        assert_int_equal(esi_atp_resolve(r, "did:plc:nobodyhere", &d), ES_ERR_NOT_FOUND);
    }
    assert_int_equal(standin_requests(&f->http), 3);
    esi_atp_resolver_destroy(r);
    o.negative_ttl_ms = -1;
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_ERR_INVALID);
}

/* Through the public handle and the signature check a decoder runs: the
 * commits of an unresolvable DID are refused `identity` each time, one
 * request for all of them, and the public stats count the remembered ones. */
static void negative_caching_refuses_identity(void **state)
{
    fixture *f = *state;
    es_atp_identity_options o;
    es_atp_identity_options_init(&o);
    assert_int_equal(o.negative_ttl_ms, 60000);
    o.plc_url = f->plc_url;
    o.allow_insecure = true;
    es_atp_identity *id = NULL;
    assert_int_equal(es_atp_identity_create(&o, &id), ES_OK);
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    const char *did = "did:plc:nobodyhere";
    const uint8_t block[] = {0xa0}; /* never reached: no key */
    for (int i = 0; i < 20; i++) {
        es_atp_error why = ES_ATP_ERR_NONE;
        assert_int_not_equal(
            esi_atp_check_signature(id, did, strlen(did), block, sizeof block, arena, &why), ES_OK);
        assert_int_equal(why, ES_ATP_ERR_IDENTITY);
    }
    assert_int_equal(standin_requests(&f->http), 1);
    es_atp_identity_stats st;
    es_atp_identity_stats_get(id, &st);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.negative_hits, 19);
    assert_int_equal(st.failures, 20);
    es_arena_destroy(arena);
    es_atp_identity_destroy(id);
}

static void bad_documents(void **state)
{
    fixture *f = *state;
    standin_route_set(&f->http, "/did:plc:malformed", 200, "{\"id\": \"did:plc:malformed\",", 0);
    expect_failure(f, "did:plc:malformed", ES_ERR_DECODE, "not JSON");
    /* A document for another DID is a forgery, whatever it holds. */
    char body[2048];
    doc_text(body, sizeof body, "did:plc:victim", "victim.test", KEY_A);
    standin_route_set(&f->http, "/did:plc:attacker", 200, body, 0);
    expect_failure(f, "did:plc:attacker", ES_ERR_DECODE, "another DID");
    /* Over the size bound. */
    size_t n = ESI_ATP_DID_DOC_MAX + 100;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    standin_route_set(&f->http, "/did:plc:huge", 200, big, 0);
    free(big);
    expect_failure(f, "did:plc:huge", ES_ERR_LIMIT, "bound");
    /* Not DIDs, or methods that do not resolve. */
    expect_failure(f, "did:PLC:x", ES_ERR_INVALID, "not a valid DID");
    expect_failure(f, "did:key:zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj", ES_ERR_INVALID,
                   "only did:plc and did:web");
    expect_failure(f, "did:web:example.com:users:alice", ES_ERR_INVALID, "path");
    assert_int_equal(standin_requests(&f->http), 3);
}

/* A server slower than the timeout: ES_ERR_TIMEOUT, in about the timeout. */
static void slow_server(void **state)
{
    fixture *f = *state;
    char body[2048];
    doc_text(body, sizeof body, "did:plc:slow", "slow.test", KEY_A);
    standin_route_set(&f->http, "/did:plc:slow", 200, body, 1500);
    int64_t t0 = esi_atp_monotonic_ms();
    expect_failure(f, "did:plc:slow", ES_ERR_TIMEOUT, "did not answer within 300 ms");
    int64_t took = esi_atp_monotonic_ms() - t0;
    assert_true(took >= 250 && took < 1400);
}

/* Within the TTL the cache answers; after it, the document is fetched again
 * (a rotated key shows up). Invalidation refetches at once. */
static void ttl_and_invalidation(void **state)
{
    fixture *f = *state;
    const char *did = "did:plc:rotating";
    serve_doc(f, did, "rot.test", KEY_A);
    esi_atp_did_doc *d = resolve_ok(f, did);
    assert_string_equal(d->signing_key, KEY_A);
    esi_atp_did_doc_destroy(d);
    serve_doc(f, did, "rot.test", KEY_B); /* the key rotates at the directory */
    f->now_ms += 59999;
    d = resolve_ok(f, did);
    assert_string_equal(d->signing_key, KEY_A); /* still cached */
    esi_atp_did_doc_destroy(d);
    assert_int_equal(standin_requests(&f->http), 1);
    f->now_ms += 1;
    d = resolve_ok(f, did);
    assert_string_equal(d->signing_key, KEY_B); /* expired: refetched */
    esi_atp_did_doc_destroy(d);
    assert_int_equal(standin_requests(&f->http), 2);
    serve_doc(f, did, "renamed.test", KEY_A);
    esi_atp_resolver_invalidate(f->r, did);
    esi_atp_resolver_invalidate(f->r, "did:plc:nevercached"); /* no-op */
    esi_atp_resolver_invalidate(NULL, did);
    d = resolve_ok(f, did);
    assert_string_equal(d->handle, "renamed.test");
    assert_string_equal(d->signing_key, KEY_A);
    esi_atp_did_doc_destroy(d);
    assert_int_equal(standin_requests(&f->http), 3);
}

/* Seeded documents (the --did-docs file) answer without the network and do
 * not expire; invalidation drops them. */
static void seeded_documents(void **state)
{
    fixture *f = *state;
    char body[2048];
    doc_text(body, sizeof body, "did:plc:seeded", "seed.test", KEY_A);
    esi_atp_did_doc *seed = NULL;
    assert_int_equal(esi_atp_did_doc_parse(body, strlen(body), &seed), ES_OK);
    assert_int_equal(esi_atp_resolver_seed(f->r, seed), ES_OK);
    f->now_ms += (int64_t)365 * 24 * 3600 * 1000;
    esi_atp_did_doc *d = resolve_ok(f, "did:plc:seeded");
    assert_string_equal(d->signing_key, KEY_A);
    esi_atp_did_doc_destroy(d);
    assert_int_equal(standin_requests(&f->http), 0);
    esi_atp_resolver_invalidate(f->r, "did:plc:seeded");
    expect_failure(f, "did:plc:seeded", ES_ERR_NOT_FOUND, "HTTP 404");
    assert_int_equal(standin_requests(&f->http), 1);
}

/* Offline (--offline): the seeded documents are all there is. Another DID
 * fails as unreachable, an invalidation keeps the seed, and nothing ever
 * reaches the directory, even one that would answer. */
static void offline_resolver(void **state)
{
    fixture *f = *state;
    esi_atp_resolver_options o;
    esi_atp_resolver_options_init(&o);
    o.plc_url = f->plc_url;
    o.allow_insecure = 1;
    o.offline = 1;
    esi_atp_resolver *r = NULL;
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_OK);
    serve_doc(f, "did:plc:seeded", "seed.test", KEY_B);
    serve_doc(f, "did:plc:other", "other.test", KEY_B);
    char body[2048];
    doc_text(body, sizeof body, "did:plc:seeded", "seed.test", KEY_A);
    esi_atp_did_doc *seed = NULL, *d = NULL;
    assert_int_equal(esi_atp_did_doc_parse(body, strlen(body), &seed), ES_OK);
    assert_int_equal(esi_atp_resolver_seed(r, seed), ES_OK);
    assert_int_equal(esi_atp_resolve(r, "did:plc:other", &d), ES_ERR_CONNECTION);
    assert_non_null(strstr(es_last_error(), "offline"));
    esi_atp_resolver_invalidate(r, "did:plc:seeded");
    assert_int_equal(esi_atp_resolve(r, "did:plc:seeded", &d), ES_OK);
    assert_string_equal(d->signing_key, KEY_A); /* the seed, not the directory's KEY_B */
    esi_atp_did_doc_destroy(d);
    esi_atp_resolver_stats st;
    esi_atp_resolver_stats_get(r, &st);
    assert_int_equal(st.fetches, 0);
    assert_int_equal(standin_requests(&f->http), 0);
    esi_atp_resolver_destroy(r);
}

/* did:web: https://<host>/.well-known/did.json, here over http on loopback
 * (the test-only switch); the port is percent-encoded in the DID. */
static void did_web(void **state)
{
    fixture *f = *state;
    char did[64], body[2048];
    snprintf(did, sizeof did, "did:web:127.0.0.1%%3A%d", f->http.port);
    doc_text(body, sizeof body, did, "web.test", KEY_B);
    standin_route_set(&f->http, "/.well-known/did.json", 200, body, 0);
    esi_atp_did_doc *d = resolve_ok(f, did);
    assert_string_equal(d->did, did);
    assert_string_equal(d->signing_key, KEY_B);
    assert_string_equal(d->handle, "web.test");
    esi_atp_did_doc_destroy(d);
    /* The same host serving someone else's document is refused. */
    doc_text(body, sizeof body, "did:web:other.test", "web.test", KEY_B);
    standin_route_set(&f->http, "/.well-known/did.json", 200, body, 0);
    esi_atp_resolver_invalidate(f->r, did);
    expect_failure(f, did, ES_ERR_DECODE, "another DID");
}

/* Nothing listens: ES_ERR_CONNECTION, with curl's reason. */
static void nobody_listening(void **state)
{
    (void)state;
    standin closed; /* a port that was just free */
    assert_int_equal(standin_start(&closed), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", closed.port);
    standin_stop(&closed);
    esi_atp_resolver_options o;
    esi_atp_resolver_options_init(&o);
    o.plc_url = url;
    o.timeout_ms = 2000;
    o.allow_insecure = 1;
    esi_atp_resolver *r = NULL;
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_OK);
    esi_atp_did_doc *d = NULL;
    assert_int_equal(esi_atp_resolve(r, "did:plc:nobody", &d), ES_ERR_CONNECTION);
    assert_non_null(strstr(es_last_error(), "fetching"));
    esi_atp_resolver_destroy(r);
}

/* A document is fetched again on demand (a signature failure: the key may
 * have rotated), even a seeded one, but at most once a minute; a failed
 * refresh keeps the cached document. */
static void refresh_is_rate_limited(void **state)
{
    fixture *f = *state;
    char body[2048];
    doc_text(body, sizeof body, "did:plc:rot", "rot.test", KEY_A);
    esi_atp_did_doc *d = NULL;
    assert_int_equal(esi_atp_did_doc_parse(body, strlen(body), &d), ES_OK);
    assert_int_equal(esi_atp_resolver_seed(f->r, d), ES_OK);
    /* the directory does not know it: the seeded document stays */
    assert_int_equal(esi_atp_resolver_refresh(f->r, "did:plc:rot", NULL), ES_ERR_NOT_FOUND);
    assert_int_equal(standin_requests(&f->http), 1);
    d = resolve_ok(f, "did:plc:rot");
    assert_string_equal(d->signing_key, KEY_A);
    esi_atp_did_doc_destroy(d);
    /* within the minute: refused without a request */
    serve_doc(f, "did:plc:rot", "rot.test", KEY_B);
    f->now_ms += 59000;
    assert_int_equal(esi_atp_resolver_refresh(f->r, "did:plc:rot", NULL), ES_ERR_LIMIT);
    assert_int_equal(standin_requests(&f->http), 1);
    /* after it: fetched, the rotated key replaces the seeded one */
    f->now_ms += 1000;
    assert_int_equal(esi_atp_resolver_refresh(f->r, "did:plc:rot", NULL), ES_OK);
    assert_int_equal(standin_requests(&f->http), 2);
    d = resolve_ok(f, "did:plc:rot");
    assert_string_equal(d->signing_key, KEY_B);
    esi_atp_did_doc_destroy(d);
    assert_int_equal(esi_atp_resolver_refresh(f->r, "did:plc:rot", NULL), ES_ERR_LIMIT);
}

/* Without the test switch: an http PLC directory is refused, and a did:web
 * naming a loopback or private host is never connected to (a relay chooses
 * the DIDs; SSRF), even though a server listens there. */
static void insecure_refused(void **state)
{
    fixture *f = *state;
    esi_atp_resolver_options o;
    esi_atp_resolver_options_init(&o);
    esi_atp_resolver *r = NULL;
    o.plc_url = f->plc_url; /* http://127.0.0.1:<port>/ */
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "https"));
    esi_atp_resolver_options_init(&o);
    o.timeout_ms = 2000;
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_OK);
    const char *hosts[] = {"127.0.0.1", "localhost", "10.0.0.1", "192.168.1.1", "169.254.169.254",
                           "172.16.0.1", "100.64.0.1", "0.0.0.0"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char did[128];
        snprintf(did, sizeof did, "did:web:%s%%3A%d", hosts[i], f->http.port);
        esi_atp_did_doc *d = NULL;
        assert_int_equal(esi_atp_resolve(r, did, &d), ES_ERR_CONNECTION);
        if (strstr(es_last_error(), "no public address") == NULL)
            fail_msg("%s: %s", did, es_last_error());
    }
    assert_int_equal(standin_requests(&f->http), 0);
    esi_atp_resolver_destroy(r);
}

/* A full cache makes room (expired entries first) rather than growing. */
static void bounded_cache(void **state)
{
    (void)state;
    esi_atp_resolver_options o;
    esi_atp_resolver_options_init(&o);
    o.max_entries = 3;
    esi_atp_resolver *r = NULL;
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_OK);
    for (int i = 0; i < 10; i++) {
        char body[2048], did[64];
        snprintf(did, sizeof did, "did:plc:n%d", i);
        doc_text(body, sizeof body, did, "n.test", KEY_A);
        esi_atp_did_doc *d = NULL;
        assert_int_equal(esi_atp_did_doc_parse(body, strlen(body), &d), ES_OK);
        assert_int_equal(esi_atp_resolver_seed(r, d), ES_OK);
        esi_atp_resolver_stats st;
        esi_atp_resolver_stats_get(r, &st);
        assert_true(st.cached <= 3);
    }
    esi_atp_resolver_destroy(r);
    esi_atp_resolver_destroy(NULL);
    o.timeout_ms = 0;
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_ERR_INVALID);
    esi_atp_resolver_options_init(&o);
    o.ttl_ms = INT64_MAX; /* now + TTL would overflow */
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_ERR_INVALID);
    esi_atp_resolver_options_init(&o);
    char long_url[2000];
    memset(long_url, 'a', sizeof long_url - 1);
    long_url[sizeof long_url - 1] = '\0';
    o.plc_url = long_url;
    assert_int_equal(esi_atp_resolver_create(&o, &r), ES_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(corpus_through_plc, setup, teardown),
        cmocka_unit_test_setup_teardown(http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(negative_caching, setup, teardown),
        cmocka_unit_test_setup_teardown(negative_caching_off, setup, teardown),
        cmocka_unit_test_setup_teardown(negative_caching_refuses_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_server, setup, teardown),
        cmocka_unit_test_setup_teardown(ttl_and_invalidation, setup, teardown),
        cmocka_unit_test_setup_teardown(seeded_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(did_web, setup, teardown),
        cmocka_unit_test_setup_teardown(insecure_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(refresh_is_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(offline_resolver, setup, teardown),
        cmocka_unit_test(nobody_listening),
        cmocka_unit_test(bounded_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
