/* DID resolution: did:plc through a PLC directory, did:web through the
 * host's /.well-known/did.json, both with libcurl, and an in-memory cache
 * with a TTL. A resolver is shared by threads: one mutex guards the cache,
 * and the network is reached outside it, once per DID however many threads
 * ask for it at the same time (a "flight" the others wait for). The HTTP
 * GET itself is http.c's. */
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
/* How long a failed resolution is remembered (identity.h says why 60 s). */
#define DEFAULT_NEGATIVE_TTL_MS 60000
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
/* The reason a resolution failed, kept for the threads that waited for it. */
#define WHY_MAX 256

typedef struct entry {
    struct entry *next;
    const char *did;     /* doc->did, or the failure's own copy */
    esi_atp_did_doc *doc; /* NULL: a failed resolution, remembered until expires_ms */
    es_status failure;    /* what it failed with (doc NULL), and why: */
    char *why;
    int64_t expires_ms; /* NEVER for a seeded document */
    int64_t fetched_ms; /* the last fetch of it (attempted), INT64_MIN: never (seeded) */
    /* A seeded document invalidated (#identity): fetched again on next use,
     * but kept while the network cannot be reached (an offline source). */
    bool stale;
    /* The document's signing key: parsed when a fetched document lands
     * (outside the lock), or on first use of a seeded one (esi_atp_resolve_key):
     * parsing a compressed point costs about as much as a verification.
     * Callers get references (esi_atp_key_ref): eviction only drops the cache's. */
    esi_atp_key *key;
    bool key_tried;
} entry;

/* One resolution in progress (on the fetching thread's stack): threads
 * asking for the same DID meanwhile wait for it instead of fetching again. */
typedef struct flight {
    struct flight *next;
    const char *did;
    bool done;
    bool dropped; /* invalidated while in flight: what it fetched may predate the change */
    es_status status;
    char why[WHY_MAX];
    unsigned waiters;
} flight;

struct esi_atp_resolver {
    char *plc_url;
    int64_t timeout_ms, ttl_ms, negative_ttl_ms;
    size_t max_entries, count, nbuckets;
    int allow_insecure;
    int offline;
    esi_atp_clock_fn clock;
    void *clock_ctx;
    esi_atp_doc_store store; /* load NULL: none */
    /* `lock` guards everything below; `landed` is signalled when a flight
     * ends and when its last waiter has read its result. */
    pthread_mutex_t lock;
    pthread_cond_t landed;
    entry **buckets;
    flight *flights;
    esi_atp_resolver_stats stats;
};

/* What a caller wants from a resolution: a copy of the document, a
 * reference to its key, or both (NULL: not wanted). */
typedef struct answer {
    esi_atp_did_doc **doc;
    esi_atp_key **key;
} answer;

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
    o->negative_ttl_ms = DEFAULT_NEGATIVE_TTL_MS;
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
        o->timeout_ms <= 0 || o->ttl_ms <= 0 || o->ttl_ms > TTL_MAX_MS ||
        o->negative_ttl_ms < 0 || o->negative_ttl_ms > TTL_MAX_MS || o->max_entries == 0)
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
    r->negative_ttl_ms = o->negative_ttl_ms;
    r->max_entries = o->max_entries;
    r->allow_insecure = o->allow_insecure;
    r->offline = o->offline;
    r->clock = o->clock != NULL ? o->clock : monotonic_clock;
    r->clock_ctx = o->clock_ctx;
    r->nbuckets = o->max_entries < 4096 ? 256 : 16384;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->landed, NULL);
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

void esi_atp_resolver_set_store(esi_atp_resolver *r, const esi_atp_doc_store *store)
{
    pthread_mutex_lock(&r->lock); /* for form: the contract is "before use" */
    if (!r->offline)
        r->store = *store;
    pthread_mutex_unlock(&r->lock);
}

static void free_entry(entry *e)
{
    if (e->doc == NULL)
        es_free((char *)e->did);
    es_free(e->why);
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
    pthread_cond_destroy(&r->landed);
    pthread_mutex_destroy(&r->lock);
    es_free(r->buckets);
    es_free(r->plc_url);
    es_free(r);
}

/* ---- the cache (callers hold r->lock) ------------------------------------------ */

static entry **slot(const esi_atp_resolver *r, const char *did)
{
    uint64_t h = esi_atp_hash(did, strlen(did));
    entry **p = &r->buckets[h % r->nbuckets];
    while (*p != NULL && strcmp((*p)->did, did) != 0)
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

/* Files `doc` and its parsed `key` (both taken; key NULL with key_tried
 * false: not parsed yet) under its DID, replacing what was there. */
static es_status cache_put(esi_atp_resolver *r, esi_atp_did_doc *doc, esi_atp_key *key,
                           bool key_tried, int64_t expires_ms, int64_t fetched_ms)
{
    entry **p = slot(r, doc->did);
    if (*p != NULL)
        unlink_entry(r, p);
    make_room(r, r->clock(r->clock_ctx));
    entry *e = es_calloc(1, sizeof *e);
    if (e == NULL) {
        esi_atp_key_destroy(key);
        esi_atp_did_doc_destroy(doc);
        return es_error(ES_ERR_NOMEM, "resolver: out of memory");
    }
    e->doc = doc;
    e->did = doc->did;
    e->key = key;
    e->key_tried = key_tried;
    e->expires_ms = expires_ms;
    e->fetched_ms = fetched_ms;
    p = slot(r, doc->did); /* make_room may have emptied the chain */
    *p = e;
    r->count++;
    return ES_OK;
}

/* Remembers that `did` failed to resolve with `s` (its reason from
 * es_last_error()) for negative_ttl_ms, replacing what was cached: a stream
 * of commits from a DID that does not resolve costs one request per period,
 * not one per frame. Only answers of the network are remembered: not a
 * DID that never resolves (ES_ERR_INVALID, refused without a request), not
 * memory running out, not an offline resolver (no request to save). */
static void remember_failure(esi_atp_resolver *r, const char *did, es_status s, int64_t now)
{
    if (s == ES_ERR_INVALID || s == ES_ERR_NOMEM || r->offline || r->negative_ttl_ms == 0)
        return;
    entry **p = slot(r, did);
    if (*p != NULL)
        unlink_entry(r, p);
    make_room(r, now);
    entry *e = es_calloc(1, sizeof *e);
    char *copy = esi_atp_strdup(did), *why = esi_atp_strdup(es_last_error());
    if (e == NULL || copy == NULL || why == NULL) { /* not remembered: fetched again next time */
        es_free(e);
        es_free(copy);
        es_free(why);
        return;
    }
    *e = (entry){.did = copy, .failure = s, .why = why, .fetched_ms = now,
                 .expires_ms = now + r->negative_ttl_ms};
    p = slot(r, did);
    *p = e;
    r->count++;
}

/* Parses the signing key of `doc` into *key. Whether it was tried: false
 * only when memory ran out (not the document's fault: tried again later). */
static bool parse_key(const esi_atp_did_doc *doc, esi_atp_key **key)
{
    *key = NULL;
    es_status s = esi_atp_did_doc_key(doc, key);
    if (s != ES_OK)
        *key = NULL;
    return s != ES_ERR_NOMEM;
}

/* Hands `e`'s document and/or key to the caller as `a` asks (a remembered
 * failure: that failure again). */
static es_status answer_from(entry *e, const answer *a)
{
    if (e->doc == NULL)
        return es_error(e->failure, "%s (a failure remembered for a while: not asked again yet)",
                        e->why);
    if (a->key != NULL) {
        *a->key = NULL;
        if (!e->key_tried) /* a seeded document, first use: parsed once, under the lock */
            e->key_tried = parse_key(e->doc, &e->key);
        if (!e->key_tried)
            return es_error(ES_ERR_NOMEM, "%s: parsing the key: out of memory", e->doc->did);
        if (e->key == NULL)
            return es_error(ES_ERR_NOT_FOUND, "%s: the DID document has no usable #atproto key",
                            e->doc->did);
    }
    if (a->doc != NULL) {
        es_status s = esi_atp_did_doc_copy(e->doc, a->doc);
        if (s != ES_OK)
            return s;
    }
    if (a->key != NULL)
        *a->key = esi_atp_key_ref(e->key);
    return ES_OK;
}

es_status esi_atp_resolver_seed(esi_atp_resolver *r, esi_atp_did_doc *doc)
{
    if (r == NULL || doc == NULL) {
        esi_atp_did_doc_destroy(doc);
        return es_error(ES_ERR_INVALID, "esi_atp_resolver_seed: NULL argument");
    }
    pthread_mutex_lock(&r->lock);
    es_status s = cache_put(r, doc, NULL, false, NEVER, INT64_MIN);
    pthread_mutex_unlock(&r->lock);
    return s;
}

static flight *find_flight(const esi_atp_resolver *r, const char *did)
{
    flight *f = r->flights;
    while (f != NULL && strcmp(f->did, did) != 0)
        f = f->next;
    return f;
}

/* Whether `e` was fetched (or tried) less than MIN_REFRESH_MS ago. */
static bool fetched_recently(const entry *e, int64_t now)
{
    return e->fetched_ms != INT64_MIN && now - e->fetched_ms < MIN_REFRESH_MS;
}

void esi_atp_resolver_stats_get(const esi_atp_resolver *r, esi_atp_resolver_stats *out)
{
    esi_atp_resolver *w = (esi_atp_resolver *)r; /* the lock, not the cache, changes */
    pthread_mutex_lock(&w->lock);
    *out = r->stats;
    out->cached = r->count;
    pthread_mutex_unlock(&w->lock);
}

/* ---- flights (callers hold r->lock) -------------------------------------------- */

/* Registers the calling thread as the one fetching `did`. */
static void take_off(esi_atp_resolver *r, flight *f, const char *did)
{
    memset(f, 0, sizeof *f);
    f->did = did;
    f->next = r->flights;
    r->flights = f;
}

/* Ends `f` with `s` (its reason from es_last_error() when not ES_OK) and
 * returns once every waiter has read the result: `f` lives on our stack. */
static es_status land(esi_atp_resolver *r, flight *f, es_status s)
{
    flight **p = &r->flights;
    while (*p != f)
        p = &(*p)->next;
    *p = f->next;
    f->done = true;
    f->status = s;
    if (s != ES_OK)
        snprintf(f->why, sizeof f->why, "%s", es_last_error());
    pthread_cond_broadcast(&r->landed);
    while (f->waiters > 0)
        pthread_cond_wait(&r->landed, &r->lock);
    return s;
}

/* Waits for another thread's flight; its status, with its reason. */
static es_status wait_for(esi_atp_resolver *r, flight *f)
{
    f->waiters++;
    while (!f->done)
        pthread_cond_wait(&r->landed, &r->lock);
    es_status s = f->status;
    char why[WHY_MAX];
    memcpy(why, f->why, sizeof why);
    if (--f->waiters == 0)
        pthread_cond_broadcast(&r->landed);
    return s == ES_OK ? ES_OK : es_error(s, "%s", why);
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

/* Fetches, parses and checks `did`'s document (no lock held), and keeps it
 * in the store; *store_failed tells whether that failed. */
static es_status resolve_remote(esi_atp_resolver *r, const char *did, esi_atp_did_doc **out,
                                bool *store_failed)
{
    if (r->offline)
        return es_error(ES_ERR_CONNECTION, "%s: offline, and no document was seeded for it", did);
    *store_failed = false;
    esi_http_response resp = {.body = NULL};
    es_status s = fetch(r, did, &resp);
    if (s == ES_OK) {
        s = esi_atp_did_doc_parse(resp.body != NULL ? resp.body : "", resp.len, out);
        if (s != ES_OK)
            s = esi_atp_error_wrap(s, "%s", did);
    }
    if (s == ES_OK && strcmp((*out)->did, did) != 0) {
        esi_atp_did_doc_destroy(*out);
        s = es_error(ES_ERR_DECODE, "%s: the document served is for another DID", did);
    }
    if (s == ES_OK && r->store.save != NULL)
        *store_failed = r->store.save(r->store.ctx, did, resp.body, resp.len) != ES_OK;
    esi_http_response_clear(&resp);
    return s;
}

/* The document the store keeps for `did`, when fetched less than the TTL
 * ago (no lock held): ES_OK with *doc and *age_ms, else ES_ERR_NOT_FOUND;
 * *failed tells whether the store failed (the network answers instead). */
static es_status from_store(esi_atp_resolver *r, const char *did, esi_atp_did_doc **doc,
                            int64_t *age_ms, bool *failed)
{
    es_status s = r->store.load(r->store.ctx, did, doc, age_ms);
    *failed = s != ES_OK && s != ES_ERR_NOT_FOUND;
    if (s == ES_OK && (*age_ms < 0 || *age_ms >= r->ttl_ms)) { /* expired (or from the future) */
        esi_atp_did_doc_destroy(*doc);
        *doc = NULL;
        s = ES_ERR_NOT_FOUND;
    }
    return s == ES_OK ? ES_OK : ES_ERR_NOT_FOUND;
}

/* The store keeps nothing for `did` (an invalidation): called without the
 * lock, from the thread whose flight holds the DID. */
static void forget_unlocked(esi_atp_resolver *r, const char *did, bool *failed)
{
    *failed = r->store.forget != NULL && r->store.forget(r->store.ctx, did) != ES_OK;
}

/* The flight of `did` (registered by the caller, who holds the lock): the
 * store (`try_store`), else the network, without the lock, the key parsed
 * there too; then files the document (unless invalidated meanwhile: then it
 * is dropped from the store too) and answers `a` from it. */
static es_status fly(esi_atp_resolver *r, flight *f, const char *did, int64_t now,
                     bool try_store, const answer *a, bool *fetched)
{
    pthread_mutex_unlock(&r->lock);
    esi_atp_did_doc *doc = NULL;
    esi_atp_key *key = NULL;
    bool key_tried = false, load_failed = false, save_failed = false, forget_failed = false;
    int64_t age_ms = 0;
    bool stored = try_store && r->store.load != NULL &&
                  from_store(r, did, &doc, &age_ms, &load_failed) == ES_OK;
    es_status s = stored ? ES_OK : resolve_remote(r, did, &doc, &save_failed);
    if (s == ES_OK)
        key_tried = parse_key(doc, &key);
    pthread_mutex_lock(&r->lock);
    if (stored)
        r->stats.store_hits++;
    else if (!r->offline)
        r->stats.fetches++;
    if (f->dropped && s == ES_OK && r->store.forget != NULL) {
        pthread_mutex_unlock(&r->lock); /* what it brought back may predate the #identity */
        forget_unlocked(r, did, &forget_failed);
        pthread_mutex_lock(&r->lock);
    }
    r->stats.store_errors += (uint64_t)load_failed + save_failed + forget_failed;
    *fetched = s == ES_OK;
    if (s != ES_OK)
        return s;
    if (f->dropped) { /* answered from what was fetched, but not kept */
        entry tmp = {.doc = doc, .key = key, .key_tried = key_tried};
        s = answer_from(&tmp, a);
        esi_atp_key_destroy(key);
        esi_atp_did_doc_destroy(doc);
        return s;
    }
    /* From the store: trusted for what is left of its TTL, and not counted
     * as a fetch by the once-a-minute refresh rule (a key rotated while the
     * ingester was down is learned at the first signature failure). */
    s = stored ? cache_put(r, doc, key, key_tried, now + r->ttl_ms - age_ms, INT64_MIN)
               : cache_put(r, doc, key, key_tried, now + r->ttl_ms, now);
    return s == ES_OK ? answer_from(*slot(r, did), a) : s;
}

/* Whether `e` answers a lookup at `now` without a fetch. */
static bool usable(const entry *e, int64_t now)
{
    return e != NULL && e->expires_ms > now && (!e->stale || fetched_recently(e, now));
}

/* `did` resolved (from the cache while its TTL runs, else fetched once for
 * all the threads asking) into `a`. */
static es_status lookup(esi_atp_resolver *r, const char *did, const answer *a)
{
    size_t len = strlen(did);
    if (len > ESI_ATP_DID_MAX || !es_atp_valid_did(did, len))
        return es_error(ES_ERR_INVALID, "'%.64s' is not a valid DID", did);
    pthread_mutex_lock(&r->lock);
    es_status s;
    flight *other;
    entry *e;
    int64_t now;
    for (;;) { /* ends: each wait is for a flight that ends; a document that
                  landed is found on the next turn unless dropped again */
        now = r->clock(r->clock_ctx);
        e = *slot(r, did);
        if (usable(e, now)) {
            if (e->doc != NULL) {
                r->stats.hits++;
            } else {
                r->stats.negative_hits++;
                r->stats.failures++;
            }
            s = answer_from(e, a);
            pthread_mutex_unlock(&r->lock);
            return s;
        }
        if ((other = find_flight(r, did)) == NULL)
            break;
        if ((s = wait_for(r, other)) != ES_OK) { /* its failure, shared: no request of ours */
            r->stats.negative_hits++;
            r->stats.failures++;
            pthread_mutex_unlock(&r->lock);
            return s;
        }
    }
    if (e != NULL)
        e->fetched_ms = now;
    flight f;
    take_off(r, &f, did);
    bool fetched;
    s = fly(r, &f, did, now, true, a, &fetched);
    if (!fetched) {
        r->stats.failures++;
        entry **p = slot(r, did);
        if (*p != NULL && (*p)->stale && (s == ES_ERR_CONNECTION || s == ES_ERR_TIMEOUT)) {
            r->stats.hits++; /* offline: the seeded document stands (tried again in a minute) */
            (*p)->fetched_ms = now;
            s = answer_from(*p, a);
        } else if (!f.dropped && s != ES_ERR_NOMEM) {
            if (*p != NULL && (*p)->stale) /* the directory answered: the seed is superseded */
                unlink_entry(r, p);
            remember_failure(r, did, s, now);
        }
    }
    s = land(r, &f, s);
    pthread_mutex_unlock(&r->lock);
    return s;
}

void esi_atp_resolver_invalidate(esi_atp_resolver *r, const char *did)
{
    if (r == NULL || did == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    entry **p = slot(r, did);
    if (*p != NULL && (*p)->expires_ms != NEVER) {
        unlink_entry(r, p);
    } else if (*p != NULL) {
        (*p)->stale = true; /* seeded: fetched on next use, kept while offline */
        (*p)->fetched_ms = INT64_MIN;
    }
    flight *f = find_flight(r, did);
    if (f != NULL) {
        /* what it brings back may be the document the #identity replaced: it
         * is not cached, and its flier clears the store after it */
        f->dropped = true;
    } else if (r->store.forget != NULL) {
        /* the store is cleared as a flight of its own: lookups of the DID
         * meanwhile wait for it rather than read what is being deleted */
        flight mine;
        take_off(r, &mine, did);
        bool failed;
        pthread_mutex_unlock(&r->lock);
        forget_unlocked(r, did, &failed);
        pthread_mutex_lock(&r->lock);
        r->stats.store_errors += failed;
        land(r, &mine, ES_OK);
    }
    pthread_mutex_unlock(&r->lock);
}

es_status esi_atp_resolver_refresh(esi_atp_resolver *r, const char *did, const esi_atp_key *failed)
{
    if (r == NULL || did == NULL)
        return es_error(ES_ERR_INVALID, "esi_atp_resolver_refresh: NULL argument");
    pthread_mutex_lock(&r->lock);
    es_status s;
    int64_t now = r->clock(r->clock_ctx);
    entry *cached = *slot(r, did);
    flight *other = find_flight(r, did);
    if (r->offline && cached != NULL) { /* nothing newer can be learned */
        s = es_error(ES_ERR_CONNECTION, "%s: offline: the seeded document is the only one", did);
    } else if (other != NULL) { /* someone is fetching it right now: that is the refresh */
        s = wait_for(r, other);
    } else if (failed != NULL && (cached == NULL || !cached->key_tried || cached->key != failed)) {
        s = ES_OK; /* refreshed or dropped since `failed` was handed out: use what is there now */
    } else if (cached != NULL && fetched_recently(cached, now)) {
        s = es_error(ES_ERR_LIMIT, "%s: fetched %lld ms ago; not again before %d ms", did,
                     (long long)(now - cached->fetched_ms), MIN_REFRESH_MS);
    } else {
        if (cached != NULL)
            cached->fetched_ms = now;
        flight f;
        take_off(r, &f, did);
        bool fetched;
        s = fly(r, &f, did, now, false, &(answer){NULL, NULL}, &fetched);
        if (!fetched) /* the cached document, if any, stays */
            r->stats.failures++;
        s = land(r, &f, s);
    }
    pthread_mutex_unlock(&r->lock);
    return s;
}

es_status esi_atp_resolve(esi_atp_resolver *r, const char *did, esi_atp_did_doc **out)
{
    if (r == NULL || did == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "esi_atp_resolve: NULL argument");
    return lookup(r, did, &(answer){out, NULL});
}

es_status esi_atp_resolve_key(esi_atp_resolver *r, const char *did, esi_atp_key **key)
{
    if (r == NULL || did == NULL || key == NULL)
        return es_error(ES_ERR_INVALID, "esi_atp_resolve_key: NULL argument");
    *key = NULL;
    return lookup(r, did, &(answer){NULL, key});
}
