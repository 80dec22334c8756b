/* The nats CLI's contexts, read-only: named sets of connection settings kept
 * as JSON files in $XDG_CONFIG_HOME/nats/context/<name>.json (default
 * ~/.config/nats/context), the selected one named in
 * $XDG_CONFIG_HOME/nats/context.txt (nats-io/jsm.go, natscontext). The
 * fields es can honour are read; one that changes how the connection is
 * made and that es cannot honour (a SOCKS proxy, an inbox prefix, nsc or
 * other credential lookups, an inline JWT or seed, TLS first, a Windows
 * certificate store), or a field es does not know, is refused rather than
 * ignored. */
#ifndef ES_CLI_CONTEXT_H
#define ES_CLI_CONTEXT_H

#include <stdbool.h>

#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A context's settings; NULL for what it leaves out. */
typedef struct es_cli_context {
    const char *name;
    const char *url; /* one URL or several, comma-separated */
    const char *user, *password, *token;
    const char *creds; /* user credentials file */
    const char *nkey;  /* user NKey seed file */
    const char *cert, *key, *ca;
    const char *js_domain, *js_api_prefix;
} es_cli_context;

/* Reads context `name`, or, when name is NULL or empty, the selected one;
 * *found is false (and `out` empty) when none is selected. The strings stay
 * valid until the process ends (a later load of another context replaces
 * them). ES_ERR_INVALID, with the reason in es_last_error(), for an invalid
 * or unknown name, a file that is not a context, or a field that cannot be
 * honoured. */
es_status es_cli_context_load(const char *name, es_cli_context *out, bool *found);

#ifdef __cplusplus
}
#endif
#endif
