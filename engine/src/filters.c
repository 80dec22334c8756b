/* Filters: es_filter to subject filter, and lists of them to the set one
 * consumer is given. */
#include "filters.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "store_impl.h"

void es_filter_init(es_filter *f)
{
    memset(f, 0, sizeof *f);
}

static es_status check_filter_name(const char *what, const char *v, bool (*valid)(const char *))
{
    if (v != NULL && !valid(v))
        return es_error(ES_ERR_INVALID, "filter: invalid %s '%.64s'", what, v);
    return ES_OK;
}

static es_status check_filter(const es_store *st, const es_filter *f)
{
    if (f->tenant != NULL && !st->config.tenancy)
        return es_error(ES_ERR_INVALID, "filter: store '%s' has no tenancy", st->name);
    es_status s = check_filter_name("tenant", f->tenant, es_valid_name);
    if (s == ES_OK)
        s = check_filter_name("entity type", f->entity_type, es_valid_entity_type);
    if (s == ES_OK)
        s = check_filter_name("event type", f->event_type, es_valid_name);
    return s;
}

es_status es_filter_subject(const es_store *st, const es_filter *f, char *out, size_t out_size)
{
    es_filter any;
    if (f == NULL) {
        es_filter_init(&any);
        f = &any;
    }
    if (st == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_filter_subject: store and out are required");
    es_status s = check_filter(st, f);
    const char *tenant = NULL;
    if (s == ES_OK)
        s = esi_store_tenant_of(st, f->tenant, &tenant);
    char token[ES_ID_TOKEN_MAX] = "*";
    if (s == ES_OK && f->entity_id != NULL) {
        size_t len = f->entity_id_len ? f->entity_id_len : strlen(f->entity_id);
        s = es_id_escape(f->entity_id, len, token, sizeof token, NULL);
    }
    if (s != ES_OK)
        return s;
    /* Trailing wildcards collapse into '>' (every event subject has the same
     * number of tokens, so it matches the same events): JetStream serves a
     * consumer whose filter covers the whole stream much faster. */
    const char *parts[4] = {tenant, f->entity_type, f->entity_id ? token : NULL, f->event_type};
    int first = st->config.tenancy ? 0 : 1, last = 3;
    while (last >= first && parts[last] == NULL)
        last--;
    int n = snprintf(out, out_size, "$ES.%s", st->name);
    for (int i = first; i <= last && n > 0 && (size_t)n < out_size; i++)
        n += snprintf(out + n, out_size - (size_t)n, ".%s", parts[i] ? parts[i] : "*");
    if (n > 0 && (size_t)n < out_size && last < 3)
        n += snprintf(out + n, out_size - (size_t)n, ".>");
    if (n < 0 || (size_t)n >= out_size)
        return es_error(ES_ERR_LIMIT, "filter subject does not fit %zu bytes", out_size);
    return ES_OK;
}

/* ---- sets ---------------------------------------------------------------- */

static bool one_token(const char *t, size_t len, char c)
{
    return len == 1 && t[0] == c;
}

bool esi_subject_within(const char *a, const char *b)
{
    for (;;) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        if (one_token(b, lb, '>'))
            return true; /* a has a token here: '>' takes it and the rest */
        if (one_token(a, la, '>'))
            return false; /* only a '>' covers a '>' */
        if (!one_token(b, lb, '*') && (la != lb || memcmp(a, b, la) != 0))
            return false;
        a += la;
        b += lb;
        if (*a == '\0' || *b == '\0')
            return *a == '\0' && *b == '\0';
        a++;
        b++;
    }
}

/* Subject i of subjects[0..count) asks for nothing the others do not:
 * within a wider one, or equal to an earlier one (of equals, the first
 * stays). */
static bool covered(const char *const *subjects, size_t count, size_t i)
{
    for (size_t j = 0; j < count; j++) {
        if (j == i || !esi_subject_within(subjects[i], subjects[j]))
            continue;
        if (j < i || !esi_subject_within(subjects[j], subjects[i]))
            return true;
    }
    return false;
}

static es_status fill(const es_store *st, const es_filter *filters, size_t n, esi_filter_set *fs)
{
    if (n == 0)
        return es_filter_subject(st, NULL, fs->text[0], ES_SUBJECT_MAX);
    for (size_t i = 0; i < n; i++) {
        es_status s = es_filter_subject(st, &filters[i], fs->text[i], ES_SUBJECT_MAX);
        if (s != ES_OK) {
            return es_error(s, "filter %zu: %s", i, es_last_error());
        }
    }
    return ES_OK;
}

es_status esi_filter_set_make(const es_store *st, const es_filter *filters, size_t n,
                              esi_filter_set **out)
{
    *out = NULL;
    if (n > ES_FILTERS_MAX || (n > 0 && filters == NULL))
        return es_error(ES_ERR_INVALID, "0..%d filters, not %zu%s", ES_FILTERS_MAX, n,
                        n > 0 && filters == NULL ? " (and filters is NULL)" : "");
    esi_filter_set *fs = esi_malloc(sizeof *fs);
    if (fs == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status s = fill(st, filters, n, fs);
    if (s != ES_OK) {
        esi_free(fs);
        return s;
    }
    size_t count = n ? n : 1;
    const char *all[ES_FILTERS_MAX];
    for (size_t i = 0; i < count; i++)
        all[i] = fs->text[i];
    fs->n = 0;
    for (size_t i = 0; i < count; i++)
        if (!covered(all, count, i))
            fs->subjects[fs->n++] = fs->text[i];
    *out = fs;
    return ES_OK;
}

void esi_filter_set_free(esi_filter_set *fs)
{
    esi_free(fs);
}

es_status esi_filter_set_union(const esi_filter_set *a, const esi_filter_set *b,
                               esi_filter_set **out)
{
    *out = NULL;
    const char *all[2 * ES_FILTERS_MAX];
    size_t count = 0, kept = 0;
    for (size_t i = 0; i < a->n; i++)
        all[count++] = a->subjects[i];
    for (size_t i = 0; i < b->n; i++)
        all[count++] = b->subjects[i];
    for (size_t i = 0; i < count; i++)
        kept += !covered(all, count, i);
    if (kept > ES_FILTERS_MAX)
        return es_error(ES_ERR_LIMIT, "%zu filter subjects: more than %d", kept, ES_FILTERS_MAX);
    esi_filter_set *fs = esi_malloc(sizeof *fs);
    if (fs == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    fs->n = 0;
    for (size_t i = 0; i < count; i++) {
        if (covered(all, count, i))
            continue;
        strcpy(fs->text[fs->n], all[i]);
        fs->subjects[fs->n] = fs->text[fs->n];
        fs->n++;
    }
    *out = fs;
    return ES_OK;
}

bool esi_filter_set_covers(const esi_filter_set *fs, const esi_filter_set *sub)
{
    for (size_t i = 0; i < sub->n; i++)
        if (!esi_filter_set_matches(fs, sub->subjects[i]))
            return false;
    return true;
}

bool esi_filter_set_matches(const esi_filter_set *fs, const char *subject)
{
    for (size_t i = 0; i < fs->n; i++)
        if (esi_subject_within(subject, fs->subjects[i]))
            return true;
    return false;
}
