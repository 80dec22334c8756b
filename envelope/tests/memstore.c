/* In-memory keyring backend, dictionary source and events: see memstore.h. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/internal.h"
#include "memstore.h"

#define REC_CAP      (2 * ES_KEYRING_RECORD_MAX)
#define MAX_VERSIONS 8
#define MAX_RECORDS  256
#define MAX_DICTS    8

/* ---- keyring backend ----------------------------------------------------- */

typedef struct version {
    uint8_t bytes[REC_CAP];
    size_t len;
} version;

typedef struct record {
    char name[ES_KEYRING_KV_KEY_MAX];
    version v[MAX_VERSIONS];
    size_t n;
} record;

struct mem_keys {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t gate_open;
    int refs;
    record recs[MAX_RECORDS];
    size_t n;
    mem_keys_stats stats;
    es_status fail[MEM_OPS];
    unsigned fail_times[MEM_OPS];
    unsigned gate_size, gate_waiting; /* creates still to gather, gathered */
};

mem_keys *mem_keys_create(void)
{
    mem_keys *m = calloc(1, sizeof *m);
    assert_non_null(m);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->gate_open, NULL);
    m->refs = 1;
    return m;
}

void mem_keys_release(mem_keys *m)
{
    pthread_mutex_lock(&m->lock);
    int left = --m->refs;
    pthread_mutex_unlock(&m->lock);
    if (left > 0)
        return;
    pthread_cond_destroy(&m->gate_open);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int mem_keys_refs(mem_keys *m)
{
    pthread_mutex_lock(&m->lock);
    int refs = m->refs;
    pthread_mutex_unlock(&m->lock);
    return refs;
}

/* Called with the lock held. */
static record *find(mem_keys *m, const char *name, bool add)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->recs[i].name, name) == 0)
            return &m->recs[i];
    if (!add)
        return NULL;
    assert_true(m->n < MAX_RECORDS);
    record *r = &m->recs[m->n++];
    memset(r, 0, sizeof *r);
    strcpy(r->name, name);
    return r;
}

/* Called with the lock held: counts the call and consumes an injected
 * failure, if any. */
static es_status enter(mem_keys *m, mem_op op)
{
    m->stats.calls[op]++;
    if (m->fail_times[op] == 0)
        return ES_OK;
    m->fail_times[op]--;
    return es_error(m->fail[op], "memstore: injected failure");
}

static void append_version(record *r, const uint8_t *rec, size_t len)
{
    assert_true(r->n < MAX_VERSIONS && len <= REC_CAP);
    memcpy(r->v[r->n].bytes, rec, len);
    r->v[r->n].len = len;
    r->n++;
}

static es_status keys_get(void *ctx, const char *name, uint8_t *rec, size_t cap, size_t *len)
{
    mem_keys *m = ctx;
    pthread_mutex_lock(&m->lock);
    es_status s = enter(m, MEM_GET);
    record *r = s == ES_OK ? find(m, name, false) : NULL;
    if (s == ES_OK && (r == NULL || r->n == 0))
        s = es_error(ES_ERR_NOT_FOUND, "memstore: no record %s", name);
    if (s == ES_OK) {
        const version *v = &r->v[r->n - 1];
        memcpy(rec, v->bytes, v->len < cap ? v->len : cap);
        *len = v->len;
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* Called with the lock held: a gated create waits until all of its gate
 * have arrived, so that they run only after every racer found no key. */
static void pass_gate(mem_keys *m)
{
    if (m->gate_size == 0)
        return;
    if (++m->gate_waiting == m->gate_size) {
        m->gate_size = m->gate_waiting = 0;
        pthread_cond_broadcast(&m->gate_open);
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (m->gate_size != 0)
        if (pthread_cond_timedwait(&m->gate_open, &m->lock, &until) == ETIMEDOUT)
            break; /* a racer never came: let the test fail on its counts */
}

static es_status keys_create(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    mem_keys *m = ctx;
    pthread_mutex_lock(&m->lock);
    pass_gate(m);
    es_status s = enter(m, MEM_CREATE);
    record *r = s == ES_OK ? find(m, name, true) : NULL;
    if (s == ES_OK && r->n > 0) {
        m->stats.creates_refused++;
        s = es_error(ES_ERR_EXISTS, "memstore: record %s exists", name);
    }
    if (s == ES_OK)
        append_version(r, rec, len);
    pthread_mutex_unlock(&m->lock);
    return s;
}

static es_status keys_replace(void *ctx, const char *name, const uint8_t *rec, size_t len)
{
    mem_keys *m = ctx;
    pthread_mutex_lock(&m->lock);
    es_status s = enter(m, MEM_REPLACE);
    if (s == ES_OK) {
        record *r = find(m, name, true);
        memset(r->v, 0, sizeof r->v); /* no trace of earlier versions */
        r->n = 0;
        append_version(r, rec, len);
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* Each record's latest version, in the order the records were made; the
 * callback runs without the lock (on a copy). */
static es_status keys_scan(void *ctx, size_t max,
                           es_status (*each)(const char *name, const uint8_t *rec, size_t len,
                                             void *closure),
                           void *closure)
{
    mem_keys *m = ctx;
    pthread_mutex_lock(&m->lock);
    es_status s = enter(m, MEM_SCAN);
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; s == ES_OK && i < max; i++) {
        record copy;
        pthread_mutex_lock(&m->lock);
        bool more = i < m->n;
        if (more)
            copy = m->recs[i];
        pthread_mutex_unlock(&m->lock);
        if (!more)
            break;
        if (copy.n > 0)
            s = each(copy.name, copy.v[copy.n - 1].bytes, copy.v[copy.n - 1].len, closure);
    }
    return s;
}

static void keys_destroy(void *ctx)
{
    mem_keys_release(ctx);
}

es_keyring_backend mem_keys_backend(mem_keys *m)
{
    pthread_mutex_lock(&m->lock);
    m->refs++;
    pthread_mutex_unlock(&m->lock);
    return (es_keyring_backend){.ctx = m,
                                .get = keys_get,
                                .create = keys_create,
                                .replace = keys_replace,
                                .destroy = keys_destroy,
                                .scan = keys_scan};
}

size_t mem_keys_versions(mem_keys *m, const char *entity)
{
    char name[ES_KEYRING_KV_KEY_MAX];
    es_keyring_kv_key(entity, strlen(entity), name);
    return mem_keys_named_versions(m, name);
}

bool mem_keys_version(mem_keys *m, const char *entity, size_t i, uint8_t *rec, size_t cap,
                      size_t *len)
{
    char name[ES_KEYRING_KV_KEY_MAX];
    es_keyring_kv_key(entity, strlen(entity), name);
    pthread_mutex_lock(&m->lock);
    record *r = find(m, name, false);
    bool found = r != NULL && i < r->n;
    if (found) {
        *len = r->v[i].len;
        memcpy(rec, r->v[i].bytes, *len < cap ? *len : cap);
    }
    pthread_mutex_unlock(&m->lock);
    return found;
}

static bool version_holds(const version *v, const uint8_t *bytes, size_t len)
{
    for (size_t at = 0; at + len <= v->len; at++)
        if (memcmp(v->bytes + at, bytes, len) == 0)
            return true;
    return false;
}

bool mem_keys_holds(mem_keys *m, const uint8_t *bytes, size_t len)
{
    bool held = false;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n && !held; i++)
        for (size_t k = 0; k < m->recs[i].n && !held; k++)
            held = version_holds(&m->recs[i].v[k], bytes, len);
    pthread_mutex_unlock(&m->lock);
    return held;
}

size_t mem_keys_named_versions(mem_keys *m, const char *name)
{
    pthread_mutex_lock(&m->lock);
    record *r = find(m, name, false);
    size_t n = r ? r->n : 0;
    pthread_mutex_unlock(&m->lock);
    return n;
}

size_t mem_keys_total(mem_keys *m)
{
    size_t n = 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n; i++)
        n += m->recs[i].n;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void mem_keys_put_named(mem_keys *m, const char *name, const uint8_t *rec, size_t len)
{
    pthread_mutex_lock(&m->lock);
    append_version(find(m, name, true), rec, len);
    pthread_mutex_unlock(&m->lock);
}

void mem_keys_put(mem_keys *m, const char *entity, const uint8_t *rec, size_t len)
{
    char name[ES_KEYRING_KV_KEY_MAX];
    es_keyring_kv_key(entity, strlen(entity), name);
    mem_keys_put_named(m, name, rec, len);
}

void mem_keys_stats_get(mem_keys *m, mem_keys_stats *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->stats;
    pthread_mutex_unlock(&m->lock);
}

void mem_keys_fail(mem_keys *m, mem_op op, es_status s, unsigned times)
{
    pthread_mutex_lock(&m->lock);
    m->fail[op] = s;
    m->fail_times[op] = times;
    pthread_mutex_unlock(&m->lock);
}

void mem_keys_gate_creates(mem_keys *m, unsigned n)
{
    pthread_mutex_lock(&m->lock);
    m->gate_size = n;
    m->gate_waiting = 0;
    pthread_mutex_unlock(&m->lock);
}

/* ---- dictionary source --------------------------------------------------- */

typedef struct mem_dict {
    uint32_t id;
    es_buf bytes;
} mem_dict;

struct mem_dicts {
    pthread_mutex_t lock;
    mem_dict dicts[MAX_DICTS];
    size_t n;
    unsigned gets;
    es_status fail;
};

mem_dicts *mem_dicts_create(void)
{
    mem_dicts *d = calloc(1, sizeof *d);
    assert_non_null(d);
    pthread_mutex_init(&d->lock, NULL);
    return d;
}

void mem_dicts_free(mem_dicts *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        es_buf_free(&d->dicts[i].bytes);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* Called with the lock held. */
static mem_dict *dict_find(mem_dicts *d, uint32_t id)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->dicts[i].id == id)
            return &d->dicts[i];
    return NULL;
}

static es_status dicts_get(void *ctx, uint32_t id, es_buf *out)
{
    mem_dicts *d = ctx;
    pthread_mutex_lock(&d->lock);
    d->gets++;
    es_status s = d->fail;
    const mem_dict *e = s == ES_OK ? dict_find(d, id) : NULL;
    if (s != ES_OK)
        s = es_error(s, "memstore: injected failure");
    else if (e == NULL)
        s = es_error(ES_ERR_NOT_FOUND, "memstore: no dictionary %u", (unsigned)id);
    else
        s = es_buf_append(out, e->bytes.data, e->bytes.len);
    pthread_mutex_unlock(&d->lock);
    return s;
}

es_dict_source mem_dicts_source(mem_dicts *d)
{
    return (es_dict_source){.ctx = d, .get = dicts_get};
}

void mem_dicts_put(mem_dicts *d, uint32_t id, const uint8_t *bytes, size_t len)
{
    pthread_mutex_lock(&d->lock);
    mem_dict *e = dict_find(d, id);
    if (e == NULL) {
        assert_true(d->n < MAX_DICTS);
        e = &d->dicts[d->n++];
        *e = (mem_dict){.id = id, .bytes = ES_BUF_INIT};
    }
    es_buf_clear(&e->bytes);
    assert_int_equal(es_buf_append(&e->bytes, bytes, len), ES_OK);
    pthread_mutex_unlock(&d->lock);
}

unsigned mem_dicts_gets(mem_dicts *d)
{
    pthread_mutex_lock(&d->lock);
    unsigned n = d->gets;
    pthread_mutex_unlock(&d->lock);
    return n;
}

void mem_dicts_fail(mem_dicts *d, es_status s)
{
    pthread_mutex_lock(&d->lock);
    d->fail = s;
    pthread_mutex_unlock(&d->lock);
}

/* ---- events -------------------------------------------------------------- */

/* The start of the token that ends just before `end` (a '.' or the NUL). */
static const char *token_before(const char *subject, const char *end)
{
    const char *p = end;
    while (p > subject && p[-1] != '.')
        p--;
    return p;
}

es_envelope_event mem_event(const char *subject)
{
    const char *end = subject + strlen(subject);
    const char *event = token_before(subject, end);
    const char *id = event > subject ? token_before(subject, event - 1) : subject;
    const char *type = id > subject ? token_before(subject, id - 1) : subject;
    /* Every token non-empty, and something before the type. */
    if (event == end || id + 1 >= event || type + 1 >= id || type < subject + 2)
        fail_msg("'%s' is not an event subject", subject);
    return (es_envelope_event){.subject = subject,
                               .entity = subject,
                               .entity_len = (size_t)(event - 1 - subject),
                               .entity_type = type,
                               .entity_type_len = (size_t)(id - 1 - type),
                               .event_type = event,
                               .event_type_len = (size_t)(end - event)};
}
