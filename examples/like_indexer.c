/* like-indexer: who likes what, from the ATProto adapter's events.
 *
 *   like-indexer [--exit-when-caught-up] [--partitions N] [--instance I --instances M]
 *   like-indexer get-likes-by DID     one JSON object a line: {"rkey": …, "subject": <AT URI>}
 *   like-indexer get-likers URI       the DIDs that like the post, one a line
 *   common: [--server URL] [--store NAME (atproto)] [--bucket NAME (<store>_likes)]
 *           [--name PROJECTION (like-indexer)]
 *
 * A durable, ordered projection over app_bsky_feed_like events (entity = the
 * liker's DID, event = create | update | delete, payload = the like record's
 * DAG-CBOR, Rita-Meta-rkey = its record key). It keeps two families of keys
 * in one KV bucket:
 *
 *   did.<did>.<rkey>                -> {"cid":…,"uri":…}  the like's subject
 *   subject.<uri>.<did>.<rkey>      -> ""                 who likes a subject
 *
 * (components escaped with es_kv_key_escape). A delete carries no record: its
 * rkey finds the like under did.<did>.<rkey>. Order per DID is what makes
 * that work, hence the ordered projection. Every step is idempotent, so a
 * redelivered event does no harm. Stop it and start it again: it resumes;
 * start more (--instance/--instances): they share the partitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

static const char usage[] =
    "usage: like-indexer [--exit-when-caught-up] [--partitions N] [--instance I --instances M]\n"
    "       like-indexer get-likes-by DID\n"
    "       like-indexer get-likers AT-URI\n"
    "  common: [--server URL] [--store NAME] [--bucket NAME] [--name PROJECTION]\n";

#define ARENA_LIMIT   (4u << 20) /* a record is at most 1 MiB; its tree fits in this */
#define COMPONENT_MAX 512        /* escaped DID, rkey or URI: keys stay well under NATS limits */

typedef struct like {
    char uri[COMPONENT_MAX];
    char cid[128];
} like;

/* ---- keys ------------------------------------------------------------------- */

static es_status escape(const char *s, size_t len, char out[COMPONENT_MAX])
{
    return es_kv_key_escape(s, len, out, COMPONENT_MAX, NULL);
}

static es_status did_key(const char *did, size_t did_len, const char *rkey, char *out, size_t n)
{
    char d[COMPONENT_MAX], r[COMPONENT_MAX];
    es_status s = escape(did, did_len, d);
    if (s == ES_OK)
        s = escape(rkey, strlen(rkey), r);
    if (s == ES_OK && snprintf(out, n, "did.%s.%s", d, r) >= (int)n)
        s = ES_ERR_LIMIT;
    return s;
}

static es_status subject_key(const char *uri, const char *did, size_t did_len, const char *rkey,
                             char *out, size_t n)
{
    char u[COMPONENT_MAX], d[COMPONENT_MAX], r[COMPONENT_MAX];
    es_status s = escape(uri, strlen(uri), u);
    if (s == ES_OK)
        s = escape(did, did_len, d);
    if (s == ES_OK)
        s = escape(rkey, strlen(rkey), r);
    if (s == ES_OK && snprintf(out, n, "subject.%s.%s.%s", u, d, r) >= (int)n)
        s = ES_ERR_LIMIT;
    return s;
}

/* ---- the like record --------------------------------------------------------- */

static bool copy_string(const es_value *v, char *out, size_t n)
{
    if (v == NULL || v->kind != ES_VALUE_STRING || v->u.str.len == 0 || v->u.str.len >= n)
        return false;
    memcpy(out, v->u.str.ptr, v->u.str.len);
    out[v->u.str.len] = '\0';
    return true;
}

/* {"$type":"app.bsky.feed.like","subject":{"uri":…,"cid":…},"createdAt":…} */
static es_status parse_like(const void *data, size_t len, es_arena *arena, like *l)
{
    es_cbor_options o;
    es_cbor_options_init(&o, true); /* strict DAG-CBOR */
    es_value *v = NULL;
    es_status s = es_cbor_decode(data, len, &o, arena, &v, NULL);
    if (s != ES_OK)
        return s;
    const es_value *type = es_value_get(v, "$type");
    const es_value *subject = es_value_get(v, "subject");
    if (type != NULL && !es_value_is_string(type, "app.bsky.feed.like"))
        return ES_ERR_DECODE;
    if (!copy_string(es_value_get(subject, "uri"), l->uri, sizeof l->uri) ||
        strncmp(l->uri, "at://", 5) != 0)
        return ES_ERR_DECODE;
    if (!copy_string(es_value_get(subject, "cid"), l->cid, sizeof l->cid))
        l->cid[0] = '\0';
    return ES_OK;
}

/* The value under did.<did>.<rkey>: {"cid":…,"uri":…} as JSON. */
static es_status encode_subject(const like *l, es_arena *arena, es_buf *out)
{
    es_value *m = es_value_new_map(arena, 2);
    if (m == NULL)
        return ES_ERR_NOMEM;
    m->u.map.entries[0] = (es_value_entry){"cid", 3, {0}};
    m->u.map.entries[1] = (es_value_entry){"uri", 3, {0}};
    es_value *cid = es_value_new_string(arena, l->cid, strlen(l->cid));
    es_value *uri = es_value_new_string(arena, l->uri, strlen(l->uri));
    if (cid == NULL || uri == NULL)
        return ES_ERR_NOMEM;
    m->u.map.entries[0].value = *cid;
    m->u.map.entries[1].value = *uri;
    return es_json_encode(m, NULL, out);
}

static es_status decode_subject(const void *json, size_t len, es_arena *arena, like *l)
{
    es_value *v = NULL;
    es_status s = es_json_decode(json, len, NULL, arena, &v);
    if (s == ES_OK && !copy_string(es_value_get(v, "uri"), l->uri, sizeof l->uri))
        s = ES_ERR_DECODE;
    if (s == ES_OK && !copy_string(es_value_get(v, "cid"), l->cid, sizeof l->cid))
        l->cid[0] = '\0';
    return s;
}

/* ---- the projection's handler ---------------------------------------------- */

typedef struct indexer {
    view *v;
} indexer;

static es_status kv_put(view *v, const char *key, const void *data, size_t len)
{
    uint64_t rev;
    return view_nats_status(kvStore_Put(&rev, v->kv, key, data, (int)len));
}

static es_status kv_delete(view *v, const char *key)
{
    return view_nats_status(kvStore_Delete(v->kv, key));
}

/* The like stored under did.<did>.<rkey>, if any (ES_ERR_NOT_FOUND). */
static es_status stored_like(view *v, const char *key, es_arena *arena, like *l)
{
    kvEntry *e = NULL;
    es_status s = view_nats_status(kvStore_Get(&e, v->kv, key));
    if (s == ES_OK)
        s = decode_subject(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), arena, l);
    kvEntry_Destroy(e);
    return s;
}

/* Removes a like: the subject's key first, the DID's last, since the DID's
 * is how a redelivered delete finds the subject again. */
static es_status unlike(view *v, const char *dkey, const char *did, size_t did_len,
                        const char *rkey, es_arena *arena)
{
    like old;
    es_status s = stored_like(v, dkey, arena, &old);
    if (s == ES_ERR_NOT_FOUND)
        return ES_OK; /* never indexed, or deleted already */
    char skey[4 * COMPONENT_MAX];
    if (s == ES_OK)
        s = subject_key(old.uri, did, did_len, rkey, skey, sizeof skey);
    if (s == ES_OK)
        s = kv_delete(v, skey);
    if (s == ES_OK)
        s = kv_delete(v, dkey);
    return s;
}

static es_status index_like(view *v, const es_event *ev, const char *dkey, const char *did,
                            size_t did_len, const char *rkey, es_arena *arena)
{
    const void *data;
    size_t len;
    like l;
    es_status s = es_event_data(ev, &data, &len);
    if (s == ES_OK)
        s = parse_like(data, len, arena, &l);
    if (s == ES_OK && strcmp(es_event_event_type(ev), "update") == 0)
        s = unlike(v, dkey, did, did_len, rkey, arena); /* the subject may have changed */
    char skey[4 * COMPONENT_MAX];
    es_buf value = ES_BUF_INIT;
    if (s == ES_OK)
        s = subject_key(l.uri, did, did_len, rkey, skey, sizeof skey);
    if (s == ES_OK)
        s = encode_subject(&l, arena, &value);
    if (s == ES_OK)
        s = kv_put(v, skey, "", 0);
    if (s == ES_OK)
        s = kv_put(v, dkey, value.data, value.len);
    es_buf_free(&value);
    return s;
}

static es_status on_like(const es_event *ev, void *closure)
{
    indexer *ix = closure;
    size_t did_len = 0;
    const char *did = es_event_entity_id(ev, &did_len);
    const char *rkey = es_event_meta(ev, "rkey");
    const char *type = es_event_event_type(ev);
    char dkey[2 * COMPONENT_MAX + 8];
    if (rkey == NULL || did_len == 0 || type == NULL)
        return ES_ERR_DECODE; /* not the adapter's shape: dead-lettered */
    es_status s = did_key(did, did_len, rkey, dkey, sizeof dkey);
    es_arena *arena = NULL;
    if (s == ES_OK)
        s = es_arena_create(ARENA_LIMIT, &arena);
    if (s == ES_OK && strcmp(type, "delete") == 0)
        s = unlike(ix->v, dkey, did, did_len, rkey, arena);
    else if (s == ES_OK && (strcmp(type, "create") == 0 || strcmp(type, "update") == 0))
        s = index_like(ix->v, ev, dkey, did, did_len, rkey, arena);
    es_arena_destroy(arena);
    return s;
}

static void on_dead_letter(const es_event *ev, es_status why, void *closure)
{
    (void)closure;
    fprintf(stderr, "like-indexer: skipping event #%llu (%s): %s\n",
            (unsigned long long)es_event_seq(ev), es_event_subject(ev), es_status_text(why));
}

static void on_error(es_status s, const char *text, void *closure)
{
    (void)closure;
    fprintf(stderr, "like-indexer: %s: %s\n", es_status_text(s), text);
}

/* ---- queries ------------------------------------------------------------------ */

typedef struct lines {
    char **v;
    size_t n, cap;
} lines;

static es_status add_line(lines *l, char *line)
{
    if (line == NULL)
        return ES_ERR_NOMEM;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            free(line);
            return ES_ERR_NOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = line;
    return ES_OK;
}

static int compare_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Prints the lines sorted, each once, and frees them. */
static void print_lines(lines *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, compare_lines);
    for (size_t i = 0; i < l->n; i++)
        if (i == 0 || strcmp(l->v[i], l->v[i - 1]) != 0)
            puts(l->v[i]);
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* The key's last dot-separated component, unescaped. */
static es_status last_component(const char *key, char *out, size_t n)
{
    const char *dot = strrchr(key, '.');
    const char *c = dot ? dot + 1 : key;
    return es_kv_key_unescape(c, strlen(c), out, n, NULL);
}

/* did.<did>.<rkey> -> {"rkey":…,"subject":…} (rkeys are TIDs: sorted, they are in time order) */
static es_status on_like_entry(kvEntry *e, void *closure)
{
    es_arena *arena = NULL;
    like l;
    char rkey[COMPONENT_MAX];
    es_buf out = ES_BUF_INIT;
    es_status s = es_arena_create(1 << 16, &arena);
    if (s == ES_OK)
        s = last_component(kvEntry_Key(e), rkey, sizeof rkey);
    if (s == ES_OK)
        s = decode_subject(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), arena, &l);
    es_value *m = s == ES_OK ? es_value_new_map(arena, 2) : NULL;
    es_value *r = m ? es_value_new_string(arena, rkey, strlen(rkey)) : NULL;
    es_value *u = r ? es_value_new_string(arena, l.uri, strlen(l.uri)) : NULL;
    if (s == ES_OK && u == NULL)
        s = ES_ERR_NOMEM;
    if (s == ES_OK) {
        m->u.map.entries[0] = (es_value_entry){"rkey", 4, *r};
        m->u.map.entries[1] = (es_value_entry){"subject", 7, *u};
        s = es_json_encode(m, NULL, &out);
    }
    if (s == ES_OK)
        s = add_line(closure, strndup((const char *)out.data, out.len));
    es_buf_free(&out);
    es_arena_destroy(arena);
    return s;
}

/* subject.<uri>.<did>.<rkey> -> the DID */
static es_status on_liker_entry(kvEntry *e, void *closure)
{
    const char *key = kvEntry_Key(e);
    const char *end = strrchr(key, '.');
    const char *start = end;
    while (start > key && start[-1] != '.')
        start--;
    char did[COMPONENT_MAX];
    es_status s = end ? es_kv_key_unescape(start, (size_t)(end - start), did, sizeof did, NULL)
                      : ES_ERR_DECODE;
    return s == ES_OK ? add_line(closure, strdup(did)) : s;
}

static int query(const view_args *a, view *v, bool likes_by)
{
    char esc[COMPONENT_MAX], pattern[COMPONENT_MAX + 32];
    if (a->operand == NULL || escape(a->operand, strlen(a->operand), esc) != ES_OK) {
        fprintf(stderr, "like-indexer: %s needs a %s\n%s", a->command, likes_by ? "DID" : "AT URI",
                usage);
        return 2;
    }
    snprintf(pattern, sizeof pattern, likes_by ? "did.%s.*" : "subject.%s.*.*", esc);
    lines l = {0};
    es_status s = view_scan(v, pattern, likes_by ? on_like_entry : on_liker_entry, &l);
    print_lines(&l);
    if (s != ES_OK)
        fprintf(stderr, "like-indexer: reading %s: %s\n", v->bucket, es_status_text(s));
    return s == ES_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    view_args a;
    view_parse_args(argc, argv, "like-indexer", usage, &a);
    bool run = a.command == NULL;
    if (!run && strcmp(a.command, "get-likes-by") != 0 && strcmp(a.command, "get-likers") != 0) {
        fprintf(stderr, "like-indexer: unknown command '%s'\n%s", a.command, usage);
        return 2;
    }
    view v;
    view_open(&a, "likes", run, &v);
    int rc;
    if (run) {
        indexer ix = {&v};
        es_filter likes;
        es_filter_init(&likes);
        likes.entity_type = "app_bsky_feed_like";
        es_projection_handler h = {.on_event = on_like,
                                   .on_dead_letter = on_dead_letter,
                                   .on_error = on_error,
                                   .closure = &ix};
        rc = view_run(&a, &v, &likes, 1, &h);
    } else {
        rc = query(&a, &v, strcmp(a.command, "get-likes-by") == 0);
    }
    view_close(&v);
    return rc;
}
