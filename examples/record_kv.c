/* record-kv: the current value of every ATProto record, in a KV bucket.
 *
 *   record-kv [--exit-when-caught-up] [--partitions N] [--instance I --instances M]
 *   record-kv get AT-URI       the record as atproto JSON (exit 1 when absent)
 *   record-kv uris             every record's AT URI, sorted (reads the whole bucket)
 *   common: [--server URL] [--store NAME (atproto)] [--bucket NAME (<store>_records)]
 *           [--name PROJECTION (record-kv)]
 *
 * A durable, ordered projection over every record event the ATProto adapter
 * stores (entity type = collection with '_', id = DID, event = create |
 * update | delete, Rita-Meta-rkey = record key; repo events are left out by
 * the filters). Each record lives under
 *
 *   <did>/<collection>/<rkey>  ->  the record's DAG-CBOR, as stored
 *
 * (DID and rkey escaped with es_kv_key_escape; the collection NSID as it is),
 * and a delete deletes the key: applications read current state from the
 * bucket while others stream changes from the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

static const char usage[] =
    "usage: record-kv [--exit-when-caught-up] [--partitions N] [--instance I --instances M]\n"
    "       record-kv get AT-URI\n"
    "       record-kv uris\n"
    "  common: [--server URL] [--store NAME] [--bucket NAME] [--name PROJECTION]\n";

#define COMPONENT_MAX 512
#define KEY_MAX       (3 * COMPONENT_MAX)

/* The collection NSID of an entity type: '_' back to '.'. NSIDs hold only
 * letters, digits, '-' and '.', so anything else is not a record's type. */
static bool collection_of(const char *type, char *out, size_t n)
{
    size_t len = strlen(type);
    if (len == 0 || len >= n)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = type[i];
        out[i] = c == '_' ? '.' : c;
        if (c != '\0' && c != '_' && c != '-' && !(c >= 'a' && c <= 'z') &&
            !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9'))
            return false;
    }
    return out[0] != '.' && out[len - 1] != '.' && strstr(out, "..") == NULL;
}

static es_status record_key(const char *did, size_t did_len, const char *collection,
                            const char *rkey, char out[KEY_MAX])
{
    char d[COMPONENT_MAX], r[COMPONENT_MAX];
    es_status s = es_kv_key_escape(did, did_len, d, sizeof d, NULL);
    if (s == ES_OK)
        s = es_kv_key_escape(rkey, strlen(rkey), r, sizeof r, NULL);
    if (s == ES_OK && snprintf(out, KEY_MAX, "%s/%s/%s", d, collection, r) >= KEY_MAX)
        s = ES_ERR_LIMIT;
    return s;
}

static es_status on_record(const es_event *ev, void *closure)
{
    view *v = closure;
    size_t did_len = 0;
    const char *did = es_event_entity_id(ev, &did_len);
    const char *rkey = es_event_meta(ev, "rkey");
    const char *type = es_event_event_type(ev);
    char collection[256], key[KEY_MAX];
    if (rkey == NULL || did_len == 0 ||
        !collection_of(es_event_entity_type(ev), collection, sizeof collection))
        return ES_ERR_DECODE; /* not the adapter's shape: dead-lettered */
    es_status s = record_key(did, did_len, collection, rkey, key);
    if (s != ES_OK)
        return s;
    if (strcmp(type, "delete") == 0) {
        natsStatus ns = kvStore_Delete(v->kv, key);
        return ns == NATS_NOT_FOUND ? ES_OK : view_nats_status(ns);
    }
    const void *data;
    size_t len;
    s = es_event_data(ev, &data, &len);
    uint64_t rev;
    return s == ES_OK ? view_nats_status(kvStore_Put(&rev, v->kv, key, data, (int)len)) : s;
}

static void on_dead_letter(const es_event *ev, es_status why, void *closure)
{
    (void)closure;
    fprintf(stderr, "record-kv: skipping event #%llu (%s): %s\n",
            (unsigned long long)es_event_seq(ev), es_event_subject(ev), es_status_text(why));
}

/* at://<did>/<collection>/<rkey> */
static es_status key_of_uri(const char *uri, char out[KEY_MAX])
{
    if (strncmp(uri, "at://", 5) != 0)
        return ES_ERR_INVALID;
    const char *did = uri + 5, *slash1 = strchr(did, '/');
    const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    if (slash2 == NULL || slash2 - slash1 - 1 >= COMPONENT_MAX)
        return ES_ERR_INVALID;
    char collection[COMPONENT_MAX];
    memcpy(collection, slash1 + 1, (size_t)(slash2 - slash1 - 1));
    collection[slash2 - slash1 - 1] = '\0';
    return record_key(did, (size_t)(slash1 - did), collection, slash2 + 1, out);
}

static int get(view *v, const char *uri)
{
    char key[KEY_MAX];
    if (uri == NULL || key_of_uri(uri, key) != ES_OK) {
        fprintf(stderr, "record-kv: get needs an AT URI (at://<did>/<collection>/<rkey>)\n");
        return 2;
    }
    kvEntry *e = NULL;
    natsStatus ns = kvStore_Get(&e, v->kv, key);
    if (ns != NATS_OK) {
        fprintf(stderr, "record-kv: %s: %s\n", uri,
                ns == NATS_NOT_FOUND ? "no such record" : natsStatus_GetText(ns));
        return 1;
    }
    es_arena *arena = NULL;
    es_value *value = NULL;
    es_buf out = ES_BUF_INIT;
    es_status s = es_arena_create(4u << 20, &arena);
    if (s == ES_OK)
        s = es_cbor_decode(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), NULL, arena, &value,
                           NULL);
    if (s == ES_OK)
        s = es_json_encode(value, NULL, &out);
    if (s == ES_OK)
        printf("%.*s\n", (int)out.len, (const char *)out.data);
    else
        fprintf(stderr, "record-kv: %s: %s\n", uri, es_last_error());
    es_buf_free(&out);
    es_arena_destroy(arena);
    kvEntry_Destroy(e);
    return s == ES_OK ? 0 : 1;
}

typedef struct uri_list {
    char **v;
    size_t n, cap;
} uri_list;

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "<did>/<collection>/<rkey>" back to "at://<did>/<collection>/<rkey>". */
static es_status uri_of_key(kvEntry *e, void *closure)
{
    uri_list *l = closure;
    const char *key = kvEntry_Key(e), *first = strchr(key, '/'), *last = strrchr(key, '/');
    char did[COMPONENT_MAX], rkey[COMPONENT_MAX];
    if (first == NULL || last == first ||
        es_kv_key_unescape(key, (size_t)(first - key), did, sizeof did, NULL) != ES_OK ||
        es_kv_key_unescape(last + 1, strlen(last + 1), rkey, sizeof rkey, NULL) != ES_OK)
        return ES_OK; /* not one of ours */
    size_t n = strlen(did) + (size_t)(last - first) + strlen(rkey) + 8;
    char *uri = malloc(n);
    if (uri == NULL)
        return ES_ERR_NOMEM;
    snprintf(uri, n, "at://%s/%.*s/%s", did, (int)(last - first - 1), first + 1, rkey);
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        char **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            free(uri);
            return ES_ERR_NOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = uri;
    return ES_OK;
}

static int uris(view *v)
{
    uri_list l = {0};
    es_status s = view_scan(v, ">", uri_of_key, &l);
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, compare_strings);
    for (size_t i = 0; i < l.n; i++) {
        if (s == ES_OK)
            puts(l.v[i]);
        free(l.v[i]);
    }
    free(l.v);
    if (s != ES_OK)
        fprintf(stderr, "record-kv: reading %s: %s\n", v->bucket, es_status_text(s));
    return s == ES_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    view_args a;
    view_parse_args(argc, argv, "record-kv", usage, &a);
    bool run = a.command == NULL;
    if (!run && strcmp(a.command, "get") != 0 && strcmp(a.command, "uris") != 0) {
        fprintf(stderr, "record-kv: unknown command '%s'\n%s", a.command, usage);
        return 2;
    }
    view v;
    view_open(&a, "records", run, &v);
    int rc;
    if (run) {
        /* Record events, not the `repo` entity's identity/account/sync ones. */
        es_filter f[3];
        const char *ops[] = {"create", "update", "delete"};
        for (int i = 0; i < 3; i++) {
            es_filter_init(&f[i]);
            f[i].event_type = ops[i];
        }
        es_projection_handler h = {
            .on_event = on_record, .on_dead_letter = on_dead_letter, .closure = &v};
        rc = view_run(&a, &v, f, 3, &h);
    } else if (strcmp(a.command, "get") == 0) {
        rc = get(&v, a.operand);
    } else {
        rc = uris(&v);
    }
    view_close(&v);
    return rc;
}
