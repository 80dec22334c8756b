/* DID documents: the fields picked from hostile JSON, the handle syntax, and
 * the `--did-docs` file (the real corpus's documents when ../shared is there). */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "../src/atp_internal.h"
#include "../src/identity.h"
#include "fixtures.h"

#define DID "did:plc:2a7ygipkrbh544aqhcav53oy"

/* A document shaped like the PLC directory's, with the parts given. */
static char *make_doc(const char *id, const char *aka, const char *vm_id, const char *vm_type,
                      const char *controller, const char *svc_endpoint)
{
    char *out = malloc(8192);
    snprintf(out, 8192,
             "{\"@context\":[\"https://www.w3.org/ns/did/v1\"],\"id\":\"%s\","
             "\"alsoKnownAs\":[\"https://example.com\",\"%s\"],"
             "\"verificationMethod\":[{\"id\":\"%s\",\"type\":\"%s\",\"controller\":\"%s\","
             "\"publicKeyMultibase\":\"zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj\"}],"
             "\"service\":[{\"id\":\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
             "\"serviceEndpoint\":\"%s\"}]}",
             id, aka, vm_id, vm_type, controller, svc_endpoint);
    return out;
}

static esi_atp_did_doc *parse_ok(const char *json)
{
    esi_atp_did_doc *d = NULL;
    es_status s = esi_atp_did_doc_parse(json, strlen(json), &d);
    if (s != ES_OK)
        fail_msg("parse: %s", es_last_error());
    return d;
}

static void full_document(void **state)
{
    (void)state;
    char *j = make_doc(DID, "at://Alice.Example.COM", DID "#atproto", "Multikey", DID,
                       "https://pds.example.com");
    esi_atp_did_doc *d = parse_ok(j);
    assert_string_equal(d->did, DID);
    assert_string_equal(d->handle, "alice.example.com"); /* lower-cased */
    assert_string_equal(d->signing_key, "zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj");
    assert_string_equal(d->key_type, "Multikey");
    assert_string_equal(d->pds, "https://pds.example.com");
    esi_atp_did_doc *c = NULL;
    assert_int_equal(esi_atp_did_doc_copy(d, &c), ES_OK);
    assert_string_equal(c->signing_key, d->signing_key);
    assert_ptr_not_equal(c->signing_key, d->signing_key);
    esi_atp_did_doc_destroy(c);
    esi_atp_did_doc_destroy(d);
    esi_atp_did_doc_destroy(NULL);
    free(j);
}

/* Relative "#atproto" ids and the older key types are accepted. */
static void relative_ids_and_legacy_types(void **state)
{
    (void)state;
    const char *types[] = {"EcdsaSecp256k1VerificationKey2019",
                           "EcdsaSecp256r1VerificationKey2019"};
    for (size_t i = 0; i < 2; i++) {
        char *j = make_doc(DID, "at://bob.test", "#atproto", types[i], DID, "http://pds.test");
        esi_atp_did_doc *d = parse_ok(j);
        assert_non_null(d->signing_key);
        assert_string_equal(d->key_type, types[i]);
        assert_string_equal(d->pds, "http://pds.test");
        esi_atp_did_doc_destroy(d);
        free(j);
    }
}

/* Bad optional parts are left out, the document still parses. */
static void bad_parts_are_left_out(void **state)
{
    (void)state;
    struct {
        const char *aka, *vm_id, *type, *controller, *endpoint;
        bool handle, key, pds;
    } cases[] = {
        {"at://-bad-.test", DID "#atproto", "Multikey", DID, "https://p.test", false, true, true},
        {"at://nodots", DID "#atproto", "Multikey", DID, "https://p.test", false, true, true},
        {"at://a.test", DID "#other", "Multikey", DID, "https://p.test", true, false, true},
        {"at://a.test", "did:plc:someoneelse#atproto", "Multikey", DID, "ftp://p.test", true, false,
         false},
        {"at://a.test", DID "#atproto", "JsonWebKey2020", DID, "https://p.test", true, false, true},
        {"at://a.test", DID "#atproto", "Multikey", "did:plc:someoneelse", "", true, false, false},
    };
    for (size_t i = 0; i < ES_ARRAY_LEN(cases); i++) {
        char *j = make_doc(DID, cases[i].aka, cases[i].vm_id, cases[i].type, cases[i].controller,
                           cases[i].endpoint);
        esi_atp_did_doc *d = parse_ok(j);
        assert_int_equal(d->handle != NULL, cases[i].handle);
        assert_int_equal(d->signing_key != NULL, cases[i].key);
        assert_int_equal(d->key_type != NULL, cases[i].key);
        assert_int_equal(d->pds != NULL, cases[i].pds);
        esi_atp_did_doc_destroy(d);
        free(j);
    }
}

static void refused_documents(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "not json",
        "[1,2]",
        "{}",
        "{\"id\":42}",
        "{\"id\":\"did:PLC:x\"}",
        "{\"id\":\"did:plc:a\",\"id\":\"did:plc:b\"}", /* duplicate keys */
        "{\"id\":\"did:plc:abc\"",                     /* truncated */
    };
    for (size_t i = 0; i < ES_ARRAY_LEN(bad); i++) {
        esi_atp_did_doc *d = (esi_atp_did_doc *)1;
        assert_int_equal(esi_atp_did_doc_parse(bad[i], strlen(bad[i]), &d), ES_ERR_DECODE);
        assert_ptr_equal(d, (esi_atp_did_doc *)1); /* untouched on failure */
    }
    /* Over the size bound, even when it would parse. */
    size_t n = ESI_ATP_DID_DOC_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"id\":\"did:plc:abc\"}", 20);
    big[n] = '\0';
    esi_atp_did_doc *d = NULL;
    assert_int_equal(esi_atp_did_doc_parse(big, n, &d), ES_ERR_LIMIT);
    assert_int_equal(esi_atp_did_doc_parse(big, n - 1, &d), ES_OK); /* at the bound: fine */
    assert_null(d->handle);
    assert_null(d->signing_key);
    esi_atp_did_doc_destroy(d);
    free(big);
    assert_int_equal(esi_atp_did_doc_parse(NULL, 0, &d), ES_ERR_INVALID);
}

static bool valid_handle(const char *s)
{
    return es_atp_valid_handle(s, strlen(s));
}

static void handle_syntax(void **state)
{
    (void)state;
    assert_true(valid_handle("alice.bsky.social"));
    assert_true(valid_handle("XN--ls8h.test"));
    assert_true(valid_handle("a.b-c.de"));
    assert_true(valid_handle("11.co"));
    assert_false(valid_handle("localhost"));
    assert_false(valid_handle("a..b"));
    assert_false(valid_handle("-a.test"));
    assert_false(valid_handle("a-.test"));
    assert_false(valid_handle("a.1com"));
    assert_false(valid_handle("a.test."));
    assert_false(valid_handle("a_b.test"));
    assert_false(valid_handle(""));
    /* The interop vectors, when ../shared is there. */
    const char *names[] = {"handle_syntax_valid.txt", "handle_syntax_invalid.txt"};
    for (int v = 0; v < 2; v++) {
        char rel[128];
        snprintf(rel, sizeof rel, "atproto-interop/syntax/%s", names[v]);
        const char *path = fixture_path(rel);
        if (path == NULL)
            return;
        size_t len;
        char *text = (char *)read_whole_file(path, &len);
        assert_non_null(text);
        int checked = 0;
        for (char *line = text; *line;) {
            char *nl = strchr(line, '\n');
            size_t n = nl ? (size_t)(nl - line) : strlen(line);
            if (n > 0 && line[0] != '#') {
                if (es_atp_valid_handle(line, n) != (v == 0))
                    fail_msg("%s: '%.*s'", names[v], (int)n, line);
                checked++;
            }
            line += n + (nl != NULL);
        }
        assert_true(checked > 0);
        free(text);
    }
}

typedef struct tally {
    size_t docs, keys, handles, pds;
} tally;

static es_status count_doc(void *ctx, esi_atp_did_doc *doc)
{
    tally *t = ctx;
    t->docs++;
    t->keys += doc->signing_key != NULL;
    t->handles += doc->handle != NULL;
    t->pds += doc->pds != NULL;
    esi_atp_did_doc_destroy(doc);
    return ES_OK;
}

/* Every document of the corpus's did_docs.json.zst yields a key and a handle. */
static void corpus_did_docs(void **state)
{
    (void)state;
    const char *path = fixture_path("firehose-corpus/did_docs.json.zst");
    if (path == NULL)
        skip();
    tally t = {0};
    size_t n = 0;
    if (esi_atp_did_docs_load(path, count_doc, &t, &n) != ES_OK)
        fail_msg("%s", es_last_error());
    printf("did_docs.json.zst: %zu documents, %zu signing keys, %zu handles, %zu PDS endpoints\n",
           n, t.keys, t.handles, t.pds);
    assert_int_equal(n, t.docs);
    assert_true(n > 0);
    assert_int_equal(t.keys, n);
    assert_int_equal(t.handles, n);
}

static const char *write_temp(const char *text)
{
    static char path[] = "/tmp/es-did-docs-XXXXXX";
    strcpy(path, "/tmp/es-did-docs-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static es_status stop_at_second(void *ctx, esi_atp_did_doc *doc)
{
    size_t *seen = ctx;
    esi_atp_did_doc_destroy(doc);
    return ++*seen == 2 ? es_error(ES_ERR_ABORTED, "enough") : ES_OK;
}

/* A plain (uncompressed) file, and the files that are refused. */
static void did_docs_file_rules(void **state)
{
    (void)state;
    tally t = {0};
    size_t n = 0;
    const char *p = write_temp("{\"did:plc:aaa\":{\"id\":\"did:plc:aaa\"},"
                               " \"did:web:a.test\":{\"id\":\"did:web:a.test\"}}");
    assert_int_equal(esi_atp_did_docs_load(p, count_doc, &t, &n), ES_OK);
    assert_int_equal(n, 2);
    size_t seen = 0;
    assert_int_equal(esi_atp_did_docs_load(p, stop_at_second, &seen, &n), ES_ERR_ABORTED);
    assert_int_equal(n, 1);
    unlink(p);
    const char *bad[] = {
        "{\"did:plc:aaa\":{\"id\":\"did:plc:bbb\"}}", /* filed under another DID */
        "{\"did:plc:aaa\":{\"id\":\"nope\"}}",
        "[{\"id\":\"did:plc:aaa\"}]",
        "{\"did:plc:aaa\":",
        "\x28\xb5\x2f\xfd garbage", /* zstd magic, corrupt frame */
    };
    for (size_t i = 0; i < ES_ARRAY_LEN(bad); i++) {
        p = write_temp(bad[i]);
        assert_int_equal(esi_atp_did_docs_load(p, count_doc, &t, NULL), ES_ERR_DECODE);
        unlink(p);
    }
    assert_int_equal(esi_atp_did_docs_load("/nonexistent/did_docs.json", count_doc, &t, NULL),
                     ES_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_document),          cmocka_unit_test(relative_ids_and_legacy_types),
        cmocka_unit_test(bad_parts_are_left_out), cmocka_unit_test(refused_documents),
        cmocka_unit_test(handle_syntax),          cmocka_unit_test(corpus_did_docs),
        cmocka_unit_test(did_docs_file_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
