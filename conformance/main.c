/* es-conformance: checks a live NATS server and this library against the
 * event store's contract (docs/wire-format.md). Every test uses a store of
 * its own, deleted afterwards.
 *
 *   es-conformance [--url URL[,URL...]] [--replicas N] [--nats-server PATH] [--only GLOB]
 *                  [--groups NAME[,NAME...]]
 *   es-conformance --version
 *
 * The URL defaults to $NATS_URL; a comma-separated list names the servers
 * of a cluster. --replicas (default 1: explicit, never guessed from the
 * server) is the JetStream replica count of every store the suite creates
 * on the server under test: 3 on a 3-node cluster. --nats-server (or
 * $ES_NATS_SERVER) lets the suite start a server of its own for the restart
 * tests (a 3-node cluster when --replicas is above 1); without it they are
 * skipped. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* How long the suite waits for a server (a cluster still electing its
 * JetStream meta leader, a server still starting) to take its first store. */
#define READY_WAIT_MS  60000
#define READY_PAUSE_MS 250

/* The groups, in the order they run. */
static const struct group {
    const char *name;
    int (*run)(void);
} groups[] = {
    {"store", conf_run_store},         {"append", conf_run_append},
    {"batch", conf_run_batch},         {"occ", conf_run_occ},
    {"read", conf_run_read},           {"filters", conf_run_filters},
    {"watch", conf_run_watch},         {"concurrency", conf_run_concurrency},
    {"tenancy", conf_run_tenancy},     {"tenant", conf_run_tenant},
    {"envelope", conf_run_envelope},   {"checkpoint", conf_run_checkpoint},
    {"snapshot", conf_run_snapshot},   {"projection", conf_run_projection},
    {"domain", conf_run_domain},       {"inspect", conf_run_inspect},
    {"import", conf_run_import},       {"connect", conf_run_connect},
    {"expect", conf_run_expect},       {"failover", conf_run_failover},
};
#define GROUPS (sizeof groups / sizeof groups[0])

/* Is `name` one of the comma-separated `list` (NULL: every group)? */
static bool listed(const char *list, const char *name)
{
    if (list == NULL)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* Every name of `list` is a group's: a typo must not pass as "nothing failed". */
static bool groups_known(const char *list)
{
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        bool known = false;
        for (size_t i = 0; i < GROUPS && !known; i++)
            known = strlen(groups[i].name) == len && strncmp(p, groups[i].name, len) == 0;
        if (!known) {
            fprintf(stderr, "es-conformance: no group '%.*s'\n", (int)len, p);
            return false;
        }
        p += len + (p[len] == ',');
    }
    return true;
}

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--url URL[,URL...]] [--replicas N] [--nats-server PATH] [--only GLOB]\n"
            "       [--groups NAME[,NAME...]]\n"
            "  --url          server under test, or a cluster's servers (default: $NATS_URL)\n"
            "  --replicas     JetStream replicas of the stores the suite creates, 1..5\n"
            "                 (default 1; 3 on a 3-node cluster)\n"
            "  --nats-server  nats-server binary for restart tests (default: $ES_NATS_SERVER)\n"
            "  --only         run only the tests whose name matches GLOB (e.g. '*last_seq*')\n"
            "  --groups       run only these groups (default: all; see below)\n"
            "  --version      the suite's, the library's and nats.c's versions\n"
            "groups:",
            prog);
    for (size_t i = 0; i < GROUPS; i++)
        fprintf(stderr, " %s", groups[i].name);
    fputc('\n', stderr);
    return 2;
}

/* One try at creating (and deleting) a store: what the server says about
 * the first thing every test does. */
static es_status try_store(natsConnection *nc)
{
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    es_store *st = NULL;
    es_status es = es_store_create(nc, name, conf_store_config(), NULL, &st);
    es_store_destroy(st);
    es_store_delete(nc, name, NULL);
    return es;
}

/* The server must speak JetStream API level 2 (nats-server 2.12) or newer.
 * A cluster that is still electing answers with timeouts, "no responders"
 * or "JetStream not ready" for a few seconds: those are waited out, for up
 * to READY_WAIT_MS; an old server or a refusal fails at once. */
static int check_server(void)
{
    es_connect_options o;
    es_connect_options_init(&o);
    o.servers = conf_url;
    natsConnection *nc = NULL;
    if (es_connect(&o, &nc) != ES_OK) {
        fprintf(stderr, "es-conformance: cannot connect to %s: %s\n", conf_url, es_last_error());
        return 1;
    }
    es_status es = try_store(nc);
    int64_t start = es_monotonic_ms();
    bool told = false;
    while (es != ES_OK && es != ES_ERR_UNSUPPORTED && es != ES_ERR_INVALID &&
           es_monotonic_ms() - start < READY_WAIT_MS) {
        if (!told)
            fprintf(stderr, "es-conformance: waiting up to %d s for JetStream at %s (%s)\n",
                    READY_WAIT_MS / 1000, conf_url, es_last_error());
        told = true;
        conf_sleep_ms(READY_PAUSE_MS);
        es = try_store(nc);
    }
    if (es == ES_ERR_UNSUPPORTED)
        fprintf(stderr, "es-conformance: the server at %s is too old: %s\n", conf_url,
                es_last_error());
    else if (es != ES_OK)
        fprintf(stderr, "es-conformance: cannot create a store on %s: %s\n", conf_url,
                es_last_error());
    natsConnection_Destroy(nc);
    return es == ES_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    conf_url = getenv("NATS_URL");
    conf_server_bin = getenv("ES_NATS_SERVER");
    const char *only_groups = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("es-conformance %s (nats.c %s)\n", es_version(), es_nats_client_version());
            return 0;
        }
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            conf_url = argv[++i];
        else if (strcmp(argv[i], "--replicas") == 0 && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (*end != '\0' || n < 1 || n > 5)
                return usage(argv[0]);
            conf_replicas = (int)n;
        } else if (strcmp(argv[i], "--nats-server") == 0 && i + 1 < argc)
            conf_server_bin = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            cmocka_set_test_filter(argv[++i]); /* tests whose name matches a glob */
        else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc) {
            only_groups = argv[++i];
            if (!groups_known(only_groups))
                return usage(argv[0]);
        } else
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
    for (size_t i = 0; i < GROUPS; i++)
        if (listed(only_groups, groups[i].name)) {
            failed += groups[i].run();
            conf_servers_reap(); /* what a failed test left running */
        }
    nats_Close();
    printf("es-conformance: %s (%d failed)\n",
           failed ? "FAILED" : only_groups ? "the groups asked passed" : "all groups passed", failed);
    return failed ? 1 : 0;
}
