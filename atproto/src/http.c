/* HTTP GET with libcurl (http.h): bounds, timeouts, the SSRF guard, the
 * status line, Retry-After and the XRPC error body of a refusal. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "atp_internal.h"
#include "http.h"

/* A refusal's body is read up to this much for its error name and message;
 * the rest is discarded. */
#define ERROR_BODY_MAX 4096
/* A Retry-After value longer than this is not a date nor a count of seconds. */
#define RETRY_AFTER_TEXT_MAX 64
/* The first buffer of a buffered body; it doubles as the body grows. */
#define BUFFER_FIRST 4096

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

es_status esi_http_init(void)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_result != CURLE_OK)
        return es_error(ES_ERR_UNSUPPORTED, "libcurl does not initialise: %s",
                        curl_easy_strerror(curl_init_result));
    return ES_OK;
}

/* One transfer's state, shared by curl's callbacks. */
typedef struct transfer {
    const esi_http_request *req;
    esi_http_response *resp;
    size_t cap; /* of resp->body */
    char retry_after[RETRY_AFTER_TEXT_MAX + 1];
    char err[ERROR_BODY_MAX];
    size_t err_len;
    bool overflow, nomem, refused_address;
    bool refusal_read; /* a refusal's head was read and the rest not wanted */
    es_status sink_status;
} transfer;

static bool success(long status)
{
    return status >= 200 && status < 300;
}

/* ---- headers ---------------------------------------------------------------- */

/* Each header line of each response (an interim 100 Continue included: the
 * last status line wins). */
static size_t on_header(char *line, size_t size, size_t n, void *ctx)
{
    transfer *t = ctx;
    size_t len = size * n;
    if (len > 5 && memcmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', len);
        long status = 0;
        for (const char *p = sp ? sp + 1 : line + len;
             p < line + len && *p >= '0' && *p <= '9' && status < 1000; p++)
            status = status * 10 + (*p - '0');
        t->resp->status = status;
        t->retry_after[0] = '\0';
        return len;
    }
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
        const char *v = line + sizeof name - 1, *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t vn = (size_t)(end - v);
        if (vn <= RETRY_AFTER_TEXT_MAX) {
            memcpy(t->retry_after, v, vn);
            t->retry_after[vn] = '\0';
        }
    }
    return len;
}

/* Retry-After as milliseconds from now: delay-seconds or an HTTP date
 * (RFC 9110 10.2.3); -1 when it is neither. Clamped to [0, the maximum]. */
static int64_t retry_after_ms(const char *text)
{
    if (text[0] == '\0')
        return -1;
    int64_t ms = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++) /* past the maximum: clamped, not wrapped */
        if (ms <= ESI_HTTP_RETRY_AFTER_MAX_MS)
            ms = ms * 10 + (*p - '0') * 1000;
    if (*p != '\0' || p == text) { /* not all digits: a date, or nothing */
        time_t at = curl_getdate(text, NULL);
        if (at == (time_t)-1)
            return -1;
        ms = ((int64_t)at - (int64_t)time(NULL)) * 1000;
        if (ms < 0)
            ms = 0;
    }
    return ms > ESI_HTTP_RETRY_AFTER_MAX_MS ? ESI_HTTP_RETRY_AFTER_MAX_MS : ms;
}

/* ---- the body --------------------------------------------------------------- */

static bool buffer_append(transfer *t, const char *data, size_t len)
{
    esi_http_response *r = t->resp;
    if (r->len + len + 1 > t->cap) { /* + 1: the NUL */
        size_t cap = t->cap ? t->cap : BUFFER_FIRST;
        while (cap < r->len + len + 1)
            cap *= 2;
        if (cap > t->req->max_bytes + 1) /* never past the bound */
            cap = (size_t)t->req->max_bytes + 1;
        char *p = es_realloc(r->body, cap);
        if (p == NULL)
            return false;
        r->body = p;
        t->cap = cap;
    }
    memcpy(r->body + r->len, data, len);
    r->len += len;
    r->body[r->len] = '\0';
    return true;
}

/* Each chunk of the body, counted against the bound before anything is
 * kept: returning less than `len` makes curl stop (CURLE_WRITE_ERROR). */
static size_t on_data(char *data, size_t size, size_t n, void *ctx)
{
    transfer *t = ctx;
    size_t len = size * n;
    if (!success(t->resp->status)) { /* a refusal: its head is enough */
        size_t keep = len < sizeof t->err - t->err_len ? len : sizeof t->err - t->err_len;
        memcpy(t->err + t->err_len, data, keep);
        t->err_len += keep;
        t->refusal_read = keep < len; /* stop here: the status is known */
        return t->refusal_read ? 0 : len;
    }
    if (len > t->req->max_bytes - t->resp->bytes) {
        t->overflow = true;
        return 0;
    }
    t->resp->bytes += len;
    if (t->req->sink != NULL) {
        t->sink_status = t->req->sink(t->req->sink_ctx, (const uint8_t *)data, len);
        return t->sink_status == ES_OK ? len : 0;
    }
    if (!buffer_append(t, data, len)) {
        t->nomem = true;
        return 0;
    }
    return len;
}

/* ---- SSRF guard ------------------------------------------------------------- */

/* Whether `a` is an address a host named by the network may have: not
 * loopback, private (RFC 1918, unique local), link-local, carrier-grade NAT,
 * "this network", multicast or reserved. A relay chooses the DIDs and a DID
 * document the PDS; neither may make the ingester probe its own network. */
static bool public_ipv4(const uint8_t *a)
{
    return !(a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||
             (a[0] == 100 && (a[1] & 0xc0) == 64) || (a[0] == 169 && a[1] == 254) ||
             (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
             (a[0] == 192 && a[1] == 0 && a[2] == 0));
}

static bool public_address(const struct sockaddr *sa)
{
    uint8_t a[16]; /* copied out: the sockaddr is curl's, of the family's size */
    if (sa->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return public_ipv4(a);
    }
    if (sa->sa_family != AF_INET6)
        return false;
    memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, sizeof mapped) == 0) /* ::ffff:a.b.c.d */
        return public_ipv4(a + 12);
    /* global unicast is 2000::/3; everything else (::1, ::, fc00::/7,
     * fe80::/10, ff00::/8, the IPv4-compatible forms) is refused */
    return (a[0] & 0xe0) == 0x20;
}

/* CURLOPT_OPENSOCKETFUNCTION: checked on the address curl is about to
 * connect to, after name resolution, so DNS cannot smuggle a private one in. */
static curl_socket_t open_public_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *a)
{
    transfer *t = ctx;
    if (purpose != CURLSOCKTYPE_IPCXN || !public_address(&a->addr)) {
        t->refused_address = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* ---- the request ------------------------------------------------------------ */

static void set_options(CURL *c, const esi_http_request *req, transfer *t)
{
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, req->allow_insecure ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->connect_timeout_ms > 0)
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    /* refuses at once a body announced over the bound; one announced
     * smaller and sent larger is caught by on_data */
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "es-atproto");
    if (req->public_only) {
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, t);
    }
}

/* The status of a finished transfer: its bound, its callbacks, curl's error. */
static es_status transfer_status(const esi_http_request *req, const transfer *t, CURLcode rc)
{
    if (t->overflow || rc == CURLE_FILESIZE_EXCEEDED)
        return es_error(ES_ERR_LIMIT, "%s: the answer of %s is over the %llu-byte bound", req->what,
                        req->url, (unsigned long long)req->max_bytes);
    if (t->sink_status != ES_OK)
        return t->sink_status;
    if (t->nomem)
        return es_error(ES_ERR_NOMEM, "%s: out of memory reading %s", req->what, req->url);
    if (rc == CURLE_WRITE_ERROR && t->refusal_read)
        return ES_OK; /* the answer is its status and the head of its body */
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return es_error(ES_ERR_TIMEOUT, "%s: %s did not answer within %lld ms", req->what, req->url,
                        (long long)req->timeout_ms);
    if (rc == CURLE_COULDNT_CONNECT && t->refused_address)
        return es_error(ES_ERR_CONNECTION,
                        "%s: %s: no public address to connect to (private, loopback and "
                        "link-local addresses are refused)",
                        req->what, req->url);
    if (rc == CURLE_PARTIAL_FILE)
        return es_error(ES_ERR_CONNECTION, "%s: %s closed after %llu bytes, short of its length",
                        req->what, req->url, (unsigned long long)t->resp->bytes);
    if (rc != CURLE_OK)
        return es_error(ES_ERR_CONNECTION, "%s: fetching %s failed: %s", req->what, req->url,
                        curl_easy_strerror(rc));
    return ES_OK;
}

static es_status check_request(const esi_http_request *req)
{
    if (req == NULL || req->url == NULL || req->what == NULL || req->timeout_ms <= 0 ||
        req->max_bytes == 0 || req->max_bytes >= SIZE_MAX)
        return es_error(ES_ERR_INVALID, "esi_http_get: bad request");
    if (strncmp(req->url, "https://", 8) != 0 &&
        !(req->allow_insecure && strncmp(req->url, "http://", 7) == 0))
        return es_error(ES_ERR_INVALID, "%s: %.128s: https:// only", req->what, req->url);
    return ES_OK;
}

es_status esi_http_get(const esi_http_request *req, esi_http_response *resp)
{
    if (resp == NULL)
        return es_error(ES_ERR_INVALID, "esi_http_get: NULL response");
    memset(resp, 0, sizeof *resp);
    resp->retry_after_ms = -1;
    es_status s = check_request(req);
    if (s != ES_OK || (s = esi_http_init()) != ES_OK)
        return s;
    transfer t = {.req = req, .resp = resp, .sink_status = ES_OK};
    CURL *c = curl_easy_init();
    if (c == NULL)
        return es_error(ES_ERR_NOMEM, "%s: libcurl handle: out of memory", req->what);
    set_options(c, req, &t);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    resp->status = status;
    if (!success(status) && t.err_len > 0)
        esi_http_parse_error(t.err, t.err_len, resp);
    if (status == 429 || status == 503)
        resp->retry_after_ms = retry_after_ms(t.retry_after);
    return transfer_status(req, &t, rc);
}

void esi_http_response_clear(esi_http_response *resp)
{
    if (resp == NULL)
        return;
    es_free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

/* ---- XRPC errors, URL encoding --------------------------------------------- */

/* Copies string member `key` of `o` into out[cap] (truncated), "" if
 * absent; control bytes become '?': the text ends up in logs. */
static void copy_member(const json_t *o, const char *key, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(out, cap, "%s", v != NULL ? v : "");
    for (char *p = out; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

void esi_http_parse_error(const char *body, size_t len, esi_http_response *resp)
{
    resp->error[0] = resp->message[0] = '\0';
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(root)) {
        copy_member(root, "error", resp->error, sizeof resp->error);
        copy_member(root, "message", resp->message, sizeof resp->message);
    }
    json_decref(root);
}

es_status esi_http_check_base(const char *url, size_t len, bool allow_http)
{
    size_t scheme = len >= 8 && memcmp(url, "https://", 8) == 0                ? 8
                    : allow_http && len >= 7 && memcmp(url, "http://", 7) == 0 ? 7
                                                                               : 0;
    if (scheme == 0)
        return es_error(ES_ERR_INVALID, "'%.*s': not an %s URL", (int)(len < 128 ? len : 128), url,
                        allow_http ? "http(s)" : "https");
    size_t host_end = scheme;
    while (host_end < len && url[host_end] != '/')
        host_end++;
    if (host_end == scheme || memchr(url + scheme, '@', host_end - scheme) != NULL)
        return es_error(ES_ERR_INVALID, "'%.*s': no host, or userinfo before it",
                        (int)(len < 128 ? len : 128), url);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '\\')
            return es_error(ES_ERR_INVALID, "'%.*s': a query, fragment, space or control byte",
                            (int)(len < 128 ? len : 128), url);
    }
    return ES_OK;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

es_status esi_http_encode(const char *s, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = unreserved(c) ? 1 : 3;
        if (cap - o <= need) /* room for it and the NUL */
            return es_error(ES_ERR_LIMIT, "a URL parameter of %zu bytes does not fit in %zu", len,
                            cap);
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (cap == 0)
        return es_error(ES_ERR_LIMIT, "a URL parameter does not fit in 0 bytes");
    out[o] = '\0';
    return ES_OK;
}
