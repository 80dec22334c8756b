/* Connection options as the NATS CLI takes them, and the connection they make. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/connect.h>

#include "nkey.h"

#define DEFAULT_URL ES_CONNECT_DEFAULT_URL

const es_cli_option es_cli_conn_options[] = {
    {"server", 's', true, ES_CLI_OPT_SERVER},
    {"user", 0, true, ES_CLI_OPT_USER},
    {"password", 0, true, ES_CLI_OPT_PASSWORD},
    {"token", 0, true, ES_CLI_OPT_TOKEN},
    {"creds", 0, true, ES_CLI_OPT_CREDS},
    {"nkey", 0, true, ES_CLI_OPT_NKEY},
    {"tlscert", 0, true, ES_CLI_OPT_TLSCERT},
    {"tlskey", 0, true, ES_CLI_OPT_TLSKEY},
    {"tlsca", 0, true, ES_CLI_OPT_TLSCA},
    {"timeout", 0, true, ES_CLI_OPT_TIMEOUT},
    {NULL, 0, false, 0},
};

const char es_cli_conn_help[] =
    "Connection options (as the NATS CLI has them):\n"
    "  -s, --server URL     server URL(s), comma-separated (env NATS_URL; default " DEFAULT_URL
    ")\n"
    "      --user USER      user name (env NATS_USER)\n"
    "      --password PASS  password (env NATS_PASSWORD)\n"
    "      --token TOKEN    authentication token (env NATS_TOKEN)\n"
    "      --creds FILE     user credentials file, JWT and seed (env NATS_CREDS)\n"
    "      --nkey FILE      user NKey seed file (env NATS_NKEY)\n"
    "      --tlscert FILE   client certificate (env NATS_CERT)\n"
    "      --tlskey FILE    client certificate's private key (env NATS_KEY)\n"
    "      --tlsca FILE     CA certificates to verify the server (env NATS_CA)\n"
    "      --timeout DUR    connect and request timeout (default 5s)\n";

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

void es_cli_conn_init(es_cli_conn *c, const char *name)
{
    memset(c, 0, sizeof *c);
    c->server = env_or_null("NATS_URL");
    c->user = env_or_null("NATS_USER");
    c->password = env_or_null("NATS_PASSWORD");
    c->token = env_or_null("NATS_TOKEN");
    c->creds = env_or_null("NATS_CREDS");
    c->nkey = env_or_null("NATS_NKEY");
    c->tlscert = env_or_null("NATS_CERT");
    c->tlskey = env_or_null("NATS_KEY");
    c->tlsca = env_or_null("NATS_CA");
    c->timeout_ms = 5000;
    c->max_reconnect = 60;
    c->name = name;
}

int es_cli_conn_set(es_cli_conn *c, int id, const char *value)
{
    switch (id) {
    case ES_CLI_OPT_SERVER: c->server = value; return 1;
    case ES_CLI_OPT_USER: c->user = value; return 1;
    case ES_CLI_OPT_PASSWORD: c->password = value; return 1;
    case ES_CLI_OPT_TOKEN: c->token = value; return 1;
    case ES_CLI_OPT_CREDS: c->creds = value; return 1;
    case ES_CLI_OPT_NKEY: c->nkey = value; return 1;
    case ES_CLI_OPT_TLSCERT: c->tlscert = value; return 1;
    case ES_CLI_OPT_TLSKEY: c->tlskey = value; return 1;
    case ES_CLI_OPT_TLSCA: c->tlsca = value; return 1;
    case ES_CLI_OPT_TIMEOUT: {
        int64_t ns = 0;
        if (!es_cli_parse_duration(value, "--timeout", &ns))
            return ES_CLI_ERROR;
        if (ns < 1000000) {
            es_cli_usage("--timeout must be at least 1ms");
            return ES_CLI_ERROR;
        }
        c->timeout_ms = ns / 1000000;
        return 1;
    }
    default: return 0;
    }
}

es_status es_cli_connect(const es_cli_conn *c, natsConnection **out)
{
    es_connect_options o;
    es_connect_options_init(&o);
    o.servers = c->server;
    o.name = c->name ? c->name : "es";
    o.user = c->user;
    o.password = c->password;
    o.token = c->token;
    o.creds_file = c->creds;
    o.tls_ca_file = c->tlsca;
    o.tls_cert_file = c->tlscert;
    o.tls_key_file = c->tlskey;
    o.timeout_ms = c->timeout_ms;
    /* Ride out a short outage (a server restart) rather than fail a long
     * replay or watch; give up after max_reconnect attempts. */
    o.max_reconnect = c->max_reconnect;
    /* nats.c signs with the seed file and wants the public key beside it:
     * derive it, so that --nkey takes a seed file alone as the NATS CLI does. */
    char pub[ES_NKEY_PUBLIC_LEN + 1];
    if (c->nkey != NULL) {
        es_status s = es_nkey_public_from_seed_file(c->nkey, pub);
        if (s != ES_OK)
            return s;
        o.nkey_public = pub;
        o.nkey_seed_file = c->nkey;
    }
    return es_connect(&o, out);
}

void es_cli_disconnect(natsConnection *nc)
{
    es_connection_close(nc);
    /* Wait for nats.c's threads to end: one still delivering a message while
     * the process exits would touch freed library state. */
    es_shutdown(2000);
}
