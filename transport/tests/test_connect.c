/* es/connect.h without a server: defaults, options refused before any
 * connection is tried, and the one-line reason when nobody answers. (Live
 * connections are tested by the conformance suite.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/connect.h>

static void defaults_are_the_nats_clis(void **state)
{
    (void)state;
    es_connect_options o;
    memset(&o, 0xff, sizeof o);
    es_connect_options_init(&o);
    assert_null(o.servers);
    assert_null(o.user);
    assert_null(o.nkey_seed_file);
    assert_null(o.tls_ca_file);
    assert_int_equal(o.timeout_ms, 5000);
    assert_int_equal(o.max_reconnect, 60);
    assert_int_equal(o.reconnect_wait_ms, 500);
    assert_int_equal(o.reconnect_buffer_bytes, 8 << 20);
    assert_string_equal(ES_CONNECT_DEFAULT_URL, "nats://127.0.0.1:4222");
    assert_true(strlen(es_nats_client_version()) > 0);
}

/* Options that cannot work are refused before anything is dialled. */
static void unusable_options_are_invalid(void **state)
{
    (void)state;
    natsConnection *nc = (natsConnection *)&nc; /* must become NULL */
    es_connect_options o;

    es_connect_options_init(&o);
    o.nkey_seed_file = "/nonexistent/seed"; /* without its public key */
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    assert_null(nc);
    assert_non_null(strstr(es_last_error(), "NKey"));

    es_connect_options_init(&o);
    o.nkey_public = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";
    o.nkey_seed_file = "/nonexistent/seed";
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "/nonexistent/seed"));

    es_connect_options_init(&o);
    o.tls_cert_file = "/nonexistent/cert.pem"; /* without its key */
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "key"));

    es_connect_options_init(&o);
    o.tls_ca_file = "/nonexistent/ca.pem";
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "TLS"));

    es_connect_options_init(&o);
    o.creds_file = "/nonexistent/user.creds";
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "credentials"));
    /* and why: not "cannot connect … Error" */
    assert_non_null(strstr(es_last_error(), "'/nonexistent/user.creds': No such file or directory"));
    o.creds_file = NULL;
    o.nkey_public = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";
    o.nkey_seed_file = "/nonexistent/seed";
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "'/nonexistent/seed': No such file or directory"));

    es_connect_options_init(&o);
    o.timeout_ms = 0;
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    es_connect_options_init(&o);
    o.max_reconnect = -2;
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);

    es_connect_options_init(&o);
    o.servers = " , ";
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "server URL"));

    assert_int_equal(es_connect(&o, NULL), ES_ERR_INVALID);
}

/* A malformed URL is refused before anything is dialled, as invalid: nats.c
 * itself takes any scheme and any text as a host, and then reports that no
 * server answers. */
static void malformed_urls_are_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "bogus://x",
        "not a url",
        "nats://",
        "nats://host:0",
        "nats://host:65536",
        "nats://host:42x",
        "nats://a/b",
        "http://127.0.0.1:4222",
        "ws://127.0.0.1:8080",
        "nats://ok:4222, not a url",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_connect_options o;
        es_connect_options_init(&o);
        o.servers = bad[i];
        natsConnection *nc = (natsConnection *)&nc;
        if (es_connect(&o, &nc) != ES_ERR_INVALID || strstr(es_last_error(), "invalid URL") == NULL)
            fail_msg("'%s' was not refused as an invalid URL: %s", bad[i], es_last_error());
        assert_null(nc);
    }
    /* Well-formed ones get as far as dialling: nobody listens on port 1. */
    static const char *const good[] = {
        "nats://127.0.0.1:1",
        "127.0.0.1:1",
        "tls://u:p@127.0.0.1:1",
        "NATS://127.0.0.1:1/",
        " nats://127.0.0.1:1 ,nats://[::1]:1",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        es_connect_options o;
        es_connect_options_init(&o);
        o.servers = good[i];
        o.timeout_ms = 500;
        o.max_reconnect = 0;
        natsConnection *nc = NULL;
        es_status s = es_connect(&o, &nc);
        if (s == ES_OK || strstr(es_last_error(), "invalid URL") != NULL)
            fail_msg("'%s': %s", good[i], es_last_error());
        es_connection_close(nc);
    }
}

/* Port 1 of the loopback: nobody listens, the refusal comes at once. */
static void nobody_answering_says_so(void **state)
{
    (void)state;
    es_connect_options o;
    es_connect_options_init(&o);
    o.servers = "nats://127.0.0.1:1, nats://127.0.0.1:1";
    o.timeout_ms = 500;
    natsConnection *nc = NULL;
    assert_int_equal(es_connect(&o, &nc), ES_ERR_CONNECTION);
    assert_null(nc);
    assert_non_null(strstr(es_last_error(), "no server is answering"));
    assert_non_null(strstr(es_last_error(), "127.0.0.1:1"));
    es_connection_close(NULL); /* accepts NULL */
    assert_int_equal(es_shutdown(2000), ES_OK);
}

/* A URL's password (or token) is never shown in an error: masked "***". */
static void passwords_are_masked(void **state)
{
    (void)state;
    es_connect_options o;
    es_connect_options_init(&o);
    o.servers = "nats://bob:s3cret@127.0.0.1:1, tls://t0ken@127.0.0.1:1,nats://127.0.0.1:1";
    o.timeout_ms = 500;
    o.max_reconnect = 0;
    natsConnection *nc = NULL;
    assert_int_equal(es_connect(&o, &nc), ES_ERR_CONNECTION);
    const char *e = es_last_error();
    if (strstr(e, "s3cret") != NULL || strstr(e, "t0ken") != NULL)
        fail_msg("a secret in the error: %s", e);
    assert_non_null(strstr(e, "nats://bob:***@127.0.0.1:1"));
    assert_non_null(strstr(e, "tls://***@127.0.0.1:1"));
    assert_non_null(strstr(e, "nats://127.0.0.1:1"));
    o.servers = "nats://bob:s3cret@bad host:4222";
    assert_int_equal(es_connect(&o, &nc), ES_ERR_INVALID);
    e = es_last_error();
    if (strstr(e, "s3cret") != NULL)
        fail_msg("a secret in the error: %s", e);
    assert_non_null(strstr(e, "invalid URL 'nats://bob:***@bad host:4222'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_nats_clis),
        cmocka_unit_test(unusable_options_are_invalid),
        cmocka_unit_test(malformed_urls_are_invalid),
        cmocka_unit_test(nobody_answering_says_so),
        cmocka_unit_test(passwords_are_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
