/* es-tool entities: each entity with its event count and last sequence.
 * Counts come from the stream's per-subject state, page by page (sorted, so
 * an entity's subjects are adjacent); last sequences from batched direct
 * gets of the last message of those subjects. Memory is bounded by one page
 * (the server's 100,000 subjects), whatever the store's size. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "estool.h"
#include "jsinfo.h"
#include "render.h"
#include "wire.h"

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {"type", 't', true, OPT_TYPE},
    {"tenant", 0, true, OPT_TENANT},
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

typedef struct entity {
    char key[ES_SUBJECT_MAX]; /* the subject without its event token */
    uint64_t events, last_seq;
    bool open;
} entity;

typedef struct listing {
    natsConnection *nc;
    es_store *st;
    int64_t timeout_ms;
    size_t prefix_len;
    bool as_json, header_done;
    size_t count;
    entity cur; /* may go on in the next page */
    es_buf line;
} listing;

static es_status emit(listing *l, const entity *e)
{
    char copy[ES_SUBJECT_MAX + 4];
    snprintf(copy, sizeof copy, "%s.x", e->key); /* give the splitter an event token */
    esi_subject_parts parts;
    if (esi_subject_split(copy, es_store_name(l->st), es_store_tenancy(l->st), &parts) != ES_OK)
        return ES_OK; /* not an event subject: not an entity */
    char id[ES_ID_MAX + 1];
    size_t id_len = 0;
    if (es_id_unescape(parts.id_token, strlen(parts.id_token), id, sizeof id, &id_len) != ES_OK)
        return ES_OK;
    es_buf *b = &l->line;
    es_buf_clear(b);
    char num[64];
    if (l->as_json) {
        es_buf_append_str(b, "{");
        if (parts.tenant) {
            es_buf_append_str(b, "\"tenant\":");
            tool_json_append_text(b, parts.tenant, strlen(parts.tenant));
            es_buf_append_str(b, ",");
        }
        es_buf_append_str(b, "\"type\":");
        tool_json_append_text(b, parts.type, strlen(parts.type));
        es_buf_append_str(b, ",\"id\":");
        tool_json_append_text(b, id, id_len);
        snprintf(num, sizeof num, ",\"events\":%" PRIu64 ",\"last_seq\":%" PRIu64 "}\n", e->events,
                 e->last_seq);
        es_buf_append_str(b, num);
    } else {
        if (!l->header_done) {
            printf("%-20s %-40s %10s %12s\n", parts.tenant ? "TENANT/TYPE" : "TYPE", "ID", "EVENTS",
                   "LAST SEQ");
            l->header_done = true;
        }
        char type[2 * ES_NAME_MAX + 2];
        snprintf(type, sizeof type, "%s%s%s", parts.tenant ? parts.tenant : "",
                 parts.tenant ? "/" : "", parts.type);
        es_buf_append_str(b, type);
        for (size_t w = strlen(type); w < 21; w++)
            es_buf_append_byte(b, ' ');
        size_t mark = b->len;
        tool_append_display_id(b, id, id_len);
        for (size_t w = b->len - mark; w < 40; w++)
            es_buf_append_byte(b, ' ');
        snprintf(num, sizeof num, " %10" PRIu64 " %12" PRIu64 "\n", e->events, e->last_seq);
        es_buf_append_str(b, num);
    }
    l->count++;
    return tool_write(b->data, b->len) ? ES_OK : ES_ERR_IO;
}

/* Folds one subject (count and last sequence) into the entity being built,
 * emitting the previous one when this subject starts a new entity. */
static es_status fold(listing *l, const char *subject, uint64_t count, uint64_t last_seq)
{
    const char *dot = strrchr(subject, '.');
    size_t key_len = dot ? (size_t)(dot - subject) : 0;
    if (key_len == 0 || key_len >= sizeof l->cur.key)
        return ES_OK;
    entity *e = &l->cur;
    if (!e->open || strncmp(e->key, subject, key_len) != 0 || e->key[key_len] != '\0') {
        if (e->open) {
            es_status s = emit(l, e);
            if (s != ES_OK)
                return s;
        }
        memcpy(e->key, subject, key_len);
        e->key[key_len] = '\0';
        e->events = e->last_seq = 0;
        e->open = true;
    }
    e->events += count;
    if (last_seq > e->last_seq)
        e->last_seq = last_seq;
    return ES_OK;
}

static es_status on_page(const tool_subject_count *page, size_t n, void *closure)
{
    listing *l = closure;
    const char **subjects = malloc(n * sizeof *subjects);
    uint64_t *seqs = malloc(n * sizeof *seqs);
    es_status s = subjects && seqs ? ES_OK : ES_ERR_NOMEM;
    for (size_t i = 0; s == ES_OK && i < n; i++)
        subjects[i] = page[i].subject;
    if (s == ES_OK)
        s = tool_last_seqs(l->nc, es_store_stream(l->st), subjects, n, l->timeout_ms, seqs);
    for (size_t i = 0; s == ES_OK && i < n; i++)
        s = fold(l, page[i].subject, page[i].count, seqs[i]);
    free(subjects);
    free(seqs);
    return s;
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
    listing *l = calloc(1, sizeof *l);
    char filter[ES_SUBJECT_MAX];
    es_status s = l ? es_filter_subject(st, &f.filter, filter, sizeof filter) : ES_ERR_NOMEM;
    if (s == ES_OK) {
        *l = (listing){.nc = nc, .st = st, .timeout_ms = conn.timeout_ms, .as_json = as_json};
        l->prefix_len = 5 + strlen(store);
        s = tool_subjects_walk(nc, es_store_stream(st), filter, conn.timeout_ms, on_page, l);
        if (s == ES_OK && l->cur.open)
            s = emit(l, &l->cur);
        if (s == ES_OK && !tool_flush())
            s = ES_ERR_IO;
    }
    if (s == ES_ERR_IO && tool_output_closed())
        s = ES_OK;
    if (s != ES_OK)
        rc = es_cli_fail(s, NULL);
    else if (l->count == 0 && !as_json)
        fprintf(stderr, "no entities\n");
    if (l)
        es_buf_free(&l->line);
    free(l);
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
    "no event is read except each subject's last.\n"
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
