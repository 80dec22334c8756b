/* The checked examples' shared start-up (demo.h). */
#include "demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool demo_open(int argc, char **argv, const char *prog, const char *store, demo *d)
{
    *d = (demo){.store = store};
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = getenv("NATS_URL"); /* NULL: nats://127.0.0.1:4222 */
    co.name = prog;                  /* what the server shows */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--server") == 0)
            co.servers = argv[++i];
        else if (strcmp(argv[i], "--store") == 0)
            d->store = argv[++i];
    }
    if (es_connect(&co, &d->nc) != ES_OK) {
        fprintf(stderr, "%s: %s\n", prog, es_last_error());
        return false;
    }
    es_store_delete(d->nc, d->store, NULL); /* demo data: start afresh */
    if (es_store_create(d->nc, d->store, NULL, NULL, &d->st) != ES_OK) {
        fprintf(stderr, "%s: %s\n", prog, es_last_error());
        es_connection_close(d->nc);
        d->nc = NULL;
        return false;
    }
    return true;
}

void demo_close(demo *d)
{
    es_store_destroy(d->st);
    es_connection_close(d->nc);
    es_shutdown(2000);
    *d = (demo){0};
}

long demo_number(const es_event *ev)
{
    const void *data;
    size_t len;
    char text[32];
    if (es_event_data(ev, &data, &len) != ES_OK || len >= sizeof text)
        return 0;
    memcpy(text, data, len);
    text[len] = '\0';
    return strtol(text, NULL, 10);
}
