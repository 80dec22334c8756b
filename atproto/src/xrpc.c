/* The com.atproto.sync XRPC calls (es/atproto_xrpc.h) over http.c's GET:
 * getRepo streamed, into a buffer or into an unlinked temporary file;
 * listRepos and listReposByCollection page by page; the PDS of a DID. */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <es/atproto_xrpc.h>
#include <es/cid.h>

#include "atp_internal.h"
#include "http.h"
#include "identity.h"
#include "verify.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_TIMEOUT_MS         300000
#define DEFAULT_MAX_REPO_BYTES     ((uint64_t)1 << 30)
#define DEFAULT_MAX_PAGE_BYTES     ((size_t)4 << 20)
#define DEFAULT_PAGE_LIMIT         1000
#define DEFAULT_MAX_PAGES          100
/* the lexicons' maximum `limit` (listRepos 1,000; listReposByCollection 2,000) */
#define PAGE_LIMIT_MAX 1000
/* A URL: the service, the method, and parameters percent-encoded (a DID
 * of 2,048 bytes, a cursor of 1,024, an NSID of 317: at most 3 bytes each). */
#define URL_CAP    (ES_ATP_XRPC_URL_MAX + 128 + 3 * (ESI_ATP_DID_MAX + ES_ATP_XRPC_CURSOR_MAX + 320))
#define WHAT_CAP   (ESI_ATP_DID_MAX + 64)
#define HEAD_MAX   128 /* a CID as text (a sha2-256 CIDv1 in base32 is 59) */
#define STATUS_MAX 64

struct es_atp_xrpc {
    es_atp_xrpc_options o;
};

void es_atp_xrpc_options_init(es_atp_xrpc_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    o->max_repo_bytes = DEFAULT_MAX_REPO_BYTES;
    o->max_page_bytes = DEFAULT_MAX_PAGE_BYTES;
    o->page_limit = DEFAULT_PAGE_LIMIT;
    o->max_pages = DEFAULT_MAX_PAGES;
}

es_status es_atp_xrpc_create(const es_atp_xrpc_options *o, es_atp_xrpc **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_xrpc_create: out is NULL");
    *out = NULL;
    es_atp_xrpc_options defaults;
    es_atp_xrpc_options_init(&defaults);
    if (o == NULL)
        o = &defaults;
    if (o->connect_timeout_ms <= 0 || o->timeout_ms <= 0 || o->max_repo_bytes == 0 ||
        o->max_repo_bytes >= SIZE_MAX / 2 || o->max_page_bytes == 0 ||
        o->max_page_bytes >= SIZE_MAX / 2 || o->page_limit == 0 || o->page_limit > PAGE_LIMIT_MAX ||
        o->max_pages == 0)
        return es_error(ES_ERR_INVALID, "es_atp_xrpc_create: an option out of range");
    es_status s = esi_http_init();
    if (s != ES_OK)
        return s;
    es_atp_xrpc *x = es_calloc(1, sizeof *x);
    if (x == NULL)
        return es_error(ES_ERR_NOMEM, "es_atp_xrpc_create: out of memory");
    x->o = *o;
    *out = x;
    return ES_OK;
}

void es_atp_xrpc_destroy(es_atp_xrpc *x)
{
    es_free(x);
}

/* ---- one request -------------------------------------------------------------- */

static void result_init(es_atp_xrpc_result *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after_ms = -1;
}

/* "<service>/xrpc/<method>?<query>" into url[URL_CAP]; the service is
 * checked (https://, no userinfo, query or fragment) and loses trailing '/'. */
static es_status method_url(const es_atp_xrpc *x, const char *service, const char *method,
                            const char *query, char *url)
{
    size_t n = service != NULL ? strnlen(service, ES_ATP_XRPC_URL_MAX + 1) : 0;
    if (service == NULL || n > ES_ATP_XRPC_URL_MAX)
        return es_error(ES_ERR_INVALID, "%s: no service URL, or one over %d bytes", method,
                        ES_ATP_XRPC_URL_MAX);
    es_status s = esi_http_check_base(service, n, x->o.allow_insecure);
    if (s != ES_OK)
        return esi_atp_error_wrap(s, "%s: the service URL", method);
    while (n > 0 && service[n - 1] == '/')
        n--;
    int len = snprintf(url, URL_CAP, "%.*s/xrpc/%s?%s", (int)n, service, method, query);
    if (len < 0 || len >= URL_CAP)
        return es_error(ES_ERR_LIMIT, "%s: the URL is over %d bytes", method, URL_CAP);
    return ES_OK;
}

/* The XRPC error name of a repository that exists but is not served, and
 * the account status it stands for. */
static const char *repo_status_of(const char *error)
{
    static const char *const map[][2] = {{"RepoTakendown", "takendown"},
                                         {"RepoSuspended", "suspended"},
                                         {"RepoDeactivated", "deactivated"}};
    for (size_t i = 0; i < ES_ARRAY_LEN(map); i++)
        if (strcmp(error, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* The status of an answered request (docs in es/atproto_xrpc.h). */
static es_status outcome(const char *what, const char *url, const esi_http_response *r,
                         es_atp_xrpc_result *res)
{
    long st = r->status;
    snprintf(res->error, sizeof res->error, "%s", r->error);
    snprintf(res->message, sizeof res->message, "%s", r->message);
    if (st >= 200 && st < 300)
        return ES_OK;
    es_status s = ES_ERR_PROTOCOL;
    if ((res->repo_status = repo_status_of(r->error)) != NULL)
        s = ES_ERR_PERMISSION;
    else if (strcmp(r->error, "RepoNotFound") == 0 || st == 404 || st == 410)
        s = ES_ERR_NOT_FOUND;
    else if (st == 429 || st == 503)
        s = ES_ERR_AGAIN;
    else if (st >= 500 && st < 600)
        s = ES_ERR_SERVER;
    if (s == ES_ERR_AGAIN)
        res->retry_after_ms = r->retry_after_ms;
    return es_error(s, "%s: HTTP %ld from %s%s%s%s%s", what, st, url, r->error[0] ? ": " : "",
                    r->error, r->message[0] ? ": " : "", r->message);
}

/* One GET: `sink` set streams a 2xx body, else it is buffered in *resp. */
static es_status request(const es_atp_xrpc *x, const char *what, const char *url,
                         uint64_t max_bytes, esi_http_sink_fn sink, void *sink_ctx,
                         esi_http_response *resp, es_atp_xrpc_result *res)
{
    esi_http_request req = {
        .url = url,
        .what = what,
        .timeout_ms = x->o.timeout_ms,
        .connect_timeout_ms = x->o.connect_timeout_ms,
        .max_bytes = max_bytes,
        .allow_insecure = x->o.allow_insecure,
        .public_only = !x->o.allow_insecure && !x->o.allow_private_addresses,
        .sink = sink,
        .sink_ctx = sink_ctx,
    };
    es_status s = esi_http_get(&req, resp);
    res->http_status = (int)resp->status;
    res->bytes += resp->bytes;
    return s != ES_OK ? s : outcome(what, url, resp, res);
}

/* ---- getRepo ------------------------------------------------------------------ */

static es_status get_repo(es_atp_xrpc *x, const char *service, const char *did, size_t did_len,
                          esi_http_sink_fn sink, void *ctx, uint64_t max_bytes,
                          es_atp_xrpc_result *res)
{
    if (x == NULL || did == NULL || did_len > ESI_ATP_DID_MAX || !es_atp_valid_did(did, did_len))
        return es_error(ES_ERR_INVALID, "getRepo: no handle, or '%.*s' is not a DID",
                        did != NULL && did_len < 64 ? (int)did_len : 0, did != NULL ? did : "");
    char query[5 + 3 * ESI_ATP_DID_MAX + 1], what[WHAT_CAP];
    memcpy(query, "did=", 4);
    es_status s = esi_http_encode(did, did_len, query + 4, sizeof query - 4);
    if (s != ES_OK)
        return s;
    snprintf(what, sizeof what, "getRepo %.*s", (int)did_len, did);
    char *url = es_malloc(URL_CAP);
    if (url == NULL)
        return es_error(ES_ERR_NOMEM, "%s: out of memory", what);
    s = method_url(x, service, "com.atproto.sync.getRepo", query, url);
    if (s == ES_OK) {
        esi_http_response resp;
        s = request(x, what, url, max_bytes, sink, ctx, &resp, res);
        esi_http_response_clear(&resp);
    }
    es_free(url);
    return s;
}

/* The caller's callback as an http.c sink (an adapter: the public and the
 * internal types are distinct). */
typedef struct chunk_sink {
    es_atp_xrpc_chunk_fn fn;
    void *ctx;
} chunk_sink;

static es_status to_callback(void *ctx, const uint8_t *data, size_t len)
{
    chunk_sink *c = ctx;
    return c->fn(c->ctx, data, len);
}

es_status es_atp_xrpc_get_repo(es_atp_xrpc *x, const char *service, const char *did, size_t did_len,
                               es_atp_xrpc_chunk_fn fn, void *ctx, es_atp_xrpc_result *res)
{
    es_atp_xrpc_result scratch;
    res = res != NULL ? res : &scratch;
    result_init(res);
    if (fn == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_xrpc_get_repo: no callback");
    chunk_sink c = {fn, ctx};
    return get_repo(x, service, did, did_len, to_callback, &c, x ? x->o.max_repo_bytes : 0, res);
}

typedef struct buffer_sink {
    uint8_t *buf;
    size_t cap, len;
} buffer_sink;

static es_status to_buffer(void *ctx, const uint8_t *data, size_t len)
{
    buffer_sink *b = ctx; /* http.c's bound (<= cap) was checked first */
    memcpy(b->buf + b->len, data, len);
    b->len += len;
    return ES_OK;
}

es_status es_atp_xrpc_get_repo_buf(es_atp_xrpc *x, const char *service, const char *did,
                                   size_t did_len, uint8_t *buf, size_t cap, size_t *len,
                                   es_atp_xrpc_result *res)
{
    es_atp_xrpc_result scratch;
    res = res != NULL ? res : &scratch;
    result_init(res);
    if (len != NULL)
        *len = 0;
    if (x == NULL || buf == NULL || cap == 0 || len == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_xrpc_get_repo_buf: NULL argument or no room");
    buffer_sink b = {buf, cap, 0};
    uint64_t bound = cap < x->o.max_repo_bytes ? cap : x->o.max_repo_bytes;
    es_status s = get_repo(x, service, did, did_len, to_buffer, &b, bound, res);
    if (s == ES_OK)
        *len = b.len;
    return s;
}

/* An unlinked file in `dir`: O_TMPFILE where the file system has it, else
 * mkstemp and unlink at once. */
static es_status temp_file(const char *dir, int *fd)
{
    if (dir == NULL)
        dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
#ifdef O_TMPFILE
    *fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (*fd >= 0)
        return ES_OK;
#endif
    char path[4096];
    if (snprintf(path, sizeof path, "%s/es-atproto-repo-XXXXXX", dir) >= (int)sizeof path)
        return es_error(ES_ERR_INVALID, "getRepo: temporary directory path too long");
    *fd = mkstemp(path);
    if (*fd < 0)
        return es_error(ES_ERR_IO, "getRepo: no temporary file in %s: %s", dir, strerror(errno));
    unlink(path);
    return ES_OK;
}

static es_status to_file(void *ctx, const uint8_t *data, size_t len)
{
    int fd = *(int *)ctx;
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return es_error(ES_ERR_IO, "getRepo: writing the temporary file: %s",
                            n < 0 ? strerror(errno) : "no progress");
        data += n;
        len -= (size_t)n;
    }
    return ES_OK;
}

es_status es_atp_xrpc_get_repo_file(es_atp_xrpc *x, const char *service, const char *did,
                                    size_t did_len, const char *dir, int *fd, uint64_t *size,
                                    es_atp_xrpc_result *res)
{
    es_atp_xrpc_result scratch;
    res = res != NULL ? res : &scratch;
    result_init(res);
    if (fd == NULL || size == NULL || x == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_xrpc_get_repo_file: NULL argument");
    *fd = -1;
    *size = 0;
    int f;
    es_status s = temp_file(dir, &f);
    if (s != ES_OK)
        return s;
    s = get_repo(x, service, did, did_len, to_file, &f, x->o.max_repo_bytes, res);
    if (s == ES_OK && lseek(f, 0, SEEK_SET) != 0)
        s = es_error(ES_ERR_IO, "getRepo: rewinding the temporary file: %s", strerror(errno));
    if (s != ES_OK) {
        close(f);
        return s;
    }
    *fd = f;
    *size = res->bytes;
    return ES_OK;
}

/* ---- listings ----------------------------------------------------------------- */

/* A listing: its method, fixed parameters, and the callback of its entries. */
typedef struct listing {
    const char *method;
    const char *entries; /* the page's array member ("repos") */
    char fixed[3 * 320 + 16];
    es_atp_xrpc_repo_fn repo_fn; /* listRepos */
    es_atp_xrpc_did_fn did_fn;   /* listReposByCollection */
    void *ctx;
} listing;

/* A string member of at most `max` bytes without NUL inside, else NULL. */
static const char *string_member(const json_t *o, const char *key, size_t max)
{
    const json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);
    if (s == NULL || json_string_length(v) > max || strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

/* Delivers one entry of a page, or counts it skipped when malformed. */
static es_status deliver(const listing *l, const json_t *e, es_atp_xrpc_result *res)
{
    const char *did = string_member(e, "did", ESI_ATP_DID_MAX);
    if (did == NULL || !es_atp_valid_did(did, strlen(did))) {
        res->skipped++;
        return ES_OK;
    }
    if (l->did_fn != NULL) {
        res->items++;
        return l->did_fn(l->ctx, did, strlen(did));
    }
    es_atp_xrpc_repo r = {.did = did, .did_len = strlen(did), .active = true};
    r.head = string_member(e, "head", HEAD_MAX);
    r.rev = string_member(e, "rev", 16);
    const json_t *active = json_object_get(e, "active");
    const json_t *status = json_object_get(e, "status");
    r.status = string_member(e, "status", STATUS_MAX);
    if (r.head == NULL || !es_cid_syntax_valid(r.head, strlen(r.head)) || r.rev == NULL ||
        !es_atp_valid_tid(r.rev, strlen(r.rev)) || (active != NULL && !json_is_boolean(active)) ||
        (status != NULL && !json_is_null(status) && r.status == NULL)) {
        res->skipped++;
        return ES_OK;
    }
    r.active = active == NULL || json_is_true(active);
    res->items++;
    return l->repo_fn(l->ctx, &r);
}

/* The page's entries to the callback, and its next cursor into next[]. */
static es_status read_page(const listing *l, const char *body, size_t len, char *next,
                           es_atp_xrpc_result *res)
{
    json_error_t err;
    json_t *root = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES, &err);
    const json_t *entries = json_object_get(root, l->entries);
    const json_t *cursor = json_object_get(root, "cursor");
    es_status s = ES_OK;
    if (!json_is_array(entries) ||
        (cursor != NULL && !json_is_null(cursor) && !json_is_string(cursor)))
        s = es_error(ES_ERR_DECODE, "%s: the page is not {\"%s\": [...], \"cursor\"?}: %s",
                     l->method, l->entries, root == NULL ? err.text : "wrong shape");
    else if (json_is_string(cursor) && json_string_length(cursor) > ES_ATP_XRPC_CURSOR_MAX)
        s = es_error(ES_ERR_LIMIT, "%s: a cursor of %zu bytes, over the %d-byte bound", l->method,
                     json_string_length(cursor), ES_ATP_XRPC_CURSOR_MAX);
    else
        snprintf(next, ES_ATP_XRPC_CURSOR_MAX + 1, "%s",
                 json_is_string(cursor) && json_array_size(entries) > 0
                     ? json_string_value(cursor)
                     : ""); /* an empty page ends the listing, whatever its cursor */
    for (size_t i = 0; s == ES_OK && i < json_array_size(entries); i++)
        s = deliver(l, json_array_get(entries, i), res);
    json_decref(root);
    return s;
}

/* One page from res->cursor; *done when the listing has no more. */
static es_status list_page(es_atp_xrpc *x, const char *service, const listing *l, char *url,
                           bool *done, es_atp_xrpc_result *res)
{
    char query[sizeof l->fixed + 32 + 3 * ES_ATP_XRPC_CURSOR_MAX];
    int n = snprintf(query, sizeof query, "%slimit=%zu%s", l->fixed, x->o.page_limit,
                     res->cursor[0] != '\0' ? "&cursor=" : "");
    es_status s =
        esi_http_encode(res->cursor, strlen(res->cursor), query + n, sizeof query - (size_t)n);
    if (s == ES_OK)
        s = method_url(x, service, l->method, query, url);
    if (s != ES_OK)
        return s;
    esi_http_response resp;
    s = request(x, l->method, url, x->o.max_page_bytes, NULL, NULL, &resp, res);
    char next[ES_ATP_XRPC_CURSOR_MAX + 1];
    if (s == ES_OK)
        s = read_page(l, resp.body, resp.len, next, res);
    esi_http_response_clear(&resp);
    if (s != ES_OK)
        return s; /* res->cursor still names this page */
    res->pages++;
    if (next[0] != '\0' && strcmp(next, res->cursor) == 0)
        return es_error(ES_ERR_PROTOCOL, "%s: the server gave the same cursor again", l->method);
    memcpy(res->cursor, next, sizeof next);
    *done = next[0] == '\0';
    return ES_OK;
}

/* Starts a listing's result from `cursor`, which may be the result's own
 * (the cursor a previous call returned): read before the result is reset. */
static es_status list_begin(const char *method, const char *cursor, es_atp_xrpc_result *res)
{
    char start[ES_ATP_XRPC_CURSOR_MAX + 1] = "";
    size_t n = cursor != NULL ? strnlen(cursor, sizeof start) : 0;
    if (n > ES_ATP_XRPC_CURSOR_MAX) {
        result_init(res);
        return es_error(ES_ERR_LIMIT, "%s: a cursor over %d bytes", method, ES_ATP_XRPC_CURSOR_MAX);
    }
    memcpy(start, cursor != NULL ? cursor : "", n);
    start[n] = '\0';
    result_init(res);
    memcpy(res->cursor, start, n + 1);
    return ES_OK;
}

static es_status list(es_atp_xrpc *x, const char *service, const listing *l,
                      es_atp_xrpc_result *res)
{
    if (x == NULL || (l->repo_fn == NULL && l->did_fn == NULL))
        return es_error(ES_ERR_INVALID, "%s: no handle or no callback", l->method);
    char *url = es_malloc(URL_CAP);
    if (url == NULL)
        return es_error(ES_ERR_NOMEM, "%s: out of memory", l->method);
    es_status s = ES_OK;
    bool done = false;
    for (size_t page = 0; s == ES_OK && !done && page < x->o.max_pages; page++)
        s = list_page(x, service, l, url, &done, res);
    es_free(url);
    return s;
}

es_status es_atp_xrpc_list_repos(es_atp_xrpc *x, const char *service, const char *cursor,
                                 es_atp_xrpc_repo_fn fn, void *ctx, es_atp_xrpc_result *res)
{
    es_atp_xrpc_result scratch;
    res = res != NULL ? res : &scratch;
    listing l = {
        .method = "com.atproto.sync.listRepos", .entries = "repos", .repo_fn = fn, .ctx = ctx};
    es_status s = list_begin(l.method, cursor, res);
    return s != ES_OK ? s : list(x, service, &l, res);
}

es_status es_atp_xrpc_list_repos_by_collection(es_atp_xrpc *x, const char *service,
                                               const char *collection, const char *cursor,
                                               es_atp_xrpc_did_fn fn, void *ctx,
                                               es_atp_xrpc_result *res)
{
    es_atp_xrpc_result scratch;
    res = res != NULL ? res : &scratch;
    listing l = {.method = "com.atproto.sync.listReposByCollection",
                 .entries = "repos",
                 .did_fn = fn,
                 .ctx = ctx};
    es_status s = list_begin(l.method, cursor, res);
    if (s != ES_OK)
        return s;
    size_t n = collection != NULL ? strnlen(collection, 320) : 0;
    if (collection == NULL || !es_atp_valid_nsid(collection, n))
        return es_error(ES_ERR_INVALID, "%s: the collection is not an NSID", l.method);
    memcpy(l.fixed, "collection=", 11);
    s = esi_http_encode(collection, n, l.fixed + 11, sizeof l.fixed - 12);
    if (s != ES_OK)
        return s;
    strcat(l.fixed, "&");
    return list(x, service, &l, res);
}

/* ---- the PDS of a DID --------------------------------------------------------- */

es_status es_atp_identity_pds(es_atp_identity *id, const char *did, size_t did_len, char *buf,
                              size_t cap)
{
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
    if (id == NULL || did == NULL || buf == NULL || cap == 0)
        return es_error(ES_ERR_INVALID, "es_atp_identity_pds: NULL argument");
    esi_atp_did_doc *doc = NULL;
    es_status s = esi_atp_identity_doc(id, did, did_len, &doc);
    if (s != ES_OK)
        return s;
    const char *pds = doc->pds;
    size_t n = pds != NULL ? strlen(pds) : 0;
    if (pds == NULL)
        s = es_error(ES_ERR_NOT_FOUND, "%.*s: the DID document names no #atproto_pds service",
                     (int)did_len, did);
    else if (esi_http_check_base(pds, n, true) != ES_OK)
        s = esi_atp_error_wrap(ES_ERR_DECODE, "%.*s: the #atproto_pds endpoint", (int)did_len, did);
    while (s == ES_OK && n > 0 && pds[n - 1] == '/')
        n--;
    if (s == ES_OK && n >= cap)
        s = es_error(ES_ERR_LIMIT, "%.*s: a PDS URL of %zu bytes does not fit in %zu", (int)did_len,
                     did, n, cap);
    if (s == ES_OK) {
        memcpy(buf, pds, n);
        buf[n] = '\0';
    }
    esi_atp_did_doc_destroy(doc);
    return s;
}
