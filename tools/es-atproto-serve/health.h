/* GET /health: {"status":"ok"} only when NATS and the store's stream answer.
 * A thread asks the server for the stream's state every interval; the HTTP
 * side reads the last answer, so a request never waits on NATS. */
#ifndef SERVE_HEALTH_H
#define SERVE_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/es.h>

typedef struct health health;

/* The caller owns *out (health_destroy). */
es_status health_start(es_store *st, int64_t interval_ms, health **out);

/* The JSON body and whether it is OK (200) or not (503, with the reason):
 * an answer older than three intervals counts as none. */
bool health_report(health *h, char *body, size_t size);

/* Stops the thread and frees. Accepts NULL. */
void health_destroy(health *h);

#endif
