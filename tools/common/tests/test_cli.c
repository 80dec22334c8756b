/* Unit tests of tools/common: exit codes, the option parser, numbers,
 * durations, sizes and NKey seeds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <sodium.h>

#include "nats_home.h"

#include <es/base.h>

#include "backoff.h"
#include "cli.h"
#include "clock.h"
#include "hash.h"
#include "nkey.h"

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(es_cli_exit_code(ES_OK), ES_EXIT_OK);
    assert_int_equal(es_cli_exit_code(ES_ERR_INVALID), ES_EXIT_USAGE);
    assert_int_equal(es_cli_exit_code(ES_ERR_DECODE), ES_EXIT_USAGE);
    assert_int_equal(es_cli_exit_code(ES_ERR_NOT_FOUND), ES_EXIT_NOT_FOUND);
    assert_int_equal(es_cli_exit_code(ES_ERR_CONFLICT), ES_EXIT_CONFLICT);
    assert_int_equal(es_cli_exit_code(ES_ERR_EXISTS), ES_EXIT_CONFLICT);
    assert_int_equal(es_cli_exit_code(ES_ERR_CONNECTION), ES_EXIT_SERVER);
    assert_int_equal(es_cli_exit_code(ES_ERR_SERVER), ES_EXIT_SERVER);
    assert_int_equal(es_cli_exit_code(ES_ERR_TIMEOUT), ES_EXIT_SERVER);
}

enum { O_LIMIT = 1, O_FOLLOW };
static const es_cli_option opts[] = {
    {"limit", 'n', true, O_LIMIT},
    {"follow", 'f', false, O_FOLLOW},
    {NULL, 0, false, 0},
};

static void test_parser(void **state)
{
    (void)state;
    char *argv[] = {"store", "--limit",  "5",          "-f", "--limit=7",
                    "-n9",   "--server", "nats://x:1", "--", "--not-an-option",
                    "-"};
    es_cli_parser p;
    es_cli_parser_init(&p, 11, argv, opts);
    assert_int_equal(es_cli_next(&p), ES_CLI_ARG);
    assert_string_equal(p.value, "store");
    assert_int_equal(es_cli_next(&p), O_LIMIT);
    assert_string_equal(p.value, "5");
    assert_int_equal(es_cli_next(&p), O_FOLLOW);
    assert_null(p.value);
    assert_int_equal(es_cli_next(&p), O_LIMIT);
    assert_string_equal(p.value, "7");
    assert_int_equal(es_cli_next(&p), O_LIMIT);
    assert_string_equal(p.value, "9");
    assert_int_equal(es_cli_next(&p), ES_CLI_OPT_SERVER);
    assert_string_equal(p.value, "nats://x:1");
    assert_int_equal(es_cli_next(&p), ES_CLI_ARG);
    assert_string_equal(p.value, "--not-an-option");
    assert_int_equal(es_cli_next(&p), ES_CLI_ARG);
    assert_string_equal(p.value, "-");
    assert_int_equal(es_cli_next(&p), ES_CLI_END);
}

static void test_parser_errors(void **state)
{
    (void)state;
    char *unknown[] = {"--nope"};
    char *missing[] = {"--limit"};
    char *extra[] = {"--follow=yes"};
    char *letter[] = {"-z"};
    es_cli_parser p;
    es_cli_parser_init(&p, 1, unknown, opts);
    assert_int_equal(es_cli_next(&p), ES_CLI_ERROR);
    es_cli_parser_init(&p, 1, missing, opts);
    assert_int_equal(es_cli_next(&p), ES_CLI_ERROR);
    es_cli_parser_init(&p, 1, extra, opts);
    assert_int_equal(es_cli_next(&p), ES_CLI_ERROR);
    es_cli_parser_init(&p, 1, letter, opts);
    assert_int_equal(es_cli_next(&p), ES_CLI_ERROR);
}

static void test_numbers(void **state)
{
    (void)state;
    uint64_t u = 0;
    int64_t v = 0;
    assert_true(es_cli_parse_u64("18446744073709551615", "n", &u));
    assert_true(u == UINT64_MAX);
    assert_false(es_cli_parse_u64("18446744073709551616", "n", &u));
    assert_false(es_cli_parse_u64("-1", "n", &u));
    assert_false(es_cli_parse_u64("12x", "n", &u));
    assert_false(es_cli_parse_u64("", "n", &u));
    assert_true(es_cli_parse_duration("90s", "d", &v));
    assert_true(v == 90LL * 1000000000LL);
    assert_true(es_cli_parse_duration("1h30m", "d", &v));
    assert_true(v == 5400LL * 1000000000LL);
    assert_true(es_cli_parse_duration("250ms", "d", &v));
    assert_true(v == 250LL * 1000000LL);
    assert_true(es_cli_parse_duration("7d", "d", &v));
    assert_true(v == 7LL * 86400 * 1000000000LL);
    assert_true(es_cli_parse_duration("30", "d", &v));
    assert_true(v == 30LL * 1000000000LL);
    assert_false(es_cli_parse_duration("30x", "d", &v));
    assert_false(es_cli_parse_duration("h", "d", &v));
    assert_false(es_cli_parse_duration("1h30", "d", &v));
    assert_false(es_cli_parse_duration("99999999999999999999d", "d", &v));
    assert_false(es_cli_parse_duration("999999999999999999d", "d", &v)); /* overflows int64 ns */
    /* Go's notation, as NATS_TIMEOUT takes it */
    assert_true(es_cli_duration_value("1.5s", &v));
    assert_true(v == 1500LL * 1000000LL);
    assert_true(es_cli_duration_value(".5s", &v));
    assert_true(v == 500LL * 1000000LL);
    assert_true(es_cli_duration_value("1m0.25s", &v));
    assert_true(v == 60250LL * 1000000LL);
    assert_true(es_cli_duration_value("2.000000001s", &v));
    assert_true(v == 2000000001LL);
    assert_true(es_cli_duration_value("10\xc2\xb5s", &v)); /* µs */
    assert_true(v == 10000);
    assert_true(es_cli_duration_value("1.5ns", &v)); /* below a nanosecond: dropped */
    assert_true(v == 1);
    assert_false(es_cli_duration_value(".s", &v));
    assert_false(es_cli_duration_value("1.5", &v));
    assert_false(es_cli_duration_value("1..5s", &v));
    assert_false(es_cli_duration_value("999999999999999999.9d", &v));
    assert_true(es_cli_parse_size("64K", "s", &v));
    assert_int_equal(v, 65536);
    assert_true(es_cli_parse_size("8MiB", "s", &v));
    assert_int_equal(v, 8 << 20);
    assert_true(es_cli_parse_size("4096", "s", &v));
    assert_int_equal(v, 4096);
    assert_false(es_cli_parse_size("4T", "s", &v));
    assert_false(es_cli_parse_size("", "s", &v));
}

/* ---- connection settings: options > environment > context > defaults ---- */

static char config_home[64];

static void write_file(const char *rel, const char *text)
{
    assert_int_equal(nats_home_write(config_home, rel, text), 0);
}

static int contexts_setup(void **state)
{
    (void)state;
    assert_int_equal(nats_home_create(config_home, sizeof config_home, "es-cli-ctx"), 0);
    write_file("nats/context/full.json",
               "{\"description\":\"all of it\",\"url\":\"nats://ctx:4222\",\"user\":\"cu\","
               "\"password\":\"cp\",\"token\":\"ct\",\"creds\":\"/c.creds\",\"nkey\":\"/c.nk\","
               "\"cert\":\"/c.pem\",\"key\":\"/c.key\",\"ca\":\"/ca.pem\","
               "\"jetstream_domain\":\"hub\",\"jetstream_api_prefix\":\"\","
               "\"socks_proxy\":\"\",\"tls_first\":false}");
    write_file("nats/context/other.json", "{\"url\":\"nats://other:4222\"}");
    return 0;
}

static int contexts_teardown(void **state)
{
    (void)state;
    assert_int_equal(nats_home_remove(config_home), 0);
    return 0;
}

/* A connection from `argv` options, completed. */
static es_status resolved(es_cli_conn *c, int argc, char **argv)
{
    es_cli_conn_init(c, "t");
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, opts);
    for (int id; (id = es_cli_next(&p)) != ES_CLI_END;)
        assert_int_equal(es_cli_conn_set(c, id, p.value), 1);
    return es_cli_conn_resolve(c);
}

static void test_context_fields(void **state)
{
    (void)state;
    es_cli_conn c;
    /* nothing selected: nothing from a context */
    assert_int_equal(resolved(&c, 0, NULL), ES_OK);
    assert_null(c.server);
    assert_null(c.js_domain);
    assert_int_equal(c.timeout_ms, 5000);
    /* every field the context has */
    write_file("nats/context.txt", "  full\n");
    assert_int_equal(resolved(&c, 0, NULL), ES_OK);
    assert_string_equal(c.server, "nats://ctx:4222");
    assert_string_equal(c.user, "cu");
    assert_string_equal(c.password, "cp");
    assert_string_equal(c.token, "ct");
    assert_string_equal(c.creds, "/c.creds");
    assert_string_equal(c.nkey, "/c.nk");
    assert_string_equal(c.tlscert, "/c.pem");
    assert_string_equal(c.tlskey, "/c.key");
    assert_string_equal(c.tlsca, "/ca.pem");
    assert_string_equal(c.js_domain, "hub");
    assert_null(c.js_api_prefix);
    es_store_options so;
    es_cli_store_options(&c, &so);
    assert_string_equal(so.js_domain, "hub");
    assert_int_equal(so.timeout_ms, 5000);
    /* the environment beats the context, options beat both */
    setenv("NATS_URL", "nats://env:4222", 1);
    setenv("NATS_TIMEOUT", "750ms", 1);
    assert_int_equal(resolved(&c, 0, NULL), ES_OK);
    assert_string_equal(c.server, "nats://env:4222");
    assert_string_equal(c.user, "cu");
    assert_int_equal(c.timeout_ms, 750);
    char *argv[] = {"--server",        "nats://opt:4222", "--timeout", "2s",
                    "--js-api-prefix", "$JS.x.API",       "--user",    "ou", "--confined"};
    assert_int_equal(resolved(&c, 9, argv), ES_OK);
    assert_true(c.confined);
    es_cli_store_options(&c, &so);
    assert_true(so.confined);
    assert_string_equal(c.server, "nats://opt:4222");
    assert_int_equal(c.timeout_ms, 2000);
    assert_string_equal(c.user, "ou");
    assert_string_equal(c.password, "cp");
    assert_null(c.js_domain); /* an option's prefix overrides the context's domain */
    assert_string_equal(c.js_api_prefix, "$JS.x.API");
    /* NATS_CONTEXT beats context.txt, --context beats NATS_CONTEXT */
    unsetenv("NATS_URL");
    setenv("NATS_CONTEXT", "other", 1);
    assert_int_equal(resolved(&c, 0, NULL), ES_OK);
    assert_string_equal(c.server, "nats://other:4222");
    assert_null(c.user);
    char *argv2[] = {"--context", "full"};
    assert_int_equal(resolved(&c, 2, argv2), ES_OK);
    assert_string_equal(c.server, "nats://ctx:4222");
    /* errors */
    setenv("NATS_TIMEOUT", "5 seconds", 1);
    assert_int_equal(resolved(&c, 0, NULL), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "NATS_TIMEOUT"));
    unsetenv("NATS_TIMEOUT");
    setenv("NATS_CONTEXT", "missing", 1);
    assert_int_equal(resolved(&c, 0, NULL), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "unknown nats context 'missing'"));
    setenv("NATS_CONTEXT", "../full", 1);
    assert_int_equal(resolved(&c, 0, NULL), ES_ERR_INVALID);
    unsetenv("NATS_CONTEXT");
    write_file("nats/context/proxy.json", "{\"url\":\"nats://p:4222\",\"socks_proxy\":\"h:1\"}");
    char *argv3[] = {"--context", "proxy"};
    assert_int_equal(resolved(&c, 2, argv3), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "socks_proxy"));
    char *argv4[] = {"--js-domain", "a", "--js-api-prefix", "b"};
    assert_int_equal(resolved(&c, 4, argv4), ES_ERR_INVALID);
    /* store options of a connection not yet resolved: as if it were */
    es_cli_conn raw;
    es_cli_conn_init(&raw, "t");
    raw.context = "full";
    es_cli_store_options(&raw, &so);
    assert_string_equal(so.js_domain, "hub");
    /* resolving twice changes nothing */
    assert_int_equal(resolved(&c, 2, argv2), ES_OK);
    setenv("NATS_URL", "nats://late:4222", 1);
    assert_int_equal(es_cli_conn_resolve(&c), ES_OK);
    assert_string_equal(c.server, "nats://ctx:4222");
}

static void test_nkey(void **state)
{
    (void)state;
    uint8_t raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(i * 7 + 1);
    char seed[ES_NKEY_SEED_LEN + 1], pub[ES_NKEY_PUBLIC_LEN + 1];
    assert_int_equal(es_nkey_encode_user_seed(raw, seed), ES_OK);
    assert_int_equal(strlen(seed), ES_NKEY_SEED_LEN);
    assert_memory_equal(seed, "SU", 2);
    assert_int_equal(es_nkey_public_from_seed(seed, strlen(seed), pub), ES_OK);
    assert_int_equal(strlen(pub), ES_NKEY_PUBLIC_LEN);
    assert_int_equal(pub[0], 'U');
    /* the key inside is Ed25519's public key of the seed */
    uint8_t pk[32], sk[64];
    crypto_sign_seed_keypair(pk, sk, raw);
    char lower[ES_NKEY_PUBLIC_LEN];
    for (int i = 0; i < ES_NKEY_PUBLIC_LEN; i++)
        lower[i] = (char)(pub[i] >= 'A' && pub[i] <= 'Z' ? pub[i] - 'A' + 'a' : pub[i]);
    uint8_t decoded[40];
    size_t n = 0;
    assert_int_equal(es_base32_decode(lower, sizeof lower, decoded, sizeof decoded, &n), ES_OK);
    assert_int_equal(n, 35);
    assert_int_equal(decoded[0], 20 << 3);
    assert_memory_equal(decoded + 1, pk, 32);
    char again[ES_NKEY_PUBLIC_LEN + 1];
    seed[10] = seed[10] == 'A' ? 'B' : 'A'; /* a typo: the checksum catches it */
    assert_int_equal(es_nkey_public_from_seed(seed, strlen(seed), again), ES_ERR_INVALID);
    assert_int_equal(es_nkey_public_from_seed("SUAAAA", 6, again), ES_ERR_INVALID);
    assert_int_equal(es_nkey_public_from_seed_file("/nonexistent/seed.nk", again), ES_ERR_IO);
}

/* The tools' one backoff: doubling from min, capped at max, jittered in
 * the upper half, and spread (not in step). */
static void test_backoff(void **state)
{
    (void)state;
    uint64_t rng = es_cli_backoff_seed();
    assert_int_not_equal(rng, 0);
    for (unsigned attempt = 0; attempt < 40; attempt++) {
        int64_t d = 100;
        for (unsigned i = 0; i < attempt && d < 5000; i++)
            d *= 2;
        d = d > 5000 ? 5000 : d;
        for (int k = 0; k < 50; k++) {
            int64_t got = es_cli_backoff_ms(100, 5000, attempt, &rng);
            if (got < d / 2 || got > d)
                fail_msg("attempt %u: %lld outside [%lld, %lld]", attempt, (long long)got,
                         (long long)(d / 2), (long long)d);
        }
    }
    int64_t first = es_cli_backoff_ms(1000, 60000, 3, &rng);
    bool spread = false;
    for (int k = 0; k < 20 && !spread; k++)
        spread = es_cli_backoff_ms(1000, 60000, 3, &rng) != first;
    assert_true(spread);
    assert_int_equal(es_cli_backoff_ms(1, 1, 7, &rng), 1);               /* nothing to jitter */
    assert_int_equal(es_cli_backoff_ms(500, 200, 0, &rng) <= 200, true); /* max wins */
}

static void test_clock_and_hash(void **state)
{
    (void)state;
    int64_t a = es_cli_monotonic_ms(), wall = es_cli_now_ns();
    es_cli_sleep_ms(20);
    int64_t b = es_cli_monotonic_ms();
    assert_true(b - a >= 19);
    assert_true(wall > 1700000000LL * 1000000000LL); /* after 2023 */
    assert_true(es_cli_monotonic_ns() / 1000000 >= b);
    assert_true(es_cli_cpu_ns() > 0);
    struct timespec d = es_cli_deadline(1500), now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ahead = (int64_t)(d.tv_sec - now.tv_sec) * 1000 + (d.tv_nsec - now.tv_nsec) / 1000000;
    assert_true(ahead > 1400 && ahead <= 1500);
    assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
    /* FNV-1a, 64 bits: the published test vectors */
    assert_true(es_cli_fnv1a("", 0) == 0xcbf29ce484222325ULL);
    assert_true(es_cli_fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(es_cli_fnv1a("foobar", 6) == 0x85944171f73967e8ULL);
}

int main(void)
{
    es_cli_set_prog("test_cli");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_parser),
        cmocka_unit_test(test_parser_errors),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_nkey),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_clock_and_hash),
        cmocka_unit_test_setup_teardown(test_context_fields, contexts_setup, contexts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
