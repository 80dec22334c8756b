/* The relay URL handling of the ingester's WebSocket source (relay.c): the
 * subscribeRepos path added when missing, ports, queries, the cursor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "relay.h"

static void request_of(const char *url, bool has_cursor, uint64_t cursor, const char *want_host,
                       int want_port, bool want_tls, const char *want_request)
{
    relay_url u;
    const char *why = NULL;
    assert_true(relay_url_parse(url, &u, &why));
    assert_string_equal(u.host, want_host);
    assert_int_equal(u.port, want_port);
    assert_int_equal(u.tls, want_tls);
    char req[2200];
    relay_url_request(&u, has_cursor, cursor, req, sizeof req);
    assert_string_equal(req, want_request);
}

static void urls_become_requests(void **state)
{
    (void)state;
    request_of("wss://bsky.network", false, 0, "bsky.network", 443, true,
               "/xrpc/com.atproto.sync.subscribeRepos");
    request_of("wss://bsky.network/", true, 31527015322ULL, "bsky.network", 443, true,
               "/xrpc/com.atproto.sync.subscribeRepos?cursor=31527015322");
    request_of("ws://127.0.0.1:2470", true, 0, "127.0.0.1", 2470, false,
               "/xrpc/com.atproto.sync.subscribeRepos?cursor=0");
    request_of("ws://relay.example:8080/xrpc/com.atproto.sync.subscribeRepos?x=1", true,
               18446744073709551615ULL, "relay.example", 8080, false,
               "/xrpc/com.atproto.sync.subscribeRepos?x=1&cursor=18446744073709551615");
    request_of("ws://h/custom/path#frag", false, 0, "h", 80, false, "/custom/path");
}

static void bad_urls_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {"http://bsky.network", "bsky.network", "wss://", "ws://:80/", "ws://h:0",
                         "ws://h:65536",        "ws://h:x",     ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        relay_url u;
        const char *why = NULL;
        assert_false(relay_url_parse(bad[i], &u, &why));
        assert_non_null(why);
    }
    char longhost[600];
    memset(longhost, 'a', sizeof longhost);
    memcpy(longhost, "ws://", 5);
    longhost[sizeof longhost - 1] = '\0';
    relay_url u;
    const char *why = NULL;
    assert_false(relay_url_parse(longhost, &u, &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(urls_become_requests),
        cmocka_unit_test(bad_urls_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
