/* es-atproto-serve over TLS (--tls-cert, --tls-key), through a live server
 * (NATS_URL): a self-signed certificate made here with the openssl CLI, a
 * small generated capture ingested, then GET /health over HTTPS and a
 * /subscribe replay over WSS with the suite's client (ws_client.h), whose
 * plain socket goes through a TLS tunnel of this test (OpenSSL, trusting
 * only that certificate and checking it names 127.0.0.1); plain HTTP to the
 * same port gets no answer; half of the pair is refused at start.
 *
 * ES_SERVE_BIN, ES_INGEST_BIN, ES_GEN_BIN come from CMake. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <es/es.h>

#include "children.h"
#include "ws_client.h"

static char tmp[256], cert[300], key[300];

/* ---- a TLS tunnel: plain loopback port -> TLS to the server ------------------ */

typedef struct tunnel {
    int listen_fd, port, target_port;
    SSL_CTX *ctx;
    pthread_t thread;
    volatile bool stop;
    int handshakes;  /* verified against the certificate */
    int failures;    /* handshakes that failed */
} tunnel;

/* Bytes both ways until either side ends. */
static void pump(int plain, SSL *ssl, int tls_fd, volatile bool *stop)
{
    char buf[16384];
    while (!*stop) {
        struct pollfd p[2] = {{.fd = plain, .events = POLLIN}, {.fd = tls_fd, .events = POLLIN}};
        if (SSL_pending(ssl) == 0 && poll(p, 2, 100) <= 0)
            continue;
        if (p[0].revents) {
            ssize_t n = recv(plain, buf, sizeof buf, 0);
            if (n <= 0 || SSL_write(ssl, buf, (int)n) <= 0)
                return;
        }
        if (SSL_pending(ssl) > 0 || p[1].revents) {
            int n = SSL_read(ssl, buf, sizeof buf);
            if (n <= 0 || ws_send_all(plain, buf, (size_t)n) != 0)
                return;
        }
    }
}

static void tunnel_one(tunnel *t, int plain)
{
    int fd = ws_tcp_connect(t->target_port, 0);
    SSL *ssl = fd >= 0 ? SSL_new(t->ctx) : NULL;
    if (ssl != NULL) {
        SSL_set_fd(ssl, fd);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
        if (SSL_connect(ssl) == 1 && SSL_get_verify_result(ssl) == X509_V_OK) {
            t->handshakes++;
            pump(plain, ssl, fd, &t->stop);
            SSL_shutdown(ssl);
        } else {
            t->failures++;
        }
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    close(plain);
}

static void *tunnel_run(void *arg)
{
    tunnel *t = arg;
    while (!t->stop) {
        struct pollfd p = {.fd = t->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(t->listen_fd, NULL, NULL);
        if (c >= 0)
            tunnel_one(t, c); /* one connection at a time: the test's are sequential */
    }
    return NULL;
}

static void tunnel_start(tunnel *t, int target_port, const char *ca)
{
    memset(t, 0, sizeof *t);
    t->target_port = target_port;
    t->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(t->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    t->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(t->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(t->listen_fd, 4), 0);
    assert_int_equal(getsockname(t->listen_fd, (struct sockaddr *)&a, &len), 0);
    t->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&t->thread, NULL, tunnel_run, t), 0);
}

static void tunnel_stop(tunnel *t)
{
    t->stop = true;
    pthread_join(t->thread, NULL);
    close(t->listen_fd);
    SSL_CTX_free(t->ctx);
}

/* ---- processes ------------------------------------------------------------------ */

static int run(char *const argv[], const char *log)
{
    return children_exit_code(children_spawn(argv, log, NULL), 60000);
}

/* es-atproto-serve with `extra` arguments; *port from its first line, or
 * -1 when it printed none (it exited). */
static pid_t serve(const char *store, const char *log, const char *const *extra, int *port)
{
    char *argv[16] = {getenv("ES_SERVE_BIN"), "--server", getenv("NATS_URL"), "--store",
                      (char *)store, "--listen", "127.0.0.1:0"};
    size_t n = 7;
    for (size_t i = 0; extra[i] != NULL && n < 15; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    int out;
    pid_t pid = children_spawn(argv, log, &out);
    FILE *f = fdopen(out, "r");
    char line[128] = "";
    *port = -1;
    if (fgets(line, sizeof line, f) == NULL || sscanf(line, "listening on 127.0.0.1:%d", port) != 1)
        *port = -1;
    fclose(f);
    return pid;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/es-serve-tls-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return -1;
    snprintf(cert, sizeof cert, "%s/cert.pem", tmp);
    snprintf(key, sizeof key, "%s/key.pem", tmp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    children_kill_all();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* A self-signed certificate for 127.0.0.1; false when there is no openssl CLI. */
static bool make_certificate(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout '%s' -out '%s' -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >'%s/openssl.log' 2>&1",
             key, cert, tmp);
    return system(cmd) == 0;
}

static void served_over_tls(void **state)
{
    (void)state;
    const char *url = getenv("NATS_URL");
    if (url == NULL || getenv("ES_SERVE_BIN") == NULL) {
        printf("SKIP: NATS_URL is not set\n");
        skip();
    }
    if (!make_certificate()) {
        printf("SKIP: no openssl command to make a certificate with\n");
        skip();
    }
    char store[64], log[400], capture[400];
    snprintf(store, sizeof store, "serve_tls_%ld", (long)getpid());
    snprintf(log, sizeof log, "%s/run.log", tmp);
    snprintf(capture, sizeof capture, "%s/small.capture", tmp);
    char *gen[] = {getenv("ES_GEN_BIN"), "--out", capture, "--frames", "40", "--repos", "5",
                   "--seed", "7", NULL};
    assert_int_equal(run(gen, log), 0);
    char *ingest[] = {getenv("ES_INGEST_BIN"), "--server", (char *)url, "--store", store,
                      "--from-file", capture, "--exit-at-end", "--no-verify", NULL};
    assert_int_equal(run(ingest, log), 0);

    int port;
    const char *half[] = {"--tls-cert", cert, NULL}; /* half of the pair: refused */
    pid_t pid = serve(store, log, half, &port);
    assert_int_equal(port, -1);
    assert_int_not_equal(children_exit_code(pid, 20000), 0);

    const char *tls[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    pid = serve(store, log, tls, &port);
    if (port < 0)
        children_show_log(log);
    assert_true(port > 0);
    char body[256];
    assert_int_equal(http_get(port, "/health", body, sizeof body), -1); /* plain: no answer */

    tunnel t;
    tunnel_start(&t, port, cert);
    assert_int_equal(http_get(t.port, "/health", body, sizeof body), 200);
    assert_string_equal(body, "{\"status\":\"ok\"}");

    ws_client w;
    assert_int_equal(ws_open(&w, t.port, "/subscribe?cursor=1", 0), 101);
    size_t events = 0;
    char *m = NULL;
    while (ws_read(&w, 1500, &m) == 1) { /* until a silence: the replay is over */
        json_t *j = json_loads(m, 0, NULL);
        assert_non_null(j);
        assert_true(json_is_string(json_object_get(j, "did")));
        assert_true(json_is_string(json_object_get(j, "kind")));
        json_decref(j);
        free(m);
        events++;
    }
    ws_close(&w);
    assert_true(events >= 40); /* every frame of the capture is one event or more */
    assert_int_equal(t.handshakes, 2);
    assert_int_equal(t.failures, 0);
    tunnel_stop(&t);

    kill(pid, SIGTERM);
    assert_int_equal(children_exit_code(pid, 20000), 0);
    natsConnection *nc;
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    es_store_delete(nc, store, NULL);
    natsConnection_Destroy(nc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(served_over_tls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
