/* Connection options as the NATS CLI takes them, and the connection they make. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/connect.h>

#include "context.h"
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
    {"context", 0, true, ES_CLI_OPT_CONTEXT},
    {"js-domain", 0, true, ES_CLI_OPT_JS_DOMAIN},
    {"js-api-prefix", 0, true, ES_CLI_OPT_JS_API_PREFIX},
    {"confined", 0, false, ES_CLI_OPT_CONFINED},
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
    "      --timeout DUR    connect and request timeout (env NATS_TIMEOUT; default 5s)\n"
    "      --context NAME   a nats CLI context: its settings fill what neither an option\n"
    "                       nor the environment gives (env NATS_CONTEXT; default the\n"
    "                       selected context)\n"
    "      --js-domain D    the JetStream domain of the store\n"
    "      --js-api-prefix P  the JetStream API prefix (an imported JetStream)\n"
    "      --confined       the user's NATS permissions confine it to some subjects (a\n"
    "                       tenant's user): read only through API subjects that carry\n"
    "                       their filter (docs/api.md, \"NATS permissions for a tenant's\n"
    "                       user\")\n";

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
    c->timeout_env_ = env_or_null("NATS_TIMEOUT");
    c->context = env_or_null("NATS_CONTEXT");
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
        c->timeout_set_ = true;
        return 1;
    }
    case ES_CLI_OPT_CONTEXT: c->context = value; return 1;
    case ES_CLI_OPT_JS_DOMAIN: c->js_domain = value; return 1;
    case ES_CLI_OPT_JS_API_PREFIX: c->js_api_prefix = value; return 1;
    case ES_CLI_OPT_CONFINED: c->confined = true; return 1;
    default: return 0;
    }
}

/* $NATS_TIMEOUT, unless --timeout was given. */
static es_status resolve_timeout(es_cli_conn *c)
{
    if (c->timeout_set_ || c->timeout_env_ == NULL)
        return ES_OK;
    int64_t ns = 0;
    if (!es_cli_duration_value(c->timeout_env_, &ns) || ns < 1000000)
        return es_error(ES_ERR_INVALID,
                        "NATS_TIMEOUT must be a duration of at least 1ms such as 5s or 500ms, "
                        "not '%.40s'",
                        c->timeout_env_);
    c->timeout_ms = ns / 1000000;
    return ES_OK;
}

static void fill(const char **field, const char *from_context)
{
    if (*field == NULL)
        *field = from_context;
}

/* What the context gives, below options and environment. */
static void apply_context(es_cli_conn *c, const es_cli_context *x)
{
    fill(&c->server, x->url);
    fill(&c->user, x->user);
    fill(&c->password, x->password);
    fill(&c->token, x->token);
    fill(&c->creds, x->creds);
    fill(&c->nkey, x->nkey);
    fill(&c->tlscert, x->cert);
    fill(&c->tlskey, x->key);
    fill(&c->tlsca, x->ca);
    /* a domain and a prefix say the same thing: an option's overrides both */
    if (c->js_domain == NULL && c->js_api_prefix == NULL) {
        c->js_domain = x->js_domain;
        c->js_api_prefix = x->js_api_prefix;
    }
}

es_status es_cli_conn_resolve(es_cli_conn *c)
{
    if (c->resolved_)
        return ES_OK;
    es_status s = resolve_timeout(c);
    es_cli_context x;
    bool found = false;
    if (s == ES_OK)
        s = es_cli_context_load(c->context, &x, &found);
    if (s != ES_OK)
        return s;
    if (found)
        apply_context(c, &x);
    if (c->js_domain != NULL && c->js_api_prefix != NULL)
        return es_error(ES_ERR_INVALID, "a JetStream domain or an API prefix, not both");
    c->resolved_ = true;
    return ES_OK;
}

void es_cli_store_options(const es_cli_conn *given, es_store_options *o)
{
    /* Unresolved: what es_cli_connect made of it (its errors stopped the
     * connect already; the context's strings live for the process). */
    es_cli_conn resolved = *given;
    const es_cli_conn *c = es_cli_conn_resolve(&resolved) == ES_OK ? &resolved : given;
    es_store_options_init(o);
    o->timeout_ms = c->timeout_ms;
    o->js_domain = c->js_domain;
    o->js_api_prefix = c->js_api_prefix;
    o->confined = c->confined;
}

/* One line on stderr as the server goes and comes back (nats.c's thread). */
static void report_change(es_connection_change change, const char *url, void *closure)
{
    (void)closure;
    if (change == ES_CONNECTION_LOST)
        es_cli_error("the server went away; reconnecting");
    else
        es_cli_error("reconnected to %s", url ? url : "the server");
}

es_status es_cli_connect(const es_cli_conn *given, natsConnection **out)
{
    es_cli_conn resolved = *given;
    es_status s = es_cli_conn_resolve(&resolved);
    if (s != ES_OK)
        return s;
    const es_cli_conn *c = &resolved;
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
    if (c->report_outages)
        o.on_change = report_change;
    /* nats.c signs with the seed file and wants the public key beside it:
     * derive it, so that --nkey takes a seed file alone as the NATS CLI does. */
    char pub[ES_NKEY_PUBLIC_LEN + 1];
    if (c->nkey != NULL) {
        s = es_nkey_public_from_seed_file(c->nkey, pub);
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
