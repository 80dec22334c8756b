/* The upcaster registry: a sorted array of (entity type, event type,
 * from-version) → function, searched by bisection on every read. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <es/names.h>
#include <es/upcast.h>

#include "envelope_internal.h"

#define DEFAULT_MAX_CHAIN 16

typedef struct upcaster {
    char *type, *event;
    size_t type_len, event_len;
    uint32_t from;
    es_upcast_fn fn;
    void *ctx;
} upcaster;

struct es_upcasters {
    upcaster *items;
    size_t n, cap;
    unsigned max_chain;
};

es_status es_upcasters_create(unsigned max_chain, es_upcasters **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_upcasters_create: NULL out");
    *out = esi_calloc(1, sizeof **out);
    if (*out == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory creating an upcaster registry");
    (*out)->max_chain = max_chain ? max_chain : DEFAULT_MAX_CHAIN;
    return ES_OK;
}

void es_upcasters_destroy(es_upcasters *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        esi_free(r->items[i].type);
        esi_free(r->items[i].event);
    }
    esi_free(r->items);
    esi_free(r);
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* Order: type, event, from-version. */
static int cmp_key(const upcaster *u, const char *type, size_t type_len, const char *event,
                   size_t event_len, uint32_t from)
{
    int c = cmp_bytes(u->type, u->type_len, type, type_len);
    if (c == 0)
        c = cmp_bytes(u->event, u->event_len, event, event_len);
    if (c == 0)
        c = (u->from > from) - (u->from < from);
    return c;
}

/* Index of the first item not less than the key. */
static size_t lower_bound(const es_upcasters *r, const char *type, size_t type_len,
                          const char *event, size_t event_len, uint32_t from)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_key(&r->items[mid], type, type_len, event, event_len, from) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const upcaster *find(const es_upcasters *r, const char *type, size_t type_len,
                            const char *event, size_t event_len, uint32_t from)
{
    size_t i = lower_bound(r, type, type_len, event, event_len, from);
    if (i < r->n && cmp_key(&r->items[i], type, type_len, event, event_len, from) == 0)
        return &r->items[i];
    return NULL;
}

es_status es_upcasters_add(es_upcasters *r, const char *entity_type, const char *event_type,
                           uint32_t from_version, es_upcast_fn fn, void *ctx)
{
    if (r == NULL || fn == NULL)
        return es_error(ES_ERR_INVALID, "es_upcasters_add: NULL registry or function");
    if (!es_valid_entity_type(entity_type) || !es_valid_name(event_type))
        return es_error(ES_ERR_INVALID,
                        "upcaster for '%.64s'/'%.64s': entity types are "
                        "[A-Za-z0-9_-]{1,317}, event types [A-Za-z0-9_-]{1,128}",
                        entity_type ? entity_type : "(null)", event_type ? event_type : "(null)");
    if (from_version == 0 || from_version == UINT32_MAX)
        return es_error(ES_ERR_INVALID, "upcaster from version %u: versions are 1..%u",
                        (unsigned)from_version, UINT32_MAX - 1);
    size_t tl = strlen(entity_type), el = strlen(event_type);
    size_t at = lower_bound(r, entity_type, tl, event_type, el, from_version);
    if (at < r->n && cmp_key(&r->items[at], entity_type, tl, event_type, el, from_version) == 0)
        return es_error(ES_ERR_EXISTS, "an upcaster for %s/%s from version %u exists", entity_type,
                        event_type, (unsigned)from_version);
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        upcaster *items = esi_realloc(r->items, cap * sizeof *items);
        if (items == NULL)
            return es_error(ES_ERR_NOMEM, "out of memory adding an upcaster");
        r->items = items;
        r->cap = cap;
    }
    upcaster u = {esi_strdup(entity_type), esi_strdup(event_type), tl, el, from_version, fn, ctx};
    if (u.type == NULL || u.event == NULL) {
        esi_free(u.type);
        esi_free(u.event);
        return es_error(ES_ERR_NOMEM, "out of memory adding an upcaster");
    }
    memmove(&r->items[at + 1], &r->items[at], (r->n - at) * sizeof *r->items);
    r->items[at] = u;
    r->n++;
    return ES_OK;
}

es_buf *esi_next_buf(es_buf bufs[2], const uint8_t *cur)
{
    es_buf *b = (bufs[0].data != NULL && cur == bufs[0].data) ? &bufs[1] : &bufs[0];
    es_buf_clear(b);
    return b;
}

es_status esi_upcast_run(const es_upcasters *r, const char *type, size_t type_len, const char *event,
                        size_t event_len, uint32_t *version, const uint8_t **data, size_t *len,
                        es_buf bufs[2], size_t max_len)
{
    if (r == NULL || r->n == 0)
        return ES_OK;
    for (unsigned step = 0;; step++) {
        const upcaster *u = find(r, type, type_len, event, event_len, *version);
        if (u == NULL)
            return ES_OK;
        if (step == r->max_chain)
            return es_error(ES_ERR_LIMIT, "upcasting %.*s/%.*s needs more than %u steps",
                            (int)type_len, type, (int)event_len, event, r->max_chain);
        es_buf *out = esi_next_buf(bufs, *data);
        es_status s = u->fn(u->ctx, *data, *len, out);
        if (s != ES_OK)
            return es_error(s, "upcaster %.*s/%.*s from version %u failed: %s", (int)type_len, type,
                            (int)event_len, event, (unsigned)*version, es_status_text(s));
        if (out->len > max_len)
            return es_error(
                ES_ERR_LIMIT, "upcaster %.*s/%.*s from version %u made %zu bytes (max %zu)",
                (int)type_len, type, (int)event_len, event, (unsigned)*version, out->len, max_len);
        *data = out->data;
        *len = out->len;
        ++*version;
    }
}

es_status es_upcast(const es_upcasters *r, const char *entity_type, const char *event_type,
                    uint32_t *version, const uint8_t *in, size_t len, size_t max_len, es_buf *out)
{
    if (r == NULL || entity_type == NULL || event_type == NULL || version == NULL || out == NULL ||
        (in == NULL && len > 0))
        return es_error(ES_ERR_INVALID, "es_upcast: NULL argument");
    es_buf bufs[2] = {ES_BUF_INIT, ES_BUF_INIT};
    const uint8_t *data = in;
    es_status s = esi_upcast_run(r, entity_type, strlen(entity_type), event_type, strlen(event_type),
                                version, &data, &len, bufs, max_len);
    if (s == ES_OK) {
        es_buf_clear(out);
        s = es_buf_append(out, data, len);
    }
    es_buf_free(&bufs[0]);
    es_buf_free(&bufs[1]);
    return s;
}
