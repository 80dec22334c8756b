/* Connections with the NATS CLI's options (es/connect.h): the options become
 * nats.c's natsOptions, and its failures one-line reasons. */
#include <es/connect.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "transport/conn.h"
#include "transport/inbox.h"

#define MAX_SERVERS 32

void es_connect_options_init(es_connect_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->timeout_ms = 5000;
    opts->max_reconnect = 60;
    opts->reconnect_wait_ms = 500;
    opts->reconnect_buffer_bytes = 8 << 20;
}

static const char *servers_of(const es_connect_options *o)
{
    return o->servers != NULL && o->servers[0] != '\0' ? o->servers : ES_CONNECT_DEFAULT_URL;
}

/* True when `port` (len bytes) is a decimal port, 1 to 65535. */
static bool valid_port(const char *port, size_t len)
{
    if (len == 0 || len > 5 || strspn(port, "0123456789") < len)
        return false;
    long v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (port[i] - '0');
    return v >= 1 && v <= 65535;
}

/* True for a host name or IPv4 address, or an IPv6 address in brackets. */
static bool valid_host(const char *host, size_t len)
{
    if (len >= 2 && host[0] == '[')
        return host[len - 1] == ']' && len > 2 &&
               strspn(host + 1, "0123456789abcdefABCDEF:.%") >= len - 2;
    static const char host_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789.-_";
    return len > 0 && len <= 253 && strspn(host, host_chars) >= len;
}

/* True when url[0..n) is `scheme`, in any case. */
static bool is_scheme(const char *url, size_t n, const char *scheme)
{
    if (n != strlen(scheme))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((url[i] | 0x20) != scheme[i])
            return false;
    return true;
}

/* `urls` (one or a comma-separated list) as messages may show it: the
 * password of user:password@ replaced by "***" (a token alone, before the
 * @ without a colon, too), so that no error text or log carries a secret.
 * Cut to `size`. */
#define MASK "***"

static void mask_urls(const char *urls, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < size;) {
        size_t end = i;
        while (end < len && urls[end] != ',')
            end++;
        const char *u = urls + i;
        size_t n = end - i;
        const char *sep = NULL;
        for (size_t k = 0; k + 2 < n && sep == NULL; k++)
            if (memcmp(u + k, "://", 3) == 0)
                sep = u + k + 3;
        const char *rest = sep ? sep : u, *at = NULL, *colon = NULL;
        for (const char *p = rest; p < u + n; p++)
            if (*p == '@')
                at = p;
        for (const char *p = rest; at != NULL && p < at && colon == NULL; p++)
            if (*p == ':')
                colon = p;
        /* what is kept: up to the colon (user:) or to the start of the
         * credentials (a token), then the mask, then from the @ on */
        const char *keep_to = at == NULL ? u + n : colon ? colon + 1 : rest;
        o += (size_t)snprintf(out + o, size - o, "%.*s%s%.*s", (int)(keep_to - u), u,
                              at ? MASK : "", at ? (int)(u + n - at) : 0, at ? at : "");
        if (o >= size)
            o = size - 1;
        if (end < len && o + 1 < size)
            out[o++] = ',';
        i = end + 1;
    }
    out[o < size ? o : size - 1] = '\0';
}

/* The one check of a server URL, [scheme://][user[:password]@]host[:port],
 * made before nats.c sees it: nats.c takes any scheme and any text as a
 * host name, so a typo would otherwise surface as "no server is answering".
 * The schemes are nats.c's, nats:// and tls://; it has no WebSocket
 * transport. ES_OK or ES_ERR_INVALID naming the URL and what is wrong. */
static es_status check_url(const char *url, size_t len)
{
    const char *why = NULL;
    const char *sep = len >= 3 ? strstr(url, "://") : NULL;
    const char *rest = url;
    if (sep != NULL && (size_t)(sep - url) < len) {
        size_t n = (size_t)(sep - url);
        bool nats = is_scheme(url, n, "nats"), tls = is_scheme(url, n, "tls");
        bool ws = is_scheme(url, n, "ws") || is_scheme(url, n, "wss");
        if (ws)
            why = "WebSocket URLs (ws://, wss://) are not supported by the NATS client; use "
                  "nats:// or tls://";
        else if (!nats && !tls)
            why = "the scheme must be nats:// or tls://";
        rest = sep + 3;
    }
    const char *end = url + len;
    if (end > rest && end[-1] == '/')
        end--; /* one trailing slash is harmless */
    const char *at = NULL;
    for (const char *p = rest; p < end; p++)
        if (*p == '@')
            at = p;
    const char *host = at ? at + 1 : rest;
    const char *colon = NULL;
    for (const char *p = host; p < end; p++)
        if (*p == ':' && (host[0] != '[' || (p > host && p[-1] == ']')))
            colon = p;
    size_t host_len = (size_t)((colon ? colon : end) - host);
    if (why == NULL && !valid_host(host, host_len))
        why = "expected [nats://|tls://][user:password@]host[:port]";
    if (why == NULL && colon != NULL && !valid_port(colon + 1, (size_t)(end - colon - 1)))
        why = "the port must be a number from 1 to 65535";
    if (why != NULL) {
        char shown[256];
        mask_urls(url, len, shown, sizeof shown);
        return es_error(ES_ERR_INVALID, "invalid URL '%.200s': %s", shown, why);
    }
    return ES_OK;
}

/* Splits "a,b,c" (spaces around the commas are ignored) into the list
 * nats.c takes, each URL checked first. */
static es_status set_servers(natsOptions *no, const char *urls)
{
    size_t len = strlen(urls);
    char *copy = esi_malloc(len + 1);
    if (copy == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    memcpy(copy, urls, len + 1);
    const char *list[MAX_SERVERS];
    int n = 0;
    es_status s = ES_OK;
    for (char *p = copy; s == ES_OK && *p != '\0';) {
        char *comma = strchr(p, ',');
        char *next = comma ? comma + 1 : p + strlen(p);
        if (comma != NULL)
            *comma = '\0';
        p += strspn(p, " \t");
        size_t take = strlen(p);
        while (take > 0 && (p[take - 1] == ' ' || p[take - 1] == '\t'))
            p[--take] = '\0';
        if (take > 0 && n == MAX_SERVERS)
            s = es_error(ES_ERR_INVALID, "at most %d server URLs", MAX_SERVERS);
        else if (take > 0 && (s = check_url(p, take)) == ES_OK)
            list[n++] = p;
        p = next;
    }
    natsStatus ns = NATS_OK;
    if (s == ES_OK)
        ns = n > 0 ? natsOptions_SetServers(no, list, n) : NATS_INVALID_ARG;
    esi_free(copy);
    if (s == ES_OK && ns != NATS_OK) {
        char shown[256];
        mask_urls(urls, strlen(urls), shown, sizeof shown);
        s = es_error(ES_ERR_INVALID, "invalid URL '%.200s': no server URL in it", shown);
    }
    return s;
}

/* nats.c reads credentials and seeds only when it connects, and then
 * reports a bare "not found" or "Error": say which file and why, before
 * dialling. */
static es_status check_readable(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return es_error(ES_ERR_INVALID, "cannot use %s '%.200s': %s", what, path, strerror(errno));
    fclose(f);
    return ES_OK;
}

static es_status set_auth(natsOptions *no, const es_connect_options *o)
{
    natsStatus ns = NATS_OK;
    if (o->user != NULL)
        ns = natsOptions_SetUserInfo(no, o->user, o->password ? o->password : "");
    if (ns == NATS_OK && o->token != NULL)
        ns = natsOptions_SetToken(no, o->token);
    if (ns != NATS_OK)
        return es_error(ES_ERR_INVALID, "user or token: %s", natsStatus_GetText(ns));
    es_status s = ES_OK;
    if (o->creds_file != NULL && (s = check_readable("credentials file", o->creds_file)) == ES_OK &&
        natsOptions_SetUserCredentialsFromFiles(no, o->creds_file, NULL) != NATS_OK)
        s = es_error(ES_ERR_INVALID, "cannot use credentials file '%.200s'", o->creds_file);
    if (s == ES_OK && (o->nkey_public == NULL) != (o->nkey_seed_file == NULL))
        s = es_error(ES_ERR_INVALID, "an NKey needs its public key and its seed file");
    if (s == ES_OK && o->nkey_seed_file != NULL &&
        (s = check_readable("NKey seed file", o->nkey_seed_file)) == ES_OK &&
        natsOptions_SetNKeyFromSeed(no, o->nkey_public, o->nkey_seed_file) != NATS_OK)
        s = es_error(ES_ERR_INVALID, "cannot use NKey seed file '%.200s'", o->nkey_seed_file);
    return s;
}

static es_status set_tls(natsOptions *no, const es_connect_options *o)
{
    if (o->tls_cert_file == NULL && o->tls_key_file == NULL && o->tls_ca_file == NULL)
        return ES_OK;
    if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL))
        return es_error(ES_ERR_INVALID, "a client certificate needs its key, and a key its "
                                        "certificate");
    natsStatus ns = natsOptions_SetSecure(no, true);
    if (ns == NATS_OK && o->tls_ca_file != NULL)
        ns = natsOptions_LoadCATrustedCertificates(no, o->tls_ca_file);
    if (ns == NATS_OK && o->tls_cert_file != NULL)
        ns = natsOptions_LoadCertificatesChain(no, o->tls_cert_file, o->tls_key_file);
    if (ns != NATS_OK)
        return es_error(ES_ERR_INVALID, "TLS files: %s", nats_GetLastError(NULL));
    return ES_OK;
}

/* ---- losing and regaining the server ------------------------------------ */

/* The caller's callback, kept until the connection is closed (nats.c holds
 * a pointer to it). */
typedef struct change_watch {
    es_connection_change_cb cb;
    void *closure;
} change_watch;

static void on_disconnected(natsConnection *nc, void *closure)
{
    change_watch *w = closure;
    if (!natsConnection_IsClosed(nc)) /* closing reports a disconnection too */
        w->cb(ES_CONNECTION_LOST, NULL, w->closure);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    change_watch *w = closure;
    char url[256];
    bool known = natsConnection_GetConnectedUrl(nc, url, sizeof url) == NATS_OK;
    w->cb(ES_CONNECTION_RESTORED, known ? url : NULL, w->closure);
}

/* The last callback nats.c makes for a connection, after the others. */
static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    esi_free(closure);
}

static es_status set_change_callbacks(natsOptions *no, const es_connect_options *o,
                                      change_watch **out)
{
    *out = NULL;
    if (o->on_change == NULL)
        return ES_OK;
    change_watch *w = esi_malloc(sizeof *w);
    if (w == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    w->cb = o->on_change;
    w->closure = o->closure;
    natsStatus ns = natsOptions_SetDisconnectedCB(no, on_disconnected, w);
    if (ns == NATS_OK)
        ns = natsOptions_SetReconnectedCB(no, on_reconnected, w);
    if (ns == NATS_OK)
        ns = natsOptions_SetClosedCB(no, on_closed, w);
    if (ns != NATS_OK) {
        esi_free(w);
        return es_error(ES_ERR_NOMEM, "connect options: %s", natsStatus_GetText(ns));
    }
    *out = w;
    return ES_OK;
}

static es_status build_options(const es_connect_options *o, natsOptions *no)
{
    if (o->timeout_ms <= 0 || o->reconnect_wait_ms < 0 || o->reconnect_buffer_bytes < 0 ||
        o->reconnect_buffer_bytes > INT32_MAX || o->max_reconnect < -1)
        return es_error(ES_ERR_INVALID, "connect options: a timeout > 0, reconnect wait and "
                                        "buffer >= 0, max_reconnect >= -1");
    es_status s = set_servers(no, servers_of(o));
    if (s == ES_OK)
        s = set_auth(no, o);
    if (s == ES_OK)
        s = set_tls(no, o);
    if (s != ES_OK)
        return s;
    natsStatus ns = natsOptions_SetTimeout(no, o->timeout_ms);
    if (ns == NATS_OK)
        ns = natsOptions_SetName(no, o->name ? o->name : "es");
    if (ns == NATS_OK)
        ns = natsOptions_SetMaxReconnect(no, o->max_reconnect);
    if (ns == NATS_OK)
        ns = natsOptions_SetReconnectWait(no, o->reconnect_wait_ms);
    if (ns == NATS_OK)
        ns = natsOptions_SetReconnectBufSize(no, (int)o->reconnect_buffer_bytes);
    if (ns == NATS_OK) /* a refused publish known at once (conn.h) */
        ns = natsOptions_SetErrorHandler(no, esi_nats_async_error, NULL);
    if (ns != NATS_OK)
        return es_error(ES_ERR_INVALID, "connect options: %s", natsStatus_GetText(ns));
    return ES_OK;
}

/* Why a connection failed, for the one line a user reads: the servers
 * (their passwords masked), and nats.c's own account of a TLS failure
 * (OpenSSL's reason: an unknown CA, a host name mismatch, an expired
 * certificate) or of a refused login, where "SSL Error" alone says little. */
static es_status connect_failure(natsStatus ns, const es_connect_options *o)
{
    const char *urls = servers_of(o);
    char url[256];
    mask_urls(urls, strlen(urls), url, sizeof url);
    const char *detail = nats_GetLastError(NULL);
    const char *loc = detail && detail[0] == '(' ? strstr(detail, "): ") : NULL;
    if (loc != NULL) /* nats.c's "(conn.c:4212): " */
        detail = loc + 3;
    if (detail == NULL || *detail == '\0' || strcmp(detail, natsStatus_GetText(ns)) == 0)
        detail = NULL;
    if (ns == NATS_CONNECTION_AUTH_FAILED || ns == NATS_NOT_PERMITTED)
        return es_error(ES_ERR_CONNECTION, "cannot connect to %.200s: authorization failed", url);
    if (ns == NATS_NO_SERVER || ns == NATS_TIMEOUT)
        return es_error(ES_ERR_CONNECTION, "cannot connect to %.200s: no server is answering", url);
    if (ns == NATS_SSL_ERROR && detail != NULL)
        return es_error(ES_ERR_CONNECTION, "cannot connect to %.200s: TLS: %.300s", url, detail);
    if (detail != NULL) /* e.g. a credentials file that is none */
        return es_error(ES_ERR_CONNECTION, "cannot connect to %.200s: %.300s", url, detail);
    return es_error(ES_ERR_CONNECTION, "cannot connect to %.200s: %s", url, natsStatus_GetText(ns));
}

es_status es_connect(const es_connect_options *opts, natsConnection **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_connect: out is NULL");
    *out = NULL;
    es_connect_options defaults;
    if (opts == NULL) {
        es_connect_options_init(&defaults);
        opts = &defaults;
    }
    natsOptions *no = NULL;
    if (natsOptions_Create(&no) != NATS_OK)
        return es_error(ES_ERR_NOMEM, "out of memory");
    change_watch *watch = NULL;
    es_status s = build_options(opts, no);
    if (s == ES_OK)
        s = set_change_callbacks(no, opts, &watch);
    if (s == ES_OK) {
        natsStatus ns = natsConnection_Connect(out, no);
        if (ns != NATS_OK) {
            s = connect_failure(ns, opts);
            esi_free(watch); /* no connection: no callback will free it */
        }
    }
    natsOptions_Destroy(no);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

void es_connection_close(natsConnection *nc)
{
    if (nc == NULL)
        return;
    esi_inbox_forget(nc);
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
}

es_status es_shutdown(int64_t timeout_ms)
{
    esi_inbox_sweep(); /* connections closed without es_connection_close */
    natsStatus ns = nats_CloseAndWait(timeout_ms > 0 ? timeout_ms : 0);
    switch (ns) {
    case NATS_OK: return ES_OK;
    case NATS_TIMEOUT:
        return es_error(ES_ERR_TIMEOUT, "the NATS library's threads did not end in %lld ms",
                        (long long)timeout_ms);
    case NATS_ILLEGAL_STATE:
        return es_error(ES_ERR_INVALID, "es_shutdown: called from a NATS library thread");
    default: return es_error(ES_ERR_CONNECTION, "es_shutdown: %s", natsStatus_GetText(ns));
    }
}

const char *es_nats_client_version(void)
{
    return nats_GetVersion();
}
