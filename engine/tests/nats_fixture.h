/* Live-server helpers for the engine's tests: a connection from NATS_URL
 * (tools/test exports it), unique store names, clean-up. */
#ifndef ES_TEST_NATS_FIXTURE_H
#define ES_TEST_NATS_FIXTURE_H

#include <stdio.h>

#include <nats/nats.h>

#include <es/store.h>

#include "transport/js.h"

/* A connection to $NATS_URL, or NULL when it is unset. Fails the test when
 * the variable is set but the server cannot be reached. */
natsConnection *fixture_connect(void);

/* Closes the connection (accepts NULL). */
void fixture_disconnect(natsConnection *nc);

/* A fresh store name for one test ("t<pid>_<n>"): its buckets do not exist. */
void fixture_store_name(char out[33]);

/* Deletes the store's buckets (every kind); asserts success. Accepts a
 * NULL context (no server: nothing to do). */
void fixture_drop_store(const esi_js *js, const char *store);

/* Ends a live test's store: destroys the handle, deletes the store when
 * there is a server, and disconnects. Accepts NULLs. */
void fixture_end_store(natsConnection *nc, const char *store, es_store *st);

/* A live test's store: a connection, a fresh store name and the store made
 * with the defaults (no store and no connection without a server). */
typedef struct fixture_live {
    natsConnection *nc;
    char name[33];
    es_store *st;
} fixture_live;

/* cmocka setup and teardown making and ending a fixture_live in *state. */
int fixture_live_setup(void **state);
int fixture_live_teardown(void **state);
#define FIXTURE_LIVE_TEST(test)                                                                    \
    cmocka_unit_test_setup_teardown(test, fixture_live_setup, fixture_live_teardown)

/* Skips the running test, saying why, when there is no server. */
#define REQUIRE_NATS(nc)                                                                           \
    do {                                                                                           \
        if ((nc) == NULL) {                                                                        \
            printf("SKIP: NATS_URL is not set; run tools/test or export NATS_URL "                 \
                   "(tools/nats-local start NAME)\n");                                             \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

#endif
