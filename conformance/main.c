/* es-conformance: checks a live NATS server and this library against the
 * event store's contract (docs/wire-format.md). Every test uses a store of
 * its own, deleted afterwards.
 *
 *   es-conformance [--url nats://HOST:PORT] [--nats-server PATH] [--only GLOB]
 *   es-conformance --version
 *
 * The URL defaults to $NATS_URL. --nats-server (or $ES_NATS_SERVER) lets the
 * suite start a server of its own for the restart tests; without it they
 * are skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--url nats://HOST:PORT] [--nats-server PATH] [--only GLOB]\n"
            "  --url          server under test (default: $NATS_URL)\n"
            "  --nats-server  nats-server binary for restart tests (default: $ES_NATS_SERVER)\n"
            "  --only         run only the tests whose name matches GLOB (e.g. '*last_seq*')\n"
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

int main(int argc, char **argv)
{
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
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            cmocka_set_test_filter(argv[++i]); /* tests whose name matches a glob */
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
    failed += conf_run_store();
    failed += conf_run_append();
    failed += conf_run_batch();
    failed += conf_run_occ();
    failed += conf_run_read();
    failed += conf_run_filters();
    failed += conf_run_watch();
    failed += conf_run_concurrency();
    failed += conf_run_tenancy();
    failed += conf_run_tenant();
    failed += conf_run_envelope();
    failed += conf_run_checkpoint();
    failed += conf_run_snapshot();
    failed += conf_run_projection();
    failed += conf_run_domain();
    failed += conf_run_inspect();
    failed += conf_run_import();
    failed += conf_run_connect();
    failed += conf_run_expect();
    nats_Close();
    printf("es-conformance: %s (%d failed)\n", failed ? "FAILED" : "all groups passed", failed);
    return failed ? 1 : 0;
}
