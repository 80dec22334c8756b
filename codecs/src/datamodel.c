/* The atproto data model's rules that the value model itself does not
 * enforce (es_atproto_check, declared in es/json.h). */
#include <es/json.h>

#include <stdio.h>
#include <string.h>

#include "base/internal.h"

#define PATH_MAX_LEN 200

typedef struct checker {
    char path[PATH_MAX_LEN]; /* "/rcrd/list/3": where the walk is, for messages */
    size_t path_len;
} checker;

/* Append "/<segment>" to the path (truncated when long) and return the old
 * length, to restore after the child was checked. */
static size_t push(checker *c, const char *seg, size_t seg_len)
{
    size_t old = c->path_len;
    int n = snprintf(c->path + old, sizeof c->path - old, "/%.*s", (int)seg_len, seg);
    if (n > 0)
        c->path_len = old + (size_t)n < sizeof c->path ? old + (size_t)n : sizeof c->path - 1;
    return old;
}

static void pop(checker *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

__attribute__((cold)) static es_status violation(const checker *c, const char *what)
{
    return es_error(ES_ERR_DECODE, "atproto data model: %s at %s", what,
                    c->path_len ? c->path : "/");
}

static bool is_kind(const es_value *v, es_value_kind kind)
{
    return v != NULL && v->kind == kind;
}

static es_status check_value(checker *c, const es_value *v, size_t depth);

static es_status check_typed_map(checker *c, const es_value *map)
{
    const es_value *type = es_value_get(map, "$type");
    if (type == NULL)
        return ES_OK;
    if (!is_kind(type, ES_VALUE_STRING) || type->u.str.len == 0)
        return violation(c, "\"$type\" is not a non-empty string");
    if (!es_value_is_string(type, "blob"))
        return ES_OK;
    if (!is_kind(es_value_get(map, "ref"), ES_VALUE_LINK))
        return violation(c, "blob without a link \"ref\"");
    if (!is_kind(es_value_get(map, "mimeType"), ES_VALUE_STRING))
        return violation(c, "blob without a string \"mimeType\"");
    if (!is_kind(es_value_get(map, "size"), ES_VALUE_INT))
        return violation(c, "blob without an integer \"size\"");
    return ES_OK;
}

static es_status check_children(checker *c, const es_value *v, size_t depth)
{
    es_status st = ES_OK;
    if (v->kind == ES_VALUE_MAP) {
        st = check_typed_map(c, v);
        for (size_t i = 0; i < v->u.map.count && st == ES_OK; i++) {
            const es_value_entry *e = &v->u.map.entries[i];
            size_t old = push(c, e->key ? e->key : "", e->key_len);
            st = check_value(c, &e->value, depth + 1);
            pop(c, old);
        }
        return st;
    }
    for (size_t i = 0; i < v->u.array.count && st == ES_OK; i++) {
        char index[24];
        int n = snprintf(index, sizeof index, "%zu", i);
        size_t old = push(c, index, (size_t)n);
        st = check_value(c, &v->u.array.items[i], depth + 1);
        pop(c, old);
    }
    return st;
}

static es_status check_value(checker *c, const es_value *v, size_t depth)
{
    switch (v->kind) {
    case ES_VALUE_FLOAT: return violation(c, "float");
    case ES_VALUE_UINT: return violation(c, "integer outside int64");
    case ES_VALUE_ARRAY:
    case ES_VALUE_MAP:
        if (depth >= ES_JSON_MAX_DEPTH)
            return es_error(ES_ERR_TOO_DEEP, "atproto data model: nesting deeper than %d",
                            ES_JSON_MAX_DEPTH);
        return check_children(c, v, depth);
    default: return ES_OK;
    }
}

es_status es_atproto_check(const es_value *v)
{
    if (v == NULL)
        return es_error(ES_ERR_INVALID, "es_atproto_check: NULL value");
    checker c = {.path = "", .path_len = 0};
    if (v->kind != ES_VALUE_MAP)
        return violation(&c, "top level is not a map");
    return check_value(&c, v, 0);
}
