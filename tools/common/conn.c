/* Connection options as the NATS CLI takes them, and the connection they make. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "nkey.h"

#define DEFAULT_URL "nats://127.0.0.1:4222"

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

/* Splits "a,b,c" into the servers list nats.c takes. */
static es_status set_servers(natsOptions *o, const char *urls)
{
    char *copy = strdup(urls);
    if (copy == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    const char *list[32];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); tok != NULL && n < 32;
         tok = strtok_r(NULL, ", ", &save))
        list[n++] = tok;
    natsStatus ns = n > 0 ? natsOptions_SetServers(o, list, n) : NATS_INVALID_ARG;
    free(copy);
    if (ns != NATS_OK)
        return es_error(ES_ERR_INVALID, "invalid server URL '%.200s'", urls);
    return ES_OK;
}

static es_status set_auth(natsOptions *o, const es_cli_conn *c)
{
    natsStatus ns = NATS_OK;
    if (c->user != NULL)
        ns = natsOptions_SetUserInfo(o, c->user, c->password ? c->password : "");
    if (ns == NATS_OK && c->token != NULL)
        ns = natsOptions_SetToken(o, c->token);
    if (ns != NATS_OK)
        return es_error(ES_ERR_INVALID, "user or token: %s", natsStatus_GetText(ns));
    if (c->creds != NULL && natsOptions_SetUserCredentialsFromFiles(o, c->creds, NULL) != NATS_OK)
        return es_error(ES_ERR_INVALID, "cannot use credentials file '%.200s'", c->creds);
    if (c->nkey != NULL) {
        char pub[ES_NKEY_PUBLIC_LEN + 1];
        es_status s = es_nkey_public_from_seed_file(c->nkey, pub);
        if (s != ES_OK)
            return s;
        if (natsOptions_SetNKeyFromSeed(o, pub, c->nkey) != NATS_OK)
            return es_error(ES_ERR_INVALID, "cannot use NKey seed file '%.200s'", c->nkey);
    }
    return ES_OK;
}

static es_status set_tls(natsOptions *o, const es_cli_conn *c)
{
    if (c->tlscert == NULL && c->tlskey == NULL && c->tlsca == NULL)
        return ES_OK;
    if ((c->tlscert == NULL) != (c->tlskey == NULL))
        return es_error(ES_ERR_INVALID, "--tlscert and --tlskey go together");
    natsStatus ns = natsOptions_SetSecure(o, true);
    if (ns == NATS_OK && c->tlsca != NULL)
        ns = natsOptions_LoadCATrustedCertificates(o, c->tlsca);
    if (ns == NATS_OK && c->tlscert != NULL)
        ns = natsOptions_LoadCertificatesChain(o, c->tlscert, c->tlskey);
    if (ns != NATS_OK)
        return es_error(ES_ERR_INVALID, "TLS files: %s", nats_GetLastError(NULL));
    return ES_OK;
}

static es_status build_options(const es_cli_conn *c, natsOptions *o)
{
    es_status s = set_servers(o, c->server ? c->server : DEFAULT_URL);
    if (s == ES_OK)
        s = set_auth(o, c);
    if (s == ES_OK)
        s = set_tls(o, c);
    if (s != ES_OK)
        return s;
    /* Ride out a short outage (a server restart) rather than fail a long
     * replay or watch; give up after max_reconnect attempts. */
    natsStatus ns = natsOptions_SetTimeout(o, c->timeout_ms);
    if (ns == NATS_OK)
        ns = natsOptions_SetName(o, c->name ? c->name : "es");
    if (ns == NATS_OK)
        ns = natsOptions_SetMaxReconnect(o, c->max_reconnect);
    if (ns == NATS_OK)
        ns = natsOptions_SetReconnectWait(o, 500);
    if (ns == NATS_OK)
        ns = natsOptions_SetReconnectBufSize(o, 8 * 1024 * 1024);
    if (ns != NATS_OK)
        return es_error(ES_ERR_INVALID, "connection options: %s", natsStatus_GetText(ns));
    return ES_OK;
}

static es_status connect_failure(natsStatus ns, const es_cli_conn *c)
{
    const char *url = c->server ? c->server : DEFAULT_URL;
    if (ns == NATS_CONNECTION_AUTH_FAILED || ns == NATS_NOT_PERMITTED)
        return es_error(ES_ERR_CONNECTION, "cannot connect to %.200s: authorization failed", url);
    if (ns == NATS_NO_SERVER || ns == NATS_TIMEOUT)
        return es_error(ES_ERR_CONNECTION, "cannot connect to %.200s: no server is answering", url);
    return es_error(ES_ERR_CONNECTION, "cannot connect to %.200s: %s", url, natsStatus_GetText(ns));
}

es_status es_cli_connect(const es_cli_conn *c, natsConnection **out)
{
    *out = NULL;
    natsOptions *o = NULL;
    if (natsOptions_Create(&o) != NATS_OK)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status s = build_options(c, o);
    if (s == ES_OK) {
        natsStatus ns = natsConnection_Connect(out, o);
        if (ns != NATS_OK)
            s = connect_failure(ns, c);
    }
    natsOptions_Destroy(o);
    return s;
}

void es_cli_disconnect(natsConnection *nc)
{
    if (nc != NULL) {
        natsConnection_Close(nc);
        natsConnection_Destroy(nc);
    }
    /* Wait for nats.c's threads to end: one still delivering a message while
     * the process exits would touch freed library state. */
    nats_CloseAndWait(2000);
}
