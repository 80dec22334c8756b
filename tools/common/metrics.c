/* Prometheus metrics over HTTP (metrics.h). */
#define _POSIX_C_SOURCE 200809L
#include "metrics.h"

#include "cli.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include <es/status.h>

#define METRICS_PATH "/metrics"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define HOST_MAX     255
#define BODY_MAX     ((size_t)4 << 20) /* a tool's metrics are a few KiB */

struct es_cli_metrics {
    struct lws_context *ctx;
    pthread_t thread;
    bool started;
    volatile int stop;
    pthread_mutex_t mu;
    char *text; /* under mu */
    size_t len;
};

/* A copy of the text, for one response (the lock is not held while writing). */
static char *take_text(es_cli_metrics *m, size_t *len)
{
    pthread_mutex_lock(&m->mu);
    char *copy = malloc(LWS_PRE + m->len + 1);
    if (copy != NULL) {
        memcpy(copy + LWS_PRE, m->text ? m->text : "", m->len);
        *len = m->len;
    }
    pthread_mutex_unlock(&m->mu);
    return copy;
}

/* Sends `len` bytes at body + LWS_PRE (body is malloc'ed, freed here). */
static int respond(struct lws *wsi, unsigned status, const char *type, char *body, size_t len)
{
    unsigned char head[LWS_PRE + 512], *start = head + LWS_PRE, *p = start,
                                       *end = head + sizeof head - 1;
    int rc = -1;
    if (lws_add_http_common_headers(wsi, status, type, len, &p, end) == 0 &&
        lws_finalize_write_http_header(wsi, start, &p, end) == 0 &&
        lws_write(wsi, (unsigned char *)body + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) == (int)len)
        rc = lws_http_transaction_completed(wsi) ? -1 : 0;
    free(body);
    return rc;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    if (reason != LWS_CALLBACK_HTTP)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    es_cli_metrics *m = lws_context_user(lws_get_context(wsi));
    if (strcmp((const char *)in, METRICS_PATH) != 0) {
        static const char nf[] = "not found: metrics are at " METRICS_PATH "\n";
        char *body = malloc(LWS_PRE + sizeof nf);
        if (body == NULL)
            return -1;
        memcpy(body + LWS_PRE, nf, sizeof nf);
        return respond(wsi, HTTP_STATUS_NOT_FOUND, "text/plain", body, sizeof nf - 1);
    }
    size_t n = 0;
    char *text = take_text(m, &n);
    return text != NULL ? respond(wsi, HTTP_STATUS_OK, CONTENT_TYPE, text, n) : -1;
}

static const struct lws_protocols protocols[] = {
    {"http", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *serve(void *arg)
{
    es_cli_metrics *m = arg;
    while (!m->stop && lws_service(m->ctx, 0) >= 0)
        ;
    return NULL;
}

/* "HOST:PORT" (the host may be empty: every interface). */
static es_status parse_listen(const char *listen, char *host, int *port)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || (size_t)(colon - listen) > HOST_MAX || end == colon + 1 || *end ||
        p < 0 || p > 65535)
        return es_error(ES_ERR_INVALID, "'%s': the metrics address is HOST:PORT",
                        listen ? listen : "");
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    *port = (int)p;
    return ES_OK;
}

es_status es_cli_metrics_start(const char *listen, es_cli_metrics **out, int *port)
{
    *out = NULL;
    char host[HOST_MAX + 1];
    int want = 0;
    es_status s = parse_listen(listen, host, &want);
    if (s != ES_OK)
        return s;
    es_cli_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return es_error(ES_ERR_NOMEM, "metrics: out of memory");
    pthread_mutex_init(&m->mu, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = want;
    info.iface = host[0] ? host : NULL;
    info.protocols = protocols;
    info.user = m;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    m->ctx = lws_create_context(&info);
    if (m->ctx == NULL) {
        es_cli_metrics_stop(m);
        return es_error(ES_ERR_IO, "metrics: cannot listen on %s", listen);
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(m->ctx, "default");
    if (port != NULL)
        *port = vh ? lws_get_vhost_listen_port(vh) : want;
    if (pthread_create(&m->thread, NULL, serve, m) != 0) {
        es_cli_metrics_stop(m);
        return es_error(ES_ERR_NOMEM, "metrics: cannot start its thread");
    }
    m->started = true;
    *out = m;
    return ES_OK;
}

es_status es_cli_metrics_publish(es_cli_metrics *m, const char *text, size_t len)
{
    if (len > BODY_MAX)
        return es_error(ES_ERR_LIMIT, "metrics: %zu bytes of text", len);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return es_error(ES_ERR_NOMEM, "metrics: out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&m->mu);
    char *old = m->text;
    m->text = copy;
    m->len = len;
    pthread_mutex_unlock(&m->mu);
    free(old);
    return ES_OK;
}

void es_cli_metrics_stop(es_cli_metrics *m)
{
    if (m == NULL)
        return;
    m->stop = 1;
    if (m->ctx != NULL)
        lws_cancel_service(m->ctx);
    if (m->started)
        pthread_join(m->thread, NULL);
    if (m->ctx != NULL)
        lws_context_destroy(m->ctx);
    pthread_mutex_destroy(&m->mu);
    free(m->text);
    free(m);
}

/* ---- the text ----------------------------------------------------------- */

void es_prom_family(es_buf *b, const char *name, const char *type, const char *help)
{
    es_cli_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void es_prom_sample(es_buf *b, const char *name, const char *label, const char *label_value,
                    double value)
{
    es_cli_buf_printf(b, "%s", name);
    if (label != NULL) {
        es_cli_buf_printf(b, "{%s=\"", label);
        for (const char *c = label_value; *c; c++) {
            if (*c == '\\' || *c == '"')
                es_cli_buf_printf(b, "\\%c", *c);
            else if (*c == '\n')
                es_cli_buf_printf(b, "\\n");
            else
                es_buf_append(b, c, 1);
        }
        es_cli_buf_printf(b, "\"}");
    }
    es_cli_buf_printf(b, " %.17g\n", value);
}

void es_prom_one(es_buf *b, const char *name, const char *type, const char *help, double value)
{
    es_prom_family(b, name, type, help);
    es_prom_sample(b, name, NULL, NULL, value);
}
