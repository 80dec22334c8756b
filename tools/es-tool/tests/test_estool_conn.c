/* End-to-end tests of es-tool's connection handling: nats CLI contexts and
 * their precedence (options > environment > context > defaults), settings
 * refused rather than ignored, NATS_TIMEOUT, --js-domain against a server
 * with a JetStream domain, and `replay --follow` saying on stderr that the
 * server went away and came back. The binary is argv[1]; the server at
 * $NATS_URL serves the context tests, and servers of the test's own
 * ($ES_NATS_SERVER) the domain and restart tests (skipped without it). */
#include "tool_run.h"
#include "nats_home.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char live_url[256]; /* $NATS_URL, which the tests unset for the tool */
static char config_home[64];

/* ---- nats CLI contexts in a temporary XDG_CONFIG_HOME --------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Writes context `name` with the JSON object `json`. */
static void write_context(const char *name, const char *json)
{
    char path[256];
    snprintf(path, sizeof path, "%s/nats/context/%s.json", config_home, name);
    write_text(path, json);
}

static void select_context(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/nats/context.txt", config_home);
    if (name == NULL)
        unlink(path);
    else
        write_text(path, name);
}

static int contexts_setup(void **state)
{
    (void)state;
    assert_int_equal(nats_home_create(config_home, sizeof config_home, "es-tool-ctx"), 0);
    return 0;
}

static int contexts_teardown(void **state)
{
    (void)state;
    if (nats_home_remove(config_home) != 0)
        fprintf(stderr, "could not remove %s\n", config_home);
    return 0;
}

/* `stores` with the environment as set: exit code, stderr checked by the caller. */
static int stores(run_result *r, const char *env, char *const *extra)
{
    char *args[16] = {"stores", "--timeout", "2s"};
    int n = 3;
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    run_env(r, env, NULL, 0, args);
    return r->code;
}

/* Where each setting comes from: option > environment > context > default. */
static void test_context_precedence(void **state)
{
    (void)state;
    char good[512], closed[64], bad[512], env[128];
    closed_url(closed, sizeof closed);
    snprintf(good, sizeof good, "{\"description\":\"the test's\",\"url\":\"%s\",\"token\":\"\"}",
             live_url);
    snprintf(bad, sizeof bad, "{\"url\":\"%s\"}", closed);
    write_context("good", good);
    write_context("bad", bad);
    run_result r;

    /* no option, no NATS_URL: the selected context's URL */
    select_context("good");
    assert_int_equal(stores(&r, NULL, NULL), 0);
    run_free(&r);
    /* --context names another one */
    stores(&r, NULL, (char *[]){"--context", "bad", NULL});
    assert_fails(&r, 4, closed);
    run_free(&r);
    /* NATS_CONTEXT beats context.txt, --context beats NATS_CONTEXT */
    stores(&r, "NATS_CONTEXT=bad", NULL);
    assert_fails(&r, 4, "cannot connect");
    run_free(&r);
    assert_int_equal(stores(&r, "NATS_CONTEXT=bad", (char *[]){"--context", "good", NULL}), 0);
    run_free(&r);
    /* NATS_URL beats the context's url, --server beats NATS_URL */
    snprintf(env, sizeof env, "NATS_URL=%s", closed);
    stores(&r, env, NULL);
    assert_fails(&r, 4, closed);
    run_free(&r);
    assert_int_equal(stores(&r, env, (char *[]){"--server", live_url, NULL}), 0);
    run_free(&r);
    /* an unknown or invalid name is an error, not the defaults */
    stores(&r, NULL, (char *[]){"--context", "nope", NULL});
    assert_fails(&r, 1, "unknown nats context 'nope'");
    run_free(&r);
    stores(&r, NULL, (char *[]){"--context", "../good", NULL});
    assert_fails(&r, 1, "invalid nats context name");
    run_free(&r);
    select_context(NULL);
}

/* Settings es cannot honour are refused, naming them; harmless ones pass. */
static void test_context_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *field, *needle;
    } cases[] = {
        {"\"socks_proxy\":\"127.0.0.1:1080\"", "'socks_proxy' is set: SOCKS"},
        {"\"inbox_prefix\":\"_MY\"", "'inbox_prefix'"},
        {"\"nsc\":\"nsc://op/acc/user\"", "'nsc'"},
        {"\"user_jwt\":\"eyJ0\"", "'user_jwt'"},
        {"\"tls_first\":true", "'tls_first'"},
        {"\"creds\":\"op://vault/nats\"", "credential lookups"},
        {"\"frobnicate\":\"on\"", "unknown setting 'frobnicate'"},
        {"\"url\":42", "'url' must be a string"},
    };
    char json[512];
    run_result r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(json, sizeof json, "{\"url\":\"%s\",%s}", live_url, cases[i].field);
        if (strstr(cases[i].field, "\"url\"") != NULL)
            snprintf(json, sizeof json, "{%s}", cases[i].field);
        write_context("odd", json);
        stores(&r, NULL, (char *[]){"--context", "odd", NULL});
        assert_fails(&r, 1, cases[i].needle);
        run_free(&r);
    }
    /* what the nats CLI writes for unset fields, and fields that do not
     * change the connection, are fine */
    snprintf(json, sizeof json,
             "{\"url\":\"%s\",\"socks_proxy\":\"\",\"tls_first\":false,\"nsc\":\"\","
             "\"windows_ca_certs_match\":[],\"color_scheme\":\"dark\","
             "\"jetstream_event_prefix\":\"$JS.EVENT\",\"frobnicate\":\"\"}",
             live_url);
    write_context("odd", json);
    assert_int_equal(stores(&r, NULL, (char *[]){"--context", "odd", NULL}), 0);
    run_free(&r);
    write_context("odd", "[1,2]");
    stores(&r, NULL, (char *[]){"--context", "odd", NULL});
    assert_fails(&r, 1, "not a JSON object");
    run_free(&r);
}

/* A port that accepts connections and never speaks: a connect waits for the
 * server's INFO until its timeout. */
static int silent_listener(char *url, size_t size)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 16), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    snprintf(url, size, "nats://127.0.0.1:%d", ntohs(a.sin_port));
    return s;
}

static int64_t timed_stores(const char *env, char *const *args, run_result *r)
{
    int64_t t0 = now_ms();
    run_env(r, env, NULL, 0, args);
    return now_ms() - t0;
}

/* NATS_TIMEOUT is the --timeout of the environment, in Go's notation. */
static void test_nats_timeout(void **state)
{
    (void)state;
    char url[64];
    int listener = silent_listener(url, sizeof url);
    run_result r;
    int64_t ms = timed_stores("NATS_TIMEOUT=1.5s", (char *[]){"stores", "-s", url, NULL}, &r);
    assert_int_equal(r.code, 4);
    if (ms < 1200 || ms > 4500)
        fail_msg("NATS_TIMEOUT=1.5s: gave up after %lld ms", (long long)ms);
    run_free(&r);
    ms = timed_stores("NATS_TIMEOUT=1m",
                      (char *[]){"stores", "-s", url, "--timeout", "300ms", NULL}, &r);
    assert_int_equal(r.code, 4);
    if (ms > 10000) /* NATS_TIMEOUT's minute would take 60 s */
        fail_msg("--timeout 300ms under NATS_TIMEOUT=1m: gave up after %lld ms", (long long)ms);
    run_free(&r);
    close(listener);
    run_env(&r, "NATS_TIMEOUT=soon", NULL, 0, (char *[]){"stores", NULL});
    assert_fails(&r, 1, "NATS_TIMEOUT");
    run_free(&r);
}

/* ---- servers of the test's own --------------------------------------------------- */

typedef struct own_server {
    pid_t pid;
    char dir[64];
    char url[64];
} own_server;

static own_server server; /* stopped by the teardown, whatever the outcome */

static bool log_says_ready(const char *dir)
{
    char path[128], buf[65536];
    snprintf(path, sizeof path, "%s/server.log", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, "Server is ready") != NULL;
}

/* (Re)starts the server of server.conf in server.dir; ready when it says so. */
static void server_spawn(void)
{
    const char *bin = getenv("ES_NATS_SERVER");
    char conf[128], log[128];
    snprintf(conf, sizeof conf, "%s/server.conf", server.dir);
    snprintf(log, sizeof log, "%s/server.log", server.dir);
    unlink(log);
    server.pid = fork();
    assert_true(server.pid >= 0);
    if (server.pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execl(bin, bin, "-c", conf, "-l", log, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !log_says_ready(server.dir); i++)
        usleep(50000);
    if (!log_says_ready(server.dir))
        fail_msg("nats-server did not start (see %s)", log);
}

/* A JetStream server on a free port with `extra` in its jetstream block
 * and `top` (may be NULL) at the top level of its configuration; false (the
 * test skips) without $ES_NATS_SERVER. */
static bool server_start_with(const char *extra, const char *top)
{
    const char *bin = getenv("ES_NATS_SERVER");
    if (bin == NULL || *bin == '\0') {
        print_message("ES_NATS_SERVER not set: tests with a server of their own skipped\n");
        return false;
    }
    snprintf(server.dir, sizeof server.dir, "/tmp/es-tool-srv-XXXXXX");
    assert_non_null(mkdtemp(server.dir));
    closed_url(server.url, sizeof server.url);
    char conf[128], text[1024];
    snprintf(conf, sizeof conf, "%s/server.conf", server.dir);
    snprintf(text, sizeof text, "listen: %s\njetstream {\n  store_dir: \"%s/js\"\n  %s\n}\n%s\n",
             server.url + 7, server.dir, extra ? extra : "", top ? top : "");
    write_text(conf, text);
    server_spawn();
    return true;
}

static bool server_start(const char *extra)
{
    return server_start_with(extra, NULL);
}

static void server_kill(void)
{
    if (server.pid > 0) {
        kill(server.pid, SIGKILL);
        waitpid(server.pid, NULL, 0);
        server.pid = 0;
    }
}

static int server_teardown(void **state)
{
    server_kill();
    if (server.dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", server.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", server.dir);
        server.dir[0] = '\0';
    }
    return contexts_teardown(state);
}

/* A publish the server refuses the user (a permissions violation) is told
 * as such at once, exit 7 — not as a timeout after 5 s, exit 4. */
static void test_permission_denied(void **state)
{
    (void)state;
    if (!server_start_with(NULL, "authorization { users: [\n"
                                 "  {user: admin, password: admin}\n"
                                 "  {user: reader, password: reader, permissions: {\n"
                                 "    publish: {allow: [\"$JS.API.>\"]},\n"
                                 "    subscribe: {allow: [\"_INBOX.>\"]}}}\n"
                                 "]}"))
        skip();
    char admin[96], reader[96];
    snprintf(admin, sizeof admin, "nats://admin:admin@%s", server.url + 7);
    snprintf(reader, sizeof reader, "nats://reader:reader@%s", server.url + 7);
    run_result r;
    RUN(&r, "create", "perm", "-s", admin);
    assert_ok(&r);
    run_free(&r);
    int64_t start = now_ms();
    RUN(&r, "append", "perm", "doc", "d1", "Created", "--data", "{}", "-s", reader, "--timeout",
        "5s");
    int64_t ms = now_ms() - start;
    assert_fails(&r, 7, "not permitted: Permissions Violation for Publish to");
    if (strstr(r.err, "PubAck") != NULL)
        fail_msg("a denial told as a timeout: %s", r.err);
    if (ms > 2500) /* the request timeout is 5 s */
        fail_msg("the denial took %lld ms to be told", (long long)ms);
    run_free(&r);
    /* the same as a batch */
    char batch[128];
    snprintf(batch, sizeof batch, "%s/batch.jsonl", server.dir);
    write_text(batch, "{\"type\":\"doc\",\"id\":\"d2\",\"event\":\"Created\",\"data\":{}}\n"
                      "{\"type\":\"doc\",\"id\":\"d3\",\"event\":\"Created\",\"data\":{}}\n");
    start = now_ms();
    RUN(&r, "append", "perm", "--batch", batch, "-s", reader, "--timeout", "5s");
    ms = now_ms() - start;
    assert_fails(&r, 7, "not permitted");
    if (ms > 2500)
        fail_msg("the batch's denial took %lld ms to be told", (long long)ms);
    run_free(&r);
    /* nothing was stored */
    RUN(&r, "replay", "perm", "--format", "jsonl", "-s", admin);
    assert_ok(&r);
    assert_string_equal(r.out, "");
    run_free(&r);
}

/* A TLS failure names OpenSSL's reason, not "SSL Error": a self-signed
 * certificate not trusted, then trusted but issued for another name. */
static void test_tls_failures_say_why(void **state)
{
    (void)state;
    char dir[64] = "/tmp/es-tool-tls-XXXXXX", cmd[512], top[512], cert[128], key[128];
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        print_message("no openssl command to make a test certificate: skipped\n");
        skip();
    }
    snprintf(top, sizeof top, "tls { cert_file: \"%s\", key_file: \"%s\" }", cert, key);
    if (!server_start_with(NULL, top))
        skip();
    char url[96];
    snprintf(url, sizeof url, "tls://%s", server.url + 7);
    run_result r;
    RUN(&r, "stores", "-s", url, "--timeout", "2s");
    assert_fails(&r, 4, "TLS: ");
    assert_non_null(strstr(r.err, "self-signed certificate"));
    run_free(&r);
    RUN(&r, "stores", "-s", url, "--tlsca", cert, "--timeout", "2s");
    assert_fails(&r, 4, "TLS: ");
    assert_non_null(strstr(r.err, "mismatch"));
    run_free(&r);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* --js-domain, and the context's jetstream_domain, reach a store behind a
 * JetStream domain; a wrong domain does not. */
static void test_js_domain(void **state)
{
    (void)state;
    if (!server_start("domain: hub"))
        skip();
    char *url = server.url;
    run_result r;
    RUN(&r, "create", "dom", "-s", url, "--js-domain", "hub");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "append", "dom", "doc", "d1", "Created", "--data", "{\"v\":1}", "-s", url,
        "--js-domain", "hub");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "replay", "dom", "--format", "jsonl", "-s", url, "--js-domain", "hub");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"event\":\"Created\""));
    run_free(&r);
    /* another domain has no JetStream answering */
    RUN(&r, "info", "dom", "-s", url, "--js-domain", "elsewhere", "--timeout", "1s");
    assert_int_equal(r.code, 4);
    run_free(&r);
    /* from a context; an option overrides it */
    char json[256];
    snprintf(json, sizeof json, "{\"url\":\"%s\",\"jetstream_domain\":\"hub\"}", url);
    write_context("hub", json);
    snprintf(json, sizeof json, "{\"url\":\"%s\",\"jetstream_domain\":\"elsewhere\"}", url);
    write_context("elsewhere", json);
    RUN(&r, "entities", "dom", "--json", "--context", "hub");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"d1\""));
    run_free(&r);
    RUN(&r, "entities", "dom", "--context", "elsewhere", "--timeout", "1s");
    assert_int_equal(r.code, 4);
    run_free(&r);
    RUN(&r, "entities", "dom", "--json", "--context", "elsewhere", "--js-domain", "hub");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "stores", "--json", "--context", "hub");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"dom\""));
    run_free(&r);
    /* a domain and a prefix at once is a contradiction */
    RUN(&r, "stores", "-s", url, "--js-domain", "hub", "--js-api-prefix", "$JS.hub.API");
    assert_fails(&r, 1, "not both");
    run_free(&r);
    RUN(&r, "stores", "--json", "-s", url, "--js-api-prefix", "$JS.hub.API");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"dom\""));
    run_free(&r);
    RUN(&r, "delete", "dom", "--force", "--context", "hub");
    assert_ok(&r);
    run_free(&r);
}

/* Reads stderr lines until one holds `needle`; false after timeout_ms. */
static bool stderr_says(int fd, const char *needle, int64_t timeout_ms)
{
    char line[1024];
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end)
        if (read_line(fd, line, sizeof line, end - now_ms()) && strstr(line, needle) != NULL)
            return true;
    return false;
}

/* The server goes away under `replay --follow` and comes back: both said on
 * stderr, and the events appended afterwards still arrive. */
static void test_follow_outage(void **state)
{
    (void)state;
    if (!server_start(NULL))
        skip();
    char *url = server.url;
    run_result r;
    RUN(&r, "create", "out", "-s", url);
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "append", "out", "doc", "d1", "Created", "--data", "1", "-s", url);
    assert_ok(&r);
    run_free(&r);
    int in, out, err;
    pid_t pid = spawn((char *[]){"replay", "out", "--follow", "--format", "jsonl", "-s", url, NULL},
                      NULL, &in, &out, &err);
    close(in);
    char line[4096];
    assert_true(read_line(out, line, sizeof line, 10000));
    assert_non_null(strstr(line, "\"Created\""));
    server_kill();
    if (!stderr_says(err, "the server went away", 10000))
        fail_msg("replay --follow said nothing of the server going away");
    server_spawn();
    if (!stderr_says(err, "reconnected to nats://", 15000))
        fail_msg("replay --follow said nothing of the server coming back");
    RUN(&r, "append", "out", "doc", "d1", "Edited", "--data", "2", "-s", url);
    assert_ok(&r);
    run_free(&r);
    assert_true(read_line(out, line, sizeof line, 15000));
    assert_non_null(strstr(line, "\"Edited\""));
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid, 5000), 0);
    close(out);
    close(err);
    /* a replay without --follow does not report outages it does not ride out */
    RUN(&r, "replay", "out", "--format", "jsonl", "-s", url);
    assert_ok(&r);
    assert_int_equal(count_lines(r.err), 0);
    run_free(&r);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_estool_conn PATH-TO-es-tool\n");
        return 1;
    }
    tool = argv[1];
    const char *url = getenv("NATS_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "test_estool_conn: NATS_URL is not set: these tests need a live server "
                        "(tools/test starts one)\n");
        return 1;
    }
    snprintf(live_url, sizeof live_url, "%s", url);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_context_precedence, contexts_setup, contexts_teardown),
        cmocka_unit_test_setup_teardown(test_context_refusals, contexts_setup, contexts_teardown),
        cmocka_unit_test_setup_teardown(test_nats_timeout, contexts_setup, contexts_teardown),
        cmocka_unit_test_setup_teardown(test_js_domain, contexts_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_permission_denied, contexts_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_tls_failures_say_why, contexts_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_follow_outage, contexts_setup, server_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
