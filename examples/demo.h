/* What the checked examples (flight_booking.c, live_watch.c,
 * order_inventory.c) share, so that each shows its scenario and nothing
 * else: the command line's --server and --store, a connection made with
 * es_connect, and a fresh store of demo data. */
#ifndef ES_EXAMPLE_DEMO_H
#define ES_EXAMPLE_DEMO_H

#include <stdbool.h>

#include <es/connect.h>
#include <es/es.h>

typedef struct demo {
    natsConnection *nc;
    es_store *st;
    const char *store; /* its name */
} demo;

/* Reads `--server URL` (default $NATS_URL, else nats://127.0.0.1:4222) and
 * `--store NAME` (default `store`) from argv, ignoring other options;
 * connects as `prog`; deletes the store if it exists (demo data: each run
 * starts afresh) and creates it. On failure prints why and returns false,
 * with nothing left open. */
bool demo_open(int argc, char **argv, const char *prog, const char *store, demo *d);

/* Closes what demo_open opened and waits for nats.c's threads. */
void demo_close(demo *d);

/* An event's data read as one decimal number ("17", as these examples
 * write their JSON), or 0 when it is not one. */
long demo_number(const es_event *ev);

#endif
