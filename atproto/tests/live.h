/* A scratch store on the live server (NATS_URL) for the adapter's test
 * programs that need one: in memory, named after the process, deleted at
 * the end. Without NATS_URL the tests skip (their state stays NULL). */
#ifndef ES_ATP_TEST_LIVE_H
#define ES_ATP_TEST_LIVE_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <es/es.h>

typedef struct live_store {
    natsConnection *nc;
    es_store *store;
    char name[32];
} live_store;

/* Connects to NATS_URL and creates the store <prefix><pid>: 1 when done, 0
 * when NATS_URL is unset (nothing to do: skip), -1 on a failure. */
static inline int live_store_create(live_store *ls, const char *prefix)
{
    const char *url = getenv("NATS_URL");
    if (url == NULL || *url == '\0')
        return 0;
    if (natsConnection_ConnectTo(&ls->nc, url) != NATS_OK)
        return -1;
    snprintf(ls->name, sizeof ls->name, "%s%ld", prefix, (long)getpid());
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.memory_storage = true;
    if (es_store_create(ls->nc, ls->name, &cfg, NULL, &ls->store) != ES_OK)
        return -1;
    return 1;
}

/* cmocka group fixtures over one scratch store <prefix><pid> kept in `ls`
 * (static storage): *state becomes ls, or NULL without NATS_URL (the tests
 * skip with LIVE_SKIP_WITHOUT_SERVER). */
static inline int live_group_setup(void **state, live_store *ls, const char *prefix)
{
    *state = NULL;
    int made = live_store_create(ls, prefix);
    if (made <= 0)
        return made;
    *state = ls;
    return 0;
}

/* In a cmocka test whose setup left `ctx` NULL (no NATS_URL): skip it. */
#define LIVE_SKIP_WITHOUT_SERVER(ctx)                                                              \
    do {                                                                                           \
        if ((ctx) == NULL) {                                                                       \
            print_message("NATS_URL not set: skipped\n");                                          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* For a test waiting on another thread or the server to catch up. */
static inline void live_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Deletes the store from the server and closes the connection. */
static inline void live_store_destroy(live_store *ls)
{
    es_store_destroy(ls->store);
    es_store_delete(ls->nc, ls->name, NULL);
    natsConnection_Destroy(ls->nc);
}

static inline int live_group_teardown(void **state)
{
    if (*state != NULL)
        live_store_destroy(*state);
    return 0;
}

#endif
