#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <es/atproto.h>

static bool keeps(const es_atp_filter *f, const char *nsid)
{
    return es_atp_filter_keeps_collection(f, nsid, strlen(nsid));
}

static bool keeps_did(const es_atp_filter *f, const char *did)
{
    return es_atp_filter_keeps_did(f, did, strlen(did));
}

static void empty_filter_keeps_everything(void **state)
{
    (void)state;
    es_atp_filter *f = NULL;
    assert_int_equal(es_atp_filter_create(&f), ES_OK);
    assert_true(keeps(f, "app.bsky.feed.post"));
    assert_true(keeps_did(f, "did:plc:abc"));
    assert_true(keeps(NULL, "app.bsky.feed.post"));
    assert_true(keeps_did(NULL, "did:plc:abc"));
    es_atp_filter_destroy(f);
    es_atp_filter_destroy(NULL);
}

static void collection_patterns(void **state)
{
    (void)state;
    es_atp_filter *f = NULL;
    assert_int_equal(es_atp_filter_create(&f), ES_OK);
    assert_int_equal(es_atp_filter_add_collections(f, "app.bsky.feed.*,app.bsky.graph.follow"),
                     ES_OK);
    assert_true(keeps(f, "app.bsky.feed.post"));
    assert_true(keeps(f, "app.bsky.feed.like"));
    assert_true(keeps(f, "app.bsky.feed.threadgate"));
    assert_true(keeps(f, "app.bsky.graph.follow"));
    assert_false(keeps(f, "app.bsky.graph.followx"));
    assert_false(keeps(f, "app.bsky.graph.block"));
    assert_false(keeps(f, "app.bsky.feedx.post")); /* wildcards stop at segment boundaries */
    assert_false(keeps(f, "app.bsky.feed"));
    assert_false(keeps(f, "fm.teal.alpha.actor.status"));
    /* a broader prefix added later, with white space as separator */
    assert_int_equal(es_atp_filter_add_collections(f, " fm.* ,"), ES_OK);
    assert_true(keeps(f, "fm.teal.alpha.actor.status"));
    es_atp_filter_destroy(f);

    assert_int_equal(es_atp_filter_create(&f), ES_OK);
    assert_int_equal(es_atp_filter_add_collections(f, "*"), ES_OK);
    assert_true(keeps(f, "any.thing.here"));
    es_atp_filter_destroy(f);
}

static void bad_patterns_change_nothing(void **state)
{
    (void)state;
    es_atp_filter *f = NULL;
    assert_int_equal(es_atp_filter_create(&f), ES_OK);
    const char *bad[] = {"app.bsky.fe*", "app.*.post",        "app.bsky.feed.post,app_x.y.z",
                         ".*",           "app..feed.*",       "app.bsky.feed.*.*",
                         "app.bsky",     "app.bsky.feed.p st"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(es_atp_filter_add_collections(f, bad[i]), ES_ERR_INVALID);
        assert_true(keeps(f, "app.bsky.feed.post")); /* still empty: keeps everything */
        assert_true(keeps(f, "x.y.z"));
    }
    es_atp_filter_destroy(f);
}

static void collect_nsid(void *ctx, const char *nsid, size_t len)
{
    char *out = ctx;
    strncat(out, nsid, len);
    strcat(out, ";");
}

/* Only exact NSIDs are a closed set a server may narrow a consumer to. */
static void exact_collections(void **state)
{
    (void)state;
    char seen[256] = "";
    es_atp_filter *f = NULL;
    assert_int_equal(es_atp_filter_create(&f), ES_OK);
    assert_false(es_atp_filter_exact_collections(f, collect_nsid, seen)); /* none: all */
    assert_int_equal(es_atp_filter_add_collections(f, "app.bsky.feed.post, app.bsky.graph.follow"),
                     ES_OK);
    assert_true(es_atp_filter_exact_collections(f, collect_nsid, seen));
    assert_string_equal(seen, "app.bsky.feed.post;app.bsky.graph.follow;");
    assert_int_equal(es_atp_filter_add_collections(f, "app.bsky.actor.*"), ES_OK);
    seen[0] = '\0';
    assert_false(es_atp_filter_exact_collections(f, collect_nsid, seen));
    assert_string_equal(seen, ""); /* nothing passed for an open set */
    es_atp_filter_destroy(f);
    assert_int_equal(es_atp_filter_create(&f), ES_OK);
    assert_int_equal(es_atp_filter_add_collections(f, "app.bsky.feed.post,*"), ES_OK);
    assert_false(es_atp_filter_exact_collections(f, collect_nsid, seen));
    assert_false(es_atp_filter_exact_collections(NULL, collect_nsid, seen));
    es_atp_filter_destroy(f);
}

static void did_lists(void **state)
{
    (void)state;
    es_atp_filter *f = NULL;
    assert_int_equal(es_atp_filter_create(&f), ES_OK);
    assert_int_equal(es_atp_filter_add_dids_arg(f, "did:plc:aaa,did:web:example.com"), ES_OK);
    assert_true(keeps_did(f, "did:plc:aaa"));
    assert_true(keeps_did(f, "did:web:example.com"));
    assert_false(keeps_did(f, "did:plc:aa"));
    assert_false(keeps_did(f, "did:plc:aaaa"));
    assert_int_equal(es_atp_filter_add_dids(f, "not-a-did"), ES_ERR_INVALID);
    /* many DIDs: the set grows and keeps them all */
    char did[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(did, sizeof did, "did:plc:n%d", i);
        assert_int_equal(es_atp_filter_add_dids(f, did), ES_OK);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(did, sizeof did, "did:plc:n%d", i);
        assert_true(keeps_did(f, did));
        snprintf(did, sizeof did, "did:plc:m%d", i);
        assert_false(keeps_did(f, did));
    }
    es_atp_filter_destroy(f);
}

static void did_file(void **state)
{
    (void)state;
    char path[] = "/tmp/es-dids-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "# followed accounts\n"
                        "did:plc:one  did:plc:two,did:plc:three # trailing comment did:plc:four\n"
                        "\n\tdid:web:example.com\r\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    es_atp_filter *f = NULL;
    assert_int_equal(es_atp_filter_create(&f), ES_OK);
    assert_int_equal(es_atp_filter_add_dids_arg(f, path), ES_OK);
    assert_true(keeps_did(f, "did:plc:one"));
    assert_true(keeps_did(f, "did:plc:two"));
    assert_true(keeps_did(f, "did:plc:three"));
    assert_false(keeps_did(f, "did:plc:four"));
    assert_true(keeps_did(f, "did:web:example.com"));
    assert_false(keeps_did(f, "did:plc:five"));
    assert_int_equal(es_atp_filter_add_dids_arg(f, "/nonexistent/dids.txt"), ES_ERR_NOT_FOUND);
    es_atp_filter_destroy(f);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_filter_keeps_everything),
        cmocka_unit_test(collection_patterns),
        cmocka_unit_test(bad_patterns_change_nothing),
        cmocka_unit_test(exact_collections),
        cmocka_unit_test(did_lists),
        cmocka_unit_test(did_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
