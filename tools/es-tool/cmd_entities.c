/* es-tool entities: each entity with its event count and last sequence, as
 * es_store_entities walks them (counts from the stream's per-subject state,
 * last sequences from batched direct gets; memory bounded by one page of
 * subjects, whatever the store's size). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "estool.h"
#include "idtext.h"
#include "render.h"

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {"type", 't', true, OPT_TYPE},
    {"tenant", 0, true, OPT_TENANT},
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

typedef struct listing {
    bool as_json, header_done;
    size_t count;
    es_buf line;
} listing;

static void append_json(es_buf *b, const es_entity_info *e)
{
    char num[64];
    es_buf_append_str(b, "{");
    if (e->tenant) {
        es_buf_append_str(b, "\"tenant\":");
        tool_json_append_text(b, e->tenant, strlen(e->tenant));
        es_buf_append_str(b, ",");
    }
    es_buf_append_str(b, "\"type\":");
    tool_json_append_text(b, e->entity_type, strlen(e->entity_type));
    es_buf_append_str(b, ",\"id\":");
    tool_json_append_text(b, e->entity_id, e->entity_id_len);
    snprintf(num, sizeof num, ",\"events\":%" PRIu64 ",\"last_seq\":%" PRIu64 "}\n", e->events,
             e->last_seq);
    es_buf_append_str(b, num);
}

static void append_row(listing *l, es_buf *b, const es_entity_info *e)
{
    if (!l->header_done) {
        printf("%-20s %-40s %10s %12s\n", e->tenant ? "TENANT/TYPE" : "TYPE", "ID", "EVENTS",
               "LAST SEQ");
        l->header_done = true;
    }
    char type[ES_NAME_MAX + ES_ENTITY_TYPE_MAX + 2], num[64];
    snprintf(type, sizeof type, "%s%s%s", e->tenant ? e->tenant : "", e->tenant ? "/" : "",
             e->entity_type);
    es_buf_append_str(b, type);
    for (size_t w = strlen(type); w < 21; w++)
        es_buf_append_byte(b, ' ');
    size_t mark = b->len;
    tool_append_display_id(b, e->entity_id, e->entity_id_len);
    for (size_t w = tool_display_width(b, mark); w < 40; w++)
        es_buf_append_byte(b, ' ');
    snprintf(num, sizeof num, " %10" PRIu64 " %12" PRIu64 "\n", e->events, e->last_seq);
    es_buf_append_str(b, num);
}

static es_status emit(const es_entity_info *e, void *closure)
{
    listing *l = closure;
    es_buf *b = &l->line;
    es_buf_clear(b);
    if (l->as_json)
        append_json(b, e);
    else
        append_row(l, b, e);
    l->count++;
    return tool_write(b->data, b->len) ? ES_OK : ES_ERR_IO;
}

static int run(int argc, char **argv)
{
    tool_args a;
    bool as_json = false;
    int rc = tool_parse_store_args(&tool_cmd_entities, argc, argv, options, true,
                                   "es-tool entities STORE", tool_flag_option, &as_json, &a);
    if (rc != TOOL_PROCEED)
        return rc;
    const es_cli_conn conn = a.conn;
    const tool_filter f = a.filter;
    const char *store = a.store;
    natsConnection *nc = NULL;
    es_store *st = NULL;
    rc = tool_open(&conn, store, &nc, &st);
    if (rc != ES_EXIT_OK)
        return rc;
    listing l = {.as_json = as_json};
    es_status s = es_store_entities(st, &f.filter, emit, &l);
    if (s == ES_OK && !tool_flush())
        s = ES_ERR_IO;
    if (s == ES_ERR_IO && tool_output_closed())
        s = ES_OK;
    if (s != ES_OK)
        rc = es_cli_fail(s, NULL);
    else if (l.count == 0 && !as_json)
        fprintf(stderr, "no entities\n");
    es_buf_free(&l.line);
    tool_close(nc, st);
    return rc;
}

const tool_command tool_cmd_entities = {
    "entities",
    "list entities with their event counts and last sequence",
    run,
    "Usage: es-tool entities STORE [--type TYPE] [--tenant TENANT] [--json]\n"
    "\n"
    "Lists the store's entities, sorted by type and escaped id, with their\n"
    "number of events and the stream sequence of their last event (what\n"
    "append --expect-seq takes). Counts come from the stream's subject state;\n"
    "no event is read except each subject's last. Ids are printed raw, quoted\n"
    "for a shell when they need it ('acc 43.x', $'x\\x01y'), so that they can\n"
    "be pasted back into --id.\n"
    "\n"
    "Options:\n"
    "  -t, --type TYPE      only entities of this type\n"
    "      --tenant TENANT  only this tenant's (stores with tenancy)\n"
    "      --json           one JSON object a line: type, id, events, last_seq\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool entities bank\n"
    "  es-tool entities bank --type account --json | jq -r .id\n",
};
