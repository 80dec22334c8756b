#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/atproto.h>

#include "fixtures.h"

typedef bool (*validator)(const char *s, size_t len);

/* Run `check` over every line of an interop syntax file (comments and blank
 * lines skipped; other white space is significant) and expect `valid`. */
static int check_file(const char *name, validator check, bool valid)
{
    char rel[256];
    snprintf(rel, sizeof rel, "atproto-interop/syntax/%s", name);
    const char *path = fixture_path(rel);
    if (path == NULL)
        return -1;
    size_t len;
    char *text = (char *)read_whole_file(path, &len);
    assert_non_null(text);
    int checked = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n > 0 && line[0] != '#') {
            if (check(line, n) != valid)
                fail_msg("%s: '%.*s' should be %s", name, (int)n, line,
                         valid ? "valid" : "invalid");
            checked++;
        }
        line += n + (nl != NULL);
    }
    free(text);
    assert_true(checked > 0);
    return checked;
}

static void interop_vectors(void **state)
{
    (void)state;
    struct {
        const char *stem;
        validator check;
    } sets[] = {
        {"did", es_atp_valid_did},           {"nsid", es_atp_valid_nsid},
        {"recordkey", es_atp_valid_rkey},    {"tid", es_atp_valid_tid},
        {"datetime", es_atp_valid_datetime}, {"handle", es_atp_valid_handle},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s_syntax_valid.txt", sets[i].stem);
        if (check_file(name, sets[i].check, true) < 0)
            skip();
        snprintf(name, sizeof name, "%s_syntax_invalid.txt", sets[i].stem);
        check_file(name, sets[i].check, false);
    }
    check_file("datetime_parse_invalid.txt", es_atp_valid_datetime, false);
}

static bool valid(validator v, const char *s)
{
    return v(s, strlen(s));
}

/* Cases of our own, so the rules hold without ../shared too. */
static void own_cases(void **state)
{
    (void)state;
    assert_true(valid(es_atp_valid_did, "did:plc:2a7ygipkrbh544aqhcav53oy"));
    assert_true(valid(es_atp_valid_did, "did:web:example.com"));
    assert_false(valid(es_atp_valid_did, "did:plc:"));
    assert_false(valid(es_atp_valid_did, "did:PLC:x"));
    assert_false(valid(es_atp_valid_did, "did:plc:a b"));
    assert_false(valid(es_atp_valid_did, "did:plc:a*"));
    assert_false(es_atp_valid_did("did:plc:a\0b", 11));

    assert_true(valid(es_atp_valid_nsid, "app.bsky.feed.post"));
    assert_true(valid(es_atp_valid_nsid, "fm.teal.alpha.actor.status"));
    assert_false(valid(es_atp_valid_nsid, "app.bsky.feed.po_st"));
    assert_false(valid(es_atp_valid_nsid, "app.bsky.feed.*"));
    assert_false(valid(es_atp_valid_nsid, "app.bsky.feed.>"));
    assert_false(valid(es_atp_valid_nsid, "app.bsky"));
    assert_false(valid(es_atp_valid_nsid, "app..feed"));
    assert_false(valid(es_atp_valid_nsid, ""));

    assert_true(valid(es_atp_valid_rkey, "3mptbyplj5d2a"));
    assert_true(valid(es_atp_valid_rkey, "self"));
    assert_false(valid(es_atp_valid_rkey, ".."));
    assert_false(valid(es_atp_valid_rkey, "a/b"));
    assert_false(valid(es_atp_valid_rkey, ""));

    assert_true(valid(es_atp_valid_tid, "3mptbypluud2a"));
    assert_false(valid(es_atp_valid_tid, "3mptbypluud2"));
    assert_false(es_atp_valid_tid("3mptbypluud\0a", 13));
}

static void datetime_instants(void **state)
{
    (void)state;
    int64_t ns = 0;
    assert_true(es_atp_parse_datetime("1970-01-01T00:00:00Z", 20, &ns));
    assert_int_equal(ns, 0);
    const char *t = "1985-04-12T23:20:50.123Z";
    assert_true(es_atp_parse_datetime(t, strlen(t), &ns));
    assert_int_equal(ns, 482196050123000000LL);
    t = "1985-04-12T16:20:50.123-07:00";
    assert_true(es_atp_parse_datetime(t, strlen(t), &ns));
    assert_int_equal(ns, 482196050123000000LL);
    t = "2026-07-04T14:38:07.877123456789Z"; /* digits beyond nanoseconds are truncated */
    assert_true(es_atp_parse_datetime(t, strlen(t), &ns));
    assert_int_equal(ns, 1783175887877123456LL);
    t = "2024-02-29T00:00:00Z";
    assert_true(es_atp_parse_datetime(t, strlen(t), NULL));
    t = "2023-02-29T00:00:00Z";
    assert_false(es_atp_valid_datetime(t, strlen(t)));
    /* valid, but outside int64 nanoseconds */
    t = "0001-01-01T00:00:00.000Z";
    assert_true(es_atp_valid_datetime(t, strlen(t)));
    assert_false(es_atp_parse_datetime(t, strlen(t), &ns));
    t = "9999-12-31T23:59:59.999Z";
    assert_false(es_atp_parse_datetime(t, strlen(t), &ns));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(own_cases),
        cmocka_unit_test(datetime_instants),
        cmocka_unit_test(interop_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
