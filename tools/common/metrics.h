/* Prometheus metrics over HTTP for the long-running tools (docs/atproto.md,
 * "Metrics"): a libwebsockets server on a thread of its own answering
 * `GET /metrics` with the text the tool published last (the exposition
 * format 0.0.4), and a small writer for that text. The tool renders its
 * counters on its own thread, when it likes (es-atproto-ingest: every
 * second), and publishes a copy: a scrape never waits for the tool, and the
 * tool never waits for a scrape. Built with the ATProto tools (it needs
 * libwebsockets). */
#ifndef ES_CLI_METRICS_H
#define ES_CLI_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/status.h>

typedef struct es_cli_metrics es_cli_metrics;

/* Listens on `listen` ("HOST:PORT"; port 0: any free one, *port says which;
 * port may be NULL) and serves until es_cli_metrics_stop. ES_ERR_INVALID
 * for a malformed address, ES_ERR_IO when it cannot listen. */
es_status es_cli_metrics_start(const char *listen, es_cli_metrics **out, int *port);

/* Replaces the text served (copied). Any thread. */
es_status es_cli_metrics_publish(es_cli_metrics *m, const char *text, size_t len);

/* Stops the thread and frees. Accepts NULL. */
void es_cli_metrics_stop(es_cli_metrics *m);

/* ---- writing the exposition text --------------------------------------- */

/* "# HELP name help\n# TYPE name type\n" (type: "counter", "gauge"). */
void es_prom_family(es_buf *b, const char *name, const char *type, const char *help);
/* "name value\n", or "name{label=\"value\"} value\n" when label is not NULL
 * (the label's value escaped as the format asks: \\, \", \n). */
void es_prom_sample(es_buf *b, const char *name, const char *label, const char *label_value,
                    double value);
/* A family with one unlabelled sample. */
void es_prom_one(es_buf *b, const char *name, const char *type, const char *help, double value);

#endif
