/* Collection and DID filters, with the semantics firehose tools use:
 * collection patterns are NSIDs or prefixes ending at a segment boundary
 * (`app.bsky.feed.*`); DIDs come as a list or a file and live in a hash set,
 * so a large allow-list costs one lookup per frame. */
#include <es/atproto.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/alloc.h>
#include "atp_internal.h"
#include "base/internal.h"

#define MAX_PATTERNS 4096
#define MAX_DIDS     ((size_t)10 * 1000 * 1000)
#define DID_MAX      2048

typedef struct pattern {
    char *text; /* an NSID, or a prefix ending with '.' */
    size_t len;
    bool prefix;
} pattern;

struct es_atp_filter {
    pattern *patterns;
    size_t pattern_count;
    bool all_collections; /* a `*` pattern was given */
    char **dids;          /* open-addressing hash set; NULL slots are free */
    size_t did_slots;     /* a power of two, or 0 */
    size_t did_count;
};

es_status es_atp_filter_create(es_atp_filter **out)
{
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_filter_create: out is NULL");
    *out = es_calloc(1, sizeof **out);
    return *out ? ES_OK : es_error(ES_ERR_NOMEM, "es_atp_filter_create: out of memory");
}

void es_atp_filter_destroy(es_atp_filter *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->pattern_count; i++)
        es_free(f->patterns[i].text);
    es_free(f->patterns);
    for (size_t i = 0; i < f->did_slots; i++)
        es_free(f->dids[i]);
    es_free(f->dids);
    es_free(f);
}

/* ---- collections --------------------------------------------------------- */

/* `a.b.` style prefix: one or more segments of letters, digits and inner
 * hyphens, each followed by a dot. */
static bool valid_prefix(const char *s, size_t len)
{
    if (len < 2 || s[len - 1] != '.')
        return false;
    size_t seg = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (seg == 0 || seg > 63 || s[i - 1] == '-')
                return false;
            seg = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c == '-' && seg > 0);
        if (!ok)
            return false;
        seg++;
    }
    return true;
}

/* Parse one pattern [s, s+len) into `p` (text not yet allocated). */
static es_status parse_pattern(const char *s, size_t len, pattern *p, bool *all)
{
    if (len == 1 && s[0] == '*') {
        *all = true;
        p->len = 0;
        return ES_OK;
    }
    if (len >= 2 && s[len - 1] == '*' && s[len - 2] == '.' && valid_prefix(s, len - 1)) {
        p->prefix = true;
        p->len = len - 1;
        return ES_OK;
    }
    if (es_atp_valid_nsid(s, len)) {
        p->prefix = false;
        p->len = len;
        return ES_OK;
    }
    return es_error(
        ES_ERR_INVALID,
        "collection pattern '%.*s' is neither an NSID nor a prefix like app.bsky.feed.*",
        (int)(len > 200 ? 200 : len), s);
}

/* Split `list` on commas and white space, calling fn for each token; stops
 * at the first failure. */
typedef es_status (*token_fn)(void *ctx, const char *tok, size_t len);

static bool is_separator(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static es_status each_token(const char *list, token_fn fn, void *ctx)
{
    const char *p = list;
    while (*p) {
        while (*p && is_separator(*p))
            p++;
        const char *start = p;
        while (*p && !is_separator(*p))
            p++;
        if (p > start) {
            es_status s = fn(ctx, start, (size_t)(p - start));
            if (s != ES_OK)
                return s;
        }
    }
    return ES_OK;
}

static es_status check_pattern(void *ctx, const char *tok, size_t len)
{
    size_t *count = ctx;
    pattern p;
    bool all = false;
    (*count)++;
    return parse_pattern(tok, len, &p, &all);
}

static es_status add_pattern(void *ctx, const char *tok, size_t len)
{
    es_atp_filter *f = ctx;
    pattern p = {0};
    bool all = false;
    es_status s = parse_pattern(tok, len, &p, &all);
    if (s != ES_OK || all) {
        f->all_collections |= all;
        return s;
    }
    p.text = es_malloc(p.len + 1);
    if (p.text == NULL)
        return es_error(ES_ERR_NOMEM, "collection filter: out of memory");
    memcpy(p.text, tok, p.len);
    p.text[p.len] = '\0';
    f->patterns[f->pattern_count++] = p;
    return ES_OK;
}

es_status es_atp_filter_add_collections(es_atp_filter *f, const char *patterns)
{
    if (f == NULL || patterns == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_filter_add_collections: NULL argument");
    /* Validate everything first so a bad list leaves the filter unchanged. */
    size_t count = 0;
    es_status s = each_token(patterns, check_pattern, &count);
    if (s != ES_OK)
        return s;
    if (count > MAX_PATTERNS - f->pattern_count)
        return es_error(ES_ERR_LIMIT, "collection filter: more than %d patterns", MAX_PATTERNS);
    pattern *grown = es_realloc(f->patterns, (f->pattern_count + count + 1) * sizeof *grown);
    if (grown == NULL)
        return es_error(ES_ERR_NOMEM, "collection filter: out of memory");
    f->patterns = grown;
    return each_token(patterns, add_pattern, f);
}

bool es_atp_filter_keeps_collection(const es_atp_filter *f, const char *nsid, size_t len)
{
    if (f == NULL || f->all_collections || f->pattern_count == 0)
        return true;
    for (size_t i = 0; i < f->pattern_count; i++) {
        const pattern *p = &f->patterns[i];
        if (p->prefix ? len > p->len && memcmp(nsid, p->text, p->len) == 0
                      : len == p->len && memcmp(nsid, p->text, len) == 0)
            return true;
    }
    return false;
}

bool es_atp_filter_exact_collections(const es_atp_filter *f, es_atp_nsid_fn fn, void *ctx)
{
    if (f == NULL || f->all_collections || f->pattern_count == 0)
        return false;
    for (size_t i = 0; i < f->pattern_count; i++)
        if (f->patterns[i].prefix)
            return false;
    for (size_t i = 0; i < f->pattern_count; i++)
        fn(ctx, f->patterns[i].text, f->patterns[i].len);
    return true;
}

/* ---- DIDs ---------------------------------------------------------------- */

/* The slot holding `did`, or the free slot where it would go. */
static size_t did_slot(const es_atp_filter *f, const char *did, size_t len)
{
    size_t mask = f->did_slots - 1, i = (size_t)esi_atp_hash(did, len) & mask;
    while (f->dids[i] != NULL && !(strlen(f->dids[i]) == len && memcmp(f->dids[i], did, len) == 0))
        i = (i + 1) & mask;
    return i;
}

static es_status grow_dids(es_atp_filter *f)
{
    size_t slots = f->did_slots ? f->did_slots * 2 : 64;
    char **old = f->dids;
    size_t old_slots = f->did_slots;
    f->dids = es_calloc(slots, sizeof *f->dids);
    if (f->dids == NULL) {
        f->dids = old;
        return es_error(ES_ERR_NOMEM, "DID filter: out of memory");
    }
    f->did_slots = slots;
    for (size_t i = 0; i < old_slots; i++)
        if (old[i] != NULL)
            f->dids[did_slot(f, old[i], strlen(old[i]))] = old[i];
    es_free(old);
    return ES_OK;
}

static es_status add_did(void *ctx, const char *did, size_t len)
{
    es_atp_filter *f = ctx;
    if (f->did_count >= MAX_DIDS)
        return es_error(ES_ERR_LIMIT, "DID filter: more than %zu DIDs", MAX_DIDS);
    if ((f->did_count + 1) * 2 > f->did_slots) {
        es_status s = grow_dids(f);
        if (s != ES_OK)
            return s;
    }
    size_t i = did_slot(f, did, len);
    if (f->dids[i] != NULL)
        return ES_OK; /* already there */
    char *copy = es_malloc(len + 1);
    if (copy == NULL)
        return es_error(ES_ERR_NOMEM, "DID filter: out of memory");
    memcpy(copy, did, len);
    copy[len] = '\0';
    f->dids[i] = copy;
    f->did_count++;
    return ES_OK;
}

/* A token of a DID list or file: a DID, then the caller's. */
typedef struct did_reader {
    es_atp_did_fn fn;
    void *ctx;
} did_reader;

static es_status valid_did_token(void *ctx, const char *did, size_t len)
{
    const did_reader *r = ctx;
    if (!es_atp_valid_did(did, len))
        return es_error(ES_ERR_INVALID, "'%.*s' is not a valid DID", (int)(len > 200 ? 200 : len),
                        did);
    return r->fn(r->ctx, did, len);
}

static es_status dids_of_file(const char *path, did_reader *r)
{
    FILE *in = fopen(path, "r");
    if (in == NULL)
        return es_error(errno == ENOENT ? ES_ERR_NOT_FOUND : ES_ERR_IO,
                        "DID file %s: cannot open: %s", path, strerror(errno));
    char tok[DID_MAX + 1];
    size_t len = 0;
    bool comment = false;
    es_status s = ES_OK;
    for (int c = getc(in); s == ES_OK; c = getc(in)) {
        if (c == EOF || c == '\n')
            comment = false;
        else if (c == '#')
            comment = true;
        if (c == EOF || comment || is_separator((char)c)) {
            if (len > 0)
                s = valid_did_token(r, tok, len);
            len = 0;
            if (c == EOF)
                break;
            continue;
        }
        if (len == DID_MAX)
            s = es_error(ES_ERR_INVALID, "DID file %s: a token longer than %d bytes", path,
                         DID_MAX);
        else
            tok[len++] = (char)c;
    }
    if (s == ES_OK && ferror(in))
        s = es_error(ES_ERR_IO, "DID file %s: read failed", path);
    fclose(in);
    return s;
}

es_status es_atp_dids_each(const char *arg, bool file, es_atp_did_fn fn, void *ctx)
{
    if (arg == NULL || fn == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_dids_each: NULL argument");
    did_reader r = {fn, ctx};
    return file ? dids_of_file(arg, &r) : each_token(arg, valid_did_token, &r);
}

static es_status add_dids(es_atp_filter *f, const char *arg, bool file)
{
    if (f == NULL || arg == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_filter_add_dids: NULL argument");
    es_status s = es_atp_dids_each(arg, file, add_did, f);
    return s == ES_ERR_INVALID && !file ? esi_atp_error_wrap(s, "DID filter") : s;
}

es_status es_atp_filter_add_dids(es_atp_filter *f, const char *dids)
{
    return add_dids(f, dids, false);
}

es_status es_atp_filter_add_dids_file(es_atp_filter *f, const char *path)
{
    return add_dids(f, path, true);
}

es_status es_atp_filter_add_dids_arg(es_atp_filter *f, const char *arg)
{
    return add_dids(f, arg, arg == NULL || strncmp(arg, "did:", 4) != 0);
}

bool es_atp_filter_keeps_did(const es_atp_filter *f, const char *did, size_t len)
{
    if (f == NULL || f->did_count == 0)
        return true;
    return f->dids[did_slot(f, did, len)] != NULL;
}
