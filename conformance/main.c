/* es-conformance: checks a live NATS server and this library against the
 * event store's contract (docs/wire-format.md). Every test uses a store of
 * its own, deleted afterwards.
 *
 *   es-conformance [--url nats://HOST:PORT] [--nats-server PATH] [--group NAME]...
 *   es-conformance --version
 *
 * The URL defaults to $NATS_URL. --nats-server (or $ES_NATS_SERVER) lets the
 * suite start a server of its own for the restart tests; without it they
 * are skipped. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--url nats://HOST:PORT] [--nats-server PATH] [--group NAME]...\n"
            "  --url          server under test (default: $NATS_URL)\n"
            "  --nats-server  nats-server binary for restart tests (default: $ES_NATS_SERVER)\n"
            "  --group        run only this group (repeatable; default: every group)\n"
            "  --version      the suite's, the library's and nats.c's versions\n",
            prog);
    return 2;
}

/* The server must speak JetStream API level 2 (nats-server 2.12) or newer. */
static int check_server(void)
{
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, conf_url);
    if (s != NATS_OK) {
        fprintf(stderr, "es-conformance: cannot connect to %s: %s\n", conf_url,
                natsStatus_GetText(s));
        return 1;
    }
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    es_store *st = NULL;
    es_status es = es_store_create(nc, name, NULL, NULL, &st);
    if (es == ES_ERR_UNSUPPORTED)
        fprintf(stderr, "es-conformance: the server at %s is too old: %s\n", conf_url,
                es_last_error());
    else if (es != ES_OK)
        fprintf(stderr, "es-conformance: cannot create a store on %s: %s\n", conf_url,
                es_last_error());
    es_store_destroy(st);
    es_store_delete(nc, name, NULL);
    natsConnection_Destroy(nc);
    return es == ES_OK ? 0 : 1;
}

static const struct group {
    const char *name;
    int (*run)(void);
} groups[] = {
    {"store", conf_run_store},       {"append", conf_run_append},
    {"batch", conf_run_batch},       {"occ", conf_run_occ},
    {"read", conf_run_read},         {"filters", conf_run_filters},
    {"watch", conf_run_watch},       {"concurrency", conf_run_concurrency},
    {"tenancy", conf_run_tenancy},   {"tenant", conf_run_tenant},
    {"envelope", conf_run_envelope}, {"checkpoint", conf_run_checkpoint},
    {"snapshot", conf_run_snapshot}, {"projection", conf_run_projection},
    {"domain", conf_run_domain},     {"inspect", conf_run_inspect},
    {"import", conf_run_import},
};
#define GROUPS (sizeof groups / sizeof groups[0])

static bool chosen(const char *name, char **only, int n_only)
{
    for (int i = 0; i < n_only; i++)
        if (strcmp(only[i], name) == 0)
            return true;
    return n_only == 0;
}

int main(int argc, char **argv)
{
    char *only[GROUPS];
    int n_only = 0;
    conf_url = getenv("NATS_URL");
    conf_server_bin = getenv("ES_NATS_SERVER");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("es-conformance %s (nats.c %s)\n", es_version(), es_nats_client_version());
            return 0;
        }
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            conf_url = argv[++i];
        else if (strcmp(argv[i], "--nats-server") == 0 && i + 1 < argc)
            conf_server_bin = argv[++i];
        else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc && n_only < (int)GROUPS)
            only[n_only++] = argv[++i];
        else
            return usage(argv[0]);
    }
    if (conf_url == NULL || conf_url[0] == '\0') {
        fprintf(stderr, "es-conformance: no server: pass --url or set NATS_URL\n");
        return usage(argv[0]);
    }
    if (conf_server_bin != NULL && conf_server_bin[0] == '\0')
        conf_server_bin = NULL;
    if (check_server() != 0)
        return 1;
    int failed = 0;
    for (size_t g = 0; g < GROUPS; g++)
        if (chosen(groups[g].name, only, n_only))
            failed += groups[g].run();
    nats_Close();
    printf("es-conformance: %s (%d failed)\n", failed ? "FAILED" : "all groups passed", failed);
    return failed ? 1 : 0;
}
