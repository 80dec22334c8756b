/* DID resolution: did:plc through a PLC directory, did:web through the
 * host's /.well-known/did.json, both with libcurl, and an in-memory cache
 * with a TTL. A resolver is not thread-safe: one per thread. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "atp_internal.h"
#include "atp_sig.h"
#include "http.h"
#include "identity.h"

#define DEFAULT_PLC        "https://plc.directory"
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_TTL_MS     ((int64_t)24 * 3600 * 1000)
#define DEFAULT_ENTRIES    100000
#define PLC_URL_MAX        1024
#define TTL_MAX_MS         ((int64_t)10 * 365 * 24 * 3600 * 1000)
#define URL_MAX            (PLC_URL_MAX + ESI_ATP_DID_MAX + 64)
#define NEVER              INT64_MAX
/* A document is fetched again after a signature failure at most this often:
 * otherwise every forged frame a relay sends would cost a request (and, with
 * the directory unreachable, a timeout). A rotation announced by #identity
 * is not held back: that drops the entry. */
#define MIN_REFRESH_MS 60000

typedef struct entry {
    struct entry *next;
    esi_atp_did_doc *doc;
    int64_t expires_ms; /* NEVER for a seeded document */
    int64_t fetched_ms; /* the last fetch of it (attempted), INT64_MIN: never (seeded) */
    /* A seeded document invalidated (#identity): fetched again on next use,
     * but kept while the network cannot be reached (an offline source). */
    bool stale;
    /* The document's signing key, parsed on first use (esi_atp_resolve_key):
     * parsing a compressed point costs about as much as a verification. */
    esi_atp_key *key;
    bool key_tried;
} entry;

struct esi_atp_resolver {
    char *plc_url;
    int64_t timeout_ms, ttl_ms;
    size_t max_entries, count, nbuckets;
    int allow_insecure;
    int offline;
    esi_atp_clock_fn clock;
    void *clock_ctx;
    entry **buckets;
    esi_atp_resolver_stats stats;
};

static int64_t monotonic_clock(void *ctx)
{
    (void)ctx;
    return esi_atp_monotonic_ms();
}

void esi_atp_resolver_options_init(esi_atp_resolver_options *o)
{
    memset(o, 0, sizeof *o);
    o->plc_url = DEFAULT_PLC;
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    o->ttl_ms = DEFAULT_TTL_MS;
    o->max_entries = DEFAULT_ENTRIES;
}

es_status esi_atp_resolver_create(const esi_atp_resolver_options *o, esi_atp_resolver **out)
{
    esi_atp_resolver_options defaults;
    esi_atp_resolver_options_init(&defaults);
    if (o == NULL)
        o = &defaults;
    /* A bounded URL base and TTL: URLs are built in fixed buffers, and an
     * expiry (now + TTL) must not overflow. */
    if (out == NULL || o->plc_url == NULL || strlen(o->plc_url) > PLC_URL_MAX ||
        o->timeout_ms <= 0 || o->ttl_ms <= 0 || o->ttl_ms > TTL_MAX_MS || o->max_entries == 0)
        return es_error(ES_ERR_INVALID, "esi_atp_resolver_create: bad options");
    if (!o->allow_insecure && strncmp(o->plc_url, "https://", 8) != 0)
        return es_error(ES_ERR_INVALID, "PLC directory %.64s: https:// only", o->plc_url);
    es_status s = esi_http_init();
    if (s != ES_OK)
        return s;
    esi_atp_resolver *r = es_calloc(1, sizeof *r);
    if (r == NULL)
        return es_error(ES_ERR_NOMEM, "resolver: out of memory");
    r->timeout_ms = o->timeout_ms;
    r->ttl_ms = o->ttl_ms;
    r->max_entries = o->max_entries;
    r->allow_insecure = o->allow_insecure;
    r->offline = o->offline;
    r->clock = o->clock != NULL ? o->clock : monotonic_clock;
    r->clock_ctx = o->clock_ctx;
    r->nbuckets = o->max_entries < 4096 ? 256 : 16384;
    r->plc_url = esi_atp_strdup(o->plc_url);
    r->buckets = es_calloc(r->nbuckets, sizeof *r->buckets);
    if (r->plc_url == NULL || r->buckets == NULL) {
        esi_atp_resolver_destroy(r);
        return es_error(ES_ERR_NOMEM, "resolver: out of memory");
    }
    size_t n = strlen(r->plc_url); /* "https://plc.directory/" joins as without '/' */
    while (n > 0 && r->plc_url[n - 1] == '/')
        r->plc_url[--n] = '\0';
    *out = r;
    return ES_OK;
}

static void free_entry(entry *e)
{
    esi_atp_key_destroy(e->key);
    esi_atp_did_doc_destroy(e->doc);
    es_free(e);
}

void esi_atp_resolver_destroy(esi_atp_resolver *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; r->buckets != NULL && i < r->nbuckets; i++) {
        for (entry *e = r->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free_entry(e);
        }
    }
    es_free(r->buckets);
    es_free(r->plc_url);
    es_free(r);
}

/* ---- the cache ---------------------------------------------------------------- */

static entry **slot(const esi_atp_resolver *r, const char *did)
{
    uint64_t h = esi_atp_hash(did, strlen(did));
    entry **p = &r->buckets[h % r->nbuckets];
    while (*p != NULL && strcmp((*p)->doc->did, did) != 0)
        p = &(*p)->next;
    return p;
}

static void unlink_entry(esi_atp_resolver *r, entry **p)
{
    entry *e = *p;
    *p = e->next;
    free_entry(e);
    r->count--;
}

/* Makes room for one more entry: the expired ones go first, then whatever
 * comes first in bucket order (a full cache only costs refetches). */
static void make_room(esi_atp_resolver *r, int64_t now)
{
    for (size_t i = 0; i < r->nbuckets && r->count >= r->max_entries; i++)
        for (entry **p = &r->buckets[i]; *p != NULL;)
            if ((*p)->expires_ms <= now)
                unlink_entry(r, p);
            else
                p = &(*p)->next;
    for (size_t i = 0; i < r->nbuckets && r->count >= r->max_entries; i++)
        while (r->buckets[i] != NULL && r->count >= r->max_entries)
            unlink_entry(r, &r->buckets[i]);
}

/* Files `doc` (taken) under its DID, replacing what was there. */
static es_status cache_put(esi_atp_resolver *r, esi_atp_did_doc *doc, int64_t expires_ms,
                           int64_t fetched_ms)
{
    entry **p = slot(r, doc->did);
    if (*p != NULL)
        unlink_entry(r, p);
    make_room(r, r->clock(r->clock_ctx));
    entry *e = es_calloc(1, sizeof *e);
    if (e == NULL) {
        esi_atp_did_doc_destroy(doc);
        return es_error(ES_ERR_NOMEM, "resolver: out of memory");
    }
    e->doc = doc;
    e->expires_ms = expires_ms;
    e->fetched_ms = fetched_ms;
    p = slot(r, doc->did); /* make_room may have emptied the chain */
    *p = e;
    r->count++;
    return ES_OK;
}

es_status esi_atp_resolver_seed(esi_atp_resolver *r, esi_atp_did_doc *doc)
{
    if (r == NULL || doc == NULL) {
        esi_atp_did_doc_destroy(doc);
        return es_error(ES_ERR_INVALID, "esi_atp_resolver_seed: NULL argument");
    }
    return cache_put(r, doc, NEVER, INT64_MIN);
}

void esi_atp_resolver_invalidate(esi_atp_resolver *r, const char *did)
{
    if (r == NULL || did == NULL)
        return;
    entry **p = slot(r, did);
    if (*p == NULL)
        return;
    if ((*p)->expires_ms != NEVER) {
        unlink_entry(r, p);
        return;
    }
    (*p)->stale = true; /* seeded: fetched on next use, kept while offline */
    (*p)->fetched_ms = INT64_MIN;
}

/* Whether `e` was fetched (or tried) less than MIN_REFRESH_MS ago. */
static bool fetched_recently(const entry *e, int64_t now)
{
    return e->fetched_ms != INT64_MIN && now - e->fetched_ms < MIN_REFRESH_MS;
}

void esi_atp_resolver_stats_get(const esi_atp_resolver *r, esi_atp_resolver_stats *out)
{
    *out = r->stats;
    out->cached = r->count;
}

/* ---- fetching ----------------------------------------------------------------- */

/* The URL of `did`'s document, or ES_ERR_INVALID for a method or a did:web
 * form that atproto does not support (did:web with a path). */
static es_status document_url(const esi_atp_resolver *r, const char *did, char *url, size_t cap)
{
    if (strncmp(did, "did:plc:", 8) == 0) {
        snprintf(url, cap, "%s/%s", r->plc_url, did);
        return ES_OK;
    }
    if (strncmp(did, "did:web:", 8) != 0)
        return es_error(ES_ERR_INVALID, "%s: only did:plc and did:web resolve", did);
    const char *host = did + 8;
    char decoded[ESI_ATP_DID_MAX + 1];
    size_t n = 0;
    for (const char *p = host; *p != '\0'; p++) {
        if (*p == ':') /* a path: atproto allows did:web at the host level only */
            return es_error(ES_ERR_INVALID, "%s: did:web with a path is not supported", did);
        if (strncmp(p, "%3A", 3) == 0 || strncmp(p, "%3a", 3) == 0) { /* a port */
            decoded[n++] = ':';
            p += 2;
        } else if (*p == '%') {
            return es_error(ES_ERR_INVALID, "%s: not a did:web host name", did);
        } else {
            decoded[n++] = *p;
        }
    }
    decoded[n] = '\0';
    snprintf(url, cap, "%s://%s/.well-known/did.json", r->allow_insecure ? "http" : "https",
             decoded);
    return ES_OK;
}

/* Fetches `did`'s document text into resp->body (http.c). did:web hosts
 * must have public addresses; the PLC directory is the operator's choice. */
static es_status fetch(const esi_atp_resolver *r, const char *did, esi_http_response *resp)
{
    char url[URL_MAX];
    es_status s = document_url(r, did, url, sizeof url);
    if (s != ES_OK)
        return s;
    esi_http_request req = {
        .url = url,
        .what = did,
        .timeout_ms = r->timeout_ms,
        .max_bytes = ESI_ATP_DID_DOC_MAX,
        .allow_insecure = r->allow_insecure,
        .public_only = strncmp(did, "did:web:", 8) == 0 && !r->allow_insecure,
    };
    if ((s = esi_http_get(&req, resp)) != ES_OK)
        return s;
    if (resp->status == 404 || resp->status == 410)
        return es_error(ES_ERR_NOT_FOUND, "%s: no DID document (HTTP %ld from %s)", did,
                        resp->status, url);
    if (resp->status != 200)
        return es_error(ES_ERR_SERVER, "%s: HTTP %ld from %s", did, resp->status, url);
    return ES_OK;
}

/* Fetches, parses and checks `did`'s document. */
static es_status resolve_remote(esi_atp_resolver *r, const char *did, esi_atp_did_doc **out)
{
    if (r->offline)
        return es_error(ES_ERR_CONNECTION, "%s: offline, and no document was seeded for it", did);
    r->stats.fetches++;
    esi_http_response resp = {.body = NULL};
    es_status s = fetch(r, did, &resp);
    if (s == ES_OK) {
        s = esi_atp_did_doc_parse(resp.body != NULL ? resp.body : "", resp.len, out);
        if (s != ES_OK)
            s = esi_atp_error_wrap(s, "%s", did);
    }
    esi_http_response_clear(&resp);
    if (s == ES_OK && strcmp((*out)->did, did) != 0) {
        esi_atp_did_doc_destroy(*out);
        s = es_error(ES_ERR_DECODE, "%s: the document served is for another DID", did);
    }
    return s;
}

/* The cache entry of `did`, fetched when absent or expired. */
static es_status lookup(esi_atp_resolver *r, const char *did, entry **out)
{
    size_t len = strlen(did);
    if (len > ESI_ATP_DID_MAX || !es_atp_valid_did(did, len))
        return es_error(ES_ERR_INVALID, "'%.64s' is not a valid DID", did);
    int64_t now = r->clock(r->clock_ctx);
    entry **p = slot(r, did), *e = *p;
    if (e != NULL && e->expires_ms > now && (!e->stale || fetched_recently(e, now))) {
        r->stats.hits++;
        *out = e;
        return ES_OK;
    }
    if (e != NULL)
        e->fetched_ms = now;
    esi_atp_did_doc *doc = NULL;
    es_status s = resolve_remote(r, did, &doc);
    if (s != ES_OK) {
        r->stats.failures++;
        if (e != NULL && e->stale && (s == ES_ERR_CONNECTION || s == ES_ERR_TIMEOUT)) {
            r->stats.hits++; /* offline: the seeded document stands (tried again in a minute) */
            *out = e;
            return ES_OK;
        }
        if (e != NULL && e->stale) /* the directory answered: the seed is superseded */
            unlink_entry(r, p);
        return s;
    }
    if ((s = cache_put(r, doc, now + r->ttl_ms, now)) != ES_OK)
        return s;
    *out = *slot(r, did);
    return ES_OK;
}

es_status esi_atp_resolver_refresh(esi_atp_resolver *r, const char *did)
{
    if (r == NULL || did == NULL)
        return es_error(ES_ERR_INVALID, "esi_atp_resolver_refresh: NULL argument");
    int64_t now = r->clock(r->clock_ctx);
    entry *cached = *slot(r, did);
    if (cached != NULL && fetched_recently(cached, now))
        return es_error(ES_ERR_LIMIT, "%s: fetched %lld ms ago; not again before %d ms", did,
                        (long long)(now - cached->fetched_ms), MIN_REFRESH_MS);
    if (cached != NULL)
        cached->fetched_ms = now;
    esi_atp_did_doc *doc = NULL;
    es_status s = resolve_remote(r, did, &doc);
    if (s != ES_OK) {
        r->stats.failures++;
        return s;
    }
    return cache_put(r, doc, now + r->ttl_ms, now);
}

es_status esi_atp_resolve(esi_atp_resolver *r, const char *did, esi_atp_did_doc **out)
{
    if (r == NULL || did == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "esi_atp_resolve: NULL argument");
    entry *e;
    es_status s = lookup(r, did, &e);
    return s == ES_OK ? esi_atp_did_doc_copy(e->doc, out) : s;
}

es_status esi_atp_resolve_key(esi_atp_resolver *r, const char *did, const esi_atp_key **key)
{
    if (r == NULL || did == NULL || key == NULL)
        return es_error(ES_ERR_INVALID, "esi_atp_resolve_key: NULL argument");
    *key = NULL;
    entry *e;
    es_status s = lookup(r, did, &e);
    if (s != ES_OK)
        return s;
    if (!e->key_tried) { /* parsed once per cached document, failures too */
        s = esi_atp_did_doc_key(e->doc, &e->key);
        if (s == ES_ERR_NOMEM) /* not the document's fault: try again next time */
            return s;
        e->key_tried = true;
        if (s != ES_OK)
            e->key = NULL;
    }
    if (e->key == NULL)
        return es_error(ES_ERR_NOT_FOUND, "%s: the DID document has no usable #atproto key", did);
    *key = e->key;
    return ES_OK;
}
