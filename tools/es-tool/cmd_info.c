/* es-tool info: a store's configuration and state, its KV buckets, and
 * how many entities and events it holds per entity type and per event type,
 * counted from the stream's per-subject state (no event is read). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "counts.h"
#include "estool.h"

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

typedef struct tally {
    bool tenancy;
    tool_counts types, events, tenants; /* a: events, b: entities */
    uint64_t odd_subjects;              /* subjects without the event shape */
    json_t *buckets;
} tally;

static es_status count_subject(const es_subject_count *c, void *closure)
{
    tally *t = closure;
    uint64_t new_entity = c->first_of_entity ? 1 : 0;
    es_status s =
        tool_counts_add(&t->types, c->entity_type, strlen(c->entity_type), c->events, new_entity);
    if (s == ES_OK)
        s = tool_counts_add(&t->events, c->event_type, strlen(c->event_type), c->events, 0);
    if (s == ES_OK && c->tenant)
        s = tool_counts_add(&t->tenants, c->tenant, strlen(c->tenant), c->events, new_entity);
    return s;
}

static es_status add_bucket(const es_bucket_info *b, void *closure)
{
    tally *t = closure;
    json_t *j = json_pack("{s:s, s:I, s:I}", "bucket", b->bucket, "values", (json_int_t)b->values,
                          "bytes", (json_int_t)b->bytes);
    return j != NULL && json_array_append_new(t->buckets, j) == 0 ? ES_OK : ES_ERR_NOMEM;
}

/* ---- output ------------------------------------------------------------------ */

static json_t *counts_json(const tool_counts *c, const char *key, bool entities)
{
    json_t *arr = json_array();
    tool_count *sorted = tool_counts_sorted(c);
    for (size_t i = 0; sorted && i < c->n; i++) {
        json_t *o = json_pack("{s:s, s:I}", key, sorted[i].name, "events", (json_int_t)sorted[i].a);
        if (entities)
            json_object_set_new(o, "entities", json_integer((json_int_t)sorted[i].b));
        json_array_append_new(arr, o);
    }
    free(sorted);
    return arr;
}

static json_t *info_json(es_store *st, const es_store_info *in, tally *t)
{
    char first[64], last[64], created[64];
    tool_time_text(in->first_time_ns, first);
    tool_time_text(in->last_time_ns, last);
    tool_time_text(in->created_ns, created);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I, s:s, s:s, s:I}, s:O, s:o, s:o}",
                  "store", es_store_name(st), "stream", es_store_stream(st), "created", created,
                  "config", tool_config_json(&in->config), "state", "events",
                  (json_int_t)in->events, "bytes", (json_int_t)in->bytes, "first_seq",
                  (json_int_t)in->first_seq, "last_seq", (json_int_t)in->last_seq, "first_time",
                  first, "last_time", last, "subjects", (json_int_t)in->subjects, "buckets",
                  t->buckets, "entity_types", counts_json(&t->types, "type", true), "event_types",
                  counts_json(&t->events, "event", false));
    if (t->tenancy)
        json_object_set_new(j, "tenants", counts_json(&t->tenants, "tenant", true));
    return j;
}

static void print_counts(const char *title, const tool_counts *c, bool entities)
{
    if (c->n == 0)
        return;
    printf("\n%-28s %12s%s\n", title, "events", entities ? "     entities" : "");
    tool_count *sorted = tool_counts_sorted(c);
    for (size_t i = 0; sorted && i < c->n; i++) {
        printf("  %-26s %12" PRIu64, sorted[i].name, sorted[i].a);
        if (entities)
            printf(" %12" PRIu64, sorted[i].b);
        printf("\n");
    }
    if (c->overflow_names)
        printf("  ... and %zu more: %" PRIu64 " events\n", c->overflow_names, c->overflow_a);
    free(sorted);
}

static void print_text(es_store *st, const es_store_info *in, const tally *t)
{
    const es_store_config *c = &in->config;
    char text[64], first[64], last[64];
    tool_time_text(in->created_ns, text);
    printf("Store %s (stream %s), created %s\n\nConfiguration\n", es_store_name(st),
           es_store_stream(st), text);
    printf("  %-18s %s, %d replica%s%s\n", "storage", c->memory_storage ? "memory" : "file",
           c->replicas, c->replicas == 1 ? "" : "s",
           c->storage_compression == ES_STORAGE_COMPRESSION_S2 ? ", S2-compressed blocks" : "");
    printf("  %-18s %s\n", "tenancy", c->tenancy ? "yes" : "no");
    for (tool_config_field f = CONFIG_MAX_AGE; f <= CONFIG_DUPLICATE_WINDOW; f++) {
        tool_config_text(c, f, text);
        printf("  %-18s %s\n", tool_config_label(f), text);
    }
    if (c->compress_threshold > 0) {
        tool_size_text(c->compress_threshold, text);
        printf("  %-18s zstd from %s%s\n", "compression", text,
               c->compress_dict ? ", dictionary" : "");
    } else {
        printf("  %-18s no\n", "compression");
    }
    printf("  %-18s %s\n", "encryption", c->encrypt ? "yes (a data key per entity)" : "no");

    tool_size_text(in->bytes, text);
    tool_time_text(in->first_time_ns, first);
    tool_time_text(in->last_time_ns, last);
    printf("\nState\n  %-18s %" PRIu64 "\n  %-18s %s\n", "events", in->events, "bytes", text);
    printf("  %-18s %" PRIu64 " at %s\n  %-18s %" PRIu64 " at %s\n", "first", in->first_seq, first,
           "last", in->last_seq, last);
    printf("  %-18s %" PRIu64 "\n", "subjects", in->subjects);

    printf("\nKV buckets\n");
    if (json_array_size(t->buckets) == 0)
        printf("  (none)\n");
    size_t i;
    json_t *b;
    json_array_foreach(t->buckets, i, b)
    {
        tool_size_text((uint64_t)json_integer_value(json_object_get(b, "bytes")), text);
        printf("  %-26s %12" JSON_INTEGER_FORMAT " values, %s\n",
               json_string_value(json_object_get(b, "bucket")),
               json_integer_value(json_object_get(b, "values")), text);
    }
    print_counts("Entity types", &t->types, true);
    print_counts("Event types", &t->events, false);
    if (t->tenancy)
        print_counts("Tenants", &t->tenants, true);
    if (t->odd_subjects)
        printf("\n%" PRIu64 " subjects do not have the event shape\n", t->odd_subjects);
}

static es_status gather(es_store *st, es_store_info *in, tally *t)
{
    es_status s = es_store_info_get(st, in);
    t->tenancy = es_store_tenancy(st);
    if (s == ES_OK)
        s = es_store_buckets(st, add_bucket, t);
    if (s == ES_OK && in->events > 0)
        s = es_store_subject_counts(st, NULL, count_subject, t, &t->odd_subjects);
    return s;
}

static int run(int argc, char **argv)
{
    tool_args a;
    bool as_json = false;
    int rc = tool_parse_store_args(&tool_cmd_info, argc, argv, options, false, "es-tool info STORE",
                                   tool_flag_option, &as_json, &a);
    if (rc != TOOL_PROCEED)
        return rc;
    const es_cli_conn conn = a.conn;
    const char *store = a.store;
    natsConnection *nc = NULL;
    es_store *st = NULL;
    rc = tool_open(&conn, store, &nc, &st);
    if (rc != ES_EXIT_OK)
        return rc;
    tally t;
    memset(&t, 0, sizeof t);
    t.buckets = json_array();
    es_store_info in;
    es_status s = gather(st, &in, &t);
    if (s != ES_OK) {
        rc = es_cli_fail(s, NULL);
    } else if (as_json) {
        json_t *j = info_json(st, &in, &t);
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (text == NULL || !tool_write(text, strlen(text)) || !tool_write("\n", 1))
            rc = tool_output_closed() ? ES_EXIT_OK : es_cli_fail(ES_ERR_NOMEM, NULL);
        free(text);
    } else {
        print_text(st, &in, &t);
    }
    json_decref(t.buckets);
    tool_counts_free(&t.types);
    tool_counts_free(&t.events);
    tool_counts_free(&t.tenants);
    tool_close(nc, st);
    return rc;
}

const tool_command tool_cmd_info = {
    "info",
    "a store's configuration, state, KV buckets and counts per type",
    run,
    "Usage: es-tool info STORE [--json]\n"
    "\n"
    "Shows the store's stream configuration and state (events, bytes, first and\n"
    "last sequence and time), its KV buckets, and how many entities and events\n"
    "it holds per entity type and per event type. The counts come from the\n"
    "stream's per-subject state: no event is read, however large the store.\n"
    "\n"
    "Options:\n"
    "      --json           one JSON object instead of text\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool info bank\n"
    "  es-tool info bank --json | jq '.event_types'\n",
};
